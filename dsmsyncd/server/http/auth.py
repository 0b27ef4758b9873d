"""Who is calling, and may they do this.

Users live in the metastore (kind ``user``, id shaped like a fourfour). A user signs
in with HTTP Basic ``name:password``; an API key id/secret pair is the same thing on
the wire (digest §4), so a key is simply a user's name and password. API tokens are
sent as ``Authorization: OAuth <token>`` (what the Socrata docs say) or ``Bearer
<token>`` (what most clients send); both are accepted. ``X-App-Token`` and
``$$app_token`` are throttling hints, accepted and ignored.

Secrets are never stored or logged in clear: passwords are hashed with scrypt and a
per-user salt, tokens (random, high-entropy) with SHA-256. Verifying scrypt costs tens
of milliseconds, and the SDK polls once a second with Basic credentials, so a verified
credential is remembered (by its SHA-256, next to the stored hash it matched, so that
changing the password invalidates it). An unknown name is checked against a dummy
hash with the same parameters, so both refusals cost the same hash work and the
timing of a 401 does not tell which names exist.

Access rules, applied by the helpers below:

* any write (a method other than GET/HEAD/OPTIONS) needs credentials → else 401 with
  ``WWW-Authenticate: Basic realm="dsmsyncd"``; wrong credentials are 401 on any request;
* a private dataset is readable by its owner only: 401 for an anonymous caller, 403 for
  another user. (Choosing 403 over 404 tells others that the id exists; on a local
  server the clearer error is worth more than hiding a random id.)
* writes to a dataset (revisions, apply, delete) are for its owner only → 403.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dsmsyncd.server.catalog import views
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.errors import ApiError, not_found
from dsmsyncd.server.http.bodies import json_reply, public
from dsmsyncd.server.ids import unique_fourfour
from dsmsyncd.server.state import STATE

USER_KEY: web.RequestKey[Doc | None] = web.RequestKey("dsmsyncd_user", dict)
REALM = 'Basic realm="dsmsyncd"'
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return {"alg": "scrypt", **_SCRYPT, "salt": salt.hex(), "hash": digest.hex()}


def _verify_password(password: str, stored: dict[str, Any]) -> bool:
    digest = hashlib.scrypt(
        password.encode(),
        salt=bytes.fromhex(stored["salt"]),
        n=int(stored["n"]),
        r=int(stored["r"]),
        p=int(stored["p"]),
    )
    return hmac.compare_digest(digest.hex(), stored["hash"])


@functools.cache
def _dummy_hash() -> dict[str, Any]:
    """A hash no password matches, with the real parameters (made once per process)."""
    return hash_password(secrets.token_urlsafe(18))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_user(meta: MetaStore, name: str) -> Doc | None:
    """A user by sign-in name (there are few users; a scan is fine)."""
    for user in meta.all(Kind.USER):
        if user.get("screenName") == name:
            return user
    return None


def ensure_user(
    meta: MetaStore,
    name: str,
    password: str,
    *,
    display_name: str | None = None,
    email: str | None = None,
) -> Doc:
    """Create the user, or set its password if it exists (idempotent at startup)."""
    user = find_user(meta, name)
    if user is None:
        user_id = unique_fourfour(lambda ff: meta.get(Kind.USER, ff) is not None)
        user = {
            "id": user_id,
            "screenName": name,
            "displayName": display_name or name,
            "email": email or f"{name}@localhost",
            "roleName": "publisher",
            "createdAt": utcnow_iso(),
            "_tokens": [],
        }
    user["_password"] = hash_password(password)
    return meta.put(Kind.USER, user["id"], user, owner=user["id"])


def add_token(meta: MetaStore, name: str, token: str) -> Doc:
    """Let ``token`` act as user ``name``; the user must exist."""
    user = find_user(meta, name)
    if user is None:
        raise KeyError(f"cannot add a token for unknown user {name!r}")
    hashes = list(user.get("_tokens", []))
    if _token_hash(token) not in hashes:
        hashes.append(_token_hash(token))
    user["_tokens"] = hashes
    return meta.put(Kind.USER, user["id"], user)


def creator_ref(user: Doc) -> dict[str, Any]:
    """The ``created_by`` object of DSMAPI resources."""
    return {
        "user_id": user["id"],
        "display_name": user.get("displayName"),
        "email": user.get("email"),
    }


class Authenticator:
    """Turns an ``Authorization`` header into a user document (or a 401)."""

    def __init__(self, meta: MetaStore) -> None:
        self._meta = meta
        # sha256(name \0 password) -> the stored scrypt hash it was verified against
        self._verified: dict[str, str] = {}
        _dummy_hash()  # at start, so that the first unknown name is not faster or slower

    async def authenticate(self, header: str | None) -> Doc | None:
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            return await self._basic(value)
        if scheme in ("oauth", "bearer"):
            return self._token(value)
        raise _unauthorized(f"unsupported authorization scheme '{scheme}'; use Basic or OAuth")

    async def _basic(self, value: str) -> Doc:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _unauthorized("malformed Basic credentials") from exc
        name, sep, password = decoded.partition(":")
        if not sep:
            raise _unauthorized("malformed Basic credentials: expected name:password")
        user = find_user(self._meta, name)
        if user is None or "_password" not in user:
            # Same scrypt work as a wrong password, so that the answer's timing does not
            # tell which names exist.
            await asyncio.to_thread(_verify_password, password, _dummy_hash())
            raise _unauthorized("invalid username or password")
        stored = user["_password"]
        key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        if self._verified.get(key) == stored["hash"]:
            return user
        if not await asyncio.to_thread(_verify_password, password, stored):
            raise _unauthorized("invalid username or password")
        self._verified[key] = stored["hash"]
        return user

    def _token(self, token: str) -> Doc:
        digest = _token_hash(token)
        for user in self._meta.all(Kind.USER):
            if any(hmac.compare_digest(digest, h) for h in user.get("_tokens", [])):
                return user
        raise _unauthorized("invalid API token")


AUTH: web.AppKey[Authenticator] = web.AppKey("dsmsyncd_auth", Authenticator)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, key="authentication_required")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller once per request; refuse anonymous writes."""
    user = await request.app[AUTH].authenticate(request.headers.get("Authorization"))
    request[USER_KEY] = user
    if user is None and request.method not in _SAFE_METHODS:
        raise _unauthorized("this request changes data and needs credentials")
    return await handler(request)


