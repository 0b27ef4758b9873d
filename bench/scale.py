"""Scale: one workload with 1, 2 and 3 replicas on PostgreSQL, SQLite beside it, and failover.

Everything is real and on loopback: ``dsmsyncd serve`` (a child process), PostgreSQL
(a fresh database per run, from ``DSMSYNCD_TEST_POSTGRES_URL`` or 127.0.0.1:5432), and
``dsmsyncd run`` replicas as child processes sharing one drop folder and one
``[state] url``, each with ``max_concurrent_jobs`` lanes. A run starts its replicas,
drops ``--files`` small files (two rows each) over ``--datasets`` append datasets,
and times the drop to the last job terminal in the state database: files per
second, and the CPU time the replicas and the server spent meanwhile, per file (less
noisy than wall time on a shared machine). Each run then checks every dataset's row
count (a file published twice would double its rows) and that no revision is open.

* throughput: 1, 2 and 3 replicas on PostgreSQL, and 1 on SQLite (same workload):
  the overhead of PostgreSQL over SQLite for one daemon;
* failover: 2 replicas; once replica ``a`` holds lanes with jobs in them, it is
  killed with SIGKILL. Measured from the kill: to the first of its lanes held by
  ``b`` (the takeover), and to the last of its jobs terminal.

On one machine the replicas share its cores with the server and PostgreSQL, so the
1/2/3 numbers show coordination overhead and how far more lanes help a server on the
same cores, not the throughput of several machines.

    .venv/bin/python bench/scale.py [--files 600] [--datasets 30] [--repeat 3]
        [--lease-timeout 5] [--no-throughput | --no-failover]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.daemon.e2e.cluster import (
    ClusterState,
    Workload,
    drop_workload,
    make_datasets,
    map_workload,
    replica,
)
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import DaemonProcess, wait_until
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import robot_client
from tests.daemon.support.state_backends import admin_url, create_database, drop_database
from tests.reliability.appended import SEED_IDS
from tests.server.support.serve_process import serve_process, write_users
from tests.support.local_server import ROBOT, basic_auth

LANES = 4  # max_concurrent_jobs of every replica
POLL_S = 0.05


@dataclass(frozen=True)
class Rate:
    files_per_s: float
    daemon_cpu_ms: float  # per file, all replicas together
    server_cpu_ms: float  # per file


def cpu_seconds(pids: list[int]) -> float:
    times = [psutil.Process(pid).cpu_times() for pid in pids]
    return float(sum(t.user + t.system for t in times))


@dataclass
class Bench:
    root: Path
    work: Workload
    lease_timeout: float
    runs: int = 0
    server_url: str = ""  # the run's server
    server_pid: int = 0
    state: ClusterState | None = None  # the run's PostgreSQL database, read with SQL

    @contextlib.asynccontextmanager
    async def fresh_server(self) -> AsyncIterator[None]:
        """A server of the run's own: one that kept every earlier run's datasets and
        revisions would make the later runs pay for them."""
        self.runs += 1
        users = write_users(self.root / f"users-{self.runs}", ROBOT)
        data = self.root / f"served-{self.runs}"
        async with serve_process(data, "--users-file", str(users)) as served:
            self.server_url, self.server_pid = served.url, served.proc.pid
            yield

    async def throughput(self, replicas: int, backend: str) -> Rate:
        async with self.fresh_server():
            return await self._throughput(replicas, backend)

    async def failover(self) -> tuple[float, float, int]:
        async with self.fresh_server():
            return await self._failover()

    async def site(self) -> tuple[Site, list[str]]:
        """A fresh site (folders, datasets mapped from its drop folder)."""
        site = Site(self.root / f"run-{self.runs}", self.server_url)
        site.min_age = "0s"
        site.limits = {"max_concurrent_jobs": LANES}
        async with robot_client(self.server_url) as client:
            fourfours = await make_datasets(client, self.work.datasets)
        map_workload(site, fourfours, bucket_from=self.work.datasets)
        return site, fourfours

    async def _throughput(self, replicas: int, backend: str) -> Rate:
        """Files per second, drop to the last job terminal, and CPU per file meanwhile."""
        site, fourfours = await self.site()
        async with self.database(backend, site) as (daemons, done):
            pids = []
            for daemon in daemons[:replicas]:
                await daemon.start()
                assert daemon.process is not None
                pids.append(daemon.process.pid)
            cpu = cpu_seconds(pids), cpu_seconds([self.server_pid])
            began = time.monotonic()
            await drop_workload(site, self.work, bucket_from=self.work.datasets)
            await wait_until(done, within=1800, what="every job terminal")
            took = time.monotonic() - began
            daemon_cpu = cpu_seconds(pids) - cpu[0]
            server_cpu = cpu_seconds([self.server_pid]) - cpu[1]
        await self.check(fourfours)
        files = self.work.files
        return Rate(files / took, 1000 * daemon_cpu / files, 1000 * server_cpu / files)

    async def _failover(self) -> tuple[float, float, int]:
        """Kill ``a`` of two replicas while it holds lanes: seconds to the first takeover,
        to its last job finished; how many jobs it held."""
        site, fourfours = await self.site()
        async with self.database("postgres", site) as (daemons, done):
            a, b = daemons[0], daemons[1]
            await asyncio.gather(a.start(), b.start())
            await drop_workload(site, self.work, bucket_from=self.work.datasets)
            state = self.state
            assert state is not None
            leases = await wait_until(lambda: busy_leases(state, "a"), within=120, what="a busy")
            a.kill()
            killed = time.monotonic()
            await a.wait(10)
            datasets = sorted({str(row["dataset"]) for row in leases})
            jobs = [int(row["job_id"]) for row in leases]
            await wait_until(lambda: taken(state, datasets), within=600, what="a takeover")
            takeover = time.monotonic() - killed
            await wait_until(lambda: finished(state, jobs), within=600, what="a's jobs done")
            finish = time.monotonic() - killed
            await wait_until(done, within=1800, what="every job terminal")
        await self.check(fourfours)
        return takeover, finish, len(jobs)

    def database(self, backend: str, site: Site) -> Replicas:
        return Replicas(self, backend, site)

    async def check(self, fourfours: list[str]) -> None:
        """Every dataset holds its seed and each file's rows once; no revision open."""
        expected = len(SEED_IDS) + self.work.per_dataset * self.work.rows
        async with aiohttp.ClientSession(headers={"Authorization": basic_auth(*ROBOT)}) as s:
            http = Http(self.server_url, s)
            for fourfour in fourfours:
                assert await http.count(fourfour) == expected, fourfour
                assert await http.open_revisions(fourfour) == [], fourfour


