"""Revision documents: creating, finding and updating them (no HTTP here).

A revision is stored under its global integer ``id`` with the dataset fourfour as its
parent, in the wire shape of digest §1.1. Its task sets (apply jobs) are separate
documents (parent = revision id) embedded when the revision is served, so a job can
update its own status without rewriting the revision. ``_config`` holds the import
config a revision was opened with; the sources routes read it.
"""

from __future__ import annotations

from typing import Any

from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.http.auth import creator_ref
from dsmsyncd.server.http.bodies import optional_dict, optional_int, optional_str, public

ACTION_TYPES = ("update", "replace", "delete")
PERMISSIONS = ("public", "private")
TERMINAL_STATUSES = frozenset({"successful", "failure"})


def find(meta: MetaStore, fourfour: str, seq: int) -> Doc | None:
    for rev in meta.children(Kind.REVISION, fourfour):
        if rev.get("revision_seq") == seq:
            return rev
    return None


def get(meta: MetaStore, fourfour: str, seq: int) -> Doc:
    revision = find(meta, fourfour, seq)
    if revision is None:
        raise not_found("revision", f"{fourfour}/{seq}")
    return revision


def parse_seq(text: str) -> int:
    if not text.isdigit():
        raise ApiError(404, f"revision sequence number must be an integer, not {text!r}")
    return int(text)


def task_sets(meta: MetaStore, revision: Doc) -> list[Doc]:
    return [public(t) for t in meta.children(Kind.TASK_SET, revision["id"])]


def resource(meta: MetaStore, revision: Doc) -> dict[str, Any]:
    """The wire revision, with its task sets embedded (DSMUI polls those)."""
    out = public(revision)
    out["task_sets"] = task_sets(meta, revision)
    return out


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
    existing = meta.children(Kind.REVISION, fourfour)
    seq = max((int(r["revision_seq"]) for r in existing), default=-1) + 1
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
        if osid is not None and meta.get(Kind.OUTPUT_SCHEMA, osid) is None:
            raise bad_field("output_schema_id", f"output schema {osid} does not exist")
        if osid is not None and output_schema_removed(meta, osid):
            raise bad_field("output_schema_id", f"output schema {osid}'s rows were removed")
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
    return meta.put(Kind.REVISION, revision["id"], revision)


def output_schema_removed(meta: MetaStore, output_schema_id: int) -> bool:
    """Whether cleanup removed the rows behind an output schema (``cleanup.py``).

    Such an output schema can no longer be applied, so it is refused when named.
    """
    doc = meta.get(Kind.OUTPUT_SCHEMA, output_schema_id)
    source = meta.get(Kind.SOURCE, doc["_source_id"]) if doc else None
    return source is not None and source.get("_removed_at") is not None


def running_task_set(meta: MetaStore, revision: Doc) -> Doc | None:
    for task_set in meta.children(Kind.TASK_SET, revision["id"]):
        if task_set.get("status") not in TERMINAL_STATUSES:
            return task_set
    return None


def was_applied(meta: MetaStore, revision: Doc) -> bool:
    return any(
        t.get("status") == "successful" for t in meta.children(Kind.TASK_SET, revision["id"])
    )


def close(meta: MetaStore, revision: Doc) -> Doc:
    now = utcnow_iso()
    revision["closed_at"] = now
    revision["updated_at"] = now
    return meta.put(Kind.REVISION, revision["id"], revision)


def delete_all(meta: MetaStore, fourfour: str) -> None:
    """Remove every revision of a dataset and their task sets (dataset deletion)."""
    for revision in meta.children(Kind.REVISION, fourfour):
        for task_set in meta.children(Kind.TASK_SET, revision["id"]):
            meta.delete(Kind.TASK_SET, task_set["id"])
        meta.delete(Kind.REVISION, revision["id"])
