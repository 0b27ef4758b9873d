"""Revisions found by (dataset, seq) through the metastore's index, not by decoding them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsmsyncd.server.catalog import revisions, users
from dsmsyncd.server.catalog.metastore import Kind, MetaStore


def _revision(meta: MetaStore, revision_id: int, fourfour: str, seq: int) -> None:
    doc = {"id": revision_id, "fourfour": fourfour, "revision_seq": seq}
    meta.put(Kind.REVISION, revision_id, doc, parent=fourfour)


def test_revision_found_by_dataset_and_seq(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.sqlite")
    assert meta.max_child_field(Kind.REVISION, "aaaa-1111", "revision_seq") is None
    for seq in range(5):
        _revision(meta, 10 + seq, "aaaa-1111", seq)
    _revision(meta, 99, "bbbb-2222", 0)
    found = revisions.find(meta, "aaaa-1111", 3)
    assert found is not None
    assert found["id"] == 13
    assert revisions.find(meta, "aaaa-1111", 5) is None
    assert revisions.find(meta, "cccc-3333", 0) is None
    assert meta.max_child_field(Kind.REVISION, "aaaa-1111", "revision_seq") == 4
    assert meta.max_child_field(Kind.REVISION, "bbbb-2222", "revision_seq") == 0
    plan = meta._db.execute(
        "EXPLAIN QUERY PLAN SELECT doc FROM docs WHERE kind = 'revision' AND parent = ? "
        "AND json_extract(doc, '$.revision_seq') = ?",
        ("aaaa-1111", 3),
    ).fetchall()
    assert "USING INDEX docs_revision_seq" in str(plan)
    meta.close()


def test_only_indexed_fields_can_be_looked_up(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.sqlite")
    with pytest.raises(ValueError, match="source documents are not indexed by 'revision_seq'"):
        meta.child_where(Kind.SOURCE, "aaaa-1111", "revision_seq", 0)
    meta.close()


def test_a_user_is_found_by_name_without_decoding_the_others(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.sqlite")
    meta.put(Kind.USER, "aaaa-0001", {"id": "aaaa-0001", "screenName": "alice"})
    meta.put(Kind.USER, "aaaa-0002", {"id": "aaaa-0002", "screenName": 'bob "the" builder'})
    meta.put(Kind.USER, "aaaa-0003", {"id": "aaaa-0003", "screenName": "alice"})
    meta.put(Kind.VIEW, "aaaa-0004", {"id": "aaaa-0004", "screenName": "carol"})
    alice = users.find_user(meta, "alice")
    assert alice is not None
    assert alice["id"] == "aaaa-0001"  # the oldest of two with one name, as the scan did
    bob = users.find_user(meta, 'bob "the" builder')
    assert bob is not None
    assert bob["id"] == "aaaa-0002"
    assert users.find_user(meta, "carol") is None  # another kind's document
    assert users.find_user(meta, "Alice") is None
    meta.close()


def test_values_are_read_out_of_a_document_without_decoding_it_whole(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.sqlite")
    view = {
        "id": "aaaa-1111",
        "owner": {"id": "user-0001", "displayName": "alice"},
        "permissions": {"scope": "private"},
        "columns": [{"id": 1}],
        "_deleted_at": "2030-01-01T00:00:00+00:00",
    }
    meta.put(Kind.VIEW, "aaaa-1111", view)
    paths = ("$.owner.id", "$.permissions.scope", "$._deleted_at", "$.no_such_key")
    assert meta.values(Kind.VIEW, "aaaa-1111", *paths) == [
        "user-0001",
        "private",
        "2030-01-01T00:00:00+00:00",
        None,
    ]
    # One path, and values that are objects or arrays: as decoding the document gives them.
    assert meta.values(Kind.VIEW, "aaaa-1111", "$.owner") == [view["owner"]]
    assert meta.values(Kind.VIEW, "aaaa-1111", "$.columns", "$.id") == [[{"id": 1}], "aaaa-1111"]
    assert meta.values(Kind.VIEW, "bbbb-2222", "$.owner.id") is None
    assert meta.values(Kind.SOURCE, "aaaa-1111", "$.owner.id") is None  # another kind
    with pytest.raises(ValueError, match="values\\(\\) needs at least one path"):
        meta.values(Kind.VIEW, "aaaa-1111")
    meta.close()
