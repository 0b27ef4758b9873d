"""A server killed between a source's input schema and its first output schema.

The parse stored the input schema and marked the source finished, then the server was
killed (``DSMSYNCD_TEST_PAUSE_AT=parse-before-output-schema``, SIGKILL there). Before
the fix the source stayed without an output schema for good, and a client polling for
one (the daemon, the SDK) waited forever: a soak run found it. Started again, the
server makes the first output schema, and the revision applies with every row once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsmsyncd.server import pause_points
from tests.server.http.flows import latest_output_schema, new_dataset, new_source, upload
from tests.server.http.test_http_apply_resume import _apply, _csv, _finished, _get, _session, _until
from tests.server.support.serve_process import serve_process, write_users
from tests.support.local_server import ALICE

ROWS = 50


async def test_source_parsed_before_a_kill_gets_its_output_schema_after_the_restart(
    tmp_path: Path,
) -> None:
    users = write_users(tmp_path / "users", ALICE)
    data = tmp_path / "data"
    paused = {pause_points.ENV: pause_points.PARSE_BEFORE_OUTPUT_SCHEMA}
    async with serve_process(data, "--users-file", str(users), env=paused) as served:
        async with _session(served.url) as api:
            revision = await new_dataset(api)
            source = await new_source(api, revision)
            await upload(api, source, _csv(ROWS, "r"), [])
            assert await served.line() == ("dsmsyncd serve: paused at parse-before-output-schema")
            shown: dict[str, Any] = await _get(api, source["links"]["show"])
            assert shown["resource"]["finished_at"] is not None
            assert [s["output_schemas"] for s in shown["resource"]["schemas"]] == [[]]
        await served.kill()

    async with (
        serve_process(data, "--users-file", str(users)) as served,
        _session(served.url) as api,
    ):

        async def transformed() -> dict[str, Any] | None:
            shown = await _get(api, source["links"]["show"])
            schemas = shown["resource"]["schemas"]
            if not schemas or not schemas[0]["output_schemas"]:
                return None
            latest: dict[str, Any] = latest_output_schema(shown)
            return latest if latest["completed_at"] else None

        output = await _until(transformed, "the output schema after the restart")
        assert [c["field_name"] for c in output["output_columns"]] == ["n", "label"]
        assert (await _finished(api, await _apply(api, revision)))["status"] == "successful"
        fourfour = revision["resource"]["fourfour"]
        rows = await _get(api, f"/resource/{fourfour}.json?$order=n&$limit=1000")
    assert [(int(r["n"]), r["label"]) for r in rows] == [(i, f"r{i}") for i in range(ROWS)]
