"""What the CLI and the daemon print about a bad config never holds a resolved secret.

A marker secret reaches the config through the environment, a secret file and URL
userinfo at once; ``check-config`` (offline and online), ``run`` and a SIGHUP reload
refused by the running daemon all report the mistakes by key and origin, never by value.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from tests.daemon.e2e.processes import DaemonProcess, run_cli, wait_until
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset

MARKER = "Zq7-marker-secret-9Xw"


def broken(site: Site) -> Path:
    """The site's config with the marker in five failing keys."""
    path = site.write_config()
    secret = site.root / "url.secret"
    secret.write_text(f"ftp://{MARKER}\n", encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    text = text.replace(f'url = "sqlite:///{site.state_db}"', 'url = "mysql://u:${DSM_PW}@db/x"')
    text = text.replace('listen = "127.0.0.1:0"', 'listen = "${DSM_PW}"')
    text = text.replace('min_age = "100ms"', 'min_age = "${DSM_PW}"')
    text = text.replace('name = "drop"', f'name = "drop"\nendpoint_url_file = "{secret}"')
    text = text.replace('match = "*.csv"', 'match = "*.csv"\nimport_config = "${DSM_PW}"')
    path.write_text(text, encoding="utf-8")
    return path


async def test_check_config_and_run_never_print_a_resolved_secret(site: Site) -> None:
    site.map("abcd-1234")
    path = broken(site)
    env = {"DSM_PW": MARKER}
    for args in (["check-config", "--offline"], ["check-config"], ["run"]):
        result = await run_cli(*args, "-c", str(path), env=env, within=30)
        assert result.code == 2, result
        for key in ("state.url", "admin.listen", "source[0].min_age", "source[0].endpoint_url"):
            assert f"  {key}: " in result.err, (key, result.err)
        assert "the value comes from ${DSM_PW} and is not shown" in result.err
        assert f"the value comes from endpoint_url_file ({site.root / 'url.secret'})" in (
            result.err
        )
        assert MARKER not in result.out + result.err


async def test_check_config_online_never_prints_the_password(
    site: Site, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, b"id\n1\n")
    site.map(ff)
    path = site.write_config()
    text = path.read_text(encoding="utf-8")
    password_file = f'password_file = "{site.root / "robot.password"}"'
    path.write_text(text.replace(password_file, 'password = "${DSM_PW}"'), encoding="utf-8")
    result = await run_cli("check-config", "-c", str(path), env={"DSM_PW": MARKER})
    assert result.code == 2, result
    assert "FAIL credentials: the target refused them" in result.out
    assert MARKER not in result.out + result.err


async def test_reload_refused_log_never_shows_a_resolved_secret(
    site: Site, client: DsmapiClient, daemon_process: DaemonProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSM_PW", MARKER)  # the daemon process inherits it
    site.map(await publish_dataset(client, b"id\n1\n"))
    site.write_config()
    await daemon_process.start()
    broken(site)
    assert daemon_process.process is not None
    daemon_process.process.send_signal(signal.SIGHUP)

    async def refused() -> bool:
        return "reload refused" in daemon_process.log.read_text(encoding="utf-8")

    await wait_until(refused, within=20, what="the reload refused line")
    log = daemon_process.log.read_text(encoding="utf-8")
    assert "state.url" in log
    assert "the value comes from ${DSM_PW} and is not shown" in log
    assert MARKER not in log
