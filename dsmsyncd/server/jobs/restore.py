"""Restoring a closed revision (R12): a new open revision made from an old one.

As on the hosted service, a restore does not reopen the old revision: it opens the
next one (``revision_seq`` + 1 of the newest) with the old one's action, metadata and
notes, and re-creates its sources from their files, parsed again with the same parse
options into output schemas with the same columns and transforms. The new revision
points at the restored output schema, so applying it publishes what the old one held.

What can be restored (``catalog/revisions.restorable_until``): an applied revision for
as long as its dataset exists, a discarded one for ``--keep-discarded`` seconds after
it was discarded. An open revision has nothing to restore (409). View sources are not
re-created (they would snapshot the dataset as it is now, not as it was).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from dsmsyncd.server.catalog import configs, revisions, sources
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore
from dsmsyncd.server.errors import ApiError
from dsmsyncd.server.jobs import cleanup, parse
from dsmsyncd.server.state import ServerState
from dsmsyncd.server.storage import uploads


def check_restorable(state: ServerState, revision: Doc) -> list[Doc]:
    """The sources whose files a restore copies; refuses what cannot be restored."""
    ref = revisions.ref(revision)
    if not revisions.is_closed(revision):
        raise ApiError(
            409,
            f"revision {ref} is open; only an applied or discarded revision can be restored "
            "(keep using this one, or discard it first)",
            key="revision_open",
        )
    until = revisions.restorable_until(revision, state.keep_discarded_seconds)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    found = sources.revision_sources(state.meta, revision["fourfour"], revision["revision_seq"])
    with_files = [d for d in found if d.get("_path")]
    kept = [d for d in with_files if cleanup.kept_file(d) is not None]
    if (until is not None and until <= now) or len(kept) < len(with_files):
        why = "its files were removed"
        if revisions.is_discarded(revision):
            why = (
                f"it was discarded at {revision['_discarded_at']} and discarded revisions "
                f"stay restorable for {state.keep_discarded_seconds:g}s "
                "(dsmsyncd serve --keep-discarded)"
            )
        raise ApiError(
            410, f"revision {ref} can no longer be restored: {why}", key="not_restorable"
        )
    return kept


async def restore(state: ServerState, revision: Doc, user: Doc) -> Doc:
    """Open the restored revision and start parsing its copied files; the new revision."""
    meta = state.meta
    kept = check_restorable(state, revision)
    with meta.transaction():
        new = revisions.restored(meta, revision, user)
        copies = [(old, _copy_source(meta, revision, old, new, user)) for old in kept]
    for old, copy in copies:
        target = uploads.final_path(state.uploads_dir, int(copy["id"]))
        await uploads.copy_bytes(Path(old["_path"]), target)
        parse.bytes_complete(state, copy, int(old.get("filesize") or target.stat().st_size))
    return new


def _copy_source(meta: MetaStore, revision: Doc, old: Doc, new: Doc, user: Doc) -> Doc:
    """A new source on ``new`` like ``old``; its first output schema takes ``old``'s columns."""
    copy = sources.new_source(meta, user, dict(old["source_type"]), dict(old["parse_options"]), new)
    copy["content_type"] = old.get("content_type")
    columns = _columns_of(meta, revision, old)
    if columns:
        copy["_template_columns"] = columns
    return sources.save(meta, copy)


def _columns_of(meta: MetaStore, revision: Doc, source: Doc) -> list[dict[str, Any]]:
    """The columns of the output schema the revision applied (or would have) from
    ``source``: the one it names, else the source's latest."""
    named = revision.get("output_schema_id")
    candidates = []
    for input_schema in meta.children(Kind.INPUT_SCHEMA, source["id"]):
        candidates += meta.children(Kind.OUTPUT_SCHEMA, input_schema["id"])
    if not candidates:
        return []
    chosen = next((o for o in candidates if o["id"] == named), None)
    chosen = chosen or max(candidates, key=lambda o: int(o["id"]))
    return configs.columns(configs.columns_of(chosen))
