"""The default state store: one SQLite file, for a single daemon on one machine.

Durability is the point of this module. The file is in WAL mode with
``synchronous=FULL``, so a write that has returned is on disk even if the machine
loses power right after; the pipeline acts on the dataset only after that. Every
write is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction, so a kill -9 leaves it
whole or absent.

A write asked with ``synced=False`` (``transition``; a lane's claim) is committed with
``synchronous=NORMAL`` for that one transaction: it is in the WAL file (the OS page
cache) when it returns, so a kill -9 of the daemon keeps it, but it waits for no
``fsync``. A power loss may lose it, and then only it and what followed it up to the
next synced commit: the WAL is one file written in order, and a synced commit syncs
every frame before its own. The pipeline asks this only for steps whose loss recovery
rebuilds from the server (``sync_job.py`` lists them; README, "Guarantees"); every
other write, and every step that comes before an apply or a file's move, is synced.

Cancellation (SIGTERM drains by cancelling jobs) must not tear a write either: a
write runs as its own task (``shielded.py``, shared with the PostgreSQL store), so
the transaction still commits (or rolls back) whole, and ``close()`` waits for it.
A caller cancelled during a write therefore cannot know which it was; it re-reads
the job before acting, which is what restart recovery does anyway.

One connection serves all coroutines, on a thread of its own (``sqlite_thread.py``),
and each transaction runs there whole in one trip: transactions cannot interleave,
and a reader never sees another coroutine's uncommitted step. How values map to
columns (times as microseconds, JSON details) is ``sqlite_codec``'s job.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from pathlib import Path
from typing import Self, TypeVar, Unpack

from dsmsyncd.config.state_url import MEMORY
from dsmsyncd.state import sqlite_codec as codec
from dsmsyncd.state import sqlite_lanes
from dsmsyncd.state import sqlite_uploads as uploads
from dsmsyncd.state.add_job import AddOneJob
from dsmsyncd.state.lane_methods import LaneMethods
from dsmsyncd.state.lanes import ReplicaIdentity, datasets_whose_head_may_run, head_may_run
from dsmsyncd.state.lock import StateFileLock
from dsmsyncd.state.migrations import ACTIVE_SQL, LANE_ORDER, LANE_SQL, migrate
from dsmsyncd.state.model import (
    TERMINAL_STATES,
    UPDATABLE_FIELDS,
    ChunkRecord,
    Job,
    JobEvent,
    JobState,
    JobUpdate,
    NewJob,
    UploadPlan,
    UploadProgress,
    utc_now,
)
from dsmsyncd.state.shielded import ShieldedWrites
from dsmsyncd.state.sqlite_thread import InThread, ThreadConnection
from dsmsyncd.state.store import (
    StaleTransition,
    StateStoreError,
    StoreStatus,
    UnknownJob,
)
from dsmsyncd.state.values import checked, to_json

T = TypeVar("T")
Clock = Callable[[], datetime]
Trace = Callable[[str], None]


class SqliteStateStore(AddOneJob, LaneMethods[InThread]):
    """StateStore on one SQLite file (or ``:memory:`` for tests).

    ``clock`` stamps discovered/updated/event times; ``trace`` receives every SQL
    statement in the database thread (debug logging, and tests that interrupt a write).
    ``replica``: the store is a daemon's. It takes the file's lock (state/lock.py) from
    ``open`` to ``close`` (a second daemon is refused) and records its lane leases.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = utc_now,
        trace: Trace | None = None,
        replica: ReplicaIdentity | None = None,
    ) -> None:
        self.path = str(path)
        exclusive = replica is not None and self.path != MEMORY
        self._file_lock = StateFileLock(self.path) if exclusive else None
        self._replica = replica
        self._held: set[str] = set()
        self._lane_sql = sqlite_lanes
        self._clock = clock
        self._trace = trace
        self._status = StoreStatus.UNOPENED
        self._conn: ThreadConnection | None = None
        self._writes = ShieldedWrites()

    def __repr__(self) -> str:
        return f"SqliteStateStore({self.path!r}, {self._status.name.lower()})"

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._status is not StoreStatus.UNOPENED:
            raise StateStoreError(f"{self!r} can be opened only once; build a new store")
        if sqlite3.sqlite_version_info < (3, 25):
            raise StateStoreError(f"SQLite {sqlite3.sqlite_version} is too old: 3.25+ needed")
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if self._file_lock is not None:
            self._file_lock.acquire()  # before the first byte is read: a second daemon stops here
        conn: ThreadConnection | None = None
        try:
            if self.path != MEMORY:
                # A file that cannot be opened at all fails here, before the connection's
                # thread is started.
                await asyncio.to_thread(_open_and_close, self.path)
            conn = await ThreadConnection.connect(self.path)
            if self._trace is not None:
                await conn.set_trace_callback(self._trace)
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=10000")
            await conn.run(lambda c: migrate(c, self.path, self._clock))
        except BaseException as exc:
            if conn is not None:
                await conn.close()
            if self._file_lock is not None:
                self._file_lock.release()
            if isinstance(exc, sqlite3.Error):
                raise StateStoreError(f"cannot open state database {self.path}: {exc}") from exc
            raise
        self._conn = conn
        self._status = StoreStatus.OPENED
        await self._join()

    async def close(self) -> None:
        if self._status is StoreStatus.CLOSED:
            return
        if self._status is StoreStatus.OPENED:
            await self._leave()
        self._status = StoreStatus.CLOSED
        await self._writes.drain()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
        if self._file_lock is not None:
            self._file_lock.release()

    # -- plumbing --------------------------------------------------------------------

    def _require_open(self) -> ThreadConnection:
        if self._status is not StoreStatus.OPENED or self._conn is None:
            raise StateStoreError(f"{self!r} is not open: use it as `async with store:`")
        return self._conn

    async def _read(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        return await self._require_open().execute_fetchall(sql, params)

    async def _write(self, work: Callable[[InThread], Awaitable[T]], *, synced: bool = True) -> T:
        conn = self._require_open()
        return await self._writes.run(conn.run(lambda c: _transaction(c, work, synced)))

    async def _fetch(self, conn: InThread, job_id: int) -> Job:
        rows = await conn.execute_fetchall(
            f"SELECT {codec.JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
        )
        for row in rows:
            return codec.job(row)
        raise UnknownJob(job_id)

    async def _jobs(self, where: str, params: Iterable[object] = (), tail: str = "") -> list[Job]:
        rows = await self._read(
            f"SELECT {codec.JOB_COLUMNS} FROM jobs WHERE {where} {tail}", params
        )
        return [codec.job(row) for row in rows]

    # -- writes ----------------------------------------------------------------------

    async def add_jobs(self, jobs: Sequence[NewJob]) -> list[Job | None]:
        now = codec.to_us(self._clock())

        async def work(conn: InThread) -> list[Job | None]:
            return [await self._insert_job(conn, new, now) for new in jobs]

        return await self._write(work) if jobs else []

    async def _insert_job(self, conn: InThread, new: NewJob, now: int) -> Job | None:
        cursor = await conn.execute(
            "INSERT INTO jobs (source, relative_path, identity, content_sha256, size,"
            " mtime_us, dataset, mapping_index, state, discovered_at_us, updated_at_us,"
            " routing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (source, identity) DO NOTHING",
            (
                *(new.source, new.relative_path, new.identity, new.content_sha256, new.size),
                *(codec.to_us(new.mtime), new.dataset, new.mapping_index),
                *(JobState.DISCOVERED.value, now, now),
                None if new.routing is None else to_json(new.routing),
            ),
        )
        inserted, job_id = cursor.rowcount, cursor.lastrowid
        if inserted == 0 or job_id is None:
            return None
        details = {
            "source": new.source,
            "path": new.relative_path,
            "dataset": new.dataset,
            "size": new.size,
        }
        await _append_event(conn, job_id, now, JobState.DISCOVERED, None, details)
        return await self._fetch(conn, job_id)

    async def transition(
        self,
        job_id: int,
        new_state: JobState,
        *,
        expect: JobState | AbstractSet[JobState],
        details: Mapping[str, object] | None = None,
        synced: bool = True,
        **fields: Unpack[JobUpdate],
    ) -> Job:
        expected = frozenset({expect}) if isinstance(expect, JobState) else frozenset(expect)
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown:
            raise TypeError(f"transition() got fields it cannot write: {sorted(unknown)}")
        now = self._clock()
        values: dict[str, object] = dict(fields)
        if new_state in TERMINAL_STATES and values.get("finished_at") is None:
            values["finished_at"] = now  # so the status page and find_published_hash can order
        columns = {
            codec.column(name): codec.db_value(name, value) for name, value in values.items()
        }
        event_details = {**values, **(details or {})}

        async def work(conn: InThread) -> Job:
            rows = await conn.execute_fetchall("SELECT state FROM jobs WHERE id = ?", (job_id,))
            actual = next((JobState(row[0]) for row in rows), None)
            if actual is None:
                raise UnknownJob(job_id)
            if actual not in expected:
                raise StaleTransition(job_id, new_state, expected, actual)
            await self._fence(conn, job_id, now)
            assignments = "".join(f", {column} = ?" for column in columns)
            await conn.execute(
                f"UPDATE jobs SET state = ?, updated_at_us = ?{assignments} WHERE id = ?",
                (new_state.value, codec.to_us(now), *columns.values(), job_id),
            )
            await _append_event(conn, job_id, codec.to_us(now), new_state, actual, event_details)
            return await self._fetch(conn, job_id)

        return await self._write(work, synced=synced)

    async def begin_upload(self, job_id: int, plan: UploadPlan) -> None:
        await self._write(lambda conn: uploads.begin(conn, job_id, plan))

    async def record_chunk(self, job_id: int, source_id: int, chunk: ChunkRecord) -> None:
        await self._write(lambda conn: uploads.record(conn, job_id, source_id, chunk))

    async def forget_upload(self, job_id: int) -> None:
        await self._write(lambda conn: uploads.forget(conn, job_id))

    # -- reads -----------------------------------------------------------------------

    async def upload_progress(self, job_id: int) -> UploadProgress | None:
        def read(raw: sqlite3.Connection) -> UploadProgress | None:
            # One trip, so one read of both tables: no write lands in between.
            plans = raw.execute(uploads.PLAN_SQL, (job_id,)).fetchall()
            return uploads.progress(plans, raw.execute(uploads.CHUNKS_SQL, (job_id,)).fetchall())

        return await self._require_open().call(read)

    async def get_job(self, job_id: int) -> Job:
        jobs = await self._jobs("id = ?", (job_id,))
        if not jobs:
            raise UnknownJob(job_id)
        return jobs[0]

    async def next_runnable(self, dataset: str, now: datetime) -> Job | None:
        # Only the head of the lane may run: skipping a job that is backing off would
        # publish a newer file before an older one (invariant 4, arrival order).
        checked(now)
        lane = await self._jobs(
            f"dataset = ? AND {LANE_SQL}", (dataset,), f"ORDER BY {LANE_ORDER} LIMIT 2"
        )
        return lane[0] if head_may_run(lane, now) else None

    async def unfinished_jobs(self) -> list[Job]:
        return await self._jobs(ACTIVE_SQL, (), f"ORDER BY dataset, {LANE_ORDER}")

    async def datasets_with_work(self, now: datetime) -> list[str]:
        # Each lane's first two jobs: a staged head runs only to be superseded by the
        # job behind it (``lanes.head_may_run``).
        rows = await self._read(
            f"SELECT {codec.JOB_COLUMNS} FROM ("
            " SELECT *,"
            f"  ROW_NUMBER() OVER (PARTITION BY dataset ORDER BY {LANE_ORDER}) AS place"
            f" FROM jobs WHERE {LANE_SQL})"
            f" WHERE place <= 2 ORDER BY {LANE_ORDER}"
        )
        return datasets_whose_head_may_run([codec.job(row) for row in rows], checked(now))

    async def recent_jobs(self, limit: int, dataset: str | None = None) -> list[Job]:
        where, params = ("dataset = ?", (dataset,)) if dataset is not None else ("1", ())
        return await self._jobs(
            where, (*params, limit), "ORDER BY updated_at_us DESC, id DESC LIMIT ?"
        )

    async def events(self, job_id: int) -> list[JobEvent]:
        rows = await self._read(
            "SELECT id, job_id, at_us, state, previous_state, details"
            " FROM job_events WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
        return [
            JobEvent(
                id=row["id"],
                job_id=row["job_id"],
                at=codec.from_us(row["at_us"]),
                state=JobState(row["state"]),
                previous_state=JobState(row["previous_state"]) if row["previous_state"] else None,
                details=json.loads(row["details"]),
            )
            for row in rows
        ]

    async def find_published_hash(self, dataset: str, sha256: str) -> Job | None:
        # Only the latest publication counts: content published before something else
        # is a legitimate revert when it comes back, not a duplicate.
        jobs = await self._jobs(
            "dataset = ? AND state = 'published'",
            (dataset,),
            "ORDER BY finished_at_us DESC, id DESC LIMIT 1",
        )
        if jobs and jobs[0].content_sha256 == sha256:
            return jobs[0]
        return None

    async def is_known(self, source: str, identity: str) -> bool:
        rows = await self._read(
            "SELECT 1 FROM jobs WHERE source = ? AND identity = ? LIMIT 1", (source, identity)
        )
        return bool(rows)

    async def counts_by_state(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        for row in await self._read("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            counts[JobState(row[0])] = int(row[1])
        return counts

    async def watch_work(self, wake: Callable[[], None]) -> None:
        """Nothing to hear: one daemon per SQLite file, and it wakes its own scheduler."""

    async def ping(self) -> None:
        await self._read("SELECT 1")


async def _transaction(conn: InThread, work: Callable[[InThread], Awaitable[T]], synced: bool) -> T:
    """``work`` in one ``BEGIN IMMEDIATE`` … ``COMMIT``, on the connection's thread;
    unless ``synced``, committed without an ``fsync`` (the connection is FULL again after)."""
    if not synced:
        await conn.execute("PRAGMA synchronous=NORMAL")
    try:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            result = await work(conn)
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
    finally:
        if not synced:
            await conn.execute("PRAGMA synchronous=FULL")
    return result


async def _append_event(
    conn: InThread,
    job_id: int,
    at_us: int,
    state: JobState,
    previous: JobState | None,
    details: Mapping[str, object],
) -> None:
    await conn.execute(
        "INSERT INTO job_events (job_id, at_us, state, previous_state, details)"
        " VALUES (?, ?, ?, ?, ?)",
        (job_id, at_us, state.value, previous.value if previous else None, to_json(details)),
    )


def _open_and_close(path: str) -> None:
    sqlite3.connect(path).close()
