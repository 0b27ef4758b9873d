"""A revision's later life: discarding an applied one, restoring, the archive listing, and
the documented endpoints this server does not serve (a 404 that names them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    call,
    latest_output_schema,
    new_dataset,
    new_source,
    output_column,
    refused,
    settled,
    transform,
    upload,
)
from tests.support.local_server import ALICE, API, basic_auth, local_server

CSV = b"id,name\n1,ada\n2,bob\n"
NOT_IMPLEMENTED = (404, "not_implemented")


async def _staged(server: RunningServer, api: aiohttp.ClientSession) -> dict[str, Any]:
    """A new dataset's revision 0 with CSV parsed and transformed (``upper(name)``)."""
    rev = await new_dataset(api)
    await call(api, "PUT", rev["links"]["update"], {"notes": "first load"})
    source = await new_source(api, rev)
    await upload(api, source, CSV, [])
    source = await settled(server, api, source["links"]["show"])
    columns = [
        output_column("id", "to_number(`id`)", 0),
        output_column("shout", "upper(`name`)", 1),
    ]
    resp = await transform(api, source, columns)
    assert resp.status == 201, await resp.text()
    osid = (await resp.json())["resource"]["id"]
    await call(api, "PUT", rev["links"]["update"], {"output_schema_id": osid})
    await server.state.drain()
    return rev


async def _apply(server: RunningServer, api: aiohttp.ClientSession, links: dict[str, str]) -> str:
    """Apply a revision and wait for its job (drained); the job's final status."""
    status, job = await call(api, "PUT", links["apply"], {})
    assert status == 200, job
    await server.state.drain()
    _, shown = await call(api, "GET", job["links"]["show"])
    return str(shown["resource"]["status"])


async def _rows(api: aiohttp.ClientSession, ff: str) -> list[dict[str, Any]]:
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$order=id")
    assert status == 200, rows
    assert isinstance(rows, list)
    return rows


