"""The PostgreSQL state store: the state of daemons on several machines, in one database.

Same interface and meaning as the SQLite store (``sqlite.py``): every write is one
transaction, committed before the call returns, and runs as its own task awaited
through ``asyncio.shield``, so that a cancelled caller cannot tear it and ``close()``
waits for it. Connections come from a small asyncpg pool, so a slow read does not
queue the writes of other coroutines behind it the way SQLite's one connection must.

Compare-and-set keeps its meaning across processes: ``transition`` reads the job's
state ``FOR UPDATE`` (the row stays locked until commit), so of two replicas moving
the same job from the same state, the second finds the new state and gets
``StaleTransition``. ``add_job`` inserts ``ON CONFLICT DO NOTHING`` on the unique
``(source, identity)``, so a file discovered by two replicas is one job.

Several daemons (replicas) share one database: each claims dataset lanes under
leases (``lane_methods.py``, ``postgres_lanes.py``), and a daemon's store holds its
replica name's lock (``postgres_lock.py``) on a connection of its own, so that two
live replicas never work under one name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TYPE_CHECKING, Self, TypeVar, Unpack

import asyncpg
from asyncpg import Record
from asyncpg.pool import Pool, PoolConnectionProxy

from dsmsyncd.config.redact import redact_text
from dsmsyncd.config.state_url import url_has_password
from dsmsyncd.state import postgres_lanes as lanes_sql
from dsmsyncd.state import postgres_uploads as uploads
from dsmsyncd.state.add_job import AddOneJob
from dsmsyncd.state.lane_methods import LaneMethods
from dsmsyncd.state.lanes import ReplicaIdentity, datasets_whose_head_may_run, head_may_run
from dsmsyncd.state.migrations import ACTIVE_SQL, LANE_SQL
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
from dsmsyncd.state.postgres_codec import JOB_COLUMNS, LANE_ORDER, job_from_row
from dsmsyncd.state.postgres_lock import application_name, take_replica_name
from dsmsyncd.state.postgres_migrations import migrate
from dsmsyncd.state.shielded import ShieldedWrites
from dsmsyncd.state.store import StaleTransition, StateStoreError, StoreStatus, UnknownJob
from dsmsyncd.state.values import checked, checked_field, to_json

T = TypeVar("T")
if TYPE_CHECKING:  # asyncpg's classes are generic to the type checker only
    Conn = PoolConnectionProxy[Record]
Clock = Callable[[], datetime]

# Connections never open at once by one store: writes, reads, the migration.
_POOL_SIZE = 4
# Failures that mean "the database cannot be reached or used", as opposed to bugs.
_UNAVAILABLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class PostgresStateStore(AddOneJob, LaneMethods["Conn"]):
    """StateStore on a PostgreSQL database named by a libpq-style URL.

    ``password`` is used when the URL carries none (``[state] password`` or
    ``password_file``). ``server_settings`` are session settings for every connection
    (tests put each store in its own ``search_path``).
    """

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        clock: Clock = utc_now,
        replica: ReplicaIdentity | None = None,
        server_settings: Mapping[str, str] | None = None,
    ) -> None:
        self.location = redact_text(url)
        self._url = url
        self._password = None if url_has_password(url) else password
        self._clock = clock
        self._replica = replica
        self._held: set[str] = set()
        self._lane_sql = lanes_sql
        self._settings = {"application_name": application_name(), **(server_settings or {})}
        self._status = StoreStatus.UNOPENED
        self._pool: Pool[Record] | None = None
        self._lock_conn: asyncpg.Connection[Record] | None = None
        self._writes = ShieldedWrites()

    def __repr__(self) -> str:
        return f"PostgresStateStore({self.location!r}, {self._status.name.lower()})"

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._status is not StoreStatus.UNOPENED:
            raise StateStoreError(f"{self!r} can be opened only once; build a new store")
        self._status = StoreStatus.OPENED  # close() now cleans up whatever open() made
        try:
            if self._replica is not None:
                self._lock_conn = await self._connect()
                await take_replica_name(self._lock_conn, self._replica.name, self.location)
            self._pool = await asyncpg.create_pool(
                self._url,
                password=self._password,
                min_size=1,
                max_size=_POOL_SIZE,
                server_settings=self._settings,
            )
            async with self._pool.acquire() as conn:
                await migrate(conn, self.location, self._clock)
            await self._join()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, _UNAVAILABLE):
                raise StateStoreError(
                    f"cannot open state database {self.location}: {redact_text(str(exc))}"
                ) from exc
            raise

    async def close(self) -> None:
        if self._status is StoreStatus.CLOSED:
            return
        if self._pool is not None:
            with contextlib.suppress(*_UNAVAILABLE):  # the leases end on their own then
                await self._leave()
        self._status = StoreStatus.CLOSED
        await self._writes.drain()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        lock_conn, self._lock_conn = self._lock_conn, None
        if lock_conn is not None:
            await lock_conn.close()  # ends the session: the replica's name is free again

    async def _connect(self) -> asyncpg.Connection[Record]:
        return await asyncpg.connect(
            self._url, password=self._password, server_settings=self._settings
        )

    # -- plumbing --------------------------------------------------------------------

    def _require_open(self) -> Pool[Record]:
        if self._status is not StoreStatus.OPENED or self._pool is None:
            raise StateStoreError(f"{self!r} is not open: use it as `async with store:`")
        return self._pool

    async def _write(self, work: Callable[[Conn], Awaitable[T]], *, synced: bool = True) -> T:
        """Every commit waits for the server's flush, ``synced`` or not: a store may
        always sync (``StateStore.transition``), and this one was not measured without."""
        return await self._writes.run(self._transaction(self._require_open(), work))

    @staticmethod
    async def _transaction(pool: Pool[Record], work: Callable[[Conn], Awaitable[T]]) -> T:
        async with pool.acquire() as conn, conn.transaction():
            return await work(conn)

    async def _jobs(self, where: str, *params: object, tail: str = "") -> list[Job]:
        rows = await self._require_open().fetch(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where} {tail}", *params
        )
        return [job_from_row(row) for row in rows]

    # -- writes ----------------------------------------------------------------------

    async def add_jobs(self, jobs: Sequence[NewJob]) -> list[Job | None]:
        now = checked(self._clock())

        async def work(conn: Conn) -> list[Job | None]:
            added = [await _insert_job(conn, new, now) for new in jobs]
            for dataset in dict.fromkeys(job.dataset for job in added if job is not None):
                await lanes_sql.notify_work(conn, dataset)
            return added

        return await self._write(work) if jobs else []

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
        now = checked(self._clock())
        values: dict[str, object] = dict(fields)
        if new_state in TERMINAL_STATES and values.get("finished_at") is None:
            values["finished_at"] = now  # so the status page and find_published_hash can order
        for name, value in values.items():
            checked_field(name, value)
        event_details = {**values, **(details or {})}
        assignments = "".join(f", {name} = ${n}" for n, name in enumerate(values, start=3))

        async def work(conn: Conn) -> Job:
            # FOR UPDATE: the row stays locked to commit, so a concurrent compare-and-set
            # waits for this one and then sees its result.
            found = await conn.fetchval("SELECT state FROM jobs WHERE id = $1 FOR UPDATE", job_id)
            if found is None:
                raise UnknownJob(job_id)
            actual = JobState(found)
            if actual not in expected:
                raise StaleTransition(job_id, new_state, expected, actual)
            await self._fence(conn, job_id, now)
            row = await conn.fetchrow(
                f"UPDATE jobs SET state = $1, updated_at = $2{assignments}"
                f" WHERE id = ${len(values) + 3} RETURNING {JOB_COLUMNS}",
                new_state.value,
                now,
                *values.values(),
                job_id,
            )
            assert row is not None  # locked above: it cannot have gone
            await _append_event(conn, job_id, now, new_state, actual, event_details)
            return job_from_row(row)

        return await self._write(work)

    async def begin_upload(self, job_id: int, plan: UploadPlan) -> None:
        await self._write(lambda conn: uploads.begin(conn, job_id, plan))

    async def record_chunk(self, job_id: int, source_id: int, chunk: ChunkRecord) -> None:
        await self._write(lambda conn: uploads.record(conn, job_id, source_id, chunk))

    async def forget_upload(self, job_id: int) -> None:
        await self._write(lambda conn: uploads.forget(conn, job_id))

    # -- reads -----------------------------------------------------------------------

    async def upload_progress(self, job_id: int) -> UploadProgress | None:
        async with self._require_open().acquire() as conn:
            return await uploads.progress(conn, job_id)

    async def get_job(self, job_id: int) -> Job:
        jobs = await self._jobs("id = $1", job_id)
        if not jobs:
            raise UnknownJob(job_id)
        return jobs[0]

    async def next_runnable(self, dataset: str, now: datetime) -> Job | None:
        # Only the head of the lane may run (invariant 4, arrival order): see sqlite.py.
        checked(now)
        lane = await self._jobs(
            f"dataset = $1 AND {LANE_SQL}", dataset, tail=f"ORDER BY {LANE_ORDER} LIMIT 2"
        )
        return lane[0] if head_may_run(lane, now) else None

    async def unfinished_jobs(self) -> list[Job]:
        return await self._jobs(ACTIVE_SQL, tail=f"ORDER BY dataset, {LANE_ORDER}")

    async def datasets_with_work(self, now: datetime) -> list[str]:
        # Each lane's first two jobs: see sqlite.py.
        rows = await self._require_open().fetch(
            f"SELECT {JOB_COLUMNS} FROM ("
            " SELECT jobs.*,"
            f"  ROW_NUMBER() OVER (PARTITION BY dataset ORDER BY {LANE_ORDER}) AS place"
            f" FROM jobs WHERE {LANE_SQL}) AS fronts"
            f" WHERE place <= 2 ORDER BY {LANE_ORDER}"
        )
        return datasets_whose_head_may_run([job_from_row(row) for row in rows], checked(now))

    async def recent_jobs(self, limit: int, dataset: str | None = None) -> list[Job]:
        order = "ORDER BY updated_at DESC, id DESC LIMIT"
        if dataset is None:
            return await self._jobs("TRUE", limit, tail=f"{order} $1")
        return await self._jobs("dataset = $1", dataset, limit, tail=f"{order} $2")

    async def events(self, job_id: int) -> list[JobEvent]:
        rows = await self._require_open().fetch(
            "SELECT id, job_id, at, state, previous_state, details::text AS details"
            " FROM job_events WHERE job_id = $1 ORDER BY id",
            job_id,
        )
        return [
            JobEvent(
                id=row["id"],
                job_id=row["job_id"],
                at=row["at"],
                state=JobState(row["state"]),
                previous_state=JobState(row["previous_state"]) if row["previous_state"] else None,
                details=json.loads(row["details"]),
            )
            for row in rows
        ]

    async def find_published_hash(self, dataset: str, sha256: str) -> Job | None:
        # Only the latest publication counts (a revert is not a duplicate): see sqlite.py.
        jobs = await self._jobs(
            "dataset = $1 AND state = 'published'",
            dataset,
            tail="ORDER BY finished_at DESC, id DESC LIMIT 1",
        )
        if jobs and jobs[0].content_sha256 == sha256:
            return jobs[0]
        return None

    async def is_known(self, source: str, identity: str) -> bool:
        found = await self._require_open().fetchval(
            "SELECT 1 FROM jobs WHERE source = $1 AND identity = $2 LIMIT 1", source, identity
        )
        return found is not None

    async def counts_by_state(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        rows = await self._require_open().fetch("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        for row in rows:
            counts[JobState(row[0])] = int(row[1])
        return counts

    async def watch_work(self, wake: Callable[[], None]) -> None:
        """LISTEN on a connection of its own until it breaks (then StateStoreError, and the
        daemon's supervisor listens again after a back-off) or the caller is cancelled."""
        self._require_open()
        conn = await self._connect()
        broken = asyncio.Event()
        conn.add_termination_listener(lambda _conn: broken.set())
        try:
            await conn.add_listener(lanes_sql.WORK_CHANNEL, lambda *_args: wake())
            await broken.wait()
        finally:
            await conn.close()
        raise StateStoreError(f"the notification connection to {self.location} was lost")

    async def ping(self) -> None:
        await self._require_open().fetchval("SELECT 1")


async def _append_event(
    conn: Conn,
    job_id: int,
    at: datetime,
    state: JobState,
    previous: JobState | None,
    details: Mapping[str, object],
) -> None:
    await conn.execute(
        "INSERT INTO job_events (job_id, at, state, previous_state, details)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)",
        job_id,
        at,
        state.value,
        previous.value if previous else None,
        to_json(details),
    )


async def _insert_job(conn: Conn, new: NewJob, now: datetime) -> Job | None:
    row = await conn.fetchrow(
        "INSERT INTO jobs (source, relative_path, identity, content_sha256, size,"
        " mtime, dataset, mapping_index, state, discovered_at, updated_at, routing)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)"
        f" ON CONFLICT (source, identity) DO NOTHING RETURNING {JOB_COLUMNS}",
        *(new.source, new.relative_path, new.identity, new.content_sha256, new.size),
        *(checked(new.mtime), new.dataset, new.mapping_index),
        *(JobState.DISCOVERED.value, now, now),
        None if new.routing is None else to_json(new.routing),
    )
    if row is None:
        return None
    job = job_from_row(row)
    details = {"source": new.source, "path": new.relative_path, "dataset": new.dataset}
    await _append_event(conn, job.id, now, JobState.DISCOVERED, None, {**details, "size": new.size})
    return job
