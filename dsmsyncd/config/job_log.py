"""The job log's place in the configuration: an internal source and mapping.

``[log_dataset]`` rows are published by the pipeline itself, so that they get its
guarantees (applied once, resumed after a crash, quarantined with a report when
refused): the daemon writes them as CSV batches into ``spool_dir``, and this module adds
the source that watches that folder (``_job_log``) and the mapping that appends its
files to the log dataset (``action = "update"``, deleted once published, refused
batches to ``spool_dir/quarantine``). ``load_config`` adds both, so the folder checks,
``check-config``, ``/status`` and a reload all see them like any other.
"""

from __future__ import annotations

import logging

from dsmsyncd.config.schema import (
    JOB_LOG_SOURCE,
    Config,
    LogDatasetConfig,
    MappingConfig,
    SourceConfig,
)

__all__ = ["JOB_LOG_SOURCE", "SPOOL_QUARANTINE", "reloaded_with_job_log", "with_job_log"]

logger = logging.getLogger("dsmsyncd.config.job_log")

SPOOL_QUARANTINE = "quarantine"
# A batch is renamed into place whole: it is stable at once, so the gate need not wait.
SPOOL_MIN_AGE_S = 0.2


def with_job_log(config: Config) -> Config:
    """``config`` with the job log's source and mapping appended (once), if it has one."""
    log = config.log_dataset
    if log is None or any(source.name == JOB_LOG_SOURCE for source in config.source):
        return config
    source = SourceConfig(
        name=JOB_LOG_SOURCE,
        url=f"file://{log.spool_dir}",
        min_age=SPOOL_MIN_AGE_S,
        poll_interval=min(30.0, log.batch_interval),
        ignore=[".*", "*.part", "*.tmp"],
    )
    mapping = MappingConfig(
        source=JOB_LOG_SOURCE,
        match="*.csv",
        dataset=log.dataset,
        action="update",
        skip_duplicates=False,
        on_success="delete",
        quarantine_dir=log.spool_dir / SPOOL_QUARANTINE,
    )
    return config.model_copy(
        update={"source": [*config.source, source], "mapping": [*config.mapping, mapping]}
    )


def reloaded_with_job_log(new: Config, running: LogDatasetConfig | None) -> Config:
    """A reloaded ``new`` with the job log the daemon started with: the rows already
    queued and spooled belong to that dataset, so ``[log_dataset]`` is read at start
    only (a change is logged, and taken at the next start)."""
    if new.log_dataset != running:
        logger.warning("[log_dataset] changed: the change takes effect at the next start")
    kept = new.model_copy(
        update={
            "source": [s for s in new.source if s.name != JOB_LOG_SOURCE],
            "mapping": [m for m in new.mapping if m.source != JOB_LOG_SOURCE],
            "log_dataset": running,
        }
    )
    return with_job_log(kept)
