"""Server credentials: never on the command line, clear errors, no user enumeration by timing.

The command-line tests start ``dsmsyncd serve`` as a real process and look at what any
local user can read about it (``/proc/PID/cmdline`` and ``ps``); the timing test
counts the password-hash calls through the module function the server calls, not
the clock.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dsmsyncd.cli import main as cli
from dsmsyncd.cli.exit_codes import ExitCode
from dsmsyncd.server.catalog import users as user_docs
from dsmsyncd.server.catalog.metastore import MetaStore
from dsmsyncd.server.credentials import TOKENS_ENV, USERS_ENV
from dsmsyncd.server.errors import ApiError
from dsmsyncd.server.http import auth
from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import assert_refused_reply
from tests.server.support.serve_process import serve_process, write_users

PASSWORD = "pw-Kq8#zL2,x"  # a comma and a '#': both are allowed in a password
TOKEN = "tok-9f8e7d6c5b4a"


def _basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


async def _whoami(url: str, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/api/users/current.json", headers=headers) as resp,
    ):
        return resp.status


def _visible_to_others(pid: int) -> str:
    """What every local user can read about a process's invocation."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    ps = subprocess.run(
        ["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=True
    ).stdout
    return cmdline + "\n" + ps


async def test_users_and_tokens_files_keep_secrets_off_the_command_line(tmp_path: Path) -> None:
    users = write_users(tmp_path / "users", ("alice", PASSWORD), ("bob", "bob-" + PASSWORD))
    tokens = tmp_path / "tokens"
    tokens.touch(mode=0o600)
    tokens.write_text(f"# tokens\nalice:{TOKEN}\n")
    args = ("--users-file", str(users), "--tokens-file", str(tokens))
    async with serve_process(tmp_path / "data", *args) as served:
        seen = _visible_to_others(served.proc.pid)
        assert "--users-file" in seen
        for secret in (PASSWORD, TOKEN, "bob-"):
            assert secret not in seen
        assert await _whoami(served.url, _basic("alice", PASSWORD)) == 200
        assert await _whoami(served.url, _basic("bob", "bob-" + PASSWORD)) == 200
        assert await _whoami(served.url, {"Authorization": f"Bearer {TOKEN}"}) == 200
        assert await _whoami(served.url, _basic("alice", "wrong")) == 401


async def test_users_from_environment_variable_one_per_line(tmp_path: Path) -> None:
    env = {
        USERS_ENV: f"# two users\nalice:{PASSWORD}\n\ncarol:c-pass\n",
        TOKENS_ENV: f"carol:{TOKEN}",
    }
    async with serve_process(tmp_path / "data", env=env) as served:
        assert PASSWORD not in _visible_to_others(served.proc.pid)
        assert await _whoami(served.url, _basic("alice", PASSWORD)) == 200
        assert await _whoami(served.url, _basic("carol", "c-pass")) == 200
        assert await _whoami(served.url, {"Authorization": f"OAuth {TOKEN}"}) == 200


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("alice:ok\nsecretwithoutcolon\n", "line 2: expected NAME:PASSWORD, found no ':'"),
        ("# comment\n:secret-after-empty-name\n", "line 2: the name before ':' is empty"),
        ("al ice:secret-with-spaced-name\n", "line 1: the name 'al ice' contains whitespace"),
        ("\n\nalice:\n", "line 3: the password after 'alice:' is empty"),
    ],
)
def test_malformed_users_file_names_file_and_line_never_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, problem: str
) -> None:
    users = tmp_path / "users"
    users.touch(mode=0o600)
    users.write_text(content)
    code = cli.main(["serve", "--data-dir", str(tmp_path / "d"), "--users-file", str(users)])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert f"dsmsyncd serve: {users} {problem}" in err
    assert "secret" not in err.replace(str(tmp_path), "")
    assert not (tmp_path / "d").exists()  # refused before anything started


