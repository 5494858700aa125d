"""Several Cores: round-robin, brief time-outs for slow Cores, failover and bounded tasks (fake Cores, fake time)."""

import random
import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
from assemblyline.common.exceptions import NonRecoverableError, RecoverableError
from fakes import FakeClock, make_pool, sha256_of

from mdservice.client import CoreError
from mdservice.scan import Clock, ScanJob, scan_file

JOB = ScanJob("/dev/null", "sample.bin")
# README: a failing Core sits out 5 s, doubling per failure in a row up to 60 s; a slow Core's scans are gone by after
# 5 minutes without news of it.
BACKOFF_START, BACKOFF_MAX = 5.0, 60.0
SPEED_MEMORY = 5 * 60.0


def run_tasks(pool, clock, count: int, budget: float = 54.0) -> Counter:
    used = Counter()
    for _ in range(count):
        pool.refresh_engines(600, clock.now() + 2)
        result = scan_file(pool, JOB, clock.now() + budget, Clock(clock.now, answered_then_sleep(pool, clock)))
        used[result.node.name] += 1
    return used


def answered_then_sleep(pool, clock):
    """A fake sleep that first lets the queue readings asked so far come in, as they would from a near Core
    (the gauge asks on real threads, while fake time would otherwise jump ahead of them)."""
    def sleep(seconds: float) -> None:
        until = time.monotonic() + 2
        while pool.gauge._asking and time.monotonic() < until:
            time.sleep(0.0005)
        clock.sleep(seconds)
    return sleep


def test_thirty_files_over_three_healthy_cores_ten_each():
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5, 0.5])
    assert sorted(run_tasks(pool, clock, 30).values()) == [10, 10, 10]


def test_start_core_is_random_so_instances_spread():
    firsts = set()
    for seed in range(20):
        clock = FakeClock()
        pool, _ = make_pool(clock, [0.5, 0.5, 0.5], seed=seed)
        firsts.add(pool.attempt_order()[0].name)
    assert firsts == {"core0", "core1", "core2"}


def test_slow_core_gets_no_more_than_a_file_or_two_while_fast_cores_are_free():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 8.0], max_scan_time=5.0)
    used = run_tasks(pool, clock, 30)
    assert used["core2"] <= 2 and used["core0"] + used["core1"] >= 28


def test_slow_core_sits_out_growing_turns_when_the_fast_cores_are_busy():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 8.0], max_scan_time=5.0)
    for client in clients[:2]:
        client.backlog = 40
    used = run_tasks(pool, clock, 30)
    assert 3 <= used["core2"] <= 8
    assert pool.nodes[2].pace.slow_streak >= 3


def test_slow_core_back_in_full_rotation_after_a_fast_scan():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 8.0], max_scan_time=5.0)
    run_tasks(pool, clock, 12)
    clients[2].scan_seconds = 0.5
    clock.t += SPEED_MEMORY
    run_tasks(pool, clock, 15)
    assert pool.nodes[2].pace.slow_streak == 0
    used = run_tasks(pool, clock, 30)
    assert sorted(used.values()) == [10, 10, 10]


def test_single_core_is_never_put_aside():
    clock = FakeClock()
    pool, clients = make_pool(clock, [9.0], max_scan_time=5.0)
    assert run_tasks(pool, clock, 5)["core0"] == 5
    assert pool.nodes[0].pace.skip_turns == 0


def test_failed_core_is_skipped_within_the_task_and_backs_off_doubling():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 0.5])
    clients[1].error = CoreError("core1 could not be reached: connection refused")
    used = run_tasks(pool, clock, 9)
    assert used["core1"] == 0 and used["core0"] + used["core2"] == 9
    node = pool.nodes[1]
    pauses = []
    for _ in range(6):
        clock.t = node.health.retry_at
        before = node.health.retry_at
        pool.refresh_engines(600, clock.now() + 2)
        pauses.append(node.health.retry_at - before)
    assert pauses[0] == pytest.approx(2 * BACKOFF_START)
    assert pauses[-1] == pytest.approx(BACKOFF_MAX)
    assert pauses == sorted(pauses)


