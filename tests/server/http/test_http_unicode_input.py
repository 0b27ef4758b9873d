"""Digits other than 0-9 (``'¹'``) in ids, paging and expressions are refused, letters of any
script name fields in expressions: neither is a 500.

Found by the OpenAPI fuzz test (``test_http_fuzz_openapi.py``): ``str.isdigit`` says yes
to ``'¹'``, ``int()`` then raised, and the server answered 500; the expression lexer
took ``'¹'`` for the start of a number and failed an assertion. Each case here asserts
the refusal's key and message.
"""

from __future__ import annotations

import aiohttp

from tests.server.http.flows import NOT_FOUND, new_dataset, new_upload_source, publish, refused
from tests.support.local_server import API


async def test_a_superscript_source_id_is_no_source(api: aiohttp.ClientSession) -> None:
    await refused(api, "GET", f"{API}/source/¹", NOT_FOUND, "source ¹ does not exist")


async def test_a_superscript_revision_seq_is_no_revision(api: aiohttp.ClientSession) -> None:
    fourfour = (await new_dataset(api))["resource"]["fourfour"]
    await refused(
        api,
        "GET",
        f"{API}/revision/{fourfour}/²",
        NOT_FOUND,
        "revision sequence number must be an integer, not '²'",
    )


async def test_a_superscript_chunk_number_is_a_bad_request(api: aiohttp.ClientSession) -> None:
    _, source = await new_upload_source(api)
    url = f"{API}/source/{source['resource']['id']}/chunk/¹/0"
    await refused(api, "POST", url, (400, "bad_request"), "seq_num must be a non-negative integer")


async def test_arabic_indic_paging_of_changes_is_a_bad_field(api: aiohttp.ClientSession) -> None:
    fourfour = (await new_dataset(api))["resource"]["fourfour"]
    changes = f"{API}/revision/{fourfour}/changes"
    await refused(
        api,
        "GET",
        f"{changes}?limit=٣",
        (400, "invalid_field"),
        "invalid field 'limit': expected a whole number from 1 to 1000",
    )
    await refused(
        api,
        "GET",
        f"{changes}?cursor=¹",
        (400, "invalid_field"),
        "invalid field 'cursor': expected the 'next' value of the previous page",
    )


async def test_a_superscript_in_soql_is_an_unexpected_character(
    api: aiohttp.ClientSession,
) -> None:
    fourfour = (await new_dataset(api))["resource"]["fourfour"]
    for parameter, expression in (("$where", "¹ > 1"), ("$where", "1¹ > 1"), ("$select", "¹ + 1")):
        await refused(
            api,
            "GET",
            f"/resource/{fourfour}.json?{parameter}={expression}",
            (400, "query.compiler.malformed"),
            f"invalid {parameter}: Unexpected character '¹'",
        )


async def test_a_field_named_in_another_script_is_read_by_its_bare_name(
    api: aiohttp.ClientSession,
) -> None:
    """``é`` started a bare name the lexer then failed to match: a 500."""
    fourfour, _ = await publish(api, "café,n\nnoir,1\n".encode())
    async with api.get(f"/resource/{fourfour}.json?$select=café&$where=café='noir'") as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.json() == [{"café": "noir"}]
    await refused(
        api,
        "GET",
        f"/resource/{fourfour}.json?$select=ûÝ",
        (400, "query.soql.no-such-column"),
        "ûÝ",
    )
