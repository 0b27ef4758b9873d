"""Starting and stopping the server: readiness line, TLS, users, bounded graceful shutdown."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from dsmsyncd.cli import main as cli
from dsmsyncd.server.catalog.metastore import Kind
from dsmsyncd.server.credentials import USERS_ENV
from dsmsyncd.server.main import ServeOptions, start_server
from dsmsyncd.server.state import DEFAULT_ANSWER_WAIT_S
from tests.server.http.flows import new_dataset, new_source, upload

# Subprocess servers take their user from the environment, never from the command line.
_ENV_USERS = {**os.environ, USERS_ENV: "alice:pw"}


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
        "from dsmsyncd.server.credentials import serve_credentials; "
        "from dsmsyncd.server.main import ServeOptions, run_server; "
        f"sys.exit(run_server(ServeOptions(data_dir=Path({str(tmp_path)!r}), "
        "users=serve_credentials([], None, [], None)[0])))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, env=_ENV_USERS
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


# A server whose parses never end on their own: the patched ingest says when it has
# started (on stdout, after the readiness line) and then waits forever, so the test
# knows a parse is in progress without timing anything.
_STUCK_SERVER = """
import asyncio, sys
from pathlib import Path
from dsmsyncd.server.credentials import serve_credentials
from dsmsyncd.server.main import ServeOptions, run_server
from dsmsyncd.server.storage.rowstore import RowStore

async def stuck(self, *args, **kwargs):
    print("ingest started", flush=True)
    await asyncio.Event().wait()

RowStore.ingest_upload = stuck
options = ServeOptions(
    data_dir=Path({data_dir!r}),
    users=serve_credentials([], None, [], None)[0],
    shutdown_timeout={timeout!r},
)
sys.exit(run_server(options))
"""


async def _start_stuck(data_dir: Path, shutdown_s: float) -> tuple[asyncio.subprocess.Process, str]:
    code = _STUCK_SERVER.format(data_dir=str(data_dir), timeout=shutdown_s)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_ENV_USERS,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
    assert line.startswith("dsmsyncd serve: listening on "), line
    return proc, line.rsplit(" ", 1)[1].strip()


async def _upload_until_parsing(proc: asyncio.subprocess.Process, url: str) -> int:
    """Upload a CSV to the subprocess server; returns once its parse has started."""
    headers = _basic("alice", "pw")
    async with aiohttp.ClientSession(base_url=url, headers=headers) as api:
        source = await new_source(api, await new_dataset(api))
        await upload(api, source, b"id,name\n1,a\n2,b\n", [])
    assert proc.stdout is not None
    started = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    assert started == b"ingest started\n"
    return int(source["resource"]["id"])


async def _stderr_until(proc: asyncio.subprocess.Process, marker: str) -> str:
    assert proc.stderr is not None
    seen = ""
    while marker not in seen:
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=30)
        assert line, f"stderr ended before {marker!r}: {seen}"
        seen += line.decode()
    return seen


async def test_sigterm_during_parse_exits_0_and_restart_resumes_it(tmp_path: Path) -> None:
    proc, url = await _start_stuck(tmp_path, shutdown_s=0.2)
    try:
        sid = await _upload_until_parsing(proc, url)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert "cancelling it" in err
        assert "dsmsyncd serve: stopped" in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    server = await start_server(ServeOptions(data_dir=tmp_path, users=[("alice", "pw")]))
    try:
        await server.state.drain()  # the resumed parse and its transform
        schemas = server.state.meta.children(Kind.INPUT_SCHEMA, sid)
        assert [s["total_rows"] for s in schemas] == [2]
        source = server.state.meta.get(Kind.SOURCE, sid)
        assert source is not None
        assert source["failed_at"] is None
    finally:
        await server.stop()


async def test_second_signal_exits_at_once(tmp_path: Path) -> None:
    proc, url = await _start_stuck(tmp_path, shutdown_s=600.0)
    try:
        await _upload_until_parsing(proc, url)
        proc.send_signal(signal.SIGINT)
        await _stderr_until(proc, "send the signal again")
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 128 + signal.SIGINT
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_stop_cancels_background_work_after_shutdown_timeout(tmp_path: Path) -> None:
    server = await start_server(ServeOptions(data_dir=tmp_path, shutdown_timeout=0.0))
    never = asyncio.Event()
    task = server.state.spawn(never.wait(), name="stuck")
    await server.stop()
    assert task.cancelled()


def test_serve_flags_reach_serve_options(serve_options: list[ServeOptions]) -> None:
    argv = ["serve", "--data-dir", "d", "--shutdown-timeout", "2.5", "--max-upload-bytes", "9"]
    assert cli.main([*argv, "--answer-wait", "0"]) == 0
    assert serve_options[0].shutdown_timeout == 2.5
    assert serve_options[0].max_upload_bytes == 9
    assert serve_options[0].answer_wait_s == 0.0
    assert cli.main(["serve", "--data-dir", "d"]) == 0
    assert serve_options[1].shutdown_timeout == 30.0
    assert serve_options[1].max_upload_bytes is None
    assert serve_options[1].answer_wait_s == DEFAULT_ANSWER_WAIT_S


async def test_answer_wait_reaches_the_running_server(tmp_path: Path) -> None:
    server = await start_server(ServeOptions(data_dir=tmp_path, answer_wait_s=0.0))
    try:
        assert server.state.answer_wait_s == 0.0
    finally:
        await server.stop()


def test_serve_flags_refuse_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    bad = (("--shutdown-timeout", "-1"), ("--max-upload-bytes", "0"), ("--answer-wait", "-1"))
    for flag, value in bad:
        with pytest.raises(SystemExit) as exited:
            cli.build_parser().parse_args(["serve", "--data-dir", "d", flag, value])
        assert exited.value.code == 2
        assert flag in capsys.readouterr().err
