"""May the caller do this: who may read and write datasets, revisions and sources.

* A private dataset is readable by its owner only: 401 for an anonymous caller, 403
  for another user. (Choosing 403 over 404 tells others that the id exists; on a local
  server the clearer error is worth more than hiding a random id.)
* Writes to a dataset (revisions, apply, delete) are for its owner only → 403.
* A source that belongs to a revision may be used by the dataset's owner, and written
  only while the revision is open; a standalone source (``POST /source``) only by its
  creator. Drafts are visible to their editors only, so reads of sources follow the
  same rule as writes: 401 for an anonymous caller, 403 for anyone else.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dsmsyncd.server.catalog import revisions, views
from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.errors import ApiError, not_found
from dsmsyncd.server.http.auth import caller, require_caller, unauthorized
from dsmsyncd.server.state import STATE


def _live_view(request: web.Request, fourfour: str) -> Doc:
    view = request.app[STATE].meta.get(Kind.VIEW, fourfour)
    if view is None or views.is_expired(view):
        raise not_found("dataset", fourfour)
    return view


# What deciding access takes from a view: its owner's id, its scope, when it expires.
_ACCESS_PATHS = ("$.owner.id", "$.permissions.scope", "$._deleted_at")


def _live_view_access(request: web.Request, fourfour: str) -> tuple[Any, Any]:
    """The owner's id and the scope of a live dataset, read without decoding its view
    (kilobytes of columns; most requests only ask who owns it, issue 9)."""
    found = request.app[STATE].meta.values(Kind.VIEW, fourfour, *_ACCESS_PATHS)
    if found is None or views.is_past_deleted_at(found[2]):
        raise not_found("dataset", fourfour)
    owner_id, scope, _deleted_at = found
    return owner_id, scope


def is_owner(user: Doc | None, view: Doc) -> bool:
    return _owns(user, view.get("owner", {}).get("id"))


def _owns(user: Doc | None, owner_id: Any) -> bool:
    return user is not None and user["id"] == owner_id


def _check_read(request: web.Request, fourfour: str, owner_id: Any, scope: Any) -> None:
    if scope == "public":
        return
    user = caller(request)
    if user is None:
        raise unauthorized(f"dataset {fourfour} is private; sign in as its owner")
    if not _owns(user, owner_id):
        raise ApiError(403, f"dataset {fourfour} is private to its owner")


def view_for_read(request: web.Request, fourfour: str) -> Doc:
    """The dataset's view document, if the caller may read it."""
    view = _live_view(request, fourfour)
    scope = view.get("permissions", {}).get("scope")
    _check_read(request, fourfour, view.get("owner", {}).get("id"), scope)
    return view


def check_read(request: web.Request, fourfour: str) -> None:
    """:func:`view_for_read` for a caller that needs the answer, not the view."""
    _check_read(request, fourfour, *_live_view_access(request, fourfour))


def check_write(request: web.Request, fourfour: str) -> Doc:
    """The caller, if the caller owns the dataset."""
    user = require_caller(request)
    owner_id, _scope = _live_view_access(request, fourfour)
    if not _owns(user, owner_id):
        raise ApiError(403, f"only the owner of dataset {fourfour} may change it")
    return user


def open_revision_for_write(request: web.Request, fourfour: str, seq: int) -> tuple[Doc, Doc]:
    """The revision and caller, if the caller owns the dataset and the revision is open."""
    user = check_write(request, fourfour)
    revision = revisions.get(request.app[STATE].meta, fourfour, seq)
    if revisions.is_closed(revision):
        raise revisions.closed_error(revision)
    return revision, user


def source_for(request: web.Request, source_id: int, *, write: bool = False) -> Doc:
    """The source, if the caller may use it (see the module docstring)."""
    meta = request.app[STATE].meta
    doc = meta.get(Kind.SOURCE, source_id)
    if doc is None:
        raise not_found("source", source_id)
    user = require_caller(request)
    fourfour = doc.get("_fourfour")
    if fourfour is None:
        if user["id"] != doc.get("_owner"):
            raise ApiError(403, f"source {source_id} belongs to another user")
        return doc
    check_write(request, fourfour)
    if write:
        revision = revisions.of_source(meta, doc)
        if revision is not None and revisions.is_closed(revision):
            raise revisions.closed_error(revision, source_id=source_id)
    return doc
