"""The mail channel against a real SMTP server on loopback (aiosmtpd): implicit TLS,
STARTTLS and plain text deliver; a refused login or an untrusted certificate fails
the attempt with a message fit for logs, without the password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.config.notify import NotifyConfig
from dsmsyncd.notify.channels import DeliveryFailed, Email
from dsmsyncd.notify.message import Message, Scrubber
from tests.daemon.support.receivers import SmtpReceiver, smtp_receiver

LOGIN = ("mailer", "smtp-secret-77c1")
MESSAGE = Message("failed", "[dsmsyncd] failed: a.csv", "a.csv failed", {"event": "failed"})


def channel(smtp: SmtpReceiver, tls: str, **keys: Any) -> Email:
    config = NotifyConfig.model_validate(
        {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_tls": tls,
            "mail_from": "dsmsyncd@example.gov",
            "mail_to": ["ops@example.gov"],
            "events": ["failed"],
            **keys,
        }
    )
    return Email(config, 10.0, Scrubber([LOGIN[1]]))


@pytest.mark.parametrize(
    ("tls", "login"),
    [("tls", None), ("starttls", LOGIN), ("none", None)],
    ids=["implicit-tls", "starttls-auth", "plain"],
)
async def test_mail_is_delivered_over_each_kind_of_connection(
    tmp_path: Path, tls: str, login: tuple[str, str] | None
) -> None:
    async with smtp_receiver(tmp_path, login, tls=tls) as smtp:
        auth = {"smtp_username": LOGIN[0], "smtp_password": LOGIN[1]} if login else {}
        ca = {"ca_bundle": str(smtp.ca_path)} if tls != "none" else {}
        await channel(smtp, tls, **auth, **ca).send(MESSAGE)
    (mail,) = smtp.mails
    assert mail["Subject"] == "[dsmsyncd] failed: a.csv"
    assert smtp.logins == ([LOGIN] if login else [])


async def test_a_refused_login_fails_the_attempt_without_the_password(tmp_path: Path) -> None:
    async with smtp_receiver(tmp_path, ("mailer", "another-password")) as smtp:
        email = channel(
            smtp,
            "starttls",
            smtp_username=LOGIN[0],
            smtp_password=LOGIN[1],
            ca_bundle=str(smtp.ca_path),
        )
        with pytest.raises(DeliveryFailed) as failed:
            await email.send(MESSAGE)
    assert str(failed.value).startswith(f"smtp 127.0.0.1:{smtp.port}: SMTPAuthenticationError")
    assert LOGIN[1] not in str(failed.value)
    assert smtp.mails == []


async def test_an_untrusted_certificate_fails_the_attempt(tmp_path: Path) -> None:
    async with smtp_receiver(tmp_path, None, tls="tls") as smtp:
        with pytest.raises(DeliveryFailed) as failed:
            await channel(smtp, "tls").send(MESSAGE)  # the system CAs do not know it
    assert "CERTIFICATE_VERIFY_FAILED" in str(failed.value), failed.value
    assert smtp.mails == []


async def test_a_file_name_with_a_line_break_makes_a_one_line_subject(tmp_path: Path) -> None:
    odd = Message("failed", "[dsmsyncd] failed: a\nb.csv", "a\nb.csv failed", {})
    async with smtp_receiver(tmp_path, None, tls="none") as smtp:
        await channel(smtp, "none").send(odd)
    (mail,) = smtp.mails
    assert mail["Subject"] == "[dsmsyncd] failed: a b.csv"
