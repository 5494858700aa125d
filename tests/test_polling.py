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


# docs/design.md, "Polling": the first poll 50 ms after the upload; while no progress shows, a quarter of the time
# waited so far, between 50 ms and 1 s; once the scan progresses, the expected end by the rate seen, but no later than
# the time since the scan began and at most 3 s; progress still for 2 s is asked about at most once a second.
# Times are monotonic seconds: the upload ends at UPLOADED, never at 0.
UPLOADED = 1000.0


@pytest.mark.parametrize("progress", [None, 0])
def test_a_queued_file_is_polled_after_a_quarter_of_the_time_it_waited(progress):
    schedule = PollSchedule(UPLOADED)
    assert schedule.first_delay() == 0.05
    for waited, delay in [(0.05, 0.05), (0.1, 0.05), (2.0, 0.5), (3.0, 0.75), (3.5, 0.875), (10.0, 1.0)]:
        assert schedule.next_delay(UPLOADED + waited, progress) == pytest.approx(delay)


@pytest.mark.parametrize(("seconds", "progress", "delay"), [
    (0.5, 80, 0.125),  # 160 %/s since the upload: 20 % left take 0.125 s
    (1.0, 1, 1.0),  # 1 % after 1 s: 99 s left, but no later than the 1 s the scan has run
    (4.0, 10, 3.0),  # 36 s left: at most 3 s
    (198.0, 99, 2.0),  # a long scan (0.5 %/s) near its end: the 2 s left
])
def test_a_scan_in_progress_is_polled_at_its_expected_end(seconds, progress, delay):
    schedule = PollSchedule(UPLOADED)
    assert schedule.next_delay(UPLOADED + seconds, progress) == pytest.approx(delay)


@pytest.mark.parametrize("queued", [True, False])
def test_the_rate_is_the_one_seen_since_the_first_progress_not_since_the_file_could_start(queued):
    schedule = PollSchedule(UPLOADED)
    if queued:
        schedule.next_delay(UPLOADED + 10.0, None)  # still queued 10 s after the upload
    schedule.next_delay(UPLOADED + 11.0, 5)  # the scan began at some moment before this poll
    # 70 % in 7 s since the first progress: 10 %/s, 25 % left take 2.5 s (75 % in 8 or 18 s would give more)
    assert schedule.next_delay(UPLOADED + 18.0, 75) == pytest.approx(2.5)


def test_progress_still_for_two_seconds_is_stuck_and_asked_about_once_a_second():
    schedule = PollSchedule(UPLOADED)
    schedule.next_delay(UPLOADED + 1.0, 99)
    assert not schedule.is_stuck(UPLOADED + 2.9)
    assert schedule.is_stuck(UPLOADED + 3.0) and schedule.stuck_seconds(UPLOADED + 3.0) == 2.0
    assert schedule.next_delay(UPLOADED + 3.0, 99) == 1.0


def test_a_file_waiting_in_the_queue_is_never_stuck():
    schedule = PollSchedule(UPLOADED)
    schedule.next_delay(UPLOADED + 1.0, None)
    assert schedule.stuck_seconds(UPLOADED + 60.0) == 0.0 and not schedule.is_stuck(UPLOADED + 60.0)


def test_a_progress_too_small_to_give_a_rate_waits_as_long_as_the_other_limits_allow():
    schedule = PollSchedule(UPLOADED)
    assert schedule.next_delay(UPLOADED + 2.0, 5e-324) == 2.0  # the time the scan has run, at most 3 s
