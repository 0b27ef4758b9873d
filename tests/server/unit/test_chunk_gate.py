"""The chunk gate: chunks side by side, one send per seq at a time, a commit alone.

Every wait is on an event with a timeout guard; the order of steps is what is checked.
"""

from __future__ import annotations

import asyncio

from dsmsyncd.server.storage.chunk_gate import ChunkGates

GUARD_S = 10.0


async def _let_others_run() -> None:
    """Give every ready task a few turns of the loop: a task that could go on has then
    gone on. Ordering only (no wall-clock wait): what is checked is who could not."""
    for _ in range(10):
        await asyncio.sleep(0)


async def _hold(gates: ChunkGates, seq: int, entered: asyncio.Event, go: asyncio.Event) -> None:
    async with gates.writing(1, seq):
        entered.set()
        await go.wait()


async def test_writers_of_other_seqs_run_side_by_side_and_gates_go_when_unused() -> None:
    gates = ChunkGates()
    go = asyncio.Event()
    entered = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(_hold(gates, seq, entered[seq], go)) for seq in (0, 1)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered)), GUARD_S)
    go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), GUARD_S)
    assert len(gates) == 0


async def test_a_second_send_of_one_seq_waits_for_the_first() -> None:
    gates = ChunkGates()
    first_in, first_go, second_in = asyncio.Event(), asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(_hold(gates, 3, first_in, first_go))
    await asyncio.wait_for(first_in.wait(), GUARD_S)
    second = asyncio.create_task(_hold(gates, 3, second_in, asyncio.Event()))
    await _let_others_run()
    assert not second_in.is_set()
    first_go.set()
    await asyncio.wait_for(second_in.wait(), GUARD_S)
    second.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert len(gates) == 0


async def test_a_commit_waits_for_writers_and_holds_new_ones_back() -> None:
    gates = ChunkGates()
    writer_in, writer_go = asyncio.Event(), asyncio.Event()
    writer = asyncio.create_task(_hold(gates, 0, writer_in, writer_go))
    await asyncio.wait_for(writer_in.wait(), GUARD_S)
    steps: list[str] = []
    committed, release = asyncio.Event(), asyncio.Event()

    async def commit() -> None:
        async with gates.committing(1):
            steps.append("commit")
            committed.set()
            await release.wait()

    async def late_writer() -> None:
        async with gates.writing(1, 5):
            steps.append("late writer")

    committing = asyncio.create_task(commit())
    await _let_others_run()
    late = asyncio.create_task(late_writer())
    await _let_others_run()
    assert steps == []  # the commit waits for the writer; the late writer for the commit
    writer_go.set()
    await asyncio.wait_for(committed.wait(), GUARD_S)
    assert steps == ["commit"]
    release.set()
    await asyncio.wait_for(asyncio.gather(writer, committing, late), GUARD_S)
    assert steps == ["commit", "late writer"]
    assert len(gates) == 0


async def test_a_commit_given_up_while_waiting_lets_writers_in_again() -> None:
    gates = ChunkGates()
    writer_in, writer_go = asyncio.Event(), asyncio.Event()
    writer = asyncio.create_task(_hold(gates, 0, writer_in, writer_go))
    await asyncio.wait_for(writer_in.wait(), GUARD_S)

    async def commit() -> None:
        async with gates.committing(1):
            raise AssertionError("never reached: the writer holds the gate")

    committing = asyncio.create_task(commit())
    await _let_others_run()
    committing.cancel()
    await asyncio.gather(committing, return_exceptions=True)
    other_in = asyncio.Event()
    other_go = asyncio.Event()
    other = asyncio.create_task(_hold(gates, 1, other_in, other_go))
    await asyncio.wait_for(other_in.wait(), GUARD_S)
    writer_go.set()
    other_go.set()
    await asyncio.wait_for(asyncio.gather(writer, other), GUARD_S)
    assert len(gates) == 0
