"""Replicas and the dataset lanes they hold: what the state store records about who works.

Several daemons (replicas) may share one state database. Each dataset's lane (its
queue of jobs, run one at a time in arrival order) is held by at most one replica at
a time, under a *lease*: a row naming the replica, the job it runs and when the lease
ends unless renewed. A replica renews its leases well before they end; one that dies
stops renewing, and once its leases have ended another replica claims the lanes and
resumes or finishes their jobs exactly as a restarted daemon would.

Lease times come from the replicas' own clocks (the store's ``clock``), so replicas
must keep their clocks in step (NTP) to well within the lease timeout.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from dsmsyncd.state.model import Job, JobState

DEFAULT_LEASE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ReplicaIdentity:
    """Who a daemon's store is among the replicas of one state database.

    ``name`` must be unique among live replicas (the pod or host name by default); the
    store refuses to open when a live replica already uses it. A daemon restarted under
    the same name takes its own earlier leases over at once instead of waiting for them
    to end.
    """

    name: str
    lease_timeout_s: float = DEFAULT_LEASE_TIMEOUT_S

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_timeout_s)


def default_replica_name() -> str:
    """The host name: a Kubernetes pod's name, or the machine's under systemd."""
    return socket.gethostname()


def this_process() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


@dataclass(frozen=True)
class LaneClaim:
    """A lane this replica now holds; ``taken_from`` names the replica (maybe this one's
    earlier life) whose lease it ended, so that its leftovers are finished first."""

    dataset: str
    taken_from: str | None = None


ClaimStep = Literal["insert", "renew", "busy", "take"]


def claim_step(
    holder: str | None, expires_at: datetime | None, me: str, held: bool, now: datetime
) -> ClaimStep:
    """What claiming a lane does, given its lease row (if any) — one rule for every store.

    ``held``: this store claimed the lane earlier in its life. A lease under this
    replica's name that this store did not claim was left by its earlier life (a crash,
    a restart): taken over at once, leftovers included.
    """
    if holder is None or expires_at is None:
        return "insert"
    if holder == me:
        return "renew" if held else "take"
    return "take" if expires_at <= now else "busy"


def head_may_run(lane: Sequence[Job], now: datetime) -> bool:
    """Whether the head of a lane may run at ``now``, given the lane's first two jobs in
    arrival order — one rule for every store, for ``next_runnable``, ``claim_next`` and
    ``datasets_with_work`` alike.

    A head backing off (``next_attempt_at``; ``dsmsyncd apply`` holds the job it applies
    the same way) waits. A STAGED head waits for an operator's ``apply`` or ``discard``
    and blocks its lane without being run, so that a lane with a staged job neither
    spins nor publishes a newer file first; unless the job behind it was routed with
    ``on_staged = "supersede"`` (its routing snapshot, see ``MappingConfig``): then the
    head runs, and running a staged job supersedes it.
    """
    if not lane:
        return False
    head = lane[0]
    if head.next_attempt_at is not None and head.next_attempt_at > now:
        return False
    if head.state is not JobState.STAGED:
        return True
    return len(lane) > 1 and (lane[1].routing or {}).get("on_staged") == "supersede"


def datasets_whose_head_may_run(fronts: Sequence[Job], now: datetime) -> list[str]:
    """From every lane's first two jobs (grouped by dataset, each lane in arrival
    order), the datasets whose head may run, in the order their heads come in."""
    lanes: dict[str, list[Job]] = {}
    for job in fronts:
        lanes.setdefault(job.dataset, []).append(job)
    return [dataset for dataset, lane in lanes.items() if head_may_run(lane, now)]


@dataclass(frozen=True)
class LaneLease:
    dataset: str
    replica: str
    job_id: int | None
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def view(self, now: datetime) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "replica": self.replica,
            "job_id": self.job_id,
            "held_for_s": round((now - self.acquired_at).total_seconds(), 1),
            "renewed_s_ago": round((now - self.renewed_at).total_seconds(), 1),
            "expires_in_s": round((self.expires_at - now).total_seconds(), 1),
            "expired": self.expires_at <= now,
        }


@dataclass(frozen=True)
class ReplicaRecord:
    name: str
    host: str
    pid: int
    version: str
    started_at: datetime
    seen_at: datetime

    def view(self, now: datetime, lease: timedelta) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "seen_s_ago": round((now - self.seen_at).total_seconds(), 1),
            "alive": self.seen_at + lease > now,
        }


@dataclass(frozen=True)
class ClusterView:
    """Every replica that has recently run against the database, and every lane lease."""

    replicas: tuple[ReplicaRecord, ...]
    leases: tuple[LaneLease, ...]

    def view(self, now: datetime, lease: timedelta) -> dict[str, Any]:
        return {
            "replicas": [replica.view(now, lease) for replica in self.replicas],
            "lanes": [held.view(now) for held in self.leases],
        }
