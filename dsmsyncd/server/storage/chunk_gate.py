"""Who may touch a source's one upload file at a time: chunks side by side, a commit alone.

Chunks are written at their byte offsets into one shared file (``storage/chunks.py``),
so writes at distinct offsets need no lock. Three things do: two sends of the *same*
``seq_num`` (a client retrying a chunk whose first send is still arriving) must not
interleave their bytes, so they take turns; the completeness record (a short journal)
is appended by one writer at a time; and a commit, which checks that record and renames
the file into place, waits for the chunks still being written and keeps new ones out
until it is done, so no late byte lands in a file the parser is already reading.

Gates exist only while someone uses them: a server with ten thousand finished sources
holds none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ChunkGate:
    """One source's turn-taking: writers counted, one send per seq, the record's lock."""

    def __init__(self) -> None:
        self.record_lock = asyncio.Lock()
        self._seq_locks: dict[int, asyncio.Lock] = {}
        self._changed = asyncio.Condition()
        self._writers = 0
        self._committing = False
        self.users = 0  # writers and commits holding or waiting for this gate

    async def enter_writer(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._committing)
            self._writers += 1

    async def leave_writer(self) -> None:
        async with self._changed:
            self._writers -= 1
            self._changed.notify_all()

    async def enter_commit(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._committing)
            self._committing = True
            try:
                await self._changed.wait_for(lambda: self._writers == 0)
            except BaseException:  # the commit's client went away while it waited
                self._committing = False
                self._changed.notify_all()
                raise

    async def leave_commit(self) -> None:
        async with self._changed:
            self._committing = False
            self._changed.notify_all()

    def seq_lock(self, seq_num: int) -> asyncio.Lock:
        return self._seq_locks.setdefault(seq_num, asyncio.Lock())


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
        """Hold while one chunk is written: beside other chunks, after a running commit,
        after an earlier send of the same ``seq_num``."""
        gate = self._take(source_id)
        try:
            await gate.enter_writer()
            try:
                async with gate.seq_lock(seq_num):
                    yield gate
            finally:
                await gate.leave_writer()
        finally:
            self._release(source_id, gate)

    @asynccontextmanager
    async def committing(self, source_id: int) -> AsyncIterator[ChunkGate]:
        """Hold while a commit checks and renames: no chunk is being written meanwhile."""
        gate = self._take(source_id)
        try:
            await gate.enter_commit()
            try:
                yield gate
            finally:
                await gate.leave_commit()
        finally:
            self._release(source_id, gate)

    def __len__(self) -> int:
        return len(self._gates)
