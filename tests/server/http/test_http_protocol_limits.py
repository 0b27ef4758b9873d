"""Limits on what one request may send, each refused with a JSON error that names it.

Headers (line length, count) and bytes that are not HTTP are refused by aiohttp before
any route runs; those answered plain text until ``http/protocol_errors.py``. JSON bodies
are bounded (``MAX_JSON_BODY_BYTES``), chunks too (``max_chunk_bytes``), and a file's
columns (``MAX_COLUMNS``: a header of 100,000 columns ran DuckDB out of memory, reported
as an unparsable file). And idle connections take nothing from a new client.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from dsmsyncd.server.http.bodies import MAX_JSON_BODY_BYTES
from dsmsyncd.server.http.protocol_errors import MAX_FIELD_BYTES, MAX_HEADERS, MAX_LINE_BYTES
from dsmsyncd.server.main import RunningServer
from dsmsyncd.server.storage.ingest.load import MAX_COLUMNS
from tests.server.http.flows import (
    assert_refused_reply,
    chunk_url,
    new_upload_source,
    settled,
    upload,
)
from tests.support.local_server import ALICE, API, basic_auth

LIMITS = {"max_line_size": MAX_LINE_BYTES, "max_field_size": MAX_FIELD_BYTES}
LIMITS["max_headers"] = MAX_HEADERS
HOW_TO_FIX = (
    f"(the request line and each header may be at most {MAX_LINE_BYTES} bytes, and a request "
    f"may carry at most {MAX_HEADERS} headers)"
)


async def _raw(server: RunningServer, request: bytes) -> tuple[int, dict[str, str], Any]:
    """Send ``request`` as bytes on a new connection; the reply's status, headers, JSON.

    The body is read by its Content-Length: a server that refused a body it did not
    read keeps the connection a while to drain it, so the end of the stream comes late.
    """
    host, port = server.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(30):  # a guard against a hang
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").strip().split("\r\n")
            headers = dict(line.split(": ", 1) for line in header_lines)
            body = await reader.readexactly(int(headers["Content-Length"]))
    finally:
        writer.close()
    return int(status_line.split()[1]), headers, json.loads(body)


def _get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", f"Authorization: {basic_auth(*ALICE)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _assert_malformed(server: RunningServer, request: bytes, said: str) -> None:
    status, headers, body = await _raw(server, request)
    assert status == 400, body
    assert headers["Content-Type"].startswith("application/json"), headers
    assert body["key"] == "malformed_request", body
    assert body["message"].startswith(f"the request is not valid HTTP: {said}"), body
    assert body["message"].endswith(HOW_TO_FIX), body
    assert body["data"] == LIMITS
    assert headers["X-Socrata-RequestId"] == body["request_id"]


async def test_a_header_over_the_line_limit_is_a_json_400(server: RunningServer) -> None:
    big = "X-Big: " + "a" * (MAX_FIELD_BYTES + 10)
    await _assert_malformed(
        server, _get(f"{API}/config", big), f"Got more than {MAX_FIELD_BYTES} bytes"
    )


async def test_too_many_headers_is_a_json_400(server: RunningServer) -> None:
    many = [f"X-H{i}: v" for i in range(MAX_HEADERS + 1)]
    await _assert_malformed(server, _get(f"{API}/config", *many), "Too many headers received")


async def test_a_request_line_over_the_limit_is_a_json_400(server: RunningServer) -> None:
    path = f"{API}/config?" + "a" * (MAX_LINE_BYTES + 10)
    await _assert_malformed(server, _get(path), f"Got more than {MAX_LINE_BYTES} bytes")


async def test_bytes_that_are_not_http_are_a_json_400(server: RunningServer) -> None:
    await _assert_malformed(server, b"\x00\x01\x02 garbage\r\n\r\n", "Invalid method")
    bad_length = "POST /api/publishing/v1/revision HTTP/1.1\r\nHost: x\r\nContent-Length: abc"
    await _assert_malformed(
        server, (bad_length + "\r\n\r\n").encode(), "Invalid character in Content-Length"
    )


async def test_the_header_limits_still_admit_an_ordinary_request(server: RunningServer) -> None:
    """At the limits themselves: a full header line, and every header slot used."""
    full = "X-Full: " + "a" * (MAX_FIELD_BYTES - len("X-Full: ") - 2)
    others = [f"X-H{i}: v" for i in range(MAX_HEADERS - 3)]  # Host, Authorization, X-Full
    request = _get(f"{API}/config", full, *others).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    status, _, body = await _raw(server, request)
    assert status == 200, body


async def test_a_json_body_over_the_limit_is_refused_by_its_length(
    server: RunningServer,
) -> None:
    """Refused from its Content-Length, before a byte of it is read."""
    request = (
        f"POST {API}/revision HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth(*ALICE)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_JSON_BODY_BYTES + 1}\r\n\r\n"
    )
    status, _, body = await _raw(server, request.encode())
    assert (status, body["key"]) == (413, "payload_too_large"), body
    assert body["message"] == (
        f"a JSON request body may be at most {MAX_JSON_BODY_BYTES} bytes; this one is "
        f"{MAX_JSON_BODY_BYTES + 1}: send fewer columns or values at once (file bytes go to "
        "the upload endpoints)"
    )
    assert body["data"] == {"limit": MAX_JSON_BODY_BYTES}


async def test_a_chunk_over_the_chunk_limit_is_a_413(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    server.state.max_chunk_bytes = 1000  # the rule, at a size a test can send
    _, source = await new_upload_source(api)
    headers = {"Content-Type": "application/octet-stream"}
    said = (
        "a chunk may be at most 1000 bytes; this one is 1001 or more: send the file in chunks "
        f"of the preferred_chunk_size ({server.state.preferred_chunk_size}) that initiate answers"
    )
    # With a Content-Length: refused before reading; without one: cut off as it streams.
    async with api.post(chunk_url(source, 0, 0), data=b"x" * 1001, headers=headers) as resp:
        body = await assert_refused_reply(resp, 413, "chunk_too_large", said)
    assert body["data"] == {"max_chunk_bytes": 1000}

    async def streamed() -> Any:
        for _ in range(3):
            yield b"x" * 600

    async with api.post(chunk_url(source, 0, 0), data=streamed(), headers=headers) as resp:
        await assert_refused_reply(resp, 413, "chunk_too_large", "a chunk may be at most 1000")
    # A chunk at the limit is taken.
    async with api.post(chunk_url(source, 0, 0), data=b"x" * 1000, headers=headers) as resp:
        assert resp.status == 200, await resp.text()


async def test_a_header_of_100000_columns_fails_the_source_at_once(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _, source = await new_upload_source(api)
    width = 100_000
    data = ",".join(f"c{i}" for i in range(width)) + "\n" + ",".join(["1"] * width) + "\n"
    await upload(api, source, data.encode(), [])
    shown = (await settled(server, api, source["links"]["show"]))["resource"]
    assert shown["failure_details"] == {
        "key": "too_many_columns",
        "message": (
            f"The file has {width:,} columns; the local server takes at most {MAX_COLUMNS:,}: "
            "split it into datasets of fewer columns, or check column_separator if the "
            "header is not meant to have that many."
        ),
    }
    assert shown["failed_at"] is not None


async def test_idle_connections_do_not_keep_a_new_client_waiting(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    """Many connections open and silent (or half-way through their headers), and a new
    client is answered at once: the server waits on sockets, not in a worker per socket."""
    host, port = server.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    idle: list[asyncio.StreamWriter] = []
    try:
        for n in range(200):
            _, writer = await asyncio.open_connection(host, int(port))
            if n % 2:  # every other one starts a request and stops mid-headers
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
                await writer.drain()
            idle.append(writer)
        async with asyncio.timeout(30):  # a guard against a hang, not a timing assertion
            async with api.get(f"{API}/config") as resp:
                assert resp.status == 200, await resp.text()
                assert await resp.json() == []
    finally:
        for writer in idle:
            writer.close()
