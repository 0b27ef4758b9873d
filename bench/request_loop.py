"""The server's event loop per request, without the row store: what the HTTP layer and
the metastore cost a small file's requests (issue 9).

``bench/many_files.py`` measures a small file end to end, where DuckDB statements,
worker threads and the daemon share two cores with the event loop; this script sends
only requests that never reach the row store, so the server's main thread (its event
loop) does all of the work and its CPU per request is steady enough to compare two
checkouts. ``dsmsyncd serve`` runs as a child process (``--server-path DIR`` runs it
from another checkout); ``--datasets`` datasets are created, then ``--rounds`` rounds,
``--clients`` at once, of a small file's requests up to its bytes: open a revision,
create its upload source, initiate, then read the source and the revision as a poll
does, each signed in with Basic credentials as the daemon is. Printed: the server's
main-thread CPU (``/proc/PID/task/PID/stat``) and whole-process CPU per request, and
requests per second.

    .venv/bin/python bench/request_loop.py [--rounds 2000] [--clients 4] [--datasets 20]
        [--server-path DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server.support.serve_process import serve_with_users
from tests.support.local_server import ROBOT

API = "/api/publishing/v1"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
REQUESTS_PER_ROUND = 5


def cpu_s(pid: int, thread: int | None = None) -> float:
    stat = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


async def ok(resp: aiohttp.ClientResponse) -> dict[str, object]:
    body = await resp.json()
    assert resp.status in (200, 201, 202), (resp.status, body)
    assert isinstance(body, dict)
    return body


async def one_round(session: aiohttp.ClientSession, fourfour: str) -> None:
    """A small file's requests up to its bytes, and two polls."""
    async with session.post(f"{API}/revision/{fourfour}", json={"action": {"type": "update"}}) as r:
        revision = (await ok(r))["resource"]
    assert isinstance(revision, dict)
    seq = revision["revision_seq"]
    source_body = {"source_type": {"type": "upload", "filename": "f.csv"}}
    async with session.post(f"{API}/revision/{fourfour}/{seq}/source", json=source_body) as r:
        source = (await ok(r))["resource"]
    assert isinstance(source, dict)
    sid = source["id"]
    async with session.post(f"{API}/source/{sid}/initiate", json={"content_type": "text/csv"}) as r:
        await ok(r)
    async with session.get(f"{API}/source/{sid}") as r:
        await ok(r)
    async with session.get(f"{API}/revision/{fourfour}/{seq}") as r:
        await ok(r)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-requests-") as tmp:
        root = Path(tmp)
        async with serve_with_users(root, ROBOT, server_path=args.server_path) as served:
            pid = served.proc.pid
            secret = base64.b64encode(":".join(ROBOT).encode()).decode()
            headers = {"Authorization": f"Basic {secret}"}
            async with aiohttp.ClientSession(served.url, headers=headers) as session:
                fourfours = []
                for _ in range(args.datasets):
                    async with session.post(f"{API}/revision", json={}) as r:
                        resource = (await ok(r))["resource"]
                    assert isinstance(resource, dict)
                    fourfours.append(str(resource["fourfour"]))
                pending = iter(range(args.rounds))

                async def client() -> None:
                    for n in pending:
                        await one_round(session, fourfours[n % len(fourfours)])

                load = os.getloadavg()
                before = (cpu_s(pid, pid), cpu_s(pid), time.monotonic())
                await asyncio.gather(*(client() for _ in range(args.clients)))
                after = (cpu_s(pid, pid), cpu_s(pid), time.monotonic())
    requests = args.rounds * REQUESTS_PER_ROUND
    loop_us, process_us = (
        (b - a) / requests * 1e6 for a, b in zip(before, after[:2], strict=False)
    )
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"requests: {requests}")
    print(f"server_loop_cpu_us_per_request: {loop_us:.1f}")
    print(f"server_cpu_us_per_request: {process_us:.1f}")
    print(f"requests_per_s: {requests / (after[2] - before[2]):.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--server-path", default=None, help="run dsmsyncd serve from this checkout")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
