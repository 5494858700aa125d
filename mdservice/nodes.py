"""Which Core gets the next file: where it will finish soonest, with time-outs for slow and failed Cores.

A `CoreNode` is one Core with its client, its engine map and its state, one small value per concern: its
`Health` (failures and back-off), its `Pace` (our latest scan on it, slow scans and the turns it sits out) and its
`Abilities` (what it can be asked). Health and Pace are frozen: a `NodePool`, which hands each task the Cores to
try, in order, and is told how each attempt went, replaces them by what their pure methods make of an event. All
time is monotonic seconds from an injectable clock, so the policy can be tested without waiting.

The choice, as Envoy's least-request balancer ("power of two choices") and outlier detection: a file has a pair of
candidate Cores (`candidates`), whose queues (`stat/nodes`) are read in parallel at the start of its task, and it
goes to the first unless it would finish clearly sooner on the other (`sooner_of`: the files ahead of it per scan
slot, times the Core's time per file). A Core whose queue is full (Core 5's free places: 0) gets the file only when
the other has no room either, and between Cores that would finish it about as soon, more free places win. When the
file would wait for a scan slot where it goes, a third Core, its spare, is asked too, and gets the file if it would
finish it clearly sooner there (as the bounded loads of consistent hashing move a key on from a full host); a file
none of them could finish within its task's time goes to the faster of its pair instead. A file a retry may take over
has the three Cores that rank highest for its SHA-256 (rendezvous hashing) as its pair and spare: every attempt, on
any instance, meets the same three, and looks there for the scan an earlier attempt left. Other files have the Core
whose turn it is in a rotation (from a random start, one Core per task), one drawn at random, and the next in
rotation as their spare. Only errors put a Core aside (`Health`); a full or slow Core only ranks later.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from mdservice.client import CoreClient, CoreError, CoreNotReady, CoreRateLimited
from mdservice.engines import EngineMap
from mdservice.queues import QueueGauge, Reading
from mdservice.report import queue_seconds, scan_seconds
from mdservice.timing import (
    BACKOFF_MAX,
    BACKOFF_START,
    CLEARLY_SOONER,
    FULL_MESSAGE_SECONDS,
    MAX_SKIP_TURNS,
    MIN_REQUEST_SECONDS,
    MIN_RULES_SECONDS,
    PROBE_TIMEOUT,
    QUEUE_WAIT,
    READY_SECONDS,
    SPEED_MEMORY,
)


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

    `scan_seconds`: the time Core worked on that file; `ended`: when it was seen finished;
    `slow_streak`: files over max_md_scan_time in a row.
    """

    scan_seconds: float = 0.0
    ended: float = -math.inf
    slow_streak: int = 0
    skip_turns: int = 0

    def after_scan(self, seconds: float, now: float) -> Pace:
        """The pace after our scan that ended at `now`, on which Core worked `seconds`."""
        return replace(self, scan_seconds=seconds, ended=now)

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
    """What the pool wants to hear while one scan on `node` runs: that our file is still waiting in Core's queue
    (once), so that a task that cannot finish in time can tell how full the Core is."""

    def __init__(self, pool: NodePool, node: CoreNode):
        self.pool, self.node, self.log = pool, node, pool.log
        self.told_queued = False

    def queued(self) -> None:
        if not self.told_queued and self.node.abilities.reports_queue:
            self.told_queued = True
            self.pool.gauge.ask([self.node])

    def left_queue(self) -> None:
        """Our file left the Core's queue (we canceled it): a queue reading taken before counts it, so none is kept."""
        self.pool.gauge.forget(self.node)


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

    def candidates(self, key: str = "") -> Candidates:
        """The Cores a file may go to (see `Candidates`; fewer when fewer are in full rotation), the first of its pair
        the one it goes to on a tie, the pair's queues asked for at once (`attempt_order`, given them, goes by the
        answers).

        With `key`, the file's SHA-256: the three Cores that rank highest for it (rendezvous hashing), the spare
        third, the same for every attempt at the file on any instance while the Cores stay the same, so a retry knows
        where an earlier attempt's scan is. Without: the Core whose turn it is and one drawn at random; the spare is
        the next in rotation.
        """
        ready = [n for n in self._eligible() if _is_ready(n)]
        if key:
            ranked = sorted(ready, key=lambda n: _rank(key, n), reverse=True)
        else:
            drawn = [self.rng.choice(ready[1:])] if len(ready) > 1 else []
            ranked = ready[:1] + drawn + [n for n in ready[1:] if n not in drawn]
        if len(ranked) < 2:
            return Candidates(tuple(ranked))
        self.gauge.ask([n for n in ranked[:2] if n.abilities.reports_queue])
        return Candidates(tuple(ranked[:2]), ranked[2] if len(ranked) > 2 else None)

    def attempt_order(self, candidates: Candidates, seconds: float) -> list[CoreNode]:
        """The Cores to try for one task, best first, every Core once.

        The Cores in full rotation, the one `choose` picks of the file's `candidates` (for a task with `seconds` left)
        first, then the rest in rotation order; then Cores sitting out turns after slow scans; then failed Cores,
        soonest retry first, so that no task gives up without trying every Core. Cores that say they are not ready get
        no file (none may be left); Cores that lack the configured rule get one only when every Core lacks it.
        """
        rotation = self._eligible()
        if not rotation:
            return []
        ready = [n for n in rotation if _is_ready(n)]
        resting = [n for n in rotation if _is_resting(n)]
        turn = ready[0] if ready else None
        for node in _passed_over(rotation, turn):
            node.pace = node.pace.after_turn()
        if len(candidates.pair) == 2:
            best = self.choose(candidates, seconds)
            ready = [n for n in [best, *(n for n in ready if n is not best)] if not n.failed]
        failed = sorted((n for n in rotation if n.failed), key=lambda n: n.health.retry_at)
        self.cursor = (self.nodes.index(turn or (resting or failed)[0]) + 1) % len(self.nodes)
        return ready + resting + failed

    def choose(self, candidates: Candidates, seconds: float) -> CoreNode:
        """Where the file goes: the sooner of its pair by their queues (`sooner_of`), unless it would wait there for a
        scan slot and the spare, asked then, is sooner still by a reading without error (`sooner_of` again). The other
        of the pair may have a free slot and still lose: it is slower.

        A file that could not finish within `seconds` (the time the task has) even there goes to the faster of its
        pair instead (`faster_if_late`)."""
        (first, other), spare = candidates.pair, candidates.spare
        per_file = self._per_file([n for n in (first, other, spare) if n is not None])
        loads = self._loads([first, other])
        best = sooner_of(first, other, loads, per_file)
        waits = finish_seconds(loads[best], per_file[best]) > per_file[best]  # for a scan slot
        if waits and spare is not None and spare.abilities.reports_queue:
            reading = self.gauge.readings([spare], QUEUE_WAIT).get(spare)
            loads[spare] = self._load_of(spare, reading)  # an error counts for the spare's health as for any Core's
            if reading is not None and reading.error is None:
                best = sooner_of(best, spare, loads, per_file)
        return faster_if_late(best, (first, other), loads, per_file, seconds)

    def _per_file(self, nodes: list[CoreNode]) -> dict[CoreNode, float]:
        """Each Core's recent time per file; a Core without one is taken to scan as fast as the fastest Core that
        has one (with none known, 1 s: then only the queues count)."""
        now = self.clock()
        known = [seconds for seconds in (n.pace.recent_seconds(now) for n in self.nodes) if seconds > 0]
        fastest = min(known, default=1.0)
        return {node: node.pace.recent_seconds(now) or fastest for node in nodes}

    def _eligible(self) -> list[CoreNode]:
        """Every Core that may get files, in rotation order: not one that says it is not ready, and not one that
        lacks the configured rule unless every Core lacks it."""
        everyone = [n for n in _rotation(self.nodes, self.cursor) if not n.not_ready]
        return [n for n in everyone if n.serves_rule] or everyone

    def _loads(self, nodes: list[CoreNode]) -> dict[CoreNode, Load]:
        """Each Core's load by its queue reading, read now in parallel (at most QUEUE_WAIT); see `_load_of`."""
        asked = [n for n in nodes if n.abilities.reports_queue]
        readings = self.gauge.readings(asked, QUEUE_WAIT)
        return {node: self._load_of(node, readings.get(node)) if node in asked else Load() for node in nodes}

    def _load_of(self, node: CoreNode, reading: Reading | None) -> Load:
        """A Core's load by its reading; a Core that did not answer in time counts as full.

        A Core that refuses or lacks `stat/nodes` (older versions, keys without the right) is not asked
        again and counts as idle, and so, for this once, does one that limits the rate of requests; one that fails to
        answer is put aside like any failing Core.
        """
        if reading is None:
            return Load(math.inf)
        if reading.error is None:
            return Load(reading.queue, reading.slots, reading.free)
        if isinstance(reading.error, CoreRateLimited):  # asked too often: it can tell, later
            return Load()
        if reading.error.permanent or not reading.error.node_fault:
            node.abilities.reports_queue = False
        else:
            self.record_failure(node, reading.error)
        return Load()

    def record_scan(self, node: CoreNode, seconds: float, report: dict, resumed: bool = False) -> None:
        """A scan finished on `node` after `seconds` (upload to complete), with this finished `report`.

        The time the file waited in Core's queue says how busy the Core was, which the choice weighs by its queue:
        a busy Core is not a slow one. So the Core sits out turns when the rest (upload to complete, less the wait
        Core reports) is over `max_md_scan_time`, and its pace is the time Core says it worked on the file (that
        rest where it does not say). A scan taken over from an earlier attempt (`resumed`) began before this task,
        so it says nothing of the Core's pace. Our file has left the Core's queue: a reading taken before counts it,
        so none is kept.
        """
        self.record_success(node)
        self.gauge.forget(node)
        if resumed:
            return
        taken = seconds - min(queue_seconds(report), seconds)
        worked = scan_seconds(report)
        node.pace = node.pace.after_scan(taken if worked is None else worked, self.clock())
        self._note_duration(node, taken)

    def _note_duration(self, node: CoreNode, seconds: float) -> None:
        """With several Cores, one that took longer than max_md_scan_time for a file (`seconds`, its wait in the queue
        left out) sits out turns (more for each such file in a row), and is back in full rotation after a file within
        it."""
        over, was_slow = len(self.nodes) > 1 and seconds > self.max_scan_time, node.pace.slow_streak > 0
        node.pace = node.pace.after_file(over)
        if over:
            self.log.info(f"{node.name} took {seconds:.1f} s for a file, besides its wait in the queue "
                          f"(max_md_scan_time {self.max_scan_time:g} s): put aside for {node.pace.skip_turns} turn(s)")
        elif was_slow:
            self.log.info(f"{node.name} scanned in {seconds:.1f} s: back in full rotation")

    def record_success(self, node: CoreNode) -> None:
        """`node` answered: back in rotation, its failures and error forgotten."""
        if node.health.failures:
            self.log.info(f"{node.name} answers again: back in rotation")
        node.health = Health()

    def record_failure(self, node: CoreNode, error: CoreError) -> None:
        """Put a Core that failed aside (see `Health.after_failure`); a Core that is merely full (CoreBusy, not a
        `node_fault`) or limits our requests is not: the choice weighs its queue."""
        node.health = node.health.after_failure(error, self.clock())
        if error.node_fault:
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
        reading = self.gauge.latest(node, FULL_MESSAGE_SECONDS)
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
        """Log that the Cores are full, at most once per FULL_MESSAGE_SECONDS."""
        now = self.clock()
        if now - self.overload_warned_at >= FULL_MESSAGE_SECONDS:
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


