"""Numbers are exact decimals end to end: upload, transforms, apply, SODA JSON and CSV."""

from __future__ import annotations

from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    call,
    output_column,
    parsed_source,
    poll,
    publish,
    schema_link,
    settled,
    transform,
)

DECIMALS_CSV = (
    b"id,a,b,big\n"
    b"1,0.1,0.2,12345678901234567\n"
    b"2,1,3,-0.000000000000000001\n"
    b"3,1.10,0.3,99999999999999999999.999999999999999999\n"
)


async def test_guessed_numbers_read_back_exactly(api: aiohttp.ClientSession) -> None:
    ff, job = await publish(api, DECIMALS_CSV)
    assert job["status"] == "successful", job["log"]
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$order=id")
    assert status == 200
    assert rows == [
        {"id": "1", "a": "0.1", "b": "0.2", "big": "12345678901234567"},
        {"id": "2", "a": "1", "b": "3", "big": "-0.000000000000000001"},
        {"id": "3", "a": "1.1", "b": "0.3", "big": "99999999999999999999.999999999999999999"},
    ]
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$select=a%2Bb AS s&$order=id")
    assert status == 200
    assert rows == [{"s": "0.3"}, {"s": "4"}, {"s": "1.4"}]
    async with api.get(f"/resource/{ff}.csv?$order=id") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert text.splitlines() == [  # SODA CSV quotes every value, as hosted does
        '"id","a","b","big"',
        '"1","0.1","0.2","12345678901234567"',
        '"2","1","3","-0.000000000000000001"',
        '"3","1.1","0.3","99999999999999999999.999999999999999999"',
    ]


ARITHMETIC = [
    ("sum", "to_number(`a`) + to_number(`b`)"),
    ("product", "to_number(`a`) * to_number(`b`)"),
    ("quotient", "to_number(`a`) / to_number(`b`)"),
    ("power", "to_number(`a`) ^ 2"),
    ("rounded", "round(to_number(`b`) / 7, 4)"),
    ("text", "to_text(to_number(`a`) * 1.8 + 32) || ' F'"),
]


async def test_transform_arithmetic_is_decimal(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev, source = await parsed_source(server, api, DECIMALS_CSV)
    columns = [output_column(f, e, i) for i, (f, e) in enumerate(ARITHMETIC)]
    resp = await transform(api, source, columns)
    assert resp.status == 201
    isid = source["resource"]["schemas"][0]["id"]
    latest = await settled(server, api, schema_link(source, "latest_output", input_schema_id=isid))
    assert latest["resource"]["error_count"] == 0
    body = {"output_schema_id": latest["resource"]["id"]}
    status, job_env = await call(api, "PUT", rev["links"]["apply"], body)
    assert status == 200, job_env
    job = await poll(api, job_env["links"]["show"], "finished_at")
    assert job["status"] == "successful", job["log"]
    ff = rev["resource"]["fourfour"]
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$order=sum")
    assert status == 200
    assert rows == [
        {
            "sum": "0.3",
            "product": "0.02",
            "quotient": "0.5",
            "power": "0.01",
            "rounded": "0.0286",
            "text": "32.18 F",
        },
        {
            "sum": "1.4",
            "product": "0.33",
            "quotient": "3.666666666666666667",
            "power": "1.21",
            "rounded": "0.0429",
            "text": "33.98 F",
        },
        {
            "sum": "4",
            "product": "3",
            "quotient": "0.333333333333333333",
            "power": "1",
            "rounded": "0.4286",
            "text": "33.8 F",
        },
    ]


async def error_cells(
    server: RunningServer, api: aiohttp.ClientSession, csv: bytes, expr: str
) -> list[dict[str, Any]]:
    """The error cells of one transformed column, in file order."""
    _rev, source = await parsed_source(server, api, csv)
    resp = await transform(api, source, [output_column("n", expr, 0)])
    assert resp.status == 201
    isid = source["resource"]["schemas"][0]["id"]
    latest = await settled(server, api, schema_link(source, "latest_output", input_schema_id=isid))
    async with api.get(latest["links"]["schema_errors"] + "?limit=500&offset=0") as resp:
        page = await resp.json()
    return [item["row"][0]["error"] for item in page[1:]]


async def test_numbers_beyond_the_range_are_cell_errors(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    csv = b"x\n123456789012345678901\n0.1234567890123456789\nabc\n5\n"
    cells = await error_cells(server, api, csv, "to_number(`x`)")
    range_text = "the local server keeps 20 digits before the point, 18 after"
    assert cells == [
        {
            "message": {
                "type": "number_out_of_range",
                "english": f'Unable to convert "123456789012345678901" to number: {range_text}',
                "data": {"value": "123456789012345678901"},
            },
            "inputs": {"x": {"ok": "123456789012345678901"}},
        },
        {
            "message": {
                "type": "number_out_of_range",
                "english": f'Unable to convert "0.1234567890123456789" to number: {range_text}',
                "data": {"value": "0.1234567890123456789"},
            },
            "inputs": {"x": {"ok": "0.1234567890123456789"}},
        },
        {
            "message": {
                "type": "type_conversion_failed",
                "english": 'Unable to convert "abc" from text to number',
                "data": {"value": "abc", "source_type": "text", "target_type": "number"},
            },
            "inputs": {"x": {"ok": "abc"}},
        },
    ]


async def test_arithmetic_overflow_and_division_by_zero_are_cell_errors(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    csv = b"x\n99999999999999999999\n0\n2\n"
    cells = await error_cells(server, api, csv, "(to_number(`x`) * 10) / (to_number(`x`) % 2)")
    assert [c["message"] for c in cells] == [
        {
            "type": "number_out_of_range",
            "english": "The result of * is out of range: "
            "the local server keeps 20 digits before the point, 18 after",
            "data": {},
        },
        {"type": "divide_by_zero", "english": "Unable to divide by zero", "data": {}},
        {"type": "divide_by_zero", "english": "Unable to divide by zero", "data": {}},
    ]
