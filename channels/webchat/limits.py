"""The widget's rate limits: sliding windows shared by every web process.

The limiter comes from below the web app's edge (:func:`workers.broker.window_limiters`:
dramatiq's ``WindowRateLimiter`` on the broker's Redis in the fleet, in this process in the
embedded mode), through the port :class:`kartabl.outbound.RateLimiter`, so this module does
not know the queue. When the limiter's Redis cannot be reached the message is let through
(and logged): a customer's message is worth more than the limit, and storing it does not
depend on Redis.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from kartabl.outbound import RateLimiter

log = logging.getLogger(__name__)

# (name, at most this many, per this many seconds) -> a limiter
WindowLimiters = Callable[[str, int, int], RateLimiter]


class Limits:
    def __init__(self, make: WindowLimiters) -> None:
        self._make = make

    def allow(self, what: str, who: str, limit: int, window_s: int = 60) -> bool:
        """Take one slot of ``what`` for ``who`` (an address, a visitor); whether one was
        free."""
        # hashed: an address in a Redis key is one more copy of personal data
        name = f"webchat:{what}:{hashlib.sha256(who.encode()).hexdigest()[:24]}"
        try:
            with self._make(name, limit, window_s).acquire(raise_on_failure=False) as ok:
                return bool(ok)
        except Exception:  # the limiter's store is away: let the customer write
            log.warning("webchat rate limiter unavailable; letting a message through",
                        exc_info=True)
            return True
