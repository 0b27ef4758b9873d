"""Published datasets: applying an output table to a dataset table.

A dataset table has one column per dataset column, named by its field name, plus the
system columns of ``system_columns.py``: ``__sid``, a stable internal row id (SODA
``:id`` and the default order), and the row's ``__created_at`` and ``__updated_at``.
A new row gets the apply's time in both; an upsert that matches a row keeps its
``__sid`` and ``__created_at`` and sets ``__updated_at``. An apply
runs in one DuckDB transaction: schema change first (DuckDB refuses DDL on a table
the same transaction has already written), then the row changes, so a reader sees the
old rows or the new ones, never half. A server killed mid-write leaves the old rows
(DuckDB's WAL replays only committed transactions).

The same transaction adds the revision to the apply log (``__applied_revisions``):
the metadata of an apply is published in the metastore (SQLite) only afterwards, so a
crash between the two commits leaves rows that the metastore does not know about yet.
The log tells an apply resumed after a restart that its rows are already in, so it
publishes without writing them twice.

Speed (a 1M-row apply should cost about one write of the rows):

* New rows get ``__sid = max(__sid) before the apply + 1 + __offset``: unique, in file
  order, and needing no sort (``row_number() OVER (ORDER BY …)`` sorted the whole
  row set). Row ids may leave gaps; nothing reads them as a count.
* The incoming rows are read straight from the output table; they are copied into a
  temporary table only when a row identifier repeats and the last one must win.
  Without a row identifier they are not counted first: the rows inserted are the
  usable rows, so the transforms run once per apply, not twice.
* When the output schema counted no error rows (``ApplyTarget.error_rows``), no row
  is tested for errors: an output table is a view over an input table that never
  changes (or a table written once), so the count stands, and the apply evaluates
  the values only, not every error expression once more (issue 9: a tenth of a
  1M-row apply's CPU with three transforms, a third with flights' guessed numbers).
* An upsert deletes the matched dataset rows and inserts the incoming ones with the
  matched rows' ``__sid`` (a hash join on the identifier), instead of an ``UPDATE`` of
  every column, which DuckDB carries out row by row and is several times slower.
  The dataset's columns are exactly the applied columns (``_reshape``), so replacing
  the whole row is what an update means. No index is kept: a hash join per apply is
  cheaper than maintaining an ART index over every row.

Reading a dataset's rows is ``datasets.py``. These functions block;
:class:`~dsmsyncd.server.storage.rowstore.RowStore` runs them in a worker thread with a
cursor of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Literal

import duckdb

from dsmsyncd.server import pause_points
from dsmsyncd.server.soql_types import (
    NUMBER_SQL_TYPE,
    SoqlType,
    double_to_number_sql,
    duckdb_type,
    number_text_sql,
)
from dsmsyncd.server.storage.output import any_error, error_column_count
from dsmsyncd.server.storage.sql import count, ident, table_columns
from dsmsyncd.server.storage.sql import table as qtable
from dsmsyncd.server.storage.system_columns import CREATED, SID, STORED, UPDATED, create_table_sql

ApplyAction = Literal["update", "replace", "delete"]

_INCOMING = "__apply_incoming"  # temporary: deduplicated incoming rows
_MATCHED = "__apply_matched"  # temporary: (__sid, identifier) of rows an upsert replaces
_KEPT = "__kept_updated_at"  # in _MATCHED: the row's __updated_at if no value changes
APPLY_LOG = "__applied_revisions"  # one row per revision whose rows were committed
# duckdb_columns() spells some types differently from CREATE TABLE.
_TYPE_ALIASES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


class ApplyRefused(Exception):
    """The apply cannot be carried out as asked; the message says why and what to do."""


@dataclass(frozen=True)
class AppliedColumn:
    field_name: str
    soql_type: SoqlType
    source_index: int  # reads v{source_index} of the output table


@dataclass(frozen=True)
class ApplyTarget:
    """Which rows go where, and on behalf of which revision and task set."""

    dataset_table: str
    output_table: str
    revision_id: int
    task_set_id: int
    # Rows of the output table with an error cell, as its output schema counted them;
    # 0 spares the apply a test of every error expression of every row (None: unknown).
    error_rows: int | None = None
    # Rows of the output table, as its output schema counted them: an apply without a
    # row identifier need not count them again (None: unknown).
    rows: int | None = None


@dataclass(frozen=True)
class ApplyStats:
    created: int
    updated: int
    deleted: int
    errors: int  # rows left out: an error cell, or no row-identifier value
    total_rows_after: int


def ensure_apply_log(cur: duckdb.DuckDBPyConnection) -> None:
    """Create the apply log (once per database; outside any apply's transaction)."""
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {APPLY_LOG} (revision_id BIGINT, task_set_id BIGINT, "
        "created BIGINT, updated BIGINT, deleted BIGINT, errors BIGINT, "
        "total_rows_after BIGINT, applied_at TIMESTAMP DEFAULT current_timestamp)"
    )


def applied_stats(cur: duckdb.DuckDBPyConnection, revision_id: int) -> ApplyStats | None:
    """What applying ``revision_id`` wrote, if its rows were committed; else None."""
    row = cur.execute(
        f"SELECT created, updated, deleted, errors, total_rows_after FROM {APPLY_LOG} "
        "WHERE revision_id = ?",
        [revision_id],
    ).fetchone()
    return None if row is None else ApplyStats(*(int(v) for v in row))


def apply(
    cur: duckdb.DuckDBPyConnection,
    target: ApplyTarget,
    columns: Sequence[AppliedColumn],
    action: ApplyAction,
    row_identifier: str | None,
) -> ApplyStats:
    """Write a revision's rows in one transaction, at most once per revision.

    The transaction also records the revision in the apply log, so "rows committed"
    and "revision recorded" are one fact: a revision found there is not written
    again, and its recorded stats are returned (an apply resumed after a crash).
    """
    if action not in ("update", "replace", "delete"):
        raise ApplyRefused(f"unknown action {action!r}: use update, replace or delete")
    if action == "delete" and row_identifier is None:
        raise ApplyRefused(
            "delete needs a row identifier: mark one output column as the row identifier "
            "(is_primary_key) so the rows to delete can be matched"
        )
    names = [c.field_name for c in columns]
    if len(set(names)) != len(names) or set(names) & set(STORED):
        reserved = ", ".join(STORED)
        raise ApplyRefused(f"column field names must be unique and not {reserved}, got {names}")
    if row_identifier is not None and row_identifier not in names:
        raise ApplyRefused(f"row identifier {row_identifier!r} is not among the columns {names}")
    cur.execute("BEGIN TRANSACTION")
    try:
        existing = table_columns(cur, target.dataset_table)  # a look-up, not a statement
        if existing is None:
            cur.execute(create_table_sql(qtable(target.dataset_table)))
        done, base = _applied_or_base(cur, target)
        if done is not None:
            cur.execute("ROLLBACK")  # takes a table just created with it
            return done
        stats = _write_rows(cur, target, columns, action, row_identifier, existing or {}, base)
        cur.execute(
            f"INSERT INTO {APPLY_LOG} (revision_id, task_set_id, created, updated, deleted, "
            "errors, total_rows_after) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [target.revision_id, target.task_set_id, *astuple(stats)],
        )
        pause_points.pause_thread(pause_points.APPLY_BEFORE_COMMIT)
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return stats


def _applied_or_base(
    cur: duckdb.DuckDBPyConnection, target: ApplyTarget
) -> tuple[ApplyStats | None, tuple[int, int]]:
    """What the apply log holds for the revision (None: not applied yet), and the
    dataset's ``max(__sid)`` and row count before this apply, in one statement (issue
    9: two statements per small file before)."""
    row = cur.execute(
        "SELECT l.created, l.updated, l.deleted, l.errors, l.total_rows_after, d.base, "
        f"d.n FROM (SELECT coalesce(max(__sid), 0) AS base, count(*) AS n FROM "
        f"{qtable(target.dataset_table)}) d LEFT JOIN (SELECT * FROM {APPLY_LOG} WHERE "
        "revision_id = ?) l ON TRUE",
        [target.revision_id],
    ).fetchone()
    assert row is not None
    done = None if row[0] is None else ApplyStats(*(int(v) for v in row[:5]))
    return done, (int(row[5]), int(row[6]))


def _write_rows(
    cur: duckdb.DuckDBPyConnection,
    target: ApplyTarget,
    columns: Sequence[AppliedColumn],
    action: ApplyAction,
    row_identifier: str | None,
    existing: dict[str, str],
    base_and_rows: tuple[int, int],
) -> ApplyStats:
    """The row changes of one apply, inside the caller's transaction, into a dataset
    table of columns ``existing`` that held ``base_and_rows`` (``max(__sid)``, rows)."""
    names = [c.field_name for c in columns]
    ds = qtable(target.dataset_table)
    out = qtable(target.output_table)
    clean = "TRUE"
    if target.error_rows != 0:
        clean = f"NOT {any_error(error_column_count(cur, target.output_table))}"
    rid = ident(row_identifier) if row_identifier is not None else None
    if action != "delete":
        _reshape(cur, target.dataset_table, columns, existing)
    values = "".join(f", v{c.source_index} AS {ident(c.field_name)}" for c in columns)
    usable, id_value = clean, None
    if row_identifier is not None:
        id_value = f"v{columns[names.index(row_identifier)].source_index}"
        usable += f" AND {id_value} IS NOT NULL"
    kept: int | None = None
    distinct_ids: int | None = None
    if id_value is None:
        # Without an identifier the usable rows are just the rows inserted: counting
        # them first computed every transform of every row once more (issue 9: a
        # quarter of a flights-sized apply). A bare count skips the columns, but not
        # the binding of the view's transforms (a third of a small file's apply
        # statements): the output schema's own count is taken when there is one.
        total = target.rows if target.rows is not None else count(cur, out)
    else:
        total, kept, distinct_ids = _incoming_counts(cur, out, usable, id_value)
    incoming = f"(SELECT __offset{values} FROM {out} WHERE {usable})"
    copied = rid is not None and distinct_ids != kept
    if copied:
        assert rid is not None
        incoming = _keep_last_per_identifier(cur, incoming, rid)
    created = updated = deleted = 0
    # The rows after follow from the rows before: every write below is this
    # transaction's, and an upsert's inserts count its matched rows back in.
    base, before = base_and_rows
    if action == "delete":
        assert rid is not None
        deleted = _changed(cur, f"DELETE FROM {ds} WHERE {rid} IN (SELECT {rid} FROM {incoming})")
    elif action == "replace":
        deleted = _changed(cur, f"DELETE FROM {ds}")
        created = _insert(cur, ds, names, incoming, base)
    elif rid is not None:
        assert distinct_ids is not None
        created, updated = _upsert(cur, ds, names, incoming, distinct_ids, rid, base)
    else:
        created = _insert(cur, ds, names, incoming, base)
    after = before + created - deleted
    if kept is None:
        kept = created
    # Temporary tables, made only when needed (they would go with the cursor, too).
    if copied:
        cur.execute(f"DROP TABLE IF EXISTS {_INCOMING}")
    if action == "update" and rid is not None:  # _upsert's
        cur.execute(f"DROP TABLE IF EXISTS {_MATCHED}")
    return ApplyStats(created, updated, deleted, total - kept, after)


def _reshape(
    cur: duckdb.DuckDBPyConnection,
    dataset_table: str,
    columns: Sequence[AppliedColumn],
    present: dict[str, str],
) -> None:
    """Make the dataset's columns (``present``) exactly ``columns``, keeping data of
    surviving names."""
    ds = qtable(dataset_table)
    existing = {name: kind for name, kind in present.items() if name not in STORED}
    wanted = {c.field_name for c in columns}
    for name in existing:
        if name not in wanted:
            cur.execute(f"ALTER TABLE {ds} DROP COLUMN {ident(name)}")
    for col in columns:
        kind = duckdb_type(col.soql_type)
        name = ident(col.field_name)
        if col.field_name not in existing:
            cur.execute(f"ALTER TABLE {ds} ADD COLUMN {name} {kind}")
        elif existing[col.field_name] != _TYPE_ALIASES.get(kind, kind):
            using = _cast(name, existing[col.field_name], kind)
            cur.execute(f"ALTER TABLE {ds} ALTER COLUMN {name} SET DATA TYPE {kind} USING {using}")


def _cast(name: str, old: str, new: str) -> str:
    """Convert stored values on a type change; to text they read as on the wire."""
    if old == "DOUBLE":  # a number stored before numbers were decimals
        return double_to_number_sql(name) if new == NUMBER_SQL_TYPE else f"CAST({name} AS VARCHAR)"
    if new == "VARCHAR" and old == NUMBER_SQL_TYPE:
        return number_text_sql(name)
    if new == "VARCHAR" and old == "TIMESTAMP":
        return f"strftime({name}, '%Y-%m-%dT%H:%M:%S')"
    return f"TRY_CAST({name} AS {new})"


def _incoming_counts(
    cur: duckdb.DuckDBPyConnection, out: str, usable: str, id_value: str | None
) -> tuple[int, int, int | None]:
    """(output rows, usable rows, distinct identifiers among those) in one scan.

    ``id_value`` is the output column holding the row identifier, if there is one.
    """
    distinct = "NULL"
    if id_value is not None:
        distinct = f"count(DISTINCT {id_value}) FILTER (WHERE {usable})"
    row = cur.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {usable}), {distinct} FROM {out}"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), None if row[2] is None else int(row[2])


