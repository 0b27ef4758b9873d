"""Revision documents: creating, finding and updating them (no HTTP here).

A revision is stored under its global integer ``id`` with the dataset fourfour as its
parent, in the wire shape of digest §1.1. Its task sets (apply jobs) are separate
documents (parent = revision id) embedded when the revision is served, so a job can
update its own status without rewriting the revision. ``_config`` holds the name of the
import config a revision was opened with (``configs.py`` reads it).

Internal keys: ``_discarded_at`` (when R6 closed it; an applied revision has none),
``_restored_from`` (the ``revision_seq`` a restore copied it from).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, get_args

from dsmsyncd.server.catalog import sources
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.catalog.users import creator_ref
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.fields import optional_dict, optional_int, optional_str
from dsmsyncd.server.storage.apply import ApplyAction

# What an apply does with the rows (update, replace, delete): the row store's own list.
ACTION_TYPES: tuple[str, ...] = get_args(ApplyAction)
PERMISSIONS = ("public", "private")
TERMINAL_STATUSES = frozenset({"successful", "failure"})


def find(meta: MetaStore, fourfour: str, seq: int) -> Doc | None:
    return meta.child_where(Kind.REVISION, fourfour, "revision_seq", seq)


def get(meta: MetaStore, fourfour: str, seq: int) -> Doc:
    revision = find(meta, fourfour, seq)
    if revision is None:
        raise not_found("revision", f"{fourfour}/{seq}")
    return revision


def of_source(meta: MetaStore, source: Doc) -> Doc | None:
    """The revision a source belongs to (``None`` for a standalone source)."""
    if source.get("_fourfour") is None:
        return None
    return find(meta, source["_fourfour"], int(source["_revision_seq"]))


def ref(revision: Doc) -> str:
    """``fourfour/seq``, how messages name a revision."""
    return f"{revision['fourfour']}/{revision['revision_seq']}"


def closed_error(revision: Doc, *, source_id: int | None = None) -> ApiError:
    """The 409 for a write to a closed (applied or discarded) revision, or to its source."""
    if source_id is None:
        what = f"revision {ref(revision)} is closed (applied or discarded)"
    else:
        what = f"source {source_id} belongs to closed revision {ref(revision)}"
    return ApiError(409, f"{what}; open a new revision", key="revision_closed")


def is_closed(revision: Doc) -> bool:
    return revision.get("closed_at") is not None


def parse_action(raw: Any, *, default_type: str | None = "update") -> dict[str, Any]:
    """``action`` of a create/update body: ``{type, permission, schema}``, validated."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise bad_field("action", 'expected an object like {"type": "update"}')
    action_type = raw.get("type", default_type)
    if action_type not in ACTION_TYPES:
        raise bad_field("action.type", f"must be one of {', '.join(ACTION_TYPES)}")
    permission = raw.get("permission")
    if permission is not None and permission not in PERMISSIONS:
        raise bad_field("action.permission", "must be 'public', 'private' or null")
    return {"type": action_type, "permission": permission, "schema": None}


def parse_metadata(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_field("metadata", "expected an object")
    for key in ("name", "description", "category", "licenseId", "attribution"):
        optional_str(raw, key, where="metadata.")
    for key in ("metadata", "privateMetadata", "license"):
        optional_dict(raw, key, where="metadata.")
    tags = raw.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
    ):
        raise bad_field("metadata.tags", "expected an array of strings")
    return dict(raw)


def create(
    meta: MetaStore,
    fourfour: str,
    user: Doc,
    *,
    action: dict[str, Any],
    metadata: dict[str, Any],
    config: str | None = None,
    href: Any = None,
) -> Doc:
    """A new open revision on ``fourfour`` with the next sequence number."""
    last = meta.max_child_field(Kind.REVISION, fourfour, "revision_seq")
    seq = (-1 if last is None else last) + 1
    now = utcnow_iso()
    revision_id = meta.next_id(Kind.REVISION)
    revision: Doc = {
        "id": revision_id,
        "fourfour": fourfour,
        "revision_seq": seq,
        "action": action,
        "metadata": metadata,
        "output_schema_id": None,
        "blob_id": None,
        "task_sets": [],
        "created_at": now,
        "updated_at": now,
        "closed_at": None,
        "created_by": creator_ref(user),
        "notes": None,
        "href": href if href is not None else [],
        "attachments": [],
        "domain_id": 1,
        "creation_source": "dsmapi",
        "is_parent": bool(metadata.get("isParent", False)),
    }
    if config is not None:
        revision["_config"] = config
    return meta.put(Kind.REVISION, revision_id, revision, parent=fourfour, owner=user["id"])


