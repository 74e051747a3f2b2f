"""Reconnect delays: exponential backoff with full jitter, and the wait an
operator's disconnect (close code 4409) asks for."""

import random
import re

# "retry_after=30" (what Wirehub sends) or {"retry_after":30}
_RETRY_AFTER = re.compile(r'retry_after"?\s*[:=]\s*(\d+)')


class Backoff:
    """Full jitter: attempt n waits a uniform random time in
    [0, min(cap, base * 2**n)], so that many agents that lost the server
    at the same moment come back spread over the whole window instead of
    all at once."""

    def __init__(self, base=1.0, cap=60.0, rng=None):
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def window(self):
        """The upper bound of the next delay."""
        # the exponent stops growing once the cap is reached (no overflow)
        if self.base * 2 ** min(self.attempt, 64) >= self.cap:
            return self.cap
        return self.base * 2 ** self.attempt

    def next(self):
        """The delay before the next attempt; the window then doubles."""
        delay = self._rng.uniform(0, self.window())
        self.attempt += 1
        return delay

    def jitter(self):
        """A small random delay (up to base) to add to a fixed wait."""
        return self._rng.uniform(0, self.base)

    def reset(self):
        """After a connection that held: start from the base again."""
        self.attempt = 0


def retry_after_of(reason, default=None):
    """The seconds a close reason asks to wait, or default."""
    match = _RETRY_AFTER.search(reason or "")
    if match is None:
        return default
    return int(match.group(1))
