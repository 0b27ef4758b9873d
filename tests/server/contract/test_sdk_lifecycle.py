"""Contract tests: a revision's whole life as a tidy SDK client lives it (socrata-py 1.2.0).

Create, upload, apply, then discard in ``finally`` (the SDK's own examples clean up
that way) and list; discard an unapplied revision and restore it; a url source; a
connection agent source. The file a url source fetches is served on loopback by an
aiohttp server running in a thread of this test (the SDK is synchronous).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from aiohttp import web
from socrata import Socrata
from socrata.authorization import Authorization
from socrata.resource import ResourceFailedException

from tests.server.contract.https_server import PASSWORD, USER, ServedHttps

pytestmark = pytest.mark.sdk


def _socrata(server: ServedHttps) -> Socrata:
    auth = Authorization(server.domain, USER, PASSWORD)
    auth.verify = str(server.ca_path)
    return Socrata(auth)


def _rows(server: ServedHttps, fourfour: str) -> list[dict[str, str]]:
    response = requests.get(
        f"{server.url}/resource/{fourfour}.json",
        params={"$order": "id"},
        auth=(USER, PASSWORD),
        verify=str(server.ca_path),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, str]] = response.json()
    return rows


@contextmanager
def _serving(path: str, body: bytes) -> Iterator[str]:
    """``body`` at ``http://127.0.0.1:{port}{path}`` from an aiohttp server in a thread."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner_box: list[web.AppRunner] = []

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/csv")

    async def start() -> None:
        app = web.Application()
        app.router.add_get(path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runner_box.append(runner)
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    assert started.is_set()
    runner = runner_box[0]
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def test_sdk_tidy_client_discards_after_apply_and_restores_a_discarded_one(
    https_server: ServedHttps, tmp_path: Path
) -> None:
    socrata = _socrata(https_server)
    data = tmp_path / "people.csv"
    data.write_text("id,name\n1,ada\n2,bob\n", encoding="utf-8")
    with data.open("rb") as file:
        revision, output = socrata.create(name="People").csv(file)
    fourfour = revision.attributes["fourfour"]
    try:
        output = output.change_column_transform("name").to("upper(`name`)").run()
        output = output.wait_for_finish()
        job = revision.apply(output_schema=output).wait_for_finish()
        assert job.attributes["status"] == "successful"
    finally:
        discarded = revision.discard()  # what a tidy client does: no error after an apply
    assert discarded["resource"]["closed_at"] is not None
    assert [t["status"] for t in discarded["resource"]["task_sets"]] == ["successful"]
    assert _rows(https_server, fourfour) == [{"id": "1", "name": "ADA"}, {"id": "2", "name": "BOB"}]

    view = socrata.views.lookup(fourfour)
    draft = view.revisions.create_replace_revision(metadata={"description": "second try"})
    more = tmp_path / "people-2.csv"
    more.write_text("id,name\n3,cy\n", encoding="utf-8")
    with more.open("rb") as file:
        source = draft.create_upload("people-2.csv").csv(file)
    staged = source.get_latest_input_schema().get_latest_output_schema()
    staged.change_column_transform("name").to("upper(`name`)").run().wait_for_finish()
    draft.discard()

    listed = view.revisions.list()
    assert sorted(
        (r.attributes["revision_seq"], bool(r.attributes["closed_at"])) for r in listed
    ) == [
        (0, True),
        (1, True),
    ]
    restored = draft.restore()
    assert restored.attributes["revision_seq"] == 2
    assert restored.attributes["metadata"] == draft.attributes["metadata"]
    assert restored.attributes["action"]["type"] == "replace"
    copy = restored.list_sources()[0]
    out = copy.get_latest_input_schema().get_latest_output_schema().wait_for_finish()
    assert out.attributes["total_rows"] == 1
    exprs = [c["transform"]["transform_expr"] for c in out.attributes["output_columns"]]
    assert exprs == ["to_number(`id`)", "upper(`name`)"]  # the discarded draft's transforms
    job = restored.apply(output_schema=out).wait_for_finish()
    assert job.attributes["status"] == "successful"
    restored.discard()  # tidy again: harmless
    assert _rows(https_server, fourfour) == [{"id": "3", "name": "CY"}]


def test_sdk_url_source_is_fetched_and_agent_source_fails_at_once(
    https_server: ServedHttps,
) -> None:
    socrata = _socrata(https_server)
    view_rev = socrata.new({"name": "From a URL"})
    with _serving("/export/cities.csv", b"id,city\n1,Oslo\n2,Lima\n") as url:
        source = view_rev.source_from_url(url)
        source = source.wait_for_finish()
        assert source.attributes["source_type"] == {
            "type": "url",
            "url": url,
            "filename": "cities.csv",
        }
        out = source.get_latest_input_schema().get_latest_output_schema().wait_for_finish()
    job = view_rev.apply(output_schema=out).wait_for_finish()
    assert job.attributes["status"] == "successful"
    assert _rows(https_server, view_rev.attributes["fourfour"]) == [
        {"id": "1", "city": "Oslo"},
        {"id": "2", "city": "Lima"},
    ]

    agent_rev = socrata.new({"name": "From an agent"})
    try:
        agent = agent_rev.source_from_agent("abcd-1234", "ns", ["tables", "t"])
        with pytest.raises(ResourceFailedException):
            agent.wait_for_finish()
        details = agent.show().attributes["failure_details"]
        assert details["key"] == "connection_agent_unavailable"
        assert "the local server has no connection agent" in details["message"]
    finally:
        agent_rev.discard()
