"""The apply job: publish a revision's metadata and rows to its dataset (digest §1.6).

``PUT …/apply`` stores a task set (``initializing``) and spawns :func:`run_apply`,
which walks ``initializing → creating_columns → upserting → finishing`` and ends in
``successful`` or ``failure``, writing each step to the task set as it goes so that
pollers (the SDK's ``Job``, DSMUI's revision poll) see progress. The log is newest
first, with the row counts in the ``Rows …`` details the SDK and DSMUI show.

What is published is decided here, what the rows become is the row store's job:
``RowStore.apply`` swaps the dataset's rows atomically, so readers see the old rows or
the new ones, never a mix. Only after it succeeds are the view's columns, metadata and
permission written — in one metastore transaction together with the revision's
``closed_at`` and the task set's ``successful``. A failure leaves the revision open
(``closed_at`` null) so that it can be discarded or applied again.

The row write and the metadata publish are two commits in two databases, so a crash
can fall between them. The row store's apply log closes that gap: it is written in
the row write's own transaction, and an apply run again for the same revision finds
it and publishes without writing the rows twice. That is what makes resuming an
interrupted apply at the next start safe (``resume_apply.py``).

One apply runs at a time per dataset; a second one waits for the first.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, cast

from dsmsyncd.server import pause_points
from dsmsyncd.server.catalog import revisions, views
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.catalog.users import creator_ref
from dsmsyncd.server.jobs import signals
from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.state import ServerState
from dsmsyncd.server.storage.apply import ApplyAction
from dsmsyncd.server.storage.rowstore import AppliedColumn, ApplyRefused, ApplyStats, ApplyTarget

logger = logging.getLogger("dsmsyncd.server.jobs.apply")


class ApplyFailed(Exception):
    """An apply that cannot go on; the message goes into the task set's log."""


def new_task_set(
    meta: MetaStore, revision: Doc, output_schema_id: int | None, user: Doc, request_id: str
) -> Doc:
    now = utcnow_iso()
    task_set_id = meta.next_id(Kind.TASK_SET)
    doc: Doc = {
        "id": task_set_id,
        "status": "initializing",
        "log": [],
        "output_schema_id": output_schema_id,
        "job_uuid": str(uuid.uuid4()),
        "request_id": request_id,
        "finished_at": None,
        "created_at": now,
        "updated_at": now,
        "created_by": creator_ref(user),
    }
    return meta.put(Kind.TASK_SET, task_set_id, doc, parent=revision["id"], owner=user["id"])


def start(state: ServerState, revision: Doc, task_set_id: int) -> asyncio.Task[None]:
    """Run the apply in the background, filed under its dataset (cleanup waits for it)."""
    return state.applies.start(
        revision["fourfour"],
        run_apply(state, int(revision["id"]), task_set_id),
        label=f"{revisions.ref(revision)}-{task_set_id}",
    )


PUBLISH_ATTEMPTS = 4
PUBLISH_RETRY_S = 0.5


async def run_apply(state: ServerState, revision_id: int, task_set_id: int) -> None:
    """Run one apply to its end; never raises (the outcome is in the task set).

    Once its rows are committed an apply is never reported ``failure``: the dataset
    holds them, and a client told "failed" would drop the file again and append every
    row a second time. If publishing the metadata then fails (SQLite full or locked),
    the apply is run again after a pause (it finds its rows in the apply log and only
    publishes), and after the last try it is left running for the next start.
    """
    job = _Job(state.meta, revision_id, task_set_id)
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            revision = job.revision()
            async with state.apply_locks.lock(revision["fourfour"]):
                await job.run(state)
            return
        except asyncio.CancelledError:
            # Shutdown ran out of time. The row write may still commit in its worker
            # thread, so "failure" could be false: leave the task set running, for the
            # next start to finish (``resume_apply.py``), as after a kill.
            job.note(
                "interrupted", "the server shut down during this apply; its next start resumes it"
            )
            raise
        except (ApplyRefused, ApplyFailed) as exc:
            job.fail(str(exc))
            return
        except Exception as exc:
            if not await _rows_in(state, revision_id):
                logger.exception(
                    "apply of revision %s (task set %s) failed", revision_id, task_set_id
                )
                job.fail(f"internal error while applying: {exc}")
                return
            logger.warning("apply of revision %s: publishing failed (%s)", revision_id, exc)
            if attempt == PUBLISH_ATTEMPTS:
                job.note(
                    "interrupted",
                    f"the rows are applied but publishing failed ({exc}); "
                    "the next start finishes it",
                )
                return
            job.note(
                "retrying", f"the rows are applied but publishing failed ({exc}); trying again"
            )
            await asyncio.sleep(PUBLISH_RETRY_S * 2 ** (attempt - 1))


