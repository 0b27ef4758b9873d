"""The README is part of the interface: its generated parts must match the code."""

from __future__ import annotations

from pathlib import Path

from dsmsyncd.server.transforms.doc_table import function_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_function_table_matches_catalogue() -> None:
    text = README.read_text(encoding="utf-8")
    assert function_table() in text, (
        "README's transform function table is stale: "
        "regenerate it with python -m dsmsyncd.server.transforms.doc_table"
    )


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8")[:1200]
    assert "make demo" in head
    assert "make test" in head
