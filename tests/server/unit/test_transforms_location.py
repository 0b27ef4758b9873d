"""The legacy location type: make_location, to_location, the location_* readers."""

from __future__ import annotations

import json

import pytest

from dsmsyncd.server.transforms import ExpressionError, compile_expression
from tests.server.unit.transform_runner import COLUMNS, error_of, geo, ok

MADE = "make_location('3331 39th Ave', 'Vancouver', 'WA', '98818', to_point('POINT (42 42)'))"
ADDRESS = {"address": "3331 39th Ave", "city": "Vancouver", "state": "WA", "zip": "98818"}


def test_make_location_is_stored_as_soda_shows_a_location() -> None:
    location = geo(MADE)
    assert location == {
        "latitude": "42",
        "longitude": "42",
        "human_address": json.dumps(ADDRESS, separators=(",", ":")),
    }
    assert compile_expression(MADE, COLUMNS).output_type.value == "location"


def test_location_readers_documented_examples() -> None:
    assert ok(f"{MADE}.address") == "3331 39th Ave"
    assert ok(f"location_address({MADE})") == "3331 39th Ave"
    assert ok(f"location_city({MADE}) || location_state({MADE}) || location_zip({MADE})") == (
        "VancouverWA98818"
    )
    assert ok(f"{MADE}.city || {MADE}.state || {MADE}.zip") == "VancouverWA98818"
    point = {"type": "Point", "coordinates": [42, 42]}
    assert geo(f"{MADE}.point") == point
    assert geo(f"location_point({MADE})") == point
    assert geo(f"location_to_point({MADE})") == point


def test_make_location_from_a_point_or_from_address_parts() -> None:
    assert geo("make_location(make_point(47.5, -122.25))") == {
        "latitude": "47.5",
        "longitude": "-122.25",
    }
    no_point = geo("make_location(a, 'Seattle', null, null)", "1 Pike St")
    assert json.loads(no_point["human_address"]) == {
        "address": "1 Pike St",
        "city": "Seattle",
        "state": None,
        "zip": None,
    }
    assert ok("location_point(make_location(a, 'Seattle', null, null))", "x") is None
    assert ok("make_location(a, null, null, null)", None) is None


def test_make_location_keeps_the_error_of_an_argument() -> None:
    error = error_of("make_location(a, 'c', 's', 'z', to_point(a))", "nowhere")
    assert error["english"] == 'Unable to convert "nowhere" from text to point'


@pytest.mark.parametrize(
    ("text", "address", "point"),
    [
        ("350 5th Ave, New York, NY 10118", ("350 5th Ave", "New York", "NY", "10118"), None),
        (
            "350 5th Ave\nNew York, NY 10118\n(40.7484, -73.9857)",
            ("350 5th Ave", "New York", "NY", "10118"),
            [-73.9857, 40.7484],
        ),
        ("(40.7484, -73.9857)", None, [-73.9857, 40.7484]),
        ("12 Elm Street", ("12 Elm Street", None, None, None), None),
    ],
)
def test_to_location_reads_the_legacy_text_form(
    text: str, address: tuple[str | None, ...] | None, point: list[float] | None
) -> None:
    location = geo("to_location(a)", text)
    if address is None:
        assert "human_address" not in location
    else:
        human = json.loads(location["human_address"])
        assert tuple(human[k] for k in ("address", "city", "state", "zip")) == address
    got = geo("location_to_point(to_location(a))", text)
    assert (got["coordinates"] if got else None) == point


def test_to_location_reads_a_location_json_and_casts_agree() -> None:
    text = '{"latitude": "1.5", "longitude": "2", "human_address": {"city": "Paris"}}'
    location = geo("to_location(a)", text)
    assert location["latitude"] == "1.5"
    assert json.loads(location["human_address"])["city"] == "Paris"
    assert ok("cast_to_location(a) = a::location", text) is True
    assert ok("to_location(to_location(a)).city", text) == "Paris"


def test_to_location_of_unreadable_text_is_a_cell_error() -> None:
    assert error_of("to_location(a)", "x, y, zz zz zz") == {
        "type": "type_conversion_failed",
        "english": 'Unable to convert "x, y, zz zz zz" from text to location',
        "data": {"value": "x, y, zz zz zz", "source_type": "text", "target_type": "location"},
    }
    assert ok("to_location(a)", "  ") is None


def test_location_members_need_a_location() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("location_city(a)", COLUMNS)
    assert caught.value.message == (
        "location_city does not accept argument 1 of type text; it expects location"
    )
