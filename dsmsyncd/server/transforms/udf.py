"""Functions that run as Python inside DuckDB, and how compiled SQL calls them.

Most functions compile to plain SQL, but some have no SQL form without DuckDB's
spatial extension (which downloads itself, so the local server cannot rely on it):
centroids, point-in-polygon, simplification to a vertex count, polyline decoding,
XPath. Those are Python scalar UDFs that every connection running compiled SQL must
have; :func:`register_udfs` adds them (the row store calls it on its connection, and
its cursors inherit them).

A UDF never raises: DuckDB would fail the whole import query. It returns one VARCHAR,
NULL, the result as text, or :data:`ERROR_MARK` followed by the JSON of a cell error,
and :func:`udf_call` splits that into the compiler's value and error expressions (the
two mention the same call; DuckDB evaluates it once per row). A NULL argument gives
NULL without running the body, which is the documented NULL in, NULL out.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import duckdb.func

from dsmsyncd.server.soql_types import SoqlType, duckdb_type

ERROR_MARK = "!"
PREFIX = "dsm_"
MEMO_ROWS = 8_192  # two threads' chunks of 2,048 rows, twice over
MEMO_BYTES = 32 * 1024 * 1024


class CellError(Exception):
    """Raised inside a UDF body: becomes the cell's error, not a query failure."""

    def __init__(self, kind: str, english: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(english)
        self.kind = kind
        self.english = english
        self.data = data or {}

    def as_json(self) -> str:
        return json.dumps({"type": self.kind, "english": self.english, "data": self.data})


@dataclass(frozen=True)
class Udf:
    name: str  # SQL name, with PREFIX
    params: tuple[str, ...]  # DuckDB types of the arguments
    body: Callable[..., str | None]


UDFS: dict[str, Udf] = {}


Body = Callable[..., str | None]


def udf(name: str, *params: str, failure: str) -> Callable[[Body], Body]:
    """Register a Python body as the UDF ``dsm_<name>``.

    `failure` is the error type given to an exception the body did not expect (a bug,
    or a geometry library refusing a shape); it still becomes a cell error.
    """

    def register(body: Body) -> Body:
        def guarded(*args: Any) -> str | None:
            if any(arg is None for arg in args):
                return None
            try:
                return body(*args)
            except CellError as error:
                return ERROR_MARK + error.as_json()
            except Exception as error:  # any failure is one cell's error
                english = f"{name} failed: {error}"
                return ERROR_MARK + CellError(failure, english).as_json()

        memo = _Memo(guarded)
        UDFS[name] = Udf(PREFIX + name, params, _with_arity(len(params), memo.call))
        return body

    return register


class _Memo:
    """The answers for the rows of the last chunk or two, so a row costs one call.

    The compiler splices a call's SQL into both the value and the error expression, and
    inside the lambdas of ``binding.py`` DuckDB does not merge the copies: it evaluates
    each over a whole chunk (2,048 rows), one after the other, so a UDF was measured at
    three calls per row. Bodies are deterministic; the memo answers the repeats. It
    holds at most ``MEMO_ROWS`` answers and ``MEMO_BYTES`` of text, then starts over, so
    its memory is bounded whatever the geometries weigh.
    """

    def __init__(self, body: Body) -> None:
        self.body = body
        self.answers: dict[tuple[Any, ...], str | None] = {}
        self.size = 0
        self.lock = threading.Lock()

    def call(self, *args: Any) -> str | None:
        with self.lock:
            if args in self.answers:
                return self.answers[args]
        answer = self.body(*args)
        weight = sum(len(a) for a in args if isinstance(a, str)) + len(answer or "")
        with self.lock:
            if len(self.answers) >= MEMO_ROWS or self.size + weight > MEMO_BYTES:
                self.answers.clear()
                self.size = 0
            self.answers[args] = answer
            self.size += weight
        return answer


def _with_arity(count: int, body: Body) -> Body:
    """`body` behind a signature of `count` parameters (DuckDB checks the arity)."""
    if count == 1:
        return lambda a: body(a)
    if count == 2:
        return lambda a, b: body(a, b)
    raise ValueError(f"no UDF takes {count} arguments")


def register_udfs(con: duckdb.DuckDBPyConnection) -> None:
    """Make every UDF callable on `con` (and on cursors made from it)."""
    for item in UDFS.values():
        con.create_function(
            item.name,
            item.body,
            list(item.params),  # DuckDB type names
            "VARCHAR",
            # NULL handling is ours (`guarded`), so that a body may also answer NULL.
            null_handling=duckdb.func.SPECIAL,
            side_effects=False,  # deterministic: one call per row even when spliced twice
        )


def udf_call(name: str, args: list[str], result: SoqlType) -> tuple[str, str]:
    """The value and error SQL of calling UDF `name` on SQL `args`."""
    item = UDFS[name]
    cast = [
        f"CAST({a} AS {t})" if t == "DOUBLE" else a for a, t in zip(args, item.params, strict=True)
    ]
    call = f"{item.name}({', '.join(cast)})"
    failed = f"starts_with({call}, '{ERROR_MARK}')"
    value = f"(CASE WHEN NOT {failed} THEN {call} END)"
    if duckdb_type(result) != "VARCHAR":
        value = f"CAST({value} AS {duckdb_type(result)})"
    return value, f"(CASE WHEN {failed} THEN substr({call}, 2) END)"
