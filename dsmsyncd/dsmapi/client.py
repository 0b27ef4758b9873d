"""Async client for the publishing API v1 (DSMAPI), written from the protocol digest.

Each method is one step of the protocol (digest §2), following the links the server
hands out where the protocol says so. How a request is sent — retried when it is
idempotent, sent exactly once when it is not — is ``transport.py``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsmsyncd.config.schema import Action
from dsmsyncd.dsmapi.errors import ResourceFailed
from dsmsyncd.dsmapi.models import (
    API,
    CURRENT_USER,
    InputSchema,
    Json,
    OutputSchema,
    Revision,
    Source,
    TaskSet,
    UploadPreferences,
)
from dsmsyncd.dsmapi.transport import Transport, poll

__all__ = ["DsmapiClient"]


class DsmapiClient(Transport):
    """The DSMAPI steps the daemon, ``push`` and the tests perform."""

    # -- revisions -------------------------------------------------------------------

    async def create_dataset(self, metadata: Mapping[str, Any]) -> Revision:
        """A new dataset: revision 0 on a freshly minted fourfour (not retried: not idempotent)."""
        body = {"action": {"type": "update"}, "metadata": dict(metadata)}
        return Revision.from_envelope(await self.call_once("POST", f"{API}/revision", body=body))

    async def open_revision(
        self,
        fourfour: str,
        action: Action,
        *,
        permission: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Revision:
        body = {
            "metadata": dict(metadata or {}),
            "action": {"type": action, "permission": permission},
        }
        path = f"{API}/revision/{fourfour}"
        return Revision.from_envelope(await self.call_once("POST", path, body=body))

    async def open_revision_with_config(self, fourfour: str, config: str) -> Revision:
        path = f"{API}/revision/{fourfour}"
        return Revision.from_envelope(await self.call_once("POST", path, body={"config": config}))

    async def get_revision(self, fourfour: str, seq: int) -> Revision:
        return Revision.from_envelope(await self.call("GET", f"{API}/revision/{fourfour}/{seq}"))

    async def list_revisions(self, fourfour: str, *, open_only: bool = False) -> list[Revision]:
        params = {"open": "true"} if open_only else None
        body = await self.call("GET", f"{API}/revision/{fourfour}", params=params)
        return [Revision.from_envelope(item) for item in body]

    async def list_sources(self, revision: Revision) -> list[Source]:
        """The sources attached to a revision (R10); used to recognise an orphan as ours."""
        path = revision.links.get("list_sources") or f"{revision.path}/source"
        return [Source.from_envelope(item) for item in await self.call("GET", path)]

    async def set_revision_metadata(
        self, revision: Revision, metadata: Mapping[str, Any]
    ) -> Revision:
        """Merge ``metadata`` into an open revision's (R5); idempotent, so retried."""
        path = revision.links.get("update") or revision.path
        body = {"metadata": dict(metadata)}
        return Revision.from_envelope(await self.call("PUT", path, body=body))

    async def discard_revision(self, revision: Revision) -> None:
        await self.call("DELETE", revision.links.get("discard") or revision.path)

    async def apply(self, revision: Revision, output_schema_id: int | None) -> TaskSet:
        body = {} if output_schema_id is None else {"output_schema_id": output_schema_id}
        path = revision.links.get("apply") or f"{revision.path}/apply"
        return TaskSet.from_envelope(await self.call_once("PUT", path, body=body))

    async def wait_for_task_set(
        self, revision: Revision, task_set: TaskSet, *, timeout_s: float = 3600
    ) -> TaskSet:
        if task_set.is_terminal:
            return task_set
        path = task_set.links.get("show") or f"{revision.path}/apply/{task_set.id}"
        return await poll(
            lambda: self.call("GET", path),
            TaskSet.from_envelope,
            lambda t: t.is_terminal,
            timeout_s=timeout_s,
            what=f"apply job {task_set.id} of {revision.fourfour}",
        )

    # -- sources and upload --------------------------------------------------------------

    async def create_upload_source(
        self, revision: Revision, filename: str, parse_options: Mapping[str, Any] | None = None
    ) -> Source:
        body = {
            "source_type": {"type": "upload", "filename": filename},
            "parse_options": dict(parse_options or {}),
        }
        path = revision.links.get("create_source") or f"{revision.path}/source"
        return Source.from_envelope(await self.call_once("POST", path, body=body))

    async def get_source(self, source_id: int) -> Source:
        return Source.from_envelope(await self.call("GET", f"{API}/source/{source_id}"))

    async def initiate_upload(self, source: Source, content_type: str) -> UploadPreferences:
        path = source.links.get("initiate") or f"{API}/source/{source.id}/initiate"
        body = await self.call("POST", path, body={"content_type": content_type})
        return UploadPreferences(
            chunk_size=int(body["preferred_chunk_size"]),
            parallelism=int(body["preferred_upload_parallelism"]),
        )

    def chunk_path(self, source: Source, seq: int, offset: int) -> str:
        template = (
            source.links.get("chunk")
            or f"{API}/source/{source.id}/chunk/{{seq_num}}/{{byte_offset}}"
        )
        return str(template).format(seq_num=seq, byte_offset=offset)

    async def upload_chunk(
        self, source: Source, seq: int, offset: int, data: bytes | memoryview
    ) -> None:
        """One chunk, retried on its own: the server treats a resent chunk as idempotent."""
        await self.call(
            "POST",
            self.chunk_path(source, seq, offset),
            data=data,
            content_type="application/octet-stream",
        )

    async def commit_upload(self, source: Source, last_seq: int, total: int) -> Source:
        template = (
            source.links.get("commit")
            or f"{API}/source/{source.id}/chunk/{{seq_num}}/{{byte_offset}}/commit"
        )
        path = str(template).format(seq_num=last_seq, byte_offset=total)
        return Source.from_envelope(await self.call("POST", path))

    async def wait_for_output_schema(
        self, source: Source, *, timeout_s: float = 3600
    ) -> OutputSchema:
        """The source's newest output schema once completed (see ``wait_for_schemas``)."""
        schema, _ = await self.wait_for_schemas(source, timeout_s=timeout_s)
        return schema

    async def wait_for_schemas(
        self, source: Source, *, timeout_s: float = 3600
    ) -> tuple[OutputSchema, InputSchema]:
        """The newest output schema once completed, and the input schema under it.

        A source embeds its input schemas and each one's output schemas (digest §1.2),
        so polling the source alone tells when parsing and transforms are done and
        gives both schemas: one request per poll, none after. ``source`` as last seen
        (the commit's answer) is the first poll. A server that embeds less (no
        ``completed_at`` or ``total_rows`` in the embedded schemas) is asked for each
        schema itself, as before.
        """
        parsed = await poll(
            lambda: self.call("GET", f"{API}/source/{source.id}"),
            Source.from_envelope,
            processing_done,
            timeout_s=timeout_s,
            what=f"processing of source {source.id}",
            first=source,
        )
        if parsed.failed_at is not None:
            details = parsed.failure_details or {}
            reason = details.get("message") if isinstance(details, dict) else None
            raise ResourceFailed(f"source {source.id}", str(reason or details), details=details)
        latest = parsed.latest_output_schema()
        assert latest is not None
        if _embeds(latest, "completed_at", "output_columns", "input_schema_id"):
            schema = OutputSchema.from_envelope(latest)
        else:
            path = f"{API}/source/{source.id}/schema/{latest['input_schema_id']}/output/"
            schema = await self._wait_for_output(path + str(latest["id"]), timeout_s)
        failed = schema.failed_transforms()
        if failed:
            column = failed[0]
            details = column["transform"].get("failure_details") or {}
            raise ResourceFailed(
                f"transform of column {column.get('field_name')}",
                str(details.get("message") or "the transform failed"),
                details=details,
            )
        embedded = parsed.input_schema(schema.input_schema_id)
        if embedded is not None and embedded.get("total_rows") is not None:
            return schema, InputSchema.from_envelope(embedded)
        return schema, await self.wait_for_input_schema(
            parsed, schema.input_schema_id, timeout_s=timeout_s
        )

    async def _wait_for_output(self, path: str, timeout_s: float) -> OutputSchema:
        return await poll(
            lambda: self.call("GET", path),
            OutputSchema.from_envelope,
            lambda o: o.completed_at is not None or bool(o.failed_transforms()),
            timeout_s=timeout_s,
            what=f"output schema {path.rsplit('/', 1)[-1]}",
        )

    async def transform(
        self, source: Source, input_schema_id: int, output_columns: list[dict[str, Any]]
    ) -> OutputSchema:
        """A new output schema for the input schema: columns with their transform expressions."""
        path = f"{API}/source/{source.id}/schema/{input_schema_id}"
        body = {"output_columns": output_columns}
        return OutputSchema.from_envelope(await self.call_once("POST", path, body=body))

    async def wait_for_schema_completion(
        self, source: Source, schema: OutputSchema, *, timeout_s: float = 3600
    ) -> OutputSchema:
        path = f"{API}/source/{source.id}/schema/{schema.input_schema_id}/output/{schema.id}"
        return await self._wait_for_output(path, timeout_s)

    async def error_rows(self, schema: OutputSchema, source_id: int, limit: int = 100) -> list[Any]:
        """Error rows as the server gives them (after the schema header), up to ``limit``."""
        path = schema.links.get("schema_errors") or (
            f"{API}/source/{source_id}/schema/{schema.input_schema_id}/errors/{schema.id}"
        )
        body = await self.call("GET", path, params={"limit": str(limit), "offset": "0"})
        return list(body[1:]) if isinstance(body, list) else []

    async def wait_for_input_schema(
        self, source: Source, input_schema_id: int, *, timeout_s: float = 3600
    ) -> InputSchema:
        """The input schema (I1) once loaded: its ``num_row_errors`` is then final."""
        path = _input_schema_link(source, "show", input_schema_id) or (
            f"{API}/source/{source.id}/schema/{input_schema_id}"
        )
        return await poll(
            lambda: self.call("GET", path),
            InputSchema.from_envelope,
            lambda s: s.total_rows is not None,
            timeout_s=timeout_s,
            what=f"input schema {input_schema_id}",
        )

    async def input_row_errors(
        self, source: Source, input_schema_id: int, limit: int = 100
    ) -> list[Any]:
        """Rows the parser could not split (I4), ``{"offset", "error"}`` each, up to ``limit``."""
        path = _input_schema_link(source, "row_errors", input_schema_id) or (
            f"{API}/source/{source.id}/schema/{input_schema_id}/errors"
        )
        body = await self.call("GET", path, params={"limit": str(limit), "offset": "0"})
        return list(body) if isinstance(body, list) else []

    # -- configs and reads ---------------------------------------------------------------

    async def get_config(self, name: str) -> dict[str, Any]:
        body = await self.call("GET", f"{API}/config/{name}")
        return dict(body["resource"])

    async def create_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        body = await self.call_once("POST", f"{API}/config", body=dict(config))
        return dict(body["resource"])

    async def current_user(self, *, retry: bool = True) -> dict[str, Any]:
        """The signed-in user (core API); its ``id`` is what ``created_by.user_id`` shows.

        ``retry=False`` makes it a probe: one request, whose failure says the target
        cannot be used now."""
        return dict(await self.call("GET", CURRENT_USER, retry=retry))

    async def get_view(self, fourfour: str) -> dict[str, Any]:
        return dict(await self.call("GET", f"/api/views/{fourfour}"))

    async def read_rows(self, fourfour: str, params: Mapping[str, str] | None = None) -> list[Any]:
        return list(await self.call("GET", f"/resource/{fourfour}.json", params=params))


