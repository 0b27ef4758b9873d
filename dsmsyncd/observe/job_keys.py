"""A job's keys (``job``, ``file``, ``dataset``, ``revision``), for every line it logs.

Kept apart from ``logging.py``, in a context variable of its own, so that binding them
imports no structlog: every job binds them, ``push``'s too, and ``push`` never sets up
logging. Importing structlog costs a command's start tens of milliseconds, and where
``rich`` and ``twisted`` are installed (development and test environments) structlog
imports its integrations with both: about 0.2 s of ``push``'s start was that (issue 9).
``logging.py`` merges the keys into every line (``merge_job_keys``).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType, TracebackType
from typing import Any

# The keys bind_job puts on every line of a job.
JOB_KEYS = ("job", "file", "dataset", "revision")

_NONE: Mapping[str, Any] = MappingProxyType({})
_keys: ContextVar[Mapping[str, Any]] = ContextVar("dsmsyncd_job_keys", default=_NONE)


class JobBinding:
    """Job keys bound by ``bind_job``; leaving its ``with`` block restores the keys before it.

    Restores all four keys, not only those it bound, so that a ``bind_job(revision=…)``
    made inside the block does not outlive it.
    """

    def __init__(self, previous: Mapping[str, Any]) -> None:
        self._previous = previous

    def __enter__(self) -> JobBinding:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _keys.set(self._previous)


def bind_job(
    *,
    job: int | None = None,
    file: str | None = None,
    dataset: str | None = None,
    revision: int | None = None,
) -> JobBinding:
    """Put the job's keys on every line logged from this context (task) on.

    Binds at once; ``None`` keys are left as they are, so a job binds its id, file and
    dataset when it starts and ``bind_revision`` follows its revision. Used as ``with
    bind_job(...):`` it restores the previous keys on exit. Each asyncio task has its
    own copy of the context (and a task it starts, a copy of that), so parallel jobs
    never mix keys.
    """
    previous = _keys.get()
    given = {"job": job, "file": file, "dataset": dataset, "revision": revision}
    _keys.set(MappingProxyType({**previous, **{k: v for k, v in given.items() if v is not None}}))
    return JobBinding(previous)


def bind_revision(seq: int | None) -> None:
    """The job's revision is now ``seq``: opened, or forgotten (None) when it starts over."""
    keys = {k: v for k, v in _keys.get().items() if k != "revision"}
    if seq is not None:
        keys["revision"] = seq
    _keys.set(MappingProxyType(keys))


def job_keys() -> Mapping[str, Any]:
    """The keys bound in this context now."""
    return _keys.get()
