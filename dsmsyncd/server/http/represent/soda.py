"""The response headers of a SODA read, as dev.socrata.com's "Response Codes & Headers"
lists them: ``X-SODA2-Fields`` and ``X-SODA2-Types`` (JSON arrays of the fields of the
reply and their SODA datatype names), ``Last-Modified`` and ``ETag``, and the 304 a
client that sends ``If-None-Match`` or ``If-Modified-Since`` gets when nothing changed.

The ETag covers what a reply depends on: the dataset's rows (``dataset_version``), its
view document's columns and modification times, the format and the query string. So a
cached reply is reused only while an identical read would give the same bytes.
``Last-Modified`` is the later of the view's ``rowsUpdatedAt`` and
``viewLastModified``, which have one-second resolution; a client that needs better
should use the ETag, which wins when both are sent (RFC 9110 §13.2.2).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import hdrs, web

from dsmsyncd.server.catalog.metastore import Doc
from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.soda_format import soda_type_name

CONTENT_TYPES = {
    "json": "application/json;charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "geojson": "application/vnd.geo+json;charset=utf-8",
}


@dataclass(frozen=True)
class Validators:
    etag: str
    last_modified: str  # an HTTP-date
    modified_at: dt.datetime

    def headers(self) -> dict[str, str]:
        return {hdrs.ETAG: self.etag, hdrs.LAST_MODIFIED: self.last_modified}


def validators(view: Doc, rows_version: str, fmt: str, query: Mapping[str, str]) -> Validators:
    """The ETag and Last-Modified of one read of ``view`` in format ``fmt``."""
    columns = [(c.get("fieldName"), c.get("dataTypeName")) for c in view.get("columns", [])]
    times = [view.get("rowsUpdatedAt"), view.get("viewLastModified"), view.get("createdAt")]
    seconds = max((int(t) for t in times if isinstance(t, int | float)), default=0)
    basis = json.dumps(
        [view.get("id"), rows_version, columns, seconds, fmt, sorted(query.items())],
        separators=(",", ":"),
    )
    digest = hashlib.sha256(basis.encode()).hexdigest()[:32]
    modified_at = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return Validators(
        f'"{digest}"', email.utils.format_datetime(modified_at, usegmt=True), modified_at
    )


def not_modified(request: web.Request, found: Validators) -> bool:
    """Whether the client's cached copy is current (answer 304).

    ``If-None-Match`` decides when present; otherwise ``If-Modified-Since``.
    """
    if_none_match = request.headers.get(hdrs.IF_NONE_MATCH)
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or found.etag in tags
    since = request.headers.get(hdrs.IF_MODIFIED_SINCE)
    if since is None:
        return False
    try:
        when = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as RFC 9110 §13.1.3 says
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return found.modified_at <= when


def field_headers(fields: Sequence[tuple[str, SoqlType]]) -> dict[str, str]:
    """``X-SODA2-Fields`` and ``X-SODA2-Types`` for the selected fields."""
    names = [name for name, _ in fields]
    types = [soda_type_name(kind) for _, kind in fields]
    return {
        "X-SODA2-Fields": json.dumps(names, separators=(",", ":")),
        "X-SODA2-Types": json.dumps(types, separators=(",", ":")),
    }
