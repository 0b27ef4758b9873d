"""Retry with jittered exponential backoff, for calls that may heal on their own.

Only **idempotent** requests are retried here (reads, chunk uploads, commit, discard):
sending one twice leaves the server as sending it once. Connection errors, timeouts,
408/409/429 and 5xx are retried (honouring a server's ``Retry-After``); anything else
fails at once, because repeating a rejected request only repeats the rejection.

A **non-idempotent** request (create a dataset, open a revision, create a source,
transform, create a config, apply) is never retried, neither here nor by aiohttp
(``transport.Transport.call_once``): a transport failure after it may have been sent
is ``OutcomeUnknown``, and the pipeline (``pipeline/resume.py``) reads the
revision to decide — follow the apply job the server started, look for the orphan
revision it opened, or send the request again once it is known not to have happened.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from dsmsyncd.dsmapi.errors import RetryableServerError, TransportError

logger = logging.getLogger("dsmsyncd.dsmapi.retry")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter (AWS architecture blog): spreads retries of many clients apart."""
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        return random.uniform(0, ceiling)


NO_RETRY = RetryPolicy(attempts=1)

OnRetry = Callable[[str, int, float], None]


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: OnRetry | None = None,
) -> T:
    """Run ``call`` until it succeeds, fails for good, or the attempts run out."""
    for attempt in range(policy.attempts):
        try:
            return await call()
        except (TransportError, RetryableServerError) as exc:
            if attempt + 1 >= policy.attempts:
                raise
            retry_after = exc.retry_after if isinstance(exc, RetryableServerError) else None
            reason = f"http_{exc.status}" if isinstance(exc, RetryableServerError) else "transport"
            delay = policy.delay(attempt, retry_after)
            logger.warning("retrying after %s in %.2fs: %s", reason, delay, exc)
            if on_retry is not None:
                on_retry(reason, attempt + 1, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")
