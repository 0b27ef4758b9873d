"""email_parse, uri_parse, xml_pluck and random_number_normal, per the hosted docs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dsmsyncd.server.transforms import ExpressionError, compile_expression
from tests.server.unit.transform_runner import COLUMNS, error_of, geo, ok

XML = '<foo>\n  <bar attr="cool beans">\n    the contents!\n  </bar>\n</foo>'


def test_email_parse_documented_examples() -> None:
    email = "john.doe@socrata.com"
    assert ok("email_parse(a).name", email) == "john.doe"
    assert ok("email_parse(a).host", email) == "socrata.com"
    assert ok("email_parse(a).tld", email) == "COM"
    assert geo("email_parse(a)", "not an email") == {"name": None, "host": None, "tld": None}
    assert ok("email_parse(a)", None) is None
    assert ok("uri_parse(a)", None) is None


def test_uri_parse_documented_examples() -> None:
    assert geo("uri_parse(a)", "https://socrata.com/hello?foo=bar") == {
        "scheme": "https",
        "host": "socrata.com",
        "path": "/hello",
        "tld": "COM",
        "query": "foo=bar",
    }
    assert geo("uri_parse(a)", "not a url") == {
        "scheme": None,
        "host": None,
        "path": "not a url",
        "tld": None,
        "query": None,
    }
    assert ok("uri_parse(a).host", "http://user@Example.org:8080/x") == "Example.org"


def test_xml_pluck_documented_example_and_selectors() -> None:
    assert ok("xml_pluck(a, '/foo/bar/text()')", XML) == "the contents!"
    assert ok("xml_pluck(a, '//bar/@attr')", XML) == "cool beans"
    assert ok("xml_pluck(a, '/foo/bar')", '<foo><bar k="v">x</bar></foo>') == '<bar k="v">x</bar>'
    assert ok("xml_pluck(a, '/foo/missing/text()')", XML) is None
    assert ok("xml_pluck(a, '/foo/bar[2]/text()')", "<foo><bar>1</bar><bar>2</bar></foo>") == "2"


def test_xml_pluck_bad_document_is_a_cell_error() -> None:
    error = error_of("xml_pluck(a, '/foo')", "<foo><bar")
    assert error["type"] == "invalid_xml"
    assert error["english"].startswith("Unable to parse the XML: unclosed token")


def test_xml_pluck_unsupported_path_fails_at_compile_time() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("xml_pluck(a, 'foo/bar')", COLUMNS)
    assert caught.value.reason == "syntax"
    assert caught.value.message == (
        "xml_pluck: cannot use the XPath 'foo/bar': the path must start with / or //"
    )


def test_random_number_normal() -> None:
    assert ok("random_number_normal(10, 0)") == 10
    sample = ok("random_number_normal(0, 4)")
    assert isinstance(sample, Decimal)  # numbers are exact decimals, rounded from the draw
    assert len(sample.normalize().as_tuple().digits) <= 15
    assert error_of("random_number_normal(0, -1)") == {
        "type": "out_of_range",
        "english": "random_number_normal: the variance must not be negative",
        "data": {},
    }
