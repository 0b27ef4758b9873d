"""Upload over a long link: ``dsmsyncd push`` vs socrata-py vs a bare client at 0, 50, 150 ms.

Issue 9: users are not on loopback. The same local server (HTTPS, trustme CA) is
reached through a latency-injecting TCP proxy on loopback: ``LinkProxy`` of the tests
(``tests/daemon/support/link_proxy.py``) with ``delay_s`` = half the round trip,
run in a process of its own so that its relaying competes with no client for a GIL.
Each read is forwarded that much later, in order, each way, and a new connection's
first bytes one round trip later still (the TCP handshake the proxy's local accept
skips); bandwidth is not limited, TCP slow start is not modelled, and TLS passes
through untouched (the proxy sees ciphertext). Round trip 0 is the server itself, no
proxy. ``bench/push_timeline.py`` shows one push's requests on a timeline.

At every round trip, side by side, on one generated CSV (``--size-mb``, 100 MiB):

  push      ``dsmsyncd push FILE --dataset ID --action replace`` as a subprocess: the
            whole command (open, upload, server parse, apply), wall time and peak RSS
  sdk       socrata-py end to end, as its documentation does it: replace revision,
            ``create_upload``, ``csv(file)``, latest input then output schema,
            ``wait_for_finish``, ``apply``, the job's ``wait_for_finish``
  ours      the upload phase of push in-process (``client_for`` + ``upload_blob``),
            ``initiate`` to the end of ``commit``, client clock
  raw       the bare aiohttp limit of ``upload.py``: same phase, same chunk size and
            parallelism, ``os.pread``, nothing else

With ``--before-tree DIR`` (another checkout, e.g. ``git archive BASE | tar -x -C
DIR``) the push of that code runs as a fifth path, ``before``, in the same rotation:
before and after under the same load.

``ours`` and ``raw`` upload to ``parse_source: false`` sources, and each starts with
one open connection (``raw`` warms its session untimed). The order of the paths
rotates per repeat; the script waits for an idle server and ``sync``s between runs.

    .venv/bin/python bench/upload.py --rtt-ms 0,50,150 [--size-mb 100] [--repeat 3]
    (the same as .venv/bin/python bench/upload_rtt.py [--rtt-ms ...] ...)
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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.upload import (  # noqa: E402
    DAEMON_CONFIG,
    HEADER,
    MIB,
    USER,
    Sample,
    Served,
    _iso,
    generate,
    new_dataset,
    prepare_root,
    rows,
    run_ours,
    run_push,
    run_raw,
    sdk_commit_marks,
    sdk_view,
    server_client,
    start_server,
    stop_server,
)
from dsmsyncd.config import load_config  # noqa: E402

WHAT = {"push": "whole_s", "sdk": "whole_s", "ours": "upload_s", "raw": "upload_s"}
Figure = Callable[[int, str], float]  # (round trip, path) -> seconds
E2E = ("push", "before", "sdk")  # the end-to-end paths: whole time, and less server work


# -- the proxy, in its own process -----------------------------------------------------------


async def serve_proxy(upstream: str, delay_ms: float) -> None:
    from tests.daemon.support.link_proxy import link_proxy

    async with link_proxy(upstream, delay_s=delay_ms / 2000, read_size=256 * 1024) as proxy:
        print(f"proxy on {proxy.url}", flush=True)
        await asyncio.Event().wait()


@dataclass
class Link:
    rtt_ms: float
    served: Served  # the server as this link reaches it (its URL the proxy's)
    process: subprocess.Popen[str] | None = None

    def close(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def open_link(served: Served, rtt_ms: float) -> Link:
    if rtt_ms == 0:
        return Link(0, served)
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-proxy", served.url, str(rtt_ms)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if "proxy on" not in line:
        process.kill()
        raise SystemExit(f"the proxy did not start: {line!r}")
    url = line.rsplit(" ", 1)[-1].strip().replace("http://", "https://")
    return Link(rtt_ms, replace(served, url=url), process)


# -- the SDK end to end ----------------------------------------------------------------------


def run_sdk_e2e(served: Served, fourfour: str, path: Path) -> Sample:
    """socrata-py from opening the revision to the apply job's end, as its docs show."""
    view = sdk_view(served, fourfour)
    with sdk_commit_marks() as marks:
        started = time.perf_counter()
        revision = view.revisions.create_replace_revision()
        source = revision.create_upload(path.name)
        with path.open("rb") as file:
            marks["upload"] = time.perf_counter()
            source = source.csv(file)
        output = source.get_latest_input_schema().get_latest_output_schema()
        output.wait_for_finish()
        job = revision.apply(output_schema=output)
        job.wait_for_finish()
        whole = time.perf_counter() - started
    assert job.attributes["status"] == "successful", job.attributes
    upload = marks["committed"] - marks["upload"]
    return Sample(upload_s=upload, span_s=float("nan"), client_cpu_s=0.0, whole_s=whole)


