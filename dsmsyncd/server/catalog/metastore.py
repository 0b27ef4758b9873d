"""Metadata of the local server: revisions, sources, schemas, configs, views, users.

Each resource is stored as the JSON document the API serves (its ``resource`` part,
without links), keyed by kind and id, with a few indexed columns for lookups. Keeping
the wire shape as the stored shape means a field added to a resource needs no
migration, and what a client reads is what was written. By convention the top-level
keys that start with ``_`` are internal bookkeeping (``_config`` on a revision,
``_table`` on an output schema) and :func:`public` drops them before anything is
served. Only the top level is stripped: nested objects such as a dataset's custom
``metadata`` are user data and are returned exactly as sent.

Calls are synchronous on purpose: every operation is a sub-millisecond SQLite
statement on a WAL database, and running them on the event loop thread makes each
read-modify-write atomic with respect to other requests (no ``await`` can interleave
inside one). Row data lives elsewhere (DuckDB, ``rowstore.py``); bulk work never
touches this file.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

Doc = dict[str, Any]


class Kind(StrEnum):
    VIEW = "view"
    REVISION = "revision"
    SOURCE = "source"
    INPUT_SCHEMA = "input_schema"
    OUTPUT_SCHEMA = "output_schema"
    TRANSFORM = "transform"
    TASK_SET = "task_set"
    CONFIG = "config"
    USER = "user"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    parent TEXT,            -- fourfour for revisions/views, source id for input schemas, ...
    owner TEXT,             -- user id of the creator
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS docs_parent ON docs (kind, parent);
CREATE TABLE IF NOT EXISTS counters (kind TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS docs_revision_seq
    ON docs (parent, json_extract(doc, '$.revision_seq')) WHERE kind = 'revision';
"""

# Fields a child is found by (:meth:`MetaStore.child_where`), each with an expression
# index above: a dataset gains a revision per file dropped, and finding one by decoding
# every sibling was a fifth of the server's time per file after a hundred (issue 9).
_INDEXED_FIELDS = {Kind.REVISION: "revision_seq"}


