"""The publishing flows over raw HTTP, as the server wing's tests drive them.

Open a dataset, create a source, upload in chunks, settle, transform, apply, publish.
Background work (parsing, transforms) is awaited with ``ServerState.drain``, which
returns when every spawned task has ended: a deterministic wait, never a sleep; where
a test has no handle on the server (``poll``), real requests are repeated, bounded.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.support.local_server import API


async def new_dataset(api: aiohttp.ClientSession) -> dict[str, Any]:
    """A new dataset's revision 0 envelope."""
    body = {"action": {"type": "update"}, "metadata": {"name": "t"}}
    async with api.post(f"{API}/revision", json=body) as resp:
        assert resp.status == 201, await resp.text()
        envelope: dict[str, Any] = await resp.json()
    return envelope


async def new_source(
    api: aiohttp.ClientSession,
    revision: dict[str, Any],
    *,
    source_type: dict[str, Any] | None = None,
    parse_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = {
        "source_type": source_type or {"type": "upload", "filename": "dir/sub/data.csv"},
        "parse_options": parse_options or {},
    }
    async with api.post(revision["links"]["create_source"], json=body) as resp:
        assert resp.status == 201, await resp.text()
        envelope: dict[str, Any] = await resp.json()
    return envelope


async def new_upload_source(api: aiohttp.ClientSession) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new dataset's revision 0 and an upload source on it (envelopes)."""
    revision = await new_dataset(api)
    return revision, await new_source(api, revision)


def chunk_url(source: dict[str, Any], seq: int, offset: int) -> str:
    return str(source["links"]["chunk"]).format(seq_num=seq, byte_offset=offset)


def commit_url(source: dict[str, Any], seq: int, total: int) -> str:
    return str(source["links"]["commit"]).format(seq_num=seq, byte_offset=total)


async def send_chunk(
    api: aiohttp.ClientSession, source: dict[str, Any], seq: int, offset: int, data: bytes
) -> dict[str, Any]:
    headers = {"Content-Type": "application/octet-stream"}
    async with api.post(chunk_url(source, seq, offset), data=data, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
    return body


async def commit(
    api: aiohttp.ClientSession, source: dict[str, Any], seq: int, total: int
) -> aiohttp.ClientResponse:
    async with api.post(commit_url(source, seq, total)) as resp:
        await resp.read()
        return resp


async def upload(
    api: aiohttp.ClientSession, source: dict[str, Any], data: bytes, sizes: list[int]
) -> dict[str, Any]:
    """Initiate, send chunks of ``sizes`` (the rest in a last chunk) in parallel, commit."""
    async with api.post(source["links"]["initiate"], json={"content_type": "text/csv"}) as resp:
        assert resp.status == 200
    pieces = split(data, sizes)
    await asyncio.gather(*(send_chunk(api, source, s, o, d) for s, o, d in pieces))
    async with api.post(commit_url(source, len(pieces) - 1, len(data))) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
    return body


def split(data: bytes, sizes: list[int]) -> list[tuple[int, int, bytes]]:
    """``(seq, offset, bytes)`` chunks of the given sizes, the remainder as the last."""
    pieces: list[tuple[int, int, bytes]] = []
    offset = 0
    for seq, size in enumerate([*sizes, len(data)]):
        piece = data[offset : offset + size]
        if not piece and pieces:
            break
        pieces.append((seq, offset, piece))
        offset += len(piece)
        if offset >= len(data):
            break
    return pieces


async def settled(server: RunningServer, api: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """GET ``url`` once all background work has finished."""
    await server.state.drain()
    async with api.get(url) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
    return body


def latest_output_schema(source: dict[str, Any]) -> dict[str, Any]:
    schema = max(source["resource"]["schemas"], key=lambda s: s["id"])
    output: dict[str, Any] = max(schema["output_schemas"], key=lambda o: o["id"])
    return output


def fill(template: str, **ids: int) -> str:
    for name, value in ids.items():
        template = template.replace("{" + name + "}", str(value))
    return template


async def call(
    session: aiohttp.ClientSession, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """One request; every reply must say what it is (digest §2.8)."""
    async with session.request(method, path, json=body) as resp:
        assert resp.headers.get("Content-Type"), f"{method} {path} has no Content-Type"
        assert resp.headers.get("X-Socrata-RequestId")
        return resp.status, await resp.json()


# The refusals the tests meet most, as (status, key).
NOT_FOUND = (404, "not_found")
DENIED = (403, "permission_denied")
SIGN_IN = (401, "authentication_required")
BAD_FIELD = (400, "invalid_field")
CLOSED = (409, "revision_closed")


def assert_refused(body: Any, key: str, *said: str) -> None:
    """An error reply in the digest's shape: its ``key``, and a message saying each of ``said``."""
    assert isinstance(body, dict), body
    assert body["key"] == key, body
    assert isinstance(body["message"], str), body
    assert body["message"], body
    assert [part for part in said if part not in body["message"]] == [], body


async def refused(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    refusal: tuple[int, str],
    *said: str,
    body: Any = None,
) -> dict[str, Any]:
    """``call`` that must be refused with ``refusal`` (status, key), saying ``said``."""
    status, reply = await call(session, method, path, body)
    assert status == refusal[0], reply
    assert_refused(reply, refusal[1], *said)
    refused: dict[str, Any] = reply
    return refused


async def assert_refused_reply(
    resp: aiohttp.ClientResponse, status: int, key: str, *said: str
) -> dict[str, Any]:
    """``resp`` is a refusal: ``status``, ``key``, and a message saying each of ``said``."""
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json()
    assert_refused(body, key, *said)
    return body


async def poll(api: aiohttp.ClientSession, path: str, key: str) -> dict[str, Any]:
    """GET ``path`` until ``resource[key]`` is set (real requests, bounded)."""
    for _ in range(2000):
        status, env = await call(api, "GET", path)
        assert status == 200, env
        if env["resource"].get(key):
            resource: dict[str, Any] = env["resource"]
            return resource
    raise AssertionError(f"{path}: {key} never set")


async def upload_file(
    api: aiohttp.ClientSession, revision_links: dict[str, str], data: bytes
) -> int:
    """Create an upload source on the revision, send ``data``; the output schema id."""
    body = {"source_type": {"type": "upload", "filename": "t.csv"}, "parse_options": {}}
    status, env = await call(api, "POST", revision_links["create_source"], body)
    assert status == 201, env
    links = env["links"]
    await call(api, "POST", links["initiate"], {"content_type": "text/csv"})
    chunk = links["chunk"].format(seq_num=0, byte_offset=0)
    async with api.post(
        chunk, data=data, headers={"Content-Type": "application/octet-stream"}
    ) as resp:
        assert resp.status in (200, 201, 202), await resp.text()
    commit = links["commit"].format(seq_num=0, byte_offset=len(data))
    status, _ = await call(api, "POST", commit)
    assert status in (200, 201, 202)
    source = await poll(api, links["show"], "schemas")
    input_schema = source["schemas"][-1]
    show_is = env["links"]["input_schema_links"]["show"].format(input_schema_id=input_schema["id"])
    input_schema = await poll(api, show_is, "output_schemas")
    output_schema_id: int = input_schema["output_schemas"][-1]["id"]
    return output_schema_id


async def publish(
    api: aiohttp.ClientSession,
    data: bytes,
    *,
    fourfour: str | None = None,
    action: str = "update",
    public: bool = False,
) -> tuple[str, dict[str, Any]]:
    """Open a revision (new dataset, public if told, or existing), upload, apply; the
    dataset's id and the finished job."""
    if fourfour is None:
        body: dict[str, Any] = {"metadata": {"name": "Rows"}}
        if public:
            body["action"] = {"type": "update", "permission": "public"}
        status, env = await call(api, "POST", f"{API}/revision", body)
    else:
        body = {"action": {"type": action}}
        status, env = await call(api, "POST", f"{API}/revision/{fourfour}", body)
    assert status == 201, env
    ff = env["resource"]["fourfour"]
    osid = await upload_file(api, env["links"], data)
    status, job_env = await call(api, "PUT", env["links"]["apply"], {"output_schema_id": osid})
    assert status == 200, job_env
    job = await poll(api, job_env["links"]["show"], "finished_at")
    return ff, job


# -- schemas: a parsed source, and transforms of it ------------------------------------

ADDRESSES_CSV = (
    b"id,street_number,street_name,amount,active,when\n"
    b"1,12,Main St,10.5,true,2024-01-02\n"
    b"2,7,Elm Rd,3,false,2024-02-03\n"
    b"3,9,Oak Ave,4,true,2024-03-04\n"
)


async def parsed_source(
    server: RunningServer, api: aiohttp.ClientSession, data: bytes = ADDRESSES_CSV
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Revision and settled source envelope for ``data``."""
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    await upload(api, source, data, [40])
    return rev, await settled(server, api, source["links"]["show"])


def schema_link(source: dict[str, Any], name: str, **ids: int) -> str:
    schema_links = source["links"]["input_schema_links"]
    if name in schema_links:
        return fill(schema_links[name], **ids)
    return fill(schema_links["output_schema_links"][name], **ids)


async def transform(
    api: aiohttp.ClientSession, source: dict[str, Any], columns: list[dict[str, Any]]
) -> aiohttp.ClientResponse:
    isid = source["resource"]["schemas"][0]["id"]
    url = schema_link(source, "transform", input_schema_id=isid)
    async with api.post(url, json={"output_columns": columns, "sort_bys": []}) as resp:
        await resp.read()
        return resp


def output_column(field: str, expr: str, position: int, **extra: Any) -> dict[str, Any]:
    return {
        "field_name": field,
        "display_name": field.title(),
        "position": position,
        "description": "",
        "transform": {"transform_expr": expr},
        **extra,
    }
