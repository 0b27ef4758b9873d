"""Text functions. Regexes, hash algorithms and group names must be literals, so that
DuckDB's RE2 can be asked at compile time whether they are valid."""

from __future__ import annotations

import re

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import numbers
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.sqlgen import NULL, fail_when, plain_error, probe, sql_text
from dsmsyncd.server.transforms.typecheck import Call

T, N, B = SoqlType.TEXT, SoqlType.NUMBER, SoqlType.CHECKBOX
_WS = "' \t\n\r'"
# New York Times style: these stay lower case unless they start the text.
_SMALL_WORDS = [
    "a",
    "an",
    "and",
    "as",
    "at",
    "but",
    "by",
    "en",
    "for",
    "if",
    "in",
    "nor",
    "of",
    "on",
    "or",
    "per",
    "the",
    "to",
    "v",
    "vs",
    "via",
]


def _unary(name: str, sql: str, result: SoqlType = T) -> None:
    @define(name, (T,), result)
    def build(c: Call) -> tuple[str, str]:
        return sql.format(x=c.args[0].value), NULL


_unary("lower", "lower({x})")
_unary("upper", "upper({x})")
_unary("length", numbers.from_integer("length({x})"), N)
_unary("grapheme_length", numbers.from_integer("length_grapheme({x})"), N)
_unary("url_encode", "url_encode({x})")
_unary("url_decode", "url_decode({x})")
_unary("trim", f"trim({{x}}, {_WS})")
_unary("trim_leading", f"ltrim({{x}}, {_WS})")
_unary("trim_trailing", f"rtrim({{x}}, {_WS})")


@define("title_case", (T,), T)
def _title_case(c: Call) -> tuple[str, str]:
    small = ", ".join(sql_text(w) for w in _SMALL_WORDS)
    word = "CASE WHEN i > 1 AND w IN ({small}) THEN w ELSE upper(left(w, 1)) || substr(w, 2) END"
    words = f"list_transform(string_split(lower({c.args[0].value}), ' '), lambda w, i: {word})"
    return f"array_to_string({words.format(small=small)}, ' ')", NULL


@define("trim", (T, T), T)
@define("trim_leading", (T, T), T)
@define("trim_trailing", (T, T), T)
def _trim_chars(c: Call) -> tuple[str, str]:
    fn = {"trim": "trim", "trim_leading": "ltrim", "trim_trailing": "rtrim"}[c.name]
    return f"{fn}({c.args[0].value}, {c.args[1].value})", NULL


@define("left_pad", (T, N, T), T)
@define("right_pad", (T, N, T), T)
def _pad(c: Call) -> tuple[str, str]:
    x, n, pad = (a.value for a in c.args)
    fn = "lpad" if c.name == "left_pad" else "rpad"
    width = f"TRY_CAST({n} AS INTEGER)"
    value = (
        f"(CASE WHEN {pad} = '' OR length({x}) >= {width} THEN {x} "
        f"ELSE {fn}({x}, least({width}, 10000000), {pad}) END)"
    )
    return value, NULL


@define("slice", (T, N, N), T, note="start is 0-based; a negative start counts from the end")
def _slice(c: Call) -> tuple[str, str]:
    x, start, count = (a.value for a in c.args)
    s = f"TRY_CAST({start} AS BIGINT)"
    n = f"TRY_CAST({count} AS BIGINT)"
    begin = f"(CASE WHEN {s} < 0 THEN greatest(length({x}) + {s}, 0) ELSE {s} END)"
    value = f"(CASE WHEN {n} >= 0 THEN substring({x}, {begin} + 1, {n}) END)"
    error = plain_error("invalid_length", "slice needs a length of zero or more")
    return value, fail_when(f"{n} < 0", error)


@define("replace", (T, T, T), T)
def _replace(c: Call) -> tuple[str, str]:
    x, find, repl = (a.value for a in c.args)
    return f"(CASE WHEN {find} = '' THEN {x} ELSE replace({x}, {find}, {repl}) END)", NULL


@define("replace_first", (T, T, T), T)
def _replace_first(c: Call) -> tuple[str, str]:
    x, find, repl = (a.value for a in c.args)
    at = f"strpos({x}, {find})"
    value = (
        f"(CASE WHEN {find} <> '' AND {at} > 0 THEN "
        f"left({x}, {at} - 1) || {repl} || substr({x}, {at} + length({find})) ELSE {x} END)"
    )
    return value, NULL


