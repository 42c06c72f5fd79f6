"""Retry delays: exponential with full jitter (a uniform draw between zero and the exponential
bound), so many messages failing together do not come back together; capped at an hour."""

from __future__ import annotations

import random

BASE_DELAY = 5  # seconds: the bound after the first failed attempt
MAX_DELAY = 3600
MIN_DELAY = 1  # never due again at the same second: a drain (``--once``) always ends


def backoff(attempts: int, rng: random.Random) -> int:
    """Seconds to wait after ``attempts`` failed attempts (attempts >= 1)."""
    bound = min(MAX_DELAY, BASE_DELAY * 2 ** min(max(attempts - 1, 0), 20))
    return max(MIN_DELAY, round(rng.uniform(0, bound)))
