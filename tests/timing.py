"""Time in tests that run real threads and sockets: waits are for events, with limits only a broken service reaches;
a deadline is checked with a margin a busy machine cannot exhaust; a clock can be stepped forward instead of slept on.
"""

from __future__ import annotations

import threading
import time

# How long a test waits for something that comes at once unless the code is broken (a thread's answer, a re-read).
PATIENCE = 30.0
# The service ends a task's work by its deadline, 10 % of the service timeout (at least 1 s) before the timeout
# (README, "Deadline"). Over real sockets a task is checked to end by the timeout plus LATE: a margin for a machine
# whose cores are all busy, where the watchdog and Assemblyline's own work after the scan run late (measured with both
# cores busy: at most 0.05 s past the deadline). The deadline's arithmetic is asserted exactly on the fake clock
# (test_scan_policy, test_overload, test_rate_limits); over sockets the check catches a task that does not end, as
# when it waits on a Core that stalls or trickles for ever.
LATE = 2.0


def wait_until(condition, what: str, limit: float = PATIENCE) -> None:
    """Wait until `condition()` holds; fail naming `what` if it does not within `limit` s."""
    give_up = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < give_up, f"{what} did not happen within {limit:g} s"
        time.sleep(0.005)


def in_background(call) -> tuple[threading.Thread, list]:
    """Run `call()` on a daemon thread; its return value goes into the list once it returns."""
    returned: list = []
    thread = threading.Thread(target=lambda: returned.append(call()), daemon=True)
    thread.start()
    return thread, returned


def assert_ended_in_time(elapsed: float, timeout: float, what: str = "the task") -> None:
    """`what`, which took `elapsed` real seconds, ended by its `timeout` (plus LATE, see above)."""
    assert elapsed <= timeout + LATE, f"{what} took {elapsed:.1f} s, past its {timeout:g} s timeout"


class SteppedClock:
    """Real monotonic time plus the seconds a test stepped it forward: a back-off or a refresh interval passes at
    once, while requests and scans still take their real time. For `service.clock = Clock(now=...)`, set before
    start."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def now(self) -> float:
        return time.monotonic() + self.ahead

    def step(self, seconds: float) -> None:
        self.ahead += seconds
