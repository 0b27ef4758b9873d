"""Source documents: creating them, finding them, and deciding who may touch them.

A source either belongs to a revision (then the dataset's owner may use it, and only
while the revision is open, for writes) or stands alone after ``POST /source`` (then
only its creator may use it until it is attached with ``add_to_revision``). Drafts are
visible to their editors only, so reads follow the same rule as writes: 401 for an
anonymous caller, 403 for anyone else.

Internal keys on a source document: ``_fourfour``/``_revision_seq`` (the revision it
belongs to), ``_owner`` (creator's user id), ``_path`` (the complete bytes, once they
exist).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dsmsyncd.server.catalog import revisions
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.http import auth
from dsmsyncd.server.state import STATE
from dsmsyncd.server.storage.ingest import ParseOptions

SOURCE_TYPES = frozenset({"upload", "view", "url", "connection_agent", "gateway"})


def revision_key(fourfour: str, seq: int) -> str:
    return f"{fourfour}:{seq}"


def save_revision(meta: MetaStore, revision: Doc) -> None:
    meta.put(Kind.REVISION, revision["id"], revision)


def parse_id(text: str, what: str) -> int:
    if not text.isdigit():
        raise not_found(what, text)
    return int(text)


def open_revision_for_write(request: web.Request, fourfour: str, seq: int) -> tuple[Doc, Doc]:
    """The revision and caller, if the caller owns the dataset and the revision is open."""
    _view, user = auth.view_for_write(request, fourfour)
    revision = revisions.find(request.app[STATE].meta, fourfour, seq)
    if revision is None:
        raise not_found("revision", f"{fourfour}/{seq}")
    if revision.get("closed_at") is not None:
        raise ApiError(
            409,
            f"revision {fourfour}/{seq} is closed (applied or discarded); open a new revision",
            key="revision_closed",
        )
    return revision, user


def normalise_parse_options(raw: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """All eight parse options, ``raw`` laid over ``base`` (or the defaults)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise bad_field("parse_options", "expected an object")
    merged = {**(base or {}), **raw}
    try:
        return ParseOptions.from_json(merged).to_json()
    except (ValueError, TypeError) as exc:
        raise bad_field("parse_options", str(exc)) from exc


def normalise_source_type(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {"type": "upload", "filename": None}
    if not isinstance(raw, dict):
        raise bad_field("source_type", 'expected an object such as {"type": "upload"}')
    kind = raw.get("type", "upload")
    if kind not in SOURCE_TYPES:
        raise bad_field("source_type.type", f"unknown source type {kind!r}")
    result = dict(raw)
    result["type"] = kind
    if kind == "upload":
        result["filename"] = basename(result.get("filename"))
    return result


def basename(filename: Any) -> str | None:
    """The SDK sends the path it opened (``test/fixtures/simple.csv``); keep the name."""
    if not isinstance(filename, str) or not filename:
        return None
    return filename.replace("\\", "/").rsplit("/", 1)[-1] or None


def new_source(
    meta: MetaStore,
    user: Doc,
    source_type: dict[str, Any],
    parse_options: dict[str, Any],
    revision: Doc | None,
) -> Doc:
    source_id = meta.next_id(Kind.SOURCE)
    doc: Doc = {
        "id": source_id,
        "source_type": source_type,
        "parse_options": parse_options,
        "content_type": None,
        "filesize": None,
        "created_at": utcnow_iso(),
        "created_by": auth.creator_ref(user),
        "finished_at": None,
        "failed_at": None,
        "failure_details": None,
        "schemas": [],
        "_owner": user["id"],
        "_fourfour": None,
        "_revision_seq": None,
        "_path": None,
    }
    return attach(meta, doc, revision)


def attach(meta: MetaStore, doc: Doc, revision: Doc | None) -> Doc:
    """Record the revision a source belongs to (``None`` leaves it standalone)."""
    parent = None
    if revision is not None:
        doc["_fourfour"] = revision["fourfour"]
        doc["_revision_seq"] = revision["revision_seq"]
        parent = revision_key(revision["fourfour"], revision["revision_seq"])
    return meta.put(Kind.SOURCE, doc["id"], doc, parent=parent, owner=doc["_owner"])


def save(meta: MetaStore, doc: Doc) -> Doc:
    return meta.put(Kind.SOURCE, doc["id"], doc)


def revision_sources(meta: MetaStore, fourfour: str, seq: int) -> list[Doc]:
    return meta.children(Kind.SOURCE, revision_key(fourfour, seq))


def source_revision(meta: MetaStore, doc: Doc) -> Doc | None:
    if doc.get("_fourfour") is None:
        return None
    return revisions.find(meta, doc["_fourfour"], int(doc["_revision_seq"]))


def source_for(request: web.Request, source_id: int, *, write: bool = False) -> Doc:
    """The source, if the caller may use it (see the module docstring)."""
    meta = request.app[STATE].meta
    doc = meta.get(Kind.SOURCE, source_id)
    if doc is None:
        raise not_found("source", source_id)
    user = auth.require_caller(request)
    fourfour = doc.get("_fourfour")
    if fourfour is None:
        if user["id"] != doc.get("_owner"):
            raise ApiError(403, f"source {source_id} belongs to another user")
        return doc
    auth.view_for_write(request, fourfour)
    if write:
        revision = source_revision(meta, doc)
        if revision is not None and revision.get("closed_at") is not None:
            raise ApiError(
                409,
                f"source {source_id} belongs to closed revision {fourfour}/"
                f"{doc['_revision_seq']}; open a new revision",
                key="revision_closed",
            )
    return doc


def failure(key: str, message: str) -> dict[str, Any]:
    return {"key": key, "message": message}


def is_settled(meta: MetaStore, doc: Doc) -> bool:
    """Whether nothing is left to stop: bytes in and, if it is parsed, the parse done."""
    if doc.get("failed_at") is not None or doc.get("finished_at") is None:
        return False
    if doc["source_type"].get("type") == "view":
        return True  # loaded while its create request waited
    if not doc.get("_path"):
        return False
    if not doc["parse_options"].get("parse_source", True):
        return True  # a blob: stored as it is, never parsed
    return bool(meta.children(Kind.INPUT_SCHEMA, doc["id"]))


def stop_unsettled(meta: MetaStore, sources: list[Doc], key: str, message: str) -> list[int]:
    """Fail each source whose upload or parse is still going on; their ids.

    Marking the source failed is what stops the work: a chunk or body still arriving
    is refused at its next piece, and a parse drops its table when it returns
    (``processing.parse_source``). A client polling the source sees ``failed_at``
    and stops waiting, instead of polling a source that will never be parsed.
    """
    stopped = []
    for doc in sources:
        if doc.get("failed_at") is None and not is_settled(meta, doc):
            doc["failed_at"] = utcnow_iso()
            doc["failure_details"] = failure(key, message)
            save(meta, doc)
            stopped.append(int(doc["id"]))
    return stopped
