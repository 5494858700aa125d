"""Several Cores: round-robin, brief time-outs for slow Cores, failover and bounded tasks (fake Cores, fake time)."""

import logging
import random
import threading
from collections import Counter

import pytest
from assemblyline.common.exceptions import NonRecoverableError, RecoverableError
from fakes import FakeClock, make_pool, settle, sha256_of

from mdservice.client import CoreError, CoreLoad, CoreRateLimited
from mdservice.nodes import Pace
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
        settle(pool)
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
        firsts.add(pool.attempt_order(pool.candidates(), 54.0)[0].name)
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
    first = pool.attempt_order(pool.candidates(), 54.0)[0]
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


def test_a_scan_stuck_for_half_the_time_left_fails_over_and_is_canceled():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    clients[0].never_finishes = True  # progress stays at 50 %
    pool.cursor = 0
    start = clock.now()
    scan_file(pool, JOB, start + 40, Clock(clock.now, clock.sleep))
    assert clients[1].uploads == 1
    [second_started] = clients[1].started.values()
    # Stuck from 0.25 s on (50 % of a 0.5 s scan); failed once stuck for 20 s (half of the 40 s), seen by a poll at
    # most 1 s later (stuck scans are polled once a second).
    assert 20.25 <= second_started - start <= 21.5, "the stuck Core kept the file longer than half of the time, or less"
    assert clients[0].cancelled, "the scan given up on was not canceled"


def test_a_scan_that_moves_keeps_its_core_for_the_whole_deadline():
    clock = FakeClock()
    pool, clients = make_pool(clock, [60.0, 0.5])  # a scan of 60 s: moving at the 40 s deadline
    pool.cursor = 0
    start = clock.now()
    with pytest.raises(RecoverableError, match="being scanned"):
        scan_file(pool, JOB, start + 40, Clock(clock.now, clock.sleep))
    assert clients[1].uploads == 0, "a file being scanned was sent to another Core"
    assert clock.now() - start >= 39.5


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
    order = pool.attempt_order(pool.candidates(), 54.0)
    assert order[0].name != "core0"
    assert pool.cursor == 1, "the next task compares the Core after the one whose turn it was"


def test_fast_cores_share_the_files_while_a_slow_core_is_next_in_rotation():
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5, 8.0], max_scan_time=5.0)
    used = run_tasks(pool, clock, 30)
    assert used["core2"] <= 2
    assert min(used["core0"], used["core1"]) >= 8, f"one fast Core took nearly every file: {used}"


@pytest.mark.parametrize("cores", [1, 3, 30])
def test_control_requests_per_task_stay_at_two_whatever_the_number_of_cores(cores):
    """Two queue readings per task at most (the turn's Core and one drawn at random), none with a single Core."""
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5] * cores)
    for client in clients:
        client.requests.clear()
        client.backlog, client.slots = 1, 4
    tasks = 3 * cores
    run_tasks(pool, clock, tasks)
    control = sum(c.requests["stat/nodes"] + c.requests["stat/engines"] for c in clients)
    assert control <= 2 * tasks if cores > 1 else control == 0, (control, tasks)


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
    first = pool.attempt_order(pool.candidates(), 54.0)[0]
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
    first = pool.attempt_order(pool.candidates(), 54.0)[0]
    pool.cursor = pool.nodes.index(first)
    first.client.report_error = CoreError("answered file/x with HTTP 500")
    result = scan_file(pool, JOB, clock.now() + 54, Clock(clock.now, clock.sleep))
    assert result.node is not first
    assert first.client.cancelled == [f"{first.client.name}-1"], "the abandoned scan was left running on its Core"


def test_a_file_waits_on_a_fast_core_when_it_still_finishes_sooner_there():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 8.0], max_scan_time=5.0)
    clients[0].backlog = 1  # another instance's file holds the fast Core's only slot: ours is done in 1 s, not 8 s
    used = run_tasks(pool, clock, 20)
    assert used["core1"] <= 2, f"files went to the slow Core although they finish sooner on the fast one: {used}"


def test_a_slower_core_takes_the_files_while_the_faster_ones_queue_is_longer_than_its_scan():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 8.0], max_scan_time=10.0)
    clients[0].backlog = 20  # 20 files ahead on the fast Core: ours would be done in 10.5 s there, in 8 s here
    used = run_tasks(pool, clock, 20, budget=54.0)
    assert used["core1"] >= 18, used


