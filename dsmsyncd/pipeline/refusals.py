"""A file that cannot be published: the ``Quarantine`` control flow, and which failures
call for it rather than for a retry.

Raised by any step that finds the file (or what the server made of it) unpublishable,
caught once by the job's run, which discards the revision and quarantines the file
with a report built from what the exception carries (``outcomes.quarantine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dsmsyncd.dsmapi import RejectedError, ResourceFailed
from dsmsyncd.finalize.report import QuarantineReason
from dsmsyncd.state import Job


class Quarantine(Exception):
    """Control flow: the file cannot be published; carries what goes into its report."""

    def __init__(
        self,
        reason: QuarantineReason,
        message: str,
        *,
        error_rows: Sequence[Any] = (),
        parse_errors: Sequence[Any] = (),
        parse_error_count: int = 0,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: QuarantineReason = reason
        self.message = message
        self.error_rows = list(error_rows)
        self.parse_errors = list(parse_errors)
        self.parse_error_count = parse_error_count
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"Quarantine({self.reason!r}, {self.message!r})"


def as_quarantine(exc: BaseException, job: Job) -> Quarantine | None:
    """The quarantine a failure calls for; None when it may heal (retry later instead)."""
    if isinstance(exc, Quarantine):
        return exc
    if isinstance(exc, FileNotFoundError):
        return Quarantine(
            "file_vanished",
            f"{job.relative_path} disappeared before it was sent ({exc.strerror}); nothing "
            "was published; drop the file again to publish it",
        )
    # AuthError is not here on purpose: refused credentials (a rotated password, a
    # revoked right) are the operator's to fix, not the file's fault; the job waits
    # and retries (``retry_later``) until the target accepts them again.
    if isinstance(exc, RejectedError):
        return Quarantine(
            "rejected_by_server",
            f"the server rejected {exc.method} {exc.url}: {exc.server_message} (HTTP {exc.status})",
            request_id=exc.request_id,
        )
    if isinstance(exc, ResourceFailed):
        if exc.what.startswith("source"):
            return Quarantine(
                "unparsable_file",
                f"the server could not parse the file: {exc.reason.rstrip('.')}; "
                "fix the file and drop it again",
            )
        return Quarantine(
            "transform_failed",
            f"{exc}; fix the file or the import config's transform and drop the file again",
        )
    return None
