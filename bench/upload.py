"""Upload benchmark: ``dsmsyncd push`` against the official SDK and a bare aiohttp client.

One run, side by side, on the same generated CSV and the same local server
(``dsmsyncd serve`` as a subprocess over HTTPS with a trustme certificate, so every
path pays TLS alike):

  (a) push    ``dsmsyncd push FILE --dataset ID --action replace -c CONFIG --no-progress``
              as a subprocess (the console script): wall time of the whole command
              (open, upload, server parse, apply) and its peak RSS (the push process's own
              VmHWM, written by a small wrapper at exit)
  (a) upload  the upload phase of (a), in this process, with the code push runs:
              ``client_for(config)`` + ``upload_blob`` with the config's chunk limit,
              timed from ``initiate`` to the end of ``commit``
  (b) sdk     socrata-py: ``revision.create_upload(name)`` then ``source.csv(file)``,
              timed from the call (its first request is ``initiate``) to the end of
              the ``commit`` request (its trailing ``GET source`` is left out)
  (c) raw     a bare aiohttp session: ``initiate``, the chunks (the server's preferred
              chunk size and parallelism, read with ``os.pread`` on the event loop,
              nothing else), ``commit``

The (a) upload, (b) and (c) sources are created with ``parse_source: false`` so the
server only stores the bytes: its per-chunk and commit work is the same as for a
parsed source, and no background parse of one run competes with the next. As a
cross-check that needs no client-side clock, every path (push included) also gets
the server's own span for its source: ``created_at`` (create source) to
``finished_at`` (commit done).

Then push runs once more on a bigger file (``--big-mb``, 4 GiB by default; 2 GiB if
/tmp is short) for its peak RSS, and 20 small files (1,000 rows) go through an
in-process daemon (``min_age = "100ms"``) for drop-to-published latency: from the
rename into the drop folder to the daemon's listener firing.

Sizes are MiB (``--size-mb 1024`` is 1 GiB); throughput is MB/s (10^6 bytes).

    .venv/bin/python bench/upload.py [--size-mb 1024] [--big-mb 4096] [--repeat 3]

With ``--rtt-ms 0,50,150`` it runs ``bench/upload_rtt.py`` instead: the same paths
through a latency-injecting proxy, at each round trip (its own docstring says how).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import math
import os
import random
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import trustme

from dsmsyncd.blob import LocalFileBlob
from dsmsyncd.config import load_config
from dsmsyncd.config.schema import Config
from dsmsyncd.daemon.lifecycle import Daemon
from dsmsyncd.daemon.target import client_for
from dsmsyncd.dsmapi import API, Credentials, DsmapiClient
from dsmsyncd.pipeline.upload import plan_chunks, upload_blob
from dsmsyncd.state import Job

USER, PASSWORD = "bench", "bench-password"
MIB = 1024 * 1024
HEADER = b"id,name,city,amount,quantity,ratio,flag,created,code,note\n"
CITIES = ["Springfield", "Shelbyville", "Ogdenville", "North Haverbrook", "Capital City"]
LATENCY_ROWS = 1000

DAEMON_CONFIG = """\
# Written by bench/upload.py: push and an in-process daemon against the local server.
[target]
url = "{url}"
username = "{user}"
password_file = "{root}/secrets/password"
ca_bundle = "{ca}"

[state]
url = "sqlite:///{root}/state.db"

[admin]
listen = "127.0.0.1:0"

[limits]
max_concurrent_jobs = 2
drain_timeout = "10s"

[[source]]
name = "drop"
url = "file://{root}/drop"
min_age = "100ms"
poll_interval = "30s"

