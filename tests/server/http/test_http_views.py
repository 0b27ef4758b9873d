"""Views and SODA reads over real HTTP, with data published through the upload flow."""

from __future__ import annotations

import aiohttp

from tests.server.http.flows import (
    DENIED,
    NOT_FOUND,
    SIGN_IN,
    assert_refused,
    call,
    poll,
    publish,
    refused,
)
from tests.support.local_server import API

CSV = b"id,name,score\n1,ann,10\n2,bob,20\n3,cy,30\n"


async def test_apply_publishes_rows_and_columns(api: aiohttp.ClientSession) -> None:
    ff, job = await publish(api, CSV)
    assert job["status"] == "successful", job["log"]
    upserted = next(e for e in job["log"] if e["stage"] == "rows_upserted")
    assert upserted["details"]["Rows Created"] == 3
    assert upserted["details"]["Errors"] == 0
    status, view = await call(api, "GET", f"/api/views/{ff}")
    assert status == 200
    assert [c["fieldName"] for c in view["columns"]] == ["id", "name", "score"]
    assert [c["position"] for c in view["columns"]] == [1, 2, 3]
    for column in view["columns"]:
        assert set(column) == {
            "id",
            "name",
            "fieldName",
            "dataTypeName",
            "position",
            "description",
            "format",
        }
    assert view["publicationStage"] == "published"
    assert isinstance(view["rowsUpdatedAt"], int)
    status, rows = await call(api, "GET", f"/resource/{ff}.json")
    assert status == 200
    assert len(rows) == 3
    assert {r["name"] for r in rows} == {"ann", "bob", "cy"}


async def test_column_ids_are_stable_across_applies(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, CSV)
    _, before = await call(api, "GET", f"/api/views/{ff}")
    _, job = await publish(api, CSV, fourfour=ff, action="replace")
    assert job["status"] == "successful", job["log"]
    _, after = await call(api, "GET", f"/api/views/{ff}")
    assert [c["id"] for c in after["columns"]] == [c["id"] for c in before["columns"]]
    _, rows = await call(api, "GET", f"/resource/{ff}.json")
    assert len(rows) == 3


async def test_soda_query_parameters(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, CSV)
    status, rows = await call(
        api, "GET", f"/resource/{ff}.json?$select=name&$order=name DESC&$limit=2&$offset=1"
    )
    assert status == 200
    assert rows == [{"name": "bob"}, {"name": "ann"}]
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$where=name='cy'")
    assert status == 200
    assert [r["name"] for r in rows] == ["cy"]
    status, same = await call(api, "GET", f"/id/{ff}?$where=name='cy'")
    assert same == rows


async def test_soda_count_all_answers_as_soda(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, CSV)
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$select=count(*)")
    assert (status, rows) == (200, [{"count": "3"}])
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$select=count(*)&$where=id>1")
    assert rows == [{"count": "2"}]
    status, rows = await call(
        api, "GET", f"/resource/{ff}.json?$select=count(*)&$where=name='nobody'"
    )
    assert rows == [{"count": "0"}]
    async with api.get(f"/resource/{ff}.csv?$select=count(*) AS n") as resp:
        assert (await resp.text()) == '"n"\n"3"\n'


async def test_soda_count_all_of_unpublished_dataset_is_zero(api: aiohttp.ClientSession) -> None:
    _, env = await call(api, "POST", f"{API}/revision", {"metadata": {"name": "Empty"}})
    ff = env["resource"]["fourfour"]
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$select=count(*)")
    assert (status, rows) == (200, [{"count": "0"}])


async def test_soda_bad_query_is_400_naming_parameter(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, CSV)
    status, body = await call(api, "GET", f"/resource/{ff}.json?$where=nosuchcolumn = 1")
    assert status == 400
    assert body["data"]["parameter"] == "$where"
    assert_refused(body, "query.soql.no-such-column", "no input column named `nosuchcolumn`")
    status, body = await call(api, "GET", f"/resource/{ff}.json?$limit=lots")
    assert status == 400
    assert body["data"]["parameter"] == "$limit"
    assert_refused(body, "query.compiler.malformed", "invalid $limit", "not 'lots'")
    await refused(
        api,
        "GET",
        f"/resource/{ff}.json?$bogus=1",
        (400, "query.compiler.malformed"),
        "invalid $bogus: unknown parameter",
    )


