"""File → mapping: the first ``[[mapping]]`` whose source and ``match`` glob fit a file.

The daemon routes each stable file here when discovery hands it over; the pipeline
routes here too, for a job recorded before jobs kept their routing (``job_routing``).

Globs are matched against the POSIX path relative to the source root, with path
semantics (not ``fnmatch``'s, where ``*`` crosses ``/`` and ``permits/*.csv`` would
also take ``permits/2026/a.csv``):

- ``*`` matches any run of characters within one path segment, ``?`` one character;
- ``**`` crosses segments; as a whole segment (``**/*.csv``, ``a/**/b``) it matches
  zero or more directories, so ``**/*.csv`` also matches ``top.csv``;
- ``[abc]``, ``[a-z]``, ``[!abc]`` are character classes (never matching ``/``);
  ``[[]`` is a literal ``[``; an unclosed ``[`` is literal;
- everything else is literal and case-sensitive.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.pipeline.sidecar_format import data_path_of


def route(
    source: str, relative_path: str, mappings: Sequence[MappingConfig]
) -> tuple[int, MappingConfig] | None:
    """The first mapping (and its index in ``mappings``) for this source that matches.

    A metadata sidecar (``NAME.meta.json``) is routed as its data file ``NAME`` would
    be, never as data of its own: it goes to the data file's dataset, or nowhere."""
    relative_path = data_path_of(relative_path) or relative_path
    for index, mapping in enumerate(mappings):
        if mapping.source == source and glob_regex(mapping.match).fullmatch(relative_path):
            return index, mapping
    return None


@functools.lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a path glob (see the module docstring) into an anchored regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            if j - i == 1:
                out.append("[^/]*")
            elif (i == 0 or pattern[i - 1] == "/") and j < n and pattern[j] == "/":
                out.append("(?:[^/]+/)*")  # "**/": zero or more whole directories
                j += 1
            else:
                out.append(".*")
            i = j
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            translated, i = _char_class(pattern, i)
            out.append(translated)
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def _char_class(pattern: str, start: int) -> tuple[str, int]:
    """``[...]`` at ``start`` → (regex, index after it); a lone ``[`` is literal."""
    j = start + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":  # "[]...]": a leading ] is a member
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 1
    if j >= len(pattern):
        return re.escape("["), start + 1
    body = pattern[start + 1 : j]
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    members = "".join("\\" + c if c in "\\^[]" else c for c in body)
    translated = f"[^/{members}]" if negate else f"(?!/)[{members}]"
    try:
        re.compile(translated)
    except re.error:  # a reversed range such as [z-a]: take the bracket literally
        return re.escape("["), start + 1
    return translated, j + 1