# -- the server's own work -------------------------------------------------------------------


async def server_work(served: Served, fourfour: str) -> float:
    """Seconds the server worked on the newest revision's file after the upload: commit
    done -> output schema completed (parse, transforms), plus the apply job's span.

    A run's whole time less this is what the client's requests and waits cost (and the
    upload, round trips included): the part a long link changes, with the server's
    speed on a loaded machine taken out.
    """
    async with server_client(served) as client:
        revision = max(await client.list_revisions(fourfour), key=lambda r: r.seq)
        source = max(await client.list_sources(revision), key=lambda s: s.id)
        source = await client.get_source(source.id)
    output = source.latest_output_schema() or {}
    task_set = max(revision.task_sets, key=lambda t: int(t["id"]))
    spans = (
        (source.finished_at, output.get("completed_at")),
        (task_set.get("created_at"), task_set.get("finished_at")),
    )
    if not all(start and end for start, end in spans):
        return float("nan")
    return sum((_iso(str(end)) - _iso(str(start))).total_seconds() for start, end in spans)


# -- a small file: round trips, not bytes ---------------------------------------------------

# push in-process, timed around the pipeline alone (no interpreter start, no imports),
# run from a checkout's directory so that it is that checkout's code.
TIMED_PUSHES = """
import asyncio, sys, time
from pathlib import Path
from dsmsyncd.cli.push import PushRequest, mapping_for, push
from dsmsyncd.config import load_config
config_path, fourfour, file, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
async def main():
    config = load_config(Path(config_path))
    for _ in range(count):
        request = PushRequest(file, fourfour, action="replace", progress=False)
        started = time.perf_counter()
        assert await push(config, mapping_for(request), request) == 0
        print(f"TIMED {time.perf_counter() - started:.4f}", flush=True)
asyncio.run(main())
"""


def timed_pushes(
    tree: Path, config_path: Path, fourfour: str, file: Path, count: int
) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", TIMED_PUSHES, str(config_path), fourfour, str(file), str(count)],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"push from {tree} failed:\n{out.stdout}{out.stderr}")
    return [float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("TIMED")]


def small_file(setup: Setup, rtts: list[int], repeat: int, count: int) -> None:
    """Push (after, and before with ``--before-tree``) and socrata-py end to end on a file
    of ``count`` rows: the server's work is small, the round trips are what is timed."""
    file = setup.root / "small.csv"
    file.write_bytes(HEADER + rows(0, count, random.Random(3)))
    # A dataset of its own: after the big file, a replace with fewer rows is refused by
    # push's row-drop guard.
    dataset = asyncio.run(new_dataset(setup.served, "rtt bench (small)"))
    trees = {"push": ROOT, **({"before": setup.before_tree} if setup.before_tree else {})}
    times: dict[str, dict[int, list[float]]] = {name: {} for name in [*trees, "sdk"]}
    links = {rtt: open_link(setup.served, rtt) for rtt in rtts}
    try:
        for rtt, link in links.items():
            config_path = write_config(setup, link)
            for name, tree in trees.items():
                times[name][rtt] = timed_pushes(tree, config_path, dataset, file, repeat)
            times["sdk"][rtt] = [
                run_sdk_e2e(link.served, setup.sdk_dataset, file).whole_s or 0.0
                for _ in range(repeat)
            ]
    finally:
        for link in links.values():
            link.close()
    zero = min(rtts)
    print(f"\nsmall file ({count} rows, {file.stat().st_size / 1e3:.0f} kB), in-process, "
          f"medians of {repeat} (s); round trips waited = added time / round trip")  # fmt: skip
    for name, by_rtt in times.items():
        med = {rtt: statistics.median(values) for rtt, values in by_rtt.items()}
        line = ", ".join(
            f"{rtt} ms {med[rtt]:.3f}"
            + (f" (~{(med[rtt] - med[zero]) / (rtt / 1000):.0f} round trips)" if rtt else "")
            for rtt in rtts
        )
        print(f"  {name}: {line}")
    for rtt in rtts:
        sdk, push = (statistics.median(times[n][rtt]) for n in ("sdk", "push"))
        print(f"  {rtt} ms: SDK/push {sdk / push:.2f}")


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Setup:
    served: Served
    root: Path
    csv: Path
    push_dataset: str
    sdk_dataset: str
    before_tree: Path | None = None