def _rank(key: str, node: CoreNode) -> int:
    """The rendezvous rank of `node` for the file `key`: a hash of both, the same on every instance."""
    return int.from_bytes(hashlib.sha256(f"{key}\n{node.name}".encode()).digest()[:8], "big")


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


@dataclass(frozen=True)
class Candidates:
    """The Cores a file may go to: its `pair`, whose queues are read at the start of its task, and a `spare`, asked
    only when the file would wait for a scan slot on the Core of its pair it would go to."""

    pair: tuple[CoreNode, ...]
    spare: CoreNode | None = None

    @property
    def cores(self) -> tuple[CoreNode, ...]:
        """Each of them: where an attempt may leave the file's scan running, and a later one looks for it."""
        return self.pair + ((self.spare,) if self.spare else ())


@dataclass(frozen=True)
class Load:
    """What a Core's queue reading says: the files it has not finished, the files it scans at once and the free places
    in its queue (None: not said) (the default: idle, as for a Core that cannot tell; an infinite queue for one that
    did not answer in time)."""

    queue: float = 0
    slots: int = 1
    free: int | None = None


def sooner_of(first: CoreNode, other: CoreNode, loads: dict[CoreNode, Load], per_file: dict[CoreNode, float]
              ) -> CoreNode:
    """Where a file should go: the `first` candidate, unless it would clearly finish sooner on `other` (in less than
    1 / CLEARLY_SOONER of the time: scan times vary with the file and with when a poll sees the end); each Core's
    `loads` and seconds `per_file`.

    A Core whose queue is full (no free place) gets the file only when the other's is full too; when neither would
    clearly finish sooner, the one with more free places in its queue wins (where both say).
    """
    finish = {node: finish_seconds(loads[node], per_file[node]) for node in (first, other)}
    if finish[other] * CLEARLY_SOONER < finish[first]:
        return other
    roomier = None not in (loads[first].free, loads[other].free) and loads[other].free > loads[first].free
    return other if roomier and finish[first] * CLEARLY_SOONER >= finish[other] else first


def faster_if_late(best: CoreNode, pair: tuple[CoreNode, CoreNode], loads: dict[CoreNode, Load],
                   per_file: dict[CoreNode, float], seconds: float) -> CoreNode:
    """Where a file goes that would go to `best`: there, unless it could not finish there within `seconds` (the time
    its task has); then to the faster of its `pair` (the first, unless the other is CLEARLY_SOONER times faster),
    where its queue has room. A scan that starts late takes least of that Core's time and most often still ends in
    time, where on the Core that would finish it soonest it would push files that can still finish there past their
    deadline."""
    if finish_seconds(loads[best], per_file[best]) <= seconds:
        return best
    first, other = pair
    quick = other if per_file[other] * CLEARLY_SOONER < per_file[first] else first
    return quick if loads[quick].free != 0 else best


def finish_seconds(load: Load, per_file: float) -> float:
    """When a file sent now to a Core with `load` would finish, scanned in `per_file` seconds: the files ahead of
    it that must leave a slot first, shared over the slots, plus its own scan; never (infinite) when its queue has no
    free place."""
    if load.free == 0:
        return math.inf
    waiting = max(0.0, load.queue + 1 - load.slots)
    return per_file * (1 + waiting / load.slots)