def save(meta: MetaStore, revision: Doc) -> Doc:
    return meta.put(Kind.REVISION, revision["id"], revision)


def update(meta: MetaStore, revision: Doc, body: dict[str, Any]) -> Doc:
    """Apply a partial revision (R5); read-only keys in ``body`` are ignored.

    DSMUI sends the whole revision back with its edits, so unknown or server-owned
    keys (``id``, ``fourfour``, ``task_sets``, ``blob_id`` …) are skipped, not refused.
    """
    if "metadata" in body:
        incoming = parse_metadata(body["metadata"])
        merged = dict(revision.get("metadata") or {})
        merged.update(incoming)
        revision["metadata"] = merged
    if "output_schema_id" in body:
        osid = optional_int(body, "output_schema_id")
        if osid is not None:
            check_output_schema(meta, osid)
        revision["output_schema_id"] = osid
    if "notes" in body:
        revision["notes"] = optional_str(body, "notes")
    if "href" in body:
        revision["href"] = body["href"]
    if "action" in body:
        raw = body["action"]
        if not isinstance(raw, dict):
            raise bad_field("action", "expected an object")
        current = dict(revision["action"])
        merged_action = parse_action({**current, **raw}, default_type=current.get("type"))
        revision["action"] = merged_action
    revision["updated_at"] = utcnow_iso()
    return save(meta, revision)


def check_output_schema(meta: MetaStore, output_schema_id: int) -> None:
    """Refuse an ``output_schema_id`` that does not exist or whose rows cleanup removed.

    Such an output schema can no longer be applied, so it is refused when named.
    Only the fields asked are read, not the output schema (kilobytes of columns) nor
    its source decoded: every apply names one (issue 9).
    """
    found = meta.values(Kind.OUTPUT_SCHEMA, output_schema_id, "$._source_id")
    if found is None:
        raise bad_field("output_schema_id", f"output schema {output_schema_id} does not exist")
    removed = meta.values(Kind.SOURCE, found[0], f"$.{sources.REMOVED_AT}")
    if removed is not None and removed[0] is not None:
        raise bad_field("output_schema_id", f"output schema {output_schema_id}'s rows were removed")


def task_sets(meta: MetaStore, revision: Doc) -> list[Doc]:
    return meta.children(Kind.TASK_SET, revision["id"])


def running_task_set(meta: MetaStore, revision: Doc) -> Doc | None:
    for task_set in task_sets(meta, revision):
        if task_set.get("status") not in TERMINAL_STATUSES:
            return task_set
    return None


def was_applied(meta: MetaStore, revision: Doc) -> bool:
    return any(t.get("status") == "successful" for t in task_sets(meta, revision))


def close(meta: MetaStore, revision: Doc, *, discarded: bool = False) -> Doc:
    """Close a revision: applied, or (``discarded``) closed without applying (R6)."""
    now = utcnow_iso()
    revision["closed_at"] = now
    revision["updated_at"] = now
    if discarded:
        revision["_discarded_at"] = now
    return save(meta, revision)


def is_discarded(revision: Doc) -> bool:
    return revision.get("_discarded_at") is not None


def restorable_until(revision: Doc, keep_seconds: float) -> dt.datetime | None:
    """Until when a closed revision can be restored (R12); ``None``: for as long as its
    dataset exists (an applied revision: its files are the dataset's history).

    The one rule of the archive: a discarded revision stays restorable for
    ``keep_seconds`` after it was discarded (``dsmsyncd serve --keep-discarded``),
    and cleanup keeps its files exactly that long (``jobs/cleanup.py``).
    """
    if not is_discarded(revision):
        return None
    return dt.datetime.fromisoformat(str(revision["_discarded_at"])) + dt.timedelta(
        seconds=keep_seconds
    )


def restored(meta: MetaStore, old: Doc, user: Doc) -> Doc:
    """A new open revision with a closed one's action, metadata, notes and links (R12)."""
    new = create(
        meta,
        old["fourfour"],
        user,
        action=dict(old["action"]),
        metadata=dict(old.get("metadata") or {}),
        href=old.get("href"),
    )
    new["notes"] = old.get("notes")
    new["_restored_from"] = old["revision_seq"]
    return save(meta, new)


def delete_all(meta: MetaStore, fourfour: str) -> None:
    """Remove every revision of a dataset and their task sets (dataset deletion)."""
    for revision in meta.children(Kind.REVISION, fourfour):
        for task_set in task_sets(meta, revision):
            meta.delete(Kind.TASK_SET, task_set["id"])
        meta.delete(Kind.REVISION, revision["id"])