[[mapping]]
source = "drop"
match = "*.csv"
dataset = "{latency_dataset}"
action = "replace"
on_success = "delete"
quarantine_dir = "{root}/quarantine"
"""


# -- data --------------------------------------------------------------------------------


def rows(start: int, count: int, rng: random.Random) -> bytes:
    lines = []
    for i in range(start, start + count):
        note = f"free text for row {i} " + "x" * rng.randrange(150, 250)
        lines.append(
            f"{i},name-{rng.randrange(10**6):06d},{rng.choice(CITIES)},"
            f"{rng.uniform(0, 10000):.2f},{rng.randrange(1000)},{rng.random():.6f},"
            f"{'true' if i % 2 else 'false'},2026-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00,"
            f"C{rng.randrange(10**8):08d},{note}\n"
        )
    return "".join(lines).encode()


def generate(path: Path, size: int) -> None:
    """A valid CSV of about ``size`` bytes: a header, then one ~1 MiB block of rows repeated."""
    block = rows(0, 3500, random.Random(42))
    with path.open("wb") as out:
        out.write(HEADER)
        written = len(HEADER)
        while written < size:
            out.write(block)
            written += len(block)


def prepare_root(root: Path) -> None:
    """The folders the daemon config names, and the password file it reads."""
    for folder in ("drop", "quarantine", "secrets"):
        (root / folder).mkdir()
    (root / "secrets" / "password").write_text(PASSWORD + "\n")
    os.chmod(root / "secrets" / "password", 0o600)


# -- the server --------------------------------------------------------------------------


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    ca: Path

    @property
    def domain(self) -> str:
        return self.url.removeprefix("https://")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settle(self, quiet_s: float = 0.5, timeout_s: float = 300.0) -> None:
        """Wait until the server burns (almost) no CPU and the disk has no dirty pages.

        Each 1 GiB upload leaves ~2 GiB (chunks, then the joined file) of dirty page
        cache on the server's disk; without the ``sync`` the next run pays for the
        previous run's writeback, and the order of the paths decides the result.
        """
        deadline = time.monotonic() + timeout_s
        before = self.cpu_s()
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            now = self.cpu_s()
            if now - before < 0.05 * quiet_s:
                os.sync()
                return
            before = now


def start_server(root: Path) -> Served:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_path, cert_path, key_path = root / "ca.pem", root / "cert.pem", root / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_path), append=True)
    cert.private_key_pem.write_to_path(str(key_path))
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dsmsyncd.cli.main", "serve", "--listen", "127.0.0.1:0",
         "--data-dir", str(root / "data"),
         "--tls-cert", str(cert_path), "--tls-key", str(key_path)],
        stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "DSMSYNCD_SERVE_USERS": f"{USER}:{PASSWORD}"},
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise SystemExit(f"dsmsyncd serve did not start: {line!r}; see {root / 'server.log'}")
    return Served(process, line.rsplit(" ", 1)[-1].strip(), ca_path)


def stop_server(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()


def server_client(served: Served) -> DsmapiClient:
    return DsmapiClient(
        served.url, Credentials(username=USER, password=PASSWORD), ca_bundle=str(served.ca)
    )


async def new_dataset(served: Served, name: str) -> str:
    async with server_client(served) as client:
        revision = await client.create_dataset({"name": name})
        await client.wait_for_task_set(revision, await client.apply(revision, None))
        return revision.fourfour


def _iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


async def source_span(served: Served, source_id: int) -> float:
    """The server's own view of an upload: source created -> bytes committed."""
    async with server_client(served) as client:
        body = await client.call("GET", f"{API}/source/{source_id}")
    resource = body["resource"]
    return (_iso(resource["finished_at"]) - _iso(resource["created_at"])).total_seconds()


async def latest_upload_source(served: Served, fourfour: str) -> int:
    async with server_client(served) as client:
        revisions = await client.list_revisions(fourfour)
        newest = max(revisions, key=lambda r: r.seq)
        sources = await client.list_sources(newest)
        return max(s.id for s in sources)


# -- the paths ---------------------------------------------------------------------------


