"""What the notifier has done and has left to do: counts by target, channel and outcome,
the work in flight, and a way to wait for either to change (no polling).

The counts feed ``dsmsyncd_notifications_total`` and ``/status``; ``until`` is how
the drain waits for the queues to empty and how tests wait for a delivery to end.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Literal

from dsmsyncd.observe.metrics import Metrics

NotifyOutcome = Literal["sent", "failed", "retried", "suppressed", "dropped"]


class Progress:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.pending = 0
        self.last_error: dict[str, str] = {}
        self._changed = asyncio.Event()

    def outcome(self, target: str, channel: str, outcome: NotifyOutcome) -> None:
        self.counts[(target, channel, outcome)] += 1
        self._metrics.notification(channel, outcome)
        self._notify()

    def failed(self, target: str, error: str) -> None:
        self.last_error[target] = error

    def queued(self) -> None:
        self.pending += 1

    def done(self) -> None:
        self.pending -= 1
        self._notify()

    def total(self, outcome: NotifyOutcome, target: str | None = None) -> int:
        return sum(
            n for (t, _channel, o), n in self.counts.items() if o == outcome and target in (None, t)
        )

    async def until(self, done: Callable[[Progress], bool]) -> None:
        """Return once ``done(self)`` holds, looked at after each change."""
        while not done(self):
            changed = self._changed
            await changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
