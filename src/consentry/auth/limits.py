"""Rate limits: a token bucket per caller (an API key, a browser key and client address, a
portal session), held in this process's memory (docs/decisions.md says why)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from consentry.consent.models import State
from consentry.settings import Settings

# Buckets held at most; past it the least recently used go (a full bucket forgets nothing).
MAX_BUCKETS = 100_000


class TokenBuckets:
    """`rate` requests a second per key, in bursts of up to `burst` (default: two seconds'
    worth, at least one); a rate of 0 is no limit."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        max_buckets: int = MAX_BUCKETS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, 2 * rate)
        self._max = max_buckets
        self._now = now
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> int:
        """Spend one token of `key`'s bucket: 0 when there was one, else the whole seconds to
        wait for the next (a request refused spends nothing)."""
        if not self.enabled:
            return 0
        now = self._now()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0
            else:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1 - tokens) / self.rate))
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return wait


@dataclass(frozen=True, slots=True)
class Limits:
    """The buckets of one process: per secret key, per browser key and client address, per
    portal session."""

    key: TokenBuckets
    browser: TokenBuckets
    portal: TokenBuckets

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            TokenBuckets(settings.rate_limit),
            TokenBuckets(settings.browser_rate_limit),
            TokenBuckets(settings.portal_rate_limit),
        )


# What is never rate-limited (API.md, Rate limits; Art. 7(3): leaving is as easy as joining):
# each rule reads a request's JSON body and whether it carried Sec-GPC: 1.
OptOut = Callable[[object, bool], bool]


def withdrawal(_body: object, _gpc: bool) -> bool:
    """A withdrawal, whatever it names."""
    return True


def grants(body: object) -> bool:
    """Whether a consent write's JSON body grants anything: a purpose `granted`, or a TC
    string (which may grant every purpose it covers)."""
    if not isinstance(body, dict):
        return False
    purposes = body.get("purposes")
    granted = isinstance(purposes, dict) and State.GRANTED.value in purposes.values()
    return granted or body.get("tcf") is not None


def consent_opt_out(body: object, gpc: bool) -> bool:
    """A consent write that grants nothing: denials, or a GPC signal alone (in its body or as
    Sec-GPC: 1). A write that grants is a grant, GPC or not: it is limited, and the signal
    goes again with the browser's next request (docs/decisions.md)."""
    if not isinstance(body, dict) or grants(body):
        return False
    purposes = body.get("purposes")
    denials = isinstance(purposes, dict) and bool(purposes)
    return denials or gpc or body.get("gpc") is True


def portal_opt_out(choice: str) -> bool:
    """A portal toggle that withdraws (the portal's grant is limited like any other)."""
    return choice == State.WITHDRAWN.value


def objection(body: object, _gpc: bool) -> bool:
    """An objection request (Art. 21; a direct-marketing one takes effect on receipt)."""
    return isinstance(body, dict) and body.get("type") == "objection"
