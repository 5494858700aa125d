"""Heavy load: a full Core is busy, not broken; a retry takes over the scan an earlier attempt left behind (fake Cores,
fake time)."""

import logging

import pytest
from assemblyline.common.exceptions import RecoverableError
from fakes import FakeClock, clock_of, make_pool, settle, sha256_of

from mdservice.client import CoreLoad
from mdservice.nodes import Pace
from mdservice.scan import ScanJob, hold_if_saturated, scan_file

NAME = "sample.bin"
JOB = ScanJob("/dev/null", NAME, sha256=sha256_of(NAME), reuse_seconds=1800)
DEADLINE = 7.0


def attempt(pool, fake: FakeClock, job: ScanJob = JOB):
    """One Assemblyline attempt of `DEADLINE` seconds, its result held as the service holds it."""
    deadline = fake.now() + DEADLINE
    result = scan_file(pool, job, deadline, clock_of(fake))
    hold_if_saturated(pool, result, deadline, clock_of(fake))
    return result


def full_core(wait: float = 20.0, **settings):
    """One Core whose next uploads wait `wait` s in its queue (other instances' files ahead) before a 2 s scan."""
    fake = FakeClock()
    pool, (client,) = make_pool(fake, [2.0])
    client.wait = wait
    for name, value in settings.items():
        setattr(client, name, value)
    return fake, pool, client


def test_a_file_still_queued_at_the_deadline_leaves_its_core_in_rotation_and_uses_the_whole_deadline():
    fake, pool, client = full_core()
    start = fake.now()
    with pytest.raises(RecoverableError, match="MetaDefender Core is full.*waiting in its queue.*instance limit"):
        attempt(pool, fake)
    assert not pool.nodes[0].failed
    # Polls go on until only the time to cancel the file (0.175 s) and to hear a last poll's answer is left: this Core
    # answers at once, so the floor of 0.1 s is kept.
    assert fake.now() - start >= DEADLINE - 0.3, "the task gave up before its deadline"
    assert fake.now() - start <= DEADLINE
    assert client.cancelled == [f"{client.name}-1"], "a file nobody may come back for kept its place in the queue"


def test_a_core_slow_to_answer_keeps_three_of_its_answer_times_for_the_last_poll():
    fake, pool, client = full_core(delay=0.08)
    start = fake.now()
    with pytest.raises(RecoverableError, match="waiting in its queue"):
        attempt(pool, fake)
    # The last poll went out at most 0.24 s (3 x 0.08 s) before the polls' end (the cancel reserve: 2.5 % of the 6.92 s
    # left after the look-up for an earlier scan, 0.173 s), less at most two answer times (the poll before it, and the
    # look-up after it, may end just past that point), and its answer and the cancel's came in before the deadline.
    last = client.polled_at[-1] - start
    assert DEADLINE - 0.173 - 0.24 - 2 * 0.08 - 1e-6 <= last <= DEADLINE - 0.173 - 0.24 + 1e-6
    assert fake.now() - start <= DEADLINE
    assert client.cancelled == [f"{client.name}-1"]


def test_a_last_poll_answered_too_late_is_a_full_core_not_a_failed_one():
    fake, pool, client = full_core(delay=0.01)
    start, poll = fake.now(), client.get_report

    def slower_near_the_end(data_id, timeout=None):
        if fake.now() - start > DEADLINE - 1:
            client.delay = 0.15  # longer than the 0.1 s kept for the last poll's answer, shorter than the cancel's
        return poll(data_id, timeout)

    client.get_report = slower_near_the_end
    with pytest.raises(RecoverableError, match="MetaDefender Core is full.*waiting in its queue"):
        attempt(pool, fake)
    assert not pool.nodes[0].failed
    assert fake.now() - start <= DEADLINE
    assert client.cancelled == [f"{client.name}-1"], "the file left waiting in the queue was not canceled"


def test_a_retry_takes_over_the_scan_left_running_without_a_second_upload():
    fake, pool, client = full_core(wait=5.5)
    with pytest.raises(RecoverableError, match=r"being scanned \(\d+ %\)"):
        attempt(pool, fake)
    assert client.cancelled == []
    fake.sleep(0.5)  # the retry comes while the scan still runs
    result = attempt(pool, fake)
    assert client.uploads == 1 and result.data_id == f"{client.name}-1" and result.resumed


