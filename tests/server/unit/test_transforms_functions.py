"""Each function family, run as generated SQL in a real in-memory DuckDB."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import duckdb

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import ColumnInput, compile_expression

COLUMNS = {"a": ColumnInput('"a"', SoqlType.TEXT)}


def run(expr: str, a: str | None = None) -> tuple[Any, Any]:
    compiled = compile_expression(expr, COLUMNS)
    con = duckdb.connect()
    con.execute('CREATE TABLE t ("a" VARCHAR)')
    con.execute("INSERT INTO t VALUES (?)", [a])
    [(value, error)] = con.execute(
        f"SELECT {compiled.value_sql}, {compiled.error_sql} FROM t"
    ).fetchall()
    return value, json.loads(error) if error is not None else None


def ok(expr: str, a: str | None = None) -> Any:
    value, error = run(expr, a)
    assert error is None, error
    return value


def test_casts_text_number_boolean() -> None:
    assert ok("to_number(a)", " 1.5e1 ") == 15.0
    assert ok("to_text(to_number(a))", "2.0") == "2"
    assert ok("to_text(to_number(a))", "2.5") == "2.5"
    assert ok("to_boolean(a)", "1") is True
    assert ok("to_checkbox(a)", "false") is False
    assert ok("to_checkbox(to_number(a))", "0") is False
    assert run("to_boolean(a)", "maybe")[1]["english"].startswith("Unable to convert")


def test_json_cast_and_index() -> None:
    assert ok("a::json['k'][1]", '{"k": [1, "x"]}') == '"x"'
    assert ok("to_text(a::json['k'][1])", '{"k": [1, "x"]}') == "x"
    assert run("to_json(a)", "{nope")[1]["type"] == "type_conversion_failed"


def test_json_pluck_family() -> None:
    doc = '{"a": {"b": [1, 2.5]}, "s": "x", "t": true}'
    assert ok("json_pluck_number(a, '.a.b.[1]')", doc) == 2.5
    assert ok("json_pluck_text(a, '.s')", doc) == "x"
    assert ok("json_pluck_boolean(a, '.t')", doc) is True
    assert json.loads(ok("json_pluck(a, '.a')", doc)) == {"b": [1, 2.5]}
    assert run("json_pluck_number(a, '.s')", doc)[1]["type"] == "type_conversion_failed"
    assert ok("json_array_contains(a::json, 'x')", '[1, "x"]') is True
    assert ok("json_array_contains(a::json, 2)", '[1, "x"]') is False


def test_text_functions() -> None:
    assert ok("upper(a) || lower(a)", "Ab") == "ABab"
    assert ok("title_case(a)", "the lord OF the rings") == "The Lord of the Rings"
    assert ok("length(a)", "héllo") == 5
    assert ok("trim(a) || trim_leading(a) || trim_trailing(a)", " x ") == "xx  x"
    assert ok("left_pad(a, 5, '0') || right_pad(a, 4, '.')", "12") == "0001212.."
    assert ok("slice(a, 1, 3)", "hello") == "ell"
    assert ok("slice(a, -3, 2)", "hello") == "ll"
    assert run("slice(a, 0, -1)", "hello")[1]["type"] == "invalid_length"
    assert ok("replace(a, 'l', 'L') || replace_first(a, 'l', 'L')", "hello") == "heLLoheLlo"
    assert ok("starts_with(a, 'he') and contains(a, 'll')", "hello") is True
    assert ok("is_empty(a)", "   ") is True
    assert ok("hash(a, 'md5')", "a") == "0CC175B9C0F1B6A831C399E269772661"
    assert ok("url_decode(url_encode(a))", "a b/é") == "a b/é"


def test_regex_functions() -> None:
    assert ok("regex_replace(a, '(\\d+)', '<$1>')", "a1b22") == "a<1>b<22>"
    assert ok("regex_capture(a, '(\\d+)-(\\d+)', 2)", "10-20") == "20"
    assert ok("regex_named_capture(a, '(?P<y>\\d{4})', 'y')", "in 2020") == "2020"
    value, error = run("regex_capture(a, '(\\d+)', 1)", "none")
    assert value is None
    assert error["type"] == "match_not_found"


def test_split_select_out_of_range_is_error() -> None:
    assert ok("split_select(a, ',', 1)", "x,y,z") == "y"
    assert run("split_select(a, ',', 5)", "x,y")[1]["type"] == "index_out_of_bounds"


def test_logic_greatest_least_round_abs() -> None:
    assert ok("greatest(1, null, 3) + least(4, 2)") == 5
    assert ok("round(to_number(a), 1)", "2.345") == Decimal("2.3")
    assert ok("round(to_number(a), -1)", "1234") == 1230
    assert ok("abs(-2)") == 2
    assert 1 <= ok("random_number_between(1, 2)") <= 2


def test_timestamps_iso_and_format() -> None:
    assert ok("to_floating_timestamp(a)", "2020-01-02T03:04:05") == dt.datetime(2020, 1, 2, 3, 4, 5)
    assert ok("to_fixed_timestamp(a)", "2020-01-02T03:04:05+02:00") == dt.datetime(
        2020, 1, 2, 1, 4, 5, tzinfo=dt.UTC
    )
    fmt = "to_floating_timestamp(a, '%m/%d/%Y %I:%M %p')"
    assert ok(fmt, "01/02/2020 3:04 PM") == dt.datetime(2020, 1, 2, 15, 4)
    assert ok("to_floating_timestamp(a, '{ISO:Extended:Z}')", "2020-01-02") == dt.datetime(
        2020, 1, 2
    )
    assert ok(
        "to_fixed_timestamp(a, '%Y-%m-%d %H:%M:%S%.3f')", "2020-01-02 00:00:00.250"
    ) == dt.datetime(2020, 1, 2, 0, 0, 0, 250000, tzinfo=dt.UTC)
    value, error = run("to_floating_timestamp(a)", "not a date")
    assert value is None
    assert error["english"] == 'Unable to convert "not a date" from text to calendar_date'


def test_timestamp_zones() -> None:
    expr = "to_fixed_timestamp(to_floating_timestamp(a), 'America/New_York')"
    assert ok(expr, "2020-01-01T00:00:00") == dt.datetime(2020, 1, 1, 5, tzinfo=dt.UTC)


def test_date_extract_trunc_add() -> None:
    t = "to_floating_timestamp(a)"
    when = "2020-03-04T05:06:07"
    assert ok(f"date_extract_y({t}) * 100 + date_extract_m({t})", when) == 202003
    assert ok(f"date_extract_dow({t})", when) == 3  # a Wednesday; Sunday is 0
    assert ok(f"floating_timestamp_hour({t})", when) == 5
    assert ok(f"date_trunc_ym({t})", when) == dt.datetime(2020, 3, 1)
    assert ok(f"datetime_add_d({t}, -1.5)", when) == dt.datetime(2020, 3, 2, 17, 6, 7)
    assert run(f"datetime_add_d({t}, 1e12)", when)[1]["type"] == "out_of_range"


def test_datetime_diff_units_match_socrata_docs() -> None:
    def diff(t2: str, unit: str) -> Any:
        return ok(
            f"datetime_diff(to_fixed_timestamp('2017-12-13T00:24:53Z'), "
            f"to_fixed_timestamp('{t2}'), 'UTC', '{unit}')"
        )

    assert diff("2017-12-13T00:24:55Z", "seconds") == 2
    assert diff("2017-12-13T00:36:55Z", "minutes") == 12
    assert diff("2018-02-15T00:24:55Z", "days") == 64
    assert diff("2017-12-25T00:24:55Z", "business days") == 9
    assert diff("2018-02-25T00:24:55Z", "weeks") == 10
    assert diff("2018-02-25T00:24:55Z", "months") == 2


def test_geometry_from_wkt() -> None:
    assert json.loads(ok("to_point(a)", "POINT (-87.6 41.8)")) == {
        "type": "Point",
        "coordinates": [-87.6, 41.8],
    }
    assert json.loads(ok("to_polygon(a)", "POLYGON ((1 2, 3 4, 5 6, 1 2))"))["coordinates"] == [
        [[1, 2], [3, 4], [5, 6], [1, 2]]
    ]
    assert json.loads(ok("to_multipoint(a)", "MULTIPOINT ((1 2), (3 4))"))["coordinates"] == [
        [1, 2],
        [3, 4],
    ]
    assert run("to_point(a)", "POINT (1)")[1]["english"].startswith("Unable to convert")
    assert run("to_line(a)", "LINESTRING (1 2")[1]["type"] == "type_conversion_failed"


def test_make_point_and_members() -> None:
    assert ok("make_point(41.8, -87.6).latitude + point_longitude(make_point(1, 2))") == Decimal(
        "43.8"
    )
    assert (
        ok("url_url(make_url('http://x', 'X')) || make_url('u', a).description", "d") == "http://xd"
    )
    assert json.loads(ok("to_url(a)", "http://a")) == {"url": "http://a"}


def test_json_index_by_any_text_key_never_raises() -> None:
    """``json[key]`` with an empty key made DuckDB raise (JSONPath ``$.""``): a 500."""
    doc = '{"k": 1, "": 2, "a/b": 3, "q\\"x": 4}'
    for key, wanted in (("k", "1"), ("", "2"), ("a/b", "3"), ('q"x', "4"), ("zz", None)):
        assert ok(f"a::json[{key!r}]", doc) == wanted
    assert ok("a::json['0']", "[1, 2]") is None  # a text key does not index an array