def test_a_core_twice_as_fast_gets_the_file_when_queues_are_equal():
    clock = FakeClock()
    pool, clients = make_pool(clock, [1.0, 2.0], max_scan_time=5.0)
    for client in clients:
        client.backlog = 2
    run_tasks(pool, clock, 4)  # each Core's pace is known
    used = run_tasks(pool, clock, 20)
    assert used["core0"] >= 18, used


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
    assert first.node.name == "core0" and pool.nodes[0].pace.skip_turns == 0, "busy (6 s in the queue) is not slow"
    clients[0].wait = 0.0
    used = run_tasks(pool, clock, 30)
    assert used["core0"] >= 8, f"core0 was judged by the time its file waited for others: {used}"


def keyed_job(index: int) -> ScanJob:
    name = f"file-{index}.bin"
    return ScanJob("/dev/null", name, sha256=sha256_of(name), reuse_seconds=1800)


def test_files_a_retry_may_take_over_meet_the_same_two_cores_on_every_instance():
    clock = FakeClock()
    pools = [make_pool(clock, [0.5] * 5, seed=seed)[0] for seed in (1, 2)]
    pools[1].cursor = (pools[0].cursor + 2) % 5  # another instance, elsewhere in its rotation
    for index in range(20):
        key = keyed_job(index).sha256
        assert [n.name for n in pools[0].candidates(key).pair] == [n.name for n in pools[1].candidates(key).pair]


def test_files_a_retry_may_take_over_are_spread_over_the_cores_by_their_hash():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5, 0.5])
    used = Counter()
    for index in range(60):
        pool.refresh_engines(600, clock.now() + 2)
        result = scan_file(pool, keyed_job(index), clock.now() + 54, Clock(clock.now, answered_then_sleep(pool, clock)))
        used[result.node.name] += 1
    assert min(used.values()) >= 10, f"a Core was left out of the spread: {used}"


def test_a_core_whose_queue_reading_does_not_come_in_time_counts_as_full():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    pool.cursor = 0
    answer = threading.Event()

    def late_load(timeout=None):
        answer.wait(5)
        return CoreLoad(0, 1)

    clients[0].get_load = late_load
    try:
        assert [n.name for n in pool.attempt_order(pool.candidates(), 54.0)] == ["core1", "core0"]
    finally:
        answer.set()


def test_a_core_whose_queue_has_no_free_place_yields_to_one_with_room_and_a_longer_queue():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    pool.cursor = 0
    clients[0].get_load = lambda timeout=None: CoreLoad(500, 4, 0)
    clients[1].get_load = lambda timeout=None: CoreLoad(600, 4, 100)
    assert [n.name for n in pool.attempt_order(pool.candidates(), 54.0)] == ["core1", "core0"]


def test_the_core_a_file_just_left_is_read_afresh_for_the_next_file():
    """A queue reading of the Core our file was on counted our file: the next task asks that Core again, even within
    the second a reading is otherwise used for."""
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    start = clock.now()
    used = run_tasks(pool, clock, 1)
    assert clock.now() - start < 1.0, "the first reading is more than a second old before the second file"
    run_tasks(pool, clock, 1)
    asked = {client.name: client.requests["stat/nodes"] for client in clients}
    assert asked == {name: 2 if name in used else 1 for name in asked}


def cores_of(key: str) -> list[str]:
    """The names of a file's pair and spare, as any instance with the same three Cores ranks them."""
    candidates = make_pool(FakeClock(), [0.5] * 3)[0].candidates(key)
    return [node.name for node in [*candidates.pair, candidates.spare]]


@pytest.mark.parametrize(("pair_backlog", "spare_backlog", "goes_to"), [
    (1, 0, "spare"),  # both of its Cores are scanning another file, the spare is idle
    (1, 1, "first"),  # every Core is scanning another file: the file waits on its own Cores
    (0, 0, "first"),  # the first has a free slot: the spare is not asked
])
def test_a_file_that_would_wait_on_both_of_its_cores_goes_to_an_idle_third(pair_backlog, spare_backlog, goes_to):
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5] * 3)
    job = keyed_job(0)
    first, other, spare = cores_of(job.sha256)
    by_name = {client.name: client for client in clients}
    by_name[first].backlog = by_name[other].backlog = pair_backlog
    by_name[spare].backlog = spare_backlog
    result = scan_file(pool, job, clock.now() + 54, Clock(clock.now, answered_then_sleep(pool, clock)))
    assert result.node.name == {"spare": spare, "first": first}[goes_to]
    assert by_name[spare].requests["stat/nodes"] == (0 if pair_backlog == 0 else 1)


