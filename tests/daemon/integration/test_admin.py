"""The admin HTTP app on a real loopback port, over a real SQLite state store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dsmsyncd import __version__
from dsmsyncd.daemon.status import SimpleStatus
from dsmsyncd.observe.admin import OK, AdminServer, create_admin_app, start_admin
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.state import JobState, SqliteStateStore
from tests.daemon.support.fake_clock import FakeClock
from tests.daemon.support.jobs import add_job

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class Target:
    """The DSMAPI as the readiness probe sees it: up, or failing with a message."""

    def __init__(self) -> None:
        self.down: str | None = None
        self.probes = 0

    async def probe(self) -> None:
        self.probes += 1
        if self.down is not None:
            raise ConnectionError(self.down)


class Daemon:
    """The bits of daemon state SimpleStatus reads through its callables."""

    def __init__(self) -> None:
        self.draining = False


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    async with SqliteStateStore(tmp_path / "state.db") as opened:
        uploading = await add_job(
            opened,
            "<script>alert(1)</script>.csv",
            identity="file:/srv/drop/<script>.csv:10:1",
            size=10,
            mtime=T0,
            dataset="abcd-1234",
            mapping_index=0,
        )
        await add_job(  # queued
            opened,
            "permits/b.csv",
            identity="file:/srv/drop/permits/b.csv:10:2",
            size=10,
            mtime=T0.replace(minute=5),
            dataset="abcd-1234",
            mapping_index=0,
        )
        rejected = await add_job(
            opened,
            "inspections/bad.csv",
            identity="file:/srv/drop/inspections/bad.csv:5:1",
            size=5,
            mtime=T0,
            dataset="wxyz-9876",
            mapping_index=1,
        )
        await opened.transition(
            uploading.id, JobState.UPLOADING, expect=JobState.DISCOVERED, revision_seq=3
        )
        await opened.transition(
            rejected.id,
            JobState.QUARANTINED,
            expect=JobState.DISCOVERED,
            error="<b>12 row errors</b> at https://ops:hunter2@data.example.gov/api",
            error_count=12,
        )
        yield opened


@pytest.fixture
def target() -> Target:
    return Target()


@pytest.fixture
def daemon() -> Daemon:
    return Daemon()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def server(
    store: SqliteStateStore, target: Target, clock: FakeClock, daemon: Daemon, metrics: Metrics
) -> AsyncIterator[AdminServer]:
    status = SimpleStatus(
        store,
        draining=lambda: daemon.draining,
        probe_target=target.probe,
        datasets=lambda: ["abcd-1234", "idle-0000"],
        sources=lambda: [{"name": "drop", "kind": "folder", "path": "/srv/drop"}],
        started_at=T0,
        target_ttl=30,
        monotonic=clock,
    )
    async with await start_admin(create_admin_app(status, metrics), "127.0.0.1", 0) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _get_json(http: aiohttp.ClientSession, url: str, expected: int = 200) -> dict[str, Any]:
    async with http.get(url) as response:
        assert response.status == expected, await response.text()
        assert response.content_type == "application/json"
        body: dict[str, Any] = await response.json()
        return body


async def test_start_admin_on_port_zero_reports_the_bound_port(server: AdminServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert not server.url.endswith(":0")


async def test_metrics_serves_prometheus_exposition(
    server: AdminServer, http: aiohttp.ClientSession, metrics: Metrics
) -> None:
    metrics.jobs_in_flight.set(2)

    async with http.get(f"{server.url}/metrics") as response:
        body = await response.text()
        content_type = response.headers["Content-Type"]

    assert response.status == 200
    assert content_type.startswith("text/plain; version=")
    assert "dsmsyncd_jobs_in_flight 2.0" in body


async def test_healthz_answers_ok(server: AdminServer, http: aiohttp.ClientSession) -> None:
    assert await _get_json(http, f"{server.url}/healthz") == {"status": "ok"}


async def test_readyz_is_ready_when_every_check_passes(
    server: AdminServer, http: aiohttp.ClientSession, metrics: Metrics
) -> None:
    body = await _get_json(http, f"{server.url}/readyz")

    assert body == {
        "status": "ready",
        "checks": {"state_store": OK, "target": OK, "draining": OK},
    }
    assert metrics.up._value.get() == 1


async def test_readyz_is_503_when_target_probe_fails(
    server: AdminServer,
    http: aiohttp.ClientSession,
    target: Target,
    clock: FakeClock,
    metrics: Metrics,
) -> None:
    await _get_json(http, f"{server.url}/readyz")
    target.down = "connection refused by https://ops:hunter2@data.example.gov"
    clock.now += 30

    body = await _get_json(http, f"{server.url}/readyz", expected=503)

    assert body["status"] == "not ready"
    assert body["failing"] == {
        "target": "ConnectionError: connection refused by https://********@data.example.gov"
    }
    assert metrics.up._value.get() == 0


async def test_readyz_reuses_target_result_within_ttl(
    server: AdminServer, http: aiohttp.ClientSession, target: Target, clock: FakeClock
) -> None:
    await _get_json(http, f"{server.url}/readyz")
    target.down = "connection refused"
    clock.now += 29

    await _get_json(http, f"{server.url}/readyz")

    assert target.probes == 1


async def test_readyz_is_503_while_draining(
    server: AdminServer, http: aiohttp.ClientSession, daemon: Daemon
) -> None:
    daemon.draining = True

    body = await _get_json(http, f"{server.url}/readyz", expected=503)

    assert list(body["failing"]) == ["draining"]


async def test_readyz_is_503_when_state_store_is_closed(
    server: AdminServer, http: aiohttp.ClientSession, store: SqliteStateStore
) -> None:
    await store.close()

    body = await _get_json(http, f"{server.url}/readyz", expected=503)

    assert list(body["failing"]) == ["state_store"]
    assert "not open" in body["failing"]["state_store"]


async def test_status_json_lists_datasets_with_current_and_recent_jobs(
    server: AdminServer, http: aiohttp.ClientSession
) -> None:
    body = await _get_json(http, f"{server.url}/status")

    assert body["version"] == __version__
    assert body["started_at"] == T0.isoformat()
    assert body["draining"] is False
    assert body["counts"]["uploading"] == 1
    assert body["counts"]["discovered"] == 1
    assert body["counts"]["quarantined"] == 1
    assert body["sources"] == [{"name": "drop", "kind": "folder", "path": "/srv/drop"}]
    datasets = {ds["dataset"]: ds for ds in body["datasets"]}
    assert list(datasets) == ["abcd-1234", "idle-0000", "wxyz-9876"]
    busy = datasets["abcd-1234"]
    assert busy["current"]["file"] == "<script>alert(1)</script>.csv"
    assert busy["current"]["state"] == "uploading"
    assert busy["current"]["revision"] == 3
    assert busy["queued"] == 1
    assert [job["file"] for job in busy["recent"]] == [
        "<script>alert(1)</script>.csv",
        "permits/b.csv",
    ]
    assert datasets["idle-0000"] == {
        "dataset": "idle-0000",
        "current": None,
        "queued": 0,
        "held": 0,
        "staged": [],
        "recent": [],
    }
    [rejected] = datasets["wxyz-9876"]["recent"]
    assert rejected["state"] == "quarantined"
    assert rejected["error_count"] == 12


async def test_status_masks_credentials_in_job_errors(
    server: AdminServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/status") as response:
        text = await response.text()
    async with http.get(f"{server.url}/status?format=html") as response:
        page = await response.text()

    assert "hunter2" not in text
    assert "https://********@data.example.gov/api" in text
    assert "hunter2" not in page


async def test_status_html_escapes_file_names_and_errors(
    server: AdminServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/status?format=html") as response:
        page = await response.text()

    assert response.status == 200
    assert response.content_type == "text/html"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in page
    assert "<script>" not in page
    assert "&lt;b&gt;12 row errors&lt;/b&gt;" in page
    assert "script-src" not in response.headers["Content-Security-Policy"]


async def test_status_serves_html_when_accept_prefers_it(
    server: AdminServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/status", headers={"Accept": BROWSER_ACCEPT}) as response:
        page = await response.text()

    assert response.content_type == "text/html"
    assert page.startswith("<!doctype html>")
    assert "abcd-1234" in page


async def test_status_serves_json_to_clients_accepting_anything(
    server: AdminServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/status", headers={"Accept": "*/*"}) as response:
        assert response.content_type == "application/json"


async def test_admin_server_stop_closes_the_port_and_is_idempotent(
    server: AdminServer, http: aiohttp.ClientSession
) -> None:
    await server.stop()
    await server.stop()

    with pytest.raises(aiohttp.ClientConnectionError):
        await http.get(f"{server.url}/healthz")


async def test_simple_status_hooks_add_checks_and_snapshot_keys(
    store: SqliteStateStore, http: aiohttp.ClientSession
) -> None:
    async def problems() -> dict[str, str]:
        return {"scheduler": "lane abcd-1234 stalled"}

    async def extra() -> dict[str, Any]:
        return {"target": {"url": "https://ops:hunter2@data.example.gov", "ok": True}}

    status = SimpleStatus(store, ready_checks=problems, extra=extra)
    async with await start_admin(create_admin_app(status, Metrics()), "127.0.0.1", 0) as server:
        ready = await _get_json(http, f"{server.url}/readyz", expected=503)
        snapshot = await _get_json(http, f"{server.url}/status")

    assert ready["failing"] == {"scheduler": "lane abcd-1234 stalled"}
    assert snapshot["target"] == {"url": "https://********@data.example.gov", "ok": True}
    assert "datasets" in snapshot
