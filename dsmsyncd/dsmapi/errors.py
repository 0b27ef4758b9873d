"""Errors of the DSMAPI client, branching on how the caller reacts.

::

    DsmapiError
    ├── TransportError        connection refused/reset, timeout: retry later
    │   └── OutcomeUnknown    a non-idempotent request may have reached the server:
    │                         read the resource before repeating it
    └── ServerError           the server answered with a non-success status
        ├── RetryableServerError   408, 409, 429, 5xx: retry with backoff
        ├── AuthError              401, 403: credentials or permission; do not retry
        └── RejectedError          other 4xx: the request (or the file) is wrong
    ResourceFailed            the server ran the work and it failed (parse, transform, apply)

Every ServerError carries the server's message and request id, because those are
what an operator quotes to the server's owners (invariant 6).
"""

from __future__ import annotations

from typing import Any


class DsmapiError(Exception):
    """Anything that went wrong talking to a DSMAPI server."""


class TransportError(DsmapiError):
    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(f"{message} ({url})")
        self.url = url


class OutcomeUnknown(TransportError):
    """The connection failed after a non-idempotent request may have been received.

    The server may have acted (opened the revision, started the apply) or not; only
    reading the resource tells. Never answer this by sending the request again blindly.
    """


class ServerError(DsmapiError):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        method: str,
        url: str,
        request_id: str | None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        rid = f", request id {request_id}" if request_id else ""
        super().__init__(f"{method} {url} answered {status}: {message}{rid}")
        self.status = status
        self.server_message = message
        self.method = method
        self.url = url
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after


class RetryableServerError(ServerError):
    pass


class AuthError(ServerError):
    pass


class RejectedError(ServerError):
    pass


class ResourceFailed(DsmapiError):
    """Work the server accepted and then failed: the reason comes from the resource itself."""

    def __init__(self, what: str, reason: str, *, details: Any = None) -> None:
        super().__init__(f"{what} failed: {reason}")
        self.what = what
        self.reason = reason
        self.details = details


def classify(status: int) -> type[ServerError]:
    if status in (401, 403):
        return AuthError
    if status in (408, 409, 429) or status >= 500:
        return RetryableServerError
    return RejectedError
