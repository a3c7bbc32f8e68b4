"""How long long work has left, from how fast it went so far (no bpy).

Used for dataset renders (per view), uploads (per byte), preparation (per fraction the
server reports) and walk bakes (per frame): one rate, one text shape everywhere.
"""

from __future__ import annotations

import time

from .formatting import eta


class Estimate:
    """Rate and time left of one piece of work; `clock` is injectable for tests."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._t0 = clock()

    def elapsed(self):
        return self._clock() - self._t0

    def remaining(self, done, total):
        """Seconds left at the pace so far; None before anything is done."""
        if done <= 0 or total <= 0:
            return None
        return self.elapsed() * max(0.0, total - done) / done

    def text(self, done, total, unit):
        """'3/64 views, 1.2 s per view, about 1m13s left' (the rate once something is done)."""
        out = f"{done}/{total} {unit}s"
        left = self.remaining(done, total)
        if left is None:
            return out
        return f"{out}, {self.elapsed() / done:.1f} s per {unit}, about {eta(left)} left"

    def fraction_text(self, fraction, what):
        """'preparing 40%, about 0m12s left' for work that only reports a fraction."""
        pct = int(round(100 * max(0.0, min(1.0, fraction))))
        left = self.remaining(fraction, 1.0) if fraction > 0.0 else None
        return f"{what} {pct}%" + (f", about {eta(left)} left" if left is not None else "")
