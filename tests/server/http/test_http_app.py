"""The application shell: identity page, OpenAPI, request ids, error bodies, auth."""

from __future__ import annotations

import base64

import aiohttp
import pytest
from aiohttp import web

from dsmsyncd.server.app import create_app
from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import assert_refused, assert_refused_reply

ALICE_TOKEN = "alice-token-0123456789"  # conftest gives alice this token


async def test_index_page_names_the_server(anon_api: aiohttp.ClientSession) -> None:
    async with anon_api.get("/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        text = await resp.text()
    assert "dsmsyncd" in text
    assert "/api/publishing/v1/openapi.json" in text


async def test_openapi_is_served_as_json(anon_api: aiohttp.ClientSession) -> None:
    async with anon_api.get("/api/publishing/v1/openapi.json") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["openapi"].startswith("3.")


async def test_request_id_is_echoed_when_sent(anon_api: aiohttp.ClientSession) -> None:
    rid = "0123456789abcdef0123456789abcdef"
    async with anon_api.get("/", headers={"X-Socrata-RequestId": rid}) as resp:
        assert resp.headers["X-Socrata-RequestId"] == rid


async def test_request_id_is_minted_when_absent(anon_api: aiohttp.ClientSession) -> None:
    async with anon_api.get("/") as resp:
        rid = resp.headers["X-Socrata-RequestId"]
    assert len(rid) == 32
    int(rid, 16)


async def test_unknown_path_is_json_404_with_request_id(anon_api: aiohttp.ClientSession) -> None:
    async with anon_api.get("/no/such/thing") as resp:
        assert resp.status == 404
        assert resp.content_type == "application/json"
        body = await resp.json()
        rid = resp.headers["X-Socrata-RequestId"]
    assert body["error"] is True
    assert body["request_id"] == rid
    assert_refused(body, "not_found", "no such endpoint: /no/such/thing")


async def test_wrong_method_is_json_405(api: aiohttp.ClientSession) -> None:
    async with api.delete("/api/publishing/v1/openapi.json") as resp:
        assert resp.status == 405
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert_refused(body, "method_not_allowed", "method DELETE is not allowed")
    assert "GET" in resp.headers["Allow"]


async def test_anonymous_write_is_401_with_challenge(anon_api: aiohttp.ClientSession) -> None:
    async with anon_api.post("/api/publishing/v1/revision", json={}) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="dsmsyncd"'
        body = await resp.json()
    assert_refused(body, "authentication_required", "needs credentials")


async def test_wrong_password_is_401(anon_api: aiohttp.ClientSession) -> None:
    secret = base64.b64encode(b"alice:not-her-password").decode()
    headers = {"Authorization": f"Basic {secret}"}
    async with anon_api.get("/api/users/current.json", headers=headers) as resp:
        body = await assert_refused_reply(
            resp, 401, "authentication_required", "invalid username or password"
        )
    assert "not-her-password" not in body["message"]


async def test_current_user_answers_who_am_i(api: aiohttp.ClientSession) -> None:
    async with api.get("/api/users/current.json") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["screenName"] == "alice"
    assert not any(key.startswith("_") for key in body)


async def test_current_user_anonymous_is_401(anon_api: aiohttp.ClientSession) -> None:
    async with anon_api.get("/api/users/current.json") as resp:
        await assert_refused_reply(resp, 401, "authentication_required", "needs credentials")


async def test_oauth_and_bearer_tokens_are_accepted(anon_api: aiohttp.ClientSession) -> None:
    for scheme in ("OAuth", "Bearer"):
        headers = {"Authorization": f"{scheme} {ALICE_TOKEN}", "X-App-Token": "ignored"}
        async with anon_api.get("/api/users/current.json", headers=headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["screenName"] == "alice"


async def test_unknown_token_is_401(anon_api: aiohttp.ClientSession) -> None:
    headers = {"Authorization": "Bearer nope"}
    async with anon_api.get("/api/users/current.json", headers=headers) as resp:
        await assert_refused_reply(resp, 401, "authentication_required", "invalid API token")


async def test_malformed_json_body_is_400_naming_the_problem(
    api: aiohttp.ClientSession,
) -> None:
    async with api.post(
        "/api/publishing/v1/revision",
        data=b'{"action": ',
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert_refused(body, "malformed_json", "request body is not valid JSON")


async def test_json_body_that_is_not_an_object_is_400(api: aiohttp.ClientSession) -> None:
    async with api.post("/api/publishing/v1/revision", json=[1, 2]) as resp:
        await assert_refused_reply(
            resp, 400, "malformed_json", "must be a JSON object, not an array"
        )


async def test_unexpected_error_is_500_without_traceback(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app = create_app(server.state)
    app.router.add_get("/boom", boom)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/boom") as resp,
        ):
            assert resp.status == 500
            assert resp.content_type == "application/json"
            body = await resp.json()
            rid = resp.headers["X-Socrata-RequestId"]
    finally:
        await runner.cleanup()
    assert_refused(body, "internal_error")
    assert body["message"] == f"internal error, request id {rid}"
    assert "secret internals" not in str(body)
    assert "secret internals" in caplog.text
