"""Both Kubernetes overlays, rendered by kustomize, are valid objects that run dsmsyncd right.

single-sqlite: one pod, SQLite on a volume claim, never two pods on the file.
replicas-postgres: several pods on one PostgreSQL, replaced and disrupted one at a
time, with PostgreSQL's password from a Secret. Each rendered object passes the
Kubernetes schemas (tests/project/kustomize.py says how, offline), and each
overlay's config passes dsmsyncd's own loader with the Secrets the pods get.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dsmsyncd.config import load_config
from dsmsyncd.config.schema import Config, LimitsConfig
from dsmsyncd.config.state_url import is_postgres_url, sqlite_path_from_url, url_has_password
from tests.project.kustomize import (
    BASE,
    KUBERNETES,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    container,
    only,
    read_manifest,
    rendered,
    schema_problem,
)

ADMIN_PORT = 9108
CONFIG_PATH = "/etc/dsmsyncd/dsmsyncd.toml"
IMAGE = "ghcr.io/example/dsmsyncd:0.1.0"
CREDENTIALS = read_manifest(BASE / "secret.example.yaml")
POSTGRES_SECRET = read_manifest(
    KUBERNETES / "overlays" / "replicas-postgres" / "secret-postgres.example.yaml"
)


def _pod(overlay: str) -> dict[str, Any]:
    spec = only(rendered(overlay), "Deployment")["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def _config_text(overlay: str) -> str:
    text = only(rendered(overlay), "ConfigMap")["data"]["dsmsyncd.toml"]
    assert isinstance(text, str)
    return text


def _secret_files(overlay: str) -> dict[str, str]:
    """Each file the pod reads from a Secret volume (its path in the pod) and its content."""
    examples = {POSTGRES_SECRET["metadata"]["name"]: POSTGRES_SECRET["stringData"]}
    files = {}
    for volume in _pod(overlay)["volumes"]:
        if "secret" not in volume:
            continue
        data = examples[volume["secret"]["secretName"]]
        (mount,) = [m for m in _mounts(overlay).values() if m["name"] == volume["name"]]
        for item in volume["secret"]["items"]:
            files[f"{mount['mountPath']}/{item['path']}"] = data[item["key"]]
    return files


def _load(overlay: str, tmp_path: Path) -> Config:
    """The overlay's config as the daemon in its pod reads it: the example Secrets'
    variables in the environment, their files where the config's ``*_file`` keys
    look (under tmp_path, since the pod's paths are not this machine's)."""
    text = _config_text(overlay)
    for number, (in_pod, content) in enumerate(_secret_files(overlay).items()):
        assert text.count(f'"{in_pod}"') == 1, f"the config does not read {in_pod}"
        secret = tmp_path / f"secret-{number}"
        secret.write_text(content + "\n", encoding="utf-8")
        text = text.replace(f'"{in_pod}"', f'"{secret}"')
    path = tmp_path / "dsmsyncd.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, CREDENTIALS["stringData"])


def _mounts(overlay: str) -> dict[str, dict[str, Any]]:
    return {
        m["mountPath"]: m for m in container(only(rendered(overlay), "Deployment"))["volumeMounts"]
    }


# ─── both overlays ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_passes_the_kubernetes_schema(overlay: str, version: str) -> None:
    manifests = rendered(overlay)
    problems = [schema_problem(m, version) for m in manifests]
    assert [p for p in problems if p] == []
    kinds = sorted(m["kind"] for m in manifests)
    expected = {
        "single-sqlite": [
            "ConfigMap",
            "Deployment",
            "PersistentVolumeClaim",
            "PersistentVolumeClaim",
            "Service",
        ],
        "replicas-postgres": ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"],
    }
    # no Secret: credentials are created by hand and never live in the repository
    assert kinds == expected[overlay]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_example_secrets_pass_the_kubernetes_schema(version: str) -> None:
    for secret in (CREDENTIALS, POSTGRES_SECRET):
        assert schema_problem(secret, version) is None
        assert secret["kind"] == "Secret"


def test_schema_check_rejects_a_broken_deployment_naming_the_field() -> None:
    deployment = copy.deepcopy(only(rendered("replicas-postgres"), "Deployment"))
    deployment["spec"]["replicas"] = "three"
    assert schema_problem(deployment, KUBERNETES_VERSIONS[-1]) == (
        "Deployment/dsmsyncd: spec.replicas: 'three' is not of type 'integer', 'null'"
    )
    deployment["spec"]["replicas"] = 3
    container(deployment)["readinessProbe"]["httpGett"] = {"path": "/readyz"}
    assert schema_problem(deployment, KUBERNETES_VERSIONS[-1]) == (
        "Deployment/dsmsyncd: spec.template.spec.containers.0.readinessProbe: "
        "Additional properties are not allowed ('httpGett' was unexpected)"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_keeps_the_pod_contract(overlay: str, tmp_path: Path) -> None:
    manifests = rendered(overlay)
    deployment = only(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    box = container(deployment)

    assert deployment["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert box["args"] == ["run", "-c", CONFIG_PATH]
    assert {p["name"]: p["containerPort"] for p in box["ports"]} == {"admin": ADMIN_PORT}
    assert box["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert box["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    # the downward API names the replica, whatever the daemon's default
    env = {e["name"]: e for e in box["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    (source,) = box["envFrom"]
    assert source["secretRef"]["name"] == CREDENTIALS["metadata"]["name"]

    drain = _load(overlay, tmp_path).limits.drain_timeout
    assert pod["terminationGracePeriodSeconds"] > max(drain, LimitsConfig().drain_timeout)

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for each in [box, *pod.get("initContainers", [])]:
        assert each["image"] == IMAGE
        assert each["securityContext"]["readOnlyRootFilesystem"] is True
        assert each["securityContext"]["allowPrivilegeEscalation"] is False
        assert each["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert box["resources"]["limits"]["memory"] == "256Mi"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_refers_to_objects_it_renders(overlay: str) -> None:
    manifests = rendered(overlay)
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    pod = _pod(overlay)
    volumes = {v["name"]: v for v in pod["volumes"]}
    for box in [*pod["containers"], *pod.get("initContainers", [])]:
        assert {m["name"] for m in box["volumeMounts"]} <= volumes.keys()
    # the generated ConfigMap's hashed name, mounted where the daemon reads its config
    config_volume = volumes[_mounts(overlay)["/etc/dsmsyncd"]["name"]]
    assert ("ConfigMap", config_volume["configMap"]["name"]) in names
    for volume in volumes.values():
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            assert ("PersistentVolumeClaim", claim) in names

    service = only(manifests, "Service")
    labels = only(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("admin", ADMIN_PORT, "admin")
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ADMIN_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_servicemonitor_selects_the_service() -> None:
    # Not rendered (it needs the Prometheus Operator's CRDs), so checked by hand.
    monitor = read_manifest(BASE / "servicemonitor.yaml")
    service = only(rendered("single-sqlite"), "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("admin", "/metrics")


# ─── single-sqlite ───────────────────────────────────────────────────────────────


def test_single_sqlite_runs_one_pod_on_a_volume_claim(tmp_path: Path) -> None:
    spec = only(rendered("single-sqlite"), "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}  # never two pods on the SQLite file

    config = _load("single-sqlite", tmp_path)
    assert config.admin.listen == f"0.0.0.0:{ADMIN_PORT}"
    assert config.target.password is not None
    assert config.target.password.get_secret_value() == CREDENTIALS["stringData"]["DSM_PASSWORD"]
    database = sqlite_path_from_url(config.state.url)
    mounts = _mounts("single-sqlite")
    volumes = {v["name"]: v for v in _pod("single-sqlite")["volumes"]}
    state_mount = mounts[str(Path(database).parent)]
    assert volumes[state_mount["name"]]["persistentVolumeClaim"]["claimName"] == "dsmsyncd-state"

    written = [str(s.path) for s in config.source]
    written += [str(m.archive_dir) for m in config.mapping if m.archive_dir]
    written += [str(m.quarantine_dir) for m in config.mapping]
    for path in written:
        assert any(path.startswith(mount + "/") for mount in mounts), f"{path} is not mounted"


# ─── replicas-postgres ───────────────────────────────────────────────────────────


def test_replicas_share_postgres_and_no_volume() -> None:
    manifests = rendered("replicas-postgres")
    spec = only(manifests, "Deployment")["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert not [m for m in manifests if m["kind"] == "PersistentVolumeClaim"]
    volumes = _pod("replicas-postgres")["volumes"]
    assert not [v for v in volumes if "persistentVolumeClaim" in v]

    labels = spec["template"]["metadata"]["labels"]
    budget = only(manifests, "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1

    spread = {c["topologyKey"]: c for c in spec["template"]["spec"]["topologySpreadConstraints"]}
    by_node = spread["kubernetes.io/hostname"]
    assert (by_node["maxSkew"], by_node["whenUnsatisfiable"]) == (1, "DoNotSchedule")
    assert by_node["labelSelector"]["matchLabels"].items() <= labels.items()


def test_replicas_config_loads_with_the_password_from_the_secret(tmp_path: Path) -> None:
    # [state] password_file names the Secret's key as the pod mounts it
    (in_pod,) = _secret_files("replicas-postgres")
    assert f'password_file = "{in_pod}"' in _config_text("replicas-postgres")

    config = _load("replicas-postgres", tmp_path)
    assert is_postgres_url(config.state.url)
    assert not url_has_password(config.state.url)
    assert parse_qs(urlsplit(config.state.url).query)["sslmode"] == ["require"]
    assert config.state.password_text == POSTGRES_SECRET["stringData"]["password"]
    # buckets only: no replica needs a volume another one writes
    assert {urlsplit(source.url).scheme for source in config.source} == {"s3"}
