"""When to ask the server about training jobs next (no bpy).

The main thread asks `due()` on every timer tick and starts one poll at a time. A poll
that works schedules the next after `interval` while something is worth following; one
that fails waits twice as long as the last wait (up to `max_wait`) and keeps trying, so
following resumes by itself when the server is back.
"""

from __future__ import annotations

from .limits import POLL_INTERVAL_S, POLL_MAX_WAIT_S


class PollSchedule:
    def __init__(self, interval=POLL_INTERVAL_S, max_wait=POLL_MAX_WAIT_S):
        self.interval = interval
        self.max_wait = max_wait
        self.active = False
        self.failures = 0  # polls failed in a row
        self.next_at = 0.0
        self.wait = 0.0  # the wait before the next poll

    def start(self, now):
        """Poll as soon as possible (a new job, a new selection, a user's refresh)."""
        self.active = True
        self.next_at = now
        self.wait = 0.0

    def stop(self):
        self.active = False

    def due(self, now):
        return self.active and now >= self.next_at

    def succeeded(self, now, keep_following):
        """A poll answered; returns True when it ended a run of failures."""
        recovered = self.failures > 0
        self.failures = 0
        self.wait = self.interval
        self.next_at = now + self.interval
        self.active = bool(keep_following)
        return recovered

    def failed(self, now):
        """A poll failed: wait longer each time, and keep going. Returns the wait."""
        self.failures += 1
        self.wait = min(self.max_wait, self.interval * 2 ** self.failures)
        self.next_at = now + self.wait
        self.active = True
        return self.wait
