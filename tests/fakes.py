"""A scripted stand-in for one Core's client, on a fake clock, for the node and scan policy tests."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

from timing import wait_until

from mdservice.client import CoreError, CoreLoad, CoreRateLimited, CoreTimeout
from mdservice.nodes import CoreNode, NodePool
from mdservice.scan import Clock

ENGINES = [{"eng_name": "ClamAV", "eng_ver": "1", "engine_type": "av", "def_time": "2026-11-01T00:00:00Z",
            "active": True, "state": "production"}]


DEFAULT_RULE = "File scan"
# The wall-clock time of fake monotonic second 1000 (the clock's start): a fixed day, after the definitions of ENGINES,
# so that no test depends on the day it runs.
WALL_START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def sha256_of(filename: str) -> str:
    """The fake SHA-256 of the file sent under `filename` (the fakes know files by name only)."""
    return hashlib.sha256(filename.encode()).hexdigest()


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.t += seconds

    def wall(self) -> datetime:
        return WALL_START + timedelta(seconds=self.t - 1000.0)


def clock_of(fake: FakeClock) -> Clock:
    """The service's Clock (monotonic time, sleeping, wall time) on the fake clock."""
    return Clock(fake.now, fake.sleep, fake.wall)


def settle(pool: NodePool) -> None:
    """Let the queue readings asked so far come in, as they would at once from a near Core (the gauge asks on real
    threads, while fake time would otherwise jump ahead of them)."""
    wait_until(lambda: not pool.gauge._asking, "the queue readings asked for")


def on_fake_time(service, clock: FakeClock):
    """`service` (a MetaDefender not started yet) with its time on `clock`: its task deadlines, waits and wall-clock
    time, and its Cores' back-offs, readiness checks and refreshes (the pool is built at start on `service.clock`)."""
    service.clock = clock_of(clock)
    return service


class FakeClient:
    """One Core: each scan takes `scan_seconds`; `error` makes every request fail with that CoreError.

    `delay`: fake seconds every answer takes (a request given less time fails as a timeout);
    `backlog`: files of other service instances in Core's queue; `slots`: files it scans at once; `wait`: seconds
    the next uploads wait in Core's queue before their scan starts; `late`: seconds a scan stays at 90 % past its
    `scan_seconds` (its end comes later than its progress promised); `requests` counts calls per kind, `polled_at`
    holds when each poll was sent.
    Look-ups by hash answer the newest scan of the file under the rule asked for (unfinished ones only with
    `shows_unfinished`); `outdated` adds Core's outdated_data to every report; `lose` lists data ids Core forgot;
    `limits`, `upload_limits`: the Retry-After (None: not said) of each of the next polls, uploads Core limits (429).
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
        self.polled_at: list[float] = []
        self.cancelled: list[str] = []
        self.started: dict[str, float] = {}
        self.delay = 0.0
        self.backlog = 0
        self.slots = 1
        self.wait = 0.0
        self.late = 0.0
        self.waits: dict[str, float] = {}
        self.requests: Counter = Counter()
        self.files: dict[str, tuple[str, str]] = {}
        self.shows_unfinished = True
        self.outdated: list[str] = []
        self.lose: set[str] = set()
        self.limits: list[float | None] = []
        self.upload_limits: list[float | None] = []

    def _check(self, kind: str, timeout=None):
        self.requests[kind] += 1
        if timeout is not None and self.delay > timeout:
            self.clock.t += timeout
            raise CoreTimeout(f"{self.name} did not answer {kind} within {timeout:g} s")
        self.clock.t += self.delay
        if self.error:
            raise self.error

    def get_engines(self, timeout=None):
        self._check("stat/engines", timeout)
        return ENGINES

    def get_rules(self, timeout=None):
        """A Core before 5.0: no rule list."""
        return None

    def check_ready(self, timeout=None):
        """A Core before 5.0: no readiness endpoint."""
        return False

    def get_load(self, timeout=None):
        self._check("stat/nodes", timeout)
        now = self.clock.now()
        ours = sum(1 for data_id, start in self.started.items() if data_id not in self.cancelled
                   and (self.never_finishes or now - start < self.waits[data_id] + self.scan_seconds))
        return CoreLoad(self.backlog + ours, self.slots)

    def upload(self, path, filename, rule="", passwords=(), timeout=None):
        self._check("upload", timeout)
        if self.upload_limits:
            raise CoreRateLimited(f"{self.name} answered file with HTTP 429", self.upload_limits.pop(0))
        self.uploads += 1
        data_id = f"{self.name}-{self.uploads}"
        self.started[data_id] = self.clock.now()
        self.waits[data_id] = self.wait
        self.files[data_id] = (filename, rule or DEFAULT_RULE)
        return data_id

    def get_report(self, data_id, timeout=None):
        self.polled_at.append(self.clock.now())
        self._check("result", timeout)
        if self.limits:
            raise CoreRateLimited(f"{self.name} answered file/{data_id} with HTTP 429", self.limits.pop(0))
        self.polls += 1
        if self.report_error:
            raise self.report_error
        if data_id in self.lose:
            raise CoreError(f"{self.name} lost the scan (data id {data_id} not found)", lost=True)
        return self._report(data_id)

    def _report(self, data_id):
        elapsed = self.clock.now() - self.started[data_id] - self.waits[data_id]
        progress = max(0, min(100, int(100 * elapsed / self.scan_seconds)))
        if progress >= 90 and elapsed < self.scan_seconds + self.late:
            progress = 90
        if self.never_finishes:
            progress = min(progress, 50)
        filename, rule = self.files.get(data_id, ("", DEFAULT_RULE))
        uploaded = WALL_START + timedelta(seconds=self.started[data_id] - 1000.0)
        file_info = {"sha256": sha256_of(filename), "upload_timestamp": uploaded.isoformat()}
        return {"data_id": data_id, "file_info": file_info,
                "scan_results": {"progress_percentage": progress, "scan_details": {"ClamAV": {"scan_result_i": 0}}},
                "process_info": {"progress_percentage": progress, "queue_time": int(1000 * self.waits[data_id]),
                                 "processing_time": int(1000 * min(max(0.0, elapsed), self.scan_seconds)),
                                 "profile": rule, **({"outdated_data": self.outdated} if self.outdated else {})}}

    def find_scan(self, sha256, rule="", timeout=None):
        self._check("hash", timeout)
        for data_id in reversed(self.files):
            if data_id in self.cancelled or data_id in self.lose:
                continue
            report = self._report(data_id)
            finished = report["process_info"]["progress_percentage"] == 100
            mine = (report["file_info"]["sha256"], report["process_info"]["profile"]) == (sha256, rule or DEFAULT_RULE)
            if mine and (finished or self.shows_unfinished):
                return report
        return None

    def cancel(self, data_id, timeout=None):
        self._check("cancel", timeout)
        self.cancelled.append(data_id)


def make_pool(clock: FakeClock, scan_seconds: list[float], max_scan_time: float = 5.0, seed: int = 0):
    """A pool of fake Cores (engines already read), with their clients."""
    clients = [FakeClient(f"core{i}", clock, s) for i, s in enumerate(scan_seconds)]
    nodes = [CoreNode(client, 4) for client in clients]
    pool = NodePool(nodes, max_scan_time, logging.getLogger("test.pool"), clock=clock.now,
                    rng=__import__("random").Random(seed))
    pool.read_all_engines()
    return pool, clients
