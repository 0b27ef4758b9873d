"""Sources, input schemas, output schemas and transforms as the wire shows them.

The SDK is link-driven (digest §1.0): it turns every string in ``links`` into a method
and builds child objects by substituting ``{input_schema_id}`` and then
``{output_schema_id}`` into the nested template dicts. The link sets here are the
ones of digest §2.2-2.4, with the URLs the route modules serve, so a client that
follows links never needs to know a path.

Stored documents keep only their own fields; the embedded children (``schemas`` of a
source, ``output_schemas`` of an input schema) are read fresh on every reply, so
there is one copy of each schema and it cannot go stale inside its parent.
"""

from __future__ import annotations

from typing import Any

from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, public
from dsmsyncd.server.http.bodies import envelope
from dsmsyncd.server.http.paths import API, source_path
from dsmsyncd.server.storage.parse_options import wire_parse_options


def output_schema_link_templates(
    source_id: int | str, input_schema_id: int | str
) -> dict[str, str]:
    """Links of one output schema; ``{output_schema_id}`` is left for the client to fill."""
    schema = f"{source_path(source_id)}/schema/{input_schema_id}"
    return {
        "show": f"{schema}/output/{{output_schema_id}}",
        "rows": f"{schema}/rows/{{output_schema_id}}",
        "schema_errors": f"{schema}/errors/{{output_schema_id}}",
        "validate_row_id": f"{source_path(source_id)}/transform/{{transform_id}}"
        "/validate_row_identifier",
        "build_config": f"{API}/config/build_from/{{output_schema_id}}",
    }


def input_schema_link_templates(source_id: int | str, input_schema_id: int | str) -> dict[str, Any]:
    schema = f"{source_path(source_id)}/schema/{input_schema_id}"
    return {
        "show": schema,
        "transform": schema,
        "latest_output": f"{schema}/output/latest",
        "row_errors": f"{schema}/errors",
        "output_schema_links": output_schema_link_templates(source_id, input_schema_id),
    }


def source_links(source_id: int) -> dict[str, Any]:
    """The full link set of digest §2.2, with the child templates."""
    base = source_path(source_id)
    return {
        "show": base,
        "bytes": base,
        "update": base,
        "add_to_revision": base,
        "load": f"{base}/load",
        "initiate": f"{base}/initiate",
        "chunk": f"{base}/chunk/{{seq_num}}/{{byte_offset}}",
        "commit": f"{base}/chunk/{{seq_num}}/{{byte_offset}}/commit",
        "cancel": f"{base}/cancel",
        "show_input_schema": f"{base}/schema/{{input_schema_id}}",
        "input_schema_links": input_schema_link_templates(source_id, "{input_schema_id}"),
    }


def output_schema_links(
    source_id: int, input_schema_id: int, output_schema_id: int
) -> dict[str, str]:
    return {
        name: url.replace("{output_schema_id}", str(output_schema_id))
        for name, url in output_schema_link_templates(source_id, input_schema_id).items()
    }


def output_schema_resource(doc: Doc) -> dict[str, Any]:
    return public(doc)


def input_schema_resource(meta: MetaStore, doc: Doc) -> dict[str, Any]:
    resource = public(doc)
    resource["output_schemas"] = [
        output_schema_resource(o) for o in meta.children(Kind.OUTPUT_SCHEMA, doc["id"])
    ]
    return resource


def source_resource(meta: MetaStore, doc: Doc) -> dict[str, Any]:
    resource = public(doc)
    resource["parse_options"] = wire_parse_options(
        doc["parse_options"],
        content_type=doc.get("content_type"),
        filename=(doc.get("source_type") or {}).get("filename"),
    )
    resource["schemas"] = [
        input_schema_resource(meta, s) for s in meta.children(Kind.INPUT_SCHEMA, doc["id"])
    ]
    return resource


def source_envelope(meta: MetaStore, doc: Doc) -> dict[str, Any]:
    return envelope(source_resource(meta, doc), source_links(int(doc["id"])))


def input_schema_envelope(meta: MetaStore, doc: Doc) -> dict[str, Any]:
    links = input_schema_link_templates(int(doc["_source_id"]), int(doc["id"]))
    return envelope(input_schema_resource(meta, doc), links)


def output_schema_envelope(doc: Doc) -> dict[str, Any]:
    links = output_schema_links(int(doc["_source_id"]), int(doc["input_schema_id"]), int(doc["id"]))
    return envelope(output_schema_resource(doc), links)


def transform_envelope(source_id: int, transform: dict[str, Any]) -> dict[str, Any]:
    base = f"{source_path(source_id)}/transform/{transform['id']}"
    return envelope(transform, {"show": base, "validate_row_id": f"{base}/validate_row_identifier"})
