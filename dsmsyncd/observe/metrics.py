"""The daemon's Prometheus metrics, named by the Prometheus conventions.

One ``Metrics`` object per daemon owns its own registry (so tests and several daemons
in one process never collide) and offers verbs named after what happened, so the
pipeline says ``metrics.published(dataset)`` instead of knowing label layouts.
Labels are bounded: dataset ids and source names come from the config, phases and
outcomes from fixed sets (``Phase``, ``Outcome``); file names never become labels.
"""

from __future__ import annotations

import time
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "dsmsyncd"
Phase = Literal["open", "upload", "processing", "apply", "finalize"]
Outcome = Literal[
    "published",
    "quarantined",
    "skipped",
    "awaiting_approval",
    "failed_retryable",
    "held",
    "staged",
]
# Why an interrupted upload was started over instead of resumed (``pipeline/upload_resume``).
UploadRestart = Literal["content_changed", "source_gone", "revision_gone", "chunks_lost"]
# Seconds: a small file publishes in well under a second, a 10 GB one in many minutes.
PHASE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        counter, gauge = self._counter, self._gauge
        self.files_discovered = counter(
            "files_discovered_total", "Files that passed the stability gate", "source"
        )
        self.files_unmatched = counter(
            "files_unmatched_total", "Stable files that match no mapping", "source"
        )
        self.jobs_finished = counter(
            "jobs_finished_total", "Jobs that reached an outcome", "dataset", "outcome"
        )
        self.files_quarantined = counter(
            "files_quarantined_total", "Files moved to quarantine", "dataset", "reason"
        )
        self.bytes_uploaded = counter(
            "uploaded_bytes_total", "Bytes sent in upload chunks", "dataset"
        )
        self.upload_resumes = counter(
            "upload_resumes_total", "Interrupted uploads resumed on their open source", "dataset"
        )
        self.upload_resumed_bytes = counter(
            "upload_resumed_bytes_total",
            "Bytes a resumed upload did not send again: the server had acknowledged them",
            "dataset",
        )
        self.upload_restarts = counter(
            "upload_restarts_total",
            "Interrupted uploads started over from the first byte, by reason",
            "dataset",
            "reason",
        )
        self.retries = counter("retries_total", "Calls and chunks retried", "reason")
        self.phase_seconds = Histogram(
            f"{PREFIX}_job_phase_duration_seconds",
            "Time spent in each phase of a job",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=self.registry,
        )
        self.jobs_in_flight = gauge("jobs_in_flight", "Jobs running now")
        self.queue_depth = gauge("queue_depth", "Jobs waiting for their dataset lane")
        self.last_success = gauge(
            "last_success_timestamp_seconds",
            "Unix time of the last file published per dataset",
            "dataset",
        )
        self.source_up = gauge(
            "source_up",
            "1 when the source answered its last check (listing, folder access)",
            "source",
        )
        self.task_failures = counter(
            "task_failures_total",
            "Failures of the daemon's own tasks (discovery per source, scheduler, reload)",
            "task",
        )
        self.up = gauge("ready", "1 when the daemon is ready (state store and target reachable)")
        # Replicas sharing one state database (issue 13): which replica this process is,
        # and what it holds, so that a dashboard can sum or compare across replicas.
        self.replica_info = gauge(
            "replica_info", "1, labelled with this daemon's replica name", "replica"
        )
        self.lanes_held = gauge(
            "lanes_held", "Dataset lanes this replica holds a lease on", "replica"
        )
        self.lane_takeovers = counter(
            "lane_takeovers_total",
            "Lanes claimed after another replica's lease (or this one's earlier life's) ended",
            "replica",
        )
        # Notifications ([[notify]]): outcome sent, failed (every attempt), retried (an
        # attempt failed, another follows), suppressed (rate limit), dropped (queue full).
        self.notifications = counter(
            "notifications_total",
            "Notification messages by channel (webhook, email; intake for the shared queue) "
            "and outcome",
            "channel",
            "outcome",
        )
        self.lane_losses = counter(
            "lane_leases_lost_total",
            "Lanes whose lease this replica lost before it gave them up (its job stopped)",
            "replica",
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(f"{PREFIX}_{name}", documentation, labels, registry=self.registry)

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", documentation, labels, registry=self.registry)

    def discovered(self, source: str) -> None:
        self.files_discovered.labels(source).inc()

    def unmatched(self, source: str) -> None:
        self.files_unmatched.labels(source).inc()

    def finished(self, dataset: str, outcome: Outcome) -> None:
        self.jobs_finished.labels(dataset, outcome).inc()
        if outcome == "published":
            self.last_success.labels(dataset).set(time.time())

    def quarantined(self, dataset: str, reason: str) -> None:
        self.files_quarantined.labels(dataset, reason).inc()
        self.finished(dataset, "quarantined")

    def uploaded(self, dataset: str, count: int) -> None:
        self.bytes_uploaded.labels(dataset).inc(count)

    def upload_resumed(self, dataset: str, skipped_bytes: int) -> None:
        self.upload_resumes.labels(dataset).inc()
        self.upload_resumed_bytes.labels(dataset).inc(skipped_bytes)

    def upload_restarted(self, dataset: str, reason: UploadRestart) -> None:
        self.upload_restarts.labels(dataset, reason).inc()

    def retried(self, reason: str) -> None:
        self.retries.labels(reason).inc()

    def task_failed(self, task: str) -> None:
        self.task_failures.labels(task).inc()

    def notification(self, channel: str, outcome: str) -> None:
        self.notifications.labels(channel, outcome).inc()

    def phase(self, phase: Phase, seconds: float) -> None:
        self.phase_seconds.labels(phase).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
