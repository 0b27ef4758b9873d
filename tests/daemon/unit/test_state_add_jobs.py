"""``add_jobs``: a discovery pass records many files in one transaction, with the same
result per file as ``add_job`` (dedup on source and identity), on both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from dsmsyncd.state import JobState, NewJob, StateStore
from tests.daemon.support.state_backends import StoreFactory

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(state_backend: StoreFactory) -> AsyncIterator[StateStore]:
    async with state_backend.new() as opened:
        yield opened


def _new(path: str, dataset: str = "abcd-1234", size: int = 10) -> NewJob:
    identity = f"file:/srv/drop/{path}:{size}:{T0.timestamp()}"
    return NewJob("drop", path, identity, size, T0, dataset, 0, routing={"action": "update"})


async def test_add_jobs_records_each_in_order_and_skips_the_known(store: StateStore) -> None:
    known = await store.add_jobs([_new("b.csv")])
    added = await store.add_jobs(
        [_new("a.csv"), _new("b.csv"), _new("c.csv", dataset="wxyz-9876"), _new("a.csv")]
    )
    a, b, c, again = added
    assert b is None
    assert again is None
    assert a is not None
    assert c is not None
    assert known[0] is not None
    assert [a.relative_path, c.relative_path] == ["a.csv", "c.csv"]
    assert [a.dataset, c.dataset] == ["abcd-1234", "wxyz-9876"]
    assert known[0].id < a.id < c.id
    assert a.routing == {"action": "update"}
    assert await store.get_job(c.id) == c
    [event] = await store.events(a.id)
    assert (event.state, event.previous_state) == (JobState.DISCOVERED, None)
    assert event.details == {"source": "drop", "path": "a.csv", "dataset": "abcd-1234", "size": 10}
    assert (await store.counts_by_state())[JobState.DISCOVERED] == 3
    assert await store.add_jobs([]) == []


# What each store says of a size no 64-bit integer column holds.
TOO_BIG = {
    "sqlite": "Python int too large to convert to SQLite INTEGER",
    "postgres": "value out of int64 range",
}


async def test_add_jobs_is_all_or_nothing(store: StateStore, state_backend: StoreFactory) -> None:
    """A batch that fails part-way records none of it: discovery retries it whole."""
    too_big = _new("huge.csv", size=2**70)
    with pytest.raises(Exception, match=TOO_BIG[state_backend.backend]):
        await store.add_jobs([_new("a.csv"), too_big])
    assert (await store.counts_by_state())[JobState.DISCOVERED] == 0
    [again] = await store.add_jobs([_new("a.csv")])
    assert again is not None
    assert again.relative_path == "a.csv"
