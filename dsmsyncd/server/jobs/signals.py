"""Server-side wake-ups between background jobs: "this output schema is finished".

An apply may be requested while its output schema is still being transformed. The
apply job waits here instead of having clients poll: the parse job calls
:func:`output_schema_done` when it sets ``completed_at`` (or fails the schema), and
:func:`wait_output_schema` wakes. Events live in the server state (two servers in one
process, as in the tests, never share one) and only a waiter creates one, so signals
nobody waits for leave nothing behind. The stored document stays the truth: the waiter
re-reads it after each wake and also every :data:`FALLBACK_POLL_S` seconds, so a missed
signal costs a delay, not a hang.
"""

from __future__ import annotations

import asyncio

from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.state import ServerState

FALLBACK_POLL_S = 0.05


def output_schema_done(state: ServerState, output_schema_id: int) -> None:
    """Call after storing an output schema with ``completed_at`` set, or failed."""
    event = state.output_schema_events.get(int(output_schema_id))
    if event is not None:
        event.set()


def is_finished(doc: Doc) -> bool:
    """Complete, or failed in a way that will not change (a transform's ``failed_at``)."""
    if doc.get("completed_at") is not None:
        return True
    columns = doc.get("output_columns") or []
    return any((c.get("transform") or {}).get("failed_at") is not None for c in columns)


async def wait_output_schema(state: ServerState, output_schema_id: int) -> Doc | None:
    """The output schema once finished; None if it does not exist (or was deleted)."""
    osid = int(output_schema_id)
    event = state.output_schema_events.setdefault(osid, asyncio.Event())
    try:
        while True:
            doc = state.meta.get(Kind.OUTPUT_SCHEMA, osid)
            if doc is None or is_finished(doc):
                return doc
            try:
                await asyncio.wait_for(event.wait(), timeout=FALLBACK_POLL_S)
            except TimeoutError:
                continue
    finally:
        state.output_schema_events.pop(osid, None)
