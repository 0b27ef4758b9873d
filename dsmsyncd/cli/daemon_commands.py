"""The daemon's commands: ``run``, ``check-config``, ``status`` (``push`` lives in push.py).

Exit codes (``exit_codes.py``, documented in the README) let scripts tell why a command
ended; ``run`` ends with a startup failure's one-line reason, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsmsyncd.cli.exit_codes import ExitCode
from dsmsyncd.config.load import load_config
from dsmsyncd.config.secrets import ConfigError

if TYPE_CHECKING:
    from dsmsyncd.cli.check_config import Finding
    from dsmsyncd.config.schema import Config

logger = logging.getLogger("dsmsyncd.cli.daemon_commands")


def load_or_report(path: Path) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def run_command(config_path: Path, log_level: str) -> int:
    config = load_or_report(config_path)
    if config is None:
        return ExitCode.USAGE
    from dsmsyncd.observe.logging import configure_logging

    configure_logging(level=log_level)
    from dsmsyncd.daemon.lifecycle import Daemon, StartupFailed

    async def main() -> None:
        await Daemon(config_path, config).run()

    try:
        asyncio.run(main())
    except StartupFailed as exc:
        logger.error("startup failed: %s", exc)
        return ExitCode.STARTUP_FAILURE
    return ExitCode.OK


def check_config_command(config_path: Path, *, offline: bool) -> int:
    config = load_or_report(config_path)
    if config is None:
        return ExitCode.USAGE
    from dsmsyncd.cli.check_config import check_folders, shown

    findings: list[Finding] = []
    if not offline:
        findings = check_folders(config) + asyncio.run(_online(config))
    for finding in findings:
        mark = "ok  " if finding.ok else "FAIL"
        print(shown(config, f"{mark} {finding.subject}: {finding.message}"))
    failed = [f for f in findings if not f.ok]
    wrong = [f for f in failed if not f.retryable]
    if wrong:
        print(f"{config_path}: {len(wrong)} problem(s)")
        return ExitCode.USAGE
    if failed:
        print(
            f"{config_path}: no problem found, but {len(failed)} check(s) could not be made "
            "(the target or the network did not answer); try again later"
        )
        return ExitCode.RETRYABLE
    print(f"{config_path}: valid")
    return ExitCode.OK


async def _online(config: Config) -> list[Finding]:
    from dsmsyncd.cli.check_config import check_buckets, check_notify, check_target
    from dsmsyncd.daemon.target import client_for

    async with client_for(config) as client:
        findings = await check_target(config, client)
    return findings + await check_buckets(config) + await check_notify(config)


def status_command(config_path: Path, *, limit: int, as_json: bool, cluster: bool = False) -> int:
    """Recent jobs per dataset, after the cluster: the replicas seen lately and the lanes
    they hold (``--cluster``: the cluster only; ``--json``: machine-readable)."""
    config = load_or_report(config_path)
    if config is None:
        return ExitCode.USAGE
    view, rows = asyncio.run(_status(config, 0 if cluster else limit))
    if as_json:
        print(json.dumps(view if cluster else rows, indent=2, default=str))
        return ExitCode.OK
    _print_cluster(view)
    if cluster:
        return ExitCode.OK
    if not rows:
        print("no jobs recorded yet")
        return ExitCode.OK
    by_dataset: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_dataset.setdefault(str(row["dataset"]), []).append(row)
    for dataset, jobs in sorted(by_dataset.items()):
        print(f"{dataset}:")
        for job in jobs:
            error = f"  {job['error']}" if job.get("error") else ""
            if job.get("revision_url"):
                error = f"  revision {job['revision_seq']}: {job['revision_url']}"
            error += f"  ({job['waiting']})" if job.get("waiting") else ""
            print(f"  #{job['id']:<5} {job['state']:<18} {job['updated_at']}  {job['file']}{error}")
    return ExitCode.OK


def _print_cluster(view: dict[str, Any]) -> None:
    for replica in view["replicas"]:
        alive = "alive" if replica["alive"] else "silent"
        print(
            f"replica {replica['name']} ({alive}, seen {replica['seen_s_ago']}s ago): "
            f"pid {replica['pid']} on {replica['host']}, dsmsyncd {replica['version']}"
        )
    for lane in view["lanes"]:
        ends = "ended" if lane["expired"] else f"ends in {lane['expires_in_s']}s"
        job = f"job #{lane['job_id']} {lane.get('file', '')}" if lane["job_id"] else "no job"
        print(
            f"lane {lane['dataset']}: held by {lane['replica']} for {lane['held_for_s']}s, "
            f"lease {ends}; {job}"
        )


async def _status(config: Config, limit: int) -> tuple[dict[str, Any], list[dict[str, object]]]:
    from dsmsyncd.daemon.active_hours import ActiveHours
    from dsmsyncd.daemon.status import cluster_view
    from dsmsyncd.pipeline.staging import revision_url
    from dsmsyncd.state import JobState, open_state_store

    hours = ActiveHours(lambda: config)

    async with open_state_store(config.state.url, password=config.state.password_text) as store:
        view = await cluster_view(store, config.state.lease_timeout)
        jobs = await store.recent_jobs(limit) if limit else []
    return view, [
        {
            "id": job.id,
            "dataset": job.dataset,
            "state": job.state.value,
            "file": f"{job.source}:{job.relative_path}",
            "updated_at": job.updated_at.isoformat(timespec="seconds"),
            "revision_seq": job.revision_seq,
            # Where a person reads a staged revision before ``dsmsyncd apply``.
            "revision_url": revision_url(config.target.url, job.dataset, job.revision_seq)
            if job.state is JobState.STAGED
            else None,
            "error": job.error,
            **({"waiting": note} if (note := hours.waiting_note(job)) else {}),
        }
        for job in jobs
    ]
