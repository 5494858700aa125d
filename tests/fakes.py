"""A scripted stand-in for one Core's client, on a fake clock, for the node and scan policy tests."""

from __future__ import annotations

import logging
from collections import Counter

from mdservice.client import CoreError, CoreLoad
from mdservice.nodes import CoreNode, NodePool

ENGINES = [{"eng_name": "ClamAV", "eng_ver": "1", "engine_type": "av", "def_time": "2026-11-01T00:00:00Z",
            "active": True, "state": "production"}]


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.t += seconds


class FakeClient:
    """One Core: each scan takes `scan_seconds`; `error` makes every request fail with that CoreError.

    `delay`: fake seconds every answer takes (a request given less time fails as a timeout);
    `backlog`: files of other service instances in Core's queue; `slots`: files it scans at once; `wait`: seconds
    the next uploads wait in Core's queue before their scan starts; `late`: seconds a scan stays at 90 % past its
    `scan_seconds` (its end comes later than its progress promised); `requests` counts calls per kind.
    """

    def __init__(self, name: str, clock: FakeClock, scan_seconds: float = 1.0):
        self.name = name
        self.clock = clock
        self.scan_seconds = scan_seconds
        self.error: CoreError | None = None
        self.report_error: CoreError | None = None
        self.never_finishes = False
        self.uploads = 0
        self.polls = 0
        self.cancelled: list[str] = []
        self.started: dict[str, float] = {}
        self.delay = 0.0
        self.backlog = 0
        self.slots = 1
        self.wait = 0.0
        self.late = 0.0
        self.waits: dict[str, float] = {}
        self.requests: Counter = Counter()

    def _check(self, kind: str, timeout=None):
        self.requests[kind] += 1
        if timeout is not None and self.delay > timeout:
            self.clock.t += timeout
            raise CoreError(f"{self.name} did not answer {kind} within {timeout:g} s")
        self.clock.t += self.delay
        if self.error:
            raise self.error

    def get_engines(self, timeout=None):
        self._check("stat/engines", timeout)
        return ENGINES

    def get_load(self, timeout=None):
        self._check("stat/nodes", timeout)
        now = self.clock.now()
        ours = sum(1 for data_id, start in self.started.items() if data_id not in self.cancelled
                   and (self.never_finishes or now - start < self.waits[data_id] + self.scan_seconds))
        return CoreLoad(self.backlog + ours, self.slots)

    def upload(self, path, filename, rule="", archive_password="", timeout=None):
        self._check("upload", timeout)
        self.uploads += 1
        data_id = f"{self.name}-{self.uploads}"
        self.started[data_id] = self.clock.now()
        self.waits[data_id] = self.wait
        return data_id

    def get_report(self, data_id, timeout=None):
        self._check("result", timeout)
        self.polls += 1
        if self.report_error:
            raise self.report_error
        elapsed = self.clock.now() - self.started[data_id] - self.waits[data_id]
        progress = max(0, min(100, int(100 * elapsed / self.scan_seconds)))
        if progress >= 90 and elapsed < self.scan_seconds + self.late:
            progress = 90
        if self.never_finishes:
            progress = min(progress, 50)
        return {"data_id": data_id, "scan_results": {"progress_percentage": progress, "scan_details": {
            "ClamAV": {"scan_result_i": 0}}}, "process_info": {"progress_percentage": progress,
                                                                "queue_time": int(1000 * self.waits[data_id])}}

    def find_scan(self, sha256, rule="", timeout=None):
        self._check("hash", timeout)
        return None

    def cancel(self, data_id, timeout=None):
        self.cancelled.append(data_id)


def make_pool(clock: FakeClock, scan_seconds: list[float], max_scan_time: float = 5.0, seed: int = 0):
    """A pool of fake Cores (engines already read), with their clients."""
    clients = [FakeClient(f"core{i}", clock, s) for i, s in enumerate(scan_seconds)]
    nodes = [CoreNode(client, 4) for client in clients]
    pool = NodePool(nodes, max_scan_time, logging.getLogger("test.pool"), clock=clock.now,
                    rng=__import__("random").Random(seed))
    pool.read_all_engines()
    return pool, clients
