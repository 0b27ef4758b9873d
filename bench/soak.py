"""Soak: one daemon, many minutes of server kills, connection resets and hostile files.

Everything is real and on loopback: ``dsmsyncd serve`` (a child process, killed with
SIGKILL and started again on its data dir), a fault proxy in front of it that resets
connections at random bytes (``tests/reliability/faults.py``), and ONE ``dsmsyncd run``
child process that lives the whole soak. Every few seconds a round drops a batch of
files into the drop folder: plain CSVs of random sizes, and hostile ones (empty,
header only, BOM, CRLF, Latin-1, names with spaces, newlines, unicode and dots, a FIFO,
a symlink out of the root, a directory named like a data file); and, by a seeded
draw, kills the server mid-job or lets a burst of resets loose.

At the end the driver waits for every job to end, then checks, against the server:
every row of every file that should publish is in the append dataset exactly once
(no row identifier: a second publication would double its rows); every empty file is
quarantined; nothing else ended failed. The daemon's open file descriptors and
resident memory are sampled every round; the first and last minutes are compared.

    .venv/bin/python bench/soak.py [--minutes 10] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsmsyncd.state.model import TERMINAL_STATES
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset, robot_client
from tests.reliability.appended import HEADER, csv, rows
from tests.reliability.faults import FaultProxy, fault_proxy
from tests.server.support.serve_process import (
    ServeProcess,
    serve_process,
    write_users,
)
from tests.support.local_server import ROBOT, basic_auth

DSMSYNCD = str(Path(sys.executable).with_name("dsmsyncd"))


@dataclass
class Tally:
    expected_ids: list[int] = field(default_factory=list)
    files: int = 0
    hostile: int = 0
    empty: int = 0
    server_kills: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, fds, rss)
    next_id: int = 1

    def ids(self, count: int) -> tuple[int, list[int]]:
        first = self.next_id
        self.next_id += count
        return first, list(range(first, first + count))


class Soak:
    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.tally = Tally()
        self.users = write_users(root / "users", ROBOT)
        self.data = root / "served"
        self.server: ServeProcess | None = None
        self._server_cm: contextlib.AbstractAsyncContextManager[ServeProcess] | None = None
        self.daemon: asyncio.subprocess.Process | None = None
        self.site: Site | None = None
        self.proxy: FaultProxy | None = None

    async def start_server(self) -> ServeProcess:
        self._server_cm = serve_process(self.data, "--users-file", str(self.users))
        self.server = await self._server_cm.__aenter__()
        return self.server

    async def kill_server_and_restart(self) -> None:
        assert self.server is not None
        assert self._server_cm is not None
        assert self.proxy is not None
        await self.server.kill()
        await self._server_cm.__aexit__(None, None, None)
        served = await self.start_server()
        port = served.url.rsplit(":", 1)[1]
        self.proxy.upstream_port = int(port)
        await self.proxy.down()
        await self.proxy.up()
        self.tally.server_kills += 1

    async def start_daemon(self, site: Site) -> None:
        log = self.root / "daemon.log"
        with log.open("ab") as out:
            self.daemon = await asyncio.create_subprocess_exec(
                DSMSYNCD, "run", "-c", str(site.config_path), stdout=out, stderr=out
            )

    def sample(self, began: float) -> None:
        assert self.daemon is not None
        process = psutil.Process(self.daemon.pid)
        fds = len(os.listdir(f"/proc/{self.daemon.pid}/fd"))
        self.tally.samples.append((time.monotonic() - began, fds, process.memory_info().rss))

    def drop_round(self, site: Site) -> None:
        """One batch: plain files of random sizes and one or two hostile ones."""
        rng, tally = self.rng, self.tally
        for _ in range(rng.randint(1, 2)):
            count = rng.choice([1, 10, 100, 1000, 5000, 20000])
            first, ids = tally.ids(count)
            site.drop_file(f"plain-{first}.csv", csv(first, count))
            tally.expected_ids += ids
            tally.files += 1
        for _ in range(rng.randint(0, 1)):
            self.drop_hostile(site, rng.randrange(11))

    def drop_hostile(self, site: Site, kind: int) -> None:
        tally = self.tally
        first, ids = tally.ids(3)
        tally.hostile += 1
        body = rows(first, 3)
        named = {
            0: (f"header-only-{first}.csv", HEADER, []),
            1: (f"bom-{first}.csv", b"\xef\xbb\xbf" + HEADER + body, ids),
            2: (f"crlf-{first}.csv", (HEADER + body).replace(b"\n", b"\r\n"), ids),
            3: (f"latin1-{first}.csv", HEADER + body.replace(b"row", b"r\xe9w"), ids),
            4: (f"a b {first}.csv", HEADER + body, ids),
            5: (f"new\nline {first}.csv", HEADER + body, ids),
            6: (f"ünï 😀 {first}.csv", HEADER + body, ids),
            7: (f"dots..{first}.csv", HEADER + body, ids),
        }
        if kind in named:
            name, content, published = named[kind]
            site.drop_file(name, content)
            tally.expected_ids += published
        elif kind == 8:
            site.drop_file(f"empty-{first}.csv", b"")
            tally.empty += 1
        elif kind == 9:
            os.mkfifo(site.drop / f"fifo-{first}.csv")
        else:
            outside = self.root / f"outside-{first}.csv"
            outside.write_bytes(HEADER + body)
            os.symlink(outside, site.drop / f"link-{first}.csv")
            (site.drop / f"dir-{first}.csv").mkdir()

    def job_states(self, site: Site) -> list[str]:
        with contextlib.closing(
            sqlite3.connect(f"file:{site.state_db}?mode=ro", uri=True, timeout=10)
        ) as db:
            return [str(row[0]) for row in db.execute("SELECT state FROM jobs")]


async def run(minutes: float, seed: int) -> int:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-soak-") as tmp:
        soak = Soak(Path(tmp), rng)
        served = await soak.start_server()
        async with robot_client(served.url) as client:
            ff = await publish_dataset(client, csv(0, 1))
        async with fault_proxy(served.url) as proxy:
            soak.proxy = proxy
            site = Site(Path(tmp) / "site", proxy.url)
            site.map(ff, skip_duplicates=False)
            site.limits.update(retry_delay="200ms", retry_max_delay="2s", max_concurrent_jobs=2)
            site.write_config()
            await soak.start_daemon(site)
            began = time.monotonic()
            rounds = 0
            while time.monotonic() - began < minutes * 60:
                rounds += 1
                soak.drop_round(site)
                draw = rng.random()
                await asyncio.sleep(rng.uniform(3.0, 8.0))
                if draw < 0.15:
                    await soak.kill_server_and_restart()
                elif draw < 0.55:
                    proxy.random_resets(rng, rng.randint(1, 6), 0.5, 200_000)
                soak.sample(began)
            proxy.resets = None
            settle_began = time.monotonic()
            while True:
                states = soak.job_states(site)
                if states and all(state in TERMINAL_STATES for state in states):
                    break
                if time.monotonic() - settle_began > 600:
                    print("not settled after 10 minutes:", sorted(set(states)))
                    break
                await asyncio.sleep(2)
            soak.sample(began)
            assert soak.server is not None
            async with aiohttp.ClientSession(
                headers={"Authorization": basic_auth(*ROBOT)}
            ) as session:
                problems = await check(Http(soak.server.url, session), ff, soak, states)
            assert soak.daemon is not None
            alive = soak.daemon.returncode is None
            soak.daemon.send_signal(signal.SIGTERM)
            code = await soak.daemon.wait()
            report(soak, states, rounds, seed, minutes, alive, code, problems)
            assert soak._server_cm is not None
            await soak._server_cm.__aexit__(None, None, None)
        return 1 if problems or not alive else 0


async def check(http: Http, ff: str, soak: Soak, states: list[str]) -> list[str]:
    problems: list[str] = []
    expected = [0, *soak.tally.expected_ids]
    (counted,) = await http.rows(ff, **{"$select": "count(*) AS n"})
    if int(counted["n"]) != len(expected):
        problems.append(f"{counted['n']} rows, expected {len(expected)}")
    doubled = await http.rows(
        ff, **{"$select": "id, count(*) AS n", "$group": "id", "$having": "n > 1", "$limit": "20"}
    )
    if doubled:
        problems.append(f"doubled ids: {doubled}")
    if states.count("quarantined") != soak.tally.empty:
        problems.append(f"{states.count('quarantined')} quarantined, {soak.tally.empty} empty")
    others = {s for s in states if s not in ("published", "quarantined")}
    if others:
        problems.append(f"jobs ended {sorted(others)}")
    if await http.open_revisions(ff):
        problems.append("a revision left open")
    return problems


def report(
    soak: Soak,
    states: list[str],
    rounds: int,
    seed: int,
    minutes: float,
    alive: bool,
    code: int,
    problems: list[str],
) -> None:
    t = soak.tally
    samples = t.samples
    first = [s for s in samples if s[0] <= 60] or samples[:1]
    last = [s for s in samples if s[0] >= samples[-1][0] - 60] or samples[-1:]
    log = (soak.root / "daemon.log").read_text(errors="replace")

    def med(values: list[int]) -> float:
        return statistics.median(values)

    print(f"seed {seed}, {minutes:g} min, {rounds} rounds")
    print(f"files dropped: {t.files} plain, {t.hostile} hostile ({t.empty} empty)")
    by_state = ", ".join(f"{s} {states.count(s)}" for s in sorted(set(states)))
    print(f"jobs: {len(states)} ({by_state})")
    print(f"server kill -9 and restart: {t.server_kills}")
    print(f"rows expected once: {len(t.expected_ids) + 1}")
    print(
        f"daemon fds: first minute median {med([s[1] for s in first]):g}, "
        f"last minute median {med([s[1] for s in last]):g}, max {max(s[1] for s in samples)}"
    )
    print(
        f"daemon RSS MiB: first minute median {med([s[2] for s in first]) / 2**20:.1f}, "
        f"last minute median {med([s[2] for s in last]) / 2**20:.1f}, "
        f"max {max(s[2] for s in samples) / 2**20:.1f}"
    )
    print(f"daemon alive at the end: {alive}; exit code on SIGTERM: {code}")
    print(f"daemon log: {log.count('lane ')} lane lines, {log.count('crashed')} 'crashed'")
    print("result: " + ("OK, every row exactly once" if not problems else "; ".join(problems)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    return asyncio.run(run(args.minutes, seed))


if __name__ == "__main__":
    raise SystemExit(main())
