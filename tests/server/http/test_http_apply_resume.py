"""An apply cut by a crash or a shutdown is settled at the next start, never left running.

A real ``dsmsyncd serve`` process is frozen at a named point of an apply
(``DSMSYNCD_TEST_PAUSE_AT``; it prints "paused at …" there), killed with SIGKILL, and
started again on the same data dir. Datasets are append datasets without a row
identifier, so a row written twice would show in the exact counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from dsmsyncd.server import pause_points
from dsmsyncd.server.jobs import resume_apply as apply_resume
from dsmsyncd.server.main import ServeOptions, start_server
from tests.server.http.flows import latest_output_schema, new_dataset, new_source, upload
from tests.server.support.serve_process import GUARD_S, serve_process, write_users
from tests.support.local_server import ALICE, API, basic_auth

T = TypeVar("T")


def _csv(rows: int, tag: str) -> bytes:
    return b"n,label\n" + b"".join(f"{i},{tag}{i}\n".encode() for i in range(rows))


async def _until(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll a state of the server until ``check`` returns a value (guarded, not timed).

    Each check is a real request, so the loop is paced by the server's answers.
    """
    async with asyncio.timeout(GUARD_S):
        while (found := await check()) is None:
            pass
    return found


async def _get(api: aiohttp.ClientSession, url: str) -> Any:
    async with api.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _revision_with_rows(
    api: aiohttp.ClientSession, fourfour: str | None, rows: int, tag: str
) -> dict[str, Any]:
    """A new revision (on a new dataset if ``fourfour`` is None) with a parsed CSV."""
    if fourfour is None:
        rev = await new_dataset(api)
    else:
        body = {"action": {"type": "update"}}
        async with api.post(f"{API}/revision/{fourfour}", json=body) as resp:
            assert resp.status == 201, await resp.text()
            rev = await resp.json()
    source = await new_source(api, rev)
    await upload(api, source, _csv(rows, tag), [])

    async def transformed() -> bool | None:
        shown = await _get(api, source["links"]["show"])
        done = shown["resource"]["schemas"] and latest_output_schema(shown)["completed_at"]
        return True if done else None

    await _until(transformed, "output schema")
    return rev


async def _apply(api: aiohttp.ClientSession, rev: dict[str, Any]) -> str:
    """PUT apply; the task set's show URL."""
    async with api.put(rev["links"]["apply"], json={}) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["links"]["show"])


async def _finished(api: aiohttp.ClientSession, task_set_url: str) -> dict[str, Any]:
    async def final() -> dict[str, Any] | None:
        resource: dict[str, Any] = (await _get(api, task_set_url))["resource"]
        return resource if resource["status"] in ("successful", "failure") else None

    return await _until(final, "task set")


async def _count(api: aiohttp.ClientSession, fourfour: str) -> int:
    return len(await _get(api, f"/resource/{fourfour}.json?$limit=1000"))


@asynccontextmanager
async def _session(url: str) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": basic_auth(*ALICE)}
    async with aiohttp.ClientSession(base_url=url, headers=headers) as api:
        yield api


async def _dataset_and_pending_revision(data: Path, users: Path) -> tuple[str, dict[str, Any]]:
    """A dataset holding 3 applied rows, and an open revision of 5 rows, parsed."""
    async with (
        serve_process(data, "--users-file", str(users)) as served,
        _session(served.url) as api,
    ):
        first = await _revision_with_rows(api, None, 3, "a")
        fourfour = str(first["resource"]["fourfour"])
        assert (await _finished(api, await _apply(api, first)))["status"] == "successful"
        assert await _count(api, fourfour) == 3
        pending = await _revision_with_rows(api, fourfour, 5, "b")
        assert await served.stop() == 0
    return fourfour, pending


async def _apply_and_kill_at(data: Path, users: Path, rev: dict[str, Any], point: str) -> str:
    env = {pause_points.ENV: point}
    async with serve_process(data, "--users-file", str(users), env=env) as served:
        async with _session(served.url) as api:
            task_set_url = await _apply(api, rev)
        assert await served.line() == f"dsmsyncd serve: paused at {point}"
        await served.kill()
    return task_set_url


@dataclass(frozen=True)
class Cut:
    """An apply killed at a pause point: the data dir, the users file, what was applied."""

    data: Path
    users: Path
    fourfour: str
    revision: dict[str, Any]
    task_set_url: str


async def _cut_at(tmp_path: Path, point: str) -> Cut:
    """A dataset of 3 rows, a revision of 5 more, its apply killed at ``point``."""
    users = write_users(tmp_path / "users", ALICE)
    data = tmp_path / "data"
    fourfour, rev = await _dataset_and_pending_revision(data, users)
    return Cut(data, users, fourfour, rev, await _apply_and_kill_at(data, users, rev, point))


