"""Revision endpoints (R1-R8, R11, R12) over real HTTP, metadata-only applies included."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.server.http.flows import (
    BAD_FIELD,
    CLOSED,
    DENIED,
    NOT_FOUND,
    SIGN_IN,
    assert_refused,
    call,
    refused,
)
from tests.support.local_server import API

REVISION_LINKS = {
    "show",
    "update",
    "discard",
    "metadata",
    "create_source",
    "list_sources",
    "apply",
    "plan",
    "restore",
}


async def new_dataset(api: aiohttp.ClientSession, **metadata: Any) -> dict[str, Any]:
    body = {"action": {"type": "update"}, "metadata": {"name": "Test", **metadata}}
    status, env = await call(api, "POST", f"{API}/revision", body)
    assert status == 201, env
    resource: dict[str, Any] = env["resource"]
    return resource


async def wait_for_job(api: aiohttp.ClientSession, show: str) -> dict[str, Any]:
    """Poll the task set with real requests until it finishes (bounded)."""
    for _ in range(2000):
        status, env = await call(api, "GET", show)
        assert status == 200, env
        if env["resource"]["finished_at"] is not None:
            job: dict[str, Any] = env["resource"]
            return job
    raise AssertionError(f"apply job {show} did not finish")


async def test_create_dataset_returns_revision_zero_with_all_links(
    api: aiohttp.ClientSession,
) -> None:
    status, env = await call(
        api, "POST", f"{API}/revision", {"action": {"type": "update"}, "metadata": {"name": "A"}}
    )
    assert status == 201
    rev = env["resource"]
    ff = rev["fourfour"]
    assert rev["revision_seq"] == 0
    assert rev["action"] == {"type": "update", "permission": None, "schema": None}
    assert rev["metadata"] == {"name": "A"}
    assert rev["output_schema_id"] is None
    assert rev["blob_id"] is None
    assert rev["closed_at"] is None
    assert rev["task_sets"] == []
    assert rev["created_by"]["display_name"] == "alice"
    for key in ("id", "created_at", "updated_at", "notes", "href", "attachments", "is_parent"):
        assert key in rev
    assert set(env["links"]) == REVISION_LINKS
    assert env["links"]["show"] == f"{API}/revision/{ff}/0"
    assert env["links"]["create_source"] == f"{API}/revision/{ff}/0/source"
    assert env["links"]["apply"] == f"{API}/revision/{ff}/0/apply"
    assert env["links"]["plan"] == f"{API}/revision/{ff}/0/plan"


async def test_create_dataset_makes_private_unpublished_view_at_once(
    api: aiohttp.ClientSession,
) -> None:
    rev = await new_dataset(api, description="d", tags=["x"])
    status, view = await call(api, "GET", f"/api/views/{rev['fourfour']}")
    assert status == 200
    assert view["id"] == rev["fourfour"]
    assert view["name"] == "Test"
    assert view["permissions"] == {"scope": "private"}
    assert view["publicationStage"] == "unpublished"
    assert view["owner"]["displayName"] == "alice"
    assert view["columns"] == []


async def test_create_dataset_accepts_deleted_at(api: aiohttp.ClientSession) -> None:
    status, env = await call(
        api, "POST", f"{API}/revision?deleted_at=2030-01-01T00:00:00Z", {"metadata": {}}
    )
    assert status == 201
    assert env["resource"]["revision_seq"] == 0


async def test_create_dataset_bad_action_type_is_400_naming_field(
    api: aiohttp.ClientSession,
) -> None:
    status, body = await call(api, "POST", f"{API}/revision", {"action": {"type": "upsert"}})
    assert status == 400
    assert body["data"]["field"] == "action.type"
    assert_refused(body, "invalid_field", "invalid field 'action.type'")


async def test_create_dataset_metadata_of_wrong_type_is_400(api: aiohttp.ClientSession) -> None:
    status, body = await call(api, "POST", f"{API}/revision", {"metadata": {"tags": "x"}})
    assert status == 400
    assert body["data"]["field"] == "metadata.tags"
    assert_refused(body, "invalid_field", "expected an array of strings")


async def test_create_revision_on_dataset_increments_seq(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    ff = rev["fourfour"]
    body = {"metadata": {}, "action": {"type": "replace", "permission": "public"}}
    status, env = await call(api, "POST", f"{API}/revision/{ff}", body)
    assert status == 201
    assert env["resource"]["revision_seq"] == 1
    assert env["resource"]["action"]["type"] == "replace"
    assert env["resource"]["action"]["permission"] == "public"


async def test_create_revision_unknown_dataset_is_404(api: aiohttp.ClientSession) -> None:
    body = await refused(
        api,
        "POST",
        f"{API}/revision/zzzz-zzzz",
        NOT_FOUND,
        "dataset zzzz-zzzz does not exist",
        body={},
    )
    assert body["request_id"]


# test name → (who asks, method, path after /revision/{fourfour}, status, key, message)
REFUSED_WRITES = {
    "create_revision_by_other_user_is_403": (
        "bob",
        "POST",
        "",
        403,
        "permission_denied",
        "only the owner of dataset",
    ),
    "create_revision_anonymous_is_401": (
        "anonymous",
        "POST",
        "",
        401,
        "authentication_required",
        "needs credentials",
    ),
    "apply_by_other_user_is_403": (
        "bob",
        "PUT",
        "/0/apply",
        403,
        "permission_denied",
        "only the owner of dataset",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED_WRITES))
async def test_refused_write(
    api: aiohttp.ClientSession,
    bob_api: aiohttp.ClientSession,
    anon_api: aiohttp.ClientSession,
    case: str,
) -> None:
    who, method, tail, expected, key, said = REFUSED_WRITES[case]
    rev = await new_dataset(api)
    session = bob_api if who == "bob" else anon_api
    status, body = await call(session, method, f"{API}/revision/{rev['fourfour']}{tail}", {})
    assert status == expected
    assert_refused(body, key, said)


async def test_list_revisions_newest_first_and_open_filter(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    ff = rev["fourfour"]
    await call(api, "POST", f"{API}/revision/{ff}", {"action": {"type": "update"}})
    await call(api, "DELETE", f"{API}/revision/{ff}/0")
    status, listed = await call(api, "GET", f"{API}/revision/{ff}")
    assert status == 200
    assert [e["resource"]["revision_seq"] for e in listed] == [1, 0]
    assert all(set(e["links"]) == REVISION_LINKS for e in listed)
    _, open_only = await call(api, "GET", f"{API}/revision/{ff}?open=true")
    assert [e["resource"]["revision_seq"] for e in open_only] == [1]


async def test_show_revision_unknown_seq_is_404(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    for seq in ("7", "x"):
        status, body = await call(api, "GET", f"{API}/revision/{rev['fourfour']}/{seq}")
        assert status == 404
        assert body["error"] is True
        assert_refused(body, "not_found")


async def test_private_revision_read_by_others_is_refused(
    api: aiohttp.ClientSession,
    bob_api: aiohttp.ClientSession,
    anon_api: aiohttp.ClientSession,
) -> None:
    rev = await new_dataset(api)
    for path in (f"{API}/revision/{rev['fourfour']}/0", f"/api/views/{rev['fourfour']}"):
        await refused(bob_api, "GET", path, DENIED, "is private to its owner")
        await refused(anon_api, "GET", path, SIGN_IN, "sign in as its owner")


async def test_update_revision_merges_metadata_and_ignores_read_only_keys(
    api: aiohttp.ClientSession,
) -> None:
    rev = await new_dataset(api, description="old")
    path = f"{API}/revision/{rev['fourfour']}/0"
    body = {
        "id": 999,
        "fourfour": "aaaa-aaaa",
        "blob_id": None,
        "task_sets": [],
        "metadata": {"description": "new", "metadata": {"lol": "cats"}},
        "notes": "changed things",
        "action": {"permission": "public"},
    }
    status, env = await call(api, "PUT", path, body)
    assert status == 202
    updated = env["resource"]
    assert updated["id"] == rev["id"]
    assert updated["fourfour"] == rev["fourfour"]
    assert updated["metadata"] == {
        "name": "Test",
        "description": "new",
        "metadata": {"lol": "cats"},
    }
    assert updated["notes"] == "changed things"
    assert updated["action"] == {"type": "update", "permission": "public", "schema": None}
    status, env = await call(api, "PATCH", path, {"notes": "again"})
    assert status == 202
    assert env["resource"]["notes"] == "again"


async def test_update_revision_bad_fields_are_400(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    path = f"{API}/revision/{rev['fourfour']}/0"
    status, body = await call(api, "PUT", path, {"output_schema_id": 424242})
    assert status == 400
    assert body["data"]["field"] == "output_schema_id"
    assert_refused(body, "invalid_field", "output schema 424242 does not exist")
    await refused(api, "PUT", path, BAD_FIELD, "got a string", body={"output_schema_id": "abc"})
    status, body = await call(api, "PUT", path, {"notes": 5})
    assert status == 400
    assert body["data"]["field"] == "notes"
    assert_refused(body, "invalid_field", "expected a string or null, got a number")
    status, body = await call(api, "PUT", path, {"action": {"permission": "everyone"}})
    assert status == 400
    assert body["data"]["field"] == "action.permission"
    assert_refused(body, "invalid_field", "must be 'public', 'private' or null")


async def test_discard_closes_revision_and_is_repeatable(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    path = f"{API}/revision/{rev['fourfour']}/0"
    status, env = await call(api, "DELETE", path)
    assert status == 201
    assert env["resource"]["closed_at"] is not None
    status, again = await call(api, "DELETE", path)
    assert status == 201
    assert again["resource"]["closed_at"] == env["resource"]["closed_at"]
    await refused(api, "PUT", f"{path}/apply", CLOSED, "is closed (applied or discarded)", body={})
    await refused(api, "PUT", path, CLOSED, "is closed (applied or discarded)", body={"notes": "x"})


async def test_metadata_only_apply_publishes_and_closes(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    ff = rev["fourfour"]
    path = f"{API}/revision/{ff}/0"
    await call(api, "PUT", path, {"metadata": {"name": "Renamed", "category": "Fun"}})
    status, env = await call(api, "PUT", f"{path}/apply", {"resource": {"id": 0}})
    assert status == 200
    task_set = env["resource"]
    assert task_set["status"] in {
        "initializing",
        "creating_columns",
        "upserting",
        "finishing",
        "successful",
    }
    assert env["links"]["show"] == f"{path}/apply/{task_set['id']}"
    for key in ("job_uuid", "created_by", "created_at", "finished_at", "output_schema_id"):
        assert key in task_set
    job = await wait_for_job(api, env["links"]["show"])
    assert job["status"] == "successful"
    stages = [entry["stage"] for entry in job["log"]]
    assert stages[0] == "finished"
    assert stages[-1] == "started"
    _, view = await call(api, "GET", f"/api/views/{ff}")
    assert view["name"] == "Renamed"
    assert view["category"] == "Fun"
    assert view["publicationStage"] == "published"
    assert view["permissions"] == {"scope": "private"}
    _, shown = await call(api, "GET", path)
    assert shown["resource"]["closed_at"] is not None
    assert [t["status"] for t in shown["resource"]["task_sets"]] == ["successful"]
    # Discarding it afterwards (a tidy client's ``finally``) changes nothing.
    status, discarded = await call(api, "DELETE", path)
    assert status == 201
    assert discarded["resource"] == shown["resource"]
    _, view = await call(api, "GET", f"/api/views/{ff}")
    assert view["name"] == "Renamed"


async def test_apply_with_permission_makes_dataset_public(
    api: aiohttp.ClientSession, anon_api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    ff = rev["fourfour"]
    body = {"metadata": {}, "action": {"type": "update", "permission": "public"}}
    _, env = await call(api, "POST", f"{API}/revision/{ff}", body)
    links = env["links"]
    status, job_env = await call(api, "PUT", links["apply"], {})
    assert status == 200
    job = await wait_for_job(api, job_env["links"]["show"])
    assert job["status"] == "successful"
    status, view = await call(anon_api, "GET", f"/api/views/{ff}")
    assert status == 200
    assert view["permissions"] == {"scope": "public"}
    status, _ = await call(anon_api, "GET", f"{API}/revision/{ff}/1")
    assert status == 200


async def test_apply_unknown_output_schema_is_400(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    path = f"{API}/revision/{rev['fourfour']}/0/apply"
    status, body = await call(api, "PUT", path, {"output_schema_id": 123456})
    assert status == 400
    assert body["data"]["field"] == "output_schema_id"
    assert_refused(body, "invalid_field", "output schema 123456 does not exist")


async def test_show_unknown_apply_job_is_404(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    await refused(
        api,
        "GET",
        f"{API}/revision/{rev['fourfour']}/0/apply/99999",
        NOT_FOUND,
        "apply job 99999 does not exist",
    )


async def test_plan_lists_steps_with_permission_step_when_set(
    api: aiohttp.ClientSession,
) -> None:
    rev = await new_dataset(api)
    ff = rev["fourfour"]
    status, env = await call(api, "GET", f"{API}/revision/{ff}/0/plan")
    assert status == 200
    types = [step["type"] for step in env["resource"]]
    assert types[0] == "prepare_draft_for_import"
    assert "apply_metadata" in types
    assert "set_permission" not in types
    await call(api, "PATCH", f"{API}/revision/{ff}/0", {"action": {"permission": "public"}})
    _, env = await call(api, "GET", f"{API}/revision/{ff}/0/plan")
    assert env["resource"][-1] == {"type": "set_permission"}


async def test_restore_of_an_open_revision_is_refused(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    await refused(
        api,
        "POST",
        f"{API}/revision/{rev['fourfour']}/0/restore",
        (409, "revision_open"),
        f"revision {rev['fourfour']}/0 is open; only an applied or discarded revision",
    )
