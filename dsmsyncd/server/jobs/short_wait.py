"""Answering a request that starts background work once that work is done, if it is quick.

A commit (S9) starts a source's parse and transforms, an apply (R7) its job; the
protocol answers at once, with the resource in progress, and the client polls until
it is done. For a small file that work takes tens of milliseconds, so a client paid a
poll (its first interval and one more request) per step, which for thousands of small
files was much of the time per file (issue 9). The handlers therefore wait a short,
bounded time (``ServerState.answer_wait_s``, 0.2 s) for the work before answering:
quick work is answered done, and a client that reads the answer (``poll(first=...)``
in the daemon) needs no poll; longer work is answered in progress, as before, only
that much later.

The answer is the resource as a poll would show it a moment later, so it is a state
every client already handles (the SDK polls regardless). Only waiting: the work is
never cancelled here, and a request cancelled (its client gone) while waiting leaves
the work running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dsmsyncd.server.catalog.metastore import Kind
from dsmsyncd.server.state import ServerState


def work_on_source(state: ServerState, source_id: int) -> list[asyncio.Task[Any]]:
    """The parse and transforms still running on a source's tables."""
    tasks = state.parses.running(source_id)
    for input_schema in state.meta.children(Kind.INPUT_SCHEMA, source_id):
        for output_schema in state.meta.children(Kind.OUTPUT_SCHEMA, input_schema["id"]):
            tasks += state.materializations.running(int(output_schema["id"]))
    return tasks


async def settle(work: Callable[[], list[asyncio.Task[Any]]], within: float) -> bool:
    """Wait until ``work()`` is empty (work it starts meanwhile included), for at most
    ``within`` seconds; whether it is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while tasks := work():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.wait(tasks, timeout=remaining)
    return True


async def source_settled(state: ServerState, source_id: int) -> bool:
    """After a commit: wait briefly for the source's parse and transforms."""
    return await settle(lambda: work_on_source(state, source_id), state.answer_wait_s)


async def task_settled(state: ServerState, task: asyncio.Task[Any]) -> bool:
    """After an apply starts: wait briefly for its job."""
    return await settle(lambda: [] if task.done() else [task], state.answer_wait_s)
