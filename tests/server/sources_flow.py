"""Shared steps of the source tests: open a dataset, create a source, upload, settle.

Background work (parsing, transforms) is awaited with ``ServerState.drain``, which
returns when every spawned task has ended: a deterministic wait, never a sleep.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer

API = "/api/publishing/v1"


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