async def test_discarded_revision_restores_as_the_next_one(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await _staged(server, api)
    ff = rev["resource"]["fourfour"]
    status, _ = await call(api, "DELETE", rev["links"]["discard"])
    assert status == 201
    await server.state.drain()
    status, restored = await call(api, "POST", rev["links"]["restore"])
    assert status == 201, restored
    resource = restored["resource"]
    assert resource["revision_seq"] == 1
    assert resource["closed_at"] is None
    assert resource["metadata"] == {"name": "t"}
    assert resource["notes"] == "first load"
    status, listed = await call(api, "GET", restored["links"]["list_sources"])
    assert len(listed) == 1
    source = await settled(server, api, listed[0]["links"]["show"])
    out = latest_output_schema(source)
    exprs = [c["transform"]["transform_expr"] for c in out["output_columns"]]
    assert exprs == ["to_number(`id`)", "upper(`name`)"]
    assert out["total_rows"] == 2
    _, shown = await call(api, "GET", restored["links"]["show"])
    assert shown["resource"]["output_schema_id"] == out["id"]
    assert await _apply(server, api, restored["links"]) == "successful"
    assert await _rows(api, ff) == [{"id": "1", "shout": "ADA"}, {"id": "2", "shout": "BOB"}]


async def test_applied_revision_discarded_stays_applied_and_restorable(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await _staged(server, api)
    ff = rev["resource"]["fourfour"]
    assert await _apply(server, api, rev["links"]) == "successful"
    _, applied = await call(api, "GET", rev["links"]["show"])
    status, discarded = await call(api, "DELETE", rev["links"]["discard"])
    assert status == 201
    assert discarded == applied  # nothing changed: no error, still applied
    await server.state.drain()
    assert len(await _rows(api, ff)) == 2
    status, restored = await call(api, "POST", rev["links"]["restore"])
    assert status == 201, restored
    assert restored["resource"]["revision_seq"] == 1


async def test_changes_lists_restorable_revisions_newest_first_in_pages(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    ff = rev["resource"]["fourfour"]
    assert await _apply(server, api, rev["links"]) == "successful"
    for _ in range(2):
        _, later = await call(api, "POST", f"{API}/revision/{ff}", {"action": {"type": "update"}})
        await call(api, "DELETE", later["links"]["discard"])
    await call(api, "POST", f"{API}/revision/{ff}", {"action": {"type": "update"}})  # open
    status, first = await call(api, "GET", f"{API}/revision/{ff}/changes?limit=2")
    assert status == 200, first
    assert [(e["revision_seq"], e["status"]) for e in first["resource"]] == [
        (2, "discarded"),
        (1, "discarded"),
    ]
    entry = first["resource"][0]
    assert entry["links"] == {
        "show": f"{API}/revision/{ff}/2",
        "restore": f"{API}/revision/{ff}/2/restore",
    }
    assert entry["restorable_until"] > entry["closed_at"]
    assert first["meta"] == {"next": "1"}
    _, rest = await call(api, "GET", f"{API}/revision/{ff}/changes?limit=2&cursor=1")
    assert [(e["revision_seq"], e["status"]) for e in rest["resource"]] == [(0, "applied")]
    assert rest["resource"][0]["restorable_until"] is None
    assert rest["meta"] == {"next": None}
    await refused(
        api,
        "GET",
        f"{API}/revision/{ff}/changes?limit=0",
        (400, "invalid_field"),
        "invalid field 'limit': expected a whole number from 1 to 1000",
    )


async def test_restore_after_the_keep_window_is_refused_and_files_are_gone(
    tmp_path: Path,
) -> None:
    headers = {"Authorization": basic_auth(*ALICE)}
    async with (
        local_server(tmp_path / "srv", keep_discarded_seconds=1e-6) as server,
        aiohttp.ClientSession(base_url=server.url, headers=headers) as api,
    ):
        rev = await _staged(server, api)
        ff = rev["resource"]["fourfour"]
        status, _ = await call(api, "DELETE", rev["links"]["discard"])
        assert status == 201
        await server.state.drain()  # the discard's cleanup expires the window it set
        assert list(server.state.uploads_dir.iterdir()) == []
        await refused(
            api,
            "POST",
            rev["links"]["restore"],
            (410, "not_restorable"),
            f"revision {ff}/0 can no longer be restored: it was discarded at ",
            "discarded revisions stay restorable for 1e-06s (dsmsyncd serve --keep-discarded)",
        )
        _, listed = await call(api, "GET", f"{API}/revision/{ff}/changes")
        assert listed["resource"] == []


async def test_restore_of_an_unknown_revision_is_404(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    ff = rev["resource"]["fourfour"]
    await refused(
        api,
        "POST",
        f"{API}/revision/{ff}/7/restore",
        (404, "not_found"),
        f"revision {ff}/7 does not exist",
    )


async def test_unserved_endpoints_answer_404_naming_them(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    ff = rev["resource"]["fourfour"]
    await refused(
        api,
        "GET",
        f"{API}/revision/{ff}/token",
        NOT_IMPLEMENTED,
        f"not implemented on the local server: GET {API}/revision/{ff}/token",
        "revision websocket",
    )
    for method, path in (
        ("POST", f"{API}/revision/{ff}/0/attachment"),
        ("GET", f"{API}/revision/{ff}/0/attachment/abc"),
        ("POST", f"{API}/revision/{ff}/0/apply/9/cancel"),
        ("GET", f"{API}/no/such/endpoint"),
    ):
        await refused(
            api,
            method,
            path,
            NOT_IMPLEMENTED,
            f"not implemented on the local server: {method} {path}",
            f"listed at {API}/openapi.json",
        )
    # A known path with the wrong method still says so.
    await refused(
        api,
        "GET",
        f"{API}/revision/{ff}/0/apply",
        (405, "method_not_allowed"),
        f"method GET is not allowed on {API}/revision/{ff}/0/apply",
    )
