"""A hostile client against the real server: budgets, odd numbers, deep bodies, idle sockets.

Issue 11: one request could hold the server for minutes and gigabytes; a huge
``$offset``, a deeply nested JSON body or a query that ran DuckDB out of memory made a
500; an idle or half-sent connection was kept for an hour. Each test talks to a real
server over loopback; the slow queries run over a 10M-row dataset table written
straight into the server's row store (publishing that many rows over HTTP would only
make the test slow).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import pytest

from dsmsyncd.cli import main as cli
from dsmsyncd.server.catalog import views
from dsmsyncd.server.json_depth import MAX_JSON_DEPTH
from dsmsyncd.server.main import RunningServer, ServeOptions, start_server
from dsmsyncd.server.storage.soql import MAX_OFFSET
from dsmsyncd.server.storage.sql import table
from tests.server.http.flows import call, publish, refused
from tests.support.local_server import ALICE, API, basic_auth

CSV = b"id,name\n1,1\n2,x\n3,-3.75\n"
BIG_ROWS = 10_000_000
GUARD_S = 60.0  # generous guards: every wait below ends on an event or a state


def slow_where(depth: int = 30) -> str:
    """A condition DuckDB needs minutes to test on ``BIG_ROWS`` rows (and little memory)."""
    expr = "name"
    for _ in range(depth):
        expr = f"(to_number({expr})+1)::text"
    return f"{expr} = 'nope'"


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[RunningServer]]]:
    started: list[RunningServer] = []

    async def make(**options: Any) -> RunningServer:
        server = await start_server(
            ServeOptions(data_dir=tmp_path / "data", users=[ALICE], **options)
        )
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


def session(server: RunningServer, *, keep_alive: bool = True) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=server.url,
        headers={"Authorization": basic_auth(*ALICE)},
        connector=aiohttp.TCPConnector(force_close=not keep_alive),
    )


async def publish_big(server: RunningServer, api: aiohttp.ClientSession) -> str:
    """A dataset published over HTTP, then grown to ``BIG_ROWS`` rows in its table."""
    ff, job = await publish(api, CSV)
    assert job["status"] == "successful", job
    name = table(views.dataset_table(ff))

    def grow(cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute(
            f"INSERT INTO {name} (id, name, __sid) SELECT i + 10, CAST(i % 1000 AS VARCHAR), "
            f"i + 10 FROM range({BIG_ROWS}) r(i)"
        )

    await server.state.rows._run(grow)
    return ff


async def running_reads(server: RunningServer, count: int) -> None:
    """Wait until exactly ``count`` row-store statements are running."""
    assert await server.state.rows.wait_statements(count, GUARD_S)


async def test_huge_offset_and_odd_numbers_are_400_not_500(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    ff, _ = await publish(api, CSV)
    for raw in (str(10**30), "9" * 5_000, str(MAX_OFFSET + 1)):
        status, body = await call(api, "GET", f"/resource/{ff}.json?$offset={raw}")
        assert status == 400, body
        assert body["key"] == "query.compiler.malformed"
        assert body["message"] == f"invalid $offset: must be at most {MAX_OFFSET}"
        assert body["data"] == {"parameter": "$offset", "limit": MAX_OFFSET}
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$offset={MAX_OFFSET}")
    assert (status, rows) == (200, [])
    body = await refused(
        api, "GET", f"/resource/{ff}.json?$limit=²", (400, "query.compiler.malformed")
    )
    assert body["message"] == "invalid $limit: must be a whole number of zero or more, not '²'"


async def test_deeply_nested_json_body_is_a_400(api: aiohttp.ClientSession) -> None:
    for body in (b"[" * 100_000, b'{"metadata": {"a": ' + b"[" * (MAX_JSON_DEPTH + 1)):
        body += b"]" * body.count(b"[") + (b"}}" if body.startswith(b"{") else b"")
        async with api.post(
            f"{API}/revision", data=body, headers={"Content-Type": "application/json"}
        ) as resp:
            reply = await resp.json()
            assert resp.status == 400, reply
        assert reply["key"] == "json_too_deep"
        assert reply["data"] == {"limit": MAX_JSON_DEPTH}
        assert f"nested more than {MAX_JSON_DEPTH} arrays or objects deep" in reply["message"]
    # Nesting up to the limit is fine.
    metadata: Any = "leaf"
    for _ in range(MAX_JSON_DEPTH - 3):
        metadata = [metadata]
    status, env = await call(api, "POST", f"{API}/revision", {"metadata": {"custom": metadata}})
    assert status == 201, env


async def test_deeply_nested_json_cell_is_served_as_its_text(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    """Decoding a 1,200-deep JSON cell for the reply raised RecursionError: a 500."""
    ff, _ = await publish(api, CSV)
    for depth in (1_200, MAX_JSON_DEPTH + 1):  # 1,200: what fits in a request line
        doc = "[" * depth + "]" * depth
        params = {"$select": f"to_json('{doc}') AS j", "$where": "id = 1"}
        async with api.get(f"/resource/{ff}.json", params=params) as resp:
            rows = await resp.json()
            assert resp.status == 200, rows
        assert rows == [{"j": doc}]
    status, rows = await call(api, "GET", f"/resource/{ff}.json?$select=to_json('[[1]]') AS j")
    assert (status, rows[0]) == (200, {"j": [[1]]})  # shallow documents are served as JSON values


async def test_query_out_of_memory_is_a_413_and_the_server_goes_on(
    make_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    server = await make_server(memory_limit="64MB")
    async with session(server) as api:
        ff, _ = await publish(api, b"id,name\n" + b"".join(b"%d,n\n" % i for i in range(200)))
        select = "left_pad(name, 10000000, 'x') AS wide"
        status, body = await call(api, "GET", f"/resource/{ff}.json?$select={select}")
        assert status == 413, body
        assert body["key"] == "query_out_of_memory"
        assert body["data"] == {"memory_limit": "64MB"}
        assert "more memory than the server's limit of 64MB" in body["message"]
        status, rows = await call(api, "GET", f"/resource/{ff}.json?$select=name&$limit=1")
        assert (status, rows) == (200, [{"name": "n"}])


async def test_query_over_its_time_budget_is_cancelled_with_a_clear_error(
    make_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    # The idle timeout is shorter than the budget: it closes idle connections only,
    # never one whose request is being worked on.
    server = await make_server(query_timeout=0.5, idle_timeout=0.2)
    async with session(server, keep_alive=False) as api:
        ff = await publish_big(server, api)
        async with asyncio.timeout(GUARD_S):
            async with api.get(f"/resource/{ff}.json", params={"$where": slow_where()}) as resp:
                body = await resp.json()
        assert resp.status == 503, body
        assert body["key"] == "query_timeout"
        assert body["data"] == {"budget_seconds": 0.5}
        assert "longer than the server's time budget of 0.5s and was cancelled" in body["message"]
        await running_reads(server, 0)  # the interrupted statement has let go of its thread
        status, rows = await call(api, "GET", f"/resource/{ff}.json?$where=id=1&$select=name")
        assert (status, rows) == (200, [{"name": "1"}])


async def test_other_clients_are_served_while_a_slow_query_runs(tmp_path: Path) -> None:
    options = ServeOptions(
        data_dir=tmp_path, users=[ALICE], query_timeout=600.0, shutdown_timeout=0.1
    )
    server = await start_server(options)
    async with session(server) as api, session(server) as other:
        ff = await publish_big(server, api)
        slow = asyncio.create_task(api.get(f"/resource/{ff}.json", params={"$where": slow_where()}))
        await running_reads(server, 1)
        async with asyncio.timeout(GUARD_S):
            status, view = await call(other, "GET", f"/api/views/{ff}")
            assert status == 200, view
            status, rows = await call(other, "GET", f"/resource/{ff}.json?$where=id=2")
            assert (status, rows) == (200, [{"id": "2", "name": "x"}])
        assert not slow.done()
        await running_reads(server, 1)  # the slow query is still running
        async with asyncio.timeout(GUARD_S):
            await server.stop()  # interrupts it: bounded although the query has minutes left
        with pytest.raises(aiohttp.ClientError):
            await slow


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (EOF), guarded."""
    async with asyncio.timeout(GUARD_S):
        return await reader.read()


