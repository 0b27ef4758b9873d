"""The deployment files in deploy/ parse, agree with each other and with the daemon.

Nothing here starts systemd, a container runtime or a cluster: these are static checks
(see deploy/README.md for what is and is not tested). The Kubernetes overlays are
rendered and checked against the Kubernetes schemas in test_kubernetes_overlays.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.config.schema import LimitsConfig
from dsmsyncd.observe.metrics import Metrics
from tests.project.kustomize import BASE, read_manifest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "dsmsyncd.service"
CONTAINERFILE = DEPLOY / "container" / "Containerfile"
DASHBOARD = DEPLOY / "grafana" / "dsmsyncd-dashboard.json"
ADMIN_PORT = 9108
DEFAULT_DRAIN = LimitsConfig().drain_timeout


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", text.strip())
    assert match, f"not a systemd time span this test understands: {text!r}"
    return int(match[1]) * (60 if match[2] == "min" else 1)


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
    pod = read_manifest(BASE / "deployment.yaml")["spec"]["template"]["spec"]
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