def _embeds(resource: Json, *keys: str) -> bool:
    return all(key in resource for key in keys)


def processing_done(source: Source) -> bool:
    """Parsing failed, or the newest output schema is done with (completed or a transform
    failed) and its input schema loaded; or the source embeds too little to tell, and
    the schemas are asked for themselves. True of a commit's answer: ``wait_for_schemas``
    sends no poll (at most reads of the schemas a server did not embed)."""
    if source.failed_at is not None:
        return True
    latest = source.latest_output_schema()
    if latest is None:
        return False
    if not _embeds(latest, "completed_at", "output_columns", "input_schema_id"):
        return True
    columns = latest.get("output_columns") or []
    failed = any((c.get("transform") or {}).get("failed_at") for c in columns)
    if latest.get("completed_at") is None and not failed:
        return False
    embedded = source.input_schema(int(latest["input_schema_id"]))
    return (
        failed
        or embedded is None
        or "total_rows" not in embedded
        or (embedded["total_rows"] is not None)
    )


def _input_schema_link(source: Source, name: str, input_schema_id: int) -> str | None:
    """A link of the source's ``input_schema_links`` templates, filled in (digest §1.0)."""
    templates = source.links.get("input_schema_links")
    template = templates.get(name) if isinstance(templates, dict) else None
    if not isinstance(template, str):
        return None
    return template.replace("{input_schema_id}", str(input_schema_id))
