"""Envelopes and links for revisions and their apply task sets (digest §2.1, §1.6).

The SDK is link-driven: every string in ``links`` becomes a method, so the names and
URLs here are part of the protocol. ``show``/``update``/``discard``/``metadata`` share
the revision URL (the 2017 DSMUI mock), ``plan`` and ``restore`` are the inferred URLs
of the digest.
"""

from __future__ import annotations

from typing import Any

from dsmsyncd.server.catalog import revisions
from dsmsyncd.server.catalog.metastore import Doc, MetaStore, public
from dsmsyncd.server.http.bodies import envelope
from dsmsyncd.server.http.paths import revision_path


def revision_links(fourfour: str, seq: int) -> dict[str, str]:
    base = revision_path(fourfour, seq)
    return {
        "show": base,
        "update": base,
        "discard": base,
        "metadata": base,
        "create_source": f"{base}/source",
        "list_sources": f"{base}/source",
        "apply": f"{base}/apply",
        "plan": f"{base}/plan",
        "restore": f"{base}/restore",
    }


def revision_resource(meta: MetaStore, revision: Doc) -> dict[str, Any]:
    """The wire revision, with its task sets embedded (DSMUI polls those)."""
    out = public(revision)
    out["task_sets"] = [public(t) for t in revisions.task_sets(meta, revision)]
    return out


def revision_envelope(meta: MetaStore, revision: Doc) -> dict[str, Any]:
    links = revision_links(revision["fourfour"], int(revision["revision_seq"]))
    return envelope(revision_resource(meta, revision), links)


def task_set_envelope(revision: Doc, task_set: Doc) -> dict[str, Any]:
    base = revision_path(revision["fourfour"], int(revision["revision_seq"]))
    return envelope(public(task_set), {"show": f"{base}/apply/{task_set['id']}"})


def plan_envelope(revision: Doc) -> dict[str, Any]:
    """What applying this revision would do, in order (R11)."""
    base = revision_path(revision["fourfour"], int(revision["revision_seq"]))
    return envelope(_plan_steps(revision), {"show": f"{base}/plan"})


def _plan_steps(revision: Doc) -> list[dict[str, Any]]:
    has_data = revision.get("output_schema_id") is not None
    steps = ["prepare_draft_for_import"]
    if has_data:
        steps.append("set_schema")
    steps.append("apply_metadata")
    if has_data:
        steps.append("upsert_task")
    steps += ["set_display_type", "publish", "wait_for_replication"]
    if (revision.get("action") or {}).get("permission") is not None:
        steps.append("set_permission")
    return [{"type": step} for step in steps]
