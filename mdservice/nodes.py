"""Which Core gets the next file: round-robin, brief time-outs for slow Cores, back-off for failed ones.

A `CoreNode` is one Core with its client, its engine map and its health. A `NodePool` hands each
task the Cores to try, in order, and is told how each attempt went. All time is monotonic
seconds from an injectable clock, so the policy can be tested without waiting.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from mdservice.client import CoreClient, CoreError
from mdservice.engines import EngineMap

BACKOFF_START = 5.0
BACKOFF_MAX = 60.0
MAX_SKIP_TURNS = 5
PROBE_TIMEOUT = 3.0
# A Core that cannot say how busy it is within this time is failing.
QUEUE_TIMEOUT = 1.0


class CoreNode:
    """One Core: its HTTP client, its engines and whether it is in rotation."""

    def __init__(self, client: CoreClient, md_version: int):
        self.client = client
        self.md_version = md_version
        self.engines: EngineMap | None = None
        self.engines_read_at = float("-inf")
        self.failures = 0
        self.retry_at = 0.0
        self.slow_streak = 0
        self.skip_turns = 0
        self.last_error = ""
        self.reports_queue = True

    @property
    def name(self) -> str:
        return self.client.name

    @property
    def failed(self) -> bool:
        """True while the Core sits out after a failure (or has never answered)."""
        return self.failures > 0 or self.engines is None

    def read_engines(self, now: float, timeout: float | None = None) -> EngineMap:
        """Fetch and keep the engine map; a CoreError when Core's answer is unusable."""
        payload = self.client.get_engines(timeout=timeout)
        try:
            engines = EngineMap.from_engine_list(payload, self.md_version)
        except ValueError as exc:
            raise CoreError(f"{self.name} sent an unreadable engine list: {exc}") from None
        self.engines, self.engines_read_at = engines, now
        return engines


class NodePool:
    """The Cores of `base_url`, handed out round-robin from a random start."""

    def __init__(self, nodes: list[CoreNode], max_scan_time: float, log: logging.Logger,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None):
        if not nodes:
            raise ValueError("a NodePool needs at least one Core")
        self.nodes = nodes
        self.max_scan_time = max_scan_time
        self.log = log
        self.clock = clock
        self.cursor = (rng or random.Random()).randrange(len(nodes))

    def read_all_engines(self) -> None:
        """Read every Core's engines (at start); Cores that fail sit out and are probed again later."""
        for node in self.nodes:
            try:
                node.read_engines(self.clock())
                self.log.info(f"{node.name}: {node.engines.active_count} active engines")
            except CoreError as exc:
                self.record_failure(node, exc)

    def refresh_engines(self, max_age: float) -> None:
        """Re-read the engines of healthy Cores whose map is older than `max_age`; probe failed Cores that are due."""
        now = self.clock()
        for node in self.nodes:
            due_probe = node.failed and now >= node.retry_at
            if not due_probe and (node.failed or now - node.engines_read_at < max_age):
                continue
            try:
                node.read_engines(now, timeout=PROBE_TIMEOUT if due_probe else None)
                self.record_success(node)
            except CoreError as exc:
                self.record_failure(node, exc)

    def attempt_order(self) -> list[CoreNode]:
        """The Cores to try for one task, best first, every Core once.

        The healthy Cores in rotation order, the one with the shortest scan queue first (so that
        several service instances spread over the Cores instead of queueing behind each other);
        then Cores sitting out turns after slow scans; then failed Cores, soonest retry first, so
        that no task gives up without trying every Core.
        """
        count = len(self.nodes)
        rotation = [self.nodes[(self.cursor + i) % count] for i in range(count)]
        ready = [n for n in rotation if not n.failed and n.skip_turns == 0]
        resting = [n for n in rotation if not n.failed and n.skip_turns > 0]
        self._use_up_turns(rotation, ready[0] if ready else None)
        if len(ready) > 1:
            queues = {node: self._scan_queue(node) for node in ready}
            ready = sorted((n for n in ready if not n.failed), key=queues.get)
        failed = sorted((n for n in rotation if n.failed), key=lambda n: n.retry_at)
        first = (ready or resting or failed)[0]
        self.cursor = (self.nodes.index(first) + 1) % count
        return ready + resting + failed

    @staticmethod
    def _use_up_turns(rotation: list[CoreNode], next_ready: CoreNode | None) -> None:
        """Resting Cores that the rotation passes over before reaching the next ready Core lose one turn."""
        for node in rotation:
            if node is next_ready:
                return
            if node.skip_turns > 0 and not node.failed:
                node.skip_turns -= 1

    def _scan_queue(self, node: CoreNode) -> int:
        """Files `node` has not finished, to prefer the least busy Core.

        A Core that refuses or lacks `stat/nodes` (older versions, keys without the right) is not asked
        again and counts as idle; one that fails to answer is put aside like any failing Core.
        """
        if not node.reports_queue:
            return 0
        try:
            return node.client.get_scan_queue(timeout=QUEUE_TIMEOUT)
        except CoreError as exc:
            if exc.permanent or not exc.node_fault:
                node.reports_queue = False
            else:
                self.record_failure(node, exc)
            return 0

    def record_scan(self, node: CoreNode, seconds: float) -> None:
        """A scan finished on `node` after `seconds` (upload to complete)."""
        self.record_success(node)
        if len(self.nodes) > 1 and seconds > self.max_scan_time:
            node.slow_streak += 1
            node.skip_turns = min(node.slow_streak, MAX_SKIP_TURNS)
            self.log.info(f"{node.name} took {seconds:.1f} s (max_md_scan_time {self.max_scan_time:g} s): "
                          f"put aside for {node.skip_turns} turn(s)")
        elif node.slow_streak:
            node.slow_streak = node.skip_turns = 0
            self.log.info(f"{node.name} scanned in {seconds:.1f} s: back in full rotation")

    def record_success(self, node: CoreNode) -> None:
        if node.failures:
            self.log.info(f"{node.name} answers again: back in rotation")
        node.failures, node.retry_at, node.last_error = 0, 0.0, ""

    def record_failure(self, node: CoreNode, error: CoreError) -> None:
        """Put a Core that failed aside, for 5 s doubling per failure in a row up to 60 s."""
        node.last_error = str(error)
        if not error.node_fault:
            return
        node.failures += 1
        pause = min(BACKOFF_START * 2 ** (node.failures - 1), BACKOFF_MAX)
        node.retry_at = self.clock() + pause
        self.log.warning(f"{node.name} put aside for {pause:g} s after failure #{node.failures}: {error}")

    def fingerprints(self) -> list[str]:
        return [node.engines.fingerprint() if node.engines else "" for node in self.nodes]