def test_a_retry_after_the_scan_finished_gets_the_verdict_at_once():
    fake, pool, client = full_core(wait=5.5)
    client.shows_unfinished = False  # a Core whose hash look-up only shows finished scans
    with pytest.raises(RecoverableError):
        attempt(pool, fake, ScanJob("/dev/null", NAME, sha256=JOB.sha256, reuse_seconds=1800))
    fake.sleep(30)
    start = fake.now()
    result = attempt(pool, fake)
    assert client.uploads == 1 and result.resumed
    assert fake.now() - start < 0.5, "an idle Core's finished scan was held back"


def test_a_scan_core_lost_is_uploaded_again_within_the_same_attempt():
    fake, pool, client = full_core(wait=5.5)
    with pytest.raises(RecoverableError):
        attempt(pool, fake)
    client.lose.add(f"{client.name}-1")
    client.wait = 0.0
    result = attempt(pool, fake)
    assert client.uploads == 2 and result.data_id == f"{client.name}-2" and not result.resumed


@pytest.mark.parametrize("change", ["rule", "archive password", "outdated definitions", "too old", "reuse off"])
def test_nothing_is_reused_across_rule_password_outdated_data_or_age(change):
    fake, pool, client = full_core(wait=0.0)
    attempt(pool, fake)
    job = JOB
    if change == "rule":
        job = ScanJob("/dev/null", NAME, rule="Strict", sha256=JOB.sha256, reuse_seconds=1800)
    elif change == "archive password":
        job = ScanJob("/dev/null", NAME, passwords=("infected",), sha256=JOB.sha256, reuse_seconds=1800)
    elif change == "outdated definitions":
        client.outdated = ["enginedefinitions"]
    elif change == "too old":
        fake.sleep(1801)
    else:
        job = ScanJob("/dev/null", NAME, sha256=JOB.sha256, reuse_seconds=0)
    result = attempt(pool, fake, job)
    assert client.uploads == 2 and not result.resumed


def test_the_default_rule_is_only_assumed_once_core_named_it():
    fake, pool, client = full_core(wait=0.0)
    client.files["foreign-1"] = (NAME, "File scan")  # another client's finished scan, before any of ours
    client.started["foreign-1"], client.waits["foreign-1"] = fake.now() - 10, 0.0
    result = attempt(pool, fake)
    assert client.uploads == 1 and not result.resumed
    assert attempt(pool, fake).resumed


def test_under_overload_a_taken_over_result_is_held_until_the_deadline():
    fake, pool, client = full_core(wait=5.5, backlog=30, slots=2)
    with pytest.raises(RecoverableError):
        attempt(pool, fake)
    settle(pool)
    fake.sleep(30)
    start = fake.now()
    assert attempt(pool, fake).resumed
    assert DEADLINE - 0.5 <= fake.now() - start <= DEADLINE


def test_a_busy_core_keeps_the_file_to_the_deadline_and_is_not_put_aside():
    fake = FakeClock()
    pool, _ = make_pool(fake, [2.0, 2.0])
    first, other = pool.candidates(JOB.sha256).pair  # the file's two Cores, first the one it goes to on a tie
    first.client.wait = 60.0
    start = fake.now()
    with pytest.raises(RecoverableError, match="MetaDefender Core is full"):
        scan_file(pool, JOB, start + 20, clock_of(fake))
    assert other.client.uploads == 0, "a busy Core's file was thrown to the back of another Core's queue"
    assert fake.now() - start >= 20 - 0.5
    assert not first.failed
    assert first.client.cancelled == [f"{first.name}-1"], "the file left queued would be scanned for nobody"


def left_running(scan_seconds: float, budget: float):
    """Two Cores, the file's first Core scanning it in `scan_seconds`: an attempt of `budget` s ends with the scan
    running there. (fake clock, pool, the file's first Core, the other)"""
    fake = FakeClock()
    pool, _ = make_pool(fake, [1.0, 1.0])
    first, other = pool.candidates(JOB.sha256).pair  # the file's two Cores, first the one it goes to on a tie
    first.client.scan_seconds = scan_seconds
    with pytest.raises(RecoverableError, match="being scanned"):
        scan_file(pool, JOB, fake.now() + budget, clock_of(fake))
    return fake, pool, first, other


def test_a_file_being_scanned_at_the_deadline_is_left_for_the_retry_and_never_sent_elsewhere():
    _, _, first, other = left_running(scan_seconds=30.0, budget=20.0)
    assert other.client.uploads == 0 and first.client.cancelled == []


def test_a_second_copy_from_a_retry_is_dropped_once_the_first_copys_result_is_in():
    fake, pool, client = full_core(wait=5.5)
    client.shows_unfinished = False  # the retry cannot see the first copy until it is done, so it sends the file
    with pytest.raises(RecoverableError):
        attempt(pool, fake)  # left running, to finish 0.5 s after its deadline
    client.wait = 20.0
    result = attempt(pool, fake)
    assert client.uploads == 2 and result.data_id == f"{client.name}-1" and result.resumed
    assert client.cancelled == [f"{client.name}-2"], "the second copy would be scanned for nobody"


