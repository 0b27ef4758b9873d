"""Lane leases and the replica heartbeat in SQLite: the SQL behind ``lanes.py``.

A SQLite state file has one daemon (``lock.py``), so there is one replica; its leases
are kept all the same, so that ``/status`` reads alike on both stores and a crash
leaves the same mark (a lease that ended without being given up) that tells the
restarted daemon which lanes to finish first. Every function runs inside a
``BEGIN IMMEDIATE`` transaction of ``sqlite.py``, which already serialises writers,
so no row locks are needed. Times are integer microseconds (``sqlite_codec``).
"""

from __future__ import annotations

from datetime import datetime

from dsmsyncd.state import sqlite_codec as codec
from dsmsyncd.state.lanes import ClusterView, LaneClaim, LaneLease, ReplicaRecord, claim_step
from dsmsyncd.state.migrations import LANE_ORDER, LANE_SQL
from dsmsyncd.state.model import Job
from dsmsyncd.state.sqlite_codec import from_us, to_us
from dsmsyncd.state.sqlite_thread import InThread
from dsmsyncd.state.store import LaneLost


async def join(conn: InThread, me: str, host: str, pid: int, version: str, now: datetime) -> None:
    """Record the daemon; every lease in the file ends now, since the file's lock says no
    other daemon lives: the lanes they held are finished first."""
    at = to_us(now)
    await conn.execute(
        "INSERT INTO replicas (name, host, pid, version, started_at_us, seen_at_us)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET host = excluded.host,"
        " pid = excluded.pid, version = excluded.version,"
        " started_at_us = excluded.started_at_us, seen_at_us = excluded.seen_at_us",
        (me, host, pid, version, at, at),
    )
    await conn.execute("UPDATE lane_leases SET expires_at_us = ? WHERE expires_at_us > ?", (at, at))


async def leave(conn: InThread, me: str, now: datetime, forget_after: datetime) -> None:
    at = to_us(now)
    await conn.execute(
        "UPDATE lane_leases SET expires_at_us = ? WHERE replica = ? AND expires_at_us > ?",
        (at, me, at),
    )
    await conn.execute(
        "DELETE FROM replicas WHERE name = ? OR seen_at_us < ?", (me, to_us(forget_after))
    )


async def claim(
    conn: InThread, dataset: str, me: str, held: bool, now: datetime, until: datetime
) -> LaneClaim | None:
    rows = list(
        await conn.execute_fetchall(
            "SELECT replica, expires_at_us FROM lane_leases WHERE dataset = ?", (dataset,)
        )
    )
    holder = str(rows[0][0]) if rows else None
    step = claim_step(holder, from_us(rows[0][1]) if rows else None, me, held, now)
    if step == "busy":
        return None
    at, end = to_us(now), to_us(until)
    if step == "insert":
        await conn.execute(
            "INSERT INTO lane_leases (dataset, replica, acquired_at_us, renewed_at_us,"
            " expires_at_us) VALUES (?, ?, ?, ?, ?)",
            (dataset, me, at, at, end),
        )
        return LaneClaim(dataset)
    if step == "renew":
        await conn.execute(
            "UPDATE lane_leases SET renewed_at_us = ?, expires_at_us = ? WHERE dataset = ?",
            (at, end, dataset),
        )
        return LaneClaim(dataset)
    await conn.execute(
        "UPDATE lane_leases SET replica = ?, job_id = NULL, acquired_at_us = ?,"
        " renewed_at_us = ?, expires_at_us = ? WHERE dataset = ?",
        (me, at, at, end, dataset),
    )
    return LaneClaim(dataset, taken_from=holder)


async def check_held(conn: InThread, dataset: str, me: str, now: datetime) -> None:
    rows = list(
        await conn.execute_fetchall(
            "SELECT replica, expires_at_us FROM lane_leases WHERE dataset = ?", (dataset,)
        )
    )
    holder = str(rows[0][0]) if rows else None
    if holder != me or from_us(rows[0][1]) <= now:
        raise LaneLost(dataset, None if holder == me else holder)


async def heads(conn: InThread, dataset: str) -> list[Job]:
    rows = await conn.execute_fetchall(
        f"SELECT {codec.JOB_COLUMNS} FROM jobs WHERE dataset = ? AND {LANE_SQL}"
        f" ORDER BY {LANE_ORDER} LIMIT 2",
        (dataset,),
    )
    return [codec.job(row) for row in rows]


async def lock_head(conn: InThread, job_id: int) -> bool:
    """Nothing to skip: ``BEGIN IMMEDIATE`` already excludes every other writer."""
    return True


async def name_job(conn: InThread, dataset: str, job_id: int | None) -> None:
    await conn.execute("UPDATE lane_leases SET job_id = ? WHERE dataset = ?", (job_id, dataset))


async def fence(conn: InThread, job_id: int, me: str, now: datetime) -> None:
    rows = list(
        await conn.execute_fetchall(
            "SELECT dataset, replica FROM lane_leases"
            " WHERE job_id = ? AND replica <> ? AND expires_at_us > ?",
            (job_id, me, to_us(now)),
        )
    )
    if rows:
        raise LaneLost(str(rows[0][0]), str(rows[0][1]), job_id)


async def release(conn: InThread, dataset: str, me: str, finished: bool, now: datetime) -> None:
    if finished:
        await conn.execute(
            "DELETE FROM lane_leases WHERE dataset = ? AND replica = ?", (dataset, me)
        )
    else:
        await conn.execute(
            "UPDATE lane_leases SET expires_at_us = ? WHERE dataset = ? AND replica = ?",
            (to_us(now), dataset, me),
        )


async def renew(conn: InThread, me: str, now: datetime, until: datetime) -> set[str]:
    at = to_us(now)
    await conn.execute("UPDATE replicas SET seen_at_us = ? WHERE name = ?", (at, me))
    rows = await conn.execute_fetchall(
        "UPDATE lane_leases SET renewed_at_us = ?, expires_at_us = ?"
        " WHERE replica = ? AND expires_at_us > ? RETURNING dataset",
        (at, to_us(until), me, at),
    )
    return {str(row[0]) for row in rows}


async def orphans(conn: InThread, now: datetime) -> list[str]:
    rows = await conn.execute_fetchall(
        "SELECT dataset FROM lane_leases WHERE expires_at_us <= ? ORDER BY expires_at_us",
        (to_us(now),),
    )
    return [str(row[0]) for row in rows]


async def cluster(conn: InThread) -> ClusterView:
    replicas = await conn.execute_fetchall(
        "SELECT name, host, pid, version, started_at_us, seen_at_us FROM replicas ORDER BY name"
    )
    leases = await conn.execute_fetchall(
        "SELECT dataset, replica, job_id, acquired_at_us, renewed_at_us, expires_at_us"
        " FROM lane_leases ORDER BY replica, dataset"
    )
    return ClusterView(
        replicas=tuple(
            ReplicaRecord(r[0], r[1], r[2], r[3], from_us(r[4]), from_us(r[5])) for r in replicas
        ),
        leases=tuple(
            LaneLease(r[0], r[1], r[2], from_us(r[3]), from_us(r[4]), from_us(r[5])) for r in leases
        ),
    )
