"""From a list of wanted output columns to compiled transforms and an output schema doc.

Three callers want an output schema: the first, guessed one after parsing; one built
from an import config's ``columns``; and the client's transform POST (digest §2.3.1).
They differ only in what a bad expression means: the POST refuses it with a 400 that
points at the fault, while the automatic ones record it on the column as a failed
transform (``failed_at`` + ``failure_details``), which is what makes the SDK's wait
report failure instead of hanging (§3e).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.errors import ApiError, bad_field
from dsmsyncd.server.soql_types import GEOMETRY_TYPES, SoqlType
from dsmsyncd.server.storage.rowstore import InputRef, OutputColumnPlan
from dsmsyncd.server.storage.sql import ident
from dsmsyncd.server.transforms import (
    ColumnInput,
    CompileContext,
    CompiledExpression,
    ExpressionError,
    compile_expression,
    limits,
)
from dsmsyncd.server.transforms.limits import ExpressionLimitError
from dsmsyncd.server.transforms.sqlgen import null_if_blank

# The transform a parsed column gets by default, per guessed type (digest §5.2).
_GUESSED_FUNCTION: dict[str, str] = {
    SoqlType.NUMBER: "to_number",
    SoqlType.CHECKBOX: "to_boolean",
    SoqlType.CALENDAR_DATE: "to_floating_timestamp",
    SoqlType.DATE: "to_fixed_timestamp",
    **{t: f"to_{t.value}" for t in GEOMETRY_TYPES},
}


@dataclass
class ColumnSpec:
    """What a caller asks of one output column; only these fields matter (§2.3.1)."""

    field_name: str
    transform_expr: str
    display_name: str | None = None
    description: str = ""
    position: int = 0
    is_primary_key: bool | None = None
    format: dict[str, Any] = field(default_factory=dict)
    flags: list[Any] = field(default_factory=list)
    initial_output_column_id: int | None = None


@dataclass
class PlannedColumn:
    spec: ColumnSpec
    compiled: CompiledExpression
    failure: ExpressionError | None = None


def column_id(meta: MetaStore) -> int:
    """Ids for input and output columns.

    The metastore has no column kind (columns live inside their schema documents), so
    they draw from the transform counter: ids stay unique and increasing, which is all
    a client relies on.
    """
    return meta.next_id(Kind.TRANSFORM)


def compile_context(source: Doc) -> CompileContext:
    """What an expression may read besides its columns: when the source was created."""
    created = dt.datetime.fromisoformat(source["created_at"]).replace(tzinfo=dt.UTC)
    return CompileContext(source_created_at=created)


def guessed_expression(field_name: str, guessed_type: str) -> str:
    column = "`" + field_name.replace("`", "``") + "`"
    function = _GUESSED_FUNCTION.get(str(guessed_type))
    return column if function is None else f"{function}({column})"


def column_inputs(input_schema: Doc) -> dict[str, ColumnInput]:
    """What transform expressions may reference: the input columns, by field name.

    An empty cell reads as null, as on a hosted site, where a blank cell is the absence
    of a value in every column type (so ``to_text`` of it is null, and SODA rows omit
    it); the input table itself keeps ``""`` so that its rows stay checkable. Only a
    text column can hold ``""``: a typed one (a view source's numbers, say) is read as
    it is, since comparing it with ``''`` would cast ``''`` to its type, which fails.
    """
    sql_names: dict[str, str] = input_schema.get("_sql_names", {})
    inputs = {}
    for col in input_schema["input_columns"]:
        kind = SoqlType(col.get("soql_type") or "text")
        cell = ident(sql_names.get(col["field_name"], col["field_name"]))
        inputs[col["field_name"]] = ColumnInput(
            null_if_blank(cell) if kind is SoqlType.TEXT else cell, kind
        )
    return inputs


def specs_from_request(raw: Any) -> list[ColumnSpec]:
    """Validate the ``output_columns`` of a transform POST; extra keys are ignored."""
    if not isinstance(raw, list):
        raise bad_field("output_columns", "expected an array of output columns")
    specs: list[ColumnSpec] = []
    seen: set[str] = set()
    for index, col in enumerate(raw):
        where = f"output_columns[{index}]"
        if not isinstance(col, dict):
            raise bad_field(where, "expected an object")
        name = col.get("field_name")
        if not isinstance(name, str) or not name.strip():
            raise bad_field(f"{where}.field_name", "every output column needs a field_name")
        if name in seen:
            raise bad_field(f"{where}.field_name", f"duplicate field_name {name!r}")
        seen.add(name)
        transform = col.get("transform")
        expr = transform.get("transform_expr") if isinstance(transform, dict) else None
        if not isinstance(expr, str) or not expr.strip():
            raise bad_field(
                f"{where}.transform.transform_expr", f"column {name!r} needs a transform_expr"
            )
        specs.append(spec_from_dict(col, expr, index))
    specs.sort(key=lambda s: s.position)
    return specs


def spec_from_dict(col: Mapping[str, Any], expr: str, index: int) -> ColumnSpec:
    position = col.get("position")
    initial = col.get("initial_output_column_id")
    fmt = col.get("format")
    flags = col.get("flags")
    description = col.get("description")
    return ColumnSpec(
        field_name=str(col["field_name"]),
        transform_expr=expr,
        display_name=col.get("display_name") or str(col["field_name"]),
        description=description if isinstance(description, str) else "",
        position=position
        if isinstance(position, int) and not isinstance(position, bool)
        else index,
        is_primary_key=col.get("is_primary_key")
        if isinstance(col.get("is_primary_key"), bool)
        else None,
        format=fmt if isinstance(fmt, dict) else {},
        flags=flags if isinstance(flags, list) else [],
        initial_output_column_id=initial if isinstance(initial, int) else None,
    )


def plan(
    specs: list[ColumnSpec],
    inputs: Mapping[str, ColumnInput],
    context: CompileContext,
    *,
    strict: bool,
) -> list[PlannedColumn]:
    """Compile every column; ``strict`` turns the first bad expression into a 400."""
    planned: list[PlannedColumn] = []
    total_sql = 0
    for spec in specs:
        try:
            compiled = compile_expression(spec.transform_expr, inputs, context=context)
            total_sql += len(compiled.value_sql) + len(compiled.error_sql)
            if total_sql > limits.MAX_STATEMENT_SQL_CHARS:
                raise limits.statement_too_large(
                    "The output schema's transforms", "simplify them or use fewer columns"
                )
        except ExpressionError as exc:
            if strict:
                raise expression_refused(spec, exc) from exc
            placeholder = compile_expression("null", inputs, context=context)
            planned.append(PlannedColumn(spec, placeholder, exc))
            continue
        planned.append(PlannedColumn(spec, compiled))
    return planned


def expression_refused(spec: ColumnSpec, exc: ExpressionError) -> ApiError:
    """The 400 for a transform that does not compile; a limit names itself in the key."""
    data: dict[str, Any] = {
        "field_name": spec.field_name,
        "transform_expr": spec.transform_expr,
        "position": exc.position,
        "line": exc.line,
        "column": exc.column,
        "reason": exc.reason,
    }
    key = "transform_compilation_error"
    if isinstance(exc, ExpressionLimitError):
        key = exc.key
        data["limit"] = exc.limit
    return ApiError(
        400,
        f"transform of column {spec.field_name!r} does not compile: {exc.message} "
        f"(line {exc.line}, column {exc.column})",
        key=key,
        data=data,
    )


def new_output_schema(
    meta: MetaStore,
    input_schema: Doc,
    planned: list[PlannedColumn],
    sort_bys: list[Any],
    created_by: dict[str, Any],
) -> Doc:
    """Store a new, unfinished output schema (and pointers to its transforms)."""
    now = utcnow_iso()
    osid = meta.next_id(Kind.OUTPUT_SCHEMA)
    input_ids = {c["field_name"]: c["id"] for c in input_schema["input_columns"]}
    columns = [_column_doc(meta, p, input_ids, now) for p in planned]
    doc: Doc = {
        "id": osid,
        "input_schema_id": input_schema["id"],
        "output_columns": columns,
        "sort_bys": sort_bys,
        "error_count": None,
        "total_rows": None,
        "created_at": now,
        "created_by": created_by,
        "completed_at": None,
        "finished_at": None,
        "_table": f"out_{osid}",
        "_source_id": input_schema["_source_id"],
        "_input_table": input_schema["_table"],
    }
    meta.put(Kind.OUTPUT_SCHEMA, osid, doc, parent=input_schema["id"])
    for col in columns:
        tid = col["transform"]["id"]
        pointer = {"id": tid, "_output_schema_id": osid, "_source_id": input_schema["_source_id"]}
        meta.put(Kind.TRANSFORM, tid, pointer, parent=osid)
    return doc


def _column_doc(
    meta: MetaStore, item: PlannedColumn, input_ids: Mapping[str, int], now: str
) -> dict[str, Any]:
    spec, compiled, failure = item.spec, item.compiled, item.failure
    referenced = [] if failure else sorted(set(compiled.referenced_columns))
    transform: dict[str, Any] = {
        "id": meta.next_id(Kind.TRANSFORM),
        "transform_expr": spec.transform_expr,
        "output_soql_type": None if failure else str(compiled.output_type),
        "transform_input_columns": [
            {"input_column_id": input_ids[name]} for name in referenced if name in input_ids
        ],
        "parsed_expr": None if failure else compiled.parsed_expr,
        "completed_at": None,
        "finished_at": None,
        "failed_at": now if failure else None,
        "failure_details": (
            {"message": str(failure), "type": failure.reason} if failure is not None else None
        ),
        "error_count": None,
        "attempts": 1,
        "has_cell_edits": False,
    }
    return {
        "id": column_id(meta),
        "field_name": spec.field_name,
        "display_name": spec.display_name or spec.field_name,
        "description": spec.description,
        "position": spec.position,
        "is_primary_key": spec.is_primary_key,
        "format": spec.format,
        "flags": spec.flags,
        "initial_output_column_id": spec.initial_output_column_id,
        "transform": transform,
    }


@dataclass(frozen=True)
class StoredTransform:
    """A finished transform as the row store reads it back: its type and its inputs.

    Reading rows needs no SQL of the expression (the values are already in the output
    table), so nothing is recompiled to serve a page.
    """

    output_type: SoqlType
    referenced_columns: tuple[str, ...]
    value_sql: str = "NULL"
    error_sql: str = "NULL"
    parsed_expr: dict[str, Any] = field(default_factory=dict)


def read_plans(doc: Doc, input_schema: Doc) -> tuple[list[OutputColumnPlan], InputRef]:
    """The columns of a stored output schema, in table order, and its input table."""
    names = {c["id"]: c["field_name"] for c in input_schema["input_columns"]}
    plans = []
    for col in sorted(doc["output_columns"], key=lambda c: c["position"]):
        transform = col["transform"]
        refs = tuple(
            names[ref["input_column_id"]]
            for ref in transform.get("transform_input_columns") or []
            if ref.get("input_column_id") in names
        )
        soql_type = SoqlType(transform.get("output_soql_type") or SoqlType.NULL)
        plans.append(OutputColumnPlan(col["field_name"], StoredTransform(soql_type, refs)))
    sql_names: dict[str, str] = input_schema.get("_sql_names", {})
    return plans, InputRef(input_schema["_table"], sql_names)
