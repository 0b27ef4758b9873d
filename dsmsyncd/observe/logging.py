"""One log format for the whole process: structlog in front of stdlib logging.

Modules log through ``logging.getLogger("dsmsyncd.<module>")`` (or ``structlog``);
both go through one root handler whose ``ProcessorFormatter`` renders JSON lines
when the stream is not a terminal (journald, Kubernetes, a log shipper) and a
readable console line when it is. Every line logged while a job runs carries the job's
keys (``bind_job``: ``job``, ``file``, ``dataset``, ``revision``), whoever logs it (the
pipeline, the upload's chunk workers, the client's retries), so one ``grep '"job": 42'``
or one Loki query shows a file's story.

Redaction (``config/redact.py``, re-exported here) is the last step before rendering,
after tracebacks become text, so that no line leaves the process with a secret in it
(DESIGN.md invariant 5).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.contextvars import merge_contextvars
from structlog.tracebacks import ExceptionDictTransformer
from structlog.types import EventDict, Processor, WrappedLogger

from dsmsyncd.config.redact import REDACTED, redact_text, redact_value
from dsmsyncd.observe.job_keys import JobBinding, bind_job, bind_revision, job_keys

__all__ = [
    "REDACTED",
    "JobBinding",
    "bind_job",
    "bind_revision",
    "configure_logging",
    "redact_text",
    "redact_value",
]

LEVELS = ("debug", "info", "warning", "error", "critical")

_HANDLER_MARK = "_dsmsyncd_handler"


def _redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return {k: redact_value(v, k) for k, v in event_dict.items()}


def merge_job_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The job's keys (``job_keys.bind_job``) on the line, unless it has its own."""
    for key, value in job_keys().items():
        event_dict.setdefault(key, value)
    return event_dict


# Attributes every LogRecord has, plus those that formatters add ("message", "asctime"):
# whatever else is on a record came from ``extra=`` and belongs on the line.
_RECORD_KEYS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def _add_extra(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if record is not None:
        for key, value in record.__dict__.items():
            if key not in _RECORD_KEYS and not key.startswith("_"):
                event_dict.setdefault(key, value)
    return event_dict


def _shared_processors() -> list[Processor]:
    # Run on every line, structlog's or stdlib's, before the formatter renders it.
    return [
        merge_contextvars,
        merge_job_keys,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderers(json: bool, colors: bool) -> list[Processor]:
    if json:
        # No locals in tracebacks: a frame's locals may hold a password or a token.
        tracebacks = structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False)
        )
        return [tracebacks, _redact, structlog.processors.JSONRenderer()]
    # Tracebacks become text before redaction, so the exception message is masked too.
    return [
        structlog.processors.format_exc_info,
        _redact,
        structlog.dev.ConsoleRenderer(colors=colors),
    ]


def configure_logging(
    *, level: str = "info", json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Route all logging through one root handler on ``stream`` (default stderr).

    ``json=None`` picks JSON lines unless ``stream`` is a terminal. Calling it again
    replaces the handler it installed before (and keeps anyone else's, such as pytest's).
    """
    name = level.lower()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    numeric = logging.getLevelNamesMapping()[name.upper()]
    out = stream if stream is not None else sys.stderr
    tty = out.isatty()
    as_json = (not tty) if json is None else json

    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger used before configure_logging (at import time) must still
        # pick up this configuration rather than keep structlog's default printer.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _add_extra],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderers(as_json, colors=tty),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
