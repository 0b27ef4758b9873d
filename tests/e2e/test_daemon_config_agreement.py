"""``check-config`` and ``run`` judge a config alike: one validation, the README's exit codes.

Every case runs the real CLI. A config ``run`` would refuse is refused by
``check-config`` too (exit 2, naming the key), before anything starts; a target that
does not answer is a retryable failure (exit 5), not a config error.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .conftest import CliResult, Site, run_cli

MARKER = "Zq7-marker-secret-9Xw"


async def both_commands(path: Path) -> list[CliResult]:
    """``check-config --offline`` and ``run`` on ``path`` (run must refuse before starting)."""
    return [
        await run_cli("check-config", "-c", str(path), "--offline"),
        await run_cli("run", "-c", str(path), within=30),
    ]


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


async def test_target_url_with_credentials_is_refused_by_both(site: Site) -> None:
    site.map("abcd-1234")
    path = edit(site.write_config(), 'url = "http://', f'url = "http://robot:{MARKER}@')
    for result in await both_commands(path):
        assert result.code == 2, result
        assert "target.url: credentials in the URL are refused" in result.err
        assert "Traceback" not in result.err
        assert MARKER not in result.out + result.err


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "nonsense", ":9108", "999.1.1.1:80"])
async def test_bad_admin_listen_is_refused_by_both(site: Site, listen: str) -> None:
    site.map("abcd-1234")
    path = edit(site.write_config(), 'listen = "127.0.0.1:0"', f'listen = "{listen}"')
    for result in await both_commands(path):
        assert result.code == 2, result
        assert "admin.listen: expected HOST:PORT with a port from 0 to 65535" in result.err
        assert f"found {listen!r}" in result.err


async def test_check_config_unreachable_target_exits_5(site: Site) -> None:
    with socket.socket() as probe:  # a port the kernel just handed out: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    site.map("abcd-1234")
    path = edit(site.write_config(), site.server_url, f"http://127.0.0.1:{port}")
    result = await run_cli("check-config", "-c", str(path))
    assert result.code == 5, result
    assert f"FAIL target: http://127.0.0.1:{port} does not answer" in result.out
    assert "try again" in result.out.splitlines()[-1]


async def test_nested_source_folders_are_refused_by_both(site: Site) -> None:
    site.map("abcd-1234")
    path = site.write_config()
    inner = site.drop / "inner"
    inner.mkdir(parents=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(f'[[source]]\nname = "nested"\nurl = "file://{inner}"\n')
    for result in await both_commands(path):
        assert result.code == 2, result
        assert (
            f"source[1].url: the folder of source 'nested' ({inner}) is inside the folder of "
            f"source 'drop' ({site.drop}): every file there would be taken by both sources"
        ) in result.err


async def test_same_folder_twice_is_refused(site: Site) -> None:
    site.map("abcd-1234")
    path = site.write_config()
    with path.open("a", encoding="utf-8") as out:
        out.write(f'[[source]]\nname = "again"\nurl = "file://{site.drop}/"\n')
    result = await run_cli("check-config", "-c", str(path), "--offline")
    assert result.code == 2, result
    assert f"source 'again' has the same folder as source 'drop' ({site.drop})" in result.err


async def test_same_bucket_prefix_twice_is_refused_by_both(tmp_path: Path) -> None:
    path = tmp_path / "buckets.toml"
    path.write_text(
        "\n".join(
            [
                "[target]",
                'url = "http://127.0.0.1:1"',
                "[state]",
                f'url = "sqlite:///{tmp_path}/state.db"',
                "[[source]]",
                'name = "first"',
                'url = "s3://drops/in/"',
                'endpoint_url = "http://127.0.0.1:9"',
                "[[source]]",
                'name = "second"',
                'url = "s3://drops/in/permits"',
                'endpoint_url = "http://127.0.0.1:9"',
                "[[source]]",
                'name = "elsewhere"',  # same bucket name on another store: no overlap
                'url = "s3://drops/in/"',
                'endpoint_url = "http://127.0.0.1:10"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    for result in await both_commands(path):
        assert result.code == 2, result
        assert (
            "source[1].url: the prefix of source 'second' (s3://drops/in/permits/) is inside "
            "the prefix of source 'first' (s3://drops/in/)"
        ) in result.err
        assert "source[2]" not in result.err
