"""A model of `python -m bench overload` in simulated time: what the 3x targets need that the service cannot know.

The benchmark's shape (its sets of Cores, each scanning first come first served in its slots, FILES files queued
at once, the scenario's instances, Assemblyline's 3 attempts of one deadline each), as discrete events, so that RUNS
bursts of each policy take seconds. The emulator scans each file in exactly its Core's scan time; here scan times
vary by +- JITTER, standing in for the timing noise of the real benchmark's processes, so that bursts differ. It
models the service's policy, not its code; the choice among several Cores is the service's own (`sooner_of`), each
file's candidates ranked at random as its SHA-256 ranks them, from queues read at the start of its attempt.
Policies:

- service: what mdservice/scan.py does, on a Core whose hash look-up hides unfinished scans: a retry finds an
  earlier attempt's finished scan (held to the deadline while files wait), else uploads again and, while its copy
  waits (at the polls of a queued file), takes over the earlier copy once finished; at the deadline a file still
  queued is canceled and one being scanned is left for the retry.
- no late start: the service, also canceling a file still queued when less than a scan's time is left (no scan
  starts that its own attempt cannot read); the attempt then waits out its deadline, as attempts are held under
  overload.
- knows last attempt: the service, told which attempt is a file's last (Assemblyline's dispatcher counts attempts
  but does not put the count in the task), canceling on that attempt a scan still running at the deadline.
- least busy when late (several Cores): the service, but a file that no candidate can finish within its attempt's
  time goes where it would finish soonest, not to the faster of its pair.

Figures as the benchmark defines them; `misses` counts the runs that miss at least one of the scenario's targets.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import statistics
import sys
from collections import deque
from dataclasses import dataclass

from bench.overload import ATTEMPTS, CORE_SETS, FILES, SCENARIOS, CoreSpec, deadline_seconds, instances_for
from mdservice.nodes import Load, faster_if_late, finish_seconds, sooner_of
from mdservice.timing import (
    HOLD_MARGIN,
    LAST_POLL_FLOOR,
    LEAVE_SHARE,
    LEAVE_TIME,
    POLL_FLOOR,
    QUEUED_CHECK,
    QUEUED_FACTOR,
    STILL_POLL,
)

RUNS = 100
JITTER = 0.1


@dataclass
class Attempt:
    file: int
    number: int
    deadline: float
    scan: Scan | None = None
    over: bool = False
    next_check: float = QUEUED_CHECK


@dataclass
class Scan:
    file: int
    core: int
    attempt: Attempt  # the attempt that uploaded it and polls it
    start: float | None = None
    end: float | None = None
    canceled_at: float | None = None
    fetched: bool = False


class Burst:
    """One burst on `cores` under `policy` (a name of POLICIES) with `instances` instances, each upload reaching its
    Core `age` s after the queue readings it was chosen by; `run()` returns its figures."""

    def __init__(self, cores: tuple[CoreSpec, ...], policy: str, instances: int, seed: int, age: float = 0.0) -> None:
        self.cores, self.policy, self.instances, self.rng = cores, policy, instances, random.Random(seed)
        self.age = age
        self.now, self.events, self.order = 0.0, [], itertools.count()
        self.queues: list[deque[Scan]] = [deque() for _ in cores]
        self.running: list[list[Scan]] = [[] for _ in cores]
        # Each file's candidates, best first, as a hash of the file and each Core would rank them.
        ranking = random.Random(f"{seed} ranks")
        self.ranks = [ranking.sample(range(len(cores)), len(cores)) for _ in range(FILES)]
        self.scans: list[Scan] = []
        self.tasks = deque((file, 1) for file in range(FILES))
        self.verdicts = self.lost = 0
        self.ended = 0.0  # when the last final attempt ended: the end of the run
        self.deadline = deadline_seconds()
        # Before the deadline, the polls of the last Core end: its cancel reserve and a nearby Core's last poll.
        self.polls_end = min(LEAVE_TIME, LEAVE_SHARE * self.deadline) + LAST_POLL_FLOOR

    def at(self, when: float, action, *args) -> None:
        heapq.heappush(self.events, (when, next(self.order), action, args))

    def run(self) -> tuple[float, float, float]:
        for _ in range(self.instances):
            self.at(0.0, self.next_task)
        while self.events:
            self.now, _, action, args = heapq.heappop(self.events)
            action(*args)
        wasted = sum(self.scan_time(scan) for scan in self.scans if scan.start is not None and not scan.fetched)
        capacity, slots = sum(core.capacity for core in self.cores), sum(core.slots for core in self.cores)
        return self.verdicts / self.ended / capacity, wasted / (self.ended * slots), self.lost / FILES

    def scan_time(self, scan: Scan) -> float:
        """Slot time a scan took: to its end, its cancel, or (still running after the run) a whole scan."""
        stop = scan.end if scan.end is not None else scan.canceled_at
        return stop - scan.start if stop is not None else self.cores[scan.core].seconds

    # Cores
    def upload(self, attempt: Attempt, core: int) -> Scan:
        scan = Scan(attempt.file, core, attempt)
        self.scans.append(scan)
        self.queues[core].append(scan)
        self.start_scans(core)
        return scan

    def start_scans(self, core: int) -> None:
        spec, queue, running = self.cores[core], self.queues[core], self.running[core]
        while len(running) < spec.slots and queue:
            scan = queue.popleft()
            scan.start = self.now
            running.append(scan)
            self.at(self.now + spec.seconds * self.rng.uniform(1 - JITTER, 1 + JITTER), self.finish, scan)

    def finish(self, scan: Scan) -> None:
        if scan.canceled_at is not None:
            return
        self.running[scan.core].remove(scan)
        scan.end = self.now
        self.start_scans(scan.core)
        if not scan.attempt.over:
            self.succeed(scan.attempt, scan, held=False)

    def cancel(self, scan: Scan) -> None:
        scan.canceled_at = self.now
        (self.queues[scan.core] if scan.start is None else self.running[scan.core]).remove(scan)
        self.start_scans(scan.core)

    def finished_scan(self, file: int) -> Scan | None:
        """What the hash look-up answers: the newest finished scan of the file that was not canceled."""
        found = [scan for scan in self.scans if scan.file == file and scan.end is not None]
        return found[-1] if found else None

    # Assemblyline and the service
    def next_task(self) -> None:
        if self.tasks:
            file, number = self.tasks.popleft()
            self.begin(Attempt(file, number, self.now + self.deadline))

    def begin(self, attempt: Attempt) -> None:
        earlier = self.finished_scan(attempt.file)
        if earlier is not None:
            return self.succeed(attempt, earlier, held=True)
        self.at(self.now + self.age, self.land, attempt, self.choose(attempt.file))

    def land(self, attempt: Attempt, core: int) -> None:
        """The upload reaches `core`, chosen by its queue as it was `age` s ago."""
        attempt.scan = self.upload(attempt, core)
        self.at(self.now + POLL_FLOOR, self.poll_queued, attempt, self.now)
        self.at(attempt.deadline - self.polls_end, self.give_up, attempt)
        if self.policy == "no late start":
            self.at(attempt.deadline - self.polls_end - self.cores[core].seconds, self.drop_late_start, attempt)

    def choose(self, file: int) -> int:
        """The service's choice (NodePool.choose) by the queues as they are: the sooner of the file's pair, or its
        spare when the file would wait for a slot there and finish sooner on the spare; the faster of the pair when
        even there it could not finish within the attempt's time (unless the policy is `least busy when late`)."""
        if len(self.cores) == 1:
            return 0
        first, other, *spares = self.ranks[file]
        loads = {core: Load(len(self.queues[core]) + len(self.running[core]), self.cores[core].slots)
                 for core in self.ranks[file]}
        per_file = {core: self.cores[core].seconds for core in self.ranks[file]}
        best = sooner_of(first, other, loads, per_file)
        if spares and finish_seconds(loads[best], per_file[best]) > per_file[best]:
            best = sooner_of(best, spares[0], loads, per_file)
        if self.policy == "least busy when late":
            return best
        return faster_if_late(best, (first, other), loads, per_file, self.deadline)

    def poll_queued(self, attempt: Attempt, uploaded: float) -> None:
        """A poll of our file while it waits (PollSchedule's cadence), looking for an earlier finished copy every
        QUEUED_CHECK s of waiting; a scan that started is seen at its end (`finish`)."""
        scan = attempt.scan
        if attempt.over or scan.start is not None or scan.canceled_at is not None:
            return
        waited = self.now - uploaded
        if waited >= attempt.next_check:
            attempt.next_check = waited + QUEUED_CHECK
            earlier = self.finished_scan(attempt.file)
            if earlier is not None:
                self.cancel(scan)
                return self.succeed(attempt, earlier, held=True)
        delay = min(max(POLL_FLOOR, QUEUED_FACTOR * waited), STILL_POLL)
        self.at(self.now + delay, self.poll_queued, attempt, uploaded)

    def drop_late_start(self, attempt: Attempt) -> None:
        if not attempt.over and attempt.scan.start is None:
            self.cancel(attempt.scan)

    def give_up(self, attempt: Attempt) -> None:
        if attempt.over:
            return
        scan, last = attempt.scan, attempt.number == ATTEMPTS
        if scan.canceled_at is None and (scan.start is None or (last and self.policy == "knows last attempt")):
            self.cancel(scan)
        self.end(attempt, verdict=False, when=self.now)

    def succeed(self, attempt: Attempt, scan: Scan, held: bool) -> None:
        scan.fetched = True
        when = max(self.now, attempt.deadline - HOLD_MARGIN) if held and self.queues[scan.core] else self.now
        self.end(attempt, verdict=True, when=when)

    def end(self, attempt: Attempt, verdict: bool, when: float) -> None:
        attempt.over = True
        if verdict or attempt.number == ATTEMPTS:
            self.verdicts, self.lost = self.verdicts + verdict, self.lost + (not verdict)
            self.ended = max(self.ended, when)
        else:
            self.tasks.append((attempt.file, attempt.number + 1))
        self.at(when, self.next_task)


