"""No config error prints a resolved secret: every error path, with a marker secret.

Each case puts the marker where a secret can reach a message: through ``${VAR}``,
through a ``*_file``, or as URL userinfo, under a key whose validation then fails.
The error must name the key and, for a resolved value, where it came from, and the
marker must appear nowhere in the message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dsmsyncd.config import ConfigError, load_config

MARKER = "Zq7-marker-secret-9Xw"

BASE = """
[target]
url = "https://data.example.gov"
username = "robot"
password = "${PW}"

[state]
url = "sqlite:///tmp/dsmsyncd-test/state.db"

[admin]
listen = "127.0.0.1:0"

[limits]
max_concurrent_jobs = 2

[[source]]
name = "drop"
url = "file:///srv/drop"
min_age = "2s"

[[mapping]]
source = "drop"
match = "*.csv"
dataset = "abcd-1234"
action = "update"
quarantine_dir = "/srv/quarantine"
on_success = "keep"
"""

# (id, text replaced in BASE, its replacement, the key reported, text the message must hold)
CASES = [
    (
        "state url with ${PGPASSWORD}, unknown scheme",
        'url = "sqlite:///tmp/dsmsyncd-test/state.db"',
        'url = "mysql://sync:${PW}@db.internal/dsm"',
        "state.url",
        "the value comes from ${PW} and is not shown",
    ),
    (
        "state url with ${PGPASSWORD}, PostgreSQL",
        'url = "sqlite:///tmp/dsmsyncd-test/state.db"',
        'url = "postgresql://sync:${PW}@db.internal/dsm?sslmode=sometimes"',
        "state.url",
        "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full",
    ),
    (
        "state password from ${VAR} beside a SQLite url",
        'url = "sqlite:///tmp/dsmsyncd-test/state.db"',
        'url = "sqlite:///tmp/dsmsyncd-test/state.db"\npassword = "${PW}"',
        "state",
        "password is for a postgresql:// url; a SQLite url takes none",
    ),
    (
        "state password_file beside a url that carries one",
        'url = "sqlite:///tmp/dsmsyncd-test/state.db"',
        'url = "postgresql://sync:${PW}@db.internal/dsm"\npassword_file = "secret.txt"',
        "state",
        "the url carries a password already: set it in one place",
    ),
    (
        "state url with credentials written in the file",
        'url = "sqlite:///tmp/dsmsyncd-test/state.db"',
        f'url = "mysql://sync:{MARKER}@db.internal/dsm"',
        "state.url",
        "found 'mysql://********@db.internal/dsm'",
    ),
    (
        "target url from ${VAR}",
        'url = "https://data.example.gov"',
        'url = "ftp://${PW}"',
        "target.url",
        "the value comes from ${PW} and is not shown",
    ),
    (
        "target url with userinfo",
        'url = "https://data.example.gov"',
        f'url = "https://robot:{MARKER}@data.example.gov"',
        "target.url",
        "credentials in the URL are refused",
    ),
    (
        "target url from a *_file",
        'url = "https://data.example.gov"',
        'url_file = "secret.txt"',
        "target.url",
        "the value comes from url_file (",
    ),
    (
        "password of the wrong type",
        'password = "${PW}"',
        "password = 12345",
        "target.password",
        "the value is a secret and is not shown",
    ),
    (
        "ca_bundle from ${VAR}",
        'username = "robot"',
        'username = "robot"\nca_bundle = "/nonexistent/${PW}.pem"',
        "target.ca_bundle",
        "cannot load CA certificates",
    ),
    (
        "source url from ${VAR}",
        'url = "file:///srv/drop"',
        'url = "ftp://${PW}"',
        "source[0].url",
        "the value comes from ${PW}",
    ),
    (
        "endpoint_url with userinfo",
        'url = "file:///srv/drop"',
        f'url = "s3://drops/in/"\nendpoint_url = "https://AKIA:{MARKER}@minio.internal:9000"',
        "source[0].endpoint_url",
        "credentials in the URL are refused",
    ),
    (
        "secret access key of the wrong type",
        'url = "file:///srv/drop"',
        'url = "s3://drops/in/"\naccess_key_id = "AKIA"\nsecret_access_key = ["${PW}"]',
        "source[0].secret_access_key",
        "Input should be a valid string",
    ),
    (
        "duration from ${VAR}",
        'min_age = "2s"',
        'min_age = "${PW}"',
        "source[0].min_age",
        "expected a duration like '500ms', '2s' or '5m'; the value comes from ${PW}",
    ),
    (
        "integer from ${VAR}",
        "max_concurrent_jobs = 2",
        'max_concurrent_jobs = "${PW}"',
        "limits.max_concurrent_jobs",
        "the value comes from ${PW}",
    ),
    (
        "listen from ${VAR}",
        'listen = "127.0.0.1:0"',
        'listen = "${PW}"',
        "admin.listen",
        "expected HOST:PORT",
    ),
    (
        "dataset from ${VAR}",
        'dataset = "abcd-1234"',
        'dataset = "${PW}"',
        "mapping[0].dataset",
        "the value comes from ${PW}",
    ),
    (
        "source name from ${VAR}",
        'name = "drop"',
        'name = "${PW}!"',
        "source[0].name",
        "the value comes from ${PW}",
    ),
    (
        "mapping to an unknown source from ${VAR} (a whole-config check)",
        'source = "drop"',
        'source = "${PW}"',
        "",
        "mapping refers to unknown source(s) ********",
    ),
    (
        "unknown key holding a secret",
        'password = "${PW}"',
        'password = "${PW}"\npasword = "${PW}"',
        "target.pasword",
        "unknown key",
    ),
    (
        "secret file path from ${VAR}",
        'password = "${PW}"',
        'password_file = "/nonexistent/${PW}/password"',
        "target.password_file",
        "cannot read secret file /nonexistent/********/password",
    ),
    (
        "a secret file whose name says password is named, not masked",
        'password = "${PW}"',
        'password_file = "/nonexistent/postgres-password"',
        "target.password_file",
        "cannot read secret file /nonexistent/postgres-password (No such file or directory)",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "says"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_config_error_never_shows_a_resolved_secret(
    tmp_path: Path, old: str, new: str, key: str, says: str
) -> None:
    (tmp_path / "secret.txt").write_text(f"ftp://{MARKER}\n", encoding="utf-8")
    assert old in BASE
    path = tmp_path / "dsmsyncd.toml"
    path.write_text(BASE.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"PW": MARKER})
    message = str(caught.value)
    assert MARKER not in message
    problems = {p.key: p.message for p in caught.value.problems}
    assert key in problems, message
    assert says in problems[key], message


def test_config_error_still_shows_a_harmless_value(tmp_path: Path) -> None:
    path = tmp_path / "dsmsyncd.toml"
    path.write_text(BASE.replace('min_age = "2s"', 'min_age = "soon"'), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"PW": MARKER})
    assert "source[0].min_age: expected a duration like '500ms', '2s' or '5m', found 'soon'" in (
        str(caught.value)
    )
