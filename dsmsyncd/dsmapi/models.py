"""The few DSMAPI resources the client acts on, read from their ``{resource, links}`` envelopes.

Only the fields the client needs are lifted into attributes; the whole resource stays
available as ``raw`` for reports. Links are kept because DSMAPI is link-driven: the
client follows the URLs the server hands out where the protocol says so (chunk,
commit, show), so a server that moves a path still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

API = "/api/publishing/v1"
"""The prefix of every publishing API path (digest §2): spelled here and nowhere else."""
CURRENT_USER = "/api/users/current.json"
"""The core API's signed-in user: what a cheap authenticated probe of the target asks."""


def envelope_parts(body: Any) -> tuple[Json, dict[str, Any]]:
    """Split an envelope; a 2xx body without ``resource`` is its own resource (digest §1.0)."""
    if not isinstance(body, dict):
        raise TypeError(f"expected a JSON object, got {type(body).__name__}")
    if "resource" in body and isinstance(body["resource"], dict):
        links = body.get("links") or {}
        return body["resource"], links if isinstance(links, dict) else {}
    links = body.get("links") or {}
    return body, links if isinstance(links, dict) else {}


@dataclass(frozen=True)
class Revision:
    id: int
    fourfour: str
    seq: int
    action: str
    output_schema_id: int | None
    closed_at: str | None
    task_sets: list[Json]
    links: dict[str, Any]
    raw: Json

    @classmethod
    def from_envelope(cls, body: Any) -> Revision:
        res, links = envelope_parts(body)
        action = res.get("action") or {}
        return cls(
            id=int(res["id"]),
            fourfour=str(res["fourfour"]),
            seq=int(res["revision_seq"]),
            action=str(action.get("type") or "update"),
            output_schema_id=res.get("output_schema_id"),
            closed_at=res.get("closed_at"),
            task_sets=list(res.get("task_sets") or []),
            links=links,
            raw=res,
        )

    @property
    def path(self) -> str:
        return f"{API}/revision/{self.fourfour}/{self.seq}"

    @property
    def is_open(self) -> bool:
        """Neither applied nor discarded: both close a revision (``closed_at`` set, digest
        §1.1), after which the server refuses changes to it (``revision_closed``)."""
        return self.closed_at is None


@dataclass(frozen=True)
class Source:
    id: int
    finished_at: str | None
    failed_at: str | None
    failure_details: Any
    schemas: list[Json]
    links: dict[str, Any]
    raw: Json

    @classmethod
    def from_envelope(cls, body: Any) -> Source:
        res, links = envelope_parts(body)
        return cls(
            id=int(res["id"]),
            finished_at=res.get("finished_at"),
            failed_at=res.get("failed_at"),
            failure_details=res.get("failure_details"),
            schemas=list(res.get("schemas") or []),
            links=links,
            raw=res,
        )

    def latest_output_schema(self) -> Json | None:
        """The highest-id output schema of the highest-id input schema, as the SDK picks it."""
        if not self.schemas:
            return None
        input_schema = max(self.schemas, key=lambda s: int(s["id"]))
        outputs = input_schema.get("output_schemas") or []
        return max(outputs, key=lambda o: int(o["id"])) if outputs else None


@dataclass(frozen=True)
class UploadPreferences:
    chunk_size: int
    parallelism: int


@dataclass(frozen=True)
class InputSchema:
    """The file as the server parsed it (digest §1.3).

    ``num_row_errors`` counts rows the parser could not split into the header's number
    of cells (too many, too few, or run into by an unterminated quote). Those rows are
    not in any output schema, so its ``error_count`` never includes them.
    """

    id: int
    total_rows: int | None
    num_row_errors: int
    links: dict[str, Any]
    raw: Json

    @classmethod
    def from_envelope(cls, body: Any) -> InputSchema:
        res, links = envelope_parts(body)
        return cls(
            id=int(res["id"]),
            total_rows=res.get("total_rows"),
            num_row_errors=int(res.get("num_row_errors") or 0),
            links=links,
            raw=res,
        )


@dataclass(frozen=True)
class OutputSchema:
    id: int
    input_schema_id: int
    completed_at: str | None
    error_count: int
    total_rows: int | None
    columns: list[Json]
    links: dict[str, Any]
    raw: Json

    @classmethod
    def from_envelope(cls, body: Any) -> OutputSchema:
        res, links = envelope_parts(body)
        return cls(
            id=int(res["id"]),
            input_schema_id=int(res["input_schema_id"]),
            completed_at=res.get("completed_at"),
            error_count=int(res.get("error_count") or 0),
            total_rows=res.get("total_rows"),
            columns=list(res.get("output_columns") or []),
            links=links,
            raw=res,
        )

    def failed_transforms(self) -> list[Json]:
        return [c for c in self.columns if (c.get("transform") or {}).get("failed_at")]


@dataclass(frozen=True)
class TaskSet:
    """The apply job; ``status`` is ``submitted_for_approval`` for an approval-queue reply."""

    id: int | None
    status: str
    finished_at: str | None
    log: list[Json]
    links: dict[str, Any]
    raw: Json

    @classmethod
    def from_envelope(cls, body: Any) -> TaskSet:
        res, links = envelope_parts(body)
        if res.get("key") == "approval_submitted":
            return cls(None, "submitted_for_approval", None, [], links, res)
        return cls(
            id=res.get("id"),
            status=str(res.get("status") or "initializing"),
            finished_at=res.get("finished_at"),
            log=list(res.get("log") or []),
            links=links,
            raw=res,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in ("successful", "failure", "submitted_for_approval")
