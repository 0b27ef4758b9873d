"""A small input's output schema is written out as a table; a larger one's is a view.

Both must read alike (issue 9 chose the table for small files: binding the transforms
once instead of three times): the same counts, pages, CSV export and apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.server.storage import output, sql
from dsmsyncd.server.storage.apply import AppliedColumn, ApplyTarget
from dsmsyncd.server.storage.rowstore import RowStore
from tests.server.unit.test_rowstore import load, number, ref, text

DATA = b"id,name\n1,x\nfoo,y\n3,\n4,w\n"


async def _outcome(store: RowStore, tmp_path: Path, n: int) -> dict[str, Any]:
    parsed = await load(store, tmp_path, DATA, f"in{n}")
    plan = [number("id", "c0"), text("name", "c1")]
    stats = await store.materialize(f"in{n}", f"out{n}", plan)
    inputs = ref(parsed, f"in{n}")
    page = await store.rows_page(f"out{n}", plan, 0, 10, inputs=inputs, errors_only=False)
    errors = await store.rows_page(f"out{n}", plan, 0, 10, inputs=inputs, errors_only=True)
    export = b"".join(
        [part async for part in store.export_csv(f"out{n}", plan, inputs=inputs, errors_only=True)]
    )
    columns = [
        AppliedColumn("id", plan[0].compiled.output_type, 0),
        AppliedColumn("name", plan[1].compiled.output_type, 1),
    ]
    applied = await store.apply(ApplyTarget(f"ds{n}", f"out{n}", n, n), columns, "update", None)
    return {
        "kind": await store._run(sql.relation_kind, f"out{n}"),
        "stats": stats,
        "page": page,
        "errors": errors,
        "export": export,
        "applied": applied,
    }


async def test_small_and_large_outputs_read_alike(
    store: RowStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = await _outcome(store, tmp_path, 1)
    monkeypatch.setattr(output, "WRITTEN_MAX_ROWS", 3)  # the 4-row input is "large"
    large = await _outcome(store, tmp_path, 2)

    assert (small.pop("kind"), large.pop("kind")) == ("TABLE", "VIEW")
    assert small == large
    assert small["stats"].error_rows == 1
    assert small["applied"].created == 3


async def test_a_small_output_is_replaced_when_materialized_again(
    store: RowStore, tmp_path: Path
) -> None:
    await load(store, tmp_path, DATA)
    await store.materialize("in1", "out1", [text("id", "c0")])
    stats = await store.materialize("in1", "out1", [number("id", "c0")])

    assert stats.column_error_counts == [1]
    assert await store._run(sql.relation_kind, "out1") == "TABLE"
    types = await store._run(sql.column_types, "out1")
    assert types["v0"].startswith("DECIMAL")  # the number transform's, not the text one's