def caller(request: web.Request) -> Doc | None:
    return request.get(USER_KEY)


def require_caller(request: web.Request) -> Doc:
    user = caller(request)
    if user is None:
        raise _unauthorized("this request needs credentials")
    return user


def _live_view(request: web.Request, fourfour: str) -> Doc:
    view = request.app[STATE].meta.get(Kind.VIEW, fourfour)
    if view is None or views.is_expired(view):
        raise not_found("dataset", fourfour)
    return view


def view_for_read(request: web.Request, fourfour: str) -> Doc:
    """The dataset's view document, if the caller may read it."""
    view = _live_view(request, fourfour)
    if view.get("permissions", {}).get("scope") == "public":
        return view
    user = caller(request)
    if user is None:
        raise _unauthorized(f"dataset {fourfour} is private; sign in as its owner")
    if user["id"] != view.get("owner", {}).get("id"):
        raise ApiError(403, f"dataset {fourfour} is private to its owner")
    return view


def view_for_write(request: web.Request, fourfour: str) -> tuple[Doc, Doc]:
    """The dataset's view document and the caller, if the caller owns the dataset."""
    user = require_caller(request)
    view = _live_view(request, fourfour)
    if user["id"] != view.get("owner", {}).get("id"):
        raise ApiError(403, f"only the owner of dataset {fourfour} may change it")
    return view, user


def user_public(user: Doc) -> dict[str, Any]:
    return public(user)


async def current_user(request: web.Request) -> web.Response:
    return json_reply(user_public(require_caller(request)))


def register(app: web.Application) -> None:
    app[AUTH] = Authenticator(app[STATE].meta)
    app.router.add_get("/api/users/current.json", current_user)
    app.router.add_get("/api/users/current", current_user)
