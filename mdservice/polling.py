"""When to ask Core for a scan's report again.

Core's guidance is that aggressive polling loads the server, while every moment between the
end of a scan and the next poll is latency the service adds. `PollSchedule` uses what the
reports say: the progress seen so far gives a rate, the rate gives the time left, and the
next poll lands just after the expected end. Until the rate is known the wait doubles, so
a scan of T seconds costs a handful of requests and is seen at most a few percent late.
Progress that stops moving (a scan stuck at 99 %) is asked about at most once a second.
"""

from __future__ import annotations

import math

from mdservice.timing import POLL_CEILING, POLL_FLOOR, QUEUED_FACTOR, STALLED, STILL_POLL


class PollSchedule:
    """Poll times for one scan, from the moment its upload finished (`uploaded_at`, monotonic seconds)."""

    def __init__(self, uploaded_at: float):
        self.uploaded_at = uploaded_at
        self.not_started_at = uploaded_at
        self.first_sample: tuple[float, float] | None = None
        self.last_progress: float | None = None
        self.changed_at = uploaded_at

    def is_stuck(self, now: float) -> bool:
        """True when the scan has begun but its progress has not moved for STALLED seconds (a file still waiting in
        Core's queue is not stuck: it is waiting its turn)."""
        return self.stuck_seconds(now) >= STALLED

    def stuck_seconds(self, now: float) -> float:
        """For how long the progress of a scan that has begun has not moved (0 while the file waits in the queue)."""
        return now - self.changed_at if self.last_progress else 0.0

    def first_delay(self) -> float:
        return POLL_FLOOR

    def next_delay(self, now: float, progress: float | None) -> float:
        """Seconds to wait before the next poll, after a poll at `now` that showed `progress` (0-100 or None)."""
        delay = self._delay(now, progress)
        if progress != self.last_progress:
            self.last_progress, self.changed_at = progress, now
        elif self.is_stuck(now):
            delay = max(delay, STILL_POLL)
        return delay

    def _delay(self, now: float, progress: float | None) -> float:
        if not progress or progress <= 0:
            self.not_started_at = now
            self.first_sample = None
            waited = now - self.uploaded_at
            return min(max(POLL_FLOOR, QUEUED_FACTOR * waited), STILL_POLL)
        if progress >= 100:
            return POLL_FLOOR
        remaining = self._remaining(now, progress)
        if self.first_sample is None:
            self.first_sample = (now, progress)
        doubling = max(POLL_FLOOR, now - self.not_started_at)
        return min(max(POLL_FLOOR, remaining), doubling, POLL_CEILING)

    def _remaining(self, now: float, progress: float) -> float:
        """Seconds left at the rate seen: from the first sample with progress, else from when the scan could start."""
        if self.first_sample and progress > self.first_sample[1] and now > self.first_sample[0]:
            then, earlier = self.first_sample
            rate = (progress - earlier) / (now - then)
        else:
            rate = progress / max(now - self.not_started_at, 1e-3)
        # A rate too small to divide by (progress of 5e-324 %) says nothing: wait as long as the other limits allow.
        return (100 - progress) / rate if rate > 0 and math.isfinite(rate) else math.inf
