"""Row-exact checks on an append dataset: no row identifier, so a file sent twice shows.

Every file of a reliability test carries rows whose ``id`` is unique across the test;
the dataset is published with a seed and mapped with ``action = "update"`` and no row
identifier, so a second publication of any file appends its rows a second time.
``assert_rows_once`` then compares the dataset's ids with the expected ones exactly:
a lost row and a doubled row both fail it.
"""

from __future__ import annotations

from dsmsyncd.daemon.lifecycle import Daemon
from dsmsyncd.dsmapi import DsmapiClient, RetryPolicy
from tests.daemon.e2e.plain_http import Http
from tests.daemon.support.datasets import publish_dataset

HEADER = b"id,name\n"
SEED_IDS = [0]
FAST = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.05)


def rows(first: int, count: int) -> bytes:
    """``count`` rows with ids ``first``..; the ids are what the checks count."""
    return b"".join(b"%d,row-%d\n" % (i, i) for i in range(first, first + count))


def csv(first: int, count: int) -> bytes:
    return HEADER + rows(first, count)


async def append_dataset(client: DsmapiClient) -> str:
    """A dataset with one seed row (id 0) and no row identifier."""
    return await publish_dataset(client, csv(0, 1))


async def assert_rows_once(http: Http, fourfour: str, ids: list[int], seed: str = "") -> None:
    """The dataset holds exactly the seed and ``ids``, each once; no revision left open.

    Counted by the server (``count(*)``, and ids grouped ``HAVING count(*) > 1``), so a
    dataset of millions of rows is checked without reading it: with the right count,
    no id twice and every id inside the expected set's range, the sets are equal when
    ``ids`` is a run of consecutive ids; smaller sets are compared id by id as well.
    """
    expected = sorted(SEED_IDS + ids)
    (counted,) = await http.rows(
        fourfour, **{"$select": "count(*) AS n, min(id) AS lo, max(id) AS hi"}
    )
    doubled = await http.rows(
        fourfour,
        **{"$select": "id, count(*) AS n", "$group": "id", "$having": "n > 1", "$limit": "20"},
    )
    assert doubled == [], f"doubled ids {doubled} {seed}"
    assert int(counted["n"]) == len(expected), f"{counted} for {len(expected)} ids {seed}"
    if len(expected) <= 50_000:
        got = await http.rows(fourfour, **{"$select": "id", "$order": "id", "$limit": "50000"})
        assert [int(row["id"]) for row in got] == expected, seed
    else:
        assert (float(counted["lo"]), float(counted["hi"])) == (expected[0], expected[-1]), seed
        assert ids == list(range(ids[0], ids[0] + len(ids))), "a run of consecutive ids"
    assert await http.open_revisions(fourfour) == [], seed


class FastRetryDaemon(Daemon):
    """The daemon with its client's in-call retries short (attempts and back-off).

    The seam: the client's private retry policy, set once the daemon built it, so a
    test of a target that is down or failing sees many job runs in a few seconds
    instead of the production back-off (6 attempts up to 30 s each).
    """

    async def startup(self) -> None:
        await super().startup()
        assert self._client is not None
        self._client._retry = FAST
