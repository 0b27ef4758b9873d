"""How deep JSON may nest in what the server reads and writes, in one place.

Python's JSON decoder and encoder recurse once per level of nesting, so a document
nested about a thousand levels deep raises ``RecursionError`` wherever it is parsed
or serialised: 100,000 ``[`` in a request body, or in a cell of a ``json`` column
read back through SODA, was a 500. Request bodies are refused past ``MAX_JSON_DEPTH``
(no request of the API needs more); JSON cells deeper than that are served as their
JSON text, which every client can still parse.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 64


class TooDeep(ValueError):
    """A JSON document nested deeper than ``MAX_JSON_DEPTH``."""


def loads(text: str | bytes) -> Any:
    """``json.loads``, raising :class:`TooDeep` for documents nested too deep."""
    try:
        value = json.loads(text)
    except RecursionError as exc:  # the decoder recurses once per level
        raise TooDeep(f"nested more than {MAX_JSON_DEPTH} levels deep") from exc
    if deeper_than(value, MAX_JSON_DEPTH):
        raise TooDeep(f"nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep (no recursion here)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
