"""The server's ingest stages on the flights file, in CPU seconds, before and after.

``bench/server_ingest.py`` measures the server end to end on its own timestamps; on a
shared machine its wall clocks swing 2x. This runs the server's own functions on the
same generated file (``server_ingest.generate_flights``) in a fresh process per run,
on a database file opened as the server opens it (``RowStore``), and reports each
stage's CPU seconds (all DuckDB threads) and wall seconds, alternating checkouts
(before, after, before, after ...):

  parse       ``ingest_file`` without the type guess: read_csv into the input table
  guess       the type guess over the parsed table
  transforms  ``output.materialize`` of the guessed output schema (view, error counts)
  apply       ``apply.apply`` of that output, replace, into a new dataset table

``--before DIR`` is a checkout to compare with (e.g. ``git archive main`` extracted);
without it only this checkout runs. ``--file 1m`` runs server_ingest's 1m file instead
(its types guessed too, not its import config). ``--dictionary`` is a what-if: the
server stores text with string compression off (``RowStore``), which makes every
transform read plain strings; this lets DuckDB store the input table's columns as
dictionaries again.

    .venv/bin/python bench/server_stages.py [--before DIR] [--repeat 3] [--file 1m]
        [--dictionary]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STAGES = ("parse", "guess", "transforms", "apply")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(results: dict[str, list[float]], stage: str, work: Callable[[], Any]) -> Any:
    wall, cpu = time.perf_counter(), _cpu_s()
    out = work()
    results[stage] = [_cpu_s() - cpu, time.perf_counter() - wall]
    return out


def worker(csv: Path, database: Path, dictionary: bool) -> dict[str, list[float]]:
    """One run of the four stages with whichever ``dsmsyncd`` is first on the path."""
    from dsmsyncd.server.jobs.output_schema import column_inputs, guessed_expression
    from dsmsyncd.server.storage import apply, ingest, output
    from dsmsyncd.server.storage.rowstore import RowStore
    from dsmsyncd.server.transforms import compile_expression

    guess_types = vars(ingest)["_guess_types"]  # the name on main and since guess.py
    # The server's own connection: its settings (string compression, insertion order,
    # memory) decide how the input table is stored and so what every stage costs.
    cur = RowStore(database)._cursor()
    if dictionary:  # what-if: the server turns dictionary compression off (FSST stays off)
        cur.execute("SET GLOBAL disabled_compression_methods = 'fsst'")
    results: dict[str, list[float]] = {}
    parsed = _timed(
        results,
        "parse",
        lambda: ingest.ingest_file(
            cur, csv, "in1", ingest.ParseOptions(), content_type=None, filename=csv.name,
            guess_types=False,
        ),
    )  # fmt: skip
    kinds = _timed(results, "guess", lambda: guess_types(cur, "in1", len(parsed.columns)))
    inputs = column_inputs(  # the input schema document's part that the server reads
        {
            "input_columns": [{"field_name": c.field_name} for c in parsed.columns],
            "_sql_names": {c.field_name: c.sql_name for c in parsed.columns},
        }
    )
    plans = [
        output.OutputColumnPlan(
            c.field_name, compile_expression(guessed_expression(c.field_name, kind), inputs)
        )
        for c, kind in zip(parsed.columns, kinds, strict=True)
    ]
    stats = _timed(results, "transforms", lambda: output.materialize(cur, "in1", "out1", plans))
    assert stats.error_rows == 0, stats
    columns = [
        apply.AppliedColumn(p.field_name, p.compiled.output_type, i) for i, p in enumerate(plans)
    ]
    target = apply.ApplyTarget("ds1", "out1", revision_id=1, task_set_id=1)
    _timed(results, "apply", lambda: apply.apply(cur, target, columns, "replace", None))
    return results


def run_once(checkout: Path, csv: Path, root: Path, dictionary: bool) -> dict[str, list[float]]:
    database = root / "stages.duckdb"
    database.unlink(missing_ok=True)
    code = (
        "import json, sys; "
        "sys.meta_path[:] = [f for f in sys.meta_path "
        "if getattr(f, '__name__', '') != '_EditableFinder']; "
        f"sys.path[:0] = [{str(checkout)!r}, {str(HERE)!r}]; "
        "from server_stages import worker; "
        f"print(json.dumps(worker(__import__('pathlib').Path({str(csv)!r}), "
        f"__import__('pathlib').Path({str(database)!r}), {dictionary!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="a checkout to compare with (run first each round)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--file", choices=["flights", "1m"], default="flights")
    parser.add_argument(
        "--dictionary",
        action="store_true",
        help="store the input table with dictionary compression (the server turns it off)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from server_ingest import generate, generate_flights

    checkouts = {"after": HERE.parent}
    if args.before:
        checkouts = {"before": Path(args.before).resolve(), **checkouts}
    runs: dict[str, list[dict[str, list[float]]]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-stages-") as tmp:
        root = Path(tmp)
        csv = root / f"{args.file}.csv"
        if args.file == "flights":
            generate_flights(csv)
        else:
            generate(csv, 1_000_000)
        for i in range(args.repeat):
            for name, checkout in checkouts.items():
                runs[name].append(run_once(checkout, csv, root, args.dictionary))
                line = ", ".join(f"{s} {runs[name][-1][s][0]:.3f}" for s in STAGES)
                print(f"run {i + 1} {name}: CPU s {line}", flush=True)
    med = statistics.median
    print(f"\nmedians of {args.repeat}, CPU s (wall s)")
    print("| stage | " + " | ".join(checkouts) + " |")
    print("|---|" + "---|" * len(checkouts))
    for stage in (*STAGES, "total"):
        cells = []
        for name in checkouts:
            if stage == "total":
                cpu = med(sum(r[s][0] for s in STAGES) for r in runs[name])
                wall = med(sum(r[s][1] for s in STAGES) for r in runs[name])
            else:
                cpu, wall = (
                    med(r[stage][0] for r in runs[name]),
                    med(r[stage][1] for r in runs[name]),
                )
            cells.append(f"{cpu:.3f} ({wall:.3f})")
        print(f"| {stage} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
