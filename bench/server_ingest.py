"""Server ingest benchmark: upload → output schema complete → applied, against DuckDB's floor.

One run, side by side, on the same generated CSV (1,000,000 rows x 10 columns, about
100 MB):

  floor   DuckDB's own ``read_csv`` of the file into a table, in this process, in
          memory (the issue's floor) and into a database file (what a server that
          keeps its data must at least do)
  server  ``dsmsyncd serve`` (a separate process, plain HTTP on loopback): open a
          revision with an import config holding three transforms, chunked upload
          (4 MiB chunks, 4 in parallel), wait for the output schema, apply, wait for
          the task set

Reports the median of ``--repeat`` runs of each, their ratio, and the server's peak
RSS (VmHWM from /proc, i.e. the high-water mark over its whole life).

    .venv/bin/python bench/server_ingest.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from dsmsyncd.blob import LocalFileBlob
from dsmsyncd.dsmapi import Credentials, DsmapiClient
from dsmsyncd.pipeline.upload import upload_blob

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


def floor_run(path: Path, database: str = ":memory:") -> float:
    start = time.perf_counter()
    con = duckdb.connect(database)
    con.execute(f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_csv('{path}', header = true)")
    con.close()
    return time.perf_counter() - start


async def server_run(url: str, path: Path, config: str, fourfour: str) -> float:
    start = time.perf_counter()
    async with DsmapiClient(url, Credentials(username=USER, password=PASSWORD)) as client:
        revision = await client.open_revision_with_config(fourfour, config)
        source = await client.create_upload_source(revision, path.name)
        await upload_blob(client, source, LocalFileBlob.open(path))
        schema = await client.wait_for_output_schema(source)
        assert schema.error_count == 0, schema.error_count
        job = await client.wait_for_task_set(revision, await client.apply(revision, schema.id))
        assert job.status == "successful", job.raw
    return time.perf_counter() - start


async def prepare(url: str) -> tuple[str, str]:
    async with DsmapiClient(url, Credentials(username=USER, password=PASSWORD)) as client:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dsmsyncd-bench-") as tmp:
        root = Path(tmp)
        csv_path = root / "bench.csv"
        generate(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.rows} rows x 10 columns, {size_mb:.1f} MB")

        server = subprocess.Popen(
            [sys.executable, "-m", "dsmsyncd.cli.main", "serve", "--listen", "127.0.0.1:0",
             "--data-dir", str(root / "data")],
            stdout=subprocess.PIPE, text=True,
            env={**os.environ, "DSMSYNCD_SERVE_USERS": f"{USER}:{PASSWORD}"},
        )  # fmt: skip
        try:
            assert server.stdout is not None
            url = server.stdout.readline().rsplit(" ", 1)[-1].strip()
            config, fourfour = asyncio.run(prepare(url))
            floors, file_floors, servers = [], [], []
            for i in range(args.repeat):
                floors.append(floor_run(csv_path))
                file_floors.append(floor_run(csv_path, str(root / "floor.duckdb")))
                servers.append(asyncio.run(server_run(url, csv_path, config, fourfour)))
                print(
                    f"run {i + 1}: floor {floors[-1]:.2f}s, file floor {file_floors[-1]:.2f}s, "
                    f"server {servers[-1]:.2f}s"
                )
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)

    floor_med, server_med = statistics.median(floors), statistics.median(servers)
    file_med = statistics.median(file_floors)
    print()
    print("| path | median (s) | throughput (MB/s) |")
    print("|---|---|---|")
    print(f"| DuckDB read_csv into memory (floor) | {floor_med:.2f} | {size_mb / floor_med:.0f} |")
    print(f"| DuckDB read_csv into a database file | {file_med:.2f} | {size_mb / file_med:.0f} |")
    print(f"| dsmsyncd serve: upload → transformed → applied | {server_med:.2f} | "
          f"{size_mb / server_med:.0f} |")  # fmt: skip
    print()
    print(f"ratio server / floor: {server_med / floor_med:.2f}x (goal: within 3x)")
    print(f"ratio server / file floor: {server_med / file_med:.2f}x")
    print(f"server peak RSS: {rss:.0f} MB (goal: under 500 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