def run_push_of(tree: Path, *args: Any) -> Sample:
    """``run_push`` with the dsmsyncd of another checkout (``--before-tree``): the push
    subprocess imports from its working directory (``-c`` puts it first on sys.path)
    and from PYTHONPATH, so both point at ``tree`` while it runs."""
    cwd, path = Path.cwd(), os.environ.get("PYTHONPATH")
    os.chdir(tree)
    os.environ["PYTHONPATH"] = str(tree)
    try:
        return run_push(*args)
    finally:
        os.chdir(cwd)
        if path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = path


def write_config(setup: Setup, link: Link) -> Path:
    path = setup.root / f"push-{link.rtt_ms}.toml"
    path.write_text(
        DAEMON_CONFIG.format(
            url=link.served.url,
            user=USER,
            root=setup.root,
            ca=setup.served.ca,
            latency_dataset=setup.push_dataset,
        )
    )
    return path


def paths_for(setup: Setup, link: Link) -> dict[str, Callable[[], Sample]]:
    config_path = write_config(setup, link)
    config = load_config(config_path)
    via = link.served

    def with_server_work(sample: Sample, fourfour: str) -> Sample:
        sample.extra["server_work_s"] = asyncio.run(server_work(setup.served, fourfour))
        return sample

    push_args = (via, config_path, setup.push_dataset, setup.csv, setup.root)
    paths = {
        "push": lambda: with_server_work(run_push(*push_args), setup.push_dataset),
        "sdk": lambda: with_server_work(
            run_sdk_e2e(via, setup.sdk_dataset, setup.csv), setup.sdk_dataset
        ),
        "ours": lambda: asyncio.run(run_ours(config, setup.push_dataset, setup.csv, via)),
        "raw": lambda: asyncio.run(run_raw(via, setup.push_dataset, setup.csv)),
    }
    if setup.before_tree is not None:
        tree = setup.before_tree
        paths["before"] = lambda: with_server_work(
            run_push_of(tree, *push_args), setup.push_dataset
        )
    return paths


def client_part(sample: Sample) -> float:
    """The whole run less the server's work after the upload (``server_work``)."""
    return (sample.whole_s or 0.0) - sample.extra["server_work_s"]


def describe(name: str, sample: Sample) -> str:
    rest = f"less server work {client_part(sample):5.2f}s" if sample.whole_s else ""
    if name in ("push", "before"):
        return f"whole {sample.whole_s:6.2f}s, {rest}, peak RSS {sample.rss_mb:.0f} MB"
    if name == "sdk":
        return f"whole {sample.whole_s:6.2f}s, {rest} (its upload {sample.upload_s:.2f}s)"
    return f"upload {sample.upload_s:6.2f}s (server span {sample.span_s:.2f}s)"


def measure(setup: Setup, rtts: list[int], repeat: int) -> dict[int, dict[str, list[Sample]]]:
    links = {rtt: open_link(setup.served, rtt) for rtt in rtts}
    try:
        runs = {rtt: paths_for(setup, link) for rtt, link in links.items()}
        names = list(runs[rtts[0]])
        samples: dict[int, dict[str, list[Sample]]] = {
            rtt: {name: [] for name in names} for rtt in rtts
        }
        for i in range(repeat):
            for rtt in rtts:
                order = names[i % len(names) :] + names[: i % len(names)]
                for name in order:
                    setup.served.settle()
                    sample = runs[rtt][name]()
                    samples[rtt][name].append(sample)
                    print(f"run {i + 1} rtt {rtt:3d} ms {name:4s}: {describe(name, sample)}",
                          flush=True)  # fmt: skip
    finally:
        for link in links.values():
            link.close()
    return samples