class Replicas:
    """Three replicas (not started) on a fresh database; ``done`` says all jobs ended."""

    def __init__(self, bench: Bench, backend: str, site: Site) -> None:
        self.bench, self.backend, self.site = bench, backend, site
        self.url = ""
        self.daemons: list[DaemonProcess] = []

    async def __aenter__(self) -> tuple[list[DaemonProcess], Callable[[], Awaitable[bool]]]:
        files = self.bench.work.files
        if self.backend == "sqlite":
            self.site.write_config()
            self.daemons = [DaemonProcess(self.site, self.site.root / "sqlite.log")]

            async def sqlite_done() -> bool:
                jobs = self.site.jobs()
                return len(jobs) == files and all(job["state"] == "published" for job in jobs)

            return self.daemons, sqlite_done
        self.url = await create_database(admin_url())
        state = self.bench.state = ClusterState(self.url)
        lease = self.bench.lease_timeout
        self.daemons = [replica(self.site, name, self.url, lease) for name in ("a", "b", "c")]
        return self.daemons, lambda: state.all_done(files)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(daemon.stop() for daemon in self.daemons))
        if self.url:
            await drop_database(admin_url(), self.url)


async def busy_leases(state: ClusterState, name: str) -> list[dict[str, Any]] | None:
    """``name``'s leases once it holds lanes with a job in them."""
    leases = [row for row in await state.leases(name) if row["job_id"] is not None]
    return leases or None


async def taken(state: ClusterState, datasets: list[str]) -> bool:
    """Some lane ``a`` held is ``a``'s no more (held by another replica, or done)."""
    rows = await state.fetch(
        "SELECT count(*) AS n FROM lane_leases WHERE replica = 'a' AND dataset = ANY($1::text[])",
        datasets,
    )
    return int(rows[0]["n"]) < len(datasets)


