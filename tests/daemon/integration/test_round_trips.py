"""What one file costs on the wire: ``dsmsyncd push`` sends exactly these requests, over
one pooled keep-alive connection per concurrent request (issue 9).

Each request waited for is a round trip on a wide-area link, and each new connection
two more (TCP, then TLS). The requests are counted by a loopback proxy in front of the
server (``link_proxy``), by their request lines, with the connections it accepted; no
timing is measured. How many times a poll asks depends on how fast the server is, so
a run of the same poll counts once here: what is exact is which requests are sent,
in which order, and that nothing is asked again that an answer already said.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections import Counter
from pathlib import Path

from dsmsyncd.cli.push import PushRequest, mapping_for, push
from dsmsyncd.config import load_config
from dsmsyncd.config.schema import Action
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.pipeline.upload import GUESSED_CHUNK_SIZE, GUESSED_PARALLELISM
from dsmsyncd.server.main import RunningServer
from tests.daemon.support.config_text import target_state_admin
from tests.daemon.support.datasets import publish_dataset, robot_client
from tests.daemon.support.link_proxy import LinkProxy, link_proxy

SEED = b"id,name\n1,ann\n2,bob\n"
FILE = b"id,name\n1,ann\n2,bob\n3,cid\n"

# The requests of one small file through push, polls counted once, ids left out:
# before issue 9 there were 12 (13 for a replace) on 4 connections: a fresh one for
# each of open, create source and apply, and the source polled, then its output
# schema and its input schema read again.
UPDATE = [
    "POST revision/{ff}",  # open the revision
    "POST revision/{ff}/{seq}/source",  # create the upload source
    "POST source/{id}/initiate",
    "POST source/{id}/chunk/{id}/{id}",
    "POST source/{id}/chunk/{id}/{id}/commit",  # its answer is the first poll
    "GET source/{id}",  # polled: it embeds both schemas, completed, with their counts
    "PUT revision/{ff}/{seq}/apply",
    "GET revision/{ff}/{seq}/apply/{id}",  # the apply job, polled
]
CHUNK = 4  # bytes: FILE in 8 chunks, more than the server's 4 in parallel
REPLACE_GUARD = "GET /resource/{ff}.json"  # the dataset's count(*), during processing

_ID = re.compile(r"/\d+(?=/|$)")


def shapes(proxy: LinkProxy, ff: str) -> list[str]:
    """The proxy's request lines with ids generalised and repeated polls collapsed."""
    lines = [
        _ID.sub("/{id}", line.replace(ff, "{ff}"))
        .replace("/{ff}/{id}", "/{ff}/{seq}")
        .replace(" /api/publishing/v1/", " ")
        for line in proxy.requests
    ]
    return [line for line, _ in itertools.groupby(lines)]


async def pushed(
    tmp_path: Path,
    server: RunningServer,
    client: DsmapiClient,
    action: Action,
    data: bytes = FILE,
    *,
    answer_wait_s: float = 0.0,
) -> tuple[LinkProxy, str]:
    """``dsmsyncd push`` of ``data`` to a new dataset through a counting proxy: the proxy
    and the dataset, once push exited 0. By default the server answers a commit and an
    apply at once, in progress, as the hosted service does, so both are polled."""
    server.state.answer_wait_s = answer_wait_s
    ff = await publish_dataset(client, SEED)
    file = tmp_path / "file.csv"
    file.write_bytes(data)
    async with link_proxy(server.url) as proxy:
        config_path = tmp_path / "push.toml"
        config_path.write_text(target_state_admin(proxy.url, tmp_path))
        request = PushRequest(file, ff, action=action, progress=False)
        assert await push(load_config(config_path), mapping_for(request), request) == 0
    return proxy, ff


async def test_push_of_a_small_file_sends_eight_requests_on_one_connection(
    tmp_path: Path, server: RunningServer, client: DsmapiClient
) -> None:
    proxy, ff = await pushed(tmp_path, server, client, "update")

    assert shapes(proxy, ff) == UPDATE
    assert proxy.connections == 1