async def test_idle_and_slow_header_connections_are_closed(
    make_server: Callable[..., Awaitable[RunningServer]],
) -> None:
    server = await make_server(idle_timeout=0.3)
    host, port = server.url.removeprefix("http://").split(":")
    # Connected, sends nothing at all.
    reader, writer = await asyncio.open_connection(host, int(port))
    assert await _closed_by_server(reader) == b""
    writer.close()
    # Slowloris: a request line and one header, then nothing.
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    assert await _closed_by_server(reader) == b""
    writer.close()
    # A kept-alive connection, idle after its request was answered.
    reader, writer = await asyncio.open_connection(host, int(port))
    auth = basic_auth(*ALICE).encode()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n\r\n")
    await writer.drain()
    reply = await _closed_by_server(reader)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" not in reply
    writer.close()


# `dsmsyncd serve` itself, announcing on stdout when a SODA read is about to start: the
# test then knows the slow query is running without timing anything.
_ANNOUNCING_SERVE = """
import sys
from dsmsyncd.cli import main as cli
from dsmsyncd.server.storage.rowstore import RowStore

original = RowStore.dataset_rows

async def announced(self, *args, **kwargs):
    print("query started", flush=True)
    return await original(self, *args, **kwargs)

RowStore.dataset_rows = announced
sys.exit(cli.main(sys.argv[1:]))
"""


