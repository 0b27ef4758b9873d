"""An apply whose rows are committed is never reported failed: publishing is retried.

A client told "failure" after the rows went in would drop the file again and append
every row a second time; the server instead runs the apply again (it finds its rows in
the apply log and only publishes) until the metadata is published.
"""

from __future__ import annotations

import aiohttp
import pytest

from dsmsyncd.server import pause_points
from dsmsyncd.server.jobs import apply
from tests.server.http.flows import call, publish

CSV = b"id,name\n1,ann\n2,bob\n3,cy\n"


async def test_publishing_that_fails_after_the_rows_is_retried_not_failed(
    api: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pause_points.FAIL_ONCE_ENV, pause_points.APPLY_PUBLISH)
    monkeypatch.setattr(apply, "PUBLISH_RETRY_S", 0.0)  # the poll below counts requests
    ff, job = await publish(api, CSV)

    assert job["status"] == "successful", job
    retried = [entry for entry in job["log"] if entry["stage"] == "retrying"]
    assert len(retried) == 1, job["log"]
    assert "the rows are applied but publishing failed" in retried[0]["details"]["message"]
    assert "test failure injected at apply-publish" in retried[0]["details"]["message"]
    status, rows = await call(api, "GET", f"/resource/{ff}.json")
    assert status == 200, rows
    assert sorted(row["name"] for row in rows) == ["ann", "bob", "cy"]
