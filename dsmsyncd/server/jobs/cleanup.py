"""Removing what a discarded revision or a deleted dataset leaves behind on disk.

A source keeps its upload directory (``uploads/{id}/``) and its DuckDB tables
(``in_{id}`` with its row errors, ``out_{osid}`` per output schema) until nothing can
use them any more; without this the data dir only ever grows. Two events end that use:
discarding a revision (R6) and deleting a dataset (``DELETE /api/views/{ff}``).

The work is split in two so that it is safe and cheap for the request:

1. :func:`claim`, synchronously in the handler and in the same metastore transaction
   as the discard/delete: decide which sources may go (none that an open revision or
   a running apply still points at, see :func:`live_source_ids`) and mark them
   ``_removed_at``. From then on every read of their rows answers 410
   (``sources.refuse_if_removed``) and no revision can start using them, so there is no
   window in which something new comes to depend on them.
2. :func:`remove_sources` / :func:`remove_dataset`, spawned after the response: wait
   for the background work still touching those tables (a parse would recreate a
   dropped ``in_{id}``, an apply reads ``out_{osid}``), then drop the tables and
   delete the files. The documents stay, so the resources still read as history.

A discarded revision stays restorable for ``--keep-discarded`` seconds (default 7
days, ``catalog/revisions.restorable_until``): its sources' complete files are kept
(``_kept_until``) that long, since a restore parses them again; their tables still go
at once (a restore rebuilds them), so what is kept is bounded by the files uploaded in
that window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

from dsmsyncd.server.catalog import revisions, sources, views
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.jobs.short_wait import work_on_source
from dsmsyncd.server.state import ServerState
from dsmsyncd.server.storage import uploads

logger = logging.getLogger("dsmsyncd.server.jobs.cleanup")

# Seconds between two sweeps of the files kept for restores.
SWEEP_EVERY = 3600.0


def live_source_ids(meta: MetaStore) -> set[int]:
    """Sources that an open revision or a running apply may still read.

    That is every source attached to such a revision, plus the sources behind the
    output schemas and blob it names: ``output_schema_id`` may name any output
    schema, including one of another revision's sources.
    """
    keep: set[int] = set()
    for revision in meta.all(Kind.REVISION):
        running = revisions.running_task_set(meta, revision)
        if revision.get("closed_at") is not None and running is None:
            continue
        ff, seq = revision["fourfour"], int(revision["revision_seq"])
        keep.update(int(s["id"]) for s in sources.revision_sources(meta, ff, seq))
        osids = [revision.get("output_schema_id")]
        if running is not None:
            osids.append(running.get("output_schema_id"))
        for osid in osids:
            doc = meta.get(Kind.OUTPUT_SCHEMA, osid) if osid is not None else None
            if doc is not None:
                keep.add(int(doc["_source_id"]))
        if revision.get("blob_id") is not None:
            keep.add(int(revision["blob_id"]))
    return keep


def claim(meta: MetaStore, docs: Iterable[Doc], why: str) -> list[int]:
    """Mark the sources nothing live needs as removed; their ids, for the removal.

    Call inside the transaction that closes or deletes their revisions, after that
    change, so that those revisions no longer count as live.
    """
    keep = live_source_ids(meta)
    now = utcnow_iso()
    claimed = []
    for doc in docs:
        source_id = int(doc["id"])
        if source_id in keep or sources.is_removed(doc):
            continue
        doc["_removed_at"] = now
        doc["_removed_because"] = why
        sources.save(meta, doc)
        claimed.append(source_id)
    return claimed


def source_tables(meta: MetaStore, source_id: int) -> list[str]:
    """Every DuckDB table a source's parse and transforms made (``drop_tables`` adds
    the ``__row_errors`` companion of each)."""
    tables = [f"in_{source_id}"]
    for input_schema in meta.children(Kind.INPUT_SCHEMA, source_id):
        tables.append(str(input_schema.get("_table") or f"in_{source_id}"))
        for output_schema in meta.children(Kind.OUTPUT_SCHEMA, input_schema["id"]):
            tables.append(str(output_schema.get("_table") or f"out_{output_schema['id']}"))
    return list(dict.fromkeys(tables))


async def remove_sources(
    state: ServerState, source_ids: list[int], *, keep_files_until: str | None = None
) -> None:
    """Drop the claimed sources' tables and delete their uploads, once nothing runs on them.

    With ``keep_files_until`` (a discarded revision, kept restorable) the complete files
    stay until then, for a restore to parse again; only partial chunks go now, and
    :func:`expire_kept_files` removes the rest when the time comes.
    """
    for source_id in source_ids:
        # A parse creates the output schema whose materialize then runs: repeat until
        # quiet. Only waiting: the tasks record their own outcome, and spawn logs a crash.
        while work := work_on_source(state, source_id):
            await asyncio.wait(work)
    tables = [t for sid in source_ids for t in source_tables(state.meta, sid)]
    if tables:
        await state.rows.drop_tables(*tables)
    for source_id in source_ids:
        async with state.upload_locks.lock(source_id):  # never under a commit's rename
            if keep_files_until is None:
                await uploads.remove(state.uploads_dir, source_id)
            else:
                await uploads.remove_partial(state.uploads_dir, source_id)
                _mark_kept(state.meta, source_id, keep_files_until)
        state.upload_locks.forget(source_id)
    if source_ids:
        logger.info("removed the tables (%d) of sources %s", len(tables), source_ids)


def _mark_kept(meta: MetaStore, source_id: int, until: str) -> None:
    doc = meta.get(Kind.SOURCE, source_id)
    if doc is not None:
        doc["_kept_until"] = until
        sources.save(meta, doc)


def kept_file(source: Doc) -> Path | None:
    """The complete file a source still has on disk (its own, or kept for a restore)."""
    path = source.get("_path")
    return Path(path) if path and Path(path).is_file() else None


async def expire_kept_files(state: ServerState) -> list[int]:
    """Delete the files kept for restores whose time is up; the sources' ids.

    Runs at startup, after every discard and every :data:`SWEEP_EVERY` seconds, so a
    discarded revision's files outlive ``--keep-discarded`` by at most that much.
    """
    now = utcnow_iso()
    expired = [
        doc
        for doc in state.meta.all(Kind.SOURCE)
        if doc.get("_kept_until") is not None and str(doc["_kept_until"]) <= now
    ]
    for doc in expired:
        async with state.upload_locks.lock(int(doc["id"])):
            await uploads.remove(state.uploads_dir, int(doc["id"]))
        doc.pop("_kept_until")
        sources.save(state.meta, doc)
    if expired:
        logger.info("removed the kept files of sources %s", [d["id"] for d in expired])
    return [int(d["id"]) for d in expired]


async def sweep_kept_files(state: ServerState) -> None:
    """Expire kept files now and then, for as long as the server runs (cancelled at stop)."""
    while True:
        try:
            await expire_kept_files(state)
        except Exception:  # a failed sweep is retried at the next one
            logger.exception("removing expired kept files failed")
        await asyncio.sleep(SWEEP_EVERY)


def files_kept_until(revision: Doc, keep_seconds: float) -> str | None:
    """Until when a discarded revision's files stay (the end of its restore window);
    None: they go at once (``--keep-discarded 0``)."""
    until = revisions.restorable_until(revision, keep_seconds)
    if until is None or keep_seconds <= 0:
        return None
    return until.isoformat(timespec="microseconds")


async def remove_dataset(state: ServerState, fourfour: str, source_ids: list[int]) -> None:
    """After ``DELETE /api/views/{ff}``: its sources, then its published rows.

    Applies already spawned for the dataset are waited for first: one may be in the
    middle of writing the dataset table, and would recreate it after the drop.
    """
    await state.applies.wait(fourfour)
    await remove_sources(state, source_ids)
    await state.rows.drop_tables(views.dataset_table(fourfour))
