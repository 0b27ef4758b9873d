"""The job log's internal source and mapping in a loaded config, at start and on reload."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dsmsyncd.cli.check_config import check_folders
from dsmsyncd.config import load_config
from dsmsyncd.config.job_log import reloaded_with_job_log, with_job_log
from dsmsyncd.config.schema import JOB_LOG_SOURCE, Config


def config_with_log(tmp_path: Path, dataset: str | None) -> Config:
    log = f'[log_dataset]\ndataset = "{dataset}"\nspool_dir = "{tmp_path}/spool"\n'
    text = (
        '[target]\nurl = "http://127.0.0.1:1"\n'
        f'[[source]]\nname = "drop"\nurl = "file://{tmp_path}/drop"\n'
        '[[mapping]]\nsource = "drop"\nmatch = "*.csv"\ndataset = "abcd-1234"\n'
        f'action = "update"\non_success = "delete"\nquarantine_dir = "{tmp_path}/q"\n'
    ) + (log if dataset else "")
    path = tmp_path / f"{dataset}.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def log_datasets(config: Config) -> list[str]:
    return [m.dataset for m in config.mapping if m.source == JOB_LOG_SOURCE]


def test_the_job_log_is_added_once(tmp_path: Path) -> None:
    config = config_with_log(tmp_path, "logs-0001")
    assert [s.name for s in config.source] == ["drop", JOB_LOG_SOURCE]
    assert with_job_log(config) == config
    (mapping,) = [m for m in config.mapping if m.source == JOB_LOG_SOURCE]
    assert (mapping.match, mapping.action, mapping.on_success) == ("*.csv", "update", "delete")
    assert mapping.quarantine_dir == tmp_path / "spool" / "quarantine"


def test_a_reload_keeps_the_job_log_the_daemon_started_with(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = config_with_log(tmp_path, "logs-0001")
    with caplog.at_level(logging.WARNING, logger="dsmsyncd.config.job_log"):
        changed = reloaded_with_job_log(config_with_log(tmp_path, "logs-0002"), running.log_dataset)
        removed = reloaded_with_job_log(config_with_log(tmp_path, None), running.log_dataset)
    assert log_datasets(changed) == log_datasets(removed) == ["logs-0001"]
    assert (
        caplog.messages == ["[log_dataset] changed: the change takes effect at the next start"] * 2
    )
    added = reloaded_with_job_log(config_with_log(tmp_path, "logs-0002"), None)
    assert log_datasets(added) == []
    assert [s.name for s in added.source] == ["drop"]


def test_check_config_lets_the_daemon_make_the_spool(tmp_path: Path) -> None:
    (tmp_path / "drop").mkdir()
    findings = {f.subject: f for f in check_folders(config_with_log(tmp_path, "logs-0001"))}
    spool = findings[f"source {JOB_LOG_SOURCE}"]
    assert spool.ok
    assert spool.message == f"{tmp_path}/spool does not exist yet; it will be created"
