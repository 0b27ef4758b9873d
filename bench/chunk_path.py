"""The server's chunk path against a bare aiohttp server that only writes at offset (issue 9).

One bare aiohttp client (plain HTTP on loopback, 4 MiB chunks read with ``os.pread``,
4 in parallel, one keep-alive session) posts the same file, alternately, to:

  serve   ``dsmsyncd serve`` (a subprocess): a ``parse_source: false`` upload source,
          ``initiate``, the chunks, ``commit``: what the server does per chunk
          (authentication, the source's checks per piece, the positional write, the
          journal of received chunks) and at commit (the completeness check, the rename)
  bare    a subprocess running nothing but an aiohttp app whose chunk handler streams
          the body into one file at the chunk's offset with ``os.pwrite`` in a worker
          thread (the same 256 KiB reads as the server), and whose commit answers at once

Timed on the client's clock from the first chunk sent to the commit answered, and
each server's CPU seconds over the same span (from /proc: steadier than the clock on
a shared machine). Reports medians of ``--repeat`` runs, the ratio serve/bare as
throughput (goal >= 0.8x) and as CPU per file, and each server's peak RSS (VmHWM).
``--server-path DIR`` runs ``dsmsyncd serve`` from another checkout (e.g. a
``git archive`` of the code before), for before/after numbers.

    .venv/bin/python bench/chunk_path.py [--size-mb 512] [--repeat 5] [--server-path DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsmsyncd.dsmapi import Credentials, DsmapiClient
from tests.server.support.serve_process import launcher

USER, PASSWORD = "bench", "bench-password"
API = "/api/publishing/v1"
CHUNK = 4 * 1024 * 1024
PARALLEL = 4
MIB = 1024 * 1024
READ_SIZE = 256 * 1024


# -- the bare server (run as ``chunk_path.py --bare-server DIR``) ------------------------


def bare_server(directory: Path) -> None:
    """Chunks streamed to one file at their offsets; nothing else."""

    async def chunk(request: web.Request) -> web.Response:
        name = directory / f"{request.match_info['sid']}.bin"
        fd = await asyncio.to_thread(os.open, name, os.O_WRONLY | os.O_CREAT, 0o644)
        position = start = int(request.match_info["offset"])
        try:
            async for piece in request.content.iter_chunked(READ_SIZE):
                await asyncio.to_thread(os.pwrite, fd, piece, position)
                position += len(piece)
        finally:
            os.close(fd)
        return web.json_response({"resource": {"end_byte_offset": position, "start": start}})

    async def commit(request: web.Request) -> web.Response:
        return web.json_response({"resource": {}})

    app = web.Application(client_max_size=64 * MIB)
    app.router.add_post("/bare/{sid}/chunk/{seq}/{offset}", chunk)
    app.router.add_post("/bare/{sid}/chunk/{seq}/{offset}/commit", commit)

    async def ready(app: web.Application) -> None:
        print("listening", flush=True)

    app.on_startup.append(ready)
    port = int(os.environ["BARE_PORT"])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- the client ---------------------------------------------------------------------------


async def post_file(session: aiohttp.ClientSession, base: str, path: Path) -> float:
    """Every chunk, ``PARALLEL`` at a time, then the commit: seconds on this clock."""
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    plan = [(seq, off) for seq, off in enumerate(range(0, size, CHUNK))]
    pending = iter(plan)

    async def worker() -> None:
        for seq, offset in pending:
            data = os.pread(fd, CHUNK, offset)
            headers = {"Content-Type": "application/octet-stream"}
            url = f"{base}/chunk/{seq}/{offset}"
            async with session.post(url, data=data, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(PARALLEL)))
        async with session.post(f"{base}/chunk/{plan[-1][0]}/{size}/commit") as r:
            await r.read()
            assert r.status == 200, (r.status, await r.text())
        return time.perf_counter() - started
    finally:
        os.close(fd)


async def run_serve(url: str, fourfour: str, path: Path) -> float:
    async with DsmapiClient(url, Credentials(username=USER, password=PASSWORD)) as client:
        revision = await client.open_revision(fourfour, "replace")
        source = await client.create_upload_source(revision, path.name, {"parse_source": False})
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    base = f"{url}{API}/source/{source.id}"
    async with aiohttp.ClientSession(headers={"Authorization": auth}) as session:
        async with session.post(f"{base}/initiate", json={"content_type": "text/csv"}) as r:
            assert r.status == 200
        elapsed = await post_file(session, base, path)
    async with DsmapiClient(url, Credentials(username=USER, password=PASSWORD)) as client:
        await client.discard_revision(revision)  # its file goes: the disk stays as it was
    return elapsed


async def run_bare(url: str, run: int, path: Path, directory: Path) -> float:
    async with aiohttp.ClientSession() as session:
        elapsed = await post_file(session, f"{url}/bare/{run}", path)
    (directory / f"{run}.bin").unlink()
    return elapsed


async def new_dataset(url: str) -> str:
    async with DsmapiClient(url, Credentials(username=USER, password=PASSWORD)) as client:
        revision = await client.create_dataset({"name": "chunk-path"})
        await client.wait_for_task_set(revision, await client.apply(revision, None))
        return revision.fourfour


def start(argv: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str]:
    with log.open("wb") as err:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, **env}
        )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def serve_command(args: list[str], server_path: str | None) -> list[str]:
    """``dsmsyncd ARGS``, from ``server_path`` if given (``serve_process.launcher``)."""
    return [*launcher(server_path), *args]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--server-path", help="run dsmsyncd serve from this checkout")
    parser.add_argument("--bare-server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(Path(args.bare_server))
        return 0

    with tempfile.TemporaryDirectory(prefix="dsmsyncd-chunks-") as tmp:
        root = Path(tmp)
        path = root / "file.csv"
        block = b"".join(b"%d,row %d,some text\n" % (i, i) for i in range(40_000))
        with path.open("wb") as out:
            while out.tell() < args.size_mb * MIB:
                out.write(block)
        os.truncate(path, args.size_mb * MIB)
        (root / "bare").mkdir()
        serve_env = {"DSMSYNCD_SERVE_USERS": f"{USER}:{PASSWORD}", "PYTHONUNBUFFERED": "1"}
        serve_args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(root / "data")]
        command = serve_command(serve_args, args.server_path)
        serve, line = start(command, serve_env, root / "serve.log")
        url = line.rsplit(" ", 1)[-1]
        port = free_port()
        bare, _ = start(
            [sys.executable, __file__, "--bare-server", str(root / "bare")],
            {"BARE_PORT": str(port)},
            root / "bare.log",
        )
        bare_url = f"http://127.0.0.1:{port}"
        try:
            fourfour = asyncio.run(new_dataset(url))
            serves, bares, serve_cpu, bare_cpu = [], [], [], []
            for i in range(args.repeat):
                # Alternate who goes first: the one after pays the other's writeback.
                for which in ("serve", "bare") if i % 2 == 0 else ("bare", "serve"):
                    if which == "serve":
                        before = cpu_s(serve.pid)
                        serves.append(asyncio.run(run_serve(url, fourfour, path)))
                        serve_cpu.append(cpu_s(serve.pid) - before)
                    else:
                        before = cpu_s(bare.pid)
                        bares.append(asyncio.run(run_bare(bare_url, i, path, root / "bare")))
                        bare_cpu.append(cpu_s(bare.pid) - before)
                print(
                    f"run {i + 1}: serve {serves[-1]:.2f}s ({serve_cpu[-1]:.2f} CPU s), "
                    f"bare {bares[-1]:.2f}s ({bare_cpu[-1]:.2f} CPU s)",
                    flush=True,
                )
            rss = peak_rss_mb(serve.pid), peak_rss_mb(bare.pid)
        finally:
            for proc in (serve, bare):
                proc.terminate()
                proc.wait(timeout=60)

    size_mb = args.size_mb * MIB / 1e6
    serve_med, bare_med = statistics.median(serves), statistics.median(bares)
    ratio = bare_med / serve_med
    print()
    print(f"file: {args.size_mb} MiB, 4 MiB chunks, {PARALLEL} in parallel; "
          f"medians of {args.repeat}")  # fmt: skip
    cpu_med = statistics.median(serve_cpu), statistics.median(bare_cpu)
    print("| server | median (s) | MB/s | server CPU s (median) | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    print(f"| dsmsyncd serve | {serve_med:.2f} | {size_mb / serve_med:.0f} | "
          f"{cpu_med[0]:.2f} | {rss[0]:.0f} |")  # fmt: skip
    print(f"| bare aiohttp, writes at offset | {bare_med:.2f} | {size_mb / bare_med:.0f} | "
          f"{cpu_med[1]:.2f} | {rss[1]:.0f} |")  # fmt: skip
    print()
    verdict = "met" if ratio >= 0.8 else "NOT met"
    print(f"serve / bare throughput: {ratio:.2f}x (goal >= 0.8x: {verdict})")
    print(f"serve / bare server CPU per file: {cpu_med[0] / cpu_med[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
