"""A notify target's rate limit: at most N messages in any rolling hour, the rest counted.

A rolling window (the times of the last N sends) rather than a fixed clock hour, so a
burst at 10:59 and another at 11:00 cannot send 2N within two minutes. What the limit
holds back is counted per event, never queued: when a slot frees, one summary message
("N more events suppressed") takes it and the count starts over. The clock is passed
in, so tests move time instead of waiting for it.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable

WINDOW_S = 3600.0


class HourlyLimit:
    def __init__(self, max_per_hour: int, clock: Callable[[], float]) -> None:
        self.max_per_hour = max_per_hour
        self._clock = clock
        self._sent: deque[float] = deque()
        self.suppressed: Counter[str] = Counter()

    def take(self) -> bool:
        """Use a slot now if one is free (True); else False, and the caller holds back."""
        now = self._clock()
        while self._sent and now - self._sent[0] >= WINDOW_S:
            self._sent.popleft()
        if len(self._sent) >= self.max_per_hour:
            return False
        self._sent.append(now)
        return True

    def suppress(self, event: str) -> None:
        self.suppressed[event] += 1

    def summary_due(self) -> Counter[str] | None:
        """What was held back, if anything was and a slot is free (the slot is taken)."""
        if not self.suppressed or not self.take():
            return None
        held, self.suppressed = self.suppressed, Counter()
        return held

    def reopens_in(self) -> float | None:
        """Seconds until a slot frees, while something waits to be summed up; else None."""
        if not self.suppressed:
            return None
        if len(self._sent) < self.max_per_hour:
            return 0.0
        return max(0.0, self._sent[0] + WINDOW_S - self._clock())
