"""Datasets as the core API shows them ("views"), and how an apply changes them.

A view document is stored in the core-API wire shape (camelCase, no envelope, digest
§1.8), so ``GET /api/views/{ff}`` is the stored document minus internal keys. Columns
get stable integer ids: a column keeps its id across applies when its field name stays
or when the output column names the column it derives from
(``initial_output_column_id``), so a rename does not make a new column.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, public

# Revision metadata keys (snake/camel as DSMAPI sends them) copied onto the view.
METADATA_KEYS = (
    "name",
    "description",
    "category",
    "tags",
    "licenseId",
    "license",
    "attribution",
    "attributionLink",
    "metadata",
    "privateMetadata",
)


def dataset_table(fourfour: str) -> str:
    """The DuckDB table that holds a dataset's published rows."""
    return "ds_" + fourfour.replace("-", "_")


def new_view(fourfour: str, owner: Doc, metadata: dict[str, Any] | None) -> Doc:
    """A draft dataset: private, unpublished, no columns."""
    now = int(time.time())
    view: Doc = {
        "id": fourfour,
        "name": "",
        "description": "",
        "category": None,
        "tags": [],
        "metadata": {},
        "displayType": "table",
        "viewType": "tabular",
        "assetType": "dataset",
        "permissions": {"scope": "private"},
        "owner": {
            "id": owner["id"],
            "displayName": owner.get("displayName"),
            "screenName": owner.get("screenName"),
        },
        "columns": [],
        "rowIdentifierColumnId": None,
        "createdAt": now,
        "viewLastModified": now,
        "rowsUpdatedAt": None,
        "publicationStage": "unpublished",
        "_next_column_id": 1,
    }
    apply_metadata(view, metadata or {})
    return view


def apply_metadata(view: Doc, metadata: dict[str, Any]) -> None:
    """Copy revision metadata onto the view; absent keys leave the view as it is."""
    for key in METADATA_KEYS:
        if key in metadata:
            value = metadata[key]
            if key in ("tags",) and value is None:
                value = []
            if key == "metadata" and value is None:
                value = {}
            view[key] = value
    view["viewLastModified"] = int(time.time())


def parse_deleted_at(text: str) -> str:
    """Validate ``?deleted_at=`` (ISO 8601) and return it normalised to UTC."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an ISO 8601 date-time") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat()


def is_expired(view: Doc) -> bool:
    """An ephemeral dataset past its ``deleted_at`` is gone for every caller."""
    return is_past_deleted_at(view.get("_deleted_at"))


def is_past_deleted_at(deleted_at: Any) -> bool:
    """Whether a view's ``_deleted_at`` (the stored value, if any) has come."""
    if not isinstance(deleted_at, str):
        return False
    return dt.datetime.fromisoformat(deleted_at) <= dt.datetime.now(dt.UTC)


def set_permission(view: Doc, permission: str | None) -> None:
    if permission in ("public", "private"):
        view["permissions"] = {"scope": permission}


def view_wire(view: Doc, *, for_owner: bool) -> dict[str, Any]:
    """The core view JSON; private metadata only for the owner."""
    out = public(view)
    out["columns"] = [public(c) for c in view.get("columns", [])]
    if not for_owner:
        out.pop("privateMetadata", None)
    return out


def columns_from_output_schema(view: Doc, output_schema: Doc) -> tuple[list[Doc], int | None]:
    """The view's new columns for an output schema, and the row-identifier column id.

    Ids are kept by field name, or through ``initial_output_column_id`` → the output
    column it came from → that column's field name in the current view.
    """
    current = {c["fieldName"]: c for c in view.get("columns", [])}
    by_output_id = {c.get("_output_column_id"): c for c in view.get("columns", [])}
    next_id = int(view.get("_next_column_id", 1))
    columns: list[Doc] = []
    row_id: int | None = None
    ordered = sorted(output_schema.get("output_columns", []), key=lambda c: c.get("position", 0))
    for position, out_col in enumerate(ordered, start=1):
        field = out_col["field_name"]
        previous = current.get(field) or by_output_id.get(out_col.get("initial_output_column_id"))
        if previous is not None:
            column_id = int(previous["id"])
        else:
            column_id = next_id
            next_id += 1
        soql_type = (out_col.get("transform") or {}).get("output_soql_type") or "text"
        column = {
            "id": column_id,
            "name": out_col.get("display_name") or field,
            "fieldName": field,
            # A column's SODA datatype name is its SoQL type's name (digest §5.2).
            "dataTypeName": soql_type,
            "position": position,
            "description": out_col.get("description") or "",
            "format": out_col.get("format") or {},
            "_output_column_id": out_col.get("id"),
        }
        columns.append(column)
        if out_col.get("is_primary_key"):
            row_id = column_id
    view["_next_column_id"] = next_id
    return columns, row_id


def publish_columns(view: Doc, columns: list[Doc], row_id: int | None) -> None:
    view["columns"] = columns
    view["rowIdentifierColumnId"] = row_id


def save_view(meta: MetaStore, view: Doc) -> Doc:
    return meta.put(Kind.VIEW, view["id"], view)