@dataclass
class Sample:
    upload_s: float  # client-side upload phase (nan for the push subprocess)
    span_s: float  # server-side: source created -> committed
    client_cpu_s: float  # user + system CPU of the client (push: the whole command)
    server_cpu_s: float = math.nan  # the server's CPU during the upload phase
    whole_s: float | None = None
    rss_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuMeter:
    """CPU seconds of this process and of the server over one timed section."""

    served: Served
    client_s: float = 0.0
    server_s: float = 0.0

    def __enter__(self) -> CpuMeter:
        self._c, self._s = cpu_self(), self.served.cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client_s = cpu_self() - self._c
        self.server_s = self.served.cpu_s() - self._s


# The push command run in-process by a wrapper that writes its own VmHWM at exit:
# ru_maxrss from wait4 is not the child's alone (a vfork'd child inherits its parent's
# high-water mark on Linux), so it would report this benchmark's memory, not push's.
PEAK_WRAPPER = """
import atexit, sys
from pathlib import Path
peak_file = sys.argv.pop(1)
def write_peak():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            Path(peak_file).write_text(line.split()[1])
atexit.register(write_peak)
from dsmsyncd.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def run_push(served: Served, config_path: Path, fourfour: str, path: Path, root: Path) -> Sample:
    """(a) the push command as a user runs it; wall time, and its own peak RSS."""
    out_path, err_path = root / "push.out", root / "push.err"
    peak_path = root / "push.peak"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", PEAK_WRAPPER, str(peak_path), "push", str(path),
             "--dataset", fourfour, "--action", "replace", "-c", str(config_path),
             "--no-progress"],
            stdout=out, stderr=err,
        )  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        whole = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output = out_path.read_text() + err_path.read_text()
    if process.returncode != 0 or "published" not in output:
        raise SystemExit(f"push failed (exit {process.returncode}):\n{output}")
    span = asyncio.run(source_span(served, asyncio.run(latest_upload_source(served, fourfour))))
    return Sample(
        upload_s=math.nan,
        span_s=span,
        client_cpu_s=usage.ru_utime + usage.ru_stime,
        whole_s=whole,
        rss_mb=int(peak_path.read_text()) / 1024,
        extra={"summary": output.strip().splitlines()[0]},
    )


async def run_ours(config: Config, fourfour: str, path: Path, served: Served) -> Sample:
    """(a) upload phase: the client and upload_blob exactly as the pipeline calls them."""
    async with client_for(config) as client:
        revision = await client.open_revision(fourfour, "replace")
        source = await client.create_upload_source(revision, path.name, {"parse_source": False})
        blob = LocalFileBlob.open(path)
        limit = asyncio.Semaphore(config.limits.max_concurrent_chunks)
        with CpuMeter(served) as cpu:
            started = time.perf_counter()
            await upload_blob(client, source, blob, content_type="text/csv", global_limit=limit)
            elapsed = time.perf_counter() - started
        await client.discard_revision(revision)
    span = await source_span(served, source.id)
    return Sample(elapsed, span, cpu.client_s, cpu.server_s)


def sdk_view(served: Served, fourfour: str) -> Any:
    """socrata-py signed in to ``served`` (verifying its CA), and its view of ``fourfour``."""
    from socrata import Socrata
    from socrata.authorization import Authorization

    auth = Authorization(served.domain, USER, PASSWORD)
    auth.verify = str(served.ca)
    return Socrata(auth).views.lookup(fourfour)


@contextlib.contextmanager
def sdk_commit_marks() -> Iterator[dict[str, float]]:
    """While open, ``marks["committed"]`` is when socrata-py's commit request returned."""
    import socrata.sources

    marks: dict[str, float] = {}
    original_post: Callable[..., Any] = socrata.sources.post

    def timed_post(url: str, *args: Any, **kwargs: Any) -> Any:
        result = original_post(url, *args, **kwargs)
        if url.endswith("/commit"):
            marks["committed"] = time.perf_counter()
        return result

    socrata.sources.post = timed_post
    try:
        yield marks
    finally:
        socrata.sources.post = original_post