async def test_sigterm_during_a_long_query_ends_the_process_promptly(tmp_path: Path) -> None:
    """The issue: after the nested request, the first SIGTERM was not honoured."""
    data_dir = tmp_path / "data"
    server = await start_server(ServeOptions(data_dir=data_dir, users=[ALICE]))
    try:
        async with session(server) as api:
            ff = await publish_big(server, api)
    finally:
        await server.stop()
    argv = ["serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0"]
    argv += ["--shutdown-timeout", "0.5", "--query-timeout", "600"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _ANNOUNCING_SERVE,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), GUARD_S)).decode()
        assert line.startswith("dsmsyncd serve: listening on "), line
        url = line.rsplit(" ", 1)[1].strip()
        async with aiohttp.ClientSession(
            base_url=url, headers={"Authorization": basic_auth(*ALICE)}
        ) as api:
            slow = asyncio.create_task(
                api.get(f"/resource/{ff}.json", params={"$where": slow_where()})
            )
            started = await asyncio.wait_for(proc.stdout.readline(), GUARD_S)
            assert started == b"query started\n"
            proc.send_signal(signal.SIGTERM)
            # The query has minutes of work left; the process ends within the guard.
            assert await asyncio.wait_for(proc.wait(), GUARD_S) == 0
            with pytest.raises(aiohttp.ClientError):
                await slow
        err = (await proc.stderr.read()).decode()
        assert "dsmsyncd serve: stopped" in err
        assert "still running" not in err  # interrupted, not abandoned
        assert "Traceback" not in err, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_budget_flags_reach_serve_options(
    serve_options: list[ServeOptions], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["serve", "--data-dir", "d", "--query-timeout", "2.5", "--memory-limit", "1GB"]
    assert cli.main([*argv, "--idle-timeout", "7"]) == 0
    assert cli.main(["serve", "--data-dir", "d"]) == 0
    budgets = [(o.query_timeout, o.memory_limit, o.idle_timeout) for o in serve_options]
    assert budgets == [(2.5, "1GB", 7), (30.0, "256MB", 60.0)]
    for flag, value in (
        ("--query-timeout", "0"),
        ("--memory-limit", "lots"),
        ("--idle-timeout", "-1"),
    ):
        with pytest.raises(SystemExit) as exited:
            cli.build_parser().parse_args(["serve", "--data-dir", "d", flag, value])
        assert exited.value.code == 2
        assert flag in capsys.readouterr().err
