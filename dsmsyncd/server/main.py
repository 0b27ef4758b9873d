"""Starting and stopping the local server: ``dsmsyncd serve`` and the test fixtures.

Lifecycle, in order: open the stores → make sure the users exist → bind → print the
readiness line → serve until SIGTERM/SIGINT → stop accepting → let requests in flight
finish → drain background work (parsing, transforms, apply jobs, cleanup) → close the
stores in reverse order.

Shutdown is bounded by ``shutdown_timeout`` (requests and background work share the
one deadline): what is still running then is cancelled, and its DuckDB statement
interrupted, which loses nothing, since unfinished parses and transforms are resumed
at the next start (``jobs/resume_parse.py``), and so is a cut apply
(``jobs/resume_apply.py``). A statement that has not returned ``INTERRUPT_GRACE``
seconds after its interrupt is not waited for. A second SIGTERM/SIGINT while stopping
exits at once, without closing anything (SQLite and DuckDB recover from their journals
at the next start).

The readiness line ``dsmsyncd serve: listening on {url}`` is printed once, only after
the socket is bound (the port may be 0, so the line is the only way to learn it): the
tests and the demo wait for that line instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from dsmsyncd.server.app import create_app
from dsmsyncd.server.catalog import users
from dsmsyncd.server.catalog.metastore import Kind, MetaStore
from dsmsyncd.server.http.protocol_errors import (
    MAX_FIELD_BYTES,
    MAX_HEADERS,
    MAX_LINE_BYTES,
    JsonErrorRunner,
)
from dsmsyncd.server.state import (
    DEFAULT_ANSWER_WAIT_S,
    DEFAULT_KEEP_DISCARDED_SECONDS,
    DEFAULT_URL_FETCH_MAX_BYTES,
    DEFAULT_URL_FETCH_TIMEOUT,
    ServerState,
)
from dsmsyncd.server.storage.rowstore import DEFAULT_MEMORY_LIMIT, DEFAULT_QUERY_TIMEOUT, RowStore

STARTUP_FAILURE = 3
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
DEFAULT_IDLE_TIMEOUT = 60.0
# After the shutdown timeout, how long interrupted DuckDB statements get to return.
INTERRUPT_GRACE = 5.0

logger = logging.getLogger("dsmsyncd.server.main")


@dataclass
class ServeOptions:
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    data_dir: Path = Path("dsmsyncd-data")
    users: list[tuple[str, str]] = field(default_factory=list)
    tokens: list[tuple[str, str]] = field(default_factory=list)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_self_signed: bool = False
    # Seconds that requests in flight and background work get at shutdown.
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    # Largest upload (whole body, or chunks up to the commit) in bytes; None = no limit.
    max_upload_bytes: int | None = None
    # Seconds of DuckDB time a read (SODA query, page, export) may take; None = no limit.
    query_timeout: float | None = DEFAULT_QUERY_TIMEOUT
    # DuckDB's memory limit (all queries together); a read that needs more gets a 413.
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    # Seconds a connection may sit idle, before its first request or between requests,
    # or take to send a request's line and headers, before it is closed.
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    # ``url`` sources: the largest file fetched, and seconds for the whole fetch.
    url_fetch_max_bytes: int = DEFAULT_URL_FETCH_MAX_BYTES
    url_fetch_timeout: float = DEFAULT_URL_FETCH_TIMEOUT
    # Seconds a discarded revision stays restorable (its files kept); 0 = not at all.
    keep_discarded_seconds: float = DEFAULT_KEEP_DISCARDED_SECONDS
    # Seconds a commit or an apply waits for its background work before answering.
    answer_wait_s: float = DEFAULT_ANSWER_WAIT_S


def _provision_users(meta: MetaStore, options: ServeOptions) -> None:
    for name, password in options.users:
        users.ensure_user(meta, name, password)
    for name, token in options.tokens:
        users.add_token(meta, name, token)
    if not meta.all(Kind.USER):
        password = secrets.token_urlsafe(18)
        users.ensure_user(meta, "admin", password)
        # Printed once, on first start only, so the operator can sign in; never logged.
        print(
            f"dsmsyncd serve: created user 'admin' with password '{password}'",
            file=sys.stderr,
            flush=True,
        )


def _tls_context(options: ServeOptions) -> tuple[ssl.SSLContext | None, Path | None]:
    if options.tls_self_signed:
        import trustme

        ca = trustme.CA()
        hosts = sorted({"localhost", "127.0.0.1", "::1", options.listen_host} - {"", "0.0.0.0"})
        cert = ca.issue_cert(*hosts)
        tls_dir = options.data_dir / "tls"
        tls_dir.mkdir(parents=True, exist_ok=True)
        ca_path = tls_dir / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        return context, ca_path
    if options.tls_cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(options.tls_cert, options.tls_key)
        return context, None
    return None, None


def _format_url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _open_state(options: ServeOptions) -> ServerState:
    options.data_dir.mkdir(parents=True, exist_ok=True)
    meta = MetaStore(options.data_dir / "meta.sqlite3")
    rows = RowStore(
        options.data_dir / "rows.duckdb",
        memory_limit=options.memory_limit,
        query_timeout=options.query_timeout,
    )
    return ServerState(
        data_dir=options.data_dir,
        meta=meta,
        rows=rows,
        max_upload_bytes=options.max_upload_bytes,
        url_fetch_max_bytes=options.url_fetch_max_bytes,
        url_fetch_timeout=options.url_fetch_timeout,
        keep_discarded_seconds=options.keep_discarded_seconds,
        answer_wait_s=options.answer_wait_s,
    )


def _close_stores(state: ServerState) -> None:
    try:
        state.rows.close()
    except Exception:
        # Statements are interrupted before this; should one still run, DuckDB
        # refuses to close under it and closes the file itself when it ends.
        logger.warning("row store still busy at shutdown; it closes when idle", exc_info=True)
    state.meta.close()


@dataclass
class RunningServer:
    """A bound server: its base URL, the CA to trust (self-signed TLS), and ``stop``."""

    url: str
    state: ServerState
    ca_path: Path | None
    _runner: web.AppRunner
    _shutdown_timeout: float
    # Set by ``stop`` when a DuckDB statement ignored its interrupt: the process should
    # exit without waiting for its worker thread (DuckDB recovers at the next start).
    abandoned: bool = False

    async def stop(self) -> None:
        """Stop accepting, finish requests, drain background work, close the stores."""
        deadline = asyncio.get_running_loop().time() + self._shutdown_timeout
        # Requests first: a commit in flight still spawns its parse, which the drain
        # below then covers. aiohttp cancels handlers left after shutdown_timeout.
        await self._runner.cleanup()
        try:
            async with asyncio.timeout_at(deadline):
                await self.state.drain()
        except TimeoutError:
            print(
                f"dsmsyncd serve: background work still running after "
                f"{self._shutdown_timeout:g}s; cancelling it (it resumes at the next start)",
                file=sys.stderr,
                flush=True,
            )
            await self.state.cancel_background()
        # Cancelled work interrupts its own statement; anything left is interrupted now.
        if not await self.state.rows.interrupt(INTERRUPT_GRACE):
            self.abandoned = True
            print(
                f"dsmsyncd serve: DuckDB statements still running {INTERRUPT_GRACE:g}s after "
                "being interrupted; not waiting for them",
                file=sys.stderr,
                flush=True,
            )
            self.state.meta.close()
            return
        _close_stores(self.state)


async def start_server(options: ServeOptions) -> RunningServer:
    """Open the stores, bind, and return once the socket accepts connections."""
    state = _open_state(options)
    try:
        _provision_users(state.meta, options)
        context, ca_path = _tls_context(options)
        runner = JsonErrorRunner(
            create_app(state),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=options.shutdown_timeout,
            # aiohttp's keep-alive timer also runs from the moment a connection opens
            # until its request is complete, so it bounds idle and slow-header clients.
            keepalive_timeout=options.idle_timeout,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS,
        )
        await runner.setup()
        site = web.TCPSite(runner, options.listen_host, options.listen_port, ssl_context=context)
        await site.start()
    except BaseException:
        _close_stores(state)
        raise
    bound = runner.addresses[0]
    url = _format_url("https" if context else "http", options.listen_host, int(bound[1]))
    return RunningServer(url, state, ca_path, runner, options.shutdown_timeout)


async def _serve(options: ServeOptions) -> int:
    try:
        server = await start_server(options)
    except (OSError, ssl.SSLError, KeyError) as exc:
        print(f"dsmsyncd serve: cannot start: {exc}", file=sys.stderr, flush=True)
        return STARTUP_FAILURE
    if server.ca_path is not None:
        print(f"dsmsyncd serve: TLS CA certificate at {server.ca_path}", file=sys.stderr)
    print(f"dsmsyncd serve: listening on {server.url}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if not stopping.is_set():
            stopping.set()
            return
        # The operator asked twice: do not wait for anything, not even the stores.
        print("dsmsyncd serve: second signal, exiting at once", file=sys.stderr, flush=True)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, int(sig))
    try:
        await stopping.wait()
        print(
            f"dsmsyncd serve: stopping (up to {options.shutdown_timeout:g}s); "
            "send the signal again to exit at once",
            file=sys.stderr,
            flush=True,
        )
    finally:
        try:
            await server.stop()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    print("dsmsyncd serve: stopped", file=sys.stderr, flush=True)
    if server.abandoned:
        os._exit(0)  # joining the stuck worker thread at exit would wait for it
    return 0


def run_server(options: ServeOptions) -> int:
    """Serve until SIGTERM or SIGINT; the process exit code."""
    return asyncio.run(_serve(options))
