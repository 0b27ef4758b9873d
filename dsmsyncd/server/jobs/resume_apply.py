"""Finishing, at start, the applies that a stopped or killed server left running.

A task set that is not ``successful`` or ``failure`` when the server starts belongs
to an apply whose process is gone. Left alone, its revision could be neither applied
again nor discarded (both answer 409 "being applied") and every client polling it
would wait until its own timeout. So each one is settled before the first request:

* it is **resumed**: the apply runs again from the start. That is safe because the
  row write is one DuckDB transaction that records the revision in the row store's
  apply log (``storage/apply.py``): if the crash came after that commit, the rerun finds
  the revision there and only publishes the metadata, writing no row twice; if it came
  before, the dataset still has exactly its old rows and the rerun writes them once.
  Clients see what a hosted service shows them: an apply that was accepted finishes,
  the poll of its task set ends in ``successful``, and nobody has to apply again (the
  daemon, for one, follows a task set it finds and never applies twice).
* unless it was resumed :data:`RESUME_LIMIT` times already and its rows are still not
  in: an apply that keeps taking the server down with it must not do so at every
  start. It ends in ``failure`` with a message that says the dataset is unchanged and
  the revision can be applied again (or discarded).
"""

from __future__ import annotations

import logging

from dsmsyncd.server.catalog import revisions
from dsmsyncd.server.catalog.metastore import Kind
from dsmsyncd.server.jobs import apply
from dsmsyncd.server.state import ServerState

logger = logging.getLogger("dsmsyncd.server.jobs.resume_apply")

RESUME_LIMIT = 2
RESUMED_STAGE = "resumed"


async def resume(state: ServerState) -> tuple[int, int]:
    """Resume or fail every unfinished apply; returns (resumed, failed)."""
    meta = state.meta
    resumed = failed = 0
    for revision in meta.all(Kind.REVISION):
        task_set = revisions.running_task_set(meta, revision)
        if task_set is None:
            continue
        revision_id, task_set_id = int(revision["id"]), int(task_set["id"])
        ref = revisions.ref(revision)
        tries = sum(1 for entry in task_set.get("log", []) if entry.get("stage") == RESUMED_STAGE)
        if tries >= RESUME_LIMIT and await state.rows.applied(revision_id) is None:
            apply.fail(
                meta,
                revision_id,
                task_set_id,
                f"the server stopped {tries + 1} times while applying revision {ref}, so it "
                "was not tried again; none of its rows were applied and the dataset is "
                "unchanged. Apply the revision again, or discard it",
            )
            logger.warning("apply of revision %s failed: interrupted %d times", ref, tries + 1)
            failed += 1
            continue
        apply.note(
            meta,
            revision_id,
            task_set_id,
            RESUMED_STAGE,
            "the server restarted while this apply was running; it is resumed, and rows "
            "already written are not written again",
        )
        apply.start(state, revision, task_set_id)
        resumed += 1
    if resumed or failed:
        logger.info("unfinished applies at start: %d resumed, %d failed", resumed, failed)
    return resumed, failed
