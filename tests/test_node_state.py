"""A Core's health and pace as plain values: what a failure, a scan, a slow file and a passed turn make of them."""

import pytest

from mdservice.client import CoreBusy, CoreError
from mdservice.nodes import Health, Pace, backoff, relative_pace

# README: a failing Core sits out 5 s, doubling per failure in a row up to 60 s; a slow one sits out 1, 2, ... up to 5
# turns, and is judged by its recent scans for 5 minutes.
BACKOFF_START, BACKOFF_MAX = 5.0, 60.0
MAX_SKIP_TURNS = 5
SPEED_MEMORY = 5 * 60.0


def test_failures_in_a_row_double_the_pause_up_to_the_maximum():
    pauses = [backoff(failures) for failures in range(1, 10)]
    assert pauses[0] == BACKOFF_START and pauses[1] == 2 * BACKOFF_START
    assert pauses == sorted(pauses) and pauses[-1] == BACKOFF_MAX


def test_a_fault_of_the_core_puts_it_aside_and_keeps_the_error():
    health = Health().after_failure(CoreError("refused", permanent=True), now=100.0)
    assert health == Health(1, 100.0 + BACKOFF_START, "refused", True)
    assert health.after_failure(CoreError("refused"), now=200.0).retry_at == 200.0 + 2 * BACKOFF_START


@pytest.mark.parametrize("error", [CoreBusy("full"), CoreError("file too large", permanent=True, node_fault=False)])
def test_an_error_that_is_not_the_cores_fault_is_only_noted(error):
    health = Health(2, 50.0).after_failure(error, now=100.0)
    assert (health.failures, health.retry_at, health.last_error) == (2, 50.0, str(error))


def test_slow_files_in_a_row_add_turns_to_sit_out_and_one_within_the_limit_ends_them():
    pace = Pace()
    for streak in range(1, MAX_SKIP_TURNS + 3):
        pace = pace.after_file(over=True)
        assert (pace.slow_streak, pace.skip_turns) == (streak, min(streak, MAX_SKIP_TURNS))
    pace = pace.after_turn()
    assert pace.skip_turns == MAX_SKIP_TURNS - 1
    assert pace.after_file(over=False) == Pace()


def test_a_scans_time_leaves_out_its_wait_in_the_queue_and_is_trusted_for_a_while():
    pace = Pace().after_scan(seconds=8.0, queued=6.0, now=100.0)
    assert (pace.scan_seconds, pace.began, pace.ended) == (2.0, 92.0, 100.0)
    assert pace.recent_seconds(100.0 + SPEED_MEMORY - 1) == 2.0
    assert pace.recent_seconds(100.0 + SPEED_MEMORY) == 0.0 == Pace().recent_seconds(100.0)


@pytest.mark.parametrize(("seconds", "fastest", "expected"), [
    (0.0, 0.0, 1.0),  # no scan to go by
    (4.0, 0.5, 1.0),  # within max_md_scan_time
    (8.0, 5.0, 1.0),  # over it, but not twice the fastest
    (12.0, 3.0, 4.0),
])
def test_only_a_clearly_slow_scan_counts_against_a_core(seconds, fastest, expected):
    assert relative_pace(seconds, fastest, max_scan_time=5.0) == expected
