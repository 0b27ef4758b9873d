"""Signatures and overload resolution: which SoQL types a function accepts and returns.

A parameter is a concrete SoqlType, a set of types, or a type variable (``"a"``) that
must bind to one type across the call. ``null`` fits anything, and a text *literal*
fits a number, checkbox or timestamp parameter when it parses as one (so
``` `when` > '2020-01-01' ``` type-checks), which is converted once at compile time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from dsmsyncd.server.soql_types import SoqlType, duckdb_type
from dsmsyncd.server.transforms import numbers
from dsmsyncd.server.transforms.errors import ExpressionError, Reason
from dsmsyncd.server.transforms.parser import FunCall, Lit, Node
from dsmsyncd.server.transforms.sqlgen import sql_text

Spec = SoqlType | frozenset[SoqlType] | str


@dataclass(frozen=True)
class Typed:
    """One compiled sub-expression."""

    value: str
    error: str
    type: SoqlType
    node: Node
    literal: str | bool | None = None  # the literal's value when `is_literal`
    is_literal: bool = False
    # Set when value and error are fields of this one expression (binding.py): a parent
    # must bind it once rather than splice value and error separately.
    packed: str | None = None


@dataclass(frozen=True)
class Call:
    """What a builder gets: the resolved, coerced arguments of one call."""

    name: str
    args: list[Typed]
    result_type: SoqlType
    node: FunCall
    source: str
    context: object  # CompileContext; kept loose to avoid an import cycle

    def fail(
        self, message: str, arg: int | None = None, reason: Reason = "type_mismatch"
    ) -> ExpressionError:
        """An ExpressionError pointing at the call or at one argument."""
        pos = self.args[arg].node.position if arg is not None else self.node.position
        return ExpressionError(message, pos, reason, self.source)

    def literal_text(self, arg: int, what: str) -> str:
        """The value of an argument that must be a text literal (a format, unit, zone…)."""
        a = self.args[arg]
        if not a.is_literal or not isinstance(a.literal, str):
            raise self.fail(
                f"{self.name}: the {what} (argument {arg + 1}) must be a text literal", arg
            )
        return a.literal


Builder = Callable[[Call], tuple[str, str]]


@dataclass(frozen=True)
class Signature:
    params: tuple[Spec, ...]
    result: Spec
    builder: Builder
    repeat: int = 0  # how many trailing parameters repeat (1: variadic, 2: case pairs)
    lazy: bool = False  # the builder computes the complete error itself
    strict: bool = True  # a NULL argument gives a NULL value (so errors need no masking)
    optional: int = 0  # how many trailing parameters may be omitted

    def accepts_count(self, n: int) -> bool:
        if self.repeat:
            fixed = len(self.params) - self.repeat
            return n >= len(self.params) and (n - fixed) % self.repeat == 0
        return len(self.params) - self.optional <= n <= len(self.params)

    def param(self, i: int) -> Spec:
        if i < len(self.params) or not self.repeat:
            return self.params[min(i, len(self.params) - 1)]
        fixed = len(self.params) - self.repeat
        return self.params[fixed + (i - fixed) % self.repeat]


def describe(spec: Spec) -> str:
    if isinstance(spec, SoqlType):
        return spec.value
    if isinstance(spec, frozenset):
        return " or ".join(sorted(t.value for t in spec))
    return "any type"


def resolve(
    name: str, sigs: list[Signature], args: list[Typed], node: FunCall, source: str
) -> tuple[Signature, SoqlType, list[Typed]]:
    """Pick the first signature that fits; returns it, the result type and coerced args."""
    by_count = [s for s in sigs if s.accepts_count(len(args))]
    if not by_count:
        counts = sorted({len(s.params) - s.optional for s in sigs} | {len(s.params) for s in sigs})
        raise ExpressionError(
            f"{name} takes {' or '.join(map(str, counts))} argument(s), not {len(args)}",
            node.position,
            "type_mismatch",
            source,
        )
    first_failure: tuple[int, str] | None = None
    for sig in by_count:
        bound = _bind(sig, args)
        if isinstance(bound[0], int):
            index, hint = bound
            assert isinstance(index, int)
            assert isinstance(hint, str)
            if first_failure is None or index > first_failure[0]:
                first_failure = (index, hint)
            continue
        env, coerced = bound
        assert isinstance(env, dict)
        assert isinstance(coerced, list)
        result = _concrete(sig.result, env)
        return sig, result, coerced
    assert first_failure is not None
    index, hint = first_failure
    arg = args[index]
    wanted = sorted({describe(s.param(index)) for s in by_count})
    if wanted == ["any type"] and hint:
        wanted = [hint]
    label = _display_name(name)
    raise ExpressionError(
        f"{label} does not accept argument {index + 1} of type {arg.type.value}; "
        f"it expects {' or '.join(wanted)}",
        arg.node.position,
        "type_mismatch",
        source,
    )


def _display_name(name: str) -> str:
    if name.startswith("op$"):
        return f"The operator {name[3:]!r}"
    if name.startswith("#"):
        return name[1:].replace("_", " ")
    return name


def _concrete(spec: Spec, env: dict[str, SoqlType]) -> SoqlType:
    if isinstance(spec, SoqlType):
        return spec
    if isinstance(spec, frozenset):
        return next(iter(spec))
    return env.get(spec, SoqlType.NULL)


def _bind(
    sig: Signature, args: list[Typed]
) -> tuple[dict[str, SoqlType], list[Typed]] | tuple[int, str]:
    """Bind type variables; on failure return the index of the first argument that misfits."""
    env: dict[str, SoqlType] = {}
    # Non-literals bind type variables first, so `x = '2020-01-01'` binds `a` to x's type.
    order = sorted(range(len(args)), key=lambda i: _is_text_literal(args[i]))
    for i in order:
        spec, arg = sig.param(i), args[i]
        if arg.type is SoqlType.NULL:
            continue
        if isinstance(spec, SoqlType):  # before `str`: SoqlType is a StrEnum
            if arg.type != spec and coerce_literal(arg, spec) is None:
                return i, ""
        elif isinstance(spec, frozenset):
            if arg.type not in spec:
                return i, ""
        else:
            bound = env.setdefault(spec, arg.type)
            if bound != arg.type and coerce_literal(arg, bound) is None:
                return i, f"{bound.value}, like its other arguments"
    coerced: list[Typed] = []
    for i, arg in enumerate(args):
        target = _concrete(sig.param(i), env) if not isinstance(sig.param(i), frozenset) else None
        if target is None or target is SoqlType.NULL or target == arg.type:
            coerced.append(arg)
        elif arg.type is SoqlType.NULL:
            cast = f"CAST({arg.value} AS {duckdb_type(target)})"
            coerced.append(replace(arg, value=cast, type=target))
        else:
            converted = coerce_literal(arg, target)
            assert converted is not None
            coerced.append(converted)
    return env, coerced


def _is_text_literal(arg: Typed) -> bool:
    return arg.is_literal and isinstance(arg.literal, str) and arg.type is SoqlType.TEXT


def coerce_literal(arg: Typed, target: SoqlType) -> Typed | None:
    """A text literal converted to `target` at compile time, or None if it does not parse."""
    if not _is_text_literal(arg) or not isinstance(arg.literal, str):
        return None
    text = arg.literal.strip()
    sql: str | None = None
    if target is SoqlType.NUMBER:
        sql = numbers.literal(text.lstrip("+"))
        if sql is None and text.startswith("-"):
            positive = numbers.literal(text[1:])
            sql = None if positive is None else numbers.negate(positive)
    elif target is SoqlType.CHECKBOX and text.lower() in ("true", "false"):
        sql = text.upper()
    elif target in (SoqlType.CALENDAR_DATE, SoqlType.DATE):
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if target is SoqlType.CALENDAR_DATE:
            sql = f"CAST({sql_text(when.replace(tzinfo=None).isoformat())} AS TIMESTAMP)"
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            sql = f"CAST({sql_text(when.isoformat())} AS TIMESTAMPTZ)"
    if sql is None or not isinstance(arg.node, Lit):
        return None
    return replace(arg, value=sql, type=target, is_literal=False)