@asynccontextmanager
async def _restarted(cut: Cut) -> AsyncIterator[aiohttp.ClientSession]:
    """The server started again on the cut's data dir; a session signed in as alice."""
    async with (
        serve_process(cut.data, "--users-file", str(cut.users)) as served,
        _session(served.url) as api,
    ):
        yield api


async def _assert_dataset_still_takes_revisions(api: aiohttp.ClientSession, ff: str) -> None:
    before = await _count(api, ff)
    rev = await _revision_with_rows(api, ff, 7, "c")
    assert (await _finished(api, await _apply(api, rev)))["status"] == "successful"
    assert await _count(api, ff) == before + 7


async def test_kill_after_rows_committed_publishes_at_restart_without_writing_twice(
    tmp_path: Path,
) -> None:
    cut = await _cut_at(tmp_path, pause_points.APPLY_AFTER_ROWS)
    async with _restarted(cut) as api:
        final = await _finished(api, cut.task_set_url)
        assert final["status"] == "successful"
        assert "resumed" in [entry["stage"] for entry in final["log"]]
        assert await _count(api, cut.fourfour) == 3 + 5
        async with api.delete(cut.revision["links"]["discard"]) as resp:
            assert resp.status == 201  # an applied revision stays applied: no error
            body = await resp.json()
        assert body["resource"]["task_sets"][-1]["status"] == "successful"
        assert await _count(api, cut.fourfour) == 3 + 5
        await _assert_dataset_still_takes_revisions(api, cut.fourfour)
        assert await _count(api, cut.fourfour) == 3 + 5 + 7


async def test_kill_before_commit_keeps_old_rows_and_restart_applies_once(
    tmp_path: Path,
) -> None:
    cut = await _cut_at(tmp_path, pause_points.APPLY_BEFORE_COMMIT)
    async with _restarted(cut) as api:
        final = await _finished(api, cut.task_set_url)
        assert final["status"] == "successful"
        assert await _count(api, cut.fourfour) == 3 + 5
        revision = (await _get(api, cut.revision["links"]["show"]))["resource"]
        assert revision["closed_at"] is not None
        await _assert_dataset_still_takes_revisions(api, cut.fourfour)


async def test_apply_killed_at_every_start_fails_with_the_dataset_unchanged(
    tmp_path: Path,
) -> None:
    point = pause_points.APPLY_BEFORE_COMMIT
    cut = await _cut_at(tmp_path, point)
    for _ in range(apply_resume.RESUME_LIMIT):
        # The start resumes the apply, which freezes at the same point again.
        env = {pause_points.ENV: point}
        async with serve_process(cut.data, "--users-file", str(cut.users), env=env) as served:
            assert await served.line() == f"dsmsyncd serve: paused at {point}"
            await served.kill()
    async with _restarted(cut) as api:
        final = await _finished(api, cut.task_set_url)
        assert final["status"] == "failure"
        message = final["log"][0]["details"]["message"]
        assert f"stopped {apply_resume.RESUME_LIMIT + 1} times" in message
        assert "the dataset is unchanged" in message
        assert await _count(api, cut.fourfour) == 3
        async with api.delete(cut.revision["links"]["discard"]) as resp:
            assert resp.status == 201, await resp.text()
            assert (await resp.json())["resource"]["closed_at"] is not None
        await _assert_dataset_still_takes_revisions(api, cut.fourfour)
        assert await _count(api, cut.fourfour) == 3 + 7


async def test_apply_cut_by_shutdown_timeout_is_finished_at_next_start(tmp_path: Path) -> None:
    """In-process: the drain deadline cancels a running apply; the next start ends it."""
    options = ServeOptions(data_dir=tmp_path, users=[ALICE], shutdown_timeout=0.0)
    server = await start_server(options)
    stuck = asyncio.Event()

    async def never_returns(*args: object, **kwargs: object) -> Any:
        stuck.set()
        await asyncio.Event().wait()

    async with _session(server.url) as api:
        rev = await _revision_with_rows(api, None, 4, "a")
        server.state.rows.apply = never_returns  # type: ignore[method-assign]
        task_set_url = await _apply(api, rev)
        await stuck.wait()
    await server.stop()
    server = await start_server(ServeOptions(data_dir=tmp_path, users=[ALICE]))
    try:
        async with _session(server.url) as api:
            final = await _finished(api, task_set_url)
            assert final["status"] == "successful"
            stages = [entry["stage"] for entry in final["log"]]
            assert "interrupted" in stages
            assert "resumed" in stages
            assert await _count(api, rev["resource"]["fourfour"]) == 4
    finally:
        await server.stop()
