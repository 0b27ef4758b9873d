"""Who may touch a source's one upload file at a time: chunks side by side, a commit alone.

Chunks are written at their byte offsets into one shared file (``storage/chunks.py``),
so writes at distinct offsets need no lock, and two sends of the same chunk (a client
retrying a chunk it got no answer for) write the same bytes to the same place: they
may run side by side too, each answered as the first would be. Two things need turns:
the completeness record (a short journal) is appended by one writer at a time, and a
commit, which checks that record and renames the file into place, keeps new chunks out
and waits for those still being written, so no late byte lands in a file the parser
is already reading. A send of a chunk that is already received is not waited for: it
is stopped (its first send may hang on a connection that is dead but not yet closed,
and the client has since sent the chunk again and been answered).

Gates exist only while someone uses them: a server with ten thousand finished sources
holds none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ChunkGate:
    """One source's turn-taking: the chunk sends in flight, the record's lock, the commit.

    The counters change without an ``await`` (events, not a condition's lock), so a
    send stopped or cancelled anywhere still leaves them right.
    """

    def __init__(self) -> None:
        self.record_lock = asyncio.Lock()
        self._sends: dict[int, set[asyncio.Task[object]]] = {}
        self._writers = 0
        self._no_writers = asyncio.Event()
        self._no_writers.set()
        self._open = asyncio.Event()  # no commit running
        self._open.set()
        self.users = 0  # writers and commits holding or waiting for this gate

    async def enter_writer(self, seq_num: int) -> asyncio.Task[object]:
        while not self._open.is_set():
            await self._open.wait()
        me = asyncio.current_task()
        assert me is not None
        self._sends.setdefault(seq_num, set()).add(me)
        self._writers += 1
        self._no_writers.clear()
        return me

    def leave_writer(self, seq_num: int, me: asyncio.Task[object]) -> None:
        sends = self._sends.get(seq_num, set())
        sends.discard(me)
        if not sends:
            self._sends.pop(seq_num, None)
        self._writers -= 1
        if self._writers == 0:
            self._no_writers.set()

    async def close(self) -> None:
        """Keep new chunk sends out (they wait for :meth:`reopen`)."""
        while not self._open.is_set():
            await self._open.wait()
        self._open.clear()

    def reopen(self) -> None:
        self._open.set()

    def stop_sends_of(self, seq_nums: set[int]) -> int:
        """Stop the sends in flight of chunks already received; how many were stopped."""
        stopped = [t for seq in seq_nums & self._sends.keys() for t in self._sends[seq]]
        for task in stopped:
            task.cancel()
        return len(stopped)

    async def writers_done(self) -> None:
        await self._no_writers.wait()


class ChunkGates:
    """The gates of the sources being uploaded, by source id."""

    def __init__(self) -> None:
        self._gates: dict[int, ChunkGate] = {}

    def _take(self, source_id: int) -> ChunkGate:
        gate = self._gates.setdefault(source_id, ChunkGate())
        gate.users += 1
        return gate

    def _release(self, source_id: int, gate: ChunkGate) -> None:
        gate.users -= 1
        if gate.users == 0 and self._gates.get(source_id) is gate:
            del self._gates[source_id]

    @asynccontextmanager
    async def writing(self, source_id: int, seq_num: int) -> AsyncIterator[ChunkGate]:
        """Hold while one chunk is written: beside other chunks, after a running commit."""
        gate = self._take(source_id)
        try:
            me = await gate.enter_writer(seq_num)
            try:
                yield gate
            finally:
                gate.leave_writer(seq_num, me)
        finally:
            self._release(source_id, gate)

    @asynccontextmanager
    async def committing(self, source_id: int) -> AsyncIterator[ChunkGate]:
        """Hold while a commit checks and renames; no new chunk send starts meanwhile.

        The commit then stops the sends of chunks already received
        (:meth:`ChunkGate.stop_sends_of`) and waits for the rest
        (:meth:`ChunkGate.writers_done`) before it touches the file.
        """
        gate = self._take(source_id)
        try:
            await gate.close()
            try:
                yield gate
            finally:
                gate.reopen()
        finally:
            self._release(source_id, gate)

    def __len__(self) -> int:
        return len(self._gates)
