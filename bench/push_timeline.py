"""Where a push's time goes over a long link: every request of one push, on a timeline.

``bench/upload_rtt.py`` says how long ``dsmsyncd push`` takes at 0, 50 and 150 ms round
trip; this says why. One push of a generated CSV runs in this process, through the
latency proxy of ``upload_rtt.py`` (``LinkProxy``, a process of its own, TLS relayed),
against ``dsmsyncd serve``; aiohttp's trace hooks stamp each request's start, its
connection (new or reused) and its end. Printed per request: start and end (ms from
the first request), method and path, status, and the time between the previous
request's end and this one's start when no other request was in flight (the client's
own gaps: reading, hashing, polls sleeping). The totals then split the push into
upload (first chunk to commit done), waits on the server (polls), and the rest.

    .venv/bin/python bench/push_timeline.py [--rtt-ms 50] [--size-mb 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.upload import (  # noqa: E402
    DAEMON_CONFIG,
    MIB,
    USER,
    generate,
    new_dataset,
    prepare_root,
    start_server,
    stop_server,
)
from bench.upload_rtt import open_link  # noqa: E402
from dsmsyncd.cli.push import PushRequest, mapping_for, push  # noqa: E402
from dsmsyncd.config import load_config  # noqa: E402


@dataclass
class Request:
    method: str
    path: str
    start: float
    new_connection: bool = False
    end: float = float("nan")
    status: int = 0


@dataclass
class Timeline:
    requests: list[Request] = field(default_factory=list)

    def trace_config(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()

        async def start(_s: Any, ctx: SimpleNamespace, params: Any) -> None:
            ctx.request = Request(params.method, params.url.path, time.perf_counter())
            self.requests.append(ctx.request)

        async def connected(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
            ctx.request.new_connection = True

        async def end(_s: Any, ctx: SimpleNamespace, params: Any) -> None:
            ctx.request.end = time.perf_counter()
            ctx.request.status = params.response.status

        trace.on_request_start.append(start)
        trace.on_connection_create_end.append(connected)
        trace.on_request_end.append(end)
        return trace

    def print(self) -> None:
        zero = self.requests[0].start
        busy_until = zero
        gaps = 0.0
        for r in self.requests:
            gap = r.start - busy_until
            gaps += max(gap, 0.0)
            path = r.path.replace("/api/publishing/v1", "")
            new = " NEW CONNECTION" if r.new_connection else ""
            note = f"  gap {gap * 1000:6.0f} ms" if gap > 0.001 else ""
            print(f"{(r.start - zero) * 1000:8.0f} {(r.end - zero) * 1000:8.0f} ms "
                  f"{r.status} {r.method:6s} {path}{note}{new}")  # fmt: skip
            busy_until = max(busy_until, r.end)
        chunks = [r for r in self.requests if "/chunk/" in r.path]
        commit = next(r for r in self.requests if r.path.endswith("/commit"))
        print(f"\n{len(self.requests)} requests, "
              f"{sum(r.new_connection for r in self.requests)} new connections; "
              f"first request -> last answer {(busy_until - zero):.3f}s; "
              f"upload (first chunk -> commit answered) {commit.end - chunks[0].start:.3f}s; "
              f"client gaps with nothing in flight {gaps:.3f}s")  # fmt: skip


async def traced_push(config_path: Path, fourfour: str, file: Path) -> Timeline:
    timeline = Timeline()
    original = aiohttp.ClientSession.__init__

    def init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        kwargs["trace_configs"] = [*kwargs.get("trace_configs", []), timeline.trace_config()]
        original(self, *args, **kwargs)

    aiohttp.ClientSession.__init__ = init  # type: ignore[method-assign]
    try:
        config = load_config(config_path)
        request = PushRequest(file, fourfour, action="replace", progress=False)
        started = time.perf_counter()
        assert await push(config, mapping_for(request), request) == 0
        print(f"push in-process: {time.perf_counter() - started:.3f}s")
    finally:
        aiohttp.ClientSession.__init__ = original  # type: ignore[method-assign]
    return timeline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt-ms", type=int, default=50)
    parser.add_argument("--size-mb", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-timeline-") as tmp:
        root = Path(tmp)
        prepare_root(root)
        csv_path = root / "bench.csv"
        generate(csv_path, args.size_mb * MIB)
        served = start_server(root)
        try:
            fourfour = asyncio.run(new_dataset(served, "timeline"))
            link = open_link(served, args.rtt_ms)
            try:
                config_path = root / "push.toml"
                config_path.write_text(
                    DAEMON_CONFIG.format(
                        url=link.served.url,
                        user=USER,
                        root=root,
                        ca=served.ca,
                        latency_dataset=fourfour,
                    )
                )
                timeline = asyncio.run(traced_push(config_path, fourfour, csv_path))
            finally:
                link.close()
        finally:
            stop_server(served)
    timeline.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