# One encoder for every document written: ``json.dumps`` with a keyword builds a new
# encoder per call, which cost twice the encoding of a small document (issue 9).
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def utcnow_iso() -> str:
    """Timestamps as the protocol shows them: naive ISO 8601 in UTC, microseconds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


class MetaStore:
    """A small document store over one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        # Writes taken so far (puts and deletes): a check repeated on every piece of an
        # upload re-reads its document only when something was written since (issue 9:
        # the read per 256 KiB piece was a sixth of the server's chunk time).
        self.writes = 0
        self._writes_by_kind: dict[Kind, int] = dict.fromkeys(Kind, 0)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes so that a crash leaves all or none of them."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def next_id(self, kind: Kind) -> int:
        row = self._db.execute(
            "INSERT INTO counters (kind, value) VALUES (?, 1) "
            "ON CONFLICT (kind) DO UPDATE SET value = value + 1 RETURNING value",
            (kind.value,),
        ).fetchone()
        return int(row[0])

    def put(
        self,
        kind: Kind,
        key: str | int,
        doc: Doc,
        *,
        parent: str | int | None = None,
        owner: str | None = None,
    ) -> Doc:
        """Insert or replace a document; a None ``parent``/``owner`` keeps the old value."""
        self.writes += 1
        self._writes_by_kind[kind] += 1
        self._db.execute(
            "INSERT INTO docs (kind, id, parent, owner, doc) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET doc = excluded.doc, "
            "parent = COALESCE(excluded.parent, docs.parent), "
            "owner = COALESCE(excluded.owner, docs.owner)",
            (
                kind.value,
                str(key),
                None if parent is None else str(parent),
                owner,
                _ENCODER.encode(doc),
            ),
        )
        return doc

    def get(self, kind: Kind, key: str | int) -> Doc | None:
        row = self._db.execute(
            "SELECT doc FROM docs WHERE kind = ? AND id = ?", (kind.value, str(key))
        ).fetchone()
        return None if row is None else _load(row[0])

    def values(self, kind: Kind, key: str | int, *paths: str) -> list[Any] | None:
        """The values at JSON ``paths`` (``$.owner.id``) of one document (None where a path
        is absent), or None if there is no such document.

        SQLite picks them out of the stored text: a dataset's view document holds its
        columns, kilobytes, and decoding it whole on every request to check who owns it
        was a twentieth of the event loop's time per small file (issue 9).
        """
        if not paths:
            raise ValueError("values() needs at least one path")
        # Given two paths or more, json_extract answers a JSON array of their values;
        # given one, an SQL value (an object as text), so a lone path is asked twice.
        asked = paths if len(paths) > 1 else paths * 2
        marks = ", ".join("?" * len(asked))
        row = self._db.execute(
            f"SELECT json_extract(doc, {marks}) FROM docs WHERE kind = ? AND id = ?",
            (*asked, kind.value, str(key)),
        ).fetchone()
        if row is None:
            return None
        found: list[Any] = json.loads(row[0])
        return found[: len(paths)]

    def owner(self, kind: Kind, key: str | int) -> str | None:
        row = self._db.execute(
            "SELECT owner FROM docs WHERE kind = ? AND id = ?", (kind.value, str(key))
        ).fetchone()
        return None if row is None else row[0]

    def children(self, kind: Kind, parent: str | int) -> list[Doc]:
        """Documents of ``kind`` under ``parent``, oldest first (by insertion)."""
        rows = self._db.execute(
            "SELECT doc FROM docs WHERE kind = ? AND parent = ? ORDER BY rowid",
            (kind.value, str(parent)),
        ).fetchall()
        return [_load(r[0]) for r in rows]

    def child_where(self, kind: Kind, parent: str | int, field: str, value: int) -> Doc | None:
        """The oldest child of ``kind`` under ``parent`` whose ``field`` is ``value``."""
        where, expr = _indexed(kind, field)
        row = self._db.execute(
            f"SELECT doc FROM docs WHERE {where} AND {expr} = ? ORDER BY rowid LIMIT 1",
            (str(parent), value),
        ).fetchone()
        return None if row is None else _load(row[0])

    def max_child_field(self, kind: Kind, parent: str | int, field: str) -> int | None:
        """The largest ``field`` among the children of ``kind`` under ``parent``."""
        where, expr = _indexed(kind, field)
        row = self._db.execute(f"SELECT max({expr}) FROM docs WHERE {where}", (str(parent),))
        value = row.fetchone()[0]
        return None if value is None else int(value)

    def first_where(self, kind: Kind, field: str, value: str) -> Doc | None:
        """The oldest document of ``kind`` whose top-level ``field`` is ``value``.

        SQLite compares the field, so only the match is decoded: a user is found this
        way on every request, and decoding every user each time cost about 1 ms of the
        server's CPU per small file (six requests; cProfile, issue 9).
        """
        row = self._db.execute(
            "SELECT doc FROM docs WHERE kind = ? AND json_extract(doc, ?) = ? "
            "ORDER BY rowid LIMIT 1",
            (kind.value, f'$."{field}"', value),
        ).fetchone()
        return None if row is None else _load(row[0])

    def all(self, kind: Kind) -> list[Doc]:
        rows = self._db.execute(
            "SELECT doc FROM docs WHERE kind = ? ORDER BY rowid", (kind.value,)
        ).fetchall()
        return [_load(r[0]) for r in rows]

    def writes_of(self, kind: Kind) -> int:
        """Puts and deletes of ``kind`` taken so far: what was derived from such documents
        (the callers ``http/auth.py`` has signed in) holds while this has not moved."""
        return self._writes_by_kind[kind]

    def delete(self, kind: Kind, key: str | int) -> bool:
        self.writes += 1
        self._writes_by_kind[kind] += 1
        cur = self._db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind.value, str(key)))
        return cur.rowcount > 0


def _indexed(kind: Kind, field: str) -> tuple[str, str]:
    """The WHERE terms (kind as a literal, parent as ``?``) and the field's expression,
    spelled as the index on that field is, so that SQLite uses it."""
    if _INDEXED_FIELDS.get(kind) != field:
        raise ValueError(f"{kind.value} documents are not indexed by {field!r}")
    return f"kind = '{kind.value}' AND parent = ?", f"json_extract(doc, '$.{field}')"


def public(doc: Doc) -> Doc:
    """A stored document without its internal (``_``-prefixed) top-level keys."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _load(text: str) -> Doc:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise TypeError("metastore document is not a JSON object")
    return value
