"""One live replica per name on a PostgreSQL state database.

Replicas share the work by claiming lanes under leases in their own name
(``lanes.py``). Two live daemons under one name would each take the other's leases
for their own, and run the same lane twice. So a daemon's store takes a
session-level advisory lock keyed by its name, on a connection it keeps for nothing
else; a second daemon under that name is refused with ``ReplicaNameTaken``, naming
the holder's ``application_name`` (pid and host). PostgreSQL drops the lock with the
session, so a killed daemon does not keep it, and a daemon restarted under the same
name may take its earlier life's leases over at once. Read-only users (``status``)
take no lock.
"""

from __future__ import annotations

import hashlib
import os
import socket

import asyncpg
from asyncpg import Record

from dsmsyncd.state.store import StateStoreError


class ReplicaNameTaken(StateStoreError):
    def __init__(self, location: str, name: str, holder: str | None) -> None:
        who = holder or "another session"
        super().__init__(
            f"state database {location}: replica name {name!r} is in use by a live dsmsyncd "
            f"({who}): give each replica its own [state] replica name (the host or pod "
            "name by default), or stop that daemon first"
        )
        self.name = name
        self.holder = holder


def name_lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for ``name`` (advisory locks are per database)."""
    digest = hashlib.blake2b(b"dsmsyncd replica\0" + name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def take_replica_name(conn: asyncpg.Connection[Record], name: str, location: str) -> None:
    """Take ``name``'s lock for the life of ``conn``'s session, or raise ReplicaNameTaken."""
    key = name_lock_key(name)
    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
        return
    # A bigint key shows in pg_locks as its high and low 32 bits (as unsigned oids).
    # Advisory locks belong to a database: the same name's lock taken in another
    # database of the server (another deployment, a parallel test) is not the holder.
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    holder = await conn.fetchval(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND l.granted"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1 LIMIT 1",
        unsigned >> 32,
        unsigned & 0xFFFFFFFF,
    )
    raise ReplicaNameTaken(location, name, str(holder) if holder else None)


def application_name() -> str:
    """Who holds a connection, as ``pg_stat_activity`` and a refused daemon show it."""
    return f"dsmsyncd pid {os.getpid()} on {socket.gethostname()}"[:63]
