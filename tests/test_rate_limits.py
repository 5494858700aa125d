"""Cores that limit the rate of requests (429 with Retry-After, Core 5.13+): the task waits as asked, polls less often,
and never puts the Core aside (fake Cores, fake time)."""

import pytest
from assemblyline.common.exceptions import RecoverableError
from fakes import FakeClock, make_pool

from mdservice.client import CoreRateLimited
from mdservice.scan import Clock, ScanJob, scan_file

JOB = ScanJob("/dev/null", "sample.bin")


def run(pool, clock, budget: float = 54.0):
    return scan_file(pool, JOB, clock.now() + budget, Clock(clock.now, clock.sleep))


def gaps(times: list[float]) -> list[float]:
    return [round(later - earlier, 6) for earlier, later in zip(times, times[1:], strict=False)]


def assert_not_put_aside(node):
    assert (node.health.failures, node.pace.skip_turns, node.failed) == (0, 0, False)


def test_limited_polls_wait_the_retry_after_and_the_polls_after_them_come_no_more_often():
    clock = FakeClock()
    pool, (client,) = make_pool(clock, [3.0])
    client.limits = [2.0, 2.0]
    result = run(pool, clock)
    assert result.node is pool.nodes[0] and result.report["process_info"]["progress_percentage"] == 100
    assert gaps(client.polled_at)[:2] == [2.0, 2.0]
    assert min(gaps(client.polled_at)) >= 2.0
    assert_not_put_aside(pool.nodes[0])


def test_a_limit_without_retry_after_waits_one_second():
    clock = FakeClock()
    pool, (client,) = make_pool(clock, [0.5])
    client.limits = [None]
    run(pool, clock)
    assert gaps(client.polled_at)[0] == 1.0


def test_a_core_that_limits_every_poll_to_the_deadline_fails_the_task_saying_so():
    clock = FakeClock()
    pool, (client,) = make_pool(clock, [0.5])
    client.limits = [3.0] * 100
    deadline = clock.now() + 10.0
    with pytest.raises(RecoverableError, match=r"HTTP 429.*limited our polls of the scan"):
        scan_file(pool, JOB, deadline, Clock(clock.now, clock.sleep))
    assert clock.now() <= deadline
    assert client.polls == 0 and len(client.polled_at) >= 3
    assert_not_put_aside(pool.nodes[0])


def test_a_limited_upload_is_sent_again_after_the_retry_after():
    clock = FakeClock()
    pool, (client,) = make_pool(clock, [0.5])
    client.upload_limits = [3.0]
    sent_at = clock.now()
    result = run(pool, clock)
    assert client.requests["upload"] == 2 and client.uploads == 1
    assert client.started[result.data_id] - sent_at == 3.0
    assert_not_put_aside(pool.nodes[0])


@pytest.mark.parametrize("limits", ["limits", "upload_limits"])
def test_a_core_that_limits_past_its_time_is_left_for_the_next_core_but_not_put_aside(limits):
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    pool.cursor = 0
    setattr(clients[0], limits, [100.0] * 10)
    result = run(pool, clock)
    assert result.node is pool.nodes[1]
    assert "HTTP 429" in pool.nodes[0].health.last_error
    assert_not_put_aside(pool.nodes[0])


def test_a_limited_queue_reading_leaves_the_core_in_the_choice_and_asked_again():
    clock = FakeClock()
    pool, clients = make_pool(clock, [0.5, 0.5])
    limited = CoreRateLimited("core0 answered stat/nodes with HTTP 429", 1.0)
    clients[0].get_load = lambda timeout=None: (_ for _ in ()).throw(limited)
    run(pool, clock)
    assert pool.nodes[0].abilities.reports_queue
    assert_not_put_aside(pool.nodes[0])
