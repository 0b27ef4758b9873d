"""End-to-end fixtures: the real local server, real daemon configs, real folders.

The server runs in-process (``start_server`` returns once its socket accepts) and
everything the tests check is read back over HTTP with a plain aiohttp session, not
with the daemon's own client, so that one cannot hide the other's mistake. The daemon
runs either in-process (``running_daemon``: finished jobs arrive through its listener)
or as a ``dsmsyncd run`` subprocess (``DaemonProcess``: readiness is its "started" log
line, progress is read from its SQLite state store). Every wait is ``wait_until``: a
real check, repeated, bounded by ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from dsmsyncd.dsmapi import Credentials, DsmapiClient
from dsmsyncd.pipeline.upload import upload_blob
from dsmsyncd.server.main import RunningServer, ServeOptions, start_server
from dsmsyncd.state import JobState

from .inprocess import RunningDaemon as RunningDaemon
from .inprocess import running_daemon as running_daemon

ROBOT = ("robot", "robot-pw")
API = "/api/publishing/v1"
POLL_S = 0.05
DSMSYNCD = str(Path(sys.executable).with_name("dsmsyncd"))

T = TypeVar("T")


async def wait_until(
    check: Callable[[], Awaitable[T | None]], *, within: float = 30.0, what: str = "condition"
) -> T:
    """Repeat the real check ``check`` until it returns a value other than None/False.

    For state that tells no one when it changes: a daemon running as a child process
    (its log file, its SQLite file, its HTTP endpoints) and in-process objects without
    an event (a source's stability gate). Where the in-process daemon offers an event,
    wait on it instead: ``RunningDaemon.until`` (every job run) or ``Supervisor.until``.
    """
    try:
        async with asyncio.timeout(within):
            while True:
                value = await check()
                if value is not None and value is not False:
                    return value
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"timed out after {within:g}s waiting for {what}") from None


# -- the server, and reading it back over HTTP ------------------------------------------


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    running = await start_server(
        ServeOptions(
            listen_host="127.0.0.1",
            listen_port=0,
            data_dir=tmp_path / "server",
            users=[ROBOT],
            tokens=[],
            tls_cert=None,
            tls_key=None,
            tls_self_signed=False,
        )
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[DsmapiClient]:
    """The project's client, used only to set datasets up as a user would."""
    async with DsmapiClient(server.url, Credentials(username=ROBOT[0], password=ROBOT[1])) as c:
        yield c


@dataclass
class Http:
    """Plain HTTP reads of the server: SODA rows and open revisions."""

    url: str
    session: aiohttp.ClientSession

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        async with self.session.get(self.url + path, params=params) as response:
            assert response.status == 200, (path, response.status, await response.text())
            return await response.json()

    async def rows(self, fourfour: str, **params: str) -> list[dict[str, Any]]:
        rows = await self.get(f"/resource/{fourfour}.json", params)
        assert isinstance(rows, list)
        return rows

    async def count(self, fourfour: str) -> int:
        rows = await self.rows(fourfour, **{"$select": "count(*)"})
        return int(rows[0]["count"])

    async def open_revisions(self, fourfour: str) -> list[Any]:
        body = await self.get(f"{API}/revision/{fourfour}", {"open": "true"})
        assert isinstance(body, list)
        return body


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[Http]:
    token = base64.b64encode(f"{ROBOT[0]}:{ROBOT[1]}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as session:
        yield Http(server.url, session)


@dataclass(frozen=True)
class BytesBlob:
    name: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def identity(self) -> str:
        return f"bytes:{self.name}:{len(self.data)}"

    async def read_range(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        buffer[:] = await self.read_range(offset, len(buffer))


async def publish_dataset(
    client: DsmapiClient, csv: bytes | None, *, row_id: str | None = None, name: str = "Rows"
) -> str:
    """A new dataset published with ``csv`` (row id set in that first revision); its id."""
    revision = await client.create_dataset({"name": name})
    schema_id = None
    if csv is not None:
        source = await client.create_upload_source(revision, "seed.csv")
        await upload_blob(client, source, BytesBlob("seed.csv", csv))
        schema = await client.wait_for_output_schema(source)
        if row_id is not None:
            columns = [{**c, "is_primary_key": c["field_name"] == row_id} for c in schema.columns]
            schema = await client.transform(source, schema.input_schema_id, columns)
            schema = await client.wait_for_schema_completion(source, schema)
        schema_id = schema.id
    done = await client.wait_for_task_set(revision, await client.apply(revision, schema_id))
    assert done.status == "successful", done.log
    return revision.fourfour


# -- daemon configuration and folders ----------------------------------------------------


@dataclass
class Site:
    """One test's folders and daemon config file."""

    root: Path
    server_url: str
    mappings: list[dict[str, Any]] = field(default_factory=list)
    min_age: str = "100ms"
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    @property
    def config_path(self) -> Path:
        return self.root / "dsmsyncd.toml"

    def map(self, dataset: str, match: str = "*.csv", **options: Any) -> None:
        """A mapping from ``drop`` (``action = "update"`` unless told otherwise)."""
        if "import_config" not in options:
            options.setdefault("action", "update")
        self.mappings.append({"match": match, "dataset": dataset, **options})

    def write_config(self) -> Path:
        self.drop.mkdir(parents=True, exist_ok=True)
        secret = self.root / "robot.password"
        secret.write_text(ROBOT[1] + "\n", encoding="utf-8")
        limits = {"max_concurrent_jobs": 2, "drain_timeout": "20s", **self.limits}
        lines = [
            "[target]",
            f'url = "{self.server_url}"',
            f'username = "{ROBOT[0]}"',
            f'password_file = "{secret}"',
            "[state]",
            f'url = "sqlite:///{self.state_db}"',
            "[admin]",
            'listen = "127.0.0.1:0"',
            "[limits]",
            *(f"{key} = {_toml(value)}" for key, value in limits.items()),
            "[[source]]",
            'name = "drop"',
            f'url = "file://{self.drop}"',
            f'min_age = "{self.min_age}"',
            'poll_interval = "2s"',
        ]
        for mapping in self.mappings:
            options = {
                "source": "drop",
                "archive_dir": str(self.archive),
                "quarantine_dir": str(self.quarantine),
                **mapping,
            }
            lines += ["[[mapping]]", *(f"{k} = {_toml(v)}" for k, v in options.items())]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.config_path

    def drop_file(self, name: str, content: bytes, *, mtime: float | None = None) -> Path:
        """Write as ``NAME.part`` and rename, as a careful writer does."""
        target = self.drop / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(content)
        if mtime is not None:
            os.utime(partial, (mtime, mtime))
        os.replace(partial, target)
        return target

    def jobs(self) -> list[dict[str, Any]]:
        """Every job row of the state store, read-only (works while a daemon writes it)."""
        if not self.state_db.exists():
            return []
        with contextlib.closing(
            sqlite3.connect(f"file:{self.state_db}?mode=ro", uri=True, timeout=5)
        ) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute("SELECT * FROM jobs ORDER BY id")]

    def published_order(self) -> list[str]:
        """Relative paths in the order their jobs reached PUBLISHED (event order)."""
        with contextlib.closing(
            sqlite3.connect(f"file:{self.state_db}?mode=ro", uri=True, timeout=5)
        ) as conn:
            rows = conn.execute(
                "SELECT jobs.relative_path FROM job_events JOIN jobs ON jobs.id = job_id"
                " WHERE job_events.state = 'published' AND job_events.previous_state = 'applying'"
                " ORDER BY job_events.id"
            ).fetchall()
        return [str(row[0]) for row in rows]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def site(tmp_path: Path, server: RunningServer) -> Site:
    return Site(tmp_path / "site", server.url)


# -- the daemon as a process ----------------------------------------------------------------


class DaemonProcess:
    """``dsmsyncd run -c FILE`` as a child process; its logs go to a file."""

    def __init__(self, site: Site, log: Path) -> None:
        self.site = site
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(b"--- start ---\n")
            self.process = await asyncio.create_subprocess_exec(
                DSMSYNCD,
                "run",
                "-c",
                str(self.site.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        starts = self.log.read_text(encoding="utf-8").count("--- start ---")

        async def started() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"daemon exited early:\n{self.log.read_text()}")
            text = self.log.read_text(encoding="utf-8")
            return text.split("--- start ---")[starts].count(" started: ") > 0

        await wait_until(started, within=30, what="the daemon's 'started' log line")

    def admin_url(self) -> str | None:
        text = self.log.read_text(encoding="utf-8").rsplit("--- start ---", 1)[-1]
        for line in text.splitlines():
            if " started: " in line and "admin on " in line:
                return line.split("admin on ", 1)[1].split('"', 1)[0].split()[0]
        return None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def wait(self, within: float) -> int:
        assert self.process is not None
        async with asyncio.timeout(within):
            return await self.process.wait()

    async def stop(self) -> None:
        """Tear-down: SIGTERM, then SIGKILL if it does not go."""
        if self.process is None or self.process.returncode is not None:
            return
        self.terminate()
        try:
            await self.wait(30)
        except TimeoutError:
            self.kill()
            await self.process.wait()


@pytest.fixture
async def daemon_process(site: Site, tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    process = DaemonProcess(site, tmp_path / "daemon.log")
    try:
        yield process
    finally:
        await process.stop()


def job_state(site: Site, name: str) -> JobState | None:
    for row in site.jobs():
        if row["relative_path"] == name:
            return JobState(row["state"])
    return None


def big_csv(rows: int) -> bytes:
    """``id,name,score`` rows, about 30 bytes each."""
    lines = [b"id,name,score\n"]
    lines += [b"%d,name-%d-xxxxxxxxxx,%d\n" % (i, i, i % 1000) for i in range(rows)]
    return b"".join(lines)


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


async def run_cli(*args: str, within: float = 60.0, env: dict[str, str] | None = None) -> CliResult:
    """``dsmsyncd ARGS`` as a process (``env`` added to ours); this event loop keeps serving."""
    process = await asyncio.create_subprocess_exec(
        DSMSYNCD,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        async with asyncio.timeout(within):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"dsmsyncd {' '.join(args)} did not exit in {within:g}s") from None
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())
