"""Upload rate limit: does ``[limits] max_upload_rate = "10MB/s"`` hold over a 200 MB upload?

The upload goes through the daemon's own path: ``client_for(config, upload_rate=…)``
(the daemon's one ``TokenBucket``, paid per 256 KiB slice of every chunk body) and
``upload_blob`` with the config's chunk limit, to ``dsmsyncd serve`` (a subprocess)
on loopback. Between the two sits a counting TCP proxy: every read from the client's
socket is recorded with its time, so the rate is measured on the wire, not from the
limiter's own books. The source is created with ``parse_source: false`` so the
server only stores the bytes.

Reported: the average rate from the first to the last byte the proxy saw, and the
busiest and the quietest 1-second windows (sliding over every read; the last, partial
second is left out of the quietest). Goal: the average within 10% of the limit.
Rates are MB/s (10^6 bytes).

    .venv/bin/python bench/rate_limit.py [--size-mb 200] [--rate 10MB/s] [--chunks 8]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsmsyncd.blob import LocalFileBlob
from dsmsyncd.config import load_config
from dsmsyncd.config.rates import parse_rate
from dsmsyncd.daemon.target import client_for
from dsmsyncd.dsmapi.rate_limit import TokenBucket
from dsmsyncd.pipeline.upload import UploadResult, upload_blob
from tests.daemon.support.loopback_proxy import serving
from tests.server.support.serve_process import serve_process, write_users
from tests.support.local_server import ROBOT

MB = 1_000_000
LINE = b"1234567,Springfield,0042.50,17,0.125,true,2026-11-30T19:00:00,ABC-123,some note\n"


@dataclass
class Wire:
    """Bytes read from the client, each read with its monotonic time."""

    times: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def saw(self, size: int) -> None:
        self.times.append(time.monotonic())
        self.sizes.append(size)


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: Wire | None
) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(1 << 16):
            if wire is not None:
                wire.saw(len(data))
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def counting_proxy(upstream: str, wire: Wire) -> AsyncIterator[str]:
    """A TCP proxy to ``upstream`` that records what the client sends; yields its URL."""
    parts = urlsplit(upstream)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        await asyncio.gather(_pipe(reader, up_writer, wire), _pipe(up_reader, writer, None))

    async with serving(handle) as url:
        yield url


def write_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        out.write(b"id,city,amount,quantity,ratio,flag,created,code,note\n")
        block = LINE * (1 << 12)
        written = 0
        while written < size:
            out.write(block[: size - written])
            written += len(block)


def windows(wire: Wire) -> tuple[float, float, float]:
    """(average, busiest 1 s, quietest full 1 s) in bytes/s over the reads."""
    times, sizes = wire.times, wire.sizes
    prefix = [0]
    for size in sizes:
        prefix.append(prefix[-1] + size)
    span = times[-1] - times[0]
    busiest, quietest = 0, prefix[-1]
    for i, start in enumerate(times):
        end = bisect.bisect_left(times, start + 1.0)
        inside = prefix[end] - prefix[i]
        busiest = max(busiest, inside)
        if start + 1.0 <= times[-1]:
            quietest = min(quietest, inside)
    return prefix[-1] / span, float(busiest), float(quietest)


CONFIG = """[target]
url = "{url}"
username = "{user}"
password = "{password}"
[limits]
max_upload_rate = "{rate}"
max_concurrent_chunks = {chunks}
"""


async def run(size_mb: int, rate: str, chunks: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-rate-") as tmp:
        root = Path(tmp)
        data = root / "big.csv"
        write_file(data, size_mb * MB)
        users = write_users(root / "users", ROBOT)
        wire = Wire()
        async with (
            serve_process(root / "served", "--users-file", str(users)) as server,
            counting_proxy(server.url, wire) as url,
        ):
            text = CONFIG.format(
                url=url, user=ROBOT[0], password=ROBOT[1], rate=rate, chunks=chunks
            )
            (root / "dsmsyncd.toml").write_text(text, encoding="utf-8")
            result, elapsed = await upload(root / "dsmsyncd.toml", data, wire)
        report(size_mb, rate, chunks, result.chunks, result.bytes_sent, elapsed, wire)


async def upload(config_path: Path, data: Path, wire: Wire) -> tuple[UploadResult, float]:
    """``data`` uploaded as the daemon uploads it; what the proxy saw before is dropped."""
    config = load_config(config_path)
    bucket = TokenBucket(config.limits.max_upload_rate)
    async with client_for(config, upload_rate=bucket) as client:
        revision = await client.create_dataset({"name": "Rate"})
        source = await client.create_upload_source(revision, data.name, {"parse_source": False})
        wire.times.clear()
        wire.sizes.clear()
        started = time.monotonic()
        result = await upload_blob(
            client,
            source,
            LocalFileBlob.open(data),
            global_limit=asyncio.Semaphore(config.limits.max_concurrent_chunks),
        )
        return result, time.monotonic() - started


def report(
    size_mb: int, rate: str, chunks: int, sent_chunks: int, sent: int, elapsed: float, wire: Wire
) -> None:
    limit = parse_rate(rate)
    average, busiest, quietest = windows(wire)
    if not limit:  # no limit: what the path does unthrottled, for comparison
        print(f"{size_mb} MB, no limit: {average / MB:.1f} MB/s on the wire ({elapsed:.2f} s)")
        return
    off = (average - limit) / limit
    print(
        f"{size_mb} MB in {sent_chunks} chunks ({sent / MB:.1f} MB of chunk bodies), limit {rate}"
    )
    print(f"max_concurrent_chunks {chunks}; upload_blob took {elapsed:.2f} s\n")
    print("| measure | MB/s | vs limit |")
    print("|---|---|---|")
    print(f"| limit | {limit / MB:.2f} | |")
    print(f"| average on the wire | {average / MB:.2f} | {off:+.1%} |")
    print(f"| busiest 1 s window | {busiest / MB:.2f} | {(busiest - limit) / limit:+.1%} |")
    print(f"| quietest 1 s window | {quietest / MB:.2f} | {(quietest - limit) / limit:+.1%} |")
    verdict = "met" if abs(off) <= 0.10 else "NOT met"
    print(f"\ngoal (average within 10% of the limit): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rate", default="10MB/s")
    parser.add_argument("--chunks", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.size_mb, args.rate, args.chunks))


if __name__ == "__main__":
    main()
