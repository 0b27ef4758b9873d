"""The upload token bucket's arithmetic, on a clock the tests move: burst, refill, rate
changes, fairness between payers, and the config's rate strings. No sleeping: the
bucket's wait is replaced by one that moves the fake clock by the time asked for."""

from __future__ import annotations

import asyncio

import pytest

from dsmsyncd.config.rates import parse_rate
from dsmsyncd.dsmapi.rate_limit import BURST_S, TokenBucket
from tests.daemon.support.fake_clock import FakeClock

RATE = 10_000_000
SLICE = 256 * 1024


class ClockedWait:
    """The bucket's wait: moves ``clock`` by what was asked, and records each wait."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, _changed: asyncio.Event, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)  # let other payers queue, as a real wait would


def bucket_at(rate: float) -> tuple[TokenBucket, FakeClock, ClockedWait]:
    clock = FakeClock()
    wait = ClockedWait(clock)
    return TokenBucket(rate, clock=clock, wait=wait), clock, wait


def test_a_full_bucket_lets_its_burst_through_then_refills_at_the_rate() -> None:
    bucket, clock, _ = bucket_at(RATE)
    assert bucket.capacity == RATE * BURST_S
    assert bucket.try_take(bucket.capacity) == 0.0  # the burst: at once
    assert bucket.try_take(1_000_000) == pytest.approx(0.1)  # then 1 MB takes 0.1 s
    clock.advance(0.05)
    assert bucket.tokens == pytest.approx(500_000)
    clock.advance(10.0)
    assert bucket.tokens == pytest.approx(bucket.capacity)  # never more than the burst


async def test_paying_for_many_slices_takes_bytes_over_rate_seconds() -> None:
    bucket, clock, wait = bucket_at(RATE)
    started = clock.now
    for _ in range(100):
        await bucket.take(SLICE)
    paid = 100 * SLICE
    assert bucket.paid == paid
    # The burst was free; every other byte cost 1/RATE seconds of the fake clock.
    assert clock.now - started == pytest.approx((paid - bucket.capacity) / RATE)
    assert max(wait.waits) <= SLICE / RATE + 1e-9


async def test_a_payment_larger_than_the_bucket_is_paid_in_pieces() -> None:
    bucket, clock, _ = bucket_at(1000)  # 50 bytes of burst, 256 KiB slices
    await bucket.take(SLICE)
    assert clock.now - 1000.0 == pytest.approx((SLICE - 50) / 1000)


async def test_payers_take_turns_a_slice_each() -> None:
    bucket, _, _ = bucket_at(RATE)
    order: list[str] = []

    async def sender(name: str) -> None:
        for _ in range(6):
            await bucket.take(SLICE)
            order.append(name)
            await asyncio.sleep(0)  # the slice's write

    await asyncio.gather(sender("a"), sender("b"))
    assert order[2:] == ["a", "b"] * 5  # after the free burst, strictly alternating


async def test_a_rate_change_applies_to_the_payer_waiting_and_to_later_ones() -> None:
    bucket, clock, wait = bucket_at(RATE)
    bucket.try_take(bucket.capacity)
    bucket.set_rate(1_000_000)
    assert bucket.rate == 1_000_000
    assert bucket.tokens <= bucket.capacity == 50_000
    await bucket.take(SLICE)
    assert wait.waits[0] == pytest.approx(50_000 / 1_000_000)  # pieces at the new rate
    assert clock.now - 1000.0 == pytest.approx(SLICE / 1_000_000)


async def test_a_waiting_payer_wakes_when_the_rate_changes() -> None:
    bucket = TokenBucket(1)  # one byte a second: a slice would take days
    bucket.try_take(bucket.capacity)
    payer = asyncio.create_task(bucket.take(SLICE))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not payer.done()
    bucket.set_rate(0)  # no limit any more: the payer goes at once
    await asyncio.wait_for(payer, timeout=5)
    assert bucket.paid == SLICE


def test_no_limit_never_waits() -> None:
    bucket, _, _ = bucket_at(0)
    assert bucket.try_take(10**12) == 0.0
    with pytest.raises(ValueError, match="0 \\(no limit\\) or a positive number"):
        TokenBucket(-1)


@pytest.mark.parametrize(
    ("written", "bytes_per_s"),
    [
        ("10MB/s", 10_000_000),
        ("10 MB", 10_000_000),
        ("10 MiB/s", 10 * 1024 * 1024),
        ("800 kB/s", 800_000),
        ("1.5GB", 1_500_000_000),
        (12345, 12345),
        ("0", 0),
    ],
)
def test_rates_are_read_in_decimal_and_binary_units(written: object, bytes_per_s: int) -> None:
    assert parse_rate(written) == bytes_per_s


@pytest.mark.parametrize("written", ["fast", "10 MBps", "-1", -5, True, "10 XB/s"])
def test_a_bad_rate_says_the_accepted_forms(written: object) -> None:
    with pytest.raises(ValueError, match="expected bytes per second, like '10MB/s'"):
        parse_rate(written)