def named_groups_as_re2(pattern: str) -> str:
    """The documented ``(?<name>…)`` groups spelled ``(?P<name>…)``, as RE2 wants them.

    Escaped characters and character classes are left alone, so ``\\(?<`` and
    ``[(?<a]`` keep their meaning; ``(?<=`` and ``(?<!`` are not named groups.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":  # a leading ] is a member
                out.append("[]")
                i += 2
                continue
        elif pattern.startswith("(?<", i) and re.match(r"[A-Za-z_]", pattern[i + 3 : i + 4]):
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _regex(c: Call, arg: int) -> tuple[str, int, dict[str, int]]:
    """A validated literal regex: its SQL literal, group count and named groups."""
    pattern = named_groups_as_re2(c.literal_text(arg, "regular expression"))
    if not probe("SELECT regexp_matches('', ?)", [pattern]):
        raise c.fail(f"{c.name}: {pattern!r} is not a valid regular expression", arg, "syntax")
    try:
        compiled = re.compile(pattern)
        groups, names = compiled.groups, dict(compiled.groupindex)
    except re.error:
        groups, names = 0, {}
    return sql_text(pattern), groups, names


def _matched(c: Call, pattern: str, group: int) -> tuple[str, str]:
    """The captured group, with a match_not_found error (and NULL value) when no match."""
    x = c.args[0].value
    matches = f"regexp_matches({x}, {pattern})"
    value = f"(CASE WHEN {matches} THEN regexp_extract({x}, {pattern}, {group}) END)"
    error = plain_error("match_not_found", "The regular expression did not match", x)
    return value, fail_when(f"NOT {matches}", error)


@define("regex_replace", (T, T, T), T)
def _regex_replace(c: Call) -> tuple[str, str]:
    pattern, groups, _ = _regex(c, 1)
    repl = c.literal_text(2, "replacement")
    rewrite = re.sub(r"\$\{?(\d+)\}?", r"\\\1", repl)
    wanted = [int(g) for g in re.findall(r"\\(\d)", rewrite)]
    if wanted and max(wanted) > groups:
        raise c.fail(f"regex_replace: the replacement refers to group {max(wanted)}", 2)
    return f"regexp_replace({c.args[0].value}, {pattern}, {sql_text(rewrite)}, 'g')", NULL


@define("regex_capture", (T, T, N), T)
def _regex_capture(c: Call) -> tuple[str, str]:
    pattern, groups, _ = _regex(c, 1)
    index_arg = c.args[2]
    try:
        index = int(str(index_arg.literal)) if index_arg.is_literal else -1
    except ValueError:
        index = -1
    if not 0 <= index <= groups:
        raise c.fail(f"regex_capture: the group index must be a literal from 0 to {groups}", 2)
    return _matched(c, pattern, index)


@define("regex_named_capture", (T, T, T), T)
def _regex_named_capture(c: Call) -> tuple[str, str]:
    pattern, _, names = _regex(c, 1)
    name = c.literal_text(2, "group name")
    if name not in names:
        raise c.fail(f"regex_named_capture: the regular expression has no group named {name!r}", 2)
    return _matched(c, pattern, names[name])


@define("split_select", (T, T, N), T)
def _split_select(c: Call) -> tuple[str, str]:
    x, sep, idx = (a.value for a in c.args)
    parts = f"string_split({x}, {sep})"
    i = f"TRY_CAST({idx} AS BIGINT)"
    inside = f"{i} >= 0 AND {i} < len({parts})"
    error = plain_error("index_out_of_bounds", "split_select index is out of range", x)
    return f"(CASE WHEN {inside} THEN {parts}[{i} + 1] END)", fail_when(f"NOT ({inside})", error)


@define("starts_with", (T, T), B)
@define("contains", (T, T), B)
def _text_test(c: Call) -> tuple[str, str]:
    return f"{c.name}({c.args[0].value}, {c.args[1].value})", NULL


@define("is_empty", (T,), B, strict=False)
def _is_empty(c: Call) -> tuple[str, str]:
    x = c.args[0].value
    return f"({x} IS NULL OR trim({x}, {_WS}) = '')", NULL


_HASHES = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}


@define("hash", (T, T), T)
def _hash(c: Call) -> tuple[str, str]:
    algorithm = c.literal_text(1, "algorithm").lower()
    if algorithm not in _HASHES:
        raise c.fail(f"hash: the algorithm must be one of {', '.join(_HASHES)}", 1)
    return f"upper({_HASHES[algorithm]}({c.args[0].value}))", NULL
