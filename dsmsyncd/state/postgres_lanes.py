"""Lane leases and replica heartbeats in PostgreSQL: the SQL behind ``lanes.py``.

Every function runs inside a transaction of ``postgres.py``. A lease row is read
``FOR UPDATE`` before it changes hands, so of two replicas claiming one free or ended
lease, the second waits for the first's commit and then finds it held. The head job
of a lane is claimed with ``FOR UPDATE SKIP LOCKED`` by id (never "the first unlocked
row", which could skip the head and break arrival order): a head some other
transaction is moving is simply not claimed this time.

``WORK_CHANNEL`` carries a notification (``pg_notify``, delivered at commit) whenever
a job is recorded or a lane is given up, so idle replicas look for work at once
instead of polling tightly.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from asyncpg import Record

from dsmsyncd.state.lanes import ClusterView, LaneClaim, LaneLease, ReplicaRecord, claim_step
from dsmsyncd.state.migrations import LANE_SQL
from dsmsyncd.state.model import Job
from dsmsyncd.state.postgres_codec import JOB_COLUMNS, LANE_ORDER, job_from_row
from dsmsyncd.state.store import LaneLost

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = PoolConnectionProxy[Record]

WORK_CHANNEL = "dsmsyncd_work"


async def notify_work(conn: Conn, what: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", WORK_CHANNEL, what)


async def join(conn: Conn, me: str, host: str, pid: int, version: str, now: datetime) -> None:
    """Record this replica; leases left by its earlier life end now (they are orphans)."""
    await conn.execute(
        "INSERT INTO replicas (name, host, pid, version, started_at, seen_at)"
        " VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO UPDATE SET host = $2,"
        " pid = $3, version = $4, started_at = $5, seen_at = $5",
        me,
        host,
        pid,
        version,
        now,
    )
    await conn.execute(
        "UPDATE lane_leases SET expires_at = $2 WHERE replica = $1 AND expires_at > $2", me, now
    )


async def leave(conn: Conn, me: str, now: datetime, forget_after: datetime) -> None:
    """Forget this replica (and replicas silent since ``forget_after``); a lease it still
    has ends now, for the next holder to finish."""
    await conn.execute(
        "UPDATE lane_leases SET expires_at = $2 WHERE replica = $1 AND expires_at > $2", me, now
    )
    await conn.execute("DELETE FROM replicas WHERE name = $1 OR seen_at < $2", me, forget_after)
    await notify_work(conn, "left")


async def claim(
    conn: Conn, dataset: str, me: str, held: bool, now: datetime, until: datetime
) -> LaneClaim | None:
    row = await conn.fetchrow(
        "SELECT replica, expires_at FROM lane_leases WHERE dataset = $1 FOR UPDATE", dataset
    )
    holder = None if row is None else str(row[0])
    step = claim_step(holder, None if row is None else row[1], me, held, now)
    if step == "busy":
        return None
    if step == "insert":
        inserted = await conn.fetchval(
            "INSERT INTO lane_leases (dataset, replica, acquired_at, renewed_at, expires_at)"
            " VALUES ($1, $2, $3, $3, $4) ON CONFLICT (dataset) DO NOTHING RETURNING 1",
            dataset,
            me,
            now,
            until,
        )
        return LaneClaim(dataset) if inserted else None  # None: another replica was first
    if step == "renew":
        await conn.execute(
            "UPDATE lane_leases SET renewed_at = $2, expires_at = $3 WHERE dataset = $1",
            dataset,
            now,
            until,
        )
        return LaneClaim(dataset)
    await conn.execute(
        "UPDATE lane_leases SET replica = $2, job_id = NULL, acquired_at = $3,"
        " renewed_at = $3, expires_at = $4 WHERE dataset = $1",
        dataset,
        me,
        now,
        until,
    )
    return LaneClaim(dataset, taken_from=holder)


async def check_held(conn: Conn, dataset: str, me: str, now: datetime) -> None:
    """Raise LaneLost unless this replica holds the dataset's lease, live, locked."""
    row = await conn.fetchrow(
        "SELECT replica, expires_at FROM lane_leases WHERE dataset = $1 FOR UPDATE", dataset
    )
    holder = None if row is None else str(row[0])
    if row is None or holder != me or row[1] <= now:
        raise LaneLost(dataset, None if holder == me else holder)


async def lock_head(conn: Conn, job_id: int) -> bool:
    """Claim the lane's head row, unless another transaction is moving it right now."""
    got = await conn.fetchval("SELECT id FROM jobs WHERE id = $1 FOR UPDATE SKIP LOCKED", job_id)
    return got is not None


async def heads(conn: Conn, dataset: str) -> list[Job]:
    rows = await conn.fetch(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE dataset = $1 AND {LANE_SQL}"
        f" ORDER BY {LANE_ORDER} LIMIT 2",
        dataset,
    )
    return [job_from_row(row) for row in rows]


async def name_job(conn: Conn, dataset: str, job_id: int | None) -> None:
    await conn.execute("UPDATE lane_leases SET job_id = $2 WHERE dataset = $1", dataset, job_id)


async def fence(conn: Conn, job_id: int, me: str, now: datetime) -> None:
    """Raise LaneLost when another replica runs this job under a live lease."""
    row = await conn.fetchrow(
        "SELECT dataset, replica FROM lane_leases"
        " WHERE job_id = $1 AND replica <> $2 AND expires_at > $3",
        job_id,
        me,
        now,
    )
    if row is not None:
        raise LaneLost(str(row[0]), str(row[1]), job_id)


async def release(conn: Conn, dataset: str, me: str, finished: bool, now: datetime) -> None:
    if finished:
        await conn.execute(
            "DELETE FROM lane_leases WHERE dataset = $1 AND replica = $2", dataset, me
        )
    else:
        await conn.execute(
            "UPDATE lane_leases SET expires_at = $3 WHERE dataset = $1 AND replica = $2",
            dataset,
            me,
            now,
        )
    await notify_work(conn, "released")


async def renew(conn: Conn, me: str, now: datetime, until: datetime) -> set[str]:
    await conn.execute("UPDATE replicas SET seen_at = $2 WHERE name = $1", me, now)
    rows = await conn.fetch(
        "UPDATE lane_leases SET renewed_at = $2, expires_at = $3"
        " WHERE replica = $1 AND expires_at > $2 RETURNING dataset",
        me,
        now,
        until,
    )
    return {str(row[0]) for row in rows}


async def orphans(conn: Conn, now: datetime) -> list[str]:
    rows = await conn.fetch(
        "SELECT dataset FROM lane_leases WHERE expires_at <= $1 ORDER BY expires_at", now
    )
    return [str(row[0]) for row in rows]


async def cluster(conn: Conn) -> ClusterView:
    replicas = await conn.fetch(
        "SELECT name, host, pid, version, started_at, seen_at FROM replicas ORDER BY name"
    )
    leases = await conn.fetch(
        "SELECT dataset, replica, job_id, acquired_at, renewed_at, expires_at"
        " FROM lane_leases ORDER BY replica, dataset"
    )
    return ClusterView(
        replicas=tuple(ReplicaRecord(*row) for row in replicas),
        leases=tuple(LaneLease(*row) for row in leases),
    )
