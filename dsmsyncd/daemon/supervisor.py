"""The daemon's own tasks, each kept, watched and restarted: no failure goes unseen.

asyncio keeps only a weak reference to a task and drops the exception of one nobody
awaits (at best a "never retrieved" line at garbage collection). A discovery loop that
died that way on a full disk would end discovery for good while ``/readyz`` said 200.
So every task of the daemon runs here:

- ``keep(name, factory)``: a long-lived loop. An exception is logged with its
  traceback, counted in ``dsmsyncd_task_failures_total{task}``, shown by ``/readyz``
  as a failing check, and the loop is started again after a back-off that doubles
  up to a cap, until it returns or the daemon stops. A restarted loop that runs
  ``healthy_after_s`` without a new failure counts as recovered.
- ``spawn(name, coroutine)``: a one-shot task (a reload). It is kept until done and
  its failure is logged and counted the same way.
- ``failed(name, exc)`` / ``recovered(name)``: a loop that retries a step itself
  (discovery recording a file) reports each failure and its recovery the same way.
- ``until(healthy)``: wait for the failures to reach a state, woken by each change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from dsmsyncd.observe.metrics import Metrics

logger = logging.getLogger("dsmsyncd.daemon.supervisor")

BASE_DELAY_S = 1.0
MAX_DELAY_S = 60.0
HEALTHY_AFTER_S = 10.0


class Supervisor:
    def __init__(
        self,
        metrics: Metrics,
        stop: asyncio.Event,
        *,
        base_delay_s: float = BASE_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        healthy_after_s: float = HEALTHY_AFTER_S,
    ) -> None:
        self._metrics = metrics
        self._stop = stop
        self._base = base_delay_s
        self._max = max_delay_s
        self._healthy_s = healthy_after_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._oneshots: set[asyncio.Task[Any]] = set()
        self._failures: dict[str, int] = {}
        self._problems: dict[str, str] = {}
        self._changed = asyncio.Event()  # set, and replaced, at each failure or recovery

    # -- long-lived loops ----------------------------------------------------------

    def keep(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Run ``factory()`` as task ``name``, again after each failure, until it returns."""
        if name in self._tasks and not self._tasks[name].done():
            raise RuntimeError(f"task {name} is already running")
        self._tasks[name] = asyncio.create_task(self._run(name, factory), name=name)

    async def _run(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        while not self._stop.is_set():
            attempt = asyncio.ensure_future(factory())
            try:
                await self._watch_recovery(name, attempt)
                await attempt
            except asyncio.CancelledError:
                attempt.cancel()  # and let it clean up before this task ends
                await asyncio.gather(attempt, return_exceptions=True)
                raise
            except Exception as exc:
                delay = self.failed(name, exc, "stopped on an error")
                if await self.stopped_within(delay):
                    return
                continue
            self.recovered(name)
            return

    async def _watch_recovery(self, name: str, attempt: asyncio.Future[None]) -> None:
        """After a failure: the attempt counts as recovered once it runs a while unfailed."""
        failures = self._failures.get(name, 0)
        if failures:
            done, _ = await asyncio.wait([attempt], timeout=self._healthy_s)
            if not done and self._failures.get(name, 0) == failures:
                self.recovered(name)

    async def wait(self, name: str) -> None:
        """Until task ``name`` has returned (it stops by itself once the daemon stops)."""
        task = self._tasks.get(name)
        if task is not None:
            await asyncio.wait([task])

    async def cancel(self, names: list[str] | None = None) -> None:
        """Cancel the named tasks (all by default) and wait for them to end."""
        chosen = list(self._tasks) if names is None else [n for n in names if n in self._tasks]
        tasks = [self._tasks.pop(name) for name in chosen]
        for name in chosen:
            self.recovered(name, quiet=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one-shot tasks --------------------------------------------------------------

    def spawn(self, name: str, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coroutine`` once; kept until done, a failure logged and counted."""
        task = asyncio.create_task(coroutine, name=name)
        self._oneshots.add(task)
        task.add_done_callback(self._oneshot_done)
        return task

    def _oneshot_done(self, task: asyncio.Task[Any]) -> None:
        self._oneshots.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            logger.error("task %s failed: %s", task.get_name(), exc, exc_info=exc)
            self._metrics.task_failed(task.get_name())

    async def finish_oneshots(self, timeout_s: float) -> None:
        """Let one-shot tasks (a reload) finish within ``timeout_s``, then cancel the rest."""
        if self._oneshots:
            _done, pending = await asyncio.wait(set(self._oneshots), timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- failures, for readiness -------------------------------------------------------

    def failed(self, name: str, exc: BaseException, doing: str) -> float:
        """Log, count and show a failure of ``name``; the back-off before its next try."""
        count = self._failures.get(name, 0) + 1
        self._failures[name] = count
        delay = min(self._max, self._base * 2.0 ** (count - 1))
        problem = f"{doing}: {_describe(exc)} (failure {count}; retrying in {delay:g}s)"
        self._problems[name] = problem
        self._metrics.task_failed(name)
        self._notify()
        logger.error("%s %s", name, problem, exc_info=exc if count == 1 else None)
        return delay

    def recovered(self, name: str, *, quiet: bool = False) -> None:
        """``name`` works again: its check passes and its back-off starts over."""
        count = self._failures.pop(name, 0)
        if self._problems.pop(name, None) is not None:
            self._notify()
        if count and not quiet:
            logger.info("%s works again after %d failure(s)", name, count)

    def problems(self) -> dict[str, str]:
        """Failing tasks by name, for ``/readyz``."""
        return dict(self._problems)

    async def until(self, healthy: Callable[[dict[str, str]], bool]) -> None:
        """Return once ``healthy(problems())`` holds, looked at after each failure and
        recovery (no polling): how a caller waits for a task to fail or come back."""
        while not healthy(self.problems()):
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def stopped_within(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the daemon stops first; True if it stopped."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        return self._stop.is_set()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
