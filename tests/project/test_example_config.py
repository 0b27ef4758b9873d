"""config/example.toml is a working config: it loads, and it documents every key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from dsmsyncd.config import ConfigError, load_config
from dsmsyncd.config.schema import (
    JOB_LOG_SOURCE,
    AdminConfig,
    LimitsConfig,
    LogDatasetConfig,
    MappingConfig,
    NotifyConfig,
    SourceConfig,
    StateConfig,
    TargetConfig,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"
PASSWORD_FILE = '"/etc/dsmsyncd/dsm_password"'


def _copy_example(tmp_path: Path) -> Path:
    """The example, with its password_file pointed at a secret file under tmp_path."""
    secret = tmp_path / "dsm_password"
    secret.write_text("correct-horse-battery\n", encoding="utf-8")
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count(PASSWORD_FILE) == 1, "the example's password_file path moved"
    config = tmp_path / "dsmsyncd.toml"
    config.write_text(text.replace(PASSWORD_FILE, f'"{secret}"'), encoding="utf-8")
    return config


def test_example_loads_with_secret_file_and_env(tmp_path: Path) -> None:
    config = load_config(_copy_example(tmp_path), {"DSM_APP_TOKEN": "app-token-123"})

    assert config.target.url == "https://data.example.gov"
    assert config.target.password is not None
    assert config.target.password.get_secret_value() == "correct-horse-battery"
    assert config.target.app_token is not None
    assert config.target.app_token.get_secret_value() == "app-token-123"
    assert config.admin.listen == "127.0.0.1:9108"
    assert config.limits.drain_timeout == 60.0
    assert [s.name for s in config.source] == ["permits-drop", "inspections-bucket"]
    assert config.source[1].poll_interval == 120.0

    by_dataset = {m.dataset: m for m in config.mapping}
    assert len(config.mapping) == 4
    assert by_dataset["bldg-prmt"].import_config == "building-permits"
    update = by_dataset["elec-prmt"]
    assert (update.action, update.on_success) == ("update", "archive")
    assert update.archive_dir is not None
    replace = by_dataset["insp-2024"]
    assert replace.action == "replace"
    assert replace.max_row_drop < MappingConfig.model_fields["max_row_drop"].default
    assert replace.allow_empty_replace is False
    staged = by_dataset["budg-2025"]
    assert (staged.publish, staged.on_staged) == ("stage", "supersede")
    assert MappingConfig.model_fields["publish"].default == "auto"
    (mail,) = config.notify
    assert (mail.label(0), mail.port, mail.events) == (
        "on-call-mail",
        587,
        ["quarantined", "failed", "staged"],
    )


def test_example_log_dataset_uncommented_adds_the_job_log_source(tmp_path: Path) -> None:
    path = _copy_example(tmp_path)
    text = path.read_text(encoding="utf-8")
    start, end = text.index("# [log_dataset]"), text.index('# batch_interval = "60s"')
    block = text[start:end] + '# batch_interval = "60s"'
    settings = "\n".join(
        line.removeprefix("# ") for line in block.splitlines() if "=" in line or "[" in line
    )
    path.write_text(text.replace(block, settings), encoding="utf-8")
    config = load_config(path, {"DSM_APP_TOKEN": "t"})
    assert config.log_dataset is not None
    assert (config.log_dataset.dataset, config.log_dataset.batch_interval) == ("jlog-2026", 60.0)
    assert config.source[-1].name == JOB_LOG_SOURCE
    assert config.source[-1].url == "file:///var/lib/dsmsyncd/job-log"
    assert (config.mapping[-1].dataset, config.mapping[-1].action) == ("jlog-2026", "update")


def test_example_keeps_secrets_out_of_repr(tmp_path: Path) -> None:
    config = load_config(_copy_example(tmp_path), {"DSM_APP_TOKEN": "app-token-123"})
    shown = repr(config) + str(config.model_dump())
    assert "correct-horse-battery" not in shown
    assert "app-token-123" not in shown


def test_example_needs_the_app_token_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"DSM_APP_TOKEN is not set"):
        load_config(_copy_example(tmp_path), {})


@pytest.mark.parametrize(
    ("section", "model"),
    [
        ("target", TargetConfig),
        ("state", StateConfig),
        ("admin", AdminConfig),
        ("limits", LimitsConfig),
        ("source", SourceConfig),
        ("mapping", MappingConfig),
        ("notify", NotifyConfig),
        ("log_dataset", LogDatasetConfig),
    ],
)
def test_example_documents_every_key(section: str, model: type[BaseModel]) -> None:
    """Each key appears as a setting, a commented-out setting, or in the key table."""
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = [
        key
        for key in model.model_fields
        if not re.search(rf"^#?\s*{key}(_file)?\s*=|^#\s+{key}\s", text, re.MULTILINE)
    ]
    assert not missing, f"[{section}] keys not shown in config/example.toml: {missing}"
