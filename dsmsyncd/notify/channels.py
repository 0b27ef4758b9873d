"""How a message leaves: a webhook POST (aiohttp) or a mail through SMTP (aiosmtplib).

Each ``send`` is one attempt within its timeout; any way it can fail (refused, timed
out, a non-2xx answer, an SMTP refusal) becomes ``DeliveryFailed`` with a message that
is safe to log: it names the webhook's host, never its URL (the URL is the credential),
and passes through the target's scrubber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib

from dsmsyncd.config.notify import NotifyConfig
from dsmsyncd.notify.message import Message, Scrubber, mail_body

logger = logging.getLogger("dsmsyncd.notify.channels")

ChannelName = Literal["webhook", "email"]


class DeliveryFailed(Exception):
    """One attempt did not deliver; the message is fit for logs and /status.

    ``retryable`` is False where trying again cannot help before the configuration
    changes (credentials or a certificate refused, a 5xx SMTP answer): what
    ``check-config`` reports as a problem rather than as a check it could not make.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Channel(Protocol):
    name: ChannelName

    async def send(self, message: Message) -> None: ...


class Webhook:
    name: ChannelName = "webhook"

    def __init__(
        self, url: str, session: aiohttp.ClientSession, timeout_s: float, scrub: Scrubber
    ) -> None:
        self._url = url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.host = urlsplit(url).netloc
        path = urlsplit(url).path
        # The path of a Slack or Teams webhook URL is its token: scrubbed wherever quoted.
        self._scrub = Scrubber([url, path]) if len(path) > 1 else Scrubber([url])
        self._scrub_config = scrub

    async def send(self, message: Message) -> None:
        try:
            async with self._session.post(
                self._url, json=message.fields, timeout=self._timeout, allow_redirects=False
            ) as response:
                if response.status >= 300:
                    body = (await response.text())[:200]
                    raise DeliveryFailed(
                        self._safe(f"webhook {self.host} answered {response.status}: {body}")
                    )
        except TimeoutError:
            raise DeliveryFailed(f"webhook {self.host} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise DeliveryFailed(self._safe(f"webhook {self.host}: {_describe(exc)}")) from None

    def _safe(self, text: str) -> str:
        return self._scrub_config(self._scrub(text))


class Email:
    name: ChannelName = "email"

    def __init__(self, config: NotifyConfig, timeout_s: float, scrub: Scrubber) -> None:
        assert config.smtp_host is not None
        self._config = config
        self._timeout_s = timeout_s
        self._scrub = scrub
        self.host = f"{config.smtp_host}:{config.port}"
        self._tls_context: ssl.SSLContext | None = None
        if config.smtp_tls != "none":
            self._tls_context = ssl.create_default_context(
                cafile=str(config.ca_bundle) if config.ca_bundle else None
            )

    async def send(self, message: Message) -> None:
        config = self._config
        mail = EmailMessage()
        mail["From"] = config.mail_from
        mail["To"] = ", ".join(config.mail_to)
        # A file name may hold a line break, which no mail header may.
        mail["Subject"] = " ".join(message.subject.split())
        mail["Message-ID"] = make_msgid(domain="dsmsyncd")
        mail.set_content(mail_body(message))
        async with self._failures():
            await self._send(mail)

    async def probe(self) -> None:
        """Connect, secure and log in as a delivery would, then quit: no mail is sent."""
        config = self._config
        username, password = config.smtp_username, config.smtp_password
        client = aiosmtplib.SMTP(**self._connection())
        async with self._failures():
            await client.connect()
            if username is not None and password is not None:
                await client.login(username.get_secret_value(), password.get_secret_value())
            await client.quit()

    @contextlib.asynccontextmanager
    async def _failures(self) -> AsyncIterator[None]:
        """The block within the attempt's time budget (aiosmtplib's is per command), its
        failures as ``DeliveryFailed``."""
        try:
            async with asyncio.timeout(self._timeout_s):
                yield
        except TimeoutError:
            raise DeliveryFailed(f"smtp {self.host} did not answer in time") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            said = self._scrub(f"smtp {self.host}: {_describe(exc)}")
            raise DeliveryFailed(said, retryable=_may_heal(exc)) from None

    def _connection(self) -> dict[str, Any]:
        config = self._config
        return {
            "hostname": config.smtp_host,
            "port": config.port,
            "use_tls": config.smtp_tls == "tls",
            "start_tls": config.smtp_tls == "starttls",
            "tls_context": self._tls_context,
            "timeout": self._timeout_s,
        }

    async def _send(self, mail: EmailMessage) -> None:
        username, password = self._config.smtp_username, self._config.smtp_password
        await aiosmtplib.send(
            mail,
            username=username.get_secret_value() if username else None,
            password=password.get_secret_value() if password else None,
            **self._connection(),
        )


def _may_heal(exc: BaseException) -> bool:
    """False for a refusal that lasts until the configuration changes."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | ssl.SSLCertVerificationError):
        return False
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # aiosmtplib wraps the TLS handshake's
        return False
    code = getattr(exc, "code", None)
    return not (isinstance(code, int) and 500 <= code < 600)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