def busy_pair(scan_seconds: list[float]):
    """Three Cores and a file whose two Cores are each scanning another file: (fake clock, pool, clients by name, the
    file's job, the names of its first, other and spare Core)."""
    clock = FakeClock()
    pool, clients = make_pool(clock, scan_seconds)
    job = keyed_job(0)
    first, other, spare = cores_of(job.sha256)
    by_name = {client.name: client for client in clients}
    by_name[first].backlog = by_name[other].backlog = 1
    return clock, pool, by_name, job, (first, other, spare)


@pytest.mark.parametrize("error", [
    CoreRateLimited("stat/nodes: HTTP 429", retry_after=1.0),
    CoreError("stat/nodes: HTTP 403, the API key lacks the right", permanent=True, node_fault=False),
    CoreError("stat/nodes: HTTP 500"),
])
def test_a_spare_that_cannot_tell_its_queue_is_not_given_the_file(error):
    clock, pool, by_name, job, (first, _, spare) = busy_pair([0.5] * 3)
    by_name[spare].get_load = lambda timeout=None: (_ for _ in ()).throw(error)
    assert pool.attempt_order(pool.candidates(job.sha256), 54.0)[0].name == first


def test_a_file_that_would_wait_on_a_fast_core_goes_to_an_idle_spare_rather_than_its_idle_slow_other():
    clock, pool, by_name, job, (first, other, spare) = busy_pair([0.5] * 3)
    by_name[other].backlog = 0
    for node in pool.nodes:
        node.pace = Pace().after_scan(2.5 if node.name == other else 0.5, clock.now())
    # 1 s after the file ahead on the first, 2.5 s on the idle other, 0.5 s on the idle spare
    assert pool.attempt_order(pool.candidates(job.sha256), 54.0)[0].name == spare


@pytest.mark.parametrize(("queues", "first_seconds", "first_free", "goes_to"), [
    ((20, 15, 12), 1.0, None, "first"),  # 21, 16 and 13 s: in time nowhere, it waits on its first Core
    ((10, 15, 12), 2.0, None, "other"),  # 22, 16 and 13 s: in time nowhere, it waits on the faster of its pair
    ((20, 15, 12), 1.0, 0, "spare"),  # its first Core's queue is full: the soonest, though late
    ((20, 15, 5), 1.0, None, "spare"),  # 6 s on the spare
    ((20, 8, 12), 1.0, None, "other"),  # 9 s on the other
])
def test_a_file_that_can_finish_in_time_on_none_of_its_cores_waits_on_the_faster_of_its_pair(
        queues, first_seconds, first_free, goes_to):
    """README: a file no Core can finish within its task's time does not crowd the least full one."""
    clock, pool, by_name, job, names = busy_pair([1.0] * 3)
    for name, queue in zip(names, queues, strict=True):  # files not finished, 1 slot, instead of the pair's backlog
        free = first_free if name == names[0] else None
        by_name[name].get_load = lambda timeout=None, queue=queue, free=free: CoreLoad(queue, 1, free)
    for node in pool.nodes:  # seconds a file: first_seconds on the first, 1 s on the others
        node.pace = Pace().after_scan(first_seconds if node.name == names[0] else 1.0, clock.now())
    result = scan_file(pool, job, clock.now() + 10, Clock(clock.now, answered_then_sleep(pool, clock)))
    assert result.node.name == names[("first", "other", "spare").index(goes_to)]


