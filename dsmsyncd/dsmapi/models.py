"""The few DSMAPI resources the client acts on, read from their ``{resource, links}`` envelopes.

Only the fields the client needs are lifted into attributes; the whole resource stays
available as ``raw`` for reports. Links are kept because DSMAPI is link-driven: the
client follows the URLs the server hands out where the protocol says so (chunk,
commit, show), so a server that moves a path still works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Json = dict[str, Any]
Read = Callable[[Json], Any]

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


class _Resource:
    """Read from its envelope by one rule: each field is the resource's key of the same
    name (``None`` when absent) unless ``READ`` says how to read it; ``links`` and
    ``raw`` (the whole resource) are kept as they came. Subclasses are dataclasses."""

    READ: ClassVar[dict[str, Read]] = {}

    @classmethod
    def from_envelope(cls, body: Any) -> Self:
        res, links = envelope_parts(body)
        values: dict[str, Any] = {"links": links, "raw": res}
        for f in fields(cast("type[DataclassInstance]", cls)):
            if f.name not in values:
                values[f.name] = cls.READ[f.name](res) if f.name in cls.READ else res.get(f.name)
        return cls(**values)


def _required_int(key: str) -> Read:
    return lambda res: int(res[key])


def _count(key: str) -> Read:
    """A count the server may leave out or null: 0 then."""
    return lambda res: int(res.get(key) or 0)


def _listed(key: str) -> Read:
    """A list the server may leave out or null: empty then."""
    return lambda res: list(res.get(key) or [])


@dataclass(frozen=True)
class Revision(_Resource):
    id: int
    fourfour: str
    seq: int
    action: str
    output_schema_id: int | None
    closed_at: str | None
    task_sets: list[Json]
    links: dict[str, Any]
    raw: Json

    READ: ClassVar[dict[str, Read]] = {
        "id": _required_int("id"),
        "fourfour": lambda res: str(res["fourfour"]),
        "seq": _required_int("revision_seq"),
        "action": lambda res: str((res.get("action") or {}).get("type") or "update"),
        "task_sets": _listed("task_sets"),
    }

    @property
    def path(self) -> str:
        return f"{API}/revision/{self.fourfour}/{self.seq}"

    @property
    def is_open(self) -> bool:
        """Neither applied nor discarded: both close a revision (``closed_at`` set, digest
        §1.1), after which the server refuses changes to it (``revision_closed``)."""
        return self.closed_at is None


@dataclass(frozen=True)
class Source(_Resource):
    id: int
    finished_at: str | None
    failed_at: str | None
    failure_details: Any
    schemas: list[Json]
    links: dict[str, Any]
    raw: Json

    READ: ClassVar[dict[str, Read]] = {
        "id": _required_int("id"),
        "schemas": _listed("schemas"),
    }

    def latest_output_schema(self) -> Json | None:
        """The highest-id output schema of the highest-id input schema, as the SDK picks it."""
        if not self.schemas:
            return None
        input_schema = max(self.schemas, key=lambda s: int(s["id"]))
        outputs = input_schema.get("output_schemas") or []
        return max(outputs, key=lambda o: int(o["id"])) if outputs else None

    def input_schema(self, input_schema_id: int) -> Json | None:
        """The input schema of that id as the source embeds it, if it does."""
        return next((s for s in self.schemas if int(s["id"]) == input_schema_id), None)


@dataclass(frozen=True)
class UploadPreferences:
    chunk_size: int
    parallelism: int


@dataclass(frozen=True)
class InputSchema(_Resource):
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

    READ: ClassVar[dict[str, Read]] = {
        "id": _required_int("id"),
        "num_row_errors": _count("num_row_errors"),
    }


@dataclass(frozen=True)
class OutputSchema(_Resource):
    id: int
    input_schema_id: int
    completed_at: str | None
    error_count: int
    total_rows: int | None
    columns: list[Json]
    links: dict[str, Any]
    raw: Json

    READ: ClassVar[dict[str, Read]] = {
        "id": _required_int("id"),
        "input_schema_id": _required_int("input_schema_id"),
        "error_count": _count("error_count"),
        "columns": _listed("output_columns"),
    }

    def failed_transforms(self) -> list[Json]:
        return [c for c in self.columns if (c.get("transform") or {}).get("failed_at")]


@dataclass(frozen=True)
class TaskSet(_Resource):
    """The apply job; ``status`` is ``submitted_for_approval`` for an approval-queue reply."""

    id: int | None
    status: str
    finished_at: str | None
    log: list[Json]
    links: dict[str, Any]
    raw: Json

    READ: ClassVar[dict[str, Read]] = {
        "status": lambda res: str(res.get("status") or "initializing"),
        "log": _listed("log"),
    }

    @classmethod
    def from_envelope(cls, body: Any) -> TaskSet:
        res, links = envelope_parts(body)
        if res.get("key") == "approval_submitted":
            return cls(None, "submitted_for_approval", None, [], links, res)
        return super().from_envelope(body)

    @property
    def is_terminal(self) -> bool:
        return self.status in ("successful", "failure", "submitted_for_approval")