def test_core_down_at_start_rejoins_when_it_comes_back():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 0.5])
    clients[2].error = CoreError("refused")
    pool.nodes[2].engines = None
    pool.record_failure(pool.nodes[2], clients[2].error)
    run_tasks(pool, clock, 6)
    clients[2].error = None
    clock.t += BACKOFF_MAX
    used = run_tasks(pool, clock, 9)
    assert used["core2"] >= 2
    assert pool.nodes[2].engines is not None


def test_failover_within_the_task_on_lost_data_id():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    first = pool.attempt_order()[0]
    pool.cursor = pool.nodes.index(first)
    first.client.report_error = CoreError("lost the scan")
    result = scan_file(pool, JOB, clock.now() + 54, Clock(clock.now, clock.sleep))
    assert result.node is not first
    assert first.failed


def test_never_completing_scan_moves_on_and_ends_before_the_deadline():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 0.5])
    for client in clients[:2]:
        client.never_finishes = True
    start = clock.now()
    pool.cursor = 0
    result = scan_file(pool, JOB, start + 54, Clock(clock.now, clock.sleep))
    assert result.node.name == "core2"
    assert clock.now() - start <= 54
    assert clients[0].cancelled and clients[1].cancelled


def test_nothing_completes_gives_recoverable_error_before_deadline():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    for client in clients:
        client.never_finishes = True
    start = clock.now()
    with pytest.raises(RecoverableError, match="core0.*core1|core1.*core0"):
        scan_file(pool, JOB, start + 20, Clock(clock.now, clock.sleep))
    assert clock.now() - start <= 20 + 0.01


def test_every_core_down_is_recoverable_and_names_each_core():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 0.5])
    for client in clients:
        client.error = CoreError(f"{client.name} could not be reached: connection refused")
    with pytest.raises(RecoverableError) as caught:
        scan_file(pool, JOB, clock.now() + 54, Clock(clock.now, clock.sleep))
    for name in ("core0", "core1", "core2"):
        assert name in str(caught.value)


def test_key_refused_everywhere_is_not_recoverable():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    for client in clients:
        client.error = CoreError("API key was refused; set api_key", permanent=True)
    with pytest.raises(NonRecoverableError, match="api_key"):
        scan_file(pool, JOB, clock.now() + 54, Clock(clock.now, clock.sleep))


def test_key_refused_on_one_core_and_another_down_stays_recoverable():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    clients[0].error = CoreError("API key was refused", permanent=True)
    clients[1].error = CoreError("connection refused")
    with pytest.raises(RecoverableError):
        scan_file(pool, JOB, clock.now() + 54, Clock(clock.now, clock.sleep))


def test_file_too_large_does_not_put_a_core_aside():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5])
    clients[0].error = CoreError("larger than Core's scan rule allows", permanent=True, node_fault=False)
    with pytest.raises(NonRecoverableError):
        scan_file(pool, JOB, clock.now() + 54, Clock(clock.now, clock.sleep))
    assert not pool.nodes[0].failed


def test_each_core_gets_a_share_of_the_remaining_time():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    clients[0].never_finishes = True
    pool.cursor = 0
    start = clock.now()
    scan_file(pool, JOB, start + 40, Clock(clock.now, clock.sleep))
    assert clients[1].uploads == 1
    [second_started] = clients[1].started.values()
    assert 18 <= second_started - start <= 20, "the first Core kept more than its half of the 40 s, or far less"
    assert clients[0].cancelled, "the scan given up on was not canceled"


def test_random_mix_of_faults_never_exceeds_the_deadline():
    rng = random.Random(7)
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.3, 1.0, 2.0])
    for _ in range(60):
        for client in clients:
            client.error = CoreError("refused") if rng.random() < 0.2 else None
            client.never_finishes = rng.random() < 0.1
        start = clock.now()
        try:
            scan_file(pool, JOB, start + 10, Clock(clock.now, clock.sleep))
        except RecoverableError:
            pass
        assert clock.now() - start <= 10 + 0.01
        clock.t += rng.random() * 10