def run_sdk(served: Served, fourfour: str, path: Path) -> Sample:
    """(b) socrata-py's chunked upload: initiate, chunks in its thread pool, commit."""
    view = sdk_view(served, fourfour)
    revision = view.revisions.create_replace_revision()
    source = revision.create_upload(path.name, {"parse_source": False})
    with sdk_commit_marks() as marks, path.open("rb") as file, CpuMeter(served) as cpu:
        started = time.perf_counter()
        source.csv(file)
        with_show = time.perf_counter() - started
    revision.discard()
    span = asyncio.run(source_span(served, int(source.attributes["id"])))
    return Sample(
        marks["committed"] - started,
        span,
        cpu.client_s,
        cpu.server_s,
        extra={"with_show_s": with_show},
    )


async def run_raw(served: Served, fourfour: str, path: Path) -> Sample:
    """(c) the limit: a bare session, os.pread, the server's chunk size and parallelism."""
    async with server_client(served) as client:
        revision = await client.open_revision(fourfour, "replace")
        source = await client.create_upload_source(revision, path.name, {"parse_source": False})
    base = f"{served.url}{API}/source/{source.id}"
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    context = ssl.create_default_context(cafile=str(served.ca))
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context), headers={"Authorization": auth}
        ) as session:
            # One connection opened before the clock starts, as (a)'s client has one
            # from creating the source: on a long link a handshake is two round trips.
            async with session.get(f"{served.url}/api/users/current.json") as warm:
                await warm.read()
            cpu = CpuMeter(served).__enter__()
            started = time.perf_counter()
            async with session.post(f"{base}/initiate", json={"content_type": "text/csv"}) as r:
                prefs = await r.json()
            plan = iter(plan_chunks(size, int(prefs["preferred_chunk_size"])))

            async def worker() -> None:
                for seq, offset, length in plan:
                    data = os.pread(fd, length, offset)
                    async with session.post(
                        f"{base}/chunk/{seq}/{offset}",
                        data=data,
                        headers={"Content-Type": "application/octet-stream"},
                    ) as response:
                        await response.read()
                        assert response.status == 200, response.status

            chunks = plan_chunks(size, int(prefs["preferred_chunk_size"]))
            await asyncio.gather(*(worker() for _ in range(prefs["preferred_upload_parallelism"])))
            last = chunks[-1][0]
            async with session.post(f"{base}/chunk/{last}/{size}/commit") as response:
                await response.read()
                assert response.status == 200, response.status
            elapsed = time.perf_counter() - started
            cpu.__exit__()
    finally:
        os.close(fd)
    async with server_client(served) as client:
        await client.discard_revision(revision)
    span = await source_span(served, source.id)
    return Sample(elapsed, span, cpu.client_s, cpu.server_s)


# -- latency through the daemon ----------------------------------------------------------


