"""The quarantine report: why a file was not published, beside the file it explains.

Written by a finalizer next to the quarantined file (``NAME.report.json``), printed by
``dsmsyncd push`` for a refused file, and rebuilt by the startup sweep for a job whose
file a crash left unmoved. One shape for all three, readable by an operator and a script.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from dsmsyncd import __version__
from dsmsyncd.state import Job

QuarantineReason = Literal[
    "too_many_row_errors",
    "schema_drift",
    "empty_file",
    "empty_replace",
    "row_drop_guard",
    "rejected_by_server",
    # Refused credentials now make a job wait and retry; jobs quarantined for them by
    # earlier releases may still have their report rebuilt by the sweep.
    "auth_refused",
    "unparsable_file",
    "transform_failed",
    "apply_failed",
    "unknown_dataset",
    "file_vanished",
    "file_unreadable",
    # Staged publishing: a newer file superseded the staged revision, or an operator
    # threw it away with ``dsmsyncd discard``.
    "superseded",
    "discarded_by_operator",
    # A metadata sidecar (NAME.meta.json / .meta.toml) that cannot be used: the message
    # names the sidecar, the key and the problem.
    "bad_metadata",
]
MAX_REPORTED_ERROR_ROWS = 100
REPORT_SUFFIX = ".report.json"


@dataclass(frozen=True)
class ReportedFile:
    path: str
    size: int
    sha256: str | None
    source: str = ""


@dataclass(frozen=True)
class QuarantineReport:
    """Why a file was not published, in a form an operator and a script can both read.

    ``reason`` is a machine key (see ``QuarantineReason``); ``message`` says what went
    wrong, where, and how to fix it. No credential ever goes in here (invariant 5):
    only ids, counts, the server's message and request id, and the error rows.

    ``error_count`` is every row that would not be published; ``parse_error_count`` of
    them could not be parsed at all (listed in ``parse_errors``), the rest had data
    errors in a transform (listed in ``error_rows``).
    """

    reason: QuarantineReason
    message: str
    dataset: str
    file: ReportedFile
    revision_seq: int | None = None
    revision_id: int | None = None
    error_count: int = 0
    error_rows: list[Any] = field(default_factory=list)
    parse_error_count: int = 0
    parse_errors: list[Any] = field(default_factory=list)
    server_request_id: str | None = None
    discovered_at: datetime | None = None
    started_at: datetime | None = None
    quarantined_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    dsmsyncd_version: str = __version__

    @classmethod
    def of_job(
        cls,
        job: Job,
        reason: QuarantineReason,
        message: str,
        *,
        sha256: str | None,
        **details: Any,
    ) -> QuarantineReport:
        """The report of ``job`` as last recorded: its file, revision, counts and times;
        ``details`` (error rows, request id, ``quarantined_at``) as the caller knows them."""
        return cls(
            reason=reason,
            message=message,
            dataset=job.dataset,
            file=ReportedFile(job.relative_path, job.size, sha256, job.source),
            revision_seq=job.revision_seq,
            revision_id=job.revision_id,
            error_count=job.error_count or 0,
            discovered_at=job.discovered_at,
            started_at=job.started_at,
            **details,
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["error_rows"] = list(self.error_rows[:MAX_REPORTED_ERROR_ROWS])
        data["parse_errors"] = list(self.parse_errors[:MAX_REPORTED_ERROR_ROWS])
        for key in ("discovered_at", "started_at", "quarantined_at"):
            value = data[key]
            data[key] = value.isoformat() if isinstance(value, datetime) else None
        return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