def test_a_retry_takes_over_the_scan_left_on_its_core_while_another_core_is_idle_and_faster():
    fake, pool, first, other = left_running(scan_seconds=10.0, budget=7.0)  # 3 s of scan to go
    pool.cursor += 1  # another rotation turn: the file's candidates do not depend on it
    result = scan_file(pool, JOB, fake.now() + 7, clock_of(fake))
    assert (result.node, result.data_id, result.resumed) == (first, f"{first.name}-1", True)
    assert other.client.uploads == 0, "the retry scanned the file again instead of taking over the scan left"


def read_queue(pool, client, queue: int, slots: int, free: int | None = None) -> None:
    """Let the pool read `client`'s Core holding `queue` files for `slots` scan slots (`free` places left)."""
    client.get_load = lambda timeout=None: CoreLoad(queue, slots, free)
    pool.gauge.readings([pool.nodes[0]], 1.0)


@pytest.mark.parametrize(("pace", "work"), [(4.0, "about 18 s of work at 4.0 s a file"),
                                            (0.5, "about 2 s of work at 0.5 s a file")])
def test_the_full_message_gives_the_cores_files_slots_work_at_its_pace_and_the_tasks_time(pace, work):
    fake, pool, client = full_core()
    node = pool.nodes[0]
    node.pace = Pace().after_scan(pace, fake.now())
    read_queue(pool, client, queue=9, slots=2)
    text = pool.load_text(node, 6.5)
    # 9 files over 2 slots at the Core's pace, against the 6.5 s the task had
    for told in ("9 files", "2 scan slots", work, "6.5 s"):
        assert told in text
    assert "no free place" not in text


def test_the_full_message_says_when_cores_queue_had_no_free_place_and_no_work_without_a_known_pace():
    fake, pool, client = full_core()
    read_queue(pool, client, queue=500, slots=4, free=0)
    text = pool.load_text(pool.nodes[0], 6.5)
    assert "500 files" in text and "no free place" in text and "of work" not in text


def test_the_full_message_goes_by_a_queue_reading_at_most_a_minute_old():
    fake, pool, client = full_core()
    read_queue(pool, client, queue=9, slots=2)
    fake.sleep(60)
    assert "9 files" in pool.load_text(pool.nodes[0], 6.5)
    fake.sleep(1)
    text = pool.load_text(pool.nodes[0], 6.5)
    assert "files" not in text and "6.5 s" in text


def test_the_cores_are_full_warning_is_logged_at_most_once_a_minute(caplog):
    fake, pool, _ = full_core()
    with caplog.at_level(logging.WARNING, logger="test.pool"):
        for seconds in (0, 30, 29.9, 0.1, 1):  # at 0, 30, 59.9, 60 and 61 s
            fake.sleep(seconds)
            pool.warn_overloaded(f"MetaDefender Core is full at {fake.now() - 1000:g} s")
    assert [r.getMessage() for r in caplog.records] == ["MetaDefender Core is full at 0 s",
                                                        "MetaDefender Core is full at 60 s"]


@pytest.mark.parametrize(("queue", "slots", "saturated"), [(3, 2, True), (2, 2, False), (0, 1, False)])
def test_a_core_is_saturated_while_it_holds_more_files_than_scan_slots(queue, slots, saturated):
    fake, pool, client = full_core()
    client.get_load = lambda timeout=None: CoreLoad(queue, slots)
    assert pool.is_saturated(pool.nodes[0], wait=0.5) is saturated


def test_a_core_that_cannot_tell_its_queue_is_never_saturated_and_not_asked():
    fake, pool, client = full_core(backlog=30)
    pool.nodes[0].abilities.reports_queue = False
    assert not pool.is_saturated(pool.nodes[0], wait=0.5)
    assert client.requests["stat/nodes"] == 0


def test_a_file_waiting_in_the_queue_has_its_cores_queue_read_once_and_forgotten_when_it_leaves():
    fake, pool, client = full_core(backlog=30)
    watch = pool.watch(pool.nodes[0])
    for _ in range(3):
        watch.queued()
        settle(pool)
    assert client.requests["stat/nodes"] == 1
    assert pool.gauge.latest(pool.nodes[0]) is not None
    watch.left_queue()
    assert pool.gauge.latest(pool.nodes[0]) is None