def report(size: int, samples: dict[int, dict[str, list[Sample]]]) -> None:
    def med(rtt: int, name: str, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in samples[rtt][name])

    print(f"\nfile: {size / MIB:.0f} MiB ({size / 1e6:.0f} MB); medians of "
          f"{len(samples[min(samples)]['push'])}\n")  # fmt: skip
    print(
        "| RTT | push whole (s) | SDK whole (s) | SDK/push | push upload, in-process (s) "
        "| bare upload (s) | push/bare throughput | SDK upload (s) | push peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for rtt in samples:
        push, sdk = med(rtt, "push", "whole_s"), med(rtt, "sdk", "whole_s")
        ours, raw = med(rtt, "ours", "upload_s"), med(rtt, "raw", "upload_s")
        rss = max(s.rss_mb or 0.0 for s in samples[rtt]["push"])
        print(f"| {rtt} ms | {push:.2f} | {sdk:.2f} | {sdk / push:.2f} | {ours:.2f} | {raw:.2f} "
              f"| {raw / ours:.2f} | {med(rtt, 'sdk', 'upload_s'):.2f} | {rss:.0f} |")  # fmt: skip
    e2e = [name for name in E2E if name in samples[min(samples)]]
    zero = min(samples)

    def per_rtt(title: str, whole: Figure, rest: Figure) -> None:
        print(f"\n{title}")
        for rtt in samples:
            line = ", ".join(f"{n} {whole(rtt, n):.2f} / {rest(rtt, n):.2f}s" for n in e2e)
            print(f"  {rtt} ms: {line}")

    per_rtt(
        "end to end, medians: whole / less the server's work after the upload "
        "(parse, transforms, apply)",
        lambda rtt, n: med(rtt, n, "whole_s"),
        lambda rtt, n: _client_med(samples, rtt, n),
    )
    per_rtt(
        f"added by the round trip, over {zero} ms, medians: whole / less server work",
        lambda rtt, n: med(rtt, n, "whole_s") - med(zero, n, "whole_s"),
        lambda rtt, n: _client_med(samples, rtt, n) - _client_med(samples, zero, n),
    )
    print("\nfastest of the runs (less of the machine's other load in it):")
    for rtt in samples:
        what = {**WHAT, "before": "whole_s"}
        best = {n: min(getattr(s, what[n]) for s in runs) for n, runs in samples[rtt].items()}
        print(f"  {rtt} ms: " + ", ".join(f"{n} {v:.2f}s" for n, v in best.items()))
    print()
    base = med(0, "push", "whole_s") if 0 in samples else None
    for rtt in samples:
        push, sdk = med(rtt, "push", "whole_s"), med(rtt, "sdk", "whole_s")
        ratio = med(rtt, "raw", "upload_s") / med(rtt, "ours", "upload_s")
        line = f"rtt {rtt} ms: push/bare {ratio:.2f} (goal >= 0.9: {_met(ratio >= 0.9)})"
        if rtt in (50, 150):
            want = 2.0 if rtt == 50 else 3.0
            line += f"; SDK/push {sdk / push:.2f} (goal >= {want:.0f}: {_met(sdk / push >= want)})"
        if rtt == 50 and base is not None:
            extra = push - base
            line += f"; push {extra:+.2f}s over loopback (goal <= 1 s: {_met(extra <= 1.0)})"
        print(line)


def _client_med(samples: dict[int, dict[str, list[Sample]]], rtt: int, name: str) -> float:
    return statistics.median(client_part(s) for s in samples[rtt][name])


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=100, help="MiB of CSV (default 100)")
    parser.add_argument("--rtt-ms", default="0,50,150", help="round trips, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--before-tree",
        type=Path,
        help="another checkout (e.g. `git archive BASE | tar -x -C DIR`): its push runs too",
    )
    parser.add_argument(
        "--small-rows", type=int, default=1000, help="rows of the small-file part (0: skip)"
    )
    parser.add_argument("--serve-proxy", nargs=2, metavar=("UPSTREAM", "RTT_MS"))
    args = parser.parse_args()
    if args.serve_proxy:
        upstream, rtt = args.serve_proxy
        asyncio.run(serve_proxy(upstream, float(rtt)))
        return 0
    rtts = [int(x) for x in args.rtt_ms.split(",")]

    with tempfile.TemporaryDirectory(prefix="dsmsyncd-rtt-bench-", dir=args.tmp) as tmp:
        root = Path(tmp)
        prepare_root(root)
        csv_path = root / "bench.csv"
        generate(csv_path, args.size_mb * MIB)
        size = csv_path.stat().st_size
        print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        served = start_server(root)
        try:
            setup = Setup(
                served,
                root,
                csv_path,
                asyncio.run(new_dataset(served, "rtt bench (push)")),
                asyncio.run(new_dataset(served, "rtt bench (sdk)")),
                args.before_tree.resolve() if args.before_tree else None,
            )
            samples = measure(setup, rtts, args.repeat) if args.size_mb else {}
            if args.small_rows:
                small_file(setup, rtts, args.repeat, args.small_rows)
        finally:
            stop_server(served)
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if samples:
        report(size, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
