"""reads/dp.py: the privacy parameters a query may ask for, and counts with discrete Laplace
noise (integers, unbiased, wider for a smaller epsilon or a larger sensitivity). No I/O."""

from __future__ import annotations

import math
import statistics

import pytest

from consentry.errors import InvalidPrivacyParameters
from consentry.reads import dp


@pytest.mark.parametrize(
    ("epsilon", "bound"),
    [(dp.MIN_EPSILON, 1), (1, dp.DEFAULT_BOUND), (0.5, dp.MAX_BOUND), (dp.MAX_EPSILON, 3)],
)
def test_parameters_within_the_limits_are_taken(epsilon: float, bound: int) -> None:
    assert dp.check(epsilon, bound) == (float(epsilon), bound)
    assert isinstance(dp.check(epsilon, bound)[0], float)


@pytest.mark.parametrize(
    ("epsilon", "bound"),
    [
        (0, 10),
        (dp.MIN_EPSILON / 2, 10),
        (dp.MAX_EPSILON + 0.001, 10),
        (-1, 10),
        (math.nan, 10),
        (math.inf, 10),
        (True, 10),
        ("1", 10),
        (None, 10),
        (1, 0),
        (1, dp.MAX_BOUND + 1),
        (1, 2.0),
        (1, True),
        (1, "10"),
    ],
)
def test_parameters_outside_the_limits_are_refused(epsilon: object, bound: object) -> None:
    with pytest.raises(InvalidPrivacyParameters):
        dp.check(epsilon, bound)


def test_noisy_counts_are_integers_around_the_count() -> None:
    dp.prepare(1.0, 1)
    values = [dp.noisy(100, 1.0, 1) for _ in range(2000)]
    assert all(isinstance(v, int) for v in values)
    assert len(set(values)) > 3
    # Scale 1: the mean of 2000 draws is within 0.2 of the count with room to spare.
    assert abs(statistics.mean(values) - 100) < 0.2


def test_the_noise_grows_with_the_sensitivity_and_shrinks_with_epsilon() -> None:
    def spread(epsilon: float, sensitivity: int) -> float:
        return statistics.pstdev(dp.noisy(0, epsilon, sensitivity) for _ in range(1000))

    narrow = spread(2.0, 1)
    assert spread(0.5, 1) > 2 * narrow
    assert spread(2.0, 10) > 5 * narrow
    # Discrete Laplace at scale s = sensitivity / epsilon has a standard deviation near s√2.
    assert 0.7 * 10 * math.sqrt(2) < spread(1.0, 10) < 1.3 * 10 * math.sqrt(2)
