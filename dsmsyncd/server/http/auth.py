"""Who is calling: the ``Authorization`` header turned into a user, once per request.

A user signs in with HTTP Basic ``name:password`` (an API key id/secret pair is the
same thing, digest §4). API tokens are sent as ``Authorization: OAuth <token>`` (what
the Socrata docs say) or ``Bearer <token>`` (what most clients send); both are
accepted. ``X-App-Token`` and ``$$app_token`` are throttling hints, accepted and
ignored. The users themselves, and how their secrets are stored, are
``catalog/users.py``; what a caller may do is ``access.py``.

Verifying scrypt costs tens of milliseconds, and the SDK polls once a second with Basic
credentials, so a verified credential is remembered (by its SHA-256, next to the stored
hash it matched, so that changing the password invalidates it). An unknown name is
checked against a dummy hash with the same parameters, so both refusals cost the same
hash work and the timing of a 401 does not tell which names exist.

A daemon sends the same header on every request (eight or so per small file), and
finding its user again each time (a metastore query, the document decoded, base64 and
SHA-256) was a twentieth of the event loop's time per file (issue 9). So a header that
signed in is remembered with its user, keyed by the header's SHA-256: the lookup
compares digests, never the secret, so its timing tells nothing of the credentials
(the same reasoning as a comparison in constant time). Only successes are remembered;
a refused header goes through the whole check (and the dummy hash) every time. Any
write of a user document (a password set, a token added, at start or by
``users.ensure_user``/``add_token``) forgets them all, and a header that signed in
while such a write happened is not remembered. At most ``REMEMBERED_HEADERS`` are kept
(the oldest goes first), since one credential can be spelled in many headers.

Any write (a method other than GET/HEAD/OPTIONS) needs credentials → else 401 with
``WWW-Authenticate: Basic realm="dsmsyncd"``; wrong credentials are 401 on any request.
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

from dsmsyncd.server.catalog import users
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore
from dsmsyncd.server.errors import ApiError

USER_KEY: web.RequestKey[Doc | None] = web.RequestKey("dsmsyncd_user", dict)
REALM = 'Basic realm="dsmsyncd"'
REMEMBERED_HEADERS = 1024
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    return users.hash_password(secrets.token_urlsafe(18))


class Authenticator:
    """Turns an ``Authorization`` header into a user document (or a 401)."""

    def __init__(self, meta: MetaStore, *, remember: int = REMEMBERED_HEADERS) -> None:
        self._meta = meta
        self._remember = remember
        # sha256(name \0 password) -> the stored scrypt hash it was verified against
        self._verified: dict[str, str] = {}
        # sha256(Authorization header) -> its user, while no user document is written
        self._signed_in: dict[bytes, Doc] = {}
        self._users_written = meta.writes_of(Kind.USER)
        _dummy_hash()  # at start, so that the first unknown name is not faster or slower

    async def authenticate(self, header: str | None) -> Doc | None:
        if not header:
            return None
        written = self._meta.writes_of(Kind.USER)
        if written != self._users_written:
            self._signed_in.clear()
            self._users_written = written
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()
        user = self._signed_in.get(key)
        if user is None:
            user = await self._check(header)
            if self._meta.writes_of(Kind.USER) == written:  # not changed while checking
                if len(self._signed_in) >= self._remember:
                    del self._signed_in[next(iter(self._signed_in))]
                self._signed_in[key] = user
        return dict(user)  # a copy: a handler that changed it would change the next one's

    @property
    def remembered(self) -> int:
        """How many signed-in headers are remembered now."""
        return len(self._signed_in)

    async def _check(self, header: str) -> Doc:
        """The user ``header`` signs in as, or the 401 (nothing remembered here)."""
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            return await self._basic(value)
        if scheme in ("oauth", "bearer"):
            return self._token(value)
        raise unauthorized(f"unsupported authorization scheme '{scheme}'; use Basic or OAuth")

    async def _basic(self, value: str) -> Doc:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise unauthorized("malformed Basic credentials") from exc
        name, sep, password = decoded.partition(":")
        if not sep:
            raise unauthorized("malformed Basic credentials: expected name:password")
        user = users.find_user(self._meta, name)
        if user is None or "_password" not in user:
            # Same scrypt work as a wrong password, so that the answer's timing does not
            # tell which names exist.
            await asyncio.to_thread(_verify_password, password, _dummy_hash())
            raise unauthorized("invalid username or password")
        stored = user["_password"]
        key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        if self._verified.get(key) == stored["hash"]:
            return user
        if not await asyncio.to_thread(_verify_password, password, stored):
            raise unauthorized("invalid username or password")
        self._verified[key] = stored["hash"]
        return user

    def _token(self, token: str) -> Doc:
        user = users.user_with_token(self._meta, token)
        if user is None:
            raise unauthorized("invalid API token")
        return user


AUTH: web.AppKey[Authenticator] = web.AppKey("dsmsyncd_auth", Authenticator)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, key="authentication_required")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller once per request; refuse anonymous writes."""
    user = await request.app[AUTH].authenticate(request.headers.get("Authorization"))
    request[USER_KEY] = user
    if user is None and request.method not in _SAFE_METHODS:
        raise unauthorized("this request changes data and needs credentials")
    return await handler(request)


def caller(request: web.Request) -> Doc | None:
    return request.get(USER_KEY)


def require_caller(request: web.Request) -> Doc:
    user = caller(request)
    if user is None:
        raise unauthorized("this request needs credentials")
    return user
