"""The deployment files in deploy/ parse, agree with each other and with the daemon.

Nothing here starts systemd, a container runtime or a cluster: these are static checks
(see deploy/README.md for what is and is not tested). PyYAML is not a dependency, so the
manifests are read by a small parser for the block-style YAML subset they are written
in; when PyYAML happens to be installed, its reading is compared with ours.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.config import load_config
from dsmsyncd.config.schema import LimitsConfig
from dsmsyncd.observe.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
UNIT = DEPLOY / "systemd" / "dsmsyncd.service"
CONTAINERFILE = DEPLOY / "container" / "Containerfile"
DASHBOARD = DEPLOY / "grafana" / "dsmsyncd-dashboard.json"
YAML_FILES = sorted(K8S.glob("*.yaml"))
ADMIN_PORT = 9108
DEFAULT_DRAIN = LimitsConfig().drain_timeout


# ─── a small YAML reader: block mappings and sequences, scalars, `|` blocks, `---` ──


class YamlSubsetError(ValueError):
    pass


_KEY = re.compile(
    r"""^(?P<key>"[^"]*"|'[^']*'|[^\s"'\-#][^:#]*?|-[^\s:][^:#]*?)\s*:(?:\s+(?P<rest>.*))?$"""
)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _significant(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlSubsetError(f"unterminated string: {text}")
        return text[1:-1].replace("''", "'")
    text = re.sub(r"\s+#.*$", "", text)
    if text.startswith(("[", "{")):
        return json.loads(text)  # flow collections: only the JSON-compatible ones
    if text in ("null", "~", ""):
        return None
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*", text):
        return float(text)
    return text


class _Reader:
    def __init__(self, text: str) -> None:
        if "\t" in text:
            raise YamlSubsetError("tabs are not allowed in YAML indentation")
        self.lines = text.splitlines()
        self.pos = 0

    def skip(self) -> None:
        while self.pos < len(self.lines) and not _significant(self.lines[self.pos]):
            self.pos += 1

    def peek(self) -> tuple[int, str] | None:
        self.skip()
        if self.pos >= len(self.lines):
            return None
        line = self.lines[self.pos]
        return _indent(line), line.strip()

    def block(self, indent: int) -> Any:
        head = self.peek()
        if head is None or head[0] != indent:
            raise YamlSubsetError(f"line {self.pos + 1}: expected indentation {indent}")
        if head[1] == "-" or head[1].startswith("- "):
            return self.sequence(indent)
        return self.mapping(indent)

    def mapping(self, indent: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while (head := self.peek()) is not None and head[0] == indent:
            if head[1].startswith("- ") or head[1] == "-":
                break
            match = _KEY.match(head[1])
            if not match:
                raise YamlSubsetError(f"line {self.pos + 1}: not a `key: value` line")
            key = str(_scalar(match["key"]))
            if key in out:
                raise YamlSubsetError(f"line {self.pos + 1}: duplicate key {key!r}")
            self.pos += 1
            out[key] = self.value(indent, match["rest"])
        if (head := self.peek()) is not None and head[0] > indent:
            raise YamlSubsetError(f"line {self.pos + 1}: unexpected indentation")
        return out

    def sequence(self, indent: int) -> list[Any]:
        out: list[Any] = []
        while (head := self.peek()) is not None and head[0] == indent:
            if not (head[1].startswith("- ") or head[1] == "-"):
                break
            rest = head[1][2:].strip()
            if rest and _KEY.match(rest) and not rest.startswith(("'", '"', "[", "{")):
                # "- key: value": a mapping whose keys sit two columns further in
                self.lines[self.pos] = " " * (indent + 2) + rest
                out.append(self.mapping(indent + 2))
            else:
                self.pos += 1
                out.append(self.value(indent, rest))
        return out

    def value(self, indent: int, rest: str | None) -> Any:
        rest = (rest or "").strip()
        if rest in ("|", "|-"):
            return self.literal(indent, keep_newline=rest == "|")
        if rest and not rest.startswith("#"):
            return _scalar(rest)
        head = self.peek()
        if head is None:
            return None
        if head[0] > indent:
            return self.block(head[0])
        if head[0] == indent and (head[1].startswith("- ") or head[1] == "-"):
            return self.sequence(indent)  # "key:" followed by an unindented sequence
        return None

    def literal(self, indent: int, *, keep_newline: bool) -> str:
        body: list[str] = []
        content_indent: int | None = None
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if line.strip():
                if content_indent is None:
                    content_indent = _indent(line)
                    if content_indent <= indent:
                        raise YamlSubsetError(f"line {self.pos + 1}: empty block scalar")
                if _indent(line) < content_indent:
                    break
                body.append(line[content_indent:])
            else:
                body.append("")
            self.pos += 1
        while body and not body[-1]:
            body.pop()
        return "\n".join(body) + ("\n" if keep_newline and body else "")


def load_yaml_documents(text: str) -> list[Any]:
    documents = []
    for chunk in re.split(r"^---\s*$", text, flags=re.MULTILINE):
        reader = _Reader(chunk)
        head = reader.peek()
        if head is None:
            continue
        documents.append(reader.block(head[0]))
        if reader.peek() is not None:
            raise YamlSubsetError(f"line {reader.pos + 1}: text after the end of the document")
    return documents


def _one(path: Path) -> dict[str, Any]:
    (document,) = load_yaml_documents(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", text.strip())
    assert match, f"not a systemd time span this test understands: {text!r}"
    return int(match[1]) * (60 if match[2] == "min" else 1)


# ─── the parser itself ───────────────────────────────────────────────────────────


def test_yaml_subset_reader_handles_the_forms_the_manifests_use() -> None:
    text = """
# comment
a: 1
b: "two: 2"
c:
  - x
  - name: y
    port: 9108
    list:
      - 1
d: |
  line one
  # not a comment

  line three
e: 'it''s'
f:
- bare
g: {}
---
second: true
"""
    assert load_yaml_documents(text) == [
        {
            "a": 1,
            "b": "two: 2",
            "c": ["x", {"name": "y", "port": 9108, "list": [1]}],
            "d": "line one\n# not a comment\n\nline three\n",
            "e": "it's",
            "f": ["bare"],
            "g": {},
        },
        {"second": True},
    ]


@pytest.mark.parametrize("bad", ["a: 1\n  b: 2\n", "a: 1\na: 2\n", "a:\n\tb: 1\n", "just text\n"])
def test_yaml_subset_reader_rejects_what_it_does_not_understand(bad: str) -> None:
    with pytest.raises(YamlSubsetError):
        load_yaml_documents(bad)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_every_manifest_parses_and_names_itself(path: Path) -> None:
    documents = load_yaml_documents(path.read_text(encoding="utf-8"))
    assert documents, f"{path.name} is empty"
    for document in documents:
        assert isinstance(document, dict)
        assert document.get("apiVersion"), path.name
        assert document.get("kind"), path.name
        if document["kind"] != "Kustomization":
            assert document["metadata"]["name"], path.name
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return
    assert list(yaml.safe_load_all(path.read_text(encoding="utf-8"))) == documents


# ─── Kubernetes ──────────────────────────────────────────────────────────────────


def _manifests() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in YAML_FILES:
        for document in load_yaml_documents(path.read_text(encoding="utf-8")):
            if document["kind"] != "Kustomization":
                out[document["kind"], document["metadata"]["name"]] = document
    return out


def test_kustomization_lists_files_that_exist() -> None:
    kustomization = _one(K8S / "kustomization.yaml")
    resources = kustomization["resources"]
    assert {"deployment.yaml", "configmap.yaml", "pvc.yaml", "service.yaml"} <= set(resources)
    for name in resources:
        assert (K8S / name).is_file(), f"kustomization.yaml lists missing {name}"
    # the example Secret is never applied by the base: real credentials are made by hand
    assert "secret.example.yaml" not in resources
    images = {image["name"] for image in kustomization["images"]}
    deployment = _one(K8S / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    assert {c["image"] for c in pod["containers"] + pod.get("initContainers", [])} <= images


def _container() -> dict[str, Any]:
    (container,) = _one(K8S / "deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _configmap_toml(tmp_path: Path) -> Path:
    config = _one(K8S / "configmap.yaml")["data"]["dsmsyncd.toml"]
    path = tmp_path / "dsmsyncd.toml"
    path.write_text(config, encoding="utf-8")
    return path


def test_configmap_config_loads_with_the_secret_environment(tmp_path: Path) -> None:
    env = _one(K8S / "secret.example.yaml")["stringData"]
    config = load_config(_configmap_toml(tmp_path), env)
    assert config.admin.listen == f"0.0.0.0:{ADMIN_PORT}"
    assert config.target.password is not None
    assert config.target.password.get_secret_value() == env["DSM_PASSWORD"]
    mounts = [m["mountPath"] for m in _container()["volumeMounts"]]
    written = [config.state.url.removeprefix("sqlite://")]
    written += [str(s.path) for s in config.source]
    written += [str(m.archive_dir) for m in config.mapping if m.archive_dir]
    written += [str(m.quarantine_dir) for m in config.mapping]
    for path in written:
        assert any(path.startswith(mount + "/") for mount in mounts), f"{path} is not mounted"


def test_deployment_probes_port_grace_and_security(tmp_path: Path) -> None:
    deployment = _one(K8S / "deployment.yaml")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = _container()

    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"  # two pods never share the SQLite file
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert container["args"] == ["run", "-c", "/etc/dsmsyncd/dsmsyncd.toml"]

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"admin": ADMIN_PORT}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}

    drain = load_config(
        _configmap_toml(tmp_path), _one(K8S / "secret.example.yaml")["stringData"]
    ).limits.drain_timeout
    assert pod["terminationGracePeriodSeconds"] > max(drain, DEFAULT_DRAIN)

    limits = container["resources"]["limits"]
    assert limits["memory"] == "256Mi"
    assert container["resources"]["requests"]["memory"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for box in [container, *pod.get("initContainers", [])]:
        assert box["securityContext"]["readOnlyRootFilesystem"] is True
        assert box["securityContext"]["allowPrivilegeEscalation"] is False
        assert box["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_deployment_refers_to_objects_the_base_defines() -> None:
    manifests = _manifests()
    pod = _one(K8S / "deployment.yaml")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for box in [*pod["containers"], *pod.get("initContainers", [])]:
        for mount in box["volumeMounts"]:
            assert mount["name"] in volumes
    for volume in volumes.values():
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in manifests
        if "persistentVolumeClaim" in volume:
            assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in (
                manifests
            )
    config_mount = next(m for m in _container()["volumeMounts"] if m["name"] == "config")
    assert config_mount["mountPath"] == "/etc/dsmsyncd"
    (source,) = _container()["envFrom"]
    assert ("Secret", source["secretRef"]["name"]) in manifests


def test_service_and_servicemonitor_reach_the_admin_port() -> None:
    service = _one(K8S / "service.yaml")
    pod_labels = _one(K8S / "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("admin", ADMIN_PORT, "admin")
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(ADMIN_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"

    monitor = _one(K8S / "servicemonitor.yaml")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("admin", "/metrics")


# ─── systemd ─────────────────────────────────────────────────────────────────────


def _unit() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(UNIT.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"dsmsyncd.service:{number}: bad section header"
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"dsmsyncd.service:{number}: key before any section"
        assert "=" in line, f"dsmsyncd.service:{number}: not key=value"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_unit_lifecycle() -> None:
    service = _unit()["Service"]
    single = {key: values[-1] for key, values in service.items()}
    assert single["Type"] == "notify"
    assert single["NotifyAccess"] == "main"
    assert single["ExecStart"] == "/usr/local/bin/dsmsyncd run -c /etc/dsmsyncd/dsmsyncd.toml"
    assert single["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert single["KillSignal"] == "SIGTERM"
    assert single["Restart"] == "on-failure"
    assert _seconds(single["TimeoutStopSec"]) > DEFAULT_DRAIN
    assert single["StateDirectory"] == "dsmsyncd"
    assert single.get("DynamicUser") == "yes" or single.get("User") == "dsmsyncd"
    assert single["LoadCredential"] == "dsm_password:/etc/dsmsyncd/dsm_password"
    text = UNIT.read_text(encoding="utf-8")
    assert 'password_file = "${CREDENTIALS_DIRECTORY}/dsm_password"' in text
    assert _unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_unit_asks_for_watchdog_pings() -> None:
    service = {key: values[-1] for key, values in _unit()["Service"].items()}
    # The daemon pings every half interval: room left for a busy event loop.
    assert _seconds(service["WatchdogSec"]) >= 10


def test_systemd_unit_hardening() -> None:
    service = {key: values[-1] for key, values in _unit()["Service"].items()}
    assert service["ProtectSystem"] == "strict"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert service[key] == "yes", key
    writable = service["ReadWritePaths"].split()
    for folder in ("drop", "archive", "quarantine"):
        assert any(path.lstrip("-").endswith(folder) for path in writable), folder
    # sd_notify talks over a unix socket: READY=1 would never arrive without AF_UNIX
    assert "AF_UNIX" in service["RestrictAddressFamilies"].split()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        # the program is not installed on the machine running the tests
        if line.strip() and "/usr/local/bin/dsmsyncd" not in line
    ]
    assert not complaints, "\n".join(complaints)


# ─── container ───────────────────────────────────────────────────────────────────


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_containerfile_runs_the_daemon_as_non_root() -> None:
    instructions = _instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert froms
    assert all(rest.startswith("python:3.11-slim") for rest in froms)
    last = {word: rest for word, rest in instructions}  # the final value of each
    assert last["USER"].split(":")[0] not in ("root", "0")
    assert json.loads(last["ENTRYPOINT"]) == ["dsmsyncd"]
    assert json.loads(last["CMD"]) == ["run", "-c", "/etc/dsmsyncd/dsmsyncd.toml"]
    assert last["STOPSIGNAL"] == "SIGTERM"
    assert str(ADMIN_PORT) in last["EXPOSE"].split()
    assert any(
        word == "RUN" and "pip install" in rest and rest.endswith(".")
        for word, rest in instructions
    )


def test_containerfile_healthcheck_runs_as_written() -> None:
    healthcheck = dict(_instructions())["HEALTHCHECK"]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    assert f"127.0.0.1:{ADMIN_PORT}/healthz" in command[2]
    assert "urllib" in command[2]
    compile(command[2], "HEALTHCHECK", "exec")
    # the user in the image is the one the Kubernetes pod runs as
    pod = _one(K8S / "deployment.yaml")["spec"]["template"]["spec"]
    uid = dict(_instructions())["USER"].split(":")[0]
    assert int(uid) == pod["securityContext"]["runAsUser"]


# ─── Grafana ─────────────────────────────────────────────────────────────────────


def _exported_series() -> set[str]:
    """Every series name the daemon's registry can export, with Prometheus suffixes."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
    }
    names = set()
    for family in Metrics().registry.collect():
        names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


def _queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["query"]["query"])
    return queries


def test_dashboard_queries_only_metrics_the_daemon_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exported = _exported_series()
    queried = {name for q in _queries(dashboard) for name in re.findall(r"\bdsmsyncd_\w+", q)}
    assert queried, "the dashboard queries nothing"
    assert not queried - exported, f"not exported by metrics.py: {sorted(queried - exported)}"
    assert {
        "dsmsyncd_jobs_finished_total",
        "dsmsyncd_files_quarantined_total",
        "dsmsyncd_job_phase_duration_seconds_bucket",
        "dsmsyncd_jobs_in_flight",
        "dsmsyncd_queue_depth",
        "dsmsyncd_uploaded_bytes_total",
        "dsmsyncd_retries_total",
        "dsmsyncd_last_success_timestamp_seconds",
        "dsmsyncd_ready",
    } <= queried


def test_dashboard_has_the_panels_operators_need() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = _queries(dashboard)
    assert any("histogram_quantile(0.5," in q for q in queries)
    assert any("histogram_quantile(0.95," in q for q in queries)
    assert any("rate(dsmsyncd_uploaded_bytes_total" in q and "[5m]" in q for q in queries)
    assert any(q.startswith("time() - ") and "last_success" in q for q in queries)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["title"], panel
        assert panel["targets"], panel
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            # label filters use labels the metric really has
            for name, labels in re.findall(r"(dsmsyncd_\w+)\{([^}]*)\}", target["expr"]):
                keys = {part.split("=")[0].rstrip("!~") for part in labels.split(",") if part}
                assert keys <= _labels(name) | {"le"}, (name, keys)


def _labels(series: str) -> set[str]:
    """The label names a series carries, read from samples of a registry that was used."""
    metrics = Metrics()
    metrics.discovered("drop")
    metrics.unmatched("drop")
    metrics.quarantined("abcd-1234", "row_errors")
    metrics.finished("abcd-1234", "published")
    metrics.uploaded("abcd-1234", 1)
    metrics.retried("timeout")
    metrics.phase("open", 0.1)
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == series:
                return set(sample.labels)
    raise AssertionError(f"no samples of {series}")