def test_core_with_a_queue_yields_its_turn_to_an_idle_one():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 0.5])
    pool.cursor = 0
    clients[0].backlog = 3
    order = pool.attempt_order()
    assert order[0].name != "core0"
    assert pool.cursor == 1, "the next task compares the Core after the one whose turn it was"


def test_fast_cores_share_the_files_while_a_slow_core_is_next_in_rotation():
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5, 8.0], max_scan_time=5.0)
    used = run_tasks(pool, clock, 30)
    assert used["core2"] <= 2
    assert min(used["core0"], used["core1"]) >= 8, f"one fast Core took nearly every file: {used}"


@pytest.mark.parametrize("cores", [1, 3, 30])
@pytest.mark.parametrize(("others", "per_task"), [(0, 1), (1, 2)])
def test_control_requests_per_task_stay_at_two_whatever_the_number_of_cores(cores, others, per_task):
    """Two per task at most; one while no other instance sends the Cores files (the Core just used is idle)."""
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5] * cores)
    for client in clients:
        client.requests.clear()
        client.backlog, client.slots = others, 4
    tasks = 3 * cores
    run_tasks(pool, clock, tasks)
    control = sum(c.requests["stat/nodes"] + c.requests["stat/engines"] for c in clients)
    # +2: nothing was asked ahead of the first task, and the last scan asks for a task that does not come
    assert control <= per_task * tasks + 2 if cores > 1 else control == 0, (control, tasks)


def test_round_robin_from_a_random_start_when_queues_are_equal():
    starts = set()
    for seed in range(5):
        clock = FakeClock()
        pool, _ = make_pool(clock, [0.5] * 30, seed=seed)
        starts.add(pool.cursor)
        assert set(run_tasks(pool, clock, 90).values()) == {3}
    assert len(starts) > 1


def test_core_that_does_not_answer_stat_nodes_gets_fewer_files():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 0.5])
    clients[1].get_load = lambda timeout=None: (_ for _ in ()).throw(CoreError("stat/nodes timed out"))
    used = run_tasks(pool, clock, 30)
    assert used["core1"] < used["core0"] and used["core1"] < used["core2"]


def test_core_that_cannot_report_its_queue_is_not_asked_again_and_keeps_its_turns():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    calls = []

    def refuse(timeout=None):
        calls.append(1)
        raise CoreError("stat/nodes: HTTP 403", permanent=True)

    clients[0].get_load = refuse
    used = run_tasks(pool, clock, 10)
    assert used == {"core0": 5, "core1": 5}
    assert len(calls) == 1


@pytest.mark.parametrize(("changed", "job"), [
    ({"data_id": "another-scan"}, JOB),
    ({"file_info": {"sha256": "cd" * 32}}, ScanJob("/dev/null", "sample.bin", sha256=sha256_of("sample.bin").upper())),
])
def test_a_report_for_another_file_fails_over_and_is_never_the_result(changed, job):
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5])
    first = pool.attempt_order()[0]
    pool.cursor = pool.nodes.index(first)
    honest = first.client.get_report
    first.client.get_report = lambda data_id, timeout=None: {**honest(data_id, timeout), **changed}
    result = scan_file(pool, job, clock.now() + 54, Clock(clock.now, clock.sleep))
    assert result.node is not first
    assert first.failed and "another file's report" in first.health.last_error


def test_a_report_with_this_files_sha256_in_other_case_is_accepted():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5])
    honest = clients[0].get_report
    file_info = {"sha256": "ab" * 32}
    clients[0].get_report = lambda data_id, timeout=None: {**honest(data_id, timeout), "file_info": file_info}
    job = ScanJob("/dev/null", "sample.bin", sha256="AB" * 32)
    assert scan_file(pool, job, clock.now() + 54, Clock(clock.now, clock.sleep)).node is pool.nodes[0]


