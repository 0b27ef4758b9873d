"""The cluster part of ``/status`` and ``dsmsyncd status``: replicas and the lanes they
hold, as any replica sees them, in JSON and on the page (escaped)."""

from __future__ import annotations

from datetime import UTC, datetime

from dsmsyncd.daemon.status import cluster_view
from dsmsyncd.observe.admin import render_status_html
from dsmsyncd.state import ReplicaIdentity, SqliteStateStore
from tests.daemon.support.jobs import add_job

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_cluster_view_names_the_replica_the_lane_and_its_file() -> None:
    replica = ReplicaIdentity("node-<1>", lease_timeout_s=30)
    async with SqliteStateStore(":memory:", replica=replica) as store:
        job = await add_job(store, "permits/a.csv", identity="a", mtime=T0)
        assert await store.claim_lane(job.dataset, datetime.now(UTC)) is not None
        assert await store.claim_next(job.dataset, datetime.now(UTC)) is not None
        view = await cluster_view(store, lease_timeout_s=30)
    [me] = view["replicas"]
    assert (me["name"], me["alive"]) == ("node-<1>", True)
    [lane] = view["lanes"]
    assert (lane["dataset"], lane["replica"], lane["job_id"]) == (job.dataset, "node-<1>", job.id)
    assert (lane["file"], lane["state"], lane["expired"]) == (
        "drop:permits/a.csv",
        "discovered",
        False,
    )
    assert 0 < lane["expires_in_s"] <= 30

    page = render_status_html({"replica": "node-<1>", "cluster": view})
    assert "<h2>Cluster</h2>" in page
    assert "node-&lt;1&gt;" in page
    assert "node-<1>" not in page
    assert "drop:permits/a.csv" in page


def test_a_status_without_a_cluster_shows_no_cluster_section() -> None:
    assert "Cluster" not in render_status_html({})
