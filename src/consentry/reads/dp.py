"""Differentially private counts with OpenDP: discrete Laplace noise calibrated to the count's
sensitivity (each subject's contribution bounded), and a daily epsilon budget per API key."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import opendp.prelude as dp

from consentry.errors import InvalidPrivacyParameters

MIN_EPSILON = 0.001
MAX_EPSILON = 10.0
MAX_BOUND = 1_000
DEFAULT_BOUND = 10

dp.enable_features("contrib")


def check(epsilon: Any, bound: Any) -> tuple[float, int]:
    """The query's epsilon and per-subject bound, or InvalidPrivacyParameters."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise InvalidPrivacyParameters("dp_epsilon is a number")
    if not math.isfinite(epsilon) or not MIN_EPSILON <= epsilon <= MAX_EPSILON:
        raise InvalidPrivacyParameters(
            f"dp_epsilon must be between {MIN_EPSILON} and {MAX_EPSILON}"
        )
    if isinstance(bound, bool) or not isinstance(bound, int) or not 1 <= bound <= MAX_BOUND:
        raise InvalidPrivacyParameters(f"dp_bound is an integer from 1 to {MAX_BOUND}")
    return float(epsilon), bound


@cache
def _mechanism(epsilon: float, sensitivity: int) -> dp.Measurement:
    """The discrete Laplace mechanism whose privacy loss at `sensitivity` is `epsilon`."""
    space = dp.atom_domain(T=int), dp.absolute_distance(T=int)
    scale = dp.binary_search_param(
        lambda s: space >> dp.m.then_laplace(scale=s), d_in=sensitivity, d_out=epsilon
    )
    measurement: dp.Measurement = space >> dp.m.then_laplace(scale=scale)
    return measurement


def prepare(epsilon: float, sensitivity: int) -> None:
    """Build (and keep) the mechanism before any budget is spent on it."""
    _mechanism(epsilon, sensitivity)


def noisy(value: int, epsilon: float, sensitivity: int) -> int:
    """`value` plus noise: unbiased, and epsilon-DP for a change of one subject."""
    return int(_mechanism(epsilon, sensitivity)(int(value)))