def test_refresh_probes_and_queue_checks_of_many_slow_cores_keep_the_task_within_its_deadline():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5] * 12)
    for index, client in enumerate(clients):
        client.delay = 0.95 if index else 0.0  # eleven Cores answer everything after 0.95 s
        if index % 2:
            pool.record_failure(pool.nodes[index], CoreError("refused"))
    clock.t += BACKOFF_MAX + 600  # every probe and every engine refresh is due
    start = clock.now()
    deadline = start + 9  # a service timeout of 10 s
    pool.refresh_engines(600, start + 1.8)
    assert clock.now() <= start + 1.8
    try:
        scan_file(pool, JOB, deadline, Clock(clock.now, clock.sleep))
    except RecoverableError:
        pass
    assert clock.now() <= deadline


def test_a_scan_whose_core_fails_a_poll_is_canceled_before_failing_over():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    pool.cursor = 0
    first = pool.attempt_order()[0]
    pool.cursor = pool.nodes.index(first)
    first.client.report_error = CoreError("answered file/x with HTTP 500")
    result = scan_file(pool, JOB, clock.now() + 54, Clock(clock.now, clock.sleep))
    assert result.node is not first
    assert first.client.cancelled == [f"{first.client.name}-1"], "the abandoned scan was left running on its Core"


def test_a_slower_core_with_a_free_slot_takes_files_while_the_faster_one_is_full():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 8.0], max_scan_time=5.0)
    clients[0].backlog = 1  # another instance's file holds the fast Core's only slot
    used = run_tasks(pool, clock, 20)
    assert used["core1"] >= 5, f"the idle slow Core was left idle while the fast one was full: {used}"


def test_a_slower_core_gets_no_file_while_the_faster_one_has_room():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 8.0], max_scan_time=5.0)
    clients[0].backlog, clients[0].slots = 1, 4  # one other file, three slots free
    used = run_tasks(pool, clock, 20)
    assert used["core1"] <= 1, used


def test_time_a_file_waited_in_cores_queue_does_not_make_the_core_look_slow():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 0.5], max_scan_time=5.0)
    pool.cursor = 0
    clients[0].wait = 6.0  # other instances' files ahead of ours on core0, this once
    first = scan_file(pool, JOB, clock.now() + 54, Clock(clock.now, clock.sleep))
    assert first.node.name == "core0" and pool.nodes[0].pace.skip_turns == 1, "over max_md_scan_time: sits out a turn"
    clients[0].wait = 0.0
    used = run_tasks(pool, clock, 30)
    assert used["core0"] >= 8, f"core0 was judged by the time its file waited for others: {used}"


def test_our_own_file_in_a_queue_reading_does_not_make_the_core_look_busy():
    clock = FakeClock()
    pool, clients = make_pool(clock, [2.0, 2.0])
    clients[1].backlog = 1  # core1's one slot is taken by another instance
    pool.cursor = 0
    node = pool.attempt_order()[0]
    assert node.name == "core0"
    started = clock.now()
    node.client.upload("/dev/null", "sample.bin")
    clock.t += 1.9
    pool.prepare_next(node)  # core0's queue is read while our file is on it
    assert wait_for_reading(pool, node, clock.now()).queue == 1
    clock.t += 0.1
    pool.record_scan(node, clock.now() - started)
    pool.cursor = 1  # core1's turn: only a free slot on core0 makes core0 the better choice
    assert pool.attempt_order()[0].name == "core0"


def wait_for_reading(pool, node, at: float):
    """The gauge's reading of `node` taken at fake time `at`, once its background request has answered."""
    for _ in range(200):
        reading = pool.gauge.latest(node)
        if reading is not None and reading.at >= at:
            return reading
        time.sleep(0.01)
    raise AssertionError("the queue reading never came in")


def test_the_next_tasks_cores_are_asked_shortly_before_the_poll_that_finds_the_scan_done():
    clock = FakeClock()
    pool, clients = make_pool(clock, [2.0, 2.0, 2.0])
    asked, polled = [], []
    prepare, get_report = pool.prepare_next, clients[0].get_report

    def record_prepare(node):
        asked.append(clock.now())
        prepare(node)

    def record_poll(data_id, timeout=None):
        polled.append(clock.now())
        return get_report(data_id, timeout)

    pool.prepare_next, clients[0].get_report, pool.cursor = record_prepare, record_poll, 0
    assert scan_file(pool, JOB, clock.now() + 54, Clock(clock.now, clock.sleep)).node.name == "core0"
    assert len(asked) == 1
    assert 0.05 <= polled[-1] - asked[0] <= 0.2, "asked too late for a far Core's answer, or long before the end"
    assert polled[-1] - clients[0].started["core0-1"] < 2.0 * 1.1, "the finished scan was seen late"


