"""Reading Cores' scan queues in the background (`QueueGauge`): what a task waits for, and what it does not."""

from __future__ import annotations

import threading
import time

from mdservice.client import CoreError, CoreLoad
from mdservice.queues import QueueGauge
from mdservice.timing import FRESH_SECONDS


class SlowQueueClient:
    """A Core whose `stat/nodes` answers `queue` once `release` is set (at once while it is set)."""

    def __init__(self, queue: int):
        self.queue = queue
        self.release = threading.Event()
        self.release.set()
        self.asked = 0

    def get_load(self, timeout=None) -> CoreLoad:
        self.asked += 1
        if not self.release.wait(5):
            raise CoreError("did not answer stat/nodes")
        return CoreLoad(self.queue, 4)


class Core:
    """What the gauge uses of a CoreNode: its name and client."""

    def __init__(self, queue: int):
        self.name, self.client = f"core-{queue}", SlowQueueClient(queue)



def wait_for_answer(gauge: QueueGauge, node) -> None:
    for _ in range(200):
        if gauge.latest(node) is not None:
            return
        time.sleep(0.01)
    raise AssertionError("the reading never came in")


def test_a_fresh_reading_is_used_without_asking_again():
    gauge, node = QueueGauge(time.monotonic), Core(3)
    gauge.ask([node])
    wait_for_answer(gauge, node)
    node.client.queue = 7
    gauge.ask([node])  # fresh: not asked again
    assert gauge.readings([node], wait=2.0)[node].queue == 3 and node.client.asked == 1


def test_without_a_fresh_reading_the_answer_is_waited_for_but_only_so_long():
    gauge, node = QueueGauge(time.monotonic), Core(4)
    node.client.release.clear()
    began = time.monotonic()
    assert gauge.readings([node], wait=0.3) == {}
    assert 0.25 <= time.monotonic() - began < 1.0
    node.client.release.set()
    wait_for_answer(gauge, node)
    assert gauge.readings([node], wait=0.3)[node].queue == 4


def test_a_reading_older_than_fresh_seconds_is_asked_again():
    now = [100.0]
    gauge, node = QueueGauge(lambda: now[0]), Core(2)
    gauge.ask([node])
    wait_for_answer(gauge, node)
    now[0] += FRESH_SECONDS + 0.1
    assert not gauge.latest(node) is not None
    assert gauge.readings([node], wait=1.0)[node].queue == 2
    assert node.client.asked == 2