def test_a_scan_left_running_on_the_spare_at_the_deadline_is_taken_over_by_the_retry():
    clock, pool, by_name, job, (first, other, spare) = busy_pair([0.5] * 3)
    by_name[spare].scan_seconds = 30.0  # slower than any Core the service knows
    service_clock = Clock(clock.now, answered_then_sleep(pool, clock), clock.wall)
    with pytest.raises(RecoverableError, match="being scanned"):
        scan_file(pool, job, clock.now() + 20, service_clock)
    assert by_name[spare].cancelled == []
    result = scan_file(pool, job, clock.now() + 20, service_clock)
    assert (result.node.name, result.data_id, result.resumed) == (spare, f"{spare}-1", True)
    assert by_name[spare].uploads + by_name[first].uploads + by_name[other].uploads == 1


def test_upkeep_asks_a_core_that_tells_its_readiness_every_30_s_and_its_engines_when_due():
    clock = FakeClock()
    pool, (client,) = make_pool(clock, [0.5])
    asked = []
    client.check_ready = lambda timeout=None: asked.append(clock.now()) or True  # a Core 5: ready
    pool.nodes[0].abilities.checks_ready = True
    pool.read_all_engines()
    start, asked[:] = clock.now(), []
    client.requests.clear()
    for at in (29.0, 30.0, 59.0, 600.0):
        clock.t = start + at
        pool.refresh_engines(600, clock.now() + 2)
    assert [at - start for at in asked] == [30.0, 600.0]
    assert client.requests["stat/engines"] == 1  # engine_refresh_seconds 600


def test_a_failing_core_is_put_aside_and_logged_with_its_pause(caplog):
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5])
    with caplog.at_level(logging.WARNING, logger="test.pool"):
        pool.record_failure(pool.nodes[1], CoreError("HTTP 500"))
    assert pool.nodes[1].failed and len(caplog.records) == 1
    assert all(told in caplog.records[0].getMessage() for told in ("core1", "5 s", "HTTP 500"))

@pytest.mark.parametrize(("seconds", "turns"), [(5.0, 0), (5.1, 1)])
def test_a_file_that_took_longer_than_max_md_scan_time_makes_its_core_sit_out_a_turn(seconds, turns):
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5], max_scan_time=5.0)
    pool.record_scan(pool.nodes[0], seconds, {})
    assert pool.nodes[0].pace.skip_turns == turns


def test_each_change_of_rotation_is_logged_on_one_line_naming_the_core(caplog):
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5], max_scan_time=5.0)
    core0, core1 = pool.nodes
    with caplog.at_level(logging.INFO, logger="test.pool"):
        pool.record_scan(core0, 1.0, {})  # within the limit, not slow before: no change
        pool.record_scan(core0, 7.5, {})
        pool.record_scan(core0, 1.0, {})
        pool.record_failure(core1, CoreError("HTTP 500"))
        pool.record_success(core1)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines
    slow, back, failed, again = lines
    assert all(told in slow for told in ("core0", "7.5 s", "1 turn"))
    assert "core0" in back and "rotation" in back and "put aside" not in back
    assert "core1" in failed and "core1" in again and "rotation" in again


def test_cores_that_lack_the_rule_get_a_file_only_when_every_core_lacks_it():
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5])
    for node in pool.nodes:
        node.rule = "Strict"
    pool.nodes[0].rules = {"Default": None}
    pool.nodes[1].rules = {"Default": None, "Strict": None}
    assert [n.name for n in pool.attempt_order(pool.candidates(), 54.0)] == ["core1"]
    pool.nodes[1].rules = {"Default": None}
    assert sorted(n.name for n in pool.attempt_order(pool.candidates(), 54.0)) == ["core0", "core1"]


def test_a_resting_core_loses_a_turn_only_when_the_rotation_passes_it_over():
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5, 0.5])
    pool.cursor = 0
    pool.nodes[1].pace = Pace(slow_streak=2, skip_turns=2)
    pool.attempt_order(pool.candidates(), 54.0)  # core0's turn: core1, after it, is not passed over
    assert pool.nodes[1].pace.skip_turns == 2
    pool.attempt_order(pool.candidates(), 54.0)  # core1 would be next: passed over for core2
    assert pool.nodes[1].pace.skip_turns == 1


def test_when_every_core_rests_the_rotation_still_moves_one_core_per_task():
    clock = FakeClock()
    pool, _ = make_pool(clock, [0.5, 0.5])
    pool.cursor = 0
    for node in pool.nodes:
        node.pace = Pace(slow_streak=1, skip_turns=5)
    pool.attempt_order(pool.candidates(), 54.0)
    assert pool.cursor == 1
