"""``[[notify]]`` tables: what loads, what is refused with which key and message, and
that a webhook URL or an SMTP password never shows in an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsmsyncd.config import ConfigError, load_config

BASE = """
[target]
url = "https://data.example.gov"
[state]
url = "sqlite:///tmp/dsmsyncd-test/state.db"
"""
MARKER = "Zq7-marker-secret-9Xw"


def load(tmp_path: Path, notify: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "dsmsyncd.toml"
    path.write_text(BASE + notify, encoding="utf-8")
    return load_config(path, env or {})


def problems(tmp_path: Path, notify: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, notify, env)
    return str(caught.value)


def test_notify_table_loads_with_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
[[notify]]
webhook_url = "${HOOK}"
smtp_host = "smtp.example.gov"
smtp_username = "mailer"
smtp_password = "${SMTP_PW}"
mail_from = "dsmsyncd@example.gov"
mail_to = ["ops@example.gov"]
events = ["quarantined", "retrying"]
""",
        {"HOOK": f"https://hooks.example.com/services/{MARKER}", "SMTP_PW": MARKER},
    )
    (notify,) = config.notify  # type: ignore[attr-defined]
    assert (notify.label(0), notify.port, notify.smtp_tls) == ("notify[0]", 587, "starttls")
    assert (notify.retrying_after, notify.max_per_hour, notify.attempts) == (1800.0, 20, 3)
    assert MARKER not in repr(notify)


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        (
            'webhook_url = "ftp://x"\nevents = ["failed"]',
            "notify[0].webhook_url",
            "expected an http(s) URL",
        ),
        ("events = []", "notify[0].events", "at least 1 item"),
        (
            'webhook_url = "https://h.example"\nevents = ["boom"]',
            "notify[0].events[0]",
            "'quarantined', 'failed', 'retrying', 'recovered', 'staged' or 'published'",
        ),
        (
            'webhook_url = "https://h.example"\nevents = ["failed", "failed"]',
            "notify[0].events",
            "events listed twice: failed",
        ),
        ('events = ["failed"]', "notify[0]", "set webhook_url, or smtp_host"),
        (
            'webhook_url = "https://h.example"\nmail_to = ["a@b.example"]\nevents = ["failed"]',
            "notify[0]",
            "mail_to need smtp_host",
        ),
        (
            'smtp_host = "smtp.example"\nmail_from = "a@b.example"\nevents = ["failed"]',
            "notify[0]",
            "smtp_host needs mail_from and mail_to",
        ),
        (
            'smtp_host = "smtp.example"\nmail_from = "a@b.example"\nmail_to = ["x y@z"]\n'
            'events = ["failed"]',
            "notify[0].mail_to",
            "not one: x y@z",
        ),
        (
            'smtp_host = "smtp.example"\nmail_from = "a@b.example"\nmail_to = ["c@d.example"]\n'
            'smtp_tls = "none"\nsmtp_username = "u"\nsmtp_password = "longpassword"\n'
            'events = ["failed"]',
            "notify[0]",
            "smtp_password with smtp_tls = 'none' would cross the network in clear",
        ),
    ],
)
def test_notify_mistakes_name_the_key_and_the_fix(
    tmp_path: Path, table: str, key: str, message: str
) -> None:
    text = problems(tmp_path, "[[notify]]\n" + table + "\n")
    line = next(line for line in text.splitlines() if line.strip().startswith(key + ":"))
    assert message in line, text


def test_notify_names_are_unique(tmp_path: Path) -> None:
    table = '[[notify]]\nname = "chat"\nwebhook_url = "https://h.example"\nevents = ["failed"]\n'
    assert "notify names must be unique; repeated: chat" in problems(tmp_path, table * 2)


def test_a_refused_webhook_url_is_never_shown(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        '[[notify]]\nwebhook_url = "${HOOK}"\nevents = ["failed"]\n',
        {"HOOK": f"hooks.example.com/{MARKER}"},
    )
    assert "notify[0].webhook_url: expected an http(s) URL" in text
    assert "(set from ${HOOK}); the value is a secret and is not shown" in text
    assert MARKER not in text