async def test_small_file_is_six_requests_when_the_server_answers_its_work_done(
    tmp_path: Path, server: RunningServer, client: DsmapiClient
) -> None:
    # The local server waits briefly for a commit's parse and an apply's job
    # (server/jobs/short_wait.py); given all the time it needs, neither is polled.
    proxy, ff = await pushed(tmp_path, server, client, "update", answer_wait_s=600.0)

    polls = [UPDATE[5], UPDATE[7]]
    assert shapes(proxy, ff) == [line for line in UPDATE if line not in polls]
    assert proxy.connections == 1


async def test_replace_counts_the_dataset_while_the_server_processes(
    tmp_path: Path, server: RunningServer, client: DsmapiClient
) -> None:
    proxy, ff = await pushed(tmp_path, server, client, "replace")

    seen = shapes(proxy, ff)
    assert seen.count(REPLACE_GUARD) == 1
    guard_at = seen.index(REPLACE_GUARD)
    assert seen.index(UPDATE[4]) < guard_at < seen.index(UPDATE[6])
    assert [line for line in seen if line != REPLACE_GUARD] == UPDATE
    # The count goes out while the source is polled: at most one connection more.
    assert proxy.connections in (1, 2)


async def test_chunks_reuse_one_connection_per_parallel_upload(
    tmp_path: Path, server: RunningServer, client: DsmapiClient
) -> None:
    parallel = server.state.preferred_upload_parallelism
    server.state.preferred_chunk_size = CHUNK
    proxy, ff = await pushed(tmp_path, server, client, "update")

    chunks = math.ceil(len(FILE) / CHUNK)
    assert chunks > parallel
    assert proxy.chunk_requests == Counter(range(chunks))  # each chunk sent once
    assert shapes(proxy, ff) == UPDATE
    # The chunk workers start together: one reuses the connection of initiate, the
    # others open one each, and every later request reuses one of those.
    assert proxy.connections == parallel


async def test_warmed_connections_are_the_ones_requests_take(
    server: RunningServer, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED)
    async with link_proxy(server.url) as proxy, robot_client(proxy.url) as through:
        await through.warm(3)
        assert proxy.connections == 3
        assert proxy.requests == []  # opened, nothing sent
        await through.warm(2)
        assert proxy.connections == 3  # two in the pool already: none opened

        await asyncio.gather(*(through.list_revisions(ff) for _ in range(4)))

    assert len(proxy.requests) == 4
    assert proxy.connections == 4  # three warmed ones taken, one opened for the fourth


async def test_a_big_push_opens_its_chunk_connections_while_the_revision_opens(
    tmp_path: Path, server: RunningServer, client: DsmapiClient
) -> None:
    assert server.state.preferred_chunk_size == GUESSED_CHUNK_SIZE
    assert server.state.preferred_upload_parallelism == GUESSED_PARALLELISM
    row = b"3,cid\n"
    data = FILE + row * (3 * GUESSED_CHUNK_SIZE // len(row))  # four chunks of 4 MiB
    proxy, ff = await pushed(tmp_path, server, client, "update", data)

    assert proxy.chunk_requests == Counter(range(GUESSED_PARALLELISM))
    assert shapes(proxy, ff) == UPDATE
    # Every connection the chunks take was open before ``initiate`` went out (without
    # warming, the chunk workers open them after its answer), and none more after. The
    # revision's requests race the warming for a pooled connection: when they go first
    # they open one of their own, a spare at most (one handshake, off the job's path).
    initiate = next(i for i, line in enumerate(proxy.requests) if line.endswith("/initiate"))
    assert proxy.connections_at[initiate] in (GUESSED_PARALLELISM, GUESSED_PARALLELISM + 1)
    assert proxy.connections == proxy.connections_at[initiate]
