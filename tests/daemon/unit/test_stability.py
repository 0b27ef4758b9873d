"""The stability gate: a (size, mtime) pair must hold still for min_age, by the injected clock."""

from __future__ import annotations

import pytest

from dsmsyncd.sources.stability import StabilityGate
from tests.daemon.support.fake_clock import FakeClock

MIN_AGE = 2.0


@pytest.fixture
def gate(clock: FakeClock) -> StabilityGate:
    return StabilityGate(MIN_AGE, clock)


def settle(gate: StabilityGate, clock: FakeClock, size: int = 10, mtime_ns: int = 111) -> None:
    """``a.csv`` at (size, mtime) seen, then seen unchanged min_age later: the gate yields it."""
    assert gate.observe("a.csv", size, mtime_ns) is False
    clock.advance(MIN_AGE)
    assert gate.observe("a.csv", size, mtime_ns) is True


def test_stability_new_pair_waits_for_min_age(gate: StabilityGate, clock: FakeClock) -> None:
    assert gate.observe("a.csv", 10, 111) is False
    clock.advance(1.9)
    assert gate.observe("a.csv", 10, 111) is False
    clock.advance(0.1)
    assert gate.observe("a.csv", 10, 111) is True


def test_stability_stable_pair_is_yielded_once(gate: StabilityGate, clock: FakeClock) -> None:
    settle(gate, clock)
    clock.advance(60.0)
    assert gate.observe("a.csv", 10, 111) is False


def test_stability_change_resets_the_wait(gate: StabilityGate, clock: FakeClock) -> None:
    gate.observe("a.csv", 10, 111)
    clock.advance(1.5)
    assert gate.observe("a.csv", 20, 222) is False  # grew: the clock starts again
    clock.advance(1.5)
    assert gate.observe("a.csv", 20, 222) is False
    clock.advance(0.5)
    assert gate.observe("a.csv", 20, 222) is True


def test_stability_mtime_only_change_resets_the_wait(gate: StabilityGate, clock: FakeClock) -> None:
    gate.observe("a.csv", 10, 111)
    clock.advance(2.0)
    assert gate.observe("a.csv", 10, 112) is False


@pytest.mark.parametrize("mtime_ns", [0, 4_102_444_800 * 10**9])  # 1970, and 2100
def test_stability_file_mtime_does_not_count_as_age(
    gate: StabilityGate, clock: FakeClock, mtime_ns: int
) -> None:
    settle(gate, clock, mtime_ns=mtime_ns)


def test_stability_zero_min_age_takes_on_first_sight(clock: FakeClock) -> None:
    gate = StabilityGate(0.0, clock)
    assert gate.observe("a.csv", 10, 111) is True
    assert gate.observe("a.csv", 10, 111) is False


def test_stability_rewrite_after_yield_is_a_new_identity(
    gate: StabilityGate, clock: FakeClock
) -> None:
    settle(gate, clock)
    settle(gate, clock, size=30, mtime_ns=333)


def test_stability_forget_makes_the_same_pair_wait_again(
    gate: StabilityGate, clock: FakeClock
) -> None:
    settle(gate, clock)
    gate.forget("a.csv")
    assert len(gate) == 0
    settle(gate, clock)


def test_stability_sweep_drops_paths_the_scan_did_not_see(gate: StabilityGate) -> None:
    gate.observe("stays.csv", 1, 1)
    gate.observe("goes.csv", 1, 1)
    assert gate.sweep() == 0
    gate.observe("stays.csv", 1, 1)
    assert gate.sweep() == 1
    assert len(gate) == 1
    assert list(gate.pending()) == ["stays.csv"]


def test_stability_pending_excludes_yielded(gate: StabilityGate, clock: FakeClock) -> None:
    gate.observe("old.csv", 1, 1)
    clock.advance(2.0)
    gate.observe("old.csv", 1, 1)
    gate.observe("new.csv", 1, 1)
    assert list(gate.pending()) == ["new.csv"]


def test_stability_seconds_until_due_follows_the_oldest_pending(clock: FakeClock) -> None:
    gate = StabilityGate(5.0, clock)
    assert gate.seconds_until_due() is None
    gate.observe("a.csv", 1, 1)
    clock.advance(2.0)
    gate.observe("b.csv", 1, 1)
    assert gate.seconds_until_due() == pytest.approx(3.0)
    clock.advance(10.0)
    assert gate.seconds_until_due() == 0.0


def test_stability_negative_min_age_is_refused() -> None:
    with pytest.raises(ValueError, match="min_age"):
        StabilityGate(-1.0)
