"""Regex syntax of the docs, and honest answers for functions the server cannot run."""

from __future__ import annotations

import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import ColumnInput, ExpressionError, compile_expression
from dsmsyncd.server.transforms.fn_text import named_groups_as_re2
from dsmsyncd.server.transforms.functions import DOCUMENTED
from dsmsyncd.server.transforms.registry import ALIASES, NOT_AVAILABLE, REGISTRY
from tests.server.unit.test_transforms_functions import ok, run

COLUMNS = {"a": ColumnInput('"a"', SoqlType.TEXT)}


def test_documented_named_group_syntax_captures() -> None:
    expr = "regex_named_capture(a, '(?<year>[0-9]{4})-(?<month>[0-9]{2})', 'month')"
    assert ok(expr, "on 2024-06-01") == "06"
    python_style = "regex_named_capture(a, '(?P<year>[0-9]{4})', 'year')"
    assert ok(python_style, "on 2024-06-01") == "2024"
    assert ok("regex_capture(a, '(?<d>[0-9]+)x', 1)", "ab12x") == "12"
    assert ok("regex_replace(a, '(?<d>[0-9]+)', '<$1>')", "a1b22") == "a<1>b<22>"


def test_named_group_without_a_match_is_a_cell_error() -> None:
    value, error = run("regex_named_capture(a, '(?<n>[0-9]+)', 'n')", "none here")
    assert value is None
    assert error == {
        "type": "match_not_found",
        "english": "The regular expression did not match",
        "data": {"value": "none here"},
    }


def test_unknown_group_name_is_refused_at_compile_time() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("regex_named_capture(a, '(?<n>x)', 'm')", COLUMNS)
    assert info.value.message == (
        "regex_named_capture: the regular expression has no group named 'm'"
    )


@pytest.mark.parametrize(
    ("pattern", "re2"),
    [
        (r"(?<y>\d+)", r"(?P<y>\d+)"),
        (r"\(?<y>", r"\(?<y>"),  # an escaped parenthesis
        (r"[(?<y]", r"[(?<y]"),  # inside a character class
        (r"[]](?<y>x)", r"[]](?P<y>x)"),  # a class whose first member is ]
        (r"(?<=a)b", r"(?<=a)b"),  # lookbehind is not a named group
    ],
)
def test_named_groups_are_rewritten_only_where_they_are_groups(pattern: str, re2: str) -> None:
    assert named_groups_as_re2(pattern) == re2


def compile_error(expr: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(expr, COLUMNS)
    return info.value


def test_functions_needing_an_outside_service_say_so() -> None:
    e = compile_error("geocode(a, a, a, a)")
    assert e.reason == "not_available"
    assert e.message == (
        "`geocode` is not available on the local server: it needs a geocoding service on "
        "the internet"
    )
    for name, needs in NOT_AVAILABLE.items():
        e = compile_error(f"{name}(a)")
        assert (e.reason, e.message) == (
            "not_available",
            f"`{name}` is not available on the local server: it needs {needs}",
        )


def compile_outcome(expr: str) -> ExpressionError | None:
    """The compile error of ``expr``, or None when it compiles."""
    try:
        compile_expression(expr, COLUMNS)
    except ExpressionError as e:
        return e
    return None


def test_no_documented_function_is_called_unknown_or_suggested_as_itself() -> None:
    for name in DOCUMENTED:
        e = compile_outcome(f"{name}(a)")
        if e is None:
            continue
        assert e.reason != "unknown_function", e.message
        assert f"did you mean {name}?" not in e.message
        if ALIASES.get(name, name) not in REGISTRY and name not in NOT_AVAILABLE:
            assert (e.reason, e.message) == (
                "not_implemented",
                f"`{name}` is a documented transform function that the local server "
                "does not implement yet",
            )


def test_unknown_function_suggests_another_name() -> None:
    e = compile_error("uppr(a)")
    assert (e.reason, e.message) == (
        "unknown_function",
        "Unknown function uppr; did you mean upper?",
    )
    e = compile_error("no_such_thing_at_all(a)")
    assert (e.reason, e.message) == ("unknown_function", "Unknown function no_such_thing_at_all")


def test_unknown_member_lists_every_member_the_server_has() -> None:
    e = compile_error("a.bogus")
    assert e.reason == "unknown_function"
    assert e.message.startswith("Unknown member .bogus; members are address, city, description,")
    assert "latitude, longitude" in e.message
    assert "url, zip" in e.message
