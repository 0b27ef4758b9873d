"""User documents: who exists, their password hashes and their API tokens.

Users live in the metastore (kind ``user``, id shaped like a fourfour). A user signs in
with a name and a password; an API key id/secret pair is the same thing on the wire
(digest §4), so a key is simply a user's name and password. Secrets are never stored in
clear: passwords are hashed with scrypt and a per-user salt, tokens (random,
high-entropy) with SHA-256. Checking a caller's credentials against these documents is
the HTTP layer's job (``http/auth.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.ids import unique_fourfour

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """A stored password: scrypt's parameters, the salt and the hash, all it takes to check."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return {"alg": "scrypt", **_SCRYPT, "salt": salt.hex(), "hash": digest.hex()}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_user(meta: MetaStore, name: str) -> Doc | None:
    """A user by sign-in name (the oldest, should two share it)."""
    return meta.first_where(Kind.USER, "screenName", name)


def user_with_token(meta: MetaStore, token: str) -> Doc | None:
    """The user ``token`` acts as, if any (compared in constant time)."""
    digest = token_hash(token)
    for user in meta.all(Kind.USER):
        if any(hmac.compare_digest(digest, h) for h in user.get("_tokens", [])):
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
    if token_hash(token) not in hashes:
        hashes.append(token_hash(token))
    user["_tokens"] = hashes
    return meta.put(Kind.USER, user["id"], user)


def creator_ref(user: Doc) -> dict[str, Any]:
    """The ``created_by`` object of DSMAPI resources."""
    return {
        "user_id": user["id"],
        "display_name": user.get("displayName"),
        "email": user.get("email"),
    }
