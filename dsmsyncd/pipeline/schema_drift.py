"""Refuse a file whose header lacks a column its import config reads, before any revision.

An import config's transforms name input columns; a file whose header lost one of
them would make every row an error. The header (the first ``HEAD_BYTES`` of the file,
parsed with the config's options) is compared with the names the transforms reference
(``guards.py`` does the parsing and the comparison, without I/O).
"""

from __future__ import annotations

from dsmsyncd.blob import Blob
from dsmsyncd.dsmapi import DsmapiClient, RejectedError
from dsmsyncd.pipeline.guards import header_field_names, missing_columns, referenced_columns
from dsmsyncd.pipeline.refusals import Quarantine

HEAD_BYTES = 64 * 1024  # enough for any sane header row


async def check_schema_drift(client: DsmapiClient, blob: Blob, name: str, dataset: str) -> None:
    """Raise ``Quarantine`` when config ``name`` is missing or reads a column ``blob`` lacks."""
    try:
        config = await client.get_config(name)
    except RejectedError as exc:
        if exc.status != 404:
            raise
        raise Quarantine(
            "unknown_dataset",
            f"import config {name!r} does not exist on {client.base_url}: create it "
            f"there, or fix import_config in the mapping for dataset {dataset}",
            request_id=exc.request_id,
        ) from exc
    options = config.get("parse_options") or {}
    head = await blob.read_range(0, min(HEAD_BYTES, blob.size))
    header_count = options.get("header_count")
    names = header_field_names(
        head,
        options.get("column_separator") or ",",
        options.get("quote_char", '"'),
        1 if header_count is None else int(header_count),
        int(options.get("column_header") or 1),
        options.get("encoding"),
    )
    if not names:
        return  # no header to compare (no header row, or none in the first 64 KiB)
    referenced: set[str] = set()
    for column in config.get("columns") or []:
        expr = column.get("transform_expr") or f"`{column.get('field_name')}`"
        referenced |= referenced_columns(str(expr))
    missing = missing_columns(referenced, names)
    if missing:
        raise Quarantine(
            "schema_drift",
            f"{blob.name} lacks the column(s) {', '.join(missing)} that import config "
            f"{name!r} reads; its header has {', '.join(names)}. Fix the export, or "
            "update the config's columns to the new header",
        )
