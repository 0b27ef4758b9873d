"""Rows of a file that would not reach the dataset, counted in one place.

A row can be lost two ways, and the server reports them in two places:

* **Parse errors**: the parser could not split the row into the header's number of
  cells (too many, too few, or an unterminated quote that runs into the next rows).
  Such a row is not in the input table at all, so no output schema counts it; the
  *input* schema does (``num_row_errors``, and its ``row_errors`` page).
* **Data errors**: the row was parsed but a transform failed on one of its cells; the
  *output* schema counts it (``error_count``, and its ``schema_errors`` page).

Reading only the second made a file with unparsable rows publish without them, even
with ``max_error_rows = 0`` (issue 11). Both count against the mapping's threshold,
and both are listed in a quarantine report and a dry run's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dsmsyncd.dsmapi import DsmapiClient, InputSchema, OutputSchema, Source
from dsmsyncd.finalize.report import MAX_REPORTED_ERROR_ROWS

# An unterminated quote can make one "row" of megabytes; a report keeps its start.
MAX_REPORTED_CELL_CHARS = 1000


@dataclass(frozen=True)
class Processed:
    """What the server made of an upload: the output schema and the input schema under it."""

    schema: OutputSchema
    parsed: InputSchema

    @property
    def parse_error_count(self) -> int:
        return self.parsed.num_row_errors

    @property
    def error_count(self) -> int:
        """Rows that would not be published: parse errors plus data errors (disjoint)."""
        return self.schema.error_count + self.parsed.num_row_errors

    @property
    def usable_rows(self) -> int:
        """Rows the dataset would receive: the output's rows less those in error."""
        return max(0, int(self.schema.total_rows or 0) - self.schema.error_count)


async def wait_for_processing(client: DsmapiClient, source: Source) -> Processed:
    """Wait for the output schema and the input schema (its parse-error count) under it."""
    return Processed(*await client.wait_for_schemas(source))


def threshold_message(processed: Processed, max_error_rows: int) -> str:
    """Why a file over ``max_error_rows`` is refused, and what the operator can do."""
    parts = []
    if processed.parse_error_count:
        parts.append(
            f"{processed.parse_error_count} the server could not parse (a wrong number of "
            "cells, or an unterminated quote that runs into the following lines)"
        )
    if processed.schema.error_count:
        parts.append(f"{processed.schema.error_count} with data errors in a transform")
    return (
        f"{processed.error_count} row(s) cannot be published ({'; '.join(parts)}), more than "
        f"the mapping's max_error_rows of {max_error_rows}; the report lists up to "
        f"{MAX_REPORTED_ERROR_ROWS} of each kind. Fix those rows and drop the file again, "
        "or raise max_error_rows to publish without them"
    )


async def data_error_rows(client: DsmapiClient, processed: Processed, source_id: int) -> list[Any]:
    """Rows with data errors, each cell keyed by its output column's field name."""
    schema = processed.schema
    if not schema.error_count:
        return []
    raw = await client.error_rows(schema, source_id, MAX_REPORTED_ERROR_ROWS)
    names = [
        str(c.get("field_name"))
        for c in sorted(schema.columns, key=lambda c: int(c.get("position") or 0))
    ]
    return [
        {"offset": r.get("offset"), "row": dict(zip(names, r["row"], strict=False))}
        if isinstance(r, dict) and isinstance(r.get("row"), list)
        else r
        for r in raw
    ]


async def parse_error_rows(client: DsmapiClient, processed: Processed, source: Source) -> list[Any]:
    """Rows the parser refused, as the server gives them (``{"offset", "error"}``),
    with very long cells cut so that a report stays readable."""
    if not processed.parse_error_count:
        return []
    raw = await client.input_row_errors(source, processed.parsed.id, MAX_REPORTED_ERROR_ROWS)
    return [_shortened(entry) for entry in raw]


def _shortened(entry: Any) -> Any:
    if not isinstance(entry, dict) or not isinstance(entry.get("error"), dict):
        return entry
    error: dict[str, Any] = entry["error"]
    contents = error.get("contents")
    if not isinstance(contents, list):
        return entry
    cells = [
        cell[:MAX_REPORTED_CELL_CHARS] + "…"
        if isinstance(cell, str) and len(cell) > MAX_REPORTED_CELL_CHARS
        else cell
        for cell in contents
    ]
    return {**entry, "error": {**error, "contents": cells}}
