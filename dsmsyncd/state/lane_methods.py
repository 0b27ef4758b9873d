"""The lane and replica methods of the ``StateStore`` protocol, once for both stores.

The rules (who may claim a lane, what a claim names, when a lease is lost) are the
same on SQLite and PostgreSQL; only the SQL differs (``sqlite_lanes.py``,
``postgres_lanes.py``). A store mixes ``LaneMethods`` in, passing the SQL module and
its own transaction runner, so a rule lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from dsmsyncd import __version__
from dsmsyncd.state.lanes import (
    ClusterView,
    LaneClaim,
    ReplicaIdentity,
    head_may_run,
    this_process,
)
from dsmsyncd.state.model import Job
from dsmsyncd.state.store import StateStoreError
from dsmsyncd.state.values import checked

C = TypeVar("C", contravariant=True)
CT = TypeVar("CT")
T = TypeVar("T")

# A replica silent this long is forgotten from the cluster view when another leaves.
FORGET_REPLICAS_AFTER = timedelta(days=1)


class LaneSql(Protocol[C]):
    """What a store's lane SQL module provides; every call runs in a write transaction."""

    async def join(
        self, conn: C, me: str, host: str, pid: int, version: str, now: datetime
    ) -> None: ...
    async def leave(self, conn: C, me: str, now: datetime, forget_after: datetime) -> None: ...
    async def claim(
        self, conn: C, dataset: str, me: str, held: bool, now: datetime, until: datetime
    ) -> LaneClaim | None: ...
    async def check_held(self, conn: C, dataset: str, me: str, now: datetime) -> None: ...
    async def heads(self, conn: C, dataset: str) -> list[Job]:
        """The lane's first two jobs: the head, and who waits behind it (``head_may_run``)."""
        ...

    async def lock_head(self, conn: C, job_id: int) -> bool: ...
    async def name_job(self, conn: C, dataset: str, job_id: int | None) -> None: ...
    async def fence(self, conn: C, job_id: int, me: str, now: datetime) -> None: ...
    async def release(
        self, conn: C, dataset: str, me: str, finished: bool, now: datetime
    ) -> None: ...
    async def renew(self, conn: C, me: str, now: datetime, until: datetime) -> set[str]: ...
    async def orphans(self, conn: C, now: datetime) -> list[str]: ...
    async def cluster(self, conn: C) -> ClusterView: ...


class LaneMethods(Generic[CT]):
    """Mixed into a store that sets ``_replica``, ``_held``, ``_clock``, ``_lane_sql``
    and provides ``_write``."""

    _replica: ReplicaIdentity | None
    _held: set[str]
    _clock: Callable[[], datetime]
    _lane_sql: LaneSql[CT]

    if TYPE_CHECKING:  # provided by the store this is mixed into

        async def _write(self, work: Callable[[CT], Awaitable[T]], *, synced: bool = True) -> T: ...

    @property
    def replica(self) -> ReplicaIdentity | None:
        return self._replica

    def _me(self) -> ReplicaIdentity:
        if self._replica is None:
            raise StateStoreError("only a daemon's store (opened with a replica) holds lanes")
        return self._replica

    async def _join(self) -> None:
        """At open: this replica is recorded, and its earlier life's leases end."""
        if self._replica is not None:
            me, now, sql = self._replica.name, checked(self._clock()), self._lane_sql
            host, pid = this_process()
            await self._write(lambda conn: sql.join(conn, me, host, pid, __version__, now))

    async def _leave(self) -> None:
        """At close: the replica is forgotten; a lease it still has ends for the next holder."""
        if self._replica is not None:
            me, now, sql = self._replica.name, checked(self._clock()), self._lane_sql
            forget = now - FORGET_REPLICAS_AFTER
            await self._write(lambda conn: sql.leave(conn, me, now, forget))
            self._held.clear()

    async def claim_lane(self, dataset: str, now: datetime) -> LaneClaim | None:
        me, sql = self._me(), self._lane_sql
        held = dataset in self._held
        until = checked(now) + me.lease
        claim = await self._write(lambda conn: sql.claim(conn, dataset, me.name, held, now, until))
        if claim is not None:
            self._held.add(dataset)
        return claim

    async def claim_next(self, dataset: str, now: datetime) -> Job | None:
        me, sql = self._me().name, self._lane_sql
        checked(now)

        async def work(conn: CT) -> Job | None:
            await sql.check_held(conn, dataset, me, now)
            lane = await sql.heads(conn, dataset)
            if not head_may_run(lane, now) or not await sql.lock_head(conn, lane[0].id):
                await sql.name_job(conn, dataset, None)
                return None
            await sql.name_job(conn, dataset, lane[0].id)
            return lane[0]

        # Unsynced: a lease naming its job is rebuilt, not trusted, after a restart (the
        # replica's earlier leases end at ``_join``), and the job's first step is synced.
        return await self._write(work, synced=False)

    async def release_lane(self, dataset: str, *, finished: bool) -> None:
        me, sql, now = self._me().name, self._lane_sql, checked(self._clock())
        self._held.discard(dataset)
        await self._write(lambda conn: sql.release(conn, dataset, me, finished, now))

    async def renew_lanes(self, now: datetime) -> set[str]:
        me, sql = self._me(), self._lane_sql
        until = checked(now) + me.lease
        before = set(self._held)
        kept = await self._write(lambda conn: sql.renew(conn, me.name, now, until))
        # Forget only what was held before the renewal: a lane claimed while it ran is
        # not in what it kept, and is held all the same.
        self._held -= before - kept
        return kept

    async def orphaned_lanes(self, now: datetime) -> list[str]:
        sql = self._lane_sql
        checked(now)
        return await self._write(lambda conn: sql.orphans(conn, now))

    async def cluster(self) -> ClusterView:
        sql = self._lane_sql
        return await self._write(sql.cluster)

    async def _fence(self, conn: CT, job_id: int, now: datetime) -> None:
        """In a transition: refuse to move a job another live replica runs."""
        if self._replica is not None:
            await self._lane_sql.fence(conn, job_id, self._replica.name, now)