async def test_soda_csv_by_extension_and_accept(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, CSV)
    async with api.get(f"/resource/{ff}.csv") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        text = await resp.text()
    lines = text.strip().splitlines()
    assert lines[0].replace('"', "") == "id,name,score"
    assert len(lines) == 4
    async with api.get(f"/resource/{ff}", headers={"Accept": "text/csv"}) as resp:
        assert resp.content_type == "text/csv"
        assert (await resp.text()) == text
    async with api.get(f"/api/views/{ff}/rows.csv?$$app_token=ignored") as resp:
        assert resp.content_type == "text/csv"
        assert (await resp.text()) == text


async def test_soda_read_of_private_dataset_is_refused(
    api: aiohttp.ClientSession,
    bob_api: aiohttp.ClientSession,
    anon_api: aiohttp.ClientSession,
) -> None:
    ff, _ = await publish(api, CSV)
    await refused(
        anon_api, "GET", f"/resource/{ff}.json", SIGN_IN, f"dataset {ff} is private; sign in"
    )
    await refused(
        bob_api, "GET", f"/resource/{ff}.json", DENIED, f"dataset {ff} is private to its owner"
    )


async def test_unpublished_dataset_reads_no_rows(api: aiohttp.ClientSession) -> None:
    _, env = await call(api, "POST", f"{API}/revision", {"metadata": {"name": "Empty"}})
    status, rows = await call(api, "GET", f"/resource/{env['resource']['fourfour']}.json")
    assert status == 200
    assert rows == []


async def test_unknown_dataset_is_404(api: aiohttp.ClientSession) -> None:
    for path in ("/api/views/zzzz-zzzz", "/resource/zzzz-zzzz.json", "/id/zzzz-zzzz"):
        status, body = await call(api, "GET", path)
        assert status == 404
        assert body["request_id"]
        assert_refused(body, "not_found", "dataset zzzz-zzzz does not exist")


async def test_delete_view_removes_dataset_rows_and_revisions(
    api: aiohttp.ClientSession, bob_api: aiohttp.ClientSession
) -> None:
    ff, _ = await publish(api, CSV)
    await refused(
        bob_api,
        "DELETE",
        f"/api/views/{ff}",
        DENIED,
        f"only the owner of dataset {ff} may change it",
    )
    status, _ = await call(api, "DELETE", f"/api/views/{ff}")
    assert status == 200
    for path in (f"/api/views/{ff}", f"{API}/revision/{ff}", f"/resource/{ff}.json"):
        await refused(api, "GET", path, NOT_FOUND, f"dataset {ff} does not exist")


async def test_view_json_suffix_and_private_metadata(
    api: aiohttp.ClientSession, anon_api: aiohttp.ClientSession
) -> None:
    body = {
        "action": {"type": "update", "permission": "public"},
        "metadata": {"name": "P", "privateMetadata": {"secret": 1}},
    }
    _, env = await call(api, "POST", f"{API}/revision", body)
    ff = env["resource"]["fourfour"]
    _, job_env = await call(api, "PUT", env["links"]["apply"], {})
    await poll(api, job_env["links"]["show"], "finished_at")
    _, own = await call(api, "GET", f"/api/views/{ff}.json")
    assert own["privateMetadata"] == {"secret": 1}
    status, public_view = await call(anon_api, "GET", f"/api/views/{ff}")
    assert status == 200
    assert "privateMetadata" not in public_view


async def test_refused_apply_fails_job_and_leaves_revision_open(
    api: aiohttp.ClientSession,
) -> None:
    ff, _ = await publish(api, CSV)
    _, job = await publish(api, CSV, fourfour=ff, action="delete")
    assert job["status"] == "failure"
    assert job["log"][0]["stage"] == "failure"
    assert "row identifier" in job["log"][0]["details"]["message"]
    _, listed = await call(api, "GET", f"{API}/revision/{ff}?open=true")
    assert [e["resource"]["revision_seq"] for e in listed] == [1]
    status, env = await call(api, "DELETE", listed[0]["links"]["discard"])
    assert status == 201
    assert env["resource"]["closed_at"] is not None
    _, rows = await call(api, "GET", f"/resource/{ff}.json")
    assert len(rows) == 3
