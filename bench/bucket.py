"""Bucket benchmark: streaming an S3 object into an upload vs downloading it to disk first.

One run, side by side, on the same generated CSV object (``--size-mb`` MiB, default
1024) in moto's standalone S3 server (a subprocess on loopback, put there with a
multipart upload from a file) and the same ``dsmsyncd serve`` (a subprocess, plain
HTTP on loopback):

  (a) stream  ``S3ObjectBlob`` -> ``upload_blob``: every 4 MiB chunk is a ranged GET
              (with If-Match), 4 in flight, sent on as it arrives; nothing on disk
  (b) disk    one ``get_object`` streamed to a temporary file (1 MiB reads), then
              ``upload_blob`` from a ``LocalFileBlob`` of that file
  (c) rawget  the ranged GETs of (a) alone (``S3ObjectBlob.read_range``, 4 MiB, 4 in
              flight), no upload: the most (a) can get out of this S3 endpoint

(a) and (b) open a revision (``open_revision(ff, "replace")``), create an upload
source (``parse_source: false``, so no background parse competes with the next run)
and upload; each is timed from the start of the fetch (for (a) the revision is
opened first, inside the timing) to the end of the commit. Each path runs in its own
child process (this script with ``--child``): its peak RSS is the child's own VmHWM,
read by the child at its end, and its CPU comes from ``os.wait4``; the S3 and DSMAPI
clients are created before the clock starts. The order of the paths rotates per
repeat; between runs the script waits until the server and moto are idle and calls
``sync``.

moto answers a ranged GET by reading the *whole* object and slicing it (moto 5.x,
``S3Response.get_object`` + ``_handle_range_header``), so against stock moto a
ranged read costs O(object size) and (a)'s cost grows with the square of the size.
``--moto-ranges seek`` starts moto with a small patch (in this file) that reads only
the requested range for ``Range: bytes=A-B`` GETs, closer to how a real store
behaves; ``stock`` (the default) runs moto unchanged.

    .venv/bin/python bench/bucket.py [--size-mb 1024] [--repeat 3] [--moto-ranges stock|seek]
                                     [--paths stream,disk,rawget] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "bench", "bench-password"
KEY_ID, SECRET, REGION = "testing-key-id", "testing-secret", "us-east-1"
BUCKET, KEY = "bench-bucket", "in/bench.csv"
MiB = 1024 * 1024
PART_SIZE = 64 * MiB  # the multipart put of the object
DOWNLOAD_READ = 1 * MiB  # (b): bytes per read of the streamed body
RAW_CHUNK, RAW_PARALLEL = 4 * MiB, 4  # (c): as upload_blob against this server
PATHS = ("stream", "disk", "rawget")
LABELS = {
    "stream": "(a) stream: S3ObjectBlob -> upload_blob",
    "disk": "(b) download to disk, then upload_blob(LocalFileBlob)",
    "rawget": "(c) bare ranged GETs (4 MiB, 4 in flight), no upload",
}

HEADER = b"id,name,city,amount,quantity,ratio,flag,created,code,note\n"
CITIES = ["Springfield", "Shelbyville", "Ogdenville", "North Haverbrook", "Capital City"]


# -- data ---------------------------------------------------------------------------------


def generate(path: Path, size: int) -> None:
    """A valid CSV of about ``size`` bytes: a header, then one ~1 MiB block of rows repeated."""
    rng = random.Random(42)
    lines = []
    for i in range(3500):
        note = f"free text for row {i} " + "x" * rng.randrange(150, 250)
        lines.append(
            f"{i},name-{rng.randrange(10**6):06d},{rng.choice(CITIES)},"
            f"{rng.uniform(0, 10000):.2f},{rng.randrange(1000)},{rng.random():.6f},"
            f"{'true' if i % 2 else 'false'},2026-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00,"
            f"C{rng.randrange(10**8):08d},{note}\n"
        )
    block = "".join(lines).encode()
    with path.open("wb") as out:
        out.write(HEADER)
        written = len(HEADER)
        while written < size:
            out.write(block)
            written += len(block)


def source_config(endpoint: str) -> Any:
    from pydantic import SecretStr

    from dsmsyncd.config.schema import SourceConfig

    return SourceConfig(
        name="bucket",
        url=f"s3://{BUCKET}/in/",
        endpoint_url=endpoint,
        region=REGION,
        access_key_id=SecretStr(KEY_ID),
        secret_access_key=SecretStr(SECRET),
    )


# -- moto ---------------------------------------------------------------------------------


def patch_moto_ranges() -> None:
    """Make moto read only the requested bytes for a ``Range: bytes=A-B`` GET.

    Stock moto reads the whole object (``FakeKey.value``) and then slices it. Here,
    while such a GET runs, ``value`` returns a view that reads the slice from the
    key's buffer instead; ``_handle_range_header`` only takes ``len()`` and one slice
    of it. Every other request is untouched.
    """
    import re
    import threading

    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    local = threading.local()
    simple = re.compile(r"bytes=(\d+)-(\d+)$")
    plain_value: Any = FakeKey.value

    class Window:
        def __init__(self, key: Any) -> None:
            self.key = key

        def __len__(self) -> int:
            return int(self.key.size)

        def __getitem__(self, part: slice) -> bytes:
            start, stop, _ = part.indices(len(self))
            with self.key.lock:
                self.key._value_buffer.seek(start)
                return bytes(self.key._value_buffer.read(stop - start))

    def value(key: Any) -> Any:
        return Window(key) if getattr(local, "ranged", False) else plain_value.fget(key)

    FakeKey.value = property(value, plain_value.fset)  # type: ignore[assignment]
    plain_get = S3Response.get_object

    def get_object(self: Any) -> Any:
        match = simple.match(self.headers.get("range", "") or "")
        local.ranged = match is not None and int(match[1]) <= int(match[2])
        try:
            return plain_get(self)
        finally:
            local.ranged = False

    S3Response.get_object = get_object  # type: ignore[method-assign]


class Moto:
    def __init__(self, root: Path, ranges: str) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.support.ports import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tmp = root / "moto-tmp"  # its spooled object buffers: cleaned up with root
        tmp.mkdir()
        argv = ["-H", "127.0.0.1", "-p", str(self.port)]
        command = [sys.executable, "-m", "moto.server", *argv]
        if ranges == "seek":
            command = [sys.executable, str(Path(__file__).resolve()), "--serve-moto-seek", *argv]
        self.log = (root / "moto.log").open("wb")
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(tmp)},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"moto exited; see {root / 'moto.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)  # readiness poll of a subprocess
        raise SystemExit("moto did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def put_object(endpoint: str, path: Path, size: int) -> tuple[str, float]:
    """Create the bucket and put ``path`` as ``KEY`` in 64 MiB parts; (etag, seconds)."""
    from dsmsyncd.sources.s3 import create_client, unquote_etag

    start = time.perf_counter()
    async with create_client(source_config(endpoint)) as s3:
        await s3.create_bucket(Bucket=BUCKET)
        upload = await s3.create_multipart_upload(Bucket=BUCKET, Key=KEY, ContentType="text/csv")
        parts: list[Any] = []
        with path.open("rb") as file:
            for number in range(1, -(-size // PART_SIZE) + 1):
                data = file.read(PART_SIZE)
                part = await s3.upload_part(
                    Bucket=BUCKET, Key=KEY, UploadId=upload["UploadId"],
                    PartNumber=number, Body=data,
                )  # fmt: skip
                parts.append({"PartNumber": number, "ETag": part["ETag"]})
        await s3.complete_multipart_upload(
            Bucket=BUCKET, Key=KEY, UploadId=upload["UploadId"],
            MultipartUpload={"Parts": parts},
        )  # fmt: skip
        head = await s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head["ContentLength"] == size, (head["ContentLength"], size)
    return unquote_etag(head["ETag"]), time.perf_counter() - start


# -- the server ---------------------------------------------------------------------------


def start_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dsmsyncd.cli.main", "serve", "--listen", "127.0.0.1:0",
         "--data-dir", str(root / "data")],
        stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "DSMSYNCD_SERVE_USERS": f"{USER}:{PASSWORD}"},
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise SystemExit(f"dsmsyncd serve did not start: {line!r}; see {root / 'server.log'}")
    return process, line.rsplit(" ", 1)[-1].strip()


async def new_dataset(url: str) -> str:
    from dsmsyncd.dsmapi import Credentials, DsmapiClient

    async with DsmapiClient(url, Credentials(username=USER, password=PASSWORD)) as client:
        revision = await client.create_dataset({"name": "bench-bucket"})
        await client.wait_for_task_set(revision, await client.apply(revision, None))
        return revision.fourfour


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pids: list[int], quiet_s: float = 0.5, timeout_s: float = 300.0) -> None:
    """Wait until the server and moto burn (almost) no CPU, then flush dirty pages."""
    deadline = time.monotonic() + timeout_s
    before = sum(cpu_s(p) for p in pids)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = sum(cpu_s(p) for p in pids)
        if now - before < 0.05 * quiet_s:
            break
        before = now
    os.sync()


# -- the paths (child processes) ----------------------------------------------------------


async def child(spec: dict[str, Any]) -> dict[str, Any]:
    from dsmsyncd.blob import LocalFileBlob
    from dsmsyncd.dsmapi import Credentials, DsmapiClient
    from dsmsyncd.pipeline.upload import plan_chunks, upload_blob
    from dsmsyncd.sources.s3 import S3ObjectBlob, create_client

    config = source_config(spec["endpoint"])
    path, size = spec["path"], spec["size"]
    result: dict[str, Any] = {}
    async with (
        create_client(config) as s3,
        DsmapiClient(spec["server"], Credentials(username=USER, password=PASSWORD)) as api,
    ):
        blob = S3ObjectBlob(s3, config, BUCKET, KEY, spec["etag"], size)
        revision = None
        start = time.perf_counter()
        if path == "rawget":
            pending = iter(plan_chunks(size, RAW_CHUNK))
            got = 0

            async def worker() -> None:
                nonlocal got
                for _, offset, length in pending:
                    data = await blob.read_range(offset, length)
                    got += len(data)

            async with asyncio.TaskGroup() as group:
                for _ in range(RAW_PARALLEL):
                    group.create_task(worker())
            assert got == size, (got, size)
        elif path == "stream":
            revision = await api.open_revision(spec["fourfour"], "replace")
            source = await api.create_upload_source(revision, blob.name, {"parse_source": False})
            await upload_blob(api, source, blob)
        elif path == "disk":
            file = Path(spec["tmp"]) / f"download-{os.getpid()}.csv"
            try:
                response = await s3.get_object(Bucket=BUCKET, Key=KEY, IfMatch=f'"{spec["etag"]}"')
                async with response["Body"] as body:
                    with file.open("wb") as out:
                        async for piece in body.iter_chunks(DOWNLOAD_READ):
                            out.write(piece)
                result["download_s"] = time.perf_counter() - start
                revision = await api.open_revision(spec["fourfour"], "replace")
                source = await api.create_upload_source(
                    revision, blob.name, {"parse_source": False}
                )
                await upload_blob(api, source, LocalFileBlob.open(file))
            finally:
                file.unlink(missing_ok=True)
        else:
            raise SystemExit(f"unknown path {path!r}")
        result["elapsed_s"] = time.perf_counter() - start
        if revision is not None:  # outside the timing: leave the server as it was
            await api.discard_revision(revision)
    return result


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: the high-water mark since exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(path: str, spec: dict[str, Any], root: Path, pids: list[int]) -> dict[str, Any]:
    """Run one path in a child; its result plus peak RSS and CPU from ``os.wait4``."""
    out = root / f"child-{path}.json"
    before = [cpu_s(p) for p in pids]
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                json.dumps({**spec, "path": path}),
            ],
            stdout=stdout,
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"path {path} failed (exit {process.returncode})")
    result: dict[str, Any] = json.loads(out.read_text().strip().splitlines()[-1])
    # Not usage.ru_maxrss: subprocess starts the child with vfork, and Linux folds the
    # high-water mark of the mm the child leaves at exec (this parent's) into it; the
    # child's own VmHWM (its "rss_mb") is that of its process image alone.
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["server_cpu_s"], result["moto_cpu_s"] = (
        cpu_s(p) - b for p, b in zip(pids, before, strict=True)
    )
    return result


# -- main ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="object size in MiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--moto-ranges", choices=("stock", "seek"), default="stock")
    parser.add_argument(
        "--paths", default=",".join(PATHS),
        help="comma-separated subset of stream,disk,rawget (default: all three)",
    )  # fmt: skip
    parser.add_argument("--tmp", type=Path, default=None, help="where files and data go")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--serve-moto-seek", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()

    if args.serve_moto_seek:
        from moto.server import main as moto_main

        patch_moto_ranges()
        moto_main(rest)
        return 0
    if args.child:
        result = asyncio.run(child(json.loads(args.child)))
        result["rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    paths = tuple(p for p in PATHS if p in args.paths.split(","))
    if not paths or set(args.paths.split(",")) - set(PATHS):
        parser.error(f"--paths takes a comma-separated subset of {','.join(PATHS)}")

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-bench-bucket-", dir=args.tmp) as tmp:
        root = Path(tmp)
        csv_path = root / "bench.csv"
        generate(csv_path, args.size_mb * MiB)
        moto = Moto(root, args.moto_ranges)
        server, url = start_server(root)
        try:
            size = csv_path.stat().st_size
            etag, put_s = asyncio.run(put_object(moto.url, csv_path, size))
            csv_path.unlink()
            print(f"object: {size / 1e6:.0f} MB ({size / MiB:.0f} MiB), multipart put "
                  f"{put_s:.1f}s; moto ranges: {args.moto_ranges}", flush=True)  # fmt: skip
            spec = {
                "endpoint": moto.url, "server": url, "etag": etag, "size": size,
                "fourfour": asyncio.run(new_dataset(url)), "tmp": str(root),
            }  # fmt: skip
            pids = [server.pid, moto.process.pid]
            results: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
            for i in range(args.repeat):
                for path in paths[i % len(paths) :] + paths[: i % len(paths)]:
                    settle(pids)
                    r = run_child(path, spec, root, pids)
                    results[path].append(r)
                    extra = f" (download {r['download_s']:.2f}s)" if "download_s" in r else ""
                    print(
                        f"run {i + 1} {path:6}: {r['elapsed_s']:7.2f}s{extra}, "
                        f"peak RSS {r['rss_mb']:.0f} MB, CPU {r['cpu_s']:.2f}s, "
                        f"server CPU {r['server_cpu_s']:.2f}s, moto CPU {r['moto_cpu_s']:.2f}s",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait(timeout=60)
            moto.stop()

    def med(path: str, field: str) -> float:
        return float(statistics.median(r[field] for r in results[path]))

    mb = size / 1e6
    print()
    print(f"{size / MiB:.0f} MiB object, medians of {args.repeat}, moto ranges: {args.moto_ranges}")
    print()
    print("| path | median (s) | MB/s | peak RSS (MB, max) | client CPU (s) "
          "| server CPU (s) | moto CPU (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for path in paths:
        t = med(path, "elapsed_s")
        rss = max(r["rss_mb"] for r in results[path])
        print(f"| {LABELS[path]} | {t:.2f} | {mb / t:.0f} | {rss:.0f} | {med(path, 'cpu_s'):.2f} "
              f"| {med(path, 'server_cpu_s'):.2f} | {med(path, 'moto_cpu_s'):.2f} |")  # fmt: skip
    print()
    if "disk" in paths:
        download = med("disk", "download_s")
        disk = med("disk", "elapsed_s")
        print(f"(b) phases: download {download:.2f}s ({mb / download:.0f} MB/s), "
          f"then upload {disk - download:.2f}s")  # fmt: skip
    if {"stream", "disk"} <= set(paths):
        ratio = disk / med("stream", "elapsed_s")
        met = "met" if ratio >= 1.3 else "NOT met"
        print(f"ratio (b)/(a): {ratio:.2f}x (goal: >= 1.3x) -> {met}")
    if "stream" in paths:
        rss_a = max(r["rss_mb"] for r in results["stream"])
        met = "met" if rss_a < 150 else "NOT met"
        print(f"(a) peak RSS: {rss_a:.0f} MB (goal: < 150 MB) -> {met}")
    if {"stream", "rawget"} <= set(paths):
        share = med("rawget", "elapsed_s") / med("stream", "elapsed_s")
        print(f"(c)/(a) time: {share:.2f} (near 1: the ranged GETs set (a)'s pace)")
    print(f"total {time.monotonic() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