async def finished(state: ClusterState, jobs: list[int]) -> bool:
    return await state.unfinished(jobs) == 0


async def run(args: argparse.Namespace) -> None:
    # SIGTERM (a timeout, a CI job cancelled) cancels the run like Ctrl-C does: each
    # context unwinds, so the replicas, the server and the run's database are stopped
    # and dropped. The default action would end this process alone and leave them running.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    work = Workload(datasets=args.datasets, files=args.files)
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-scale-") as tmp:
        bench = Bench(Path(tmp), work, args.lease_timeout)
        rates: dict[str, list[Rate]] = {}
        for repeat in range(args.repeat if args.throughput else 0):
            # The order rotates per repeat, so that a drift of the machine's load hits
            # every case alike.
            for label, replicas, backend in CASES[repeat:] + CASES[:repeat]:
                rate = await bench.throughput(replicas, backend)
                rates.setdefault(label, []).append(rate)
                print(
                    f"run {repeat + 1} {label}: {rate.files_per_s:.1f} files/s, CPU per "
                    f"file: replicas {rate.daemon_cpu_ms:.0f} ms, server "
                    f"{rate.server_cpu_ms:.0f} ms",
                    flush=True,
                )
        failovers = []
        for repeat in range(args.repeat if args.failover else 0):
            failovers.append(await bench.failover())
            takeover, finish, jobs = failovers[-1]
            print(
                f"run {repeat + 1} failover: takeover {takeover:.2f}s, "
                f"{jobs} job(s) done {finish:.2f}s after the kill",
                flush=True,
            )
    report(work, args, rates, failovers)


CASES = (
    ("1 replica, SQLite", 1, "sqlite"),
    ("1 replica, PostgreSQL", 1, "postgres"),
    ("2 replicas, PostgreSQL", 2, "postgres"),
    ("3 replicas, PostgreSQL", 3, "postgres"),
)
CASES_ORDER = {label: n for n, (label, _r, _b) in enumerate(CASES)}


def report(
    work: Workload,
    args: argparse.Namespace,
    rates: dict[str, list[Rate]],
    failovers: list[tuple[float, float, int]],
) -> None:
    print(f"\n{work.files} files x {work.rows} rows over {work.datasets} datasets, {LANES} lanes")
    print(f"per replica, drop folder; medians of {args.repeat}\n")
    if rates:
        print(
            "| setup | files/s | replicas' CPU ms/file | server CPU ms/file | files/s, each run |"
        )
        print("|---|---|---|---|---|")
        for label, values in sorted(rates.items(), key=lambda item: CASES_ORDER[item[0]]):
            runs = ", ".join(f"{v.files_per_s:.1f}" for v in values)
            print(
                f"| {label} | {statistics.median(v.files_per_s for v in values):.1f} "
                f"| {statistics.median(v.daemon_cpu_ms for v in values):.0f} "
                f"| {statistics.median(v.server_cpu_ms for v in values):.0f} | {runs} |"
            )
        sqlite = statistics.median(v.files_per_s for v in rates[CASES[0][0]])
        postgres = statistics.median(v.files_per_s for v in rates[CASES[1][0]])
        print(f"\nPostgreSQL over SQLite, one replica: {sqlite / postgres:.2f}x the time per file")
    if failovers:
        takeovers = [t for t, _f, _j in failovers]
        finishes = [f for _t, f, _j in failovers]
        print(
            f"failover, lease_timeout {args.lease_timeout:g}s: takeover median "
            f"{statistics.median(takeovers):.2f}s ({', '.join(f'{t:.2f}' for t in takeovers)}),"
            f" killed replica's jobs done median {statistics.median(finishes):.2f}s "
            f"({', '.join(f'{f:.2f}' for f in finishes)})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--datasets", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lease-timeout", type=float, default=5.0)
    parser.add_argument("--no-throughput", dest="throughput", action="store_false")
    parser.add_argument("--no-failover", dest="failover", action="store_false")
    try:
        asyncio.run(run(parser.parse_args()))
    except asyncio.CancelledError:
        print("stopped by SIGTERM: replicas, server and database stopped", file=sys.stderr)
        return 128 + signal.SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
