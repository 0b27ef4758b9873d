"""The chunk gate: chunk sends side by side, a commit alone, stale sends stopped.

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


async def test_sends_of_any_seqs_run_side_by_side_and_gates_go_when_unused() -> None:
    gates = ChunkGates()
    go = asyncio.Event()
    entered = [asyncio.Event() for _ in range(3)]
    seqs = [0, 1, 1]  # two sends of chunk 1 at once: a retry while the first still runs
    pairs = zip(seqs, entered, strict=True)
    tasks = [asyncio.create_task(_hold(gates, s, e, go)) for s, e in pairs]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered)), GUARD_S)
    go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), GUARD_S)
    assert len(gates) == 0


async def test_a_commit_holds_new_sends_back_until_it_is_done() -> None:
    gates = ChunkGates()
    steps: list[str] = []
    committed, release = asyncio.Event(), asyncio.Event()

    async def commit() -> None:
        async with gates.committing(1) as gate:
            await gate.writers_done()
            steps.append("commit")
            committed.set()
            await release.wait()

    async def late_send() -> None:
        async with gates.writing(1, 5):
            steps.append("late send")

    committing = asyncio.create_task(commit())
    await asyncio.wait_for(committed.wait(), GUARD_S)
    late = asyncio.create_task(late_send())
    await _let_others_run()
    assert steps == ["commit"]
    release.set()
    await asyncio.wait_for(asyncio.gather(committing, late), GUARD_S)
    assert steps == ["commit", "late send"]
    assert len(gates) == 0


async def test_a_commit_stops_sends_of_received_chunks_and_waits_for_the_others() -> None:
    gates = ChunkGates()
    stale_in, pending_in, pending_go = asyncio.Event(), asyncio.Event(), asyncio.Event()
    stale = asyncio.create_task(_hold(gates, 0, stale_in, asyncio.Event()))  # hangs
    pending = asyncio.create_task(_hold(gates, 1, pending_in, pending_go))
    await asyncio.wait_for(asyncio.gather(stale_in.wait(), pending_in.wait()), GUARD_S)
    done = asyncio.Event()

    async def commit() -> None:
        async with gates.committing(1) as gate:
            assert gate.stop_sends_of({0}) == 1  # chunk 0 is received; chunk 1 is not
            await gate.writers_done()
            done.set()

    committing = asyncio.create_task(commit())
    await _let_others_run()
    assert stale.cancelled()
    assert not done.is_set()  # chunk 1's send is still arriving
    pending_go.set()
    await asyncio.wait_for(asyncio.gather(committing, pending), GUARD_S)
    assert done.is_set()
    assert len(gates) == 0


async def test_a_commit_given_up_while_waiting_lets_sends_in_again() -> None:
    gates = ChunkGates()
    writer_in, writer_go = asyncio.Event(), asyncio.Event()
    writer = asyncio.create_task(_hold(gates, 0, writer_in, writer_go))
    await asyncio.wait_for(writer_in.wait(), GUARD_S)

    async def commit() -> None:
        async with gates.committing(1) as gate:
            await gate.writers_done()
            raise AssertionError("never reached: the send holds the gate")

    committing = asyncio.create_task(commit())
    await _let_others_run()
    committing.cancel()
    await asyncio.gather(committing, return_exceptions=True)
    other_in, other_go = asyncio.Event(), asyncio.Event()
    other = asyncio.create_task(_hold(gates, 1, other_in, other_go))
    await asyncio.wait_for(other_in.wait(), GUARD_S)
    writer_go.set()
    other_go.set()
    await asyncio.wait_for(asyncio.gather(writer, other), GUARD_S)
    assert len(gates) == 0
