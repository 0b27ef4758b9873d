"""Source documents: creating, attaching, settling and removing them (no HTTP here).

A source either belongs to a revision or stands alone after ``POST /source`` until it
is attached with ``add_to_revision``; who may use it is ``http/access.py``.

Internal keys on a source document: ``_fourfour``/``_revision_seq`` (the revision it
belongs to), ``_owner`` (creator's user id), ``_path`` (the complete bytes, once they
exist), ``_removed_at``/``_removed_because`` (cleanup removed its bytes and rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.catalog.users import creator_ref
from dsmsyncd.server.errors import ApiError, bad_field
from dsmsyncd.server.storage.parse_options import InvalidParseOption, ParseOptions

SOURCE_TYPES = frozenset({"upload", "view", "url", "connection_agent", "gateway"})
# Source kinds that need a service this server does not have: they fail when created,
# so a client polling them stops at once instead of waiting out its whole timeout.
AGENT_SOURCE_TYPES = frozenset({"connection_agent", "gateway"})
FETCHABLE_SCHEMES = ("http", "https")
REMOVED_KEY = "source_removed"
REMOVED_AT = "_removed_at"  # set when cleanup removed the bytes and rows


def _revision_key(fourfour: str, seq: int) -> str:
    return f"{fourfour}:{seq}"


def normalise_parse_options(raw: Any, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """All eight parse options, ``raw`` laid over ``base`` (or the defaults), checked.

    The one rule for parse options, a source's and an import config's alike: a config's
    options become its sources' options, so a config never holds options that a source
    would refuse. Unknown keys are dropped; a bad option is a 400 that names it. The
    result is the stored form (a separator nobody chose stays null, see
    ``storage/parse_options.py``); the wire form is made when a reply is written.
    """
    if raw is not None and not isinstance(raw, dict):
        raise bad_field("parse_options", "expected an object or null")
    try:
        return ParseOptions.from_json({**(base or {}), **(raw or {})}).to_stored()
    except InvalidParseOption as exc:
        raise bad_field(f"parse_options.{exc.key}", str(exc)) from exc


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
    if kind == "url":
        result["url"] = fetchable_url(raw.get("url"))
        path = urlsplit(result["url"]).path
        result["filename"] = basename(result.get("filename")) or basename(unquote(path))
    return result


def fetchable_url(raw: Any) -> str:
    """The URL of a ``url`` source, refused unless it is http(s) with a host."""
    where = "source_type.url"
    if not isinstance(raw, str) or not raw.strip():
        raise bad_field(where, "a url source names the file to fetch, e.g. https://host/data.csv")
    url = raw.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise bad_field(where, f"not a URL: {exc}") from exc
    if parts.scheme.lower() not in FETCHABLE_SCHEMES:
        scheme = f"the {parts.scheme!r} scheme" if parts.scheme else "a URL without a scheme"
        raise bad_field(where, f"only http and https URLs can be fetched; {scheme} is refused")
    if not host:
        raise bad_field(where, f"the URL {url!r} names no host")
    return url


def fail_agent_source(meta: MetaStore, doc: Doc) -> Doc:
    """A connection agent (gateway) source fails as it is created: there is no agent here."""
    kind = doc["source_type"]["type"]
    return fail(
        meta,
        doc,
        "connection_agent_unavailable",
        f"the local server has no connection agent, so a {kind!r} source cannot be loaded "
        "here; upload the file instead (or give a url source its http(s) address)",
    )


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
        "created_by": creator_ref(user),
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
        parent = _revision_key(revision["fourfour"], revision["revision_seq"])
    return meta.put(Kind.SOURCE, doc["id"], doc, parent=parent, owner=doc["_owner"])


def save(meta: MetaStore, doc: Doc) -> Doc:
    return meta.put(Kind.SOURCE, doc["id"], doc)


def revision_sources(meta: MetaStore, fourfour: str, seq: int) -> list[Doc]:
    return meta.children(Kind.SOURCE, _revision_key(fourfour, seq))


def fail(meta: MetaStore, doc: Doc, key: str, message: str) -> Doc:
    """Mark a source failed now, with ``failure_details`` ``{key, message}``."""
    doc["failed_at"] = utcnow_iso()
    doc["failure_details"] = {"key": key, "message": message}
    return save(meta, doc)


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
    (``jobs/parse.py``). A client polling the source sees ``failed_at`` and stops
    waiting, instead of polling a source that will never be parsed.
    """
    stopped = []
    for doc in sources:
        if doc.get("failed_at") is None and not is_settled(meta, doc):
            fail(meta, doc, key, message)
            stopped.append(int(doc["id"]))
    return stopped


def is_removed(source: Doc) -> bool:
    """Whether cleanup removed the source's bytes and rows (``jobs/cleanup.py``)."""
    return source.get(REMOVED_AT) is not None


def refuse_if_removed(source: Doc) -> None:
    """410 for a read of rows or bytes that cleanup removed (the document itself stays)."""
    if is_removed(source):
        why = source.get("_removed_because") or "its revision was discarded"
        raise ApiError(
            410,
            f"source {source['id']} no longer has its uploaded file or rows: {why}; "
            "open a new revision and upload the file again",
            key=REMOVED_KEY,
        )
