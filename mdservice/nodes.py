"""Which Core gets the next file: round-robin, the less busy of two candidates, time-outs for slow and failed Cores.

A `CoreNode` is one Core with its client, its engine map and its state, one small value per concern: its
`Health` (failures and back-off), its `Pace` (our latest scan on it, slow scans and the turns it sits out) and its
`Abilities` (what it can be asked). Health and Pace are frozen: a `NodePool`, which hands each task the Cores to
try, in order, and is told how each attempt went, replaces them by what their pure methods make of an event. All
time is monotonic seconds from an injectable clock, so the policy can be tested without waiting.

Choosing costs two `stat/nodes` requests per task whatever the number of Cores, asked in parallel
before the task arrives: just before the previous scan finishes, for the next task's two candidates
(one while no other instance's files are seen: the Core just used is then idle). A reading that has
grown older than `queues.FRESH_SECONDS` by the time the task comes (a scan that ended far later than
its progress promised) is asked for again. A candidate whose queue is full (Core 5's free places: 0) gets the file
only when no candidate has room; then one with a free scan slot beats one without; between equals, the one expected
to finish the file first wins, and then the one with more free places in its queue.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from mdservice.client import CoreBusy, CoreClient, CoreError, CoreNotReady, CoreRateLimited
from mdservice.engines import EngineMap
from mdservice.queues import QueueGauge, Reading

BACKOFF_START = 5.0
BACKOFF_MAX = 60.0
MAX_SKIP_TURNS = 5
PROBE_TIMEOUT = 3.0
# The most a task waits for its candidates' queue readings (asked in parallel).
QUEUE_WAIT = 0.5
# A Core's last scan time is trusted this long; after that the Core is judged like any other again.
SPEED_MEMORY = 300.0
SLOW_RATIO = 2.0
# The next task's candidates are not asked about again while a reading this recent is in.
REASK_SECONDS = 0.25
# Files of other instances seen on a Core within this time: the Core just used is asked about too.
OTHERS_MEMORY = 60.0
# Engine refreshes and probes are not started with less time than this left in their budget.
MIN_REQUEST_SECONDS = 0.05
# Core's rules are not asked for with less time left than this (the engine list alone then stands).
MIN_RULES_SECONDS = 0.5
# A Core that tells its readiness (Core 5's readyz) is asked again after this many seconds.
READY_SECONDS = 30.0
# The warning that the Cores are full is logged at most once in this many seconds.
OVERLOAD_WARNING_SECONDS = 60.0
# A queue reading this old still tells, in an error message, roughly how full a Core was.
LOAD_MEMORY = 60.0


@dataclass(frozen=True)
class Health:
    """Whether a Core answers (the default: it does): its failures in a row, when it may be tried again, and its latest
    error, `last_error_permanent` when retrying cannot fix it (API key or certificate refused, wrong address)."""

    failures: int = 0
    retry_at: float = 0.0
    last_error: str = ""
    last_error_permanent: bool = False

    def after_failure(self, error: CoreError, now: float) -> Health:
        """The health after `error` at `now`: the error is kept, and a fault of the Core itself (`node_fault`) puts
        it aside for `backoff` of its failures in a row."""
        noted = replace(self, last_error=str(error), last_error_permanent=error.permanent)
        if not error.node_fault:
            return noted
        return replace(noted, failures=self.failures + 1, retry_at=now + backoff(self.failures + 1))


def backoff(failures: int) -> float:
    """Seconds a Core sits out after `failures` in a row: BACKOFF_START, doubled per failure, at most BACKOFF_MAX."""
    return min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_MAX)


@dataclass(frozen=True)
class Pace:
    """How our latest finished scan on a Core went, and the turns the Core sits out after slow ones (the default: no
    scan yet, in full rotation).

    `scan_seconds`: that scan's time less its wait in Core's queue; `began`, `ended`: when it was sent and seen
    finished (a queue reading asked in between counts our file); `slow_streak`: files over max_md_scan_time in a row.
    """

    scan_seconds: float = 0.0
    began: float = math.inf
    ended: float = -math.inf
    slow_streak: int = 0
    skip_turns: int = 0

    def after_scan(self, seconds: float, queued: float, now: float) -> Pace:
        """The pace after our scan that ended at `now` after `seconds`, `queued` of them waiting in Core's queue."""
        return replace(self, scan_seconds=seconds - min(queued, seconds), began=now - seconds, ended=now)

    def after_file(self, over: bool) -> Pace:
        """The pace after a file that took longer than max_md_scan_time (`over`: one more turn to sit out for each
        such file in a row, MAX_SKIP_TURNS at most), or within it (back in full rotation)."""
        if over:
            return replace(self, slow_streak=self.slow_streak + 1, skip_turns=min(self.slow_streak + 1, MAX_SKIP_TURNS))
        return replace(self, slow_streak=0, skip_turns=0) if self.slow_streak else self

    def after_turn(self) -> Pace:
        """The pace after the rotation passed the Core over: one turn fewer to sit out."""
        return replace(self, skip_turns=self.skip_turns - 1)

    def recent_seconds(self, now: float) -> float:
        """`scan_seconds` while it is trusted (for SPEED_MEMORY after the scan), else 0."""
        return self.scan_seconds if now - self.ended < SPEED_MEMORY else 0.0


