"""From parsed file to output schemas: guessed types, transforms, rows and errors."""

from __future__ import annotations

import aiohttp
import pytest

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    assert_refused,
    assert_refused_reply,
    fill,
    latest_output_schema,
    output_column,
    parsed_source,
    schema_link,
    settled,
    transform,
)
from tests.support.local_server import API


async def test_csv_gets_guessed_types_and_a_completed_output_schema(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev, source = await parsed_source(server, api)
    resource = source["resource"]
    assert resource["source_type"] == {"type": "upload", "filename": "data.csv"}
    assert resource["finished_at"] is not None
    assert resource["failed_at"] is None
    schema = resource["schemas"][0]
    assert schema["total_rows"] == 3
    assert schema["num_row_errors"] == 0
    assert [c["field_name"] for c in schema["input_columns"]][:3] == [
        "id",
        "street_number",
        "street_name",
    ]
    assert {c["soql_type"] for c in schema["input_columns"]} == {"text"}
    out = latest_output_schema(source)
    exprs = {c["field_name"]: c["transform"]["transform_expr"] for c in out["output_columns"]}
    assert exprs["amount"] == "to_number(`amount`)"
    assert exprs["street_name"] == "`street_name`"
    assert exprs["active"] == "to_boolean(`active`)"
    assert out["completed_at"] is not None
    assert out["completed_at"] == out["finished_at"]
    assert out["error_count"] == 0
    assert out["total_rows"] == 3
    assert all(c["transform"]["error_count"] == 0 for c in out["output_columns"])
    async with api.get(rev["links"]["show"]) as resp:
        revision = (await resp.json())["resource"]
    assert revision["output_schema_id"] == out["id"]


async def test_source_links_follow_the_digest(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await parsed_source(server, api)
    sid = source["resource"]["id"]
    links = source["links"]
    base = f"{API}/source/{sid}"
    assert links["chunk"] == f"{base}/chunk/{{seq_num}}/{{byte_offset}}"
    assert links["commit"] == f"{base}/chunk/{{seq_num}}/{{byte_offset}}/commit"
    assert links["show_input_schema"] == f"{base}/schema/{{input_schema_id}}"
    nested = links["input_schema_links"]["output_schema_links"]
    assert nested["rows"] == f"{base}/schema/{{input_schema_id}}/rows/{{output_schema_id}}"
    assert set(links) >= {
        "show",
        "bytes",
        "update",
        "add_to_revision",
        "load",
        "initiate",
        "cancel",
    }
    isid = source["resource"]["schemas"][0]["id"]
    async with api.get(schema_link(source, "show", input_schema_id=isid)) as resp:
        shown = await resp.json()
    assert set(shown["links"]) == {
        "show",
        "transform",
        "latest_output",
        "row_errors",
        "output_schema_links",
    }
    assert "{output_schema_id}" in shown["links"]["output_schema_links"]["show"]


async def test_transform_makes_a_new_output_schema_with_a_joined_column(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await parsed_source(server, api)
    first = latest_output_schema(source)
    resp = await transform(
        api,
        source,
        [
            output_column("address", "`street_number` || ' ' || `street_name`", 2),
            output_column("id", "to_number(`id`)", 1),
        ],
    )
    assert resp.status == 201
    async with api.get(resp.url) as again:  # the input schema still shows both
        assert again.status == 200
    isid = source["resource"]["schemas"][0]["id"]
    latest = await settled(server, api, schema_link(source, "latest_output", input_schema_id=isid))
    out = latest["resource"]
    assert out["id"] > first["id"]
    assert [c["field_name"] for c in out["output_columns"]] == ["id", "address"]
    assert out["completed_at"] is not None
    assert set(latest["links"]) == {
        "show",
        "rows",
        "schema_errors",
        "validate_row_id",
        "build_config",
    }
    async with api.get(latest["links"]["rows"] + "?limit=2&offset=1") as resp:
        rows = await resp.json()
    assert rows[0]["id"] == out["id"]
    assert rows[1:] == [
        {"offset": 1, "row": [{"ok": "2"}, {"ok": "7 Elm Rd"}]},
        {"offset": 2, "row": [{"ok": "3"}, {"ok": "9 Oak Ave"}]},
    ]


async def test_bad_expression_is_a_400_that_points_at_it(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await parsed_source(server, api)
    isid = source["resource"]["schemas"][0]["id"]
    url = schema_link(source, "transform", input_schema_id=isid)
    body = {"output_columns": [output_column("bad", "to_number(`id` ||)", 0)]}
    async with api.post(url, json=body) as resp:
        assert resp.status == 400
        error = await resp.json()
    assert error["data"]["field_name"] == "bad"
    assert isinstance(error["data"]["position"], int)
    assert error["data"]["line"] == 1
    assert error["data"]["column"] >= 1
    assert_refused(
        error, "transform_compilation_error", "transform of column 'bad' does not compile"
    )


# test name → the output columns sent, the field the 400 names, what its message says
BAD_TRANSFORMS = {
    "without_field_name": (
        [{"transform": {"transform_expr": "`id`"}}],
        "output_columns[0].field_name",
        "every output column needs a field_name",
    ),
    "with_duplicate_field_names": (
        [output_column("x", "`id`", 0), output_column("x", "`id`", 1)],
        "output_columns[1].field_name",
        "duplicate field_name 'x'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TRANSFORMS))
async def test_transform_is_refused(
    server: RunningServer, api: aiohttp.ClientSession, case: str
) -> None:
    columns, field, said = BAD_TRANSFORMS[case]
    _rev, source = await parsed_source(server, api)
    resp = await transform(api, source, columns)
    assert resp.status == 400
    body = await resp.json()
    assert body["data"]["field"] == field
    assert_refused(body, "invalid_field", said)


async def test_error_rows_as_json_and_csv(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await parsed_source(server, api)
    resp = await transform(
        api,
        source,
        [output_column("id", "`id`", 0), output_column("n", "to_number(`street_name`)", 1)],
    )
    assert resp.status == 201
    isid = source["resource"]["schemas"][0]["id"]
    latest = await settled(server, api, schema_link(source, "latest_output", input_schema_id=isid))
    out = latest["resource"]
    assert out["error_count"] == 3
    assert out["output_columns"][1]["transform"]["error_count"] == 3
    errors_url = latest["links"]["schema_errors"]
    async with api.get(errors_url + "?limit=500&offset=0") as resp:
        page = await resp.json()
    assert len(page) == 4
    cell = page[1]["row"][1]["error"]
    assert cell["inputs"] == {"street_name": {"ok": "Main St"}}
    assert "Unable to convert" in cell["message"]["english"]
    column_id = out["output_columns"][0]["id"]
    async with api.get(f"{errors_url}?column_id={column_id}") as resp:
        assert len(await resp.json()) == 1
    headers = {"Accept": "text/csv", "Content-Type": "text/csv"}
    async with api.get(errors_url, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        text = await resp.text()
    assert "Unable to convert" in text
    assert text.splitlines()[0] == "id,n,errors"


async def test_validate_row_identifier_reports_duplicates(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = b"id,name\n1,a\n1,b\n2,c\n"
    _rev, source = await parsed_source(server, api, data)
    out = latest_output_schema(source)
    template = source["links"]["input_schema_links"]["output_schema_links"]["validate_row_id"]
    by_name = {c["field_name"]: c["transform"]["id"] for c in out["output_columns"]}
    async with api.get(template.format(transform_id=by_name["id"])) as resp:
        assert await resp.json() == {"valid": False, "reason": "duplicate", "what": "1", "where": 1}
    async with api.get(template.format(transform_id=by_name["name"])) as resp:
        assert await resp.json() == {"valid": True}


async def test_show_transform(server: RunningServer, api: aiohttp.ClientSession) -> None:
    _rev, source = await parsed_source(server, api)
    out = latest_output_schema(source)
    transform = out["output_columns"][0]["transform"]
    url = f"{API}/source/{source['resource']['id']}/transform/{transform['id']}"
    async with api.get(url) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["resource"]["transform_expr"] == transform["transform_expr"]


async def test_parse_options_update_after_upload_makes_a_new_source(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = b"title row\nid,name\n1,a\n"
    rev, source = await parsed_source(server, api, data)
    options = {**source["resource"]["parse_options"], "header_count": 2, "column_header": 2}
    async with api.post(source["links"]["update"], json={"parse_options": options}) as resp:
        assert resp.status == 201, await resp.text()
        new = await resp.json()
    assert new["resource"]["id"] != source["resource"]["id"]
    assert new["resource"]["parse_options"]["header_count"] == 2
    shown = await settled(server, api, new["links"]["show"])
    fields = [c["field_name"] for c in shown["resource"]["schemas"][0]["input_columns"]]
    assert fields == ["id", "name"]
    async with api.get(rev["links"]["list_sources"]) as resp:
        assert len(await resp.json()) == 2


async def test_parse_row_errors_are_listed(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await parsed_source(server, api, b"a,b\n1,2\n3\n4,5\n")
    schema = source["resource"]["schemas"][0]
    assert schema["num_row_errors"] == 1
    async with api.get(schema_link(source, "row_errors", input_schema_id=schema["id"])) as resp:
        errors = await resp.json()
    assert errors[0]["error"]["type"] == "too_short"


async def test_a_clean_parse_lists_no_row_errors(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await parsed_source(server, api, b"a,b\n1,2\n4,5\n")
    schema = source["resource"]["schemas"][0]
    assert schema["num_row_errors"] == 0
    link = schema_link(source, "row_errors", input_schema_id=schema["id"])
    async with api.get(link) as resp:
        assert resp.status == 200
        assert await resp.json() == []
    async with api.get(link, params={"offset": "5", "limit": "2"}) as resp:
        assert resp.status == 200
        assert await resp.json() == []


async def test_build_config_copies_columns_and_parse_options(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await parsed_source(server, api)
    out = latest_output_schema(source)
    url = source["links"]["input_schema_links"]["output_schema_links"]["build_config"]
    url = fill(url, output_schema_id=out["id"])
    async with api.post(url, json={"name": "from-schema", "data_action": "replace"}) as resp:
        assert resp.status == 201, await resp.text()
        config = (await resp.json())["resource"]
    assert config["data_action"] == "replace"
    assert config["parse_options"] == source["resource"]["parse_options"]
    assert config["columns"][3]["transform_expr"] == "to_number(`amount`)"
    async with api.get(f"{API}/config/from-schema") as resp:
        assert resp.status == 200
    async with api.post(url, json={"name": "from-schema"}) as resp:
        await assert_refused_reply(
            resp, 409, "conflict", "an import config named 'from-schema' already exists"
        )
