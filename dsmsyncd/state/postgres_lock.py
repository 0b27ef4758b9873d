"""One daemon per PostgreSQL database, until replicas share the work under leases.

Two daemons on one state database would each resume the other's live jobs and
publish every file twice, exactly as two daemons on one SQLite file would
(``lock.py``). Until jobs are claimed row by row under leases, a daemon's store
takes a session-level advisory lock on a connection it keeps for nothing else; a
second daemon is refused with ``StateLocked``, naming the holder's
``application_name`` (pid and host). PostgreSQL drops the lock with the session,
so a killed daemon does not keep it; read-only users (``status``) do not take it.
"""

from __future__ import annotations

import os
import socket

import asyncpg
from asyncpg import Record

from dsmsyncd.state.lock import StateLocked

DAEMON_LOCK = int.from_bytes(b"dsmsyncD", "big")
"""The advisory lock key ("dsmsyncD" in ASCII); advisory locks are per database."""


async def take_daemon_lock(conn: asyncpg.Connection[Record], location: str) -> None:
    """Take the lock for the life of ``conn``'s session, or raise ``StateLocked``."""
    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", DAEMON_LOCK):
        return
    # A bigint key shows in pg_locks as its high and low 32 bits.
    holder = await conn.fetchval(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND l.granted"
        " AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1 LIMIT 1",
        DAEMON_LOCK >> 32,
        DAEMON_LOCK & 0xFFFFFFFF,
    )
    raise StateLocked(
        location,
        "PostgreSQL advisory lock 'dsmsyncD', one daemon per database until replicas share work",
        str(holder) if holder else None,
    )


def application_name() -> str:
    """Who holds a connection, as ``pg_stat_activity`` and a refused daemon show it."""
    return f"dsmsyncd pid {os.getpid()} on {socket.gethostname()}"[:63]
