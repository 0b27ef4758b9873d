"""Where sources read and mappings write must not meet: checks of a loaded config.

Two mistakes make files go round or go twice, and neither shows until rows are
duplicated, so ``load_config`` refuses both (for ``run``, ``check-config`` and a
SIGHUP reload alike):

* **Overlapping sources.** Two sources whose folders nest (or that list the same
  bucket prefix, or one inside another, on one endpoint) both take every file there,
  and publish it to two datasets, racing.
* **Archive or quarantine inside a source.** A mapping moves finished files to its
  ``archive_dir`` and refused ones to its ``quarantine_dir``. Inside another source's
  folder (or prefix), that source takes each moved file as a new one and publishes it
  again: a loop that duplicates rows. A source skips its own mappings' folders and
  whatever its ``ignore`` patterns skip (``ignore.py``), so only what it cannot skip
  is refused: a folder of another source not ignored there, the source's own root
  (or prefix), or a folder that contains it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dsmsyncd.config import ignore
from dsmsyncd.config.secrets import ConfigProblem

if TYPE_CHECKING:
    from dsmsyncd.config.schema import MappingConfig, SourceConfig

_LOOP = (
    "would take every file this mapping moves there as a new file and publish it "
    "again, in a loop that duplicates rows"
)


def bucket_location(value: Path | str, default_bucket: str) -> tuple[str, str]:
    """(bucket, prefix) of an ``archive_dir``/``quarantine_dir`` of a bucket mapping.

    ``s3://bucket/prefix`` names a bucket (``Path`` folds the ``//``, so ``s3:/`` is
    accepted too); a plain value is a prefix in ``default_bucket``. The prefix is
    empty or ends in ``/``.
    """
    text = str(value).strip()
    bucket = default_bucket
    if text.startswith("s3:/"):
        bucket, _, text = text.removeprefix("s3:/").lstrip("/").partition("/")
    prefix = text.strip("/")
    if not bucket or prefix in (".", "..") or "/../" in f"/{prefix}/":
        raise ValueError(f"expected s3://bucket/prefix or a key prefix, found {str(value)!r}")
    return bucket, f"{prefix}/" if prefix else ""


# -- sources against sources ----------------------------------------------------------


def source_overlaps(sources: Sequence[SourceConfig]) -> list[ConfigProblem]:
    """Sources that would see the same files: each file would go to two datasets at once."""
    problems: list[ConfigProblem] = []
    for later, second in enumerate(sources):
        for first in sources[:later]:
            why = _overlap(first, second)
            if why is not None:
                problems.append(
                    ConfigProblem(
                        f"source[{later}].url",
                        f"{why}: every file there would be taken by both sources and "
                        "published twice, racing; give each source its own folder or "
                        "prefix (one source feeds several datasets through several "
                        "[[mapping]] tables with different match globs)",
                    )
                )
    return problems


def _overlap(first: SourceConfig, second: SourceConfig) -> str | None:
    a, b = f"source {first.name!r}", f"source {second.name!r}"
    if first.url.startswith("file://") and second.url.startswith("file://"):
        one, two = os.path.realpath(first.path), os.path.realpath(second.path)
        what = "folder"
    elif first.url.startswith("s3://") and second.url.startswith("s3://"):
        if (first.endpoint_url or "", first.bucket) != (second.endpoint_url or "", second.bucket):
            return None
        one, two = f"s3://{first.bucket}/{first.prefix}", f"s3://{second.bucket}/{second.prefix}"
        what = "prefix"
    else:
        return None
    if one == two:
        return f"{b} has the same {what} as {a} ({two})"
    if _within(two, one):
        return f"the {what} of {b} ({two}) is inside the {what} of {a} ({one})"
    if _within(one, two):
        return f"the {what} of {b} ({two}) contains the {what} of {a} ({one})"
    return None


def _within(inner: str, outer: str) -> bool:
    if outer.startswith("s3://"):
        return inner.startswith(outer)
    return inner.startswith(outer.rstrip(os.sep) + os.sep)


# -- where mappings move files, against sources -----------------------------------------


def finalize_folder(root: Path, configured: Path) -> Path:
    """Where a folder mapping's ``archive_dir``/``quarantine_dir`` is: an absolute path as
    written, a relative one under its source's root (the one rule for the finalizer,
    ``check-config`` and the checks below)."""
    return root / configured


def finalize_dir_problems(
    sources: Sequence[SourceConfig], mappings: Sequence[MappingConfig]
) -> list[ConfigProblem]:
    """Archive and quarantine folders that a source would publish again (see module)."""
    owners = {source.name: source for source in sources}
    problems: list[ConfigProblem] = []
    for index, mapping in enumerate(mappings):
        owner = owners.get(mapping.source)
        if owner is None:
            continue  # an unknown source is refused by the config model already
        for key, value in _moved_to(mapping):
            where = f"mapping[{index}].{key}"
            subject = f"{value} (where mapping[{index}], source {owner.name!r} → dataset "
            subject += f"{mapping.dataset}, moves files)"
            try:
                found = list(_meetings(owner, value, sources))
            except ValueError as exc:
                problems.append(ConfigProblem(where, str(exc)))
                continue
            problems += [ConfigProblem(where, f"{subject} {why}") for why in found]
    return problems


def _moved_to(mapping: MappingConfig) -> Iterator[tuple[str, Path]]:
    if mapping.on_success == "archive" and mapping.archive_dir is not None:
        yield "archive_dir", mapping.archive_dir
    yield "quarantine_dir", mapping.quarantine_dir


def _meetings(owner: SourceConfig, value: Path, sources: Sequence[SourceConfig]) -> Iterator[str]:
    """Why files moved to ``value`` would come back, once per source that takes them."""
    if owner.url.startswith("s3://"):
        bucket, prefix = bucket_location(value, owner.bucket)
        for source in sources:
            if source.url.startswith("s3://") and (source.endpoint_url, source.bucket) == (
                owner.endpoint_url,
                bucket,
            ):
                yield from _prefix_meets(owner, prefix, source)
    else:
        folder = os.path.realpath(finalize_folder(owner.path, value))
        for source in sources:
            if source.url.startswith("file://"):
                yield from _folder_meets(owner, folder, source)


def _folder_meets(owner: SourceConfig, folder: str, source: SourceConfig) -> Iterator[str]:
    root = os.path.realpath(source.path)
    own = source.name == owner.name
    if folder == root:
        yield (
            f"is the folder of source {source.name!r} itself: that source {_LOOP}; use a "
            "folder outside every source's folder, or a subfolder of its own source's"
        )
    elif _within(folder, root):
        if not own and not ignore.folder_skips(source.ignore, os.path.relpath(folder, root)):
            yield (
                f"is inside the folder of source {source.name!r} ({root}): that source "
                f"{_LOOP}; move it out of that folder (a subfolder of its own source's "
                f"folder, {owner.name!r}, is skipped by that source's discovery)"
            )
    elif own and _within(root, folder):
        yield (
            f"contains the folder of its own source {source.name!r} ({root}): files moved "
            "there can land back in that folder and be published again, and discovery "
            "skips the source's subfolders; use a folder beside it or inside it"
        )


def _prefix_meets(owner: SourceConfig, prefix: str, source: SourceConfig) -> Iterator[str]:
    url = f"s3://{source.bucket}/"
    own = source.name == owner.name
    if prefix == source.prefix:
        yield (
            f"is the prefix of source {source.name!r} itself ({url}{prefix}): that source "
            "would never offer a file (its own mappings' prefixes are skipped); use a "
            "prefix outside every source's prefix, or one inside its own source's"
        )
    elif prefix.startswith(source.prefix):
        relative = prefix[len(source.prefix) :]
        if not own and not ignore.bucket_skips(source.ignore, relative):
            yield (
                f"is inside the prefix of source {source.name!r} ({url}{source.prefix}): "
                f"that source {_LOOP}; move it out of that prefix (one inside its own "
                f"source's prefix, {owner.name!r}, is skipped by that source's discovery)"
            )
    elif own and source.prefix.startswith(prefix):
        yield (
            f"contains the prefix of its own source {source.name!r} ({url}{source.prefix}): "
            "the source skips its mappings' prefixes, so it would never offer a file; use "
            "a prefix beside it or inside it"
        )