def test_malformed_variable_and_duplicate_user_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["serve", "--data-dir", str(tmp_path / "d")]
    monkeypatch.setenv(USERS_ENV, "alice:pw-first\nhunter2")
    assert cli.main(argv) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"{USERS_ENV} line 2: expected NAME:PASSWORD, found no ':'" in err
    assert "hunter2" not in err
    monkeypatch.setenv(USERS_ENV, "alice:pw-first")
    assert cli.main([*argv, "--user", "alice:pw-second"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"user 'alice' is given twice ({USERS_ENV} line 1 and --user)" in err
    assert "pw-" not in err


def test_unreadable_users_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-file"
    argv = ["serve", "--data-dir", str(tmp_path / "d"), "--users-file", str(missing)]
    assert cli.main(argv) == ExitCode.USAGE
    assert f"dsmsyncd serve: cannot read {missing}: " in capsys.readouterr().err


async def test_unknown_user_costs_the_same_password_hash_as_a_wrong_password(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    real = auth._verify_password

    def counted(password: str, stored: dict[str, Any]) -> bool:
        calls.append(stored)
        return real(password, stored)

    monkeypatch.setattr(auth, "_verify_password", counted)
    assert await _whoami(server.url, _basic("alice", "wrong-password")) == 401
    assert len(calls) == 1
    assert await _whoami(server.url, _basic("nobody", "any-password")) == 401
    assert len(calls) == 2
    wrong, unknown = calls
    assert {k: unknown[k] for k in ("alg", "n", "r", "p")} == {
        k: wrong[k] for k in ("alg", "n", "r", "p")
    }
    assert await asyncio.to_thread(real, "any-password", unknown) is False


def test_users_file_others_can_read_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = tmp_path / "users"
    users.write_text("no-colon-here\n")
    users.chmod(0o644)
    assert cli.main(["serve", "--data-dir", str(tmp_path / "d"), "--users-file", str(users)]) == 2
    err = capsys.readouterr().err
    assert f"{users} holds secrets and other users may read it; run: chmod 600 {users}" in err
    assert "no-colon-here" not in err


async def test_a_header_that_signed_in_is_checked_again_once_a_user_changes(
    server: RunningServer,
) -> None:
    meta = server.state.meta
    user_docs.ensure_user(meta, "dave", "first-" + PASSWORD)
    first = _basic("dave", "first-" + PASSWORD)
    assert await _whoami(server.url, first) == 200
    assert await _whoami(server.url, first) == 200  # remembered
    user_docs.ensure_user(meta, "dave", "second-" + PASSWORD)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/api/users/current.json", headers=first) as resp,
    ):
        await assert_refused_reply(
            resp, 401, "authentication_required", "invalid username or password"
        )
    assert await _whoami(server.url, _basic("dave", "second-" + PASSWORD)) == 200
    user_docs.add_token(meta, "dave", TOKEN)
    assert await _whoami(server.url, {"Authorization": f"Bearer {TOKEN}"}) == 200


async def test_headers_that_signed_in_are_remembered_up_to_a_bound(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.sqlite3")
    user = user_docs.ensure_user(meta, "erin", PASSWORD)
    authenticator = auth.Authenticator(meta, remember=2)
    secret = base64.b64encode(f"erin:{PASSWORD}".encode()).decode()
    # One credential, four spellings of its header: each is remembered on its own.
    spellings = [f"Basic {secret}", f"basic {secret}", f"Basic  {secret}", f"BASIC {secret}"]
    for header in spellings * 2:
        signed_in = await authenticator.authenticate(header)
        assert signed_in is not None
        assert signed_in["id"] == user["id"]
        assert authenticator.remembered <= 2
    wrong = base64.b64encode(b"erin:wrong").decode()
    for _ in range(2):
        with pytest.raises(ApiError, match="invalid username or password") as refused:
            await authenticator.authenticate(f"Basic {wrong}")
        assert refused.value.key == "authentication_required"
    assert authenticator.remembered <= 2
    meta.close()
