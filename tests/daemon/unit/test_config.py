"""Config loading: durations, secrets from env and files, and every mistake reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsmsyncd.config import ConfigError, load_config
from dsmsyncd.config.schema import parse_duration

GOOD = """
[target]
url = "https://data.example.gov/"
username = "${DSM_USERNAME}"
password_file = "secret.txt"

[limits]
max_concurrent_jobs = 2

[[source]]
name = "drop"
url = "file:///srv/drop"
min_age = "500ms"
poll_interval = "5m"

[[mapping]]
source = "drop"
match = "permits/*.csv"
dataset = "abcd-1234"
import_config = "permits"
archive_dir = "/srv/archive"
quarantine_dir = "/srv/quarantine"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dsmsyncd.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("2s", 2.0), ("5m", 300.0), ("1h", 3600.0), (3, 3.0)]
)
def test_parse_duration_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_unknown_unit() -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration("5 fortnights")


def test_load_config_resolves_env_and_secret_file(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("hunter2\n", encoding="utf-8")
    config = load_config(_write(tmp_path, GOOD), {"DSM_USERNAME": "robot"})
    assert config.target.url == "https://data.example.gov"
    assert config.target.username is not None
    assert config.target.username.get_secret_value() == "robot"
    assert config.target.password is not None
    assert config.target.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(config)
    assert config.source[0].min_age == 0.5
    assert config.source[0].poll_interval == 300.0
    assert config.mapping[0].max_error_rows == 0


def test_load_config_reports_every_mistake_with_key_path(tmp_path: Path) -> None:
    text = GOOD.replace('dataset = "abcd-1234"', 'dataset = "not a fourfour"').replace(
        'min_age = "500ms"', 'min_age = "soon"\nmin_agee = "1s"'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), {})
    message = str(caught.value)
    keys = {p.key for p in caught.value.problems}
    assert str(tmp_path / "dsmsyncd.toml") in message
    assert "target.username" in keys  # ${DSM_USERNAME} unset
    assert "target.password_file" in keys  # secret.txt missing
    assert "source[0].min_age" in keys
    assert "source[0].min_agee" in keys
    assert "mapping[0].dataset" in keys
    assert "abcd-1234" in message  # says what was expected


def test_load_config_mapping_to_unknown_source_names_known_ones(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("pw", encoding="utf-8")
    text = GOOD.replace('source = "drop"', 'source = "dorp"')
    with pytest.raises(ConfigError, match=r"unknown source\(s\) dorp; known sources: drop"):
        load_config(_write(tmp_path, text), {"DSM_USERNAME": "robot"})


def test_load_config_invalid_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[target\nurl = 1"), {})
