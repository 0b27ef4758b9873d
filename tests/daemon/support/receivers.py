"""Notification receivers on loopback: a webhook (aiohttp) and an SMTP server (aiosmtpd).

Both run in the test's event loop and record what arrives byte for byte, so a test can
assert on the exact bodies and search them for secrets. Tests wait on arrivals as
events (``until``), never by polling. A webhook receiver may be told to hang: it takes
each request and answers none until ``release`` (a receiver that never answers, as
far as the daemon can tell).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class Arrivals:
    """What arrived, in order, and a way to wait for enough of it."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self._changed = asyncio.Event()

    def add(self, body: bytes) -> None:
        self.raw.append(body)
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, done: Callable[[list[bytes]], bool], within: float = 30.0) -> None:
        try:
            async with asyncio.timeout(within):
                while not done(self.raw):
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"not reached within {within:g}s; got {self.raw}") from None


@dataclass
class WebhookReceiver:
    url: str
    arrivals: Arrivals
    hang: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    answered: int = 0

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.arrivals.raw]


@contextlib.asynccontextmanager
async def webhook_receiver(*, hang: bool = False) -> AsyncIterator[WebhookReceiver]:
    """An HTTP server on a free loopback port taking POSTs on any path."""
    receiver = WebhookReceiver("", Arrivals(), hang=hang)

    async def take(request: web.Request) -> web.Response:
        receiver.arrivals.add(await request.read())
        if receiver.hang:
            await receiver.release.wait()
        receiver.answered += 1
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", take)
    runner = web.AppRunner(app, access_log=None)  # the test's logs are the daemon's
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        receiver.release.set()
        await runner.cleanup()


@dataclass
class SmtpReceiver:
    port: int
    ca_path: Path
    arrivals: Arrivals
    logins: list[tuple[str, str]] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def mails(self) -> list[Message]:
        return [message_from_bytes(raw) for raw in self.arrivals.raw]


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.receiver.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.receiver.arrivals.add(content)
        return "250 OK"


@contextlib.asynccontextmanager
async def smtp_receiver(
    root: Path, credentials: tuple[str, str] | None, *, tls: str = "starttls"
) -> AsyncIterator[SmtpReceiver]:
    """An SMTP server on a free loopback port that records each accepted mail.

    ``tls``: "starttls" requires STARTTLS, "tls" speaks TLS from the first byte, both
    with a certificate for 127.0.0.1 from a fresh trustme CA (its PEM: ``ca_path``);
    "none" is plain text. With ``credentials``, AUTH is required, after STARTTLS (aiosmtpd
    offers AUTH over STARTTLS only, not under implicit TLS).
    """
    ca = trustme.CA()
    ca_path = root / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    receiver = SmtpReceiver(0, ca_path, Arrivals())

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = (data.login.decode(), data.password.decode())
        receiver.logins.append(login)
        # handled=False: aiosmtpd answers a refusal (535) itself.
        return AuthResult(success=login == credentials, handled=False)

    handler = _Handler(receiver)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            tls_context=context if tls == "starttls" else None,
            require_starttls=tls == "starttls",
            auth_required=credentials is not None,
            authenticator=authenticate,
            hostname="127.0.0.1",
        ),
        "127.0.0.1",
        0,
        ssl=context if tls == "tls" else None,
    )
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()