def _keep_last_per_identifier(cur: duckdb.DuckDBPyConnection, incoming: str, rid: str) -> str:
    """Copy the incoming rows, keeping the last per identifier; returns the copy's name.

    Only called when an identifier repeats, so the common case copies nothing.
    """
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {_INCOMING} AS SELECT * FROM {incoming} "
        f"QUALIFY row_number() OVER (PARTITION BY {rid} ORDER BY __offset DESC) = 1"
    )
    return _INCOMING


def _insert(
    cur: duckdb.DuckDBPyConnection, ds: str, names: list[str], incoming: str, base: int
) -> int:
    """Append the incoming rows as new rows; ``__sid`` follows file order, unsorted."""
    cols = "".join(f", {ident(n)}" for n in names)
    return _changed(
        cur,
        f"INSERT INTO {ds} ({SID}, {CREATED}, {UPDATED}{cols}) SELECT {base} + 1 + __offset, "
        f"current_timestamp, current_timestamp{cols} FROM {incoming}",
    )


def _upsert(
    cur: duckdb.DuckDBPyConnection,
    ds: str,
    names: list[str],
    incoming: str,
    incoming_rows: int,
    rid: str,
    base: int,
) -> tuple[int, int]:
    """Replace rows whose identifier matches (keeping ``__sid`` and ``__created_at``),
    append the rest.

    ``incoming`` holds ``incoming_rows`` rows, one per identifier. Returns (created,
    updated), ``updated`` counting incoming rows that matched. A dataset row can share
    its identifier with others (rows appended without one); each keeps its ``__sid``
    and takes the new values, as an ``UPDATE`` would do. A matched row whose values
    are all the same keeps its ``__updated_at``: as on a hosted site, ``:updated_at``
    says when a row last really changed, so re-sending a whole file marks only the rows
    that differ.
    """
    cols = "".join(f", {ident(n)}" for n in names)
    same = " AND ".join(f"d.{ident(x)} IS NOT DISTINCT FROM n.{ident(x)}" for x in names)
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {_MATCHED} AS SELECT d.{SID}, d.{CREATED}, d.{rid}, "
        f"CASE WHEN {same} THEN d.{UPDATED} END AS {_KEPT} "
        f"FROM {ds} d JOIN {incoming} n ON d.{rid} = n.{rid}"
    )
    matched_rows = count(cur, _MATCHED)
    if matched_rows == 0:
        return _insert(cur, ds, names, incoming, base), 0
    cur.execute(f"DELETE FROM {ds} WHERE __sid IN (SELECT __sid FROM {_MATCHED})")
    inserted = _changed(
        cur,
        f"INSERT INTO {ds} ({SID}, {CREATED}, {UPDATED}{cols}) "
        f"SELECT coalesce(m.{SID}, {base} + 1 + n.__offset), "
        f"coalesce(m.{CREATED}, current_timestamp), coalesce(m.{_KEPT}, current_timestamp)"
        f"{''.join(f', n.{ident(x)}' for x in names)} "
        f"FROM {incoming} n LEFT JOIN {_MATCHED} m ON m.{rid} = n.{rid}",
    )
    created = inserted - matched_rows
    return created, incoming_rows - created


def _changed(cur: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = cur.execute(sql).fetchone()
    return int(row[0]) if row else 0
