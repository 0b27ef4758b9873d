"""``[[notify]]``: who hears about what the daemon did, by webhook or by mail, how often.

Each table is one notify target: a webhook (a JSON POST that Slack and Teams take as
is), an SMTP mailbox list, or both, the events it wants, and a rate limit so that a
broken source does not send a thousand mails. A webhook URL is a secret: Slack's and
Teams' incoming-webhook URLs are the credential themselves, so it is a ``SecretStr``
like the SMTP password, and a log line names only its host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from dsmsyncd.config.fields import Duration, Section, loadable_ca_bundle

NotifyEvent = Literal["quarantined", "failed", "retrying", "recovered", "staged", "published"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = get_args(NotifyEvent)
SmtpTls = Literal["starttls", "tls", "none"]
DEFAULT_SMTP_PORTS: dict[SmtpTls, int] = {"starttls": 587, "tls": 465, "none": 25}

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9.-]+$")
_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]+$")
_EMAIL_KEYS = ("smtp_port", "smtp_username", "smtp_password", "ca_bundle", "mail_from")


class NotifyConfig(Section):
    # Names the target in logs and /status; default "notify[N]" by position.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    events: list[NotifyEvent] = Field(min_length=1)
    # ``retrying`` fires once a job has been failing (and retrying) for this long.
    retrying_after: Duration = Field(default=1800.0, ge=0)
    # Messages per rolling hour; past it events are counted, then summed up in one
    # "N more events suppressed" message when the hour lets one through again.
    max_per_hour: int = Field(default=20, ge=1, le=3600)
    # One delivery attempt's whole time budget, how many attempts, the first back-off.
    timeout: Duration = Field(default=10.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)
    retry_delay: Duration = Field(default=2.0, gt=0)
    # -- webhook -----------------------------------------------------------------------
    webhook_url: SecretStr | None = None
    # -- email ---------------------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_tls: SmtpTls = "starttls"
    smtp_username: SecretStr | None = None
    smtp_password: SecretStr | None = None
    ca_bundle: Path | None = None
    mail_from: str | None = None
    mail_to: list[str] = Field(default_factory=list)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            url = value.get_secret_value()
            if not re.match(r"^https?://[^/\s]+", url):
                raise ValueError("expected an http(s) URL like https://hooks.slack.com/services/…")
            if "@" in urlsplit(url).netloc:
                raise ValueError("credentials in the URL are refused; put the token in the path")
        return value

    @field_validator("smtp_host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.match(value):
            raise ValueError("expected a host name or address like smtp.example.gov")
        return value

    @field_validator("mail_from")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError("expected one address like dsmsyncd@example.gov")
        return value

    @field_validator("mail_to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if not _ADDRESS.match(address)]
        if bad:
            raise ValueError(f"expected addresses like ops@example.gov; not one: {', '.join(bad)}")
        return value

    @field_validator("events")
    @classmethod
    def _distinct(cls, value: list[NotifyEvent]) -> list[NotifyEvent]:
        repeated = sorted({e for e in value if value.count(e) > 1})
        if repeated:
            raise ValueError(f"events listed twice: {', '.join(repeated)}")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _loadable_ca(cls, value: Path | None) -> Path | None:
        return loadable_ca_bundle(value)

    @model_validator(mode="after")
    def _channels(self) -> NotifyConfig:
        if self.webhook_url is None and self.smtp_host is None:
            raise ValueError("set webhook_url, or smtp_host with mail_from and mail_to, or both")
        if self.smtp_host is None:
            stray = [k for k in _EMAIL_KEYS if getattr(self, k) is not None] + (
                ["mail_to"] if self.mail_to else []
            )
            if stray:
                raise ValueError(f"{', '.join(stray)} need smtp_host (mail is sent through it)")
            return self
        if self.mail_from is None or not self.mail_to:
            raise ValueError("smtp_host needs mail_from and mail_to (at least one address)")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password go together (set both, or neither)")
        if self.smtp_password is not None and self.smtp_tls == "none":
            raise ValueError(
                "smtp_password with smtp_tls = 'none' would cross the network in clear; "
                "use 'starttls' or 'tls'"
            )
        return self

    @property
    def port(self) -> int:
        """The SMTP port: as set, else the usual one for ``smtp_tls`` (587, 465, 25)."""
        return self.smtp_port or DEFAULT_SMTP_PORTS[self.smtp_tls]

    def label(self, index: int) -> str:
        """How logs and /status name this target: its name, else its place in the file."""
        return self.name or f"notify[{index}]"
