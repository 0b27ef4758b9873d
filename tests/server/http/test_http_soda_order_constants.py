"""A constant in ``$order`` orders nothing, whatever its type: never a 500.

Found by fuzzing SoQL: DuckDB refuses a text or boolean literal in ORDER BY ("non-integer
literal has no effect"), so ``$order='a'`` answered 500; an integer literal would have
meant "the n-th selected column" to DuckDB, which SoQL does not mean.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from tests.server.http.flows import publish, refused

CONSTANT_PLUS_ONE = "'a' + 1"


async def test_constant_order_terms_keep_row_order_and_later_terms_apply(
    api: aiohttp.ClientSession,
) -> None:
    fourfour, _ = await publish(api, b"n,label\n2,a\n1,b\n3,c\n")
    in_file_order = [{"label": "a", "n": "2"}, {"label": "b", "n": "1"}, {"label": "c", "n": "3"}]
    for constant in ("'a'", "true", "null", "2", "1.5"):
        params = {"$order": constant, "$select": "label,n"}
        async with api.get(f"/resource/{fourfour}.json", params=params) as resp:
            assert (resp.status, await resp.json()) == (200, in_file_order), constant
    params = {"$order": "'a' DESC, n DESC", "$select": "label,n"}
    async with api.get(f"/resource/{fourfour}.json", params=params) as resp:
        assert resp.status == 200, await resp.text()
        assert [row["n"] for row in await resp.json()] == ["3", "2", "1"]
    # A constant term is still checked like any expression.
    await refused(
        api,
        "GET",
        f"/resource/{fourfour}.json?$order={quote(CONSTANT_PLUS_ONE)}",
        (400, "query.soql.type-mismatch"),
        "invalid $order: The operator '+' does not accept",
    )