@dataclass
class Abilities:
    """What a Core can be asked, each False once it has lacked or refused it for good: its scan queue (`stat/nodes`),
    earlier scans by hash, its readiness (Core 5's readyz) and its rules (`file/rules`)."""

    reports_queue: bool = True
    finds_scans: bool = True
    checks_ready: bool = True
    lists_rules: bool = True


class CoreNode:
    """One Core: its HTTP client, its engines and rules, and whether it is in rotation (its Health and Pace)."""

    def __init__(self, client: CoreClient, md_version: int, rule: str = ""):
        self.client = client
        self.md_version = md_version
        self.rule = rule
        # Core's rules and the largest file each takes (None: Core does not list them, or not yet asked).
        self.rules: dict[str, int | None] | None = None
        self.abilities = Abilities()
        self.ready_checked_at = float("-inf")
        self.engines: EngineMap | None = None
        self.engines_read_at = float("-inf")
        self.health = Health()
        self.pace = Pace()
        # The rule (profile) Core applied to our uploads sent without one, as its reports named it.
        self.default_rule: str | None = None
        # Why Core said it is not ready, while it says so ("": ready, or it does not tell).
        self.not_ready = ""

    @property
    def name(self) -> str:
        return self.client.name

    @property
    def failed(self) -> bool:
        """True while the Core sits out after a failure (or has never answered)."""
        return self.health.failures > 0 or self.engines is None

    @property
    def serves_rule(self) -> bool:
        """False when Core lists its rules and the configured one is not among them."""
        return not (self.rule and self.rules is not None and self.rule not in self.rules)

    @property
    def rule_applied(self) -> str | None:
        """The rule our files are scanned under on this Core: the configured one, else Core's default as its reports
        named it, or the only rule Core lists; None while unknown."""
        listed = self.rules or {}
        return self.rule or self.default_rule or (next(iter(listed)) if len(listed) == 1 else None)

    @property
    def max_file_size(self) -> int | None:
        """The largest file, in bytes, the rule our files are scanned under takes on this Core; None when unknown or
        unlimited."""
        return (self.rules or {}).get(self.rule_applied)

    def read_engines(self, now: float, timeout: float | None = None) -> EngineMap:
        """Fetch and keep the engine map and, where Core lists them, its rules; a CoreError when Core's answer is
        unusable. Both requests together take at most `timeout`, the rules at most PROBE_TIMEOUT."""
        started = time.monotonic()
        payload = self.client.get_engines(timeout=timeout)
        try:
            engines = EngineMap.from_engine_list(payload, self.md_version)
        except ValueError as exc:
            raise CoreError(f"{self.name} sent an unreadable engine list: {exc}") from None
        self.engines, self.engines_read_at = engines, now
        left = PROBE_TIMEOUT if timeout is None else min(PROBE_TIMEOUT, timeout - (time.monotonic() - started))
        if self.abilities.lists_rules and left >= MIN_RULES_SECONDS:
            try:
                self.rules = self.client.get_rules(timeout=left)
            except CoreError:  # the engine list decides whether the Core answers; its rules stay as read last
                return engines
            self.abilities.lists_rules = self.rules is not None
        return engines

    def check_ready(self, now: float, timeout: float | None) -> None:
        """Ask Core whether it is ready (Core 5's readyz) and keep its answer in `not_ready`: a CoreNotReady when it
        says not. A Core without the endpoint is not asked again; one that cannot be asked now tells nothing (its
        other requests decide, and what it said last stands)."""
        if not self.abilities.checks_ready:
            return
        self.ready_checked_at = now
        try:
            self.abilities.checks_ready = self.client.check_ready(timeout=timeout)
        except CoreNotReady as exc:
            self.not_ready = str(exc)
            raise
        except CoreError as exc:
            self.abilities.checks_ready = not exc.permanent
            return
        self.not_ready = ""

    def learn_default_rule(self, report: dict) -> None:
        """Remember the rule Core applied to a file we sent without one (`process_info.profile` of its report)."""
        process = report.get("process_info")
        profile = process.get("profile") if isinstance(process, dict) else None
        if isinstance(profile, str) and profile:
            self.default_rule = profile


