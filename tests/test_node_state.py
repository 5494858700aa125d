"""A Core's health and pace as plain values: what a failure, a scan, a slow file and a passed turn make of them."""

import math

import pytest

from mdservice.client import CoreBusy, CoreClient, CoreError
from mdservice.nodes import CoreNode, Health, Load, Pace, backoff, finish_seconds, sooner_of

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


def test_a_cores_time_per_file_is_trusted_for_five_minutes():
    pace = Pace().after_scan(seconds=2.0, now=100.0)
    assert (pace.scan_seconds, pace.ended) == (2.0, 100.0)
    assert pace.recent_seconds(100.0 + SPEED_MEMORY - 1) == 2.0
    assert pace.recent_seconds(100.0 + SPEED_MEMORY) == 0.0 == Pace().recent_seconds(100.0)


@pytest.mark.parametrize(("load", "per_file", "expected"), [
    (Load(0, 1), 2.0, 2.0),  # idle: its own scan
    (Load(1, 1), 2.0, 4.0),  # one file ahead in the only slot
    (Load(1, 2), 3.0, 3.0),  # a slot free
    (Load(3, 2), 2.0, 4.0),  # two files waiting for two slots
    (Load(math.inf), 1.0, math.inf),  # did not answer in time
    (Load(0, 4, 0), 1.0, math.inf),  # no free place in its queue: Core refuses the upload
])
def test_a_file_finishes_after_the_files_ahead_of_it_per_slot_and_its_own_scan(load, per_file, expected):
    assert finish_seconds(load, per_file) == expected


def core(name: str) -> CoreNode:
    return CoreNode(CoreClient(f"http://{name}:8008/"), 4)


@pytest.mark.parametrize(("per_file", "queues", "chosen"), [
    ((2.0, 3.0), (0, 0), "first"),  # the first is the sooner one
    ((3.0, 2.0), (0, 0), "other"),  # 2 s against 3 s: clearly sooner
    ((2.0, 2.2), (0, 0), "first"),  # within the 1.2 margin: the first
    ((2.0, 2.0), (1, 0), "other"),  # 4 s against 2 s
    ((0.5, 2.5), (1, 0), "first"),  # 1 s after the file ahead on the fast Core, against 2.5 s on the idle slow one
    ((0.5, 2.5), (1, 1), "first"),  # both busy: 1 s against 5 s
])
def test_the_file_goes_to_the_other_core_only_when_it_finishes_clearly_sooner_there(per_file, queues, chosen):
    first, other = core("first"), core("other")
    loads = {first: Load(queues[0]), other: Load(queues[1])}
    picked = sooner_of(first, other, loads, {first: per_file[0], other: per_file[1]})
    assert picked is {"first": first, "other": other}[chosen]


@pytest.mark.parametrize(("free", "chosen"), [
    ((0, 500), "other"),  # the first's queue is full
    ((0, 0), "first"),  # both full: the first
    ((10, 400), "other"),  # both would finish as soon: more free places
    ((10, None), "first"),  # the other does not say
])
def test_a_full_queue_loses_and_more_free_places_break_a_tie(free, chosen):
    first, other = core("first"), core("other")
    loads = {first: Load(0, 1, free[0]), other: Load(0, 1, free[1])}
    assert sooner_of(first, other, loads, {first: 2.0, other: 2.0}) is {"first": first, "other": other}[chosen]


@pytest.mark.parametrize(("per_file", "free", "chosen"), [
    ((2.4, 2.0), (None, None), "first"),  # exactly 1.2 times sooner is not clearly sooner
    ((2.0, 2.0), (20, 20), "first"),  # as many free places: the first
    ((2.0, 2.4), (10, 20), "other"),  # 1.2 times later is still about as soon: more free places win
    ((2.0, 2.5), (10, 20), "first"),  # clearly later: free places do not matter
    ((1.0, 4.0), (1, 5), "first"),  # one free place is room
])
def test_clearly_sooner_is_more_than_1_2_times_and_free_places_count_only_between_cores_about_as_soon(
        per_file, free, chosen):
    first, other = core("first"), core("other")
    loads = {first: Load(0, 1, free[0]), other: Load(0, 1, free[1])}
    picked = sooner_of(first, other, loads, {first: per_file[0], other: per_file[1]})
    assert picked is {"first": first, "other": other}[chosen]
