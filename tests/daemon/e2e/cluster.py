"""Replicas of one site on one PostgreSQL database, and a workload of many small files.

Every replica is a ``dsmsyncd run`` process with its own config file (its ``[state]
replica`` name, maybe its own way to the server) and log; all share the site's drop
folder, its bucket and one ``[state] url``. The workload spreads files over append
datasets (no row identifier, so a file published twice shows as doubled ids); each
file's rows carry ids that grow with the file's place in its dataset's arrival order,
so the dataset's rows read in ``:id`` (append) order must be the ids in order.

The state is read back with plain SQL on PostgreSQL (``ClusterState``), not with the
daemon's store, so that one cannot hide the other's mistake. Shared by the replica
tests and ``bench/scale.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import TERMINAL_STATES
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import DaemonProcess
from tests.daemon.e2e.site import Site
from tests.reliability.appended import SEED_IDS, append_dataset, csv

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

BUCKET_PREFIX = "in/"
TERMINAL = sorted(state.value for state in TERMINAL_STATES)


@dataclass(frozen=True)
class Workload:
    """``files`` files of ``rows`` rows each, spread evenly over ``datasets`` datasets."""

    datasets: int
    files: int
    rows: int = 2

    @property
    def per_dataset(self) -> int:
        return self.files // self.datasets

    def ids(self, dataset: int, place: int) -> list[int]:
        """The ids of the ``place``-th file of dataset number ``dataset``: unique in the
        workload, and growing with the file's place (the dataset's arrival order)."""
        first = 1 + (dataset * self.per_dataset + place) * self.rows
        return list(range(first, first + self.rows))

    def name(self, dataset: int, place: int) -> str:
        return f"d{dataset:02d}-f{place:03d}.csv"


async def make_datasets(client: DsmapiClient, count: int) -> list[str]:
    """``count`` append datasets, each published with the seed row (id 0)."""
    return list(await asyncio.gather(*(append_dataset(client) for _ in range(count))))


def map_workload(site: Site, fourfours: Sequence[str], *, bucket_from: int) -> None:
    """Dataset number ``d`` takes ``dNN-*.csv`` from the drop folder, or from the source
    ``bucket`` when ``d >= bucket_from``."""
    for number, fourfour in enumerate(fourfours):
        pattern = f"d{number:02d}-*.csv"
        if number < bucket_from:
            site.map(fourfour, pattern, action="update")
        else:
            site.map(
                fourfour,
                pattern,
                action="update",
                source="bucket",
                archive_dir="archive/",
                quarantine_dir="quarantine/",
            )


async def drop_workload(
    site: Site,
    work: Workload,
    *,
    bucket_from: int,
    s3: S3Client | None = None,
    bucket: str = "",
    mtime: float = 1_700_000_000.0,
) -> None:
    """Every file of ``work``, each dataset's in arrival order: folder files get mtimes a
    second apart; bucket objects are put one after another (same or later second, and
    names in order)."""
    for place in range(work.per_dataset):
        for number in range(work.datasets):
            body = csv(work.ids(number, place)[0], work.rows)
            if number < bucket_from:
                site.drop_file(work.name(number, place), body, mtime=mtime + place)
            else:
                assert s3 is not None
                key = BUCKET_PREFIX + work.name(number, place)
                await s3.put_object(Bucket=bucket, Key=key, Body=body)


def replica_config(
    site: Site, name: str, postgres_url: str, lease_timeout: float, server_url: str | None = None
) -> Path:
    state = {"url": postgres_url, "replica": name, "lease_timeout": f"{lease_timeout:g}s"}
    return site.write_config(
        site.root / f"{name}.toml", state=state, server_url=server_url or site.server_url
    )


def replica(
    site: Site,
    name: str,
    postgres_url: str,
    lease_timeout: float,
    server_url: str | None = None,
) -> DaemonProcess:
    """A replica named ``name`` (not started): its config file and its own log."""
    config = replica_config(site, name, postgres_url, lease_timeout, server_url)
    return DaemonProcess(site, site.root / f"{name}.log", config)


@dataclass(frozen=True)
class ClusterState:
    """Plain SQL reads of the replicas' PostgreSQL state database."""

    url: str

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        conn = await asyncpg.connect(self.url)
        try:
            return [dict(row) for row in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    async def unfinished(self, among: Sequence[int] | None = None) -> int:
        """How many jobs (of ``among``, or all) are not terminal."""
        rows = await self.fetch(
            "SELECT count(*) AS n FROM jobs WHERE NOT state = ANY($1::text[])"
            " AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))",
            TERMINAL,
            None if among is None else list(among),
        )
        return int(rows[0]["n"])

    async def states(self) -> dict[str, int]:
        rows = await self.fetch("SELECT state, count(*) AS n FROM jobs GROUP BY state")
        return {str(row["state"]): int(row["n"]) for row in rows}

    async def job(self, where: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(f"SELECT * FROM jobs WHERE {where}", *args)
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    async def leases(self, replica: str) -> list[dict[str, Any]]:
        return await self.fetch(
            "SELECT dataset, job_id FROM lane_leases WHERE replica = $1 ORDER BY dataset", replica
        )

    async def all_done(self, files: int) -> bool:
        """Every one of ``files`` jobs recorded and terminal."""
        states = await self.states()
        return sum(states.values()) == files and await self.unfinished() == 0


async def assert_published_in_order(http: Http, work: Workload, fourfours: Sequence[str]) -> None:
    """Each dataset holds the seed and every file's rows exactly once, appended in the
    files' arrival order (its rows read in ``:id`` order, the server's row order), and
    no revision is left open."""
    for number, fourfour in enumerate(fourfours):
        expected = SEED_IDS + [
            i for place in range(work.per_dataset) for i in work.ids(number, place)
        ]
        rows = await http.rows(fourfour, **{"$select": "id", "$order": ":id", "$limit": "50000"})
        assert [int(row["id"]) for row in rows] == expected, f"dataset {number} {fourfour}"
        assert await http.open_revisions(fourfour) == [], f"dataset {number} {fourfour}"
