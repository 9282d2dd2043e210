"""Per-key token buckets: a burst, then refusals saying how long to wait; refill over time;
keys never share a bucket; idle full buckets are dropped so memory stays bounded."""

from __future__ import annotations

import pytest

from adapters.gateway.ratelimit import RateLimiter, retry_after_header
from bus.errors import ConfigError


class Clock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def limiter(clock: Clock, rate: float = 2.0, burst: int = 3, **kwargs: int) -> RateLimiter:
    return RateLimiter(rate, burst, clock, **kwargs)


def test_a_burst_is_allowed_then_the_next_request_waits_one_token(clock: Clock) -> None:
    limit = limiter(clock)
    assert [limit.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("a") == pytest.approx(0.5)  # one token at 2 per second


def test_a_refused_request_takes_nothing(clock: Clock) -> None:
    limit = limiter(clock)
    for _ in range(3):
        limit.take("a")
    assert [limit.take("a") for _ in range(5)] == [pytest.approx(0.5)] * 5
    clock.now += 0.5
    assert limit.take("a") == 0.0
    assert limit.take("a") == pytest.approx(0.5)


def test_the_wait_shrinks_as_the_bucket_refills(clock: Clock) -> None:
    limit = limiter(clock)
    for _ in range(3):
        limit.take("a")
    clock.now += 0.125
    assert limit.take("a") == pytest.approx(0.375)


def test_tokens_refill_at_the_rate(clock: Clock) -> None:
    limit = limiter(clock)
    for _ in range(3):
        limit.take("a")
    clock.now += 1.0  # two tokens at 2 per second
    assert [limit.take("a") for _ in range(2)] == [0.0, 0.0]
    assert limit.take("a") > 0


def test_a_long_pause_refills_to_the_burst_and_no_further(clock: Clock) -> None:
    limit = limiter(clock)
    limit.take("a")
    clock.now += 3600
    assert [limit.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("a") > 0


def test_a_slow_rate_gives_a_long_wait(clock: Clock) -> None:
    limit = limiter(clock, rate=0.1, burst=1)
    assert limit.take("a") == 0.0
    assert limit.take("a") == pytest.approx(10.0)


def test_keys_do_not_share_a_bucket(clock: Clock) -> None:
    limit = limiter(clock)
    for _ in range(3):
        limit.take("dpmptsp-sicantik")
    assert limit.take("dpmptsp-sicantik") > 0
    assert [limit.take("dinkopukm-siumkm") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("dinkopukm-siumkm") > 0


def test_a_clock_going_back_gives_no_extra_tokens(clock: Clock) -> None:
    limit = limiter(clock)
    for _ in range(3):
        limit.take("a")
    clock.now -= 100
    assert limit.take("a") == pytest.approx(0.5)


def test_a_bucket_idle_until_certainly_full_is_dropped(clock: Clock) -> None:
    limit = limiter(clock)  # full again after 3 / 2 = 1.5 s, whatever it held
    for _ in range(3):
        limit.take("a")
    clock.now += 1.0
    limit.take("b")
    assert len(limit) == 2, "a is not full yet: its bucket is kept"
    clock.now += 0.5
    limit.take("b")
    assert len(limit) == 1, "a is full again: keeping it would change nothing"


def test_a_dropped_bucket_comes_back_as_full_as_it_would_have_been(clock: Clock) -> None:
    limit = limiter(clock)
    for _ in range(3):
        limit.take("a")
    clock.now += 1.5
    limit.take("b")
    assert len(limit) == 1
    assert [limit.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("a") > 0


def test_memory_follows_the_recently_seen_keys_not_every_key_ever_seen(clock: Clock) -> None:
    limit = limiter(clock, rate=10.0, burst=5)  # full after 0.5 s idle
    for i in range(1000):
        limit.take(f"10.0.{i // 250}.{i % 250}")
        clock.now += 0.01
    assert len(limit) <= 51


def test_max_keys_bounds_a_flood_of_new_keys(clock: Clock) -> None:
    limit = limiter(clock, max_keys=100)
    for i in range(1000):
        assert limit.take(f"key-{i}") == 0.0
    assert len(limit) == 100


def test_past_max_keys_the_least_recently_used_bucket_goes(clock: Clock) -> None:
    limit = limiter(clock, burst=1, max_keys=2)
    limit.take("a")
    limit.take("b")
    assert limit.take("a") > 0  # a is now the most recently used
    limit.take("c")  # b goes
    assert limit.take("a") > 0, "a kept its empty bucket"
    assert limit.take("b") == 0.0, "b lost its bucket"


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
def test_a_rate_that_is_not_a_positive_number_is_refused(rate: float) -> None:
    with pytest.raises(ConfigError, match="rate_per_s must be"):
        RateLimiter(rate, 3)


@pytest.mark.parametrize("burst", [0, -1, True, 2.5])
def test_a_burst_that_is_not_a_whole_number_of_at_least_one_is_refused(burst: int) -> None:
    with pytest.raises(ConfigError, match="burst must be"):
        RateLimiter(1.0, burst)


def test_max_keys_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_keys must be"):
        RateLimiter(1.0, 3, max_keys=0)


@pytest.mark.parametrize(
    ("wait", "header"), [(0.0, "1"), (0.01, "1"), (0.5, "1"), (1.0, "1"), (1.01, "2"), (9.5, "10")]
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header
