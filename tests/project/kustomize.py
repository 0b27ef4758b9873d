"""The Kubernetes overlays as a cluster would receive them, read without a cluster.

``rendered`` runs the real kustomize that ships inside ``kubectl`` (``kubectl
kustomize``): it only reads the files, so no cluster and no network are involved, and
what the tests see is exactly what ``kubectl apply -k`` would send. A renderer of our
own would test our reading of kustomize instead. ``schema_problem`` checks one object
against the Kubernetes API's JSON schemas that the ``kubernetes-validate`` package
ships (offline, strict: an unknown or misspelt field is an error, as it is for
``kubectl apply --validate=strict``).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAYS = ("single-sqlite", "replicas-postgres")
# The oldest release still commonly run and the one of the kubectl these files were
# written with; kubernetes-validate ships schemas from 1.25 on.
KUBERNETES_VERSIONS = ("1.29", "1.32")

Manifest = dict[str, Any]


@functools.cache
def rendered(overlay: str) -> tuple[Manifest, ...]:
    """Every object ``kubectl apply -k deploy/kubernetes/overlays/<overlay>`` would send."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not on PATH: the overlay tests render with `kubectl kustomize` "
            "(kustomize built into kubectl; no cluster needed). Install kubectl."
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def read_manifest(path: Path) -> Manifest:
    """One YAML file holding one object (the examples kustomize does not render)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), path
    return document


def only(manifests: tuple[Manifest, ...], kind: str) -> Manifest:
    """The one object of ``kind``; the overlays render one of each."""
    (found,) = [m for m in manifests if m["kind"] == kind]
    return found


def container(deployment: Manifest) -> dict[str, Any]:
    """The daemon's container (init containers aside)."""
    (box,) = deployment["spec"]["template"]["spec"]["containers"]
    assert box["name"] == "dsmsyncd"
    assert isinstance(box, dict)
    return box


def schema_problem(manifest: Manifest, version: str) -> str | None:
    """Why ``manifest`` is not a valid object for Kubernetes ``version``, or None."""
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        field = ".".join(str(part) for part in exc.absolute_path) or "(top level)"
        return f"{manifest['kind']}/{manifest['metadata']['name']}: {field}: {exc.message}"
    return None