async def _rows_in(state: ServerState, revision_id: int) -> bool:
    try:
        return await state.rows.applied(revision_id) is not None
    except Exception:  # the row store itself is failing: do not claim the rows are in
        logger.exception("apply of revision %s: cannot read the apply log", revision_id)
        return False


def note(meta: MetaStore, revision_id: int, task_set_id: int, stage: str, message: str) -> None:
    """Add a log entry to a task set without changing its status."""
    _Job(meta, revision_id, task_set_id).note(stage, message)


def fail(meta: MetaStore, revision_id: int, task_set_id: int, message: str) -> None:
    """End a task set in ``failure`` with ``message`` in its log."""
    _Job(meta, revision_id, task_set_id).fail(message)


class _Job:
    def __init__(self, meta: MetaStore, revision_id: int, task_set_id: int) -> None:
        self._meta = meta
        self._revision_id = revision_id
        self._task_set_id = task_set_id

    def revision(self) -> Doc:
        revision = self._meta.get(Kind.REVISION, self._revision_id)
        if revision is None:
            raise ApplyFailed(f"revision {self._revision_id} no longer exists")
        return revision

    def _task_set(self) -> Doc:
        doc = self._meta.get(Kind.TASK_SET, self._task_set_id)
        if doc is None:
            raise ApplyFailed(f"task set {self._task_set_id} no longer exists")
        return doc

    def step(
        self,
        status: str,
        stage: str | None = None,
        details: dict[str, Any] | None = None,
        *,
        save: bool = True,
    ) -> Doc:
        doc = self._task_set()
        now = utcnow_iso()
        doc["status"] = status
        doc["updated_at"] = now
        if stage is not None:
            doc["log"] = [{"stage": stage, "time": now, "details": details or {}}, *doc["log"]]
        if status in ("successful", "failure"):
            doc["finished_at"] = now
        if save:
            self._meta.put(Kind.TASK_SET, self._task_set_id, doc)
        return doc

    def fail(self, message: str) -> None:
        try:
            self.step("failure", "failure", {"message": message})
        except ApplyFailed:
            logger.warning("apply failed after its task set vanished: %s", message)

    def note(self, stage: str, message: str) -> None:
        """A log entry that leaves the status as it is."""
        try:
            self.step(self._task_set()["status"], stage, {"message": message})
        except ApplyFailed:
            logger.warning("apply note after its task set vanished: %s", message)

    async def run(self, state: ServerState) -> None:
        meta = self._meta
        revision = self.revision()
        fourfour = revision["fourfour"]
        osid = self._task_set().get("output_schema_id")
        self.step("initializing", "started")
        output_schema = await self._finished_output_schema(state, osid)
        if meta.get(Kind.VIEW, fourfour) is None:
            raise ApplyFailed(f"dataset {fourfour} was deleted")
        columns = output_schema.get("output_columns", []) if output_schema else []
        self.step("creating_columns", "columns_created", {"Columns": len(columns)})
        self.step("upserting")
        stats: ApplyStats | None = None
        if output_schema is not None:
            stats = await self._apply_rows(state, revision, output_schema)
            await pause_points.pause(pause_points.APPLY_AFTER_ROWS)
            self.step("upserting", "rows_upserted", _row_details(stats, output_schema))
        self.step("finishing", "upsert_complete")
        pause_points.fail_once(pause_points.APPLY_PUBLISH)
        self._publish(revision, output_schema, stats)

    async def _finished_output_schema(self, state: ServerState, osid: Any) -> Doc | None:
        if osid is None:
            return None
        doc = await signals.wait_output_schema(state, int(osid))
        if doc is None:
            raise ApplyFailed(f"output schema {osid} no longer exists")
        for column in doc.get("output_columns", []):
            transform = column.get("transform") or {}
            if transform.get("failed_at") is not None:
                reason = (transform.get("failure_details") or {}).get("message", "unknown")
                raise ApplyFailed(
                    f"the transform of column '{column.get('field_name')}' failed: {reason}"
                )
        return doc

    async def _apply_rows(
        self, state: ServerState, revision: Doc, output_schema: Doc
    ) -> ApplyStats:
        requested = (revision.get("action") or {}).get("type")
        action = cast(ApplyAction, requested if requested in revisions.ACTION_TYPES else "update")
        source = self._meta.get(Kind.SOURCE, output_schema.get("_source_id", -1))
        if source is not None and (source.get("source_type") or {}).get("type") == "view":
            # A view source is the dataset's own rows, reshaped: publish it as a whole.
            action = "replace"
        applied = [
            AppliedColumn(c["field_name"], _soql_type(c), index)
            for index, c in enumerate(output_schema.get("output_columns", []))
        ]
        row_identifier = next(
            (c["field_name"] for c in output_schema["output_columns"] if c.get("is_primary_key")),
            None,
        )
        target = ApplyTarget(
            views.dataset_table(revision["fourfour"]),
            output_schema["_table"],
            revision_id=int(revision["id"]),
            task_set_id=self._task_set_id,
            error_rows=output_schema.get("error_count"),
            rows=output_schema.get("total_rows"),
        )
        return await state.rows.apply(target, applied, action, row_identifier)

    def _publish(self, revision: Doc, output_schema: Doc | None, stats: ApplyStats | None) -> None:
        meta = self._meta
        with meta.transaction():
            view = meta.get(Kind.VIEW, revision["fourfour"])
            if view is None:
                raise ApplyFailed(f"dataset {revision['fourfour']} was deleted")
            views.apply_metadata(view, revision.get("metadata") or {})
            views.set_permission(view, (revision.get("action") or {}).get("permission"))
            if output_schema is not None:
                columns, row_id = views.columns_from_output_schema(view, output_schema)
                views.publish_columns(view, columns, row_id)
                view["rowsUpdatedAt"] = int(time.time())
            if revision.get("blob_id") is not None:
                self._publish_blob(view, int(revision["blob_id"]))
            view["publicationStage"] = "published"
            views.save_view(meta, view)
            revisions.close(meta, self.revision())
            self.step("successful", "finished", _summary(stats))

    def _publish_blob(self, view: Doc, blob_id: int) -> None:
        source = self._meta.get(Kind.SOURCE, blob_id)
        view["blobId"] = blob_id
        view["blobFilename"] = ((source or {}).get("source_type") or {}).get("filename")


def _soql_type(column: Doc) -> SoqlType:
    name = (column.get("transform") or {}).get("output_soql_type") or "text"
    try:
        return SoqlType(name)
    except ValueError:
        return SoqlType.TEXT


def _row_details(stats: ApplyStats, output_schema: Doc) -> dict[str, Any]:
    keyed = any(c.get("is_primary_key") for c in output_schema.get("output_columns", []))
    return {
        "Errors": stats.errors,
        "Rows Created": stats.created,
        "Rows Updated": stats.updated,
        "By RowIdentifier": stats.updated if keyed else 0,
        "By SID": 0,
        "Rows Deleted": stats.deleted,
    }


def _summary(stats: ApplyStats | None) -> dict[str, Any]:
    if stats is None:
        return {"Rows Created": 0, "Rows Updated": 0, "Rows Deleted": 0}
    return {"Total Rows": stats.total_rows_after}
