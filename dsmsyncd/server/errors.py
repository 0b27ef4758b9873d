"""Errors the local server answers with.

Every 4xx/5xx leaves the server as JSON ``{"error": true, "code", "key", "message",
"request_id", "data"}``: the general Socrata error shape plus the ``key`` that DSMUI and
the SDK read (digest §1.9). Handlers raise :class:`ApiError`; the middleware in
``app.py`` renders it, and renders anything else as a 500 without a traceback.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refusal to send to the client, with a message that says what and how to fix it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.key = key or _DEFAULT_KEYS.get(status, "error")
        self.data = data or {}

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "error": True,
            "code": self.key,
            "key": self.key,
            "message": self.message,
            "request_id": request_id,
            "data": self.data,
        }


_DEFAULT_KEYS = {
    400: "bad_request",
    401: "authentication_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
}


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, f"{what} {ident} does not exist", key="not_found")


def bad_field(field: str, problem: str) -> ApiError:
    """A malformed request body: names the field so the caller can fix it."""
    return ApiError(
        400, f"invalid field '{field}': {problem}", key="invalid_field", data={"field": field}
    )
