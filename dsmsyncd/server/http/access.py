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


def is_owner(user: Doc | None, view: Doc) -> bool:
    return user is not None and user["id"] == view.get("owner", {}).get("id")


def view_for_read(request: web.Request, fourfour: str) -> Doc:
    """The dataset's view document, if the caller may read it."""
    view = _live_view(request, fourfour)
    if view.get("permissions", {}).get("scope") == "public":
        return view
    user = caller(request)
    if user is None:
        raise unauthorized(f"dataset {fourfour} is private; sign in as its owner")
    if not is_owner(user, view):
        raise ApiError(403, f"dataset {fourfour} is private to its owner")
    return view


def view_for_write(request: web.Request, fourfour: str) -> tuple[Doc, Doc]:
    """The dataset's view document and the caller, if the caller owns the dataset."""
    user = require_caller(request)
    view = _live_view(request, fourfour)
    if not is_owner(user, view):
        raise ApiError(403, f"only the owner of dataset {fourfour} may change it")
    return view, user


def open_revision_for_write(request: web.Request, fourfour: str, seq: int) -> tuple[Doc, Doc]:
    """The revision and caller, if the caller owns the dataset and the revision is open."""
    _view, user = view_for_write(request, fourfour)
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
    view_for_write(request, fourfour)
    if write:
        revision = revisions.of_source(meta, doc)
        if revision is not None and revisions.is_closed(revision):
            raise revisions.closed_error(revision, source_id=source_id)
    return doc
