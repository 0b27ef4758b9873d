"""The server's own OpenAPI description, made fuzzable, and the checks every reply must pass.

``dsmsyncd/server/openapi.json`` is the hosted publishing API's description as Socrata
publishes it: its paths name their parameters the Rails way (``/source/:source_id``)
and declare none of them, so a generator would send the literal text ``:source_id``.
:func:`fuzzable_schema` rewrites each ``:name`` into an OpenAPI template ``{name}`` and
declares it: as one of the ids of real objects given in ``known`` (so authenticated
endpoints reach real datasets, revisions and sources), or, for a name ``known`` lacks,
as any text or integer (so the same endpoints meet garbage ids in another run). It
adds the SODA read ``/resource/{fourfour}.json`` with every SoQL parameter, which the
publishing description does not cover, and turns the description's one invalid type
(``"type": "Transform"``, a component's name) into a reference to that component.
Nothing else of the description changes.

:func:`reply_problem` is the contract: no 5xx, and every error a JSON object with the
``error``/``key``/``message`` of ``dsmsyncd/server/errors.py``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

SOQL_PARAMETERS = ("$select", "$where", "$order", "$group", "$having", "$q", "$query")
PAGING_PARAMETERS = ("$limit", "$offset")
_RAILS_PARAMETER = re.compile(r":([a-z_]+)")


def fuzzable_schema(raw: Mapping[str, Any], known: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """``raw`` with declared path templates whose values come from ``known`` or anywhere."""
    schema: dict[str, Any] = _typed(copy.deepcopy(dict(raw)), set(raw["components"]["schemas"]))
    paths: dict[str, Any] = {}
    for path, operations in schema["paths"].items():
        names = _RAILS_PARAMETER.findall(path)
        templated = _RAILS_PARAMETER.sub(r"{\1}", path)
        declared = [_path_parameter(name, known.get(name, ())) for name in names]
        for operation in operations.values():
            if isinstance(operation, dict) and declared:
                operation["parameters"] = [*operation.get("parameters", []), *declared]
        paths[templated] = operations
    paths["/resource/{fourfour}.json"] = {"get": _soda_read(known.get("fourfour", ()))}
    schema["paths"] = paths
    return schema


_JSON_TYPES = {"array", "boolean", "integer", "null", "number", "object", "string"}


def _typed(node: Any, components: set[str]) -> Any:
    """``node`` with each ``"type": "<Component>"`` made a ``$ref`` to that component."""
    if isinstance(node, list):
        return [_typed(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    typed = {key: _typed(value, components) for key, value in node.items()}
    kind = typed.get("type")
    if isinstance(kind, str) and kind not in _JSON_TYPES and kind in components:
        del typed["type"]
        typed["$ref"] = f"#/components/schemas/{kind}"
    return typed


def _path_parameter(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """A real id (if ``values`` has any) or else any text or integer at all."""
    anything: dict[str, Any] = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]}
    schema = {"enum": list(values)} if values else anything
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _soda_read(fourfours: Sequence[Any]) -> dict[str, Any]:
    text = {"type": "string"}
    parameters = [_path_parameter("fourfour", fourfours)]
    parameters += [{"name": name, "in": "query", "schema": text} for name in SOQL_PARAMETERS]
    parameters += [
        {"name": name, "in": "query", "schema": {"anyOf": [{"type": "integer"}, text]}}
        for name in PAGING_PARAMETERS
    ]
    return {
        "operationId": "SODA read",
        "parameters": parameters,
        "responses": {"200": {"description": "rows"}},
    }


def reply_problem(status: int, content_type: str, body: bytes) -> str | None:
    """What is wrong with a reply, or None: a 5xx, or an error that is not the JSON error."""
    if status >= 500:
        return f"answered {status}: {body[:500]!r}"
    if status < 400:
        return None
    if not content_type.startswith("application/json"):
        return f"error {status} is {content_type!r}, not JSON: {body[:200]!r}"
    try:
        error = json.loads(body)
    except ValueError:
        return f"error {status} body is not JSON: {body[:200]!r}"
    if not isinstance(error, dict) or error.get("error") is not True:
        return f"error {status} body is not the JSON error: {body[:200]!r}"
    if not (isinstance(error.get("key"), str) and isinstance(error.get("message"), str)):
        return f"error {status} lacks a key or message: {body[:200]!r}"
    return None
