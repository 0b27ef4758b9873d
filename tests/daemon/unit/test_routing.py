"""Routing: path globs (``*`` stays in a segment, ``**`` crosses), first mapping wins."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.daemon.routing import UnmatchedLog
from dsmsyncd.pipeline.routing import glob_regex, route
from dsmsyncd.sources.base import Candidate


def _matches(pattern: str, path: str) -> bool:
    return glob_regex(pattern).fullmatch(path) is not None


def _mapping(source: str, match: str, dataset: str = "abcd-1234") -> MappingConfig:
    return MappingConfig(
        source=source,
        match=match,
        dataset=dataset,
        action="update",
        on_success="keep",
        quarantine_dir=Path("/srv/quarantine"),
    )


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("permits/*.csv", "permits/a.csv", True),
        ("permits/*.csv", "permits/2026/a.csv", False),
        ("*.csv", "a.csv", True),
        ("*.csv", "dir/a.csv", False),
        ("**/*.csv", "a.csv", True),
        ("**/*.csv", "permits/2026/05/a.csv", True),
        ("**/*.csv", "permits/a.txt", False),
        ("permits/**/*.csv", "permits/a.csv", True),
        ("permits/**/*.csv", "permits/2026/a.csv", True),
        ("permits/**/*.csv", "other/2026/a.csv", False),
        ("permits/**", "permits/2026/a.csv", True),
        ("**", "any/thing/at/all", True),
        ("permits/**.csv", "permits/2026/a.csv", True),
        ("a?.csv", "ab.csv", True),
        ("a?.csv", "a/.csv", False),
        ("*.csv", "a.csv.part", False),
        ("a.csv", "abcsv", False),
        ("data (1)+.csv", "data (1)+.csv", True),
    ],
)
def test_glob_regex_path_semantics(pattern: str, path: str, expected: bool) -> None:
    assert _matches(pattern, path) is expected


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.csv", "daily export 2026.csv", True),
        ("Übersicht/*.csv", "Übersicht/straßen.csv", True),
        ("*/*.csv", "日本/データ.csv", True),
        ("*.csv", "report [2026].csv", True),
        ("report [[]2026].csv", "report [2026].csv", True),
        ("report [2026].csv", "report [2026].csv", False),
        ("report [2026].csv", "report 2.csv", True),
        ("file[0-9].csv", "file7.csv", True),
        ("file[!0-9].csv", "file7.csv", False),
        ("file[!0-9].csv", "fileX.csv", True),
        ("a[!x]b", "a/b", False),
        ("a[/]b", "a/b", False),
        ("unclosed[.csv", "unclosed[.csv", True),
        ("[]].csv", "].csv", True),
        ("[z-a].csv", "[z-a].csv", True),
        ("A.csv", "a.csv", False),
    ],
)
def test_glob_regex_odd_names(pattern: str, path: str, expected: bool) -> None:
    assert _matches(pattern, path) is expected


def test_route_first_matching_mapping_wins() -> None:
    mappings = [
        _mapping("drop", "permits/special.csv", "spec-0001"),
        _mapping("drop", "permits/*.csv", "perm-0001"),
        _mapping("drop", "**/*.csv", "all0-0001"),
    ]
    routed = route("drop", "permits/special.csv", mappings)
    assert routed is not None
    assert routed[0] == 0
    assert route("drop", "permits/other.csv", mappings) == (1, mappings[1])
    assert route("drop", "permits/2026/a.csv", mappings) == (2, mappings[2])


def test_route_ignores_mappings_of_other_sources() -> None:
    mappings = [_mapping("bucket", "*.csv", "buck-0001"), _mapping("drop", "*.csv", "drop-0001")]
    assert route("drop", "a.csv", mappings) == (1, mappings[1])


def test_route_no_match_returns_none() -> None:
    assert route("drop", "notes.txt", [_mapping("drop", "*.csv")]) is None
    assert route("drop", "a.csv", []) is None


def _candidate(path: str, size: int = 1) -> Candidate:
    return Candidate("drop", path, size, 5, f"file:{path}:{size}:5")


def test_unmatched_log_reports_each_identity_once(caplog: pytest.LogCaptureFixture) -> None:
    log = UnmatchedLog()
    with caplog.at_level(logging.WARNING, logger="dsmsyncd.daemon.routing"):
        assert log.first_time(_candidate("notes.txt")) is True
        assert log.first_time(_candidate("notes.txt")) is False
        assert log.first_time(_candidate("notes.txt", size=2)) is True  # rewritten
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "notes.txt matches no mapping; left in place" in lines[0]
    assert 'source = "drop"' in lines[0]


def test_unmatched_log_memory_is_bounded() -> None:
    log = UnmatchedLog(capacity=3)
    for i in range(10):
        log.first_time(_candidate(f"f{i}.txt"))
    assert len(log) == 3
    assert log.first_time(_candidate("f9.txt")) is False
    assert log.first_time(_candidate("f0.txt")) is True  # long forgotten


def test_a_metadata_sidecar_routes_as_its_data_file_never_as_data() -> None:
    everything = _mapping("drop", "**")
    csv_only = _mapping("drop", "*.csv", "wxyz-9876")
    json_only = _mapping("drop", "*.json", "json-0001")
    assert route("drop", "p.csv.meta.json", [json_only, csv_only]) == (1, csv_only)
    assert route("drop", "p.txt.meta.json", [json_only, csv_only]) is None
    assert route("drop", "p.txt.meta.json", [everything]) == (0, everything)
