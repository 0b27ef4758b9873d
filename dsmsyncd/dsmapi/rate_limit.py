"""One token bucket for every upload byte the daemon sends: ``[limits] max_upload_rate``.

Operators on a thin office uplink or a shared site need the daemon to stay under a
bandwidth, whatever the number of jobs and chunks in flight. So there is one bucket
per daemon, and every chunk body pays for each of its slices (``chunk_payload.SLICE``)
before writing it: the rate is smooth (a slice at a time, not a chunk at a time) and
fair between concurrent chunks, because payers queue on a FIFO lock and each pays for
one slice before the next payer's turn.

The bucket holds at most ``BURST_S`` seconds of tokens, so after a pause the daemon
sends at most that much faster than the rate (a 10 MB/s limit lets 0.5 MB through at
once). A payment larger than the bucket is paid in bucket-sized pieces. ``set_rate``
changes the rate in place (SIGHUP): payers that were waiting wake up and wait again
at the new rate, so jobs in flight follow it at their next slice. A rate of 0 means
no limit; payers then return at once.

The arithmetic (``try_take``) reads only the injected ``clock``, and the waiting is
injected too (``wait``), so tests drive both without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

__all__ = ["BURST_S", "TokenBucket", "Wait"]

BURST_S = 0.05
_EPSILON = 1e-6  # tokens: float rounding must not leave a payer a billionth short
Wait = Callable[[asyncio.Event, float], Awaitable[None]]


async def wait_or_change(changed: asyncio.Event, seconds: float) -> None:
    """Return after ``seconds``, or sooner when the rate changes."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await changed.wait()


class TokenBucket:
    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Wait = wait_or_change,
    ) -> None:
        if rate < 0:
            raise ValueError("a rate is 0 (no limit) or a positive number of bytes/s")
        self._clock = clock
        self._wait = wait
        self._rate = float(rate)
        self._tokens = self.capacity
        self._last = clock()
        self._turn = asyncio.Lock()  # FIFO: payers take turns, a slice each
        self._changed = asyncio.Event()
        self.paid = 0  # bytes paid for since the start (a counter for metrics/benches)

    @property
    def rate(self) -> float:
        """Bytes per second; 0 is no limit."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The most tokens the bucket holds: the largest burst after a pause."""
        return self._rate * BURST_S

    @property
    def tokens(self) -> float:
        """Tokens available now (after refilling up to the clock)."""
        self._refill()
        return self._tokens

    def set_rate(self, rate: float) -> None:
        """Change the rate in place; waiting payers wake and pay at the new rate."""
        if rate < 0:
            raise ValueError("a rate is 0 (no limit) or a positive number of bytes/s")
        self._refill()  # tokens earned so far were earned at the old rate
        self._rate = float(rate)
        self._tokens = min(self._tokens, self.capacity)
        self._changed.set()
        self._changed = asyncio.Event()

    def try_take(self, amount: float) -> float:
        """Take ``amount`` tokens and return 0.0, or take none and return the seconds
        until they will be there. ``amount`` is at most ``capacity`` (see ``take``)."""
        self._refill()
        if self._rate == 0 or self._tokens + _EPSILON >= amount:
            self._tokens = max(0.0, self._tokens - amount) if self._rate else 0.0
            return 0.0
        return (amount - self._tokens) / self._rate

    async def take(self, amount: int) -> None:
        """Wait until ``amount`` bytes may be sent (in turn with other payers)."""
        if self._rate == 0:
            self.paid += amount
            return
        async with self._turn:
            remaining = float(amount)
            while remaining > 0 and self._rate > 0:
                piece = min(remaining, self.capacity)
                delay = self.try_take(piece)
                if delay == 0.0:
                    remaining -= piece
                else:
                    await self._wait(self._changed, delay)
        self.paid += amount

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self._rate)
