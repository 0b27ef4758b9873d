"""SoQL made of SoQL's own words, in any order: never a 5xx, every error the JSON error.

Random text (what the OpenAPI fuzz sends as ``$where``) almost never gets past the
lexer; here each parameter is a sequence of real SoQL tokens (columns, system fields,
operators, keywords, literals of every type, casts, functions, aggregates), so the
parser, type checker, compiler and DuckDB itself are reached. Bounded like the OpenAPI
fuzz: ``EXAMPLES`` queries, a printed seed (``DSMSYNCD_FUZZ_SEED`` replays another).
It found ``$order='a'`` (a 500; see ``test_http_soda_order_constants.py``).
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
import requests
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import publish
from tests.server.http.openapi_fuzz import reply_problem
from tests.support.local_server import ALICE, basic_auth

EXAMPLES = int(os.environ.get("DSMSYNCD_FUZZ_EXAMPLES", "600"))
SEED = int(os.environ.get("DSMSYNCD_FUZZ_SEED", "20261130"))
REQUEST_TIMEOUT_S = 20.0
CSV = (
    b"n,label,when,pt,flag\n1,a,2024-01-01,POINT (1 2),true\n"
    b"2,b,2024-02-03,POINT (3 4),false\n,,,,\n"
)
WORDS = [
    *("n", "label", "when", "pt", "flag", ":id", ":created_at", "`n`", "`la bel`", "*"),
    *("(", ")", ",", "+", "-", "/", "%", "^", "||", "=", "!=", "<", ">", "<=", ">="),
    *("AND", "OR", "NOT", "IS", "NULL", "IN", "BETWEEN", "LIKE", "AS", "DISTINCT", "."),
    *("'a'", "'%a%'", "''", "1", "0", "-1", "1.5", "1e400", "99999999999999999999999"),
    *("true", "false", "'2024-01-01'", "'POINT (1 2)'", "'", '"', "`", "[", "]"),
    *("::text", "::number", "::floating_timestamp", "::point", "::json", "::checkbox"),
    *("count", "sum", "avg", "min", "max", "upper", "lower", "date_trunc_ym"),
    *("distance_in_meters", "within_circle", "within_box", "to_number", "substring"),
    *("case", "coalesce"),
]
PARAMETERS = ["$select", "$where", "$order", "$group", "$having", "$q"]
QUERIES = st.dictionaries(
    st.sampled_from(PARAMETERS),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join),
    min_size=1,
    max_size=3,
)


def _fuzz(url: str) -> list[str]:
    problems: list[str] = []
    http = requests.Session()
    http.headers["Authorization"] = basic_auth(*ALICE)

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(params=QUERIES)
    def send(params: dict[str, str]) -> None:
        try:
            reply = http.get(url, params=params, timeout=REQUEST_TIMEOUT_S)
        except requests.Timeout:
            problems.append(f"{params}: no answer in {REQUEST_TIMEOUT_S}s")
            return
        content_type = reply.headers.get("Content-Type", "")
        problem = reply_problem(reply.status_code, content_type, reply.content)
        if problem:
            problems.append(f"{params}: {problem}")

    send()
    return problems


async def test_soql_token_soup_never_answers_5xx(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    print(f"soql fuzz seed {SEED} (DSMSYNCD_FUZZ_SEED), {EXAMPLES} queries")
    fourfour, _ = await publish(api, CSV)
    problems = await asyncio.to_thread(_fuzz, f"{server.url}/resource/{fourfour}.json")
    assert problems == [], f"seed {SEED}: " + "\n".join(problems[:40])
