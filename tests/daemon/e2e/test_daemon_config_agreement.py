"""``check-config`` and ``run`` judge a config alike: one validation, the README's exit codes.

Every case runs the real CLI. A config ``run`` would refuse is refused by
``check-config`` too (exit 2, naming the key), before anything starts; a target that
does not answer is a retryable failure (exit 5), not a config error.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.daemon.e2e.processes import CliResult, run_cli
from tests.daemon.e2e.site import Site

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


def add_folder_source(path: Path, name: str, folder: Path) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(f'[[source]]\nname = "{name}"\nurl = "file://{folder}"\n')


async def test_archive_inside_another_sources_folder_is_refused_by_both(site: Site) -> None:
    other = site.root / "other"
    site.map("abcd-1234", archive_dir=str(other / "done"))
    path = site.write_config()
    add_folder_source(path, "other", other)
    for result in await both_commands(path):
        assert result.code == 2, result
        assert (
            f"mapping[0].archive_dir: {other}/done (where mapping[0], source 'drop' → dataset "
            f"abcd-1234, moves files) is inside the folder of source 'other' ({other}): that "
            "source would take every file this mapping moves there as a new file and publish "
            "it again, in a loop that duplicates rows; move it out of that folder"
        ) in result.err
        assert "quarantine_dir" not in result.err


async def test_quarantine_in_its_own_sources_root_is_refused_by_both(site: Site) -> None:
    site.map("abcd-1234", quarantine_dir=str(site.drop))
    for result in await both_commands(site.write_config()):
        assert result.code == 2, result
        assert (
            f"mapping[0].quarantine_dir: {site.drop} (where mapping[0], source 'drop' → "
            f"dataset abcd-1234, moves files) is the folder of source 'drop' itself: that "
            "source would take every file this mapping moves there as a new file"
        ) in result.err


async def test_folders_a_source_skips_are_accepted(site: Site) -> None:
    """Inside its own source's folder (discovery skips it), or in a folder another source
    ignores (a dot-folder, with the default ``ignore`` patterns): nothing comes back."""
    other = site.root / "other"
    site.map("abcd-1234", archive_dir=str(site.drop / "archive"))
    site.map("abcd-5678", match="*.txt", quarantine_dir=str(other / ".quarantine"))
    path = site.write_config()
    add_folder_source(path, "other", other)
    result = await run_cli("check-config", "-c", str(path), "--offline")
    assert result.code == 0, result


async def test_bucket_quarantine_inside_another_sources_prefix_is_refused_by_both(
    tmp_path: Path,
) -> None:
    path = tmp_path / "buckets.toml"
    lines = ["[target]", 'url = "http://127.0.0.1:1"', "[state]"]
    lines += [f'url = "sqlite:///{tmp_path}/state.db"']
    for name, prefix in (("exports", "in/"), ("late", "late/")):
        lines += ["[[source]]", f'name = "{name}"', f'url = "s3://drops/{prefix}"']
        lines += ['endpoint_url = "http://127.0.0.1:9"']
    lines += ["[[mapping]]", 'source = "exports"', 'match = "*.csv"', 'dataset = "abcd-1234"']
    lines += ['action = "update"', 'on_success = "delete"', 'quarantine_dir = "late/bad/"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for result in await both_commands(path):
        assert result.code == 2, result
        assert (
            "mapping[0].quarantine_dir: late/bad (where mapping[0], source 'exports' → dataset "
            "abcd-1234, moves files) is inside the prefix of source 'late' (s3://drops/late/): "
            "that source would take every file this mapping moves there"
        ) in result.err


async def test_check_config_reads_a_relative_archive_dir_under_its_source(site: Site) -> None:
    """The finalizer puts a relative ``archive_dir`` under the source's folder; check-config
    must judge that same folder, not one under its own working directory."""
    site.map("abcd-1234", archive_dir=".done")
    result = await run_cli("check-config", "-c", str(site.write_config()))
    assert f"{site.drop / '.done'} does not exist yet; it will be created" in result.out, result
    assert f"{Path.cwd() / '.done'}" not in result.out, result


async def test_a_bad_notify_table_is_refused_by_both_without_its_secrets(site: Site) -> None:
    site.map("abcd-1234")
    site.notify = [
        {
            "webhook_url": f"hooks.example.com/services/{MARKER}",
            "smtp_host": "smtp.example.gov",
            "smtp_tls": "none",
            "smtp_username": "mailer",
            "smtp_password": MARKER,
            "mail_from": "dsmsyncd@example.gov",
            "mail_to": ["ops@example.gov"],
            "events": ["quarantined"],
        }
    ]
    for result in await both_commands(site.write_config()):
        assert result.code == 2, result
        assert "notify[0].webhook_url: expected an http(s) URL" in result.err
        assert "the value is a secret and is not shown" in result.err
        assert MARKER not in result.out + result.err


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"dataset": "logs-0001", "spool_dir": "spool"},
            "log_dataset.spool_dir: expected an absolute path, like /var/lib/dsmsyncd/job-log",
        ),
        (
            {"dataset": "Logs", "spool_dir": "/tmp/spool"},
            "log_dataset.dataset: expected a dataset id like 'abcd-1234'",
        ),
    ],
)
async def test_bad_log_dataset_is_refused_by_both(
    site: Site, keys: dict[str, str], message: str
) -> None:
    site.map("abcd-1234")
    site.tables["log_dataset"] = keys
    for result in await both_commands(site.write_config()):
        assert result.code == 2, result
        assert message in result.err


async def test_log_spool_inside_a_drop_folder_is_refused_by_both(site: Site) -> None:
    site.map("abcd-1234")
    site.tables["log_dataset"] = {"dataset": "logs-0001", "spool_dir": str(site.drop / "log")}
    for result in await both_commands(site.write_config()):
        assert result.code == 2, result
        assert (
            f"log_dataset.spool_dir: the folder of source '_job_log' ({site.drop / 'log'}) "
            "is inside"
        ) in result.err