class ScanWatch:
    """What the pool wants to hear while one scan on `node` runs: that it is nearly done (once), and that our file is
    still waiting in Core's queue (once)."""

    def __init__(self, pool: NodePool, node: CoreNode):
        self.pool, self.node, self.log = pool, node, pool.log
        self.told_nearly_done = False
        self.told_queued = False

    def nearly_done(self) -> None:
        if not self.told_nearly_done:
            self.told_nearly_done = True
            self.pool.prepare_next(self.node)

    def queued(self) -> None:
        """Start reading the Core's queue, so that a task that cannot finish in time can tell how full it is."""
        if not self.told_queued and self.node.abilities.reports_queue:
            self.told_queued = True
            self.pool.gauge.ask([self.node])


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
        self.rng = rng or random.Random()
        self.cursor = self.rng.randrange(len(nodes))
        self.partner: CoreNode | None = None
        self.stand_in: CoreNode | None = None
        self.others_seen_at = float("-inf")
        # The next task's candidates were asked for while this task's scan was ending: not again when it ends.
        self.asked_ahead = False
        self.gauge = QueueGauge(clock)
        self.overload_warned_at = float("-inf")

    def read_all_engines(self) -> None:
        """Read every Core's engines, rules and readiness (at start); Cores that fail sit out and are probed later."""
        for node in self.nodes:
            try:
                node.read_engines(self.clock())
                node.check_ready(self.clock(), PROBE_TIMEOUT)
                self.log.info(f"{node.name}: {node.engines.active_av_count} active antivirus engines")
            except CoreError as exc:
                self.record_failure(node, exc)
            if not node.serves_rule:
                self.log.warning(f"{node.name} has no rule {node.rule!r} (it has {', '.join(sorted(node.rules))}): "
                                 "no file goes to it while it lacks the rule")

    def refresh_engines(self, max_age: float, until: float) -> None:
        """Re-read engine lists (and rules) older than `max_age`, ask Cores that tell their readiness again after
        READY_SECONDS, and probe failed Cores that are due, all by `until`.

        Most overdue first, each request given at most PROBE_TIMEOUT and the time left; the Cores not
        reached by `until` are left for a later call.
        """
        now = self.clock()
        overdue = {node: _overdue(node, now, max_age) for node in self.nodes}
        for node in sorted((n for n in self.nodes if overdue[n] >= 0), key=overdue.get, reverse=True):
            if until - self.clock() < MIN_REQUEST_SECONDS:
                return
            try:
                if node.failed or now - node.engines_read_at >= max_age:
                    node.read_engines(self.clock(), timeout=self._request_time(until))
                node.check_ready(self.clock(), self._request_time(until))
                if not node.not_ready:  # a readyz that could not be asked does not readmit a Core that said no
                    self.record_success(node)
            except CoreError as exc:
                self.record_failure(node, exc)

    def _request_time(self, until: float) -> float:
        """The time one maintenance request may take: PROBE_TIMEOUT at most, and what is left until `until`."""
        return max(MIN_REQUEST_SECONDS, min(PROBE_TIMEOUT, until - self.clock()))

    def attempt_order(self) -> list[CoreNode]:
        """The Cores to try for one task, best first, every Core once.

        The healthy Cores in rotation order, but the less busy of two candidates first (so that
        several service instances spread over the Cores instead of queueing behind each other);
        then Cores sitting out turns after slow scans; then failed Cores, soonest retry first, so
        that no task gives up without trying every Core. Cores that say they are not ready get no file (none
        may be left); Cores that lack the configured rule get one only when every Core lacks it.
        """
        self.asked_ahead = False
        everyone = [n for n in _rotation(self.nodes, self.cursor) if not n.not_ready]
        rotation = [n for n in everyone if n.serves_rule] or everyone
        if not rotation:
            return []
        ready = [n for n in rotation if _is_ready(n)]
        resting = [n for n in rotation if _is_resting(n)]
        turn = ready[0] if ready else None
        for node in _passed_over(rotation, turn):
            node.pace = node.pace.after_turn()
        if len(ready) > 1:
            ready = self._least_busy_first(ready)
        failed = sorted((n for n in rotation if n.failed), key=lambda n: n.health.retry_at)
        # The rotation moves past the Core whose turn it was even when the partner gets the file, so that
        # the next task compares another Core: a slow or busy Core cannot hold the rotation in place.
        self.cursor = (self.nodes.index(turn or (resting or failed)[0]) + 1) % len(self.nodes)
        return ready + resting + failed

    def _candidates(self, ready: list[CoreNode]) -> list[CoreNode]:
        """The next Core in rotation and a partner: the Core of our latest scan (the slot our file leaves is free
        for the next one), else a stand-in drawn at random, the same one until a task has compared it (so that it
        is the one asked in advance)."""
        if self.partner in ready[1:]:
            return [ready[0], self.partner]
        if self.stand_in not in ready[1:]:
            self.stand_in = self.rng.choice(ready[1:])
        return [ready[0], self.stand_in]

    def _least_busy_first(self, ready: list[CoreNode]) -> list[CoreNode]:
        """`ready` with the best candidate moved to the front, and a candidate whose queue is full to the back: one
        with room in its queue if there is one, of those one with a free scan slot if there is one, and of those the
        one expected to finish a file soonest (ties: more free places in the queue, then rotation order).

        A free slot comes first because a file queued on a Core that is fully busy adds nothing to what the Cores
        get done, while a slower Core with room does; a slow Core gets files only while the faster one has none.
        A full queue is not a failure: the Core is only passed over while another has room.
        """
        candidates = self._candidates(ready)
        self.stand_in = None
        needed = [n for n in candidates if self._needs_reading(n)]
        readings = self.gauge.readings(needed, QUEUE_WAIT)
        loads = {node: self._load_of(node, readings.get(node)) if node in needed else (0, 1) for node in candidates}
        rooms = {node: _room_in(readings.get(node), node.pace) for node in candidates}
        now = self.clock()
        fastest = min((s for s in (n.pace.recent_seconds(now) for n in self.nodes) if s > 0), default=0.0)
        healthy = [n for n in candidates if not n.failed]
        ready = [n for n in ready if not n.failed]
        if not healthy:
            return ready
        paces = {n: relative_pace(n.pace.recent_seconds(now), fastest, self.max_scan_time) for n in healthy}
        best = min(healthy, key=lambda n: (rooms[n] == 0, _preference(*loads[n], paces[n]), _room_order(rooms, n)))
        full = [n for n in ready if rooms.get(n) == 0 and n is not best]
        return [best] + [n for n in ready if n is not best and n not in full] + full

    def _load_of(self, node: CoreNode, reading: Reading | None) -> tuple[float, int]:
        """(files of others `node` has not finished, files it scans at once) by its reading; an infinite queue when
        it did not answer in time. Files of others in it are remembered (see `_needs_reading`).

        A Core that refuses or lacks `stat/nodes` (older versions, keys without the right) is not asked
        again and counts as idle, and so, for this once, does one that limits the rate of requests; one that fails to
        answer is put aside like any failing Core.
        """
        if reading is None:
            return math.inf, 1
        if reading.error is None:
            others = _others_in(reading, node.pace)
            if others:
                self.others_seen_at = max(self.others_seen_at, reading.at)
            return others, reading.slots
        if isinstance(reading.error, CoreRateLimited):  # asked too often: it can tell, later
            return 0, 1
        if reading.error.permanent or not reading.error.node_fault:
            node.abilities.reports_queue = False
        else:
            self.record_failure(node, reading.error)
        return 0, 1

    def record_scan(self, node: CoreNode, seconds: float, queued: float = 0.0, resumed: bool = False) -> None:
        """A scan finished on `node` after `seconds` (upload to complete), `queued` of them waiting in Core's queue.

        Time in the queue says how busy the Core was, which its queue readings tell; its pace is judged by the rest.
        Sitting out turns goes by the whole time, as `max_md_scan_time` is defined (upload to complete). A scan taken
        over from an earlier attempt (`resumed`) began before this task, so it says nothing of the Core's pace.
        """
        self.record_success(node)
        if resumed:
            return
        node.pace, self.partner = node.pace.after_scan(seconds, queued, self.clock()), node
        self._note_duration(node, seconds)
        if not self.asked_ahead:
            self._ask_next_candidates()

    def _note_duration(self, node: CoreNode, seconds: float, full: bool = False) -> None:
        """With several Cores, one whose file took longer than max_md_scan_time, or that was `full`, sits out turns
        (more for each such file in a row), and is back in full rotation after a file within it."""
        over, was_slow = len(self.nodes) > 1 and (full or seconds > self.max_scan_time), node.pace.slow_streak > 0
        node.pace = node.pace.after_file(over)
        if over:
            why = "was full" if full else f"took {seconds:.1f} s (max_md_scan_time {self.max_scan_time:g} s)"
            self.log.info(f"{node.name} {why}: put aside for {node.pace.skip_turns} turn(s)")
        elif was_slow:
            self.log.info(f"{node.name} scanned in {seconds:.1f} s: back in full rotation")

    def prepare_next(self, node: CoreNode) -> None:
        """The scan on `node` is nearly done: start reading the queues of the Cores the next task compares, the next
        in rotation and `node`, so that the readings are in when that task arrives, however far the Cores are."""
        self.partner, self.asked_ahead = node, True
        self._ask_next_candidates()

    def _ask_next_candidates(self) -> None:
        """Start reading the queues of the two Cores the next attempt_order will compare, unless just read."""
        ready = self._ready_in_rotation()
        if len(ready) > 1:
            self.gauge.ask([n for n in self._candidates(ready)
                            if self._needs_reading(n) and not self.gauge.is_fresh(n, REASK_SECONDS)])

    def _needs_reading(self, node: CoreNode) -> bool:
        """Whether the choice needs `node`'s queue. Not when it cannot tell it, and not for the Core just used while
        no other instance's file has been seen on any Core lately: ours was its only file, and it has left."""
        alone = self.clock() - self.others_seen_at > OTHERS_MEMORY
        return node.abilities.reports_queue and not (alone and node is self.partner)

    def _ready_in_rotation(self) -> list[CoreNode]:
        return [n for n in _rotation(self.nodes, self.cursor) if _is_ready(n)]

    def record_success(self, node: CoreNode) -> None:
        """`node` answered: back in rotation, its failures and error forgotten."""
        if node.health.failures:
            self.log.info(f"{node.name} answers again: back in rotation")
        node.health = Health()

    def record_failure(self, node: CoreNode, error: CoreError, seconds: float = 0.0) -> None:
        """Put a Core that failed aside (see `Health.after_failure`). A Core that is merely full (CoreBusy, after
        `seconds` with our file) is not: it only sits out turns as a slow Core does."""
        node.health = node.health.after_failure(error, self.clock())
        if isinstance(error, CoreBusy):
            self._note_duration(node, seconds, full=True)
        elif error.node_fault:
            failures = node.health.failures
            self.log.warning(f"{node.name} put aside for {backoff(failures):g} s after failure #{failures}: {error}")

    def watch(self, node: CoreNode) -> ScanWatch:
        return ScanWatch(self, node)

    def is_saturated(self, node: CoreNode, wait: float) -> bool:
        """Whether `node`'s queue, read now (waiting at most `wait` s, QUEUE_WAIT at most, for the answer), holds files
        waiting for a scan slot (False when it cannot tell)."""
        wait = max(0.0, min(QUEUE_WAIT, wait))
        reading = self.gauge.readings([node], wait).get(node) if node.abilities.reports_queue else None
        return reading is not None and reading.error is None and reading.queue > reading.slots

    def load_text(self, node: CoreNode, seconds: float) -> str:
        """How full `node` was, for a task that gave it `seconds`: its latest queue reading and recent pace."""
        reading = self.gauge.latest(node, LOAD_MEMORY)
        if reading is None or reading.error is not None:
            return f"{node.name} could not finish the file within the {seconds:.1f} s this task had for it"
        text = f"{node.name} held {reading.queue} files for {reading.slots} scan slots"
        if reading.free == 0:
            text += " and had no free place in its queue"
        per_file = node.pace.recent_seconds(self.clock())
        if per_file > 0:
            text += f", about {reading.queue / reading.slots * per_file:.0f} s of work at {per_file:.1f} s a file"
        return f"{text}, against the {seconds:.1f} s this task had for it"

    def warn_overloaded(self, message: str) -> None:
        """Log that the Cores are full, at most once per OVERLOAD_WARNING_SECONDS."""
        now = self.clock()
        if now - self.overload_warned_at >= OVERLOAD_WARNING_SECONDS:
            self.overload_warned_at = now
            self.log.warning(message)

    def close(self) -> None:
        """Stop asking Cores anything and close their connections."""
        self.gauge.close()
        for node in self.nodes:
            node.client.close()

    def fingerprints(self) -> list[str]:
        return [node.engines.fingerprint() if node.engines else "" for node in self.nodes]


