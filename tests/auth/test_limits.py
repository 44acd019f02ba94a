"""auth/limits.py: token buckets per caller, and the requests no limit ever holds back."""

from __future__ import annotations

from consentry.auth.limits import (
    TokenBuckets,
    consent_opt_out,
    objection,
    portal_opt_out,
    withdrawal,
)


class Clock:
    def __init__(self) -> None:
        self.at = 100.0

    def __call__(self) -> float:
        return self.at


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(2.0, now=clock)
    assert [buckets.take("k") for _ in range(4)] == [0, 0, 0, 0]  # a burst of 2 s' worth
    assert buckets.take("k") == 1
    assert buckets.take("other") == 0  # each key its own bucket
    clock.at += 0.5
    assert buckets.take("k") == 0
    assert buckets.take("k") == 1
    clock.at += 60
    assert [buckets.take("k") for _ in range(5)] == [0, 0, 0, 0, 1]  # capped at the burst


def test_retry_after_is_the_whole_seconds_to_the_next_token() -> None:
    clock = Clock()
    buckets = TokenBuckets(0.1, now=clock)
    assert buckets.take("k") == 0
    assert buckets.take("k") == 10
    clock.at += 9.5
    assert buckets.take("k") == 1


def test_a_rate_of_zero_is_no_limit_and_memory_is_bounded() -> None:
    assert {TokenBuckets(0).take("k") for _ in range(1000)} == {0}
    clock = Clock()
    buckets = TokenBuckets(1.0, burst=1, max_buckets=3, now=clock)
    for key in "abcd":
        assert buckets.take(key) == 0
    # "a" was forgotten, and a forgotten bucket is a full one.
    assert buckets.take("a") == 0
    assert buckets.take("d") == 1


def test_opt_outs_are_recognised_from_the_request() -> None:
    assert withdrawal({}, False)
    assert consent_opt_out({"purposes": {"analytics": "denied", "ads": "denied"}}, False)
    # GPC alone, in the body or as Sec-GPC: 1, is leaving; riding with a grant it is a grant.
    assert consent_opt_out({"purposes": {}, "gpc": True}, False)
    assert consent_opt_out({"purposes": {}}, True)
    assert not consent_opt_out({"purposes": {"analytics": "granted"}, "gpc": True}, False)
    assert not consent_opt_out({"purposes": {"analytics": "granted"}}, True)
    assert not consent_opt_out({"purposes": {}, "tcf": "CP...", "gpc": True}, True)
    assert portal_opt_out("withdrawn")
    assert not portal_opt_out("granted")
    assert not consent_opt_out({"purposes": {"analytics": "granted"}}, False)
    assert not consent_opt_out({"purposes": {"a": "denied", "b": "granted"}}, False)
    assert not consent_opt_out({"purposes": {"a": "denied"}, "tcf": "CP..."}, False)
    assert not consent_opt_out({"purposes": {}}, False)
    assert not consent_opt_out(None, False)
    assert objection({"type": "objection"}, False)
    assert not objection({"type": "erasure"}, False)
