"""The supervisor: a failing task is logged, counted, shown, restarted, and seen to recover."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dsmsyncd.daemon.supervisor import Supervisor
from dsmsyncd.observe.metrics import Metrics


def failures(metrics: Metrics, task: str) -> float:
    value = metrics.registry.get_sample_value("dsmsyncd_task_failures_total", {"task": task})
    return value or 0.0


async def test_failing_loop_is_restarted_reported_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics, stop = Metrics(), asyncio.Event()
    tasks = Supervisor(metrics, stop, base_delay_s=0.01, max_delay_s=0.02, healthy_after_s=0.05)
    calls = 0
    running = asyncio.Event()

    async def loop() -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise OSError("database or disk is full")
        running.set()
        await stop.wait()

    with caplog.at_level(logging.ERROR, "dsmsyncd.daemon.supervisor"):
        tasks.keep("discovery:drop", loop)
        async with asyncio.timeout(5):
            await running.wait()
    assert tasks.problems() == {
        "discovery:drop": "stopped on an error: OSError: database or disk is full "
        "(failure 2; retrying in 0.02s)"
    }
    assert failures(metrics, "discovery:drop") == 2
    assert "discovery:drop stopped on an error: OSError" in caplog.text
    assert "Traceback" in caplog.text  # the first failure carries its traceback

    # The restarted loop counts as recovered once it runs healthy_after_s without failing.
    await asyncio.wait_for(tasks.until(lambda problems: not problems), 5)
    stop.set()
    await tasks.wait("discovery:drop")
    assert calls == 3


async def test_step_failures_reported_by_the_task_keep_it_failing() -> None:
    metrics, stop = Metrics(), asyncio.Event()
    tasks = Supervisor(metrics, stop, base_delay_s=0.01, healthy_after_s=0.01)
    assert tasks.failed("discovery:drop", OSError("disk full"), "cannot record a.csv") == 0.01
    assert tasks.failed("discovery:drop", OSError("disk full"), "cannot record a.csv") == 0.02
    assert (
        "cannot record a.csv: OSError: disk full (failure 2" in tasks.problems()["discovery:drop"]
    )
    tasks.recovered("discovery:drop")
    assert tasks.problems() == {}
    assert tasks.failed("discovery:drop", OSError("disk full"), "again") == 0.01  # back-off reset


async def test_one_shot_failure_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    tasks = Supervisor(metrics, asyncio.Event())

    async def reload() -> None:
        raise ValueError("bad source")

    with caplog.at_level(logging.ERROR, "dsmsyncd.daemon.supervisor"):
        task = tasks.spawn("reload", reload())
        await asyncio.gather(task, return_exceptions=True)
        await tasks.finish_oneshots(5)
    assert failures(metrics, "reload") == 1
    assert "task reload failed: bad source" in caplog.text


async def test_cancel_waits_for_the_loop_to_clean_up() -> None:
    tasks = Supervisor(Metrics(), asyncio.Event())
    started, cleaned = asyncio.Event(), asyncio.Event()

    async def loop() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            cleaned.set()

    tasks.keep("scheduler", loop)
    await started.wait()
    await tasks.cancel()
    assert cleaned.is_set()


async def test_until_wakes_on_each_failure_and_recovery() -> None:
    tasks = Supervisor(Metrics(), asyncio.Event())
    failing = asyncio.ensure_future(tasks.until(lambda problems: "discovery:drop" in problems))
    await asyncio.sleep(0)  # one step: the waiter is parked on the change event
    assert not failing.done()
    tasks.failed("discovery:drop", OSError("disk full"), "cannot record a.csv")
    await asyncio.wait_for(failing, 5)
    recovered = asyncio.ensure_future(tasks.until(lambda problems: not problems))
    await asyncio.sleep(0)
    assert not recovered.done()
    tasks.recovered("discovery:drop")
    await asyncio.wait_for(recovered, 5)