POLICIES = {"one": ("service", "no late start", "knows last attempt"),
            "three": ("service", "least busy when late", "knows last attempt")}


def main(argv: list[str] | None = None) -> bool:
    """Print the model's table; True (it measures the policies, it has no target of its own)."""
    parser = argparse.ArgumentParser(prog="python -m bench.overload_model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=RUNS, help=f"bursts per policy and scenario (default {RUNS})")
    parser.add_argument("--age", type=float, default=0.0,
                        help="seconds from the queue readings a choice goes by to the upload's arrival (default 0)")
    args = parser.parse_args(argv)
    runs_each = args.runs
    print(f"Overload model: {runs_each} bursts per row, queue readings {args.age:g} s old at the upload; mean "
          "figures, and runs missing a target of bench overload")
    print(f"  {'cores':<6} {'policy':<20} {'scenario':<9} {'goodput':>8} {'wasted':>8} {'lost':>8} {'misses':>8}")
    for set_name, policies in POLICIES.items():
        cores = CORE_SETS[set_name]
        capacity = sum(core.capacity for core in cores)
        for policy in policies:
            for name in ("2x", "3x"):
                scenario = SCENARIOS[name]
                instances = instances_for(scenario.overload, capacity, deadline_seconds())
                runs = [Burst(cores, policy, instances, seed, args.age).run() for seed in range(runs_each)]
                misses = sum(goodput < scenario.goodput or wasted > scenario.wasted or lost > scenario.lost
                             for goodput, wasted, lost in runs)
                goodput, wasted, lost = (statistics.mean(figures) for figures in zip(*runs, strict=True))
                print(f"  {set_name:<6} {policy:<20} {name:<9} {goodput:>8.2f} {wasted:>8.1%} {lost:>8.1%} "
                      f"{misses:>5}/{runs_each}")
    return True


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
