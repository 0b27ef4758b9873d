"""Import config documents (digest §1.7): named recipes a sync opens revisions with.

A config is stored under its name (names are unique on the domain) in its wire shape,
with every default of §1.7 filled in at creation, so that what a client reads back is
exactly what a revision opened with the config will use. Every config is made by
:func:`new_config`, whether a client posts it (C2) or builds it from an output schema
(O6), so both validate, fill defaults and refuse a taken name the same way.
"""

from __future__ import annotations

from typing import Any

from dsmsyncd.server.catalog import revisions, sources
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.catalog.users import creator_ref
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.transforms import ExpressionError
from dsmsyncd.server.transforms.limits import ExpressionLimitError
from dsmsyncd.server.transforms.parser import parse_expression

# What a config column keeps of an output column (its transform is kept as its text).
_COPIED_COLUMN_KEYS = (
    "field_name",
    "display_name",
    "format",
    "description",
    "is_primary_key",
    "flags",
)


def columns(raw: Any) -> list[dict[str, Any]]:
    """Config columns with ``format``, ``description``, ``is_primary_key``, ``flags`` filled."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_field("columns", "expected an array of columns or null")
    return [_column(f"columns[{index}]", col) for index, col in enumerate(raw)]


def _column(where: str, col: Any) -> dict[str, Any]:
    if not isinstance(col, dict):
        raise bad_field(where, "expected an object")
    field_name = col.get("field_name")
    if not isinstance(field_name, str) or not field_name:
        raise bad_field(f"{where}.field_name", "expected a non-empty string")
    expr = col.get("transform_expr")
    if expr is not None and not isinstance(expr, str):
        raise bad_field(f"{where}.transform_expr", "expected a string")
    if expr is not None:
        _check_limits(f"{where}.transform_expr", expr)
    for key, kind in (("format", dict), ("flags", list)):
        if col.get(key) is not None and not isinstance(col[key], kind):
            raise bad_field(
                f"{where}.{key}", f"expected {'an object' if kind is dict else 'an array'}"
            )
    return {
        **col,
        "field_name": field_name,
        "display_name": col.get("display_name") or field_name,
        "transform_expr": expr if expr is not None else f"`{field_name}`",
        "format": col.get("format") or {},
        "description": col.get("description") or "",
        "is_primary_key": col.get("is_primary_key"),
        "flags": col.get("flags") or [],
    }


def _check_limits(field: str, expr: str) -> None:
    """Refuse a transform over the expression limits now, not when a file arrives.

    Names and types can only be checked once a file's columns are known, so other
    faults still surface on the output schema then, as they always have.
    """
    try:
        parse_expression(expr)
    except ExpressionLimitError as exc:
        raise ApiError(
            400,
            f"invalid field '{field}': {exc}",
            key=exc.key,
            data={"field": field, "limit": exc.limit},
        ) from exc
    except ExpressionError:
        pass


def _data_action(raw: Any) -> str:
    if raw is None:
        return "update"
    if raw not in revisions.ACTION_TYPES:
        raise bad_field("data_action", f"must be one of {', '.join(revisions.ACTION_TYPES)}")
    return str(raw)


def _name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise bad_field("name", "expected a non-empty string")
    return raw


def _refuse_taken(meta: MetaStore, name: str) -> None:
    if meta.get(Kind.CONFIG, name) is not None:
        raise ApiError(409, f"an import config named {name!r} already exists", key="conflict")


def new_config(meta: MetaStore, body: dict[str, Any], user: Doc) -> Doc:
    """Validate and store a new config; 409 if the name is taken."""
    name = _name(body.get("name"))
    now = utcnow_iso()
    config: Doc = {
        "name": name,
        "data_action": _data_action(body.get("data_action")),
        "parse_options": sources.normalise_parse_options(body.get("parse_options")),
        "columns": columns(body.get("columns")),
        "created_at": now,
        "updated_at": now,
        "created_by": creator_ref(user),
    }
    _refuse_taken(meta, name)
    return meta.put(Kind.CONFIG, name, config, owner=user["id"])


def update_config(meta: MetaStore, config: Doc, body: dict[str, Any]) -> Doc:
    """A partial update (C4); a new ``name`` renames the config (409 if it is taken)."""
    updated = dict(config)
    if "data_action" in body:
        updated["data_action"] = _data_action(body["data_action"])
    if "parse_options" in body:
        updated["parse_options"] = sources.normalise_parse_options(
            body["parse_options"], config["parse_options"]
        )
    if "columns" in body:
        updated["columns"] = columns(body["columns"])
    new_name = _name(body["name"]) if "name" in body else config["name"]
    updated["name"] = new_name
    updated["updated_at"] = utcnow_iso()
    with meta.transaction():
        if new_name != config["name"]:
            _refuse_taken(meta, new_name)
            meta.delete(Kind.CONFIG, config["name"])
        meta.put(Kind.CONFIG, new_name, updated)
    return updated


def get(meta: MetaStore, name: str) -> Doc:
    config = meta.get(Kind.CONFIG, name)
    if config is None:
        raise not_found("import config", repr(name))
    return config


def open_revision(meta: MetaStore, fourfour: str, user: Doc, name: str) -> Doc:
    """A revision whose action comes from import config ``name`` (R3, C6)."""
    config = get(meta, name)
    action = {"type": config.get("data_action") or "update", "permission": None, "schema": None}
    return revisions.create(meta, fourfour, user, action=action, metadata={}, config=name)


def of_revision(meta: MetaStore, revision: Doc | None) -> Doc | None:
    """The import config a revision was opened with, if it still exists."""
    name = (revision or {}).get("_config")
    return meta.get(Kind.CONFIG, name) if isinstance(name, str) else None


def of_source(meta: MetaStore, source: Doc) -> Doc | None:
    """The import config of the revision a source belongs to, if any."""
    return of_revision(meta, revisions.of_source(meta, source))


def columns_of(output_schema: Doc) -> list[dict[str, Any]]:
    """Config columns that reproduce an output schema (O6), in position order.

    Pass them through :func:`columns` (as :func:`new_config` does) for the defaults.
    """
    ordered = sorted(output_schema["output_columns"], key=lambda c: c["position"])
    return [
        {
            **{key: col.get(key) for key in _COPIED_COLUMN_KEYS},
            "transform_expr": col["transform"]["transform_expr"],
        }
        for col in ordered
    ]