def test_an_idle_core_just_used_is_not_taken_for_busy_when_other_instances_first_show_up():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    run_tasks(pool, clock, 4)  # alone so far: the Core just used is not asked about
    turn, partner = pool._ready_in_rotation()[0], pool.partner
    assert turn is not partner
    turn.client.backlog = 1  # another instance's file now fills the other Core's only slot
    clock.t += 2  # the readings taken as the last scan ended are stale
    assert pool.attempt_order()[0] is partner


def test_a_queue_reading_asked_during_our_scan_leaves_our_file_out_however_late_it_answers():
    clock = FakeClock()
    pool, clients = make_pool(clock, [2.0, 2.0])
    clients[1].backlog = 1
    far, release, load = threading.Event(), threading.Event(), clients[0].get_load

    def far_core_load(timeout=None):
        counted = load(timeout)  # Core counts its queue (our file in it) when asked...
        if far.is_set():
            release.wait(5)  # ...and the answer arrives after our scan has ended
        return counted

    clients[0].get_load = far_core_load
    pool.cursor = 0
    node = pool.attempt_order()[0]
    started = clock.now()
    node.client.upload("/dev/null", "sample.bin")
    clock.t += 1.9
    far.set()
    pool.prepare_next(node)
    clock.t += 0.1
    pool.record_scan(node, clock.now() - started)
    clock.t += 0.01
    release.set()
    assert wait_for_reading(pool, node, clock.now()).queue == 1
    pool.cursor = 1  # core1's turn: only our file's leaving makes core0 the better choice
    assert pool.attempt_order()[0].name == "core0"


def test_the_stand_in_asked_ahead_is_the_one_compared():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5] * 10, seed=3)
    for client in clients:
        client.backlog, client.slots = 1, 4  # other instances are about: every candidate is read
    run_tasks(pool, clock, 3)
    node = pool.partner
    pool.cursor = pool.nodes.index(node)  # the Core just used has the next turn: a stand-in is drawn
    pool.prepare_next(node)
    answered_then_sleep(pool, clock)(0.1)
    before = sum(c.requests["stat/nodes"] for c in clients)
    pool.attempt_order()
    assert sum(c.requests["stat/nodes"] for c in clients) == before, "the task asked a Core nobody asked ahead"


def test_a_scan_ending_later_than_its_progress_promised_asks_no_more_cores():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5] * 5)
    for client in clients:
        client.backlog, client.slots, client.late = 1, 4, 0.6
        client.requests.clear()
    run_tasks(pool, clock, 20)
    assert sum(c.requests["stat/nodes"] for c in clients) <= 2 * 20 + 2


def test_a_scan_that_ends_without_a_nearly_done_call_still_asks_for_the_next_task():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 0.5], max_scan_time=5.0)
    for client in clients:
        client.backlog, client.slots = 1, 4  # other instances are about: the Core just used is read too
    run_tasks(pool, clock, 3)  # the last of them asked its successors ahead, while ending
    for node in pool.nodes[1:]:
        node.pace = replace(node.pace, skip_turns=1)  # both other Cores sit out: the next task has a single ready Core
    pool.cursor = 0
    node = pool.attempt_order()[0]
    assert node is pool.nodes[0]
    for other in pool.nodes[1:]:
        other.pace = replace(other.pace, skip_turns=0)  # back in rotation by the time the scan ends
    answered_then_sleep(pool, clock)(1.5)  # every reading so far is stale
    before = sum(c.requests["stat/nodes"] for c in clients)
    pool.record_scan(node, 0.2)  # a scan seen finished at its first poll: no nearly-done call
    answered_then_sleep(pool, clock)(0.0)
    assert sum(c.requests["stat/nodes"] for c in clients) > before, "the next task's Cores were not asked ahead"
