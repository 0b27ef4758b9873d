"""The local server fuzzed from its own OpenAPI description: no 5xx, no hang, JSON errors.

Every operation of ``dsmsyncd/server/openapi.json`` (plus the SODA read with every SoQL
parameter, see ``openapi_fuzz``) is sent ``EXAMPLES`` requests that schemathesis builds
from the description (bodies and query strings, valid and not) twice: once with path
ids drawn from alice's real dataset, revision, source, schemas and config, so the
authenticated code paths run, not only the 401/404 ones; then with any text or integer
as ids. They go over real HTTP on loopback, signed in as alice.

Bounded: a fixed number of examples per operation, a seed (printed; set
``DSMSYNCD_FUZZ_SEED`` to replay another), no shrinking, and a per-request timeout
that is the "no hang" check. Every reply is checked by ``openapi_fuzz.reply_problem``;
all problems are collected, then reported together with the seed. The test also
asserts that no request was refused sign-in and that a good number were served (2xx),
so the fuzz reaches the handlers rather than bouncing off authentication.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from importlib import resources
from typing import Any

import aiohttp
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.core.result import Ok

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import new_dataset, new_source, settled, upload
from tests.server.http.openapi_fuzz import fuzzable_schema, reply_problem
from tests.support.local_server import ALICE, API, basic_auth

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
EXAMPLES = int(os.environ.get("DSMSYNCD_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("DSMSYNCD_FUZZ_SEED", "20261130"))
# A reply slower than this is a hang (the server answers everything here in milliseconds).
REQUEST_TIMEOUT_S = 20.0
CSV = b"id,name,when\n1,a,2024-01-01\n2,b,2024-02-03\n"


async def _real_objects(server: RunningServer, api: aiohttp.ClientSession) -> dict[str, list[Any]]:
    """A dataset with a parsed upload and a config: ids the fuzzed paths may name."""
    revision = await new_dataset(api)
    source = await new_source(api, revision)
    await upload(api, source, CSV, [])
    shown = await settled(server, api, source["links"]["show"])
    input_schema = shown["resource"]["schemas"][-1]
    output = input_schema["output_schemas"][-1]
    async with api.post(f"{API}/config", json={"name": "fuzz-config"}) as resp:
        assert resp.status == 201, await resp.text()
    column_ids = [column["transform"]["id"] for column in output["output_columns"]]
    return {
        "fourfour": [revision["resource"]["fourfour"]],
        "revision_seq": [0],
        "source_id": [shown["resource"]["id"]],
        "input_schema_id": [input_schema["id"]],
        "output_schema_id": [output["id"]],
        "id": [input_schema["id"], output["id"], *column_ids],
        "seq_num": [0, 1],
        "byte_offset": [0, len(CSV)],
        "name": ["fuzz-config"],
    }


def _fuzz(base_url: str, raw: dict[str, Any], known: dict[str, list[Any]]) -> Counter[str]:
    """Send every operation its examples; the problems found, each naming its request,
    and how many replies of each status class (``problems`` and ``2xx``, ``4xx`` …)."""
    seen: Counter[str] = Counter()
    http = requests.Session()
    http.headers["Authorization"] = basic_auth(*ALICE)
    for ids in (known, {}):  # real ids first, then any text or integer in their place
        schema = schemathesis.openapi.from_dict(fuzzable_schema(raw, ids))
        for result in schema.get_all_operations():
            if isinstance(result, Ok):
                _fuzz_operation(result.ok(), base_url, http, seen)
            else:
                seen[f"an operation of the description is invalid: {result.err()}"] += 1
    return seen


def _fuzz_operation(
    operation: Operation, base_url: str, http: requests.Session, seen: Counter[str]
) -> None:
    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def send(case: schemathesis.Case[Operation]) -> None:
        try:
            reply = case.call(base_url=base_url, session=http, timeout=REQUEST_TIMEOUT_S)
        except requests.Timeout:
            seen[f"{operation.label}: no answer in {REQUEST_TIMEOUT_S}s"] += 1
            return
        seen[f"{reply.status_code // 100}xx"] += 1
        seen[str(reply.status_code)] += 1
        # schemathesis' reply: header names lower-cased, each a list of values
        content_type = (reply.headers.get("content-type") or [""])[0]
        problem = reply_problem(reply.status_code, content_type, reply.content)
        if problem:
            seen[f"{operation.label} {reply.request.url}: {problem}"] += 1

    send()


async def test_every_operation_answers_fuzzed_requests_without_5xx_or_hang(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    print(f"fuzz seed {SEED} (DSMSYNCD_FUZZ_SEED), {EXAMPLES} examples per operation")
    known = await _real_objects(server, api)
    raw = json.loads(resources.files("dsmsyncd.server").joinpath("openapi.json").read_text())
    seen = await asyncio.to_thread(_fuzz, server.url, raw, known)
    print(f"replies by status: {sorted((k, n) for k, n in seen.items() if k[:1].isdigit())}")
    problems = [problem for problem in seen if not problem[:1].isdigit()]
    assert problems == [], f"seed {SEED}: " + "\n".join(problems[:40])
    # Signed in for real: requests reached the handlers, and some were served.
    assert seen["401"] == 0, seen
    assert seen["2xx"] >= 20, seen
    # The server is still whole: a plain read of alice's dataset answers.
    async with api.get(f"/resource/{known['fourfour'][0]}.json") as resp:
        assert resp.status == 200, await resp.text()
