"""Server ingest benchmark: upload → output schema complete → applied, against DuckDB's floor.

One run, side by side, on generated CSVs (``--files``):

  1m       1,000,000 rows x 10 columns, about 118 MB, opened with an import config
           holding three transforms (``upper``, ``to_number``, ``to_floating_timestamp``)
  flights  shaped like nycflights13's ``flights`` (336,776 rows x 19 columns, about
           30 MB, some cells empty), opened without a config: the server guesses types

For each file, each run, in this order:

  floor   DuckDB's own ``read_csv`` of the file into a table, in this process, in
          memory and into a database file (what a server that keeps its data must at
          least do)
  server  ``dsmsyncd serve`` (a separate process, plain HTTP on loopback): open a
          revision, chunked upload (4 MiB chunks, 4 in parallel, dsmsyncd's client),
          wait for the output schema, apply (replace), wait for the job

The server's work comes from its own timestamps (issue 9): source ``created_at`` →
``finished_at`` (upload and commit), source ``finished_at`` → output schema
``created_at`` (the parse into the input table), output schema ``created_at`` →
``completed_at`` (transforms and error counts), job ``created_at`` → ``finished_at``
(apply). "server work" is source created → output schema completed, plus the job; the
client's waits between them are left out. Reports medians of ``--repeat`` runs, the
ratios to DuckDB (goal: server work <= 1.5x ``read_csv`` into a table), the server
process's CPU seconds per run (steadier than its wall clock on a shared machine) and
its peak RSS (VmHWM over its whole life).

``--server-path DIR`` runs the server from another checkout (before/after numbers).

    .venv/bin/python bench/server_ingest.py [--files 1m,flights] [--repeat 3] [--server-path DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dsmsyncd.blob import LocalFileBlob
from dsmsyncd.dsmapi import Credentials, DsmapiClient
from dsmsyncd.pipeline.upload import upload_blob

sys.path.insert(0, str(Path(__file__).parent))
from chunk_path import cpu_s, serve_command  # bench/ is not a package

USER, PASSWORD = "bench", "bench-password"
HEADER = "id,name,city,amount,quantity,ratio,flag,created,code,note"
CONFIG_COLUMNS = [
    ("id", "`id`"),
    ("name", "upper(`name`)"),  # transform 1
    ("city", "`city`"),
    ("amount", "to_number(`amount`)"),  # transform 2
    ("quantity", "`quantity`"),
    ("ratio", "`ratio`"),
    ("flag", "`flag`"),
    ("created", "to_floating_timestamp(`created`)"),  # transform 3
    ("code", "`code`"),
    ("note", "`note`"),
]
FLIGHTS_ROWS = 336_776  # nycflights13::flights
FLIGHTS_HEADER = (
    "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,"
    "carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour"
)


def generate(path: Path, rows: int) -> None:
    rng = random.Random(42)
    cities = ["Springfield", "Shelbyville", "Ogdenville", "North Haverbrook", "Capital City"]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        for i in range(rows):
            out.write(
                f"{i},name-{rng.randrange(10**6):06d},{rng.choice(cities)},"
                f"{rng.uniform(0, 10000):.2f},{rng.randrange(1000)},{rng.random():.6f},"
                f"{'true' if i % 2 else 'false'},2026-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00,"
                f"C{rng.randrange(10**8):08d},some free text for row {i}\n"
            )


def generate_flights(path: Path, rows: int = FLIGHTS_ROWS) -> None:
    """nycflights13's shape: 19 columns of small integers, codes and a timestamp; about
    2.5% of the flights cancelled (their times and delays empty)."""
    rng = random.Random(13)
    carriers = ["UA", "AA", "B6", "DL", "EV", "MQ", "US", "WN", "VX", "FL", "AS", "9E"]
    airports = ["EWR", "LGA", "JFK"]
    dests = ["IAH", "MIA", "BQN", "ATL", "ORD", "FLL", "IAD", "MCO", "PBI", "TPA", "LAX", "SFO"]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(FLIGHTS_HEADER + "\n")
        for i in range(rows):
            month, day = 1 + i * 12 // rows, 1 + i % 28
            sched = rng.randrange(500, 2359)
            hour, minute = sched // 100, sched % 100
            tail = f"N{rng.randrange(100, 999)}{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}A"
            fixed = (
                f"{rng.choice(carriers)},{rng.randrange(1, 6000)},{tail},"
                f"{rng.choice(airports)},{rng.choice(dests)}"
            )
            if rng.random() < 0.025:
                times = f",{sched},,,{sched + 300},"
                rest = f"{fixed},,{rng.randrange(80, 5000)}"
            else:
                delay = rng.randrange(-20, 120)
                arr_delay = delay + rng.randrange(-30, 30)
                times = (
                    f"{sched + delay},{sched},{delay},{sched + 300 + arr_delay},{sched + 300},"
                    f"{arr_delay}"
                )
                rest = f"{fixed},{rng.randrange(20, 700)},{rng.randrange(80, 5000)}"
            out.write(
                f"2013,{month},{day},{times},{rest},{hour},{minute},"
                f"2013-{month:02d}-{day:02d} {hour:02d}:00:00\n"
            )


def floor_run(path: Path, database: str = ":memory:") -> float:
    start = time.perf_counter()
    con = duckdb.connect(database)
    con.execute(f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_csv('{path}', header = true)")
    con.close()
    return time.perf_counter() - start


@dataclass
class ServerSample:
    """One upload → applied, on the client's clock and on the server's timestamps."""

    client_s: float
    upload_s: float  # source created → finished (bytes committed)
    parse_s: float  # source finished → output schema created (input table written)
    transform_s: float  # output schema created → completed
    apply_s: float  # job created → finished

    @property
    def work_s(self) -> float:
        return self.upload_s + self.parse_s + self.transform_s + self.apply_s

    @property
    def after_upload_s(self) -> float:
        return self.parse_s + self.transform_s + self.apply_s


def _at(resource: dict[str, Any], key: str) -> dt.datetime:
    return dt.datetime.fromisoformat(str(resource[key]))


def _span(a: dict[str, Any], start: str, b: dict[str, Any], end: str) -> float:
    return (_at(b, end) - _at(a, start)).total_seconds()


async def server_run(url: str, path: Path, config: str | None, fourfour: str) -> ServerSample:
    start = time.perf_counter()
    async with DsmapiClient(url, Credentials(username=USER, password=PASSWORD)) as client:
        if config is None:
            revision = await client.open_revision(fourfour, "replace")
        else:
            revision = await client.open_revision_with_config(fourfour, config)
        source = await client.create_upload_source(revision, path.name)
        await upload_blob(client, source, LocalFileBlob.open(path))
        schema = await client.wait_for_output_schema(source)
        assert schema.error_count == 0, schema.error_count
        job = await client.wait_for_task_set(revision, await client.apply(revision, schema.id))
        assert job.status == "successful", job.raw
        elapsed = time.perf_counter() - start
        shown = (await client.get_source(source.id)).raw
    out = schema.raw
    return ServerSample(
        client_s=elapsed,
        upload_s=_span(shown, "created_at", shown, "finished_at"),
        parse_s=_span(shown, "finished_at", out, "created_at"),
        transform_s=_span(out, "created_at", out, "completed_at"),
        apply_s=_span(job.raw, "created_at", job.raw, "finished_at"),
    )


async def prepare(url: str, with_config: bool) -> tuple[str | None, str]:
    async with DsmapiClient(url, Credentials(username=USER, password=PASSWORD)) as client:
        name: str | None = None
        if with_config:
            name = f"bench-{os.getpid()}"
            await client.create_config(
                {
                    "name": name,
                    "data_action": "replace",
                    "parse_options": {"header_count": 1, "column_header": 1},
                    "columns": [
                        {"field_name": f, "display_name": f, "transform_expr": e}
                        for f, e in CONFIG_COLUMNS
                    ],
                }
            )
        revision = await client.create_dataset({"name": "bench"})
        await client.wait_for_task_set(revision, await client.apply(revision, None))
        return name, revision.fourfour


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class FileResult:
    name: str
    size_mb: float
    floors: list[float]
    file_floors: list[float]
    servers: list[ServerSample]
    server_cpus: list[float]  # the server process's CPU seconds over each run


def bench_file(
    url: str, name: str, path: Path, root: Path, repeat: int, server_pid: int
) -> FileResult:
    config, fourfour = asyncio.run(prepare(url, with_config=name == "1m"))
    result = FileResult(name, path.stat().st_size / 1e6, [], [], [], [])
    for i in range(repeat):
        result.floors.append(floor_run(path))
        result.file_floors.append(floor_run(path, str(root / f"floor-{name}-{i}.duckdb")))
        cpu = cpu_s(server_pid)
        result.servers.append(asyncio.run(server_run(url, path, config, fourfour)))
        result.server_cpus.append(cpu_s(server_pid) - cpu)
        (root / f"floor-{name}-{i}.duckdb").unlink()
        sample = result.servers[-1]
        print(
            f"{name} run {i + 1}: floor {result.floors[-1]:.2f}s, file floor "
            f"{result.file_floors[-1]:.2f}s, server work {sample.work_s:.2f}s (upload "
            f"{sample.upload_s:.2f}, parse {sample.parse_s:.2f}, transforms "
            f"{sample.transform_s:.2f}, apply {sample.apply_s:.2f}), client "
            f"{sample.client_s:.2f}s, server CPU {result.server_cpus[-1]:.2f}s",
            flush=True,
        )
    return result


def report(result: FileResult) -> None:
    med = statistics.median
    floor, file_floor = med(result.floors), med(result.file_floors)
    parts = {
        "upload (source created → finished)": med(s.upload_s for s in result.servers),
        "parse (source finished → output schema created)": med(s.parse_s for s in result.servers),
        "transforms (output schema created → completed)": med(
            s.transform_s for s in result.servers
        ),
        "apply (job created → finished)": med(s.apply_s for s in result.servers),
    }
    work = med(s.work_s for s in result.servers)
    after = med(s.after_upload_s for s in result.servers)
    client = med(s.client_s for s in result.servers)
    print(f"\n{result.name}: {result.size_mb:.1f} MB, medians of {len(result.servers)}")
    print("| path | median (s) | MB/s |")
    print("|---|---|---|")
    rows = [
        ("DuckDB read_csv into memory", floor),
        ("DuckDB read_csv into a database file", file_floor),
        *parts.items(),
        ("server work (sum of the four)", work),
        ("server work after the upload (parse + transforms + apply)", after),
        ("client clock, open → applied", client),
    ]
    for label, seconds in rows:
        print(f"| {label} | {seconds:.2f} | {result.size_mb / seconds:.0f} |")
    print(f"server CPU seconds per run (its whole process): {med(result.server_cpus):.2f}")
    for label, seconds in (("server work", work), ("server work after the upload", after)):
        print(
            f"{label} / read_csv into memory: {seconds / floor:.2f}x; "
            f"/ into a database file: {seconds / file_floor:.2f}x (goal <= 1.5x)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default="1m,flights", help="comma-separated: 1m, flights")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the 1m file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server-path", help="run dsmsyncd serve from this checkout")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dsmsyncd-bench-") as tmp:
        root = Path(tmp)
        paths: dict[str, Path] = {}
        for name in args.files.split(","):
            paths[name] = root / f"{name}.csv"
            if name == "flights":
                generate_flights(paths[name])
            else:
                generate(paths[name], args.rows)
            print(f"generated {name}: {paths[name].stat().st_size / 1e6:.1f} MB")

        serve_args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(root / "data")]
        server = subprocess.Popen(
            serve_command(serve_args, args.server_path),
            stdout=subprocess.PIPE, stderr=(root / "serve.log").open("wb"), text=True,
            env={**os.environ, "DSMSYNCD_SERVE_USERS": f"{USER}:{PASSWORD}"},
        )  # fmt: skip
        try:
            assert server.stdout is not None
            url = server.stdout.readline().rsplit(" ", 1)[-1].strip()
            results = [
                bench_file(url, n, p, root, args.repeat, server.pid) for n, p in paths.items()
            ]
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)

    for result in results:
        report(result)
    print(f"\nserver peak RSS: {rss:.0f} MB (goal: under 500 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
