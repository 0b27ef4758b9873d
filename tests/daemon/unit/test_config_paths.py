"""Archive and quarantine folders against sources: only what discovery cannot skip is refused.

The CLI cases (another source's folder, a source's own root, a bucket prefix inside
another source's) are in tests/daemon/e2e/test_daemon_config_agreement.py; these are the rest
of the rule, on the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.config import ignore
from dsmsyncd.config.paths import finalize_dir_problems
from dsmsyncd.config.schema import MappingConfig, SourceConfig


def folder(name: str, path: str) -> SourceConfig:
    return SourceConfig(name=name, url=f"file://{path}")


def bucket(name: str, url: str, **kw: Any) -> SourceConfig:
    return SourceConfig(name=name, url=url, endpoint_url="http://127.0.0.1:9", **kw)


def mapping(source: str, quarantine: str, **kw: Any) -> MappingConfig:
    kw.setdefault("on_success", "delete")
    return MappingConfig(
        source=source,
        match="*.csv",
        dataset="abcd-1234",
        action="update",
        quarantine_dir=Path(quarantine),
        **kw,
    )


def messages(sources: list[SourceConfig], mappings: list[MappingConfig]) -> list[str]:
    return [f"{p.key}: {p.message}" for p in finalize_dir_problems(sources, mappings)]


def test_a_folder_containing_its_own_sources_root_is_refused() -> None:
    [message] = messages([folder("drop", "/srv/in/drop")], [mapping("drop", "/srv/in")])
    assert message.startswith("mapping[0].quarantine_dir: /srv/in (where mapping[0]")
    assert "contains the folder of its own source 'drop' (/srv/in/drop)" in message


def test_a_relative_folder_is_taken_from_its_sources_root() -> None:
    sources = [folder("drop", "/srv/drop")]
    assert messages(sources, [mapping("drop", "bad")]) == []  # /srv/drop/bad: skipped
    assert "is the folder of source 'drop' itself" in messages(sources, [mapping("drop", ".")])[0]


def test_an_unused_archive_dir_is_not_checked() -> None:
    sources = [folder("drop", "/srv/drop"), folder("other", "/srv/other")]
    kept = mapping("drop", "/srv/q", on_success="keep", archive_dir=Path("/srv/other/a"))
    assert messages(sources, [kept]) == []
    archived = mapping("drop", "/srv/q", on_success="archive", archive_dir=Path("/srv/other/a"))
    [message] = messages(sources, [archived])
    assert message.startswith("mapping[0].archive_dir: /srv/other/a")


def test_bucket_prefixes() -> None:
    sources = [bucket("exports", "s3://drops/in/"), bucket("late", "s3://drops/late/")]
    assert messages(sources, [mapping("exports", "in/bad/")]) == []  # its own: skipped
    assert messages(sources, [mapping("exports", "s3://other/bad/")]) == []
    assert messages(sources, [mapping("exports", "late/.bad/")]) == []  # ignored by late
    [own] = messages(sources, [mapping("exports", "in/")])
    assert "is the prefix of source 'exports' itself (s3://drops/in/)" in own
    [parent] = messages(sources, [mapping("exports", "s3://drops/")])
    assert "contains the prefix of its own source 'exports' (s3://drops/in/)" in parent
    [bad] = messages(sources, [mapping("exports", "s3://drops/in/../x")])
    assert bad == (
        "mapping[0].quarantine_dir: expected s3://bucket/prefix or a key prefix, "
        "found 's3:/drops/in/../x'"
    )


def test_the_same_bucket_name_on_another_store_is_another_bucket() -> None:
    sources = [
        bucket("exports", "s3://drops/in/"),
        SourceConfig(name="far", url="s3://drops/late/", endpoint_url="http://127.0.0.1:10"),
    ]
    assert messages(sources, [mapping("exports", "late/bad/")]) == []


@pytest.mark.parametrize(
    ("relative", "skipped"),
    [(".archive", True), ("a/.archive", True), ("archive", False), ("x.tmp/archive", True)],
)
def test_folder_skips_what_the_walk_skips(relative: str, skipped: bool) -> None:
    assert ignore.folder_skips(["*.part", "*.tmp", ".*"], relative) is skipped


@pytest.mark.parametrize(
    ("prefix", "skipped"), [(".archive/", True), ("archive/", False), ("done/", False)]
)
def test_bucket_skips_only_what_every_key_under_it_matches(prefix: str, skipped: bool) -> None:
    assert ignore.bucket_skips(["*.part", "*.tmp", ".*", "done/*.csv"], prefix) is skipped
