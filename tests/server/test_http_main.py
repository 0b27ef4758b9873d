"""Starting the server: readiness line, TLS, users at startup, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import signal
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from dsmsyncd.server.main import ServeOptions, start_server


def _basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def _whoami(url: str, headers: dict[str, str], ssl_ctx: ssl.SSLContext | bool = True) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/api/users/current.json", headers=headers, ssl=ssl_ctx) as resp,
    ):
        return resp.status


async def test_self_signed_tls_serves_https(tmp_path: Path) -> None:
    options = ServeOptions(data_dir=tmp_path, users=[("alice", "pw")], tls_self_signed=True)
    server = await start_server(options)
    try:
        assert server.url.startswith("https://127.0.0.1:")
        assert server.ca_path is not None
        context = ssl.create_default_context(cafile=str(server.ca_path))
        assert await _whoami(server.url, _basic("alice", "pw"), context) == 200
    finally:
        await server.stop()


async def test_first_start_without_users_prints_admin_credentials_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server(ServeOptions(data_dir=tmp_path))
    await server.stop()
    first = capsys.readouterr().err
    assert "created user 'admin'" in first
    password = first.split("password '")[1].split("'")[0]
    server = await start_server(ServeOptions(data_dir=tmp_path))
    try:
        assert "created user" not in capsys.readouterr().err
        assert await _whoami(server.url, _basic("admin", password)) == 200
    finally:
        await server.stop()


async def test_given_user_gets_password_updated_on_restart(tmp_path: Path) -> None:
    server = await start_server(ServeOptions(data_dir=tmp_path, users=[("alice", "one")]))
    await server.stop()
    server = await start_server(ServeOptions(data_dir=tmp_path, users=[("alice", "two")]))
    try:
        assert await _whoami(server.url, _basic("alice", "two")) == 200
        assert await _whoami(server.url, _basic("alice", "one")) == 401
    finally:
        await server.stop()


async def test_run_server_prints_readiness_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; "
        "from dsmsyncd.server.main import ServeOptions, run_server; "
        f"sys.exit(run_server(ServeOptions(data_dir=Path({str(tmp_path)!r}), "
        "users=[('alice', 'pw')])))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        assert line.startswith("dsmsyncd serve: listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        assert await _whoami(url, _basic("alice", "pw")) == 200
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        assert (await proc.stdout.read()) == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
