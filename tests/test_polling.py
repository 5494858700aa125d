"""The polling schedule: few requests, seen soon after the scan ends, never past the deadline."""

import pytest

from mdservice.polling import PollSchedule


def simulate(scan_seconds: float, queued_seconds: float = 0.0, rtt: float = 0.0) -> tuple[int, float]:
    """Poll a scan whose progress grows linearly, as Core reports it (whole percents); (polls, seconds seen late)."""
    now = 0.0
    schedule = PollSchedule(now)
    now += schedule.first_delay()
    polls = 0
    while True:
        polls += 1
        scanned = now - queued_seconds
        if scanned >= scan_seconds:
            return polls, now - (queued_seconds + scan_seconds)
        progress = None if scanned < 0 else int(100 * scanned / scan_seconds)
        now += rtt + schedule.next_delay(now + rtt, progress)


@pytest.mark.parametrize("scan_seconds", [0.2, 0.5, 1.3, 2.0, 3.1, 7.7, 20.0])
def test_scan_is_seen_within_ten_percent_or_a_tenth_of_a_second(scan_seconds):
    _, late = simulate(scan_seconds, rtt=0.002)
    assert late <= max(0.1, 0.1 * scan_seconds)


def test_two_second_scan_costs_at_most_twenty_result_requests():
    polls, _ = simulate(2.0, rtt=0.002)
    assert polls <= 20


def test_long_scans_stay_polite():
    polls, _ = simulate(60.0, rtt=0.002)
    assert polls <= 40


def test_queued_file_is_polled_gently_and_seen_soon_after_its_scan():
    polls, late = simulate(0.5, queued_seconds=4.0, rtt=0.002)
    assert polls <= 25
    assert late <= 1.0


def test_no_progress_backs_off_to_at_most_a_second():
    schedule = PollSchedule(0.0)
    delays = [schedule.next_delay(t, None) for t in (0.05, 1.0, 10.0, 100.0)]
    assert delays[0] == pytest.approx(0.05)
    assert delays == sorted(delays)
    assert max(delays) <= 1.0


def test_stalled_progress_does_not_divide_by_zero():
    schedule = PollSchedule(0.0)
    first = schedule.next_delay(0.5, 40)
    again = schedule.next_delay(1.0, 40)
    assert 0 < first and 0 < again <= 3.0
