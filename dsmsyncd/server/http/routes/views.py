"""Core-API view endpoints the SDK touches (§1.8); row reads are ``soda.py``.

``GET /api/views/{ff}`` answers the raw view JSON (no envelope); ``DELETE`` removes the
whole dataset: its view, its rows and its revisions.
"""

from __future__ import annotations

from aiohttp import web

from dsmsyncd.server.catalog import revisions, sources, views
from dsmsyncd.server.catalog.metastore import Kind
from dsmsyncd.server.http import access, auth
from dsmsyncd.server.http.bodies import json_reply
from dsmsyncd.server.jobs import cleanup
from dsmsyncd.server.state import STATE

# Query parameters that are not part of the query: the app token is a throttling hint.
_IGNORED_PARAMS = frozenset({"$$app_token"})


async def show_view(request: web.Request) -> web.Response:
    fourfour = request.match_info["fourfour"]
    view = access.view_for_read(request, fourfour)
    return json_reply(views.view_wire(view, for_owner=access.is_owner(auth.caller(request), view)))


async def delete_view(request: web.Request) -> web.Response:
    """Remove the dataset; running apply jobs fail when they find it gone.

    The documents go at once; rows and uploaded files go in the background once the
    applies already running on the dataset have ended (``cleanup.remove_dataset``).
    """
    fourfour = request.match_info["fourfour"]
    access.check_write(request, fourfour)
    state = request.app[STATE]
    meta = state.meta
    with meta.transaction():
        found = [
            source
            for revision in meta.children(Kind.REVISION, fourfour)
            for source in sources.revision_sources(meta, fourfour, int(revision["revision_seq"]))
        ]
        revisions.delete_all(meta, fourfour)
        meta.delete(Kind.VIEW, fourfour)
        claimed = cleanup.claim(meta, found, f"dataset {fourfour} was deleted")
    state.spawn(
        cleanup.remove_dataset(state, fourfour, claimed), name=f"cleanup-dataset-{fourfour}"
    )
    return json_reply({"id": fourfour, "deleted": True})


def register(app: web.Application) -> None:
    view = "/api/views/{fourfour:[^/.]+}"
    app.router.add_get(view, show_view)
    app.router.add_get(view + ".json", show_view)
    app.router.add_delete(view, delete_view)
