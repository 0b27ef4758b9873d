"""The daemon's Prometheus metrics, named by the Prometheus conventions.

One ``Metrics`` object per daemon owns its own registry (so tests and several daemons
in one process never collide) and offers verbs named after what happened, so the
pipeline says ``metrics.published(dataset)`` instead of knowing label layouts.
Labels are bounded: dataset ids and source names come from the config, phases and
outcomes from fixed sets; file names never become labels.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "dsmsyncd"
PHASES = ("open", "upload", "processing", "apply", "finalize")
OUTCOMES = ("published", "quarantined", "skipped", "awaiting_approval", "failed_retryable")
# Seconds: a small file publishes in well under a second, a 10 GB one in many minutes.
PHASE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.files_discovered = Counter(
            f"{PREFIX}_files_discovered_total",
            "Files that passed the stability gate",
            ["source"],
            registry=r,
        )
        self.files_unmatched = Counter(
            f"{PREFIX}_files_unmatched_total",
            "Stable files that match no mapping",
            ["source"],
            registry=r,
        )
        self.jobs_finished = Counter(
            f"{PREFIX}_jobs_finished_total",
            "Jobs that reached an outcome",
            ["dataset", "outcome"],
            registry=r,
        )
        self.files_quarantined = Counter(
            f"{PREFIX}_files_quarantined_total",
            "Files moved to quarantine",
            ["dataset", "reason"],
            registry=r,
        )
        self.bytes_uploaded = Counter(
            f"{PREFIX}_uploaded_bytes_total", "Bytes sent in upload chunks", ["dataset"], registry=r
        )
        self.retries = Counter(
            f"{PREFIX}_retries_total", "Calls and chunks retried", ["reason"], registry=r
        )
        self.phase_seconds = Histogram(
            f"{PREFIX}_job_phase_duration_seconds",
            "Time spent in each phase of a job",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self.jobs_in_flight = Gauge(f"{PREFIX}_jobs_in_flight", "Jobs running now", registry=r)
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth", "Jobs waiting for their dataset lane", registry=r
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "Unix time of the last file published per dataset",
            ["dataset"],
            registry=r,
        )
        self.source_up = Gauge(
            f"{PREFIX}_source_up",
            "1 when the source answered its last check (listing, folder access)",
            ["source"],
            registry=r,
        )
        self.task_failures = Counter(
            f"{PREFIX}_task_failures_total",
            "Failures of the daemon's own tasks (discovery per source, scheduler, reload)",
            ["task"],
            registry=r,
        )
        self.up = Gauge(
            f"{PREFIX}_ready",
            "1 when the daemon is ready (state store and target reachable)",
            registry=r,
        )

    def discovered(self, source: str) -> None:
        self.files_discovered.labels(source).inc()

    def unmatched(self, source: str) -> None:
        self.files_unmatched.labels(source).inc()

    def finished(self, dataset: str, outcome: str) -> None:
        self.jobs_finished.labels(dataset, outcome).inc()
        if outcome == "published":
            self.last_success.labels(dataset).set(time.time())

    def quarantined(self, dataset: str, reason: str) -> None:
        self.files_quarantined.labels(dataset, reason).inc()
        self.finished(dataset, "quarantined")

    def uploaded(self, dataset: str, count: int) -> None:
        self.bytes_uploaded.labels(dataset).inc(count)

    def retried(self, reason: str) -> None:
        self.retries.labels(reason).inc()

    def task_failed(self, task: str) -> None:
        self.task_failures.labels(task).inc()

    def phase(self, phase: str, seconds: float) -> None:
        self.phase_seconds.labels(phase).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
