"""Log lines as a shipper sees them: JSON from a non-TTY stream, job keys bound, secrets masked."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from dsmsyncd.observe.logging import (
    REDACTED,
    bind_job,
    configure_logging,
    redact_text,
    redact_value,
)

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def lines(stream: io.StringIO) -> Lines:
    configure_logging(level="debug", json=True, stream=stream)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    return read


def test_configure_logging_renders_stdlib_line_as_json_with_standard_keys(lines: Lines) -> None:
    logging.getLogger("dsmsyncd.pipeline.sync_job").info("published %s", "a.csv")

    [line] = lines()
    assert line["event"] == "published a.csv"
    assert line["level"] == "info"
    assert line["logger"] == "dsmsyncd.pipeline.sync_job"
    assert line["timestamp"].endswith("Z")


def test_configure_logging_renders_structlog_line_in_the_same_format(lines: Lines) -> None:
    structlog.get_logger("dsmsyncd.daemon.scheduler").warning("lane stalled", dataset="abcd-1234")

    [line] = lines()
    assert line["event"] == "lane stalled"
    assert line["level"] == "warning"
    assert line["logger"] == "dsmsyncd.daemon.scheduler"
    assert line["dataset"] == "abcd-1234"
    assert "timestamp" in line


def test_configure_logging_picks_json_when_stream_is_not_a_tty(stream: io.StringIO) -> None:
    configure_logging(stream=stream)

    logging.getLogger("dsmsyncd.x").info("hello")

    assert json.loads(stream.getvalue())["event"] == "hello"


def test_configure_logging_console_mode_writes_plain_text(stream: io.StringIO) -> None:
    configure_logging(json=False, stream=stream)

    logging.getLogger("dsmsyncd.x").info("hello", extra={"password": "hunter2"})

    text = stream.getvalue()
    assert "hello" in text
    assert "hunter2" not in text
    assert not text.startswith("{")


def test_configure_logging_twice_keeps_one_handler(stream: io.StringIO) -> None:
    configure_logging(json=True, stream=io.StringIO())
    configure_logging(json=True, stream=stream)

    logging.getLogger("dsmsyncd.x").info("once")

    assert stream.getvalue().count("once") == 1


def test_configure_logging_filters_below_level(stream: io.StringIO) -> None:
    configure_logging(level="warning", json=True, stream=stream)

    logging.getLogger("dsmsyncd.x").info("quiet")
    structlog.get_logger("dsmsyncd.x").debug("quieter")
    logging.getLogger("dsmsyncd.x").error("loud")

    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["loud"]


def test_configure_logging_rejects_unknown_level() -> None:
    with pytest.raises(ValueError, match="verbose"):
        configure_logging(level="verbose", stream=io.StringIO())


def test_bind_job_puts_job_keys_on_stdlib_and_structlog_lines(lines: Lines) -> None:
    with bind_job(job=7, file="permits/a.csv", dataset="abcd-1234"):
        logging.getLogger("dsmsyncd.pipeline.upload").info("chunk sent")
        bind_job(revision=3)
        structlog.get_logger("dsmsyncd.pipeline.sync_job").info("applied")
    logging.getLogger("dsmsyncd.daemon.scheduler").info("idle")

    sent, applied, idle = lines()
    assert {k: sent[k] for k in ("job", "file", "dataset")} == {
        "job": 7,
        "file": "permits/a.csv",
        "dataset": "abcd-1234",
    }
    assert "revision" not in sent
    assert applied["revision"] == 3
    assert applied["job"] == 7
    assert not {"job", "file", "dataset", "revision"} & idle.keys()


async def test_bind_job_keeps_parallel_jobs_apart(lines: Lines) -> None:
    both_bound = asyncio.Barrier(2)

    async def job(job_id: int) -> None:
        with bind_job(job=job_id, file=f"f{job_id}.csv", dataset="abcd-1234"):
            await both_bound.wait()
            logging.getLogger("dsmsyncd.pipeline.sync_job").info("step", extra={"step_of": job_id})

    await asyncio.gather(job(1), job(2))

    steps = [line for line in lines() if line["logger"] == "dsmsyncd.pipeline.sync_job"]
    assert sorted((line["job"], line["step_of"]) for line in steps) == [(1, 1), (2, 2)]


def test_redaction_masks_secret_keys_at_any_depth(lines: Lines) -> None:
    structlog.get_logger("dsmsyncd.config.schema").info(
        "loaded",
        password="hunter2",
        app_token="tok-123",
        auth={"Authorization": "Basic dXNlcjpwYXNz", "user": "ops"},
        client_secret="s3",
    )
    logging.getLogger("dsmsyncd.dsmapi").info("call", extra={"api_key": "k-999"})

    loaded, call = lines()
    assert loaded["password"] == REDACTED
    assert loaded["app_token"] == REDACTED
    assert loaded["auth"] == {"Authorization": REDACTED, "user": "ops"}
    assert loaded["client_secret"] == REDACTED
    assert call["api_key"] == REDACTED
    assert "hunter2" not in json.dumps([loaded, call])


def test_redaction_masks_url_credentials_in_messages_and_values(lines: Lines) -> None:
    logging.getLogger("dsmsyncd.dsmapi").warning(
        "cannot reach %s", "https://ops:hunter2@data.example.gov/api"
    )
    structlog.get_logger("dsmsyncd.dsmapi").info(
        "target", url="https://ops:p@ss@data.example.gov/api", hosts=["s3://key:sec@bucket/x"]
    )

    message, target = lines()
    assert message["event"] == f"cannot reach https://{REDACTED}@data.example.gov/api"
    assert target["url"] == f"https://{REDACTED}@data.example.gov/api"
    assert target["hosts"] == [f"s3://{REDACTED}@bucket/x"]


def test_redaction_masks_exception_text_and_omits_locals(lines: Lines) -> None:
    def fail() -> None:
        password = "hunter2"  # a local a traceback with locals would show
        raise ConnectionError(f"refused: https://ops:{password}@data.example.gov/")

    try:
        fail()
    except ConnectionError:
        logging.getLogger("dsmsyncd.dsmapi").exception("open revision failed")

    [line] = lines()
    assert line["exception"][0]["exc_type"] == "ConnectionError"
    assert "hunter2" not in json.dumps(line)
    assert f"https://{REDACTED}@data.example.gov/" in line["exception"][0]["exc_value"]


def test_redact_text_masks_inline_tokens_and_authorization_headers() -> None:
    text = redact_text(
        "GET /resource/x.json?$$app_token=abc123&limit=5 "
        "headers={'Authorization': 'Basic dXNlcjpw'} password=hunter2"
    )

    assert "abc123" not in text
    assert "dXNlcjpw" not in text
    assert "hunter2" not in text
    assert "limit=5" in text
    assert f"'Authorization': 'Basic {REDACTED}'" in text


def test_redact_value_leaves_plain_values_alone() -> None:
    value = {"file": "permits/a.csv", "rows": 10, "url": "https://data.example.gov/a@b"}

    assert redact_value(value) == value