async def latency(config_path: Path, drop: Path, files: int) -> list[float]:
    daemon = Daemon(config_path, load_config(config_path))
    finished: asyncio.Queue[tuple[float, Job]] = asyncio.Queue()
    daemon.add_listener(lambda job: finished.put_nowait((time.perf_counter(), job)))
    runner = asyncio.create_task(daemon.run())
    results: list[float] = []
    try:
        await daemon.started.wait()
        rng = random.Random(7)
        for n in range(files):
            name = f"feed-{n:03d}.csv"
            partial = drop / (name + ".part")
            partial.write_bytes(HEADER + rows(n * LATENCY_ROWS, LATENCY_ROWS, rng))
            dropped = time.perf_counter()
            os.replace(partial, drop / name)
            async with asyncio.timeout(60):
                fired, job = await finished.get()
            if job.state.value != "published":
                raise SystemExit(f"latency file {name}: {job.state.value} ({job.error})")
            results.append(fired - dropped)
    finally:
        daemon.stop.set()
        await runner
    return results


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# -- main ----------------------------------------------------------------------------------


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def main() -> int:
    if any(arg.startswith(("--rtt-ms", "--serve-proxy")) for arg in sys.argv[1:]):
        # Over a delayed link (issue 9): push, the SDK and the bare client per round trip.
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from bench.upload_rtt import main as over_long_links

        return over_long_links()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="MiB of CSV (default 1 GiB)")
    parser.add_argument(
        "--big-mb", type=int, default=4096, help="MiB for push's second RSS run (0: skip)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-files", type=int, default=20)
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dsmsyncd-upload-bench-", dir=args.tmp) as tmp:
        root = Path(tmp)
        prepare_root(root)

        csv_path = root / "bench.csv"
        began = time.perf_counter()
        generate(csv_path, args.size_mb * MIB)
        size = csv_path.stat().st_size
        print(f"generated {csv_path.name}: {size / MIB:.0f} MiB in "
              f"{time.perf_counter() - began:.1f}s")  # fmt: skip

        print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        served = start_server(root)
        try:
            push_dataset = asyncio.run(new_dataset(served, "upload bench (push)"))
            latency_dataset = asyncio.run(new_dataset(served, "upload bench (latency)"))
            config_path = root / "dsmsyncd.toml"
            config_path.write_text(
                DAEMON_CONFIG.format(
                    url=served.url,
                    user=USER,
                    root=root,
                    ca=served.ca,
                    latency_dataset=latency_dataset,
                )
            )
            config = load_config(config_path)
            print(f"server {served.url}; chunk limit {config.limits.max_concurrent_chunks}")

            paths: dict[str, Callable[[], Sample]] = {
                "push": lambda: run_push(served, config_path, push_dataset, csv_path, root),
                "ours": lambda: asyncio.run(run_ours(config, push_dataset, csv_path, served)),
                "sdk": lambda: run_sdk(served, push_dataset, csv_path),
                "raw": lambda: asyncio.run(run_raw(served, push_dataset, csv_path)),
            }
            samples: dict[str, list[Sample]] = {name: [] for name in paths}
            order = list(paths)
            for i in range(args.repeat):
                for name in order[i % len(order) :] + order[: i % len(order)]:
                    served.settle()
                    sample = paths[name]()
                    samples[name].append(sample)
                    line = f"run {i + 1} {name:5s}: server span {sample.span_s:6.2f}s"
                    if not math.isnan(sample.upload_s):
                        line += f", upload {sample.upload_s:6.2f}s"
                        line += f", CPU client {sample.client_cpu_s:5.2f}s"
                        line += f" server {sample.server_cpu_s:5.2f}s"
                    if sample.whole_s is not None:
                        line += f", whole command {sample.whole_s:6.2f}s, "
                        line += f"peak RSS {sample.rss_mb:.0f} MB, "
                        line += f"CPU {sample.client_cpu_s:.2f}s"
                    if "with_show_s" in sample.extra:
                        line += f" (csv() incl. its GET: {sample.extra['with_show_s']:.2f}s)"
                    print(line, flush=True)

            big: tuple[int, Sample] | None = None
            big_note = ""
            if args.big_mb:
                want = args.big_mb * MIB
                free = shutil.disk_usage(root).free
                print(subprocess.run(["df", "-h", str(root)], capture_output=True,
                                     text=True).stdout.strip())  # fmt: skip
                # the file, its chunks and joined copy on the server, and the parsed tables
                if free < 5 * want:
                    want = min(want, 2048 * MIB)
                    big_note = f" (reduced: {free / 2**30:.0f} GiB free)"
                big_path = root / "big.csv"
                generate(big_path, want)
                served.settle()
                sample = run_push(served, config_path, push_dataset, big_path, root)
                big = (big_path.stat().st_size, sample)
                print(f"big push {big[0] / MIB:.0f} MiB{big_note}: whole command "
                      f"{sample.whole_s:.1f}s, server span {sample.span_s:.2f}s, "
                      f"peak RSS {sample.rss_mb:.0f} MB")  # fmt: skip
                big_path.unlink()

            served.settle()
            lat = asyncio.run(latency(config_path, root / "drop", args.latency_files))
            print("latency (s): " + " ".join(f"{x:.3f}" for x in lat))
        finally:
            stop_server(served)

    print("load average at end: {:.2f} {:.2f} {:.2f} (2 cores: above 2, other work shared "
          "the CPUs)".format(*os.getloadavg()))  # fmt: skip
    report(size, samples, big, lat, big_note)
    return 0


