"""Metadata sidecars: naming, and every key's check (routing: ``test_routing.py``)."""

from __future__ import annotations

import pytest

from dsmsyncd.pipeline.sidecar_format import (
    MAX_SIDECAR_BYTES,
    SidecarError,
    data_path_of,
    parse_sidecar,
    sidecar_paths,
)


def test_sidecar_names_are_the_data_file_name_plus_a_suffix() -> None:
    assert data_path_of("a/permits.csv.meta.json") == "a/permits.csv"
    assert data_path_of("permits.csv.meta.toml") == "permits.csv"
    assert data_path_of("permits.csv") is None
    assert data_path_of(".meta.json") is None
    assert data_path_of("a/.meta.json") is None
    assert sidecar_paths("a/p.csv") == ("a/p.csv.meta.json", "a/p.csv.meta.toml")


def test_every_key_translates_into_revision_metadata() -> None:
    raw = (
        b'name = "N"\ndescription = "D"\ncategory = "C"\ntags = ["t"]\nlicense = "CC0"\n'
        b'attribution = "A"\nattribution_link = "https://x.gov"\n[custom.S]\nF = 1\n'
    )
    assert parse_sidecar("p.csv.meta.toml", raw) == {
        "name": "N",
        "description": "D",
        "category": "C",
        "tags": ["t"],
        "license": {"name": "CC0"},
        "attribution": "A",
        "attributionLink": "https://x.gov",
        "metadata": {"custom_fields": {"S": {"F": 1}}},
    }


KNOWN = "name, description, category, tags, license, attribution, attribution_link, custom"
BAD: dict[str, tuple[bytes, str, str]] = {
    "unknown_key": (
        b'{"descripton": "x"}',
        "descripton",
        "unknown key; known keys: " + KNOWN,
    ),
    "tags_not_a_list": (
        b'{"tags": "a"}',
        "tags",
        'expected a list of strings, like ["permits", "housing"]',
    ),
    "tag_not_a_string": (
        b'{"tags": ["a", 1]}',
        "tags",
        'expected a list of strings, like ["permits", "housing"]',
    ),
    "name_not_a_string": (b'{"name": 3}', "name", "expected a string, found int"),
    "empty_name": (b'{"name": " "}', "name", "must not be empty (a dataset needs a name)"),
    "bad_link": (
        b'{"attribution_link": "example.gov"}',
        "attribution_link",
        "expected an http(s) URL like https://example.gov/about",
    ),
    "custom_value_not_scalar": (
        b'{"custom": {"S": {"F": [1]}}}',
        "custom.S.F",
        "expected a string, number or boolean, found list",
    ),
    "custom_section_not_a_table": (
        b'{"custom": {"S": 1}}',
        "custom.S",
        "expected a table of field = value",
    ),
    "not_an_object": (b"[1]", "", "expected an object of metadata keys"),
    "empty": (b"{}", "", "no metadata in it; known keys: " + KNOWN),
    "not_utf8": (b'{"name": "\xff"}', "", "not UTF-8 text (invalid start byte at byte 10)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_sidecar_names_the_key_and_the_problem(case: str) -> None:
    raw, key, problem = BAD[case]
    with pytest.raises(SidecarError) as caught:
        parse_sidecar("p.csv.meta.json", raw)
    assert (caught.value.key, caught.value.problem) == (key, problem)


def test_unparsable_and_oversized_sidecars_are_refused() -> None:
    with pytest.raises(
        SidecarError,
        match=r"^not valid json: Expecting property name enclosed in double quotes: line 1",
    ):
        parse_sidecar("p.csv.meta.json", b"{name")
    with pytest.raises(SidecarError, match=r"^not valid toml: "):
        parse_sidecar("p.csv.meta.toml", b"name = ")
    with pytest.raises(SidecarError, match=f"at most {MAX_SIDECAR_BYTES} bytes"):
        parse_sidecar("p.csv.meta.json", b" " * (MAX_SIDECAR_BYTES + 1))