def _overdue(node: CoreNode, now: float, max_age: float) -> float:
    """How long ago `node` was due for maintenance (negative: not yet): a probe for a failed Core, else a re-read
    of its engine list or of its readiness."""
    if node.failed:
        return now - node.health.retry_at
    ready_due = now - node.ready_checked_at - READY_SECONDS if node.abilities.checks_ready else -math.inf
    return max(now - node.engines_read_at - max_age, ready_due)


def _rotation(nodes: list[CoreNode], cursor: int) -> list[CoreNode]:
    """Every Core, in rotation order from the one at `cursor`."""
    return nodes[cursor:] + nodes[:cursor]


def _is_ready(node: CoreNode) -> bool:
    """In full rotation: neither failed nor sitting out turns after slow scans."""
    return not node.failed and node.pace.skip_turns == 0


def _is_resting(node: CoreNode) -> bool:
    """Sitting out turns after slow scans (and not failed)."""
    return not node.failed and node.pace.skip_turns > 0


def _passed_over(rotation: list[CoreNode], turn: CoreNode | None) -> list[CoreNode]:
    """The resting Cores the rotation passes over before it reaches `turn` (None: every resting Core): each loses a
    turn to sit out."""
    ahead = rotation[:rotation.index(turn)] if turn else rotation
    return [n for n in ahead if _is_resting(n)]


