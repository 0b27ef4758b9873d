"""Many small files: 10,000 files of ~1 KB over 100 datasets through ONE daemon.

Everything is real and on loopback: ``dsmsyncd serve`` (a child process), 100 datasets
published on it with one seed row each, and ONE ``dsmsyncd run`` child process with the
default limits (``max_concurrent_jobs = 4``) and the default source timings
(``min_age = 2s``, ``poll_interval = 30s``). The daemon is started on an empty drop
folder; then the files are written (``NAME.part`` and a rename, as a careful writer
does) into ``dNNN/`` sub-folders, one per dataset, round robin.

Measured:

- files per second: from the first file written to the last job published (the
  state store, read-only, every 0.5 s); and when the last file was recorded as a job
  (discovery and queueing alone; ``min_age`` included);
- the daemon's peak RSS (``/proc/PID/status`` VmHWM, the kernel's own peak) and its RSS
  and open file descriptors (``/proc/PID/fd``) before the drop, after the last job, and
  after an idle minute;
- the CPU of that daemon idle for ``--idle-seconds`` with the 10,000 jobs in its store
  (``/proc/PID/stat`` utime + stime);
- the CPU of a fresh daemon idle for ``--idle-seconds`` watching a tree of
  ``--idle-files`` files (100 per directory) that no mapping takes, measured once its
  first scan is over (its periodic rescans every ``poll_interval`` count).

``--max-concurrent-jobs N`` runs the busy daemon with another limit (to weigh the
default). The lanes' gaps (a dataset's next job waiting while its lane claims it) and
the state changes recorded per job come from the state store too.

``--py-spy PATH`` records the daemon's busy phase with py-spy (collapsed stacks into
PATH), ``--server-py-spy PATH`` the server's (one stack per thread: its event loop is
``MainThread``); ``bench/profile_top.py PATH`` prints the
top of one. The CPU seconds per file of the daemon and of the server over the busy
phase are printed too (``/proc``), steadier than the rate on a shared machine, and by
tenth of the run (sampled with the jobs' count): whether a file costs more once many
are synced. ``--spy-tenths`` records the first and the last tenth only, into
``PATH.first`` and ``PATH.last``, to compare them.

``--code DIR`` runs the server and the daemon from another checkout (e.g. ``git
archive main`` unpacked), for before/after numbers from one bench; ``--daemon-path
DIR`` runs only the busy daemon from DIR (``PYTHONPATH``), the server and this bench
staying this tree's: a before/after of the daemon alone; ``--server-path DIR`` runs
only the server from DIR.

    .venv/bin/python bench/many_files.py [--files 10000] [--datasets 100]
        [--idle-files 100000] [--idle-seconds 60] [--py-spy /tmp/many.txt]
        [--server-py-spy /tmp/many-server.txt] [--spy-tenths] [--code DIR] [--server-path DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsmsyncd.state.model import TERMINAL_STATES
from tests.daemon.e2e.processes import DaemonProcess
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import count_rows, publish_dataset, robot_client
from tests.reliability.appended import csv
from tests.server.support.serve_process import serve_with_users
from tests.support.local_server import ROBOT

ROWS_PER_FILE = 70  # ~1 KB with the header
DEFAULT_SOURCE = {"min_age": "2s", "poll_interval": "30s"}
DEFAULT_LIMITS = {"max_concurrent_jobs": 4}
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# py-spy beside this Python (pip-installed in the venv) if there, else from PATH.
PY_SPY = next((str(p) for p in [Path(sys.executable).with_name("py-spy")] if p.exists()), "py-spy")


@dataclass
class Proc:
    """What /proc says of one process."""

    pid: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, fds, rss)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def rss_mb(self) -> float:
        return self.status_kb("VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        return self.status_kb("VmHWM") / 1024

    def cpu_s(self, thread: str = "") -> float:
        """CPU seconds of the process, or of one of its threads (``/task/TID``)."""
        stat = Path(f"/proc/{self.pid}{thread}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS_PER_S

    def main_thread_cpu_s(self) -> float:
        """The main thread's: the server's event loop (DuckDB runs in other threads)."""
        return self.cpu_s(f"/task/{self.pid}")

    def sample(self, began: float) -> None:
        self.samples.append((time.monotonic() - began, self.fds(), self.status_kb("VmRSS")))

    async def idle_cpu(self, seconds: float) -> float:
        """Share of one core used over ``seconds`` of wall time."""
        cpu, wall = self.cpu_s(), time.monotonic()
        await asyncio.sleep(seconds)
        return (self.cpu_s() - cpu) / (time.monotonic() - wall)


@dataclass
class CpuTrace:
    """The daemon's and the server's CPU seconds each time the finished jobs were
    counted: CPU per file by tenth of the run."""

    # (done, daemon, server, server's event loop)
    marks: list[tuple[int, float, float, float]] = field(default_factory=list)

    def by_tenth_ms(self, files: int) -> list[list[float]]:
        """CPU milliseconds per file in each tenth (daemon, server, server's event
        loop), from the first count at or past each tenth's end."""
        tenth = max(files // 10, 1)
        points = [self.marks[0]]
        for k in range(1, 11):
            points.append(next((m for m in self.marks if m[0] >= k * tenth), self.marks[-1]))
        columns: list[list[float]] = [[], [], []]
        for (n0, *cpu0), (n1, *cpu1) in itertools.pairwise(points):
            for column, a, b in zip(columns, cpu0, cpu1, strict=True):
                column.append(round((b - a) * 1000 / max(n1 - n0, 1), 1))
        return columns


def query(site: Site, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one read of the daemon's state store (read-only, beside the live daemon)."""
    with contextlib.closing(
        sqlite3.connect(f"file:{site.state_db}?mode=ro", uri=True, timeout=10)
    ) as db:
        return db.execute(sql).fetchall()


def last_discovered_at(site: Site) -> float:
    """Wall-clock seconds at which the last job was recorded (the store's own clock)."""
    ((at_us,),) = query(site, "SELECT max(discovered_at_us) FROM jobs")
    return int(at_us) / 1e6


def states(site: Site) -> dict[str, int]:
    if not site.state_db.exists():
        return {}
    rows = query(site, "SELECT state, count(*) FROM jobs GROUP BY state")
    return {str(state): int(n) for state, n in rows}


def step_medians_ms(site: Site) -> dict[str, float]:
    """Median milliseconds a job spent in each state it passed (its history's events),
    and from its first step to its last event (``(whole job)``)."""
    rows = query(
        site,
        "SELECT state, at_us, lead(at_us) OVER (PARTITION BY job_id ORDER BY id) FROM job_events",
    )
    spans = {"(whole job)": [(last - first) / 1000 for first, last in first_last(site)]}
    for state, at_us, next_us in rows:
        if next_us is not None:
            spans.setdefault(str(state), []).append((int(next_us) - int(at_us)) / 1000)
    return {state: round(statistics.median(ms), 1) for state, ms in spans.items()}


def first_last(site: Site) -> list[tuple[int, int]]:
    """Each job's first step after discovery and its last event, in µs."""
    rows = query(
        site,
        "SELECT min(at_us) FILTER (WHERE state <> 'discovered'), max(at_us) "
        "FROM job_events GROUP BY job_id",
    )
    return [(int(a), int(b)) for a, b in rows if a is not None]


def lane_gaps_ms(site: Site) -> dict[str, float]:
    """Milliseconds a dataset's lane spent between one job's last event and the next
    job's first step, where the next job was waiting already (claim, scheduler and
    state writes between jobs): median and 90th percentile."""
    rows = query(
        site,
        "SELECT j.dataset, j.discovered_at_us,"
        " min(e.at_us) FILTER (WHERE e.state <> 'discovered'), max(e.at_us)"
        " FROM jobs j JOIN job_events e ON e.job_id = j.id GROUP BY j.id ORDER BY j.id",
    )
    gaps: list[float] = []
    last_end: dict[str, int] = {}
    for dataset, discovered, first, end in rows:
        before = last_end.get(dataset)
        if before is not None and first is not None and int(discovered) <= before:
            gaps.append((int(first) - before) / 1000)
        last_end[dataset] = int(end)
    if not gaps:
        return {}
    deciles = statistics.quantiles(gaps, n=10)
    return {"median": round(statistics.median(gaps), 1), "p90": round(deciles[-1], 1)}


def events_per_job(site: Site) -> float:
    """State changes recorded per job (each one a transaction of the state store)."""
    ((events, jobs),) = query(site, "SELECT count(*), count(DISTINCT job_id) FROM job_events")
    return round(int(events) / max(int(jobs), 1), 2)


def rate_by_tenth(site: Site, began_wall: float) -> list[float]:
    """Files per second in each tenth of the run (by the jobs' finish times): whether
    the rate holds as the server's catalogs grow."""
    ends = [int(r[0]) / 1e6 for r in query(site, "SELECT finished_at_us FROM jobs ORDER BY 1")]
    tenth = max(len(ends) // 10, 1)
    marks = [began_wall, *ends[tenth - 1 :: tenth]]
    return [round(tenth / (b - a), 1) for a, b in itertools.pairwise(marks)]


async def seed_datasets(url: str, count: int) -> list[str]:
    async with robot_client(url) as client:
        fourfours: list[str] = []
        for start in range(0, count, 10):
            batch = [publish_dataset(client, csv(0, 1)) for _ in range(min(10, count - start))]
            fourfours += await asyncio.gather(*batch)
        return fourfours


def drop_files(site: Site, files: int, datasets: int) -> None:
    for n in range(files):
        first = 1 + n * ROWS_PER_FILE
        site.drop_file(f"d{n % datasets:03}/f{n:05}.csv", csv(first, ROWS_PER_FILE))


async def busy_phase(
    args: argparse.Namespace, root: Path, url: str, server_pid: int
) -> dict[str, object]:
    fourfours = await seed_datasets(url, args.datasets)
    site = Site(root / "busy", url)
    for index, fourfour in enumerate(fourfours):
        site.map(fourfour, match=f"d{index:03}/*.csv", skip_duplicates=False)
    site.source = {"url": f"file://{site.drop}", **DEFAULT_SOURCE}
    site.limits.update(DEFAULT_LIMITS, max_concurrent_jobs=args.max_concurrent_jobs)
    site.write_config()
    env = {"PYTHONPATH": args.daemon_path} if args.daemon_path else None
    daemon = DaemonProcess(site, root / "busy-daemon.log", env=env)
    await daemon.start()
    assert daemon.process is not None
    proc = Proc(daemon.process.pid)
    await asyncio.sleep(2)  # let start-up settle (first scan of the empty folder)
    before = (proc.fds(), proc.rss_mb())
    server = Proc(server_pid)
    spies = Spies(args, proc.pid, server_pid)
    spies.start(".first" if args.spy_tenths else "")
    cpu_before = (proc.cpu_s(), server.cpu_s())
    trace = CpuTrace([(0, *cpu_before, server.main_thread_cpu_s())])
    began, began_wall = time.monotonic(), time.time()
    await asyncio.to_thread(drop_files, site, args.files, args.datasets)
    dropped_s = time.monotonic() - began
    while True:
        proc.sample(began)
        counts = states(site)
        done = sum(n for s, n in counts.items() if s in TERMINAL_STATES)
        trace.marks.append((done, proc.cpu_s(), server.cpu_s(), server.main_thread_cpu_s()))
        if args.spy_tenths and done >= args.files - args.files // 10:
            spies.start(".last")
        elif args.spy_tenths and done >= args.files // 10:
            spies.stop()
        if done >= args.files:
            break
        await asyncio.sleep(0.5)
    elapsed = time.monotonic() - began
    cpu = (proc.cpu_s() - cpu_before[0], server.cpu_s() - cpu_before[1])
    spies.stop()
    cpu_by_tenth = trace.by_tenth_ms(args.files)
    after = (proc.fds(), proc.rss_mb())
    idle = await proc.idle_cpu(args.idle_seconds)
    after_idle = (proc.fds(), proc.rss_mb())
    peak = proc.peak_rss_mb()
    async with robot_client(url) as client:
        rows = sum([await count_rows(client, ff) for ff in fourfours])
    await daemon.stop()
    return {
        "files": args.files,
        "datasets": args.datasets,
        "write_s": dropped_s,
        "all_discovered_s": last_discovered_at(site) - began_wall,
        "elapsed_s": elapsed,
        "files_per_s": args.files / elapsed,
        "files_per_s_by_tenth": rate_by_tenth(site, began_wall),
        "cpu_s_per_file_daemon_server": tuple(round(c / max(args.files, 1), 4) for c in cpu),
        "daemon_cpu_ms_per_file_by_tenth": cpu_by_tenth[0],
        "server_cpu_ms_per_file_by_tenth": cpu_by_tenth[1],
        "server_loop_cpu_ms_per_file_by_tenth": cpu_by_tenth[2],
        "states": counts,
        "median_ms_in_state": step_medians_ms(site),
        "lane_gap_ms": lane_gaps_ms(site),
        "events_per_job": events_per_job(site),
        # Share of the time the lanes (max_concurrent_jobs) had a job between its first
        # step and its last event; the rest is the daemon between jobs.
        "lane_busy_share": sum(b - a for a, b in first_last(site))
        / 1e6
        / (args.max_concurrent_jobs * elapsed),
        "rows": rows,
        "rows_expected": args.datasets + args.files * ROWS_PER_FILE,
        "fds": (before[0], after[0], after_idle[0]),
        "rss_mb": (before[1], after[1], after_idle[1]),
        "peak_rss_mb": peak,
        "max_fds": max(s[1] for s in proc.samples),
        "idle_cpu_with_jobs": idle,
    }


def make_tree(drop: Path, files: int) -> None:
    for n in range(files):
        folder = drop / f"t{n // 100:04}"
        if n % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n:06}.csv").write_bytes(b"id,name\n1,x\n")


async def idle_phase(args: argparse.Namespace, root: Path, url: str) -> dict[str, object]:
    site = Site(root / "idle", url)
    site.map("none-none", match="no-such-folder/*.csv")
    site.source = {"url": f"file://{site.drop}", **DEFAULT_SOURCE}
    site.limits.update(DEFAULT_LIMITS)
    site.write_config()
    await asyncio.to_thread(make_tree, site.drop, args.idle_files)
    daemon = DaemonProcess(site, root / "idle-daemon.log")
    await daemon.start()
    assert daemon.process is not None
    proc = Proc(daemon.process.pid)
    # The first scan is over once the daemon's CPU stops climbing for 2 s
    # (min_age after the scan, every file is routed once: unmatched, said once).
    settled_at = time.monotonic()
    last = proc.cpu_s()
    while time.monotonic() - settled_at < 2 + float(DEFAULT_SOURCE["min_age"][:-1]):
        await asyncio.sleep(0.5)
        now = proc.cpu_s()
        if now - last > 0.05:
            settled_at = time.monotonic()
        last = now
    fds = proc.fds()
    idle = await proc.idle_cpu(args.idle_seconds)
    result = {
        "idle_files": args.idle_files,
        "idle_cpu_tree": idle,
        "idle_rss_mb": proc.rss_mb(),
        "idle_fds": (fds, proc.fds()),
    }
    await daemon.stop()
    return result


class Spies:
    """py-spy on the daemon and/or the server (as asked), started and stopped together;
    each start (once per suffix: ``.first``, ``.last``) ends the spies before and writes
    to the asked paths with that suffix."""

    def __init__(self, args: argparse.Namespace, daemon_pid: int, server_pid: int) -> None:
        self.targets = [(args.py_spy, daemon_pid), (args.server_py_spy, server_pid)]
        self.running: list[subprocess.Popen[bytes]] = []
        self.started: set[str] = set()

    def start(self, suffix: str) -> None:
        if suffix in self.started:
            return
        self.started.add(suffix)
        self.stop()
        for path, pid in self.targets:
            if path:
                command = [PY_SPY, "record", "-p", str(pid), "-f", "raw", "-r", "50", "--threads"]
                with Path(path + suffix + ".log").open("wb") as log:  # py-spy's complaints
                    spy = subprocess.Popen([*command, "-o", path + suffix], stdout=log, stderr=log)
                self.running.append(spy)

    def stop(self) -> None:
        for spy in self.running:
            spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
            spy.wait(timeout=60)
        self.running = []


def use_code(path: str) -> str:
    """Make the child processes (server, daemon) import dsmsyncd from ``path``: first
    on their ``sys.path``, ahead of the working directory (``PYTHONSAFEPATH``) and of
    the editable install (appended to ``sys.meta_path``, so after ``sys.path``).
    Returns where a child imports it from, to print."""
    os.environ["PYTHONPATH"] = str(Path(path).resolve())
    os.environ["PYTHONSAFEPATH"] = "1"
    command = [sys.executable, "-c", "import dsmsyncd; print(dsmsyncd.__file__)"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


async def run(args: argparse.Namespace) -> int:
    if args.code:
        print(f"children import {use_code(args.code)}")
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-many-") as tmp:
        root = Path(tmp)
        async with serve_with_users(root, ROBOT, server_path=args.server_path) as served:
            load = os.getloadavg()
            busy = await busy_phase(args, root, served.url, served.proc.pid) if args.files else {}
            idle = await idle_phase(args, root, served.url) if args.idle_files else {}
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for key, value in {**busy, **idle}.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--idle-files", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--max-concurrent-jobs",
        type=int,
        default=DEFAULT_LIMITS["max_concurrent_jobs"],
        help="the busy daemon's [limits] max_concurrent_jobs (default: the default, 4)",
    )
    parser.add_argument(
        "--daemon-path", default=None, help="run the busy daemon from this tree (PYTHONPATH)"
    )
    parser.add_argument("--py-spy", default=None, help="record the busy phase into this file")
    parser.add_argument(
        "--server-py-spy", default=None, help="record the server's busy phase into this file"
    )
    parser.add_argument(
        "--spy-tenths",
        action="store_true",
        help="record the first and the last tenth only, into PATH.first and PATH.last",
    )
    parser.add_argument("--code", default=None, help="run the server and daemon from this checkout")
    parser.add_argument(
        "--server-path",
        default=None,
        help="run dsmsyncd serve from this checkout (e.g. git archive main, for a before)",
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
