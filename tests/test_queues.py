"""Reading Cores' scan queues in the background (`QueueGauge`): what a task waits for, and what it does not.

Freshness is on a fake clock; the answers come on the gauge's real threads, so the tests wait for events (a Core asked,
a reading in, a call returned), each with a limit only a broken gauge reaches.
"""

from __future__ import annotations

import threading

from timing import PATIENCE, in_background, wait_until

from mdservice.client import CoreLoad
from mdservice.queues import QueueGauge
from mdservice.timing import FRESH_SECONDS


class SlowQueueClient:
    """A Core whose `stat/nodes` answers `queue`, as it was when asked, once `release` is set (at once while it is set);
    `asked` is set when a request comes in."""

    def __init__(self, queue: int):
        self.queue = queue
        self.release = threading.Event()
        self.release.set()
        self.asked = threading.Event()
        self.requests = 0

    def get_load(self, timeout=None) -> CoreLoad:
        self.requests += 1
        queue = self.queue
        self.asked.set()
        self.release.wait()
        return CoreLoad(queue, 4)


class Core:
    """What the gauge uses of a CoreNode: its name and client."""

    def __init__(self, queue: int):
        self.name, self.client = f"core-{queue}", SlowQueueClient(queue)


def wait_for_answer(gauge: QueueGauge, node) -> None:
    wait_until(lambda: gauge.latest(node) is not None, "the reading")


def test_a_fresh_reading_is_used_without_asking_again():
    now = [100.0]
    gauge, node = QueueGauge(lambda: now[0]), Core(3)
    gauge.ask([node])
    wait_for_answer(gauge, node)
    node.client.queue = 7
    now[0] += FRESH_SECONDS  # still fresh
    gauge.ask([node])
    assert gauge.readings([node], wait=PATIENCE)[node].queue == 3 and node.client.requests == 1


def test_without_a_fresh_reading_the_answer_is_waited_for():
    gauge, node = QueueGauge(lambda: 100.0), Core(4)
    node.client.release.clear()
    try:
        task, returned = in_background(lambda: gauge.readings([node], wait=2 * PATIENCE))
        assert node.client.asked.wait(PATIENCE), "the Core was not asked"
        node.client.release.set()
        task.join(PATIENCE)
        assert returned and returned[0][node].queue == 4, "the answer was not waited for"
    finally:
        node.client.release.set()


def test_without_a_fresh_reading_the_answer_is_waited_for_only_so_long():
    gauge, node = QueueGauge(lambda: 100.0), Core(4)
    node.client.release.clear()
    try:
        task, returned = in_background(lambda: gauge.readings([node], wait=0.3))
        task.join(PATIENCE)
        assert not task.is_alive(), "the task waited past its 0.3 s for an answer that did not come"
        assert returned == [{}]
    finally:
        node.client.release.set()
    wait_for_answer(gauge, node)
    assert gauge.readings([node], wait=0.3)[node].queue == 4


def test_a_reading_older_than_fresh_seconds_is_asked_again():
    now = [100.0]
    gauge, node = QueueGauge(lambda: now[0]), Core(2)
    gauge.ask([node])
    wait_for_answer(gauge, node)
    now[0] += FRESH_SECONDS + 0.1
    assert gauge.latest(node) is None
    assert gauge.readings([node], wait=PATIENCE)[node].queue == 2
    assert node.client.requests == 2


def test_an_answer_asked_before_our_file_left_the_queue_is_not_kept():
    gauge, node = QueueGauge(lambda: 100.0), Core(5)
    node.client.release.clear()
    gauge.ask([node])
    assert node.client.asked.wait(PATIENCE)
    gauge.forget(node)  # our file left Core's queue while the request was out: its answer counts our file
    node.client.queue = 4
    node.client.release.set()
    assert gauge.readings([node], wait=PATIENCE)[node].queue == 4 and node.client.requests == 2
    assert gauge.latest(node).queue == 4