def _preference(queue: float, slots: int, pace: float) -> tuple[bool, float]:
    """Sort key of a candidate: free slot first, then when a file sent now would finish (in fastest scans: the
    files ahead of it that must leave a slot first, plus its own)."""
    waiting = max(0.0, queue + 1 - slots)
    return waiting > 0, pace * (1 + waiting / slots)


def _room_in(reading: Reading | None, pace: Pace) -> int | None:
    """The free places in a Core's queue by its reading (None: not said), the place of our own file counted as free
    when the reading counted it (see _others_in): that file has left since."""
    if reading is None or reading.error is not None or reading.free is None:
        return None
    return reading.free + reading.queue - _others_in(reading, pace)


def _room_order(rooms: dict[CoreNode, int | None], node: CoreNode) -> int:
    """Sort key of a candidate among equals: more free places in its queue first, when every candidate said."""
    return 0 if None in rooms.values() else -rooms[node]


def relative_pace(seconds: float, fastest: float, max_scan_time: float) -> float:
    """How many times longer than the `fastest` Core's a Core's recent scan took (`seconds`; 0: none trusted).

    1 unless that scan was slow: over `max_scan_time` and over SLOW_RATIO times the fastest. Scan times vary with
    the file, so only a clear difference may outweigh a shorter queue.
    """
    if seconds <= max(max_scan_time, SLOW_RATIO * fastest):
        return 1.0
    return seconds / fastest


def _others_in(reading: Reading, pace: Pace) -> int:
    """The files of others in a queue reading of a Core whose `pace` tells our latest scan on it: our own file is
    left out when the reading was asked for while it was on that Core (Core counted it then, whenever the answer
    came)."""
    return max(0, reading.queue - 1) if pace.began <= reading.asked_at < pace.ended else reading.queue
