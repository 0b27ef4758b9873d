"""A replace's guard against its dataset's row count, asked while the server processes.

The guard (``guards.replace_guard``) needs the dataset's current row count, which the
upload does not change: it is asked as soon as processing starts, so it costs no
round trip of its own (issue 9). Jobs of one dataset run one at a time, so no job of
ours changes that count in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from dsmsyncd.finalize.report import QuarantineReason
from dsmsyncd.pipeline.context import RunningJob
from dsmsyncd.pipeline.guards import replace_guard
from dsmsyncd.pipeline.refusals import Quarantine
from dsmsyncd.pipeline.row_errors import Processed


def count_rows_early(run: RunningJob) -> asyncio.Task[int] | None:
    """The dataset's row count, being asked, for a replace; None for other actions."""
    if run.revision is None or run.revision.action != "replace":
        return None
    counting = asyncio.create_task(current_rows(run))
    # Read its failure if nothing awaits it (processing or a threshold failed first).
    counting.add_done_callback(lambda t: t.cancelled() or t.exception())
    return counting


async def current_rows(run: RunningJob) -> int:
    found = await run.client.read_rows(run.job.dataset, {"$select": "count(*)"})
    return int(float(next(iter(found[0].values())))) if found and found[0] else 0


async def check_replace(
    run: RunningJob, processed: Processed, counting: Awaitable[int] | None
) -> None:
    """Quarantine a replace that would drop more rows than the mapping allows;
    ``counting``: the row count already asked for (counted here when not given)."""
    assert run.revision is not None
    if run.revision.action != "replace":
        return
    current = await (counting or current_rows(run))
    new_rows = processed.usable_rows
    refusal = replace_guard(
        current, new_rows, run.mapping.max_row_drop, run.mapping.allow_empty_replace
    )
    if refusal is not None:
        reason: QuarantineReason = "empty_replace" if new_rows == 0 else "row_drop_guard"
        raise Quarantine(reason, f"{refusal} (dataset {run.job.dataset})")
