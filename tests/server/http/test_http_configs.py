"""Import configs (C1-C6) over real HTTP: defaults, validation, links, revisions."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from tests.server.http.flows import DENIED, NOT_FOUND, SIGN_IN, assert_refused, call, refused
from tests.support.local_server import API


async def test_create_config_fills_every_default(api: aiohttp.ClientSession) -> None:
    body = {
        "name": "cool-config",
        "data_action": "replace",
        "parse_options": {"encoding": "utf8", "header_count": 2, "column_header": 2},
        "columns": [
            {"field_name": "foo", "display_name": "Foo", "transform_expr": "to_number(`foo`)"}
        ],
    }
    status, env = await call(api, "POST", f"{API}/config", body)
    assert status == 201
    config = env["resource"]
    assert config["name"] == "cool-config"
    assert config["data_action"] == "replace"
    assert config["parse_options"] == {
        "encoding": "utf8",
        "header_count": 2,
        "column_header": 2,
        "quote_char": '"',
        "parse_source": True,
        "column_separator": ",",
        "remove_empty_rows": True,
        "trim_whitespace": True,
    }
    assert config["columns"] == [
        {
            "field_name": "foo",
            "display_name": "Foo",
            "transform_expr": "to_number(`foo`)",
            "format": {},
            "description": "",
            "is_primary_key": None,
            "flags": [],
        }
    ]
    assert "created_at" in config
    assert "updated_at" in config
    links = env["links"]
    assert set(links) == {"show", "update", "delete", "list", "create_revision"}
    assert links["create_revision"] == f"{API}/config/cool-config/revision/{{fourfour}}"


async def test_create_config_accepts_null_options_and_columns(
    api: aiohttp.ClientSession,
) -> None:
    body = {"name": "nulls", "data_action": "update", "parse_options": None, "columns": None}
    status, env = await call(api, "POST", f"{API}/config", body)
    assert status == 201
    assert env["resource"]["columns"] == []
    assert env["resource"]["parse_options"]["header_count"] == 1


async def test_duplicate_config_name_is_409(api: aiohttp.ClientSession) -> None:
    await call(api, "POST", f"{API}/config", {"name": "twice"})
    await refused(
        api,
        "POST",
        f"{API}/config",
        (409, "conflict"),
        "named 'twice' already exists",
        body={"name": "twice"},
    )


async def test_config_validation_names_the_field(api: aiohttp.ClientSession) -> None:
    cases = [
        ({"data_action": "update"}, "name"),
        ({"name": "x", "data_action": "upsert"}, "data_action"),
        ({"name": "x", "parse_options": {"header_count": "one"}}, "parse_options.header_count"),
        ({"name": "x", "parse_options": []}, "parse_options"),
        ({"name": "x", "columns": {}}, "columns"),
        ({"name": "x", "columns": [{"display_name": "A"}]}, "columns[0].field_name"),
    ]
    for body, field in cases:
        status, reply = await call(api, "POST", f"{API}/config", body)
        assert status == 400, body
        assert reply["data"]["field"] == field
        assert_refused(reply, "invalid_field", f"invalid field '{field}'")


async def test_config_with_space_in_name_is_percent_decoded(api: aiohttp.ClientSession) -> None:
    status, env = await call(api, "POST", f"{API}/config", {"name": "my config"})
    assert status == 201
    assert env["links"]["show"] == f"{API}/config/{quote('my config', safe='')}"
    status, env = await call(api, "GET", env["links"]["show"])
    assert status == 200
    assert env["resource"]["name"] == "my config"


async def test_list_show_update_delete_config(api: aiohttp.ClientSession) -> None:
    _, env = await call(api, "POST", f"{API}/config", {"name": "life"})
    status, listed = await call(api, "GET", f"{API}/config")
    assert status == 200
    assert [e["resource"]["name"] for e in listed] == ["life"]
    patch = {"data_action": "replace", "parse_options": {"column_separator": ";"}}
    status, updated = await call(api, "PATCH", env["links"]["update"], patch)
    assert status == 202
    assert updated["resource"]["data_action"] == "replace"
    assert updated["resource"]["parse_options"]["column_separator"] == ";"
    assert updated["resource"]["parse_options"]["quote_char"] == '"'
    status, renamed = await call(api, "PATCH", env["links"]["update"], {"name": "life2"})
    assert status == 202
    assert renamed["links"]["show"] == f"{API}/config/life2"
    await refused(
        api, "GET", f"{API}/config/life", NOT_FOUND, "import config 'life' does not exist"
    )
    status, _ = await call(api, "DELETE", renamed["links"]["delete"])
    assert status == 201
    status, body = await call(api, "GET", f"{API}/config/life2")
    assert status == 404
    assert body["error"] is True
    assert_refused(body, "not_found", "import config 'life2' does not exist")


async def test_unknown_config_is_404(api: aiohttp.ClientSession) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        await refused(
            api, method, f"{API}/config/nope", NOT_FOUND, "config 'nope' does not exist", body={}
        )


async def test_configs_need_credentials(anon_api: aiohttp.ClientSession) -> None:
    await refused(anon_api, "GET", f"{API}/config", SIGN_IN, "needs credentials")
    await refused(
        anon_api, "POST", f"{API}/config", SIGN_IN, "needs credentials", body={"name": "x"}
    )


async def test_revision_with_config_takes_its_action(api: aiohttp.ClientSession) -> None:
    await call(api, "POST", f"{API}/config", {"name": "rep", "data_action": "replace"})
    _, rev = await call(api, "POST", f"{API}/revision", {"metadata": {"name": "D"}})
    ff = rev["resource"]["fourfour"]
    status, env = await call(api, "POST", f"{API}/revision/{ff}", {"config": "rep"})
    assert status == 201
    assert env["resource"]["action"]["type"] == "replace"
    assert env["resource"]["revision_seq"] == 1
    assert "_config" not in env["resource"]
    await refused(
        api,
        "POST",
        f"{API}/revision/{ff}",
        NOT_FOUND,
        "config 'nope' does not exist",
        body={"config": "nope"},
    )
    status, body = await call(api, "POST", f"{API}/revision/{ff}", {"config": 5})
    assert status == 400
    assert body["data"]["field"] == "config"
    assert_refused(body, "invalid_field", "expected the name of an import config")


async def test_config_create_revision_link_opens_revision(api: aiohttp.ClientSession) -> None:
    _, config = await call(api, "POST", f"{API}/config", {"name": "upd"})
    _, rev = await call(api, "POST", f"{API}/revision", {"metadata": {"name": "D"}})
    ff = rev["resource"]["fourfour"]
    url = config["links"]["create_revision"].format(fourfour=ff)
    async with api.post(url) as resp:
        assert resp.status == 201
        env = await resp.json()
    assert env["resource"]["fourfour"] == ff
    assert env["resource"]["action"]["type"] == "update"
    status, body = await call(
        api, "POST", config["links"]["create_revision"].format(fourfour="zzzz-zzzz")
    )
    assert status == 404
    assert_refused(body, "not_found", "dataset zzzz-zzzz does not exist")


async def test_config_create_revision_on_others_dataset_is_403(
    api: aiohttp.ClientSession, bob_api: aiohttp.ClientSession
) -> None:
    _, config = await call(bob_api, "POST", f"{API}/config", {"name": "bobs"})
    _, rev = await call(api, "POST", f"{API}/revision", {"metadata": {"name": "D"}})
    url = config["links"]["create_revision"].format(fourfour=rev["resource"]["fourfour"])
    await refused(bob_api, "POST", url, DENIED, "only the owner of dataset")
