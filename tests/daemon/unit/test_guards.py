"""Pure checks: header field names, transform column references, replace guards."""

from __future__ import annotations

import pytest

from dsmsyncd.pipeline.guards import (
    field_name,
    header_field_names,
    missing_columns,
    referenced_columns,
    replace_guard,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Case Number", "case_number"),
        ("  A  ", "a"),
        ("Rate (%)", "rate"),
        ("x--y__z", "x_y_z"),
        ("", "_"),
        ("Größe", "größe"),
    ],
)
def test_field_name_derivation(header: str, expected: str) -> None:
    assert field_name(header) == expected


def test_header_field_names_reads_first_row() -> None:
    head = b"Street Number,Street Name,City\n1,Main,x\n2,Elm"
    assert header_field_names(head) == ["street_number", "street_name", "city"]


def test_header_field_names_bom_quotes_and_separator() -> None:
    head = '\ufeff"Name; full";Age\r\nann;3\r\n'.encode()
    assert header_field_names(head, ";") == ["name_full", "age"]


def test_header_field_names_chooses_the_column_header_row() -> None:
    head = b"title line\nId,Value\n1,2\n"
    assert header_field_names(head, header_count=2, column_header=2) == ["id", "value"]


def test_header_field_names_without_header_is_empty() -> None:
    assert header_field_names(b"1,2\n", header_count=0) == []


def test_header_field_names_other_encoding() -> None:
    head = "Größe\tFarbe\n".encode("utf-16")
    assert header_field_names(head, "\t", encoding="utf16") == ["größe", "farbe"]


def test_header_field_names_head_cut_inside_a_character() -> None:
    head = "Name,Größe\n1,ü".encode()[:-1]
    assert header_field_names(head) == ["name", "größe"]


def test_referenced_columns_bare_and_backticked() -> None:
    assert referenced_columns("street_number || ' ' || street_name") == {
        "street_number",
        "street_name",
    }
    assert referenced_columns("to_number(`Case No`) + 1") == {"Case No"}


def test_referenced_columns_skips_functions_keywords_literals_members_casts() -> None:
    expr = (
        "coalesce(a, 'b c', \"d\") || case when x is not null then 'it''s' else null end"
        " || to_point(loc).latitude || '{}'::json || 1.5e3 || true"
    )
    assert referenced_columns(expr) == {"a", "x", "loc"}


def test_missing_columns_sorted() -> None:
    assert missing_columns({"b", "a", "c"}, ["c"]) == ["a", "b"]
    assert missing_columns({"a"}, ["a", "z"]) == []


def test_replace_guard_allows_growth_and_small_drops() -> None:
    assert replace_guard(100, 120, 0.5, False) is None
    assert replace_guard(100, 50, 0.5, False) is None
    assert replace_guard(0, 0, 0.5, False) is None


def test_replace_guard_refuses_large_drop() -> None:
    message = replace_guard(100, 10, 0.5, False)
    assert message is not None
    assert "90%" in message
    assert "max_row_drop" in message


def test_replace_guard_empty_file() -> None:
    message = replace_guard(5, 0, 1.0, False)
    assert message is not None
    assert "allow_empty_replace" in message
    assert replace_guard(5, 0, 0.5, True) is None