def report(
    size: int,
    samples: dict[str, list[Sample]],
    big: tuple[int, Sample] | None,
    lat: list[float],
    big_note: str,
) -> None:
    med = {name: statistics.median(s.span_s for s in runs) for name, runs in samples.items()}
    up = {
        name: statistics.median(s.upload_s for s in runs)
        for name, runs in samples.items()
        if name != "push"
    }
    push_whole = statistics.median(s.whole_s or 0.0 for s in samples["push"])
    push_rss = max(s.rss_mb or 0.0 for s in samples["push"])
    labels = {
        "push": "(a) dsmsyncd push (subprocess)",
        "ours": "(a) upload_blob, push's client (in-process)",
        "sdk": "(b) socrata-py Source.csv",
        "raw": "(c) bare aiohttp + os.pread",
    }
    print()
    print(f"file: {size / MIB:.0f} MiB ({size / 1e6:.0f} MB); medians of {len(samples['push'])}")
    print()
    ccpu = {n: statistics.median(s.client_cpu_s for s in runs) for n, runs in samples.items()}
    scpu = {n: statistics.median(s.server_cpu_s for s in runs) for n, runs in samples.items()}
    print(
        "| path | upload phase, client clock (s) | MB/s | server span (s) | MB/s "
        "| client CPU (s) | server CPU (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, label in labels.items():
        client = f"{up[name]:.2f} | {mbps(size, up[name]):.0f}" if name in up else "- | -"
        cpu = f"{ccpu[name]:.2f} | {scpu[name]:.2f}"
        if name == "push":
            cpu = f"{ccpu[name]:.2f} (whole command) | -"
        print(f"| {label} | {client} | {med[name]:.2f} | {mbps(size, med[name]):.0f} | {cpu} |")
    print()
    print(f"(a) push, whole command (open, upload, parse, apply): {push_whole:.2f}s")
    a_c = up["raw"] / up["ours"]
    a_b = up["sdk"] / up["ours"]
    print(f"ratio (a)/(c), throughput, client timing: {a_c:.2f} (goal >= 0.9: "
          f"{'met' if a_c >= 0.9 else 'NOT met'})")  # fmt: skip
    print(f"ratio (a)/(b), throughput, client timing: {a_b:.2f} (goal >= 1.5: "
          f"{'met' if a_b >= 1.5 else 'NOT met'})")  # fmt: skip
    print(f"ratio (a)/(c), server span, push subprocess: {med['raw'] / med['push']:.2f}; "
          f"in-process: {med['raw'] / med['ours']:.2f}")  # fmt: skip
    print(f"ratio (a)/(b), server span, push subprocess: {med['sdk'] / med['push']:.2f}; "
          f"in-process: {med['sdk'] / med['ours']:.2f}")  # fmt: skip
    print(f"(a) push peak RSS, {size / MIB:.0f} MiB file: {push_rss:.0f} MB "
          f"(max of {len(samples['push'])}; goal < 150 MB: "
          f"{'met' if push_rss < 150 else 'NOT met'})")  # fmt: skip
    if big is not None:
        rss = big[1].rss_mb or 0.0
        print(f"(a) push peak RSS, {big[0] / MIB:.0f} MiB file{big_note}: {rss:.0f} MB "
              f"(goal < 150 MB: {'met' if rss < 150 else 'NOT met'})")  # fmt: skip
    p50, p95 = statistics.median(lat), nearest_rank(lat, 0.95)
    print(f"drop-to-published, {len(lat)} files of {LATENCY_ROWS} rows, min_age 100ms: "
          f"p50 {p50:.3f}s, p95 {p95:.3f}s, max {max(lat):.3f}s "
          f"(goal p50 < 1 s: {'met' if p50 < 1 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
