"""Overload: files come faster than the Cores can scan them, under Assemblyline's retry rule.

A set of emulated Cores, each scanning its own number of files at once (slots) in its own scan time: one Core
of 2 slots x 2 s (capacity 1 file/s), or three Cores of 1 slot x 2 s, 1 x 3 s and 1 x 3 s (1.17 files/s). N service
instances (processes) with a service timeout of TIMEOUT s (a task's deadline: that less the service's margin, 7 s)
work through a burst of FILES files of unique content queued at once. An attempt fails when the task wrote a
recoverable error, or lasted longer than the service timeout (Assemblyline would have killed it, whatever it wrote);
a failed file goes to the back of the queue, and after ATTEMPTS failed attempts it is lost. A NonRecoverableError
ends the file too (counted apart).

Scenarios by overload = instances / (capacity x deadline): fits (0.5), 2x, 3x; and outage: the load of fits while
one Core (the second) refuses connections for OUTAGE_SECONDS from OUTAGE_AFTER s after its first upload, then comes
back with its scans as they are (see the emulator's --outage).
Figures, run = burst start until every file has a verdict or is lost:
- goodput: files with a verdict per second of the run / capacity (in the outage: / the capacity of the Cores while
  they were up);
- Core time wasted: scan time (the report's processing_time) of scans canceled, or never fetched finished
  by the service, / slot time (run x slots). Seen from outside, through Core's API: a response hook records
  every scan the service uploaded, canceled and fetched finished; after the run every uploaded scan's
  report is read once Core has finished or dropped it. Judged as well, against the same target: the slot
  time Core's stat/nodes `load` (sampled) shows busy during the run, less the fetched scans' time. The two
  agree on a Core whose canceled scans free their slot at once; only the sampled one sees a slot that a
  canceled scan keeps holding (no report shows that time). Shown apart: the part of it spent on scans that a file's
  last attempt uploaded or followed and left running, never fetched (the service cannot tell a last attempt, see
  `python -m bench overload-model`);
- verdicts lost / files, beside the floor of a naive service that uploads each attempt afresh and cancels at
  its deadline: each attempt succeeds with p = min(1, capacity x deadline / instances), so (1 - p)^3 is lost;
- uploads per Core: a Core that scans faster, or has more slots, should get more files.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from bench.common import (
    EmulatorProcess,
    Row,
    make_task,
    print_table,
    stage_file,
    started_service,
    tasking_dir,
    write_files,
)

FILES = 120
TIMEOUT = 8
ATTEMPTS = 3
CANCELED = 19  # scan_all_result_i of a canceled scan
STARTUP_SECONDS = 300  # 21 instances importing Assemblyline on 2 CPUs
SETTLE_SECONDS = 30  # how long, after the run, Core may take to finish the scans still unfinished
POLL_INTERVAL = 0.25
SAMPLE_INTERVAL = 0.1  # stat/nodes reads of the load sampler
VERDICT, FAILED, NONRECOVERABLE = "verdict", "failed", "nonrecoverable"
OUTAGE_AFTER = 20.0
OUTAGE_SECONDS = 30.0


@dataclass(frozen=True)
class CoreSpec:
    """One emulated Core: files it scans at once, and seconds per file."""

    slots: int
    seconds: float

    @property
    def capacity(self) -> float:
        return self.slots / self.seconds


CORE_SETS = {"one": (CoreSpec(2, 2.0),), "three": (CoreSpec(1, 2.0), CoreSpec(1, 3.0), CoreSpec(1, 3.0))}


@dataclass(frozen=True)
class Scenario:
    """An overload factor and the targets the service must meet under it."""

    overload: float
    goodput: float
    wasted: float
    lost: float


SCENARIOS = {"fits": Scenario(0.5, 0.95, 0.02, 0.0), "2x": Scenario(2.0, 0.9, 0.05, 0.10),
             "3x": Scenario(3.0, 0.8, 0.15, 0.35), "outage": Scenario(0.5, 0.9, 0.02, 0.0)}


def deadline_seconds() -> float:
    """A task's scan deadline under TIMEOUT, as metadefender.py derives it (the timeout less its margin)."""
    from mdservice.timing import DEADLINE_MARGIN, MIN_DEADLINE_MARGIN

    return TIMEOUT - max(MIN_DEADLINE_MARGIN, DEADLINE_MARGIN * TIMEOUT)


def instances_for(overload: float, capacity: float, deadline: float) -> int:
    """The fewest instances that load Cores of `capacity` `overload` times what they can scan within `deadline`."""
    return math.ceil(overload * capacity * deadline - 1e-9)


def is_complete(report: dict) -> bool:
    """Core is done with the job: process_info's progress is 100 (scan_results' where there is no process_info)."""
    info = report.get("process_info") if "process_info" in report else report.get("scan_results")
    return isinstance(info, dict) and info.get("progress_percentage") == 100


class _ReadAlong:
    """A response's raw body that hands the whole body to `on_body` once its reader has streamed it all.

    The service streams every answer itself (within its deadline), so a hook must not read the body first.
    """

    def __init__(self, raw, on_body) -> None:
        self._raw, self._on_body = raw, on_body

    def stream(self, *args, **kwargs):
        chunks = []
        for chunk in self._raw.stream(*args, **kwargs):
            chunks.append(chunk)
            yield chunk
        try:
            document = json.loads(b"".join(chunks))
        except ValueError:
            return
        if isinstance(document, dict):
            self._on_body(document)

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


@dataclass
class CoreLog:
    """What one instance did on the Cores, read from its HTTP answers: scans uploaded (each with its Core's base
    URL), canceled and fetched finished, and the scans a file's last attempt (number ATTEMPTS) uploaded or polled;
    `attempt`: the number of the attempt the instance works on."""

    uploads: list[tuple[str, str]] = field(default_factory=list)
    cancels: set[str] = field(default_factory=set)
    fetched: set[str] = field(default_factory=set)
    last_attempt: set[str] = field(default_factory=set)
    attempt: int = 0

    def attach(self, service) -> None:
        for node in service.pool.nodes:
            node.client.session.hooks["response"].append(self.hook)

    def hook(self, response, *args, **kwargs) -> None:
        """Record an accepted upload (POST file), cancel (POST file/ID/cancel) or report (GET file/ID, hash/HASH)."""
        if response.status_code != 200:
            return
        method, parts = response.request.method, response.request.path_url.split("?")[0].strip("/").split("/")
        if method == "POST" and parts[-1] == "file":
            base = response.request.url.split("?")[0].removesuffix("file")
            response.raw = _ReadAlong(response.raw, lambda answer: self._uploaded(base, answer))
        elif method == "POST" and parts[-1] == "cancel" and len(parts) >= 3:
            self.cancels.add(parts[-2])
        elif method == "GET" and len(parts) >= 2 and parts[-2] in ("file", "hash"):
            response.raw = _ReadAlong(response.raw, self._read)

    def _uploaded(self, base: str, answer: dict) -> None:
        if isinstance(answer.get("data_id"), str):
            self.uploads.append((base, answer["data_id"]))
            self._touched(answer["data_id"])

    def _read(self, report: dict) -> None:
        if isinstance(report.get("data_id"), str):
            self._touched(report["data_id"])
            if is_complete(report):
                self.fetched.add(report["data_id"])

    def _touched(self, data_id: str) -> None:
        if self.attempt == ATTEMPTS:
            self.last_attempt.add(data_id)


@dataclass(frozen=True)
class Attempt:
    """One handle_task of a file: its outcome and when it began and ended (perf_counter, system-wide on Linux)."""

    path: str
    number: int
    outcome: str
    started: float
    ended: float

    @property
    def final(self) -> bool:
        """No attempt follows: a verdict, a NonRecoverableError or the last failed attempt (the file is lost)."""
        return self.outcome != FAILED or self.number == ATTEMPTS


def outcome_of(workdir: str, task, seconds: float) -> str:
    """FAILED past the service timeout or on a recoverable error, else what the framework wrote for the task."""
    stem = os.path.join(workdir, f"{task.sid}_{task.fileinfo.sha256}")
    if seconds > TIMEOUT:
        return FAILED
    if os.path.exists(f"{stem}_error.json"):
        with open(f"{stem}_error.json") as handle:
            status = json.load(handle).get("response", {}).get("status")
        return NONRECOVERABLE if status == "FAIL_NONRECOVERABLE" else FAILED
    return VERDICT if os.path.exists(f"{stem}_result.json") else FAILED


def attempt_task(service, path: str, number: int, workdir: str) -> Attempt:
    """Attempt `number` at `path`: a fresh task (its own sid, so its own output files) through handle_task."""
    task = make_task(path)
    stage_file(path, task, workdir)
    started = time.perf_counter()
    service.handle_task(task)
    ended = time.perf_counter()
    return Attempt(path, number, outcome_of(workdir, task, ended - started), started, ended)


def worker(urls: list[str], files, events, logs, ready) -> None:
    """One instance: attempt (path, number) items from `files` until None, putting a failed file back at the
    end of `files` while it has attempts left; each Attempt goes to `events`, the CoreLog to `logs` at the end."""
    workdir = tasking_dir()
    service = started_service({"base_url": urls}, timeout=TIMEOUT)
    logging.disable(logging.WARNING)  # every scan given up on is a warning: hundreds per run
    log = CoreLog()
    log.attach(service)
    ready.wait()
    while (item := files.get()) is not None:
        log.attempt = item[1]
        attempt = attempt_task(service, *item, workdir)
        if not attempt.final:
            files.put((attempt.path, attempt.number + 1))
        events.put(attempt)
    logs.put(log)
    service.stop()


class LoadSampler:
    """Reads each Core's stat/nodes `load` (share of slots busy) every SAMPLE_INTERVAL s while in its `with` block.

    Busy slots include any a canceled scan still holds: what no report shows. A Core that does not answer (an
    outage) adds nothing for that interval.
    """

    def __init__(self, urls: list[str], cores: tuple[CoreSpec, ...]) -> None:
        self.cores = [(f"{url.rstrip('/')}/stat/nodes", core.slots) for url, core in zip(urls, cores, strict=True)]
        self.busy_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        with requests.Session() as session:
            last = time.perf_counter()
            while not self._stop.wait(SAMPLE_INTERVAL):
                busy = sum(self._load(session, url) / 100 * slots for url, slots in self.cores)
                now = time.perf_counter()
                self.busy_seconds += busy * (now - last)
                last = now

    @staticmethod
    def _load(session: requests.Session, url: str) -> float:
        try:
            return session.get(url, timeout=5).json()[0]["statuses"][0]["load"]
        except requests.RequestException:
            return 0.0

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Burst:
    """What a burst measured: the run's length, every attempt, every instance's CoreLog, and the slot-seconds
    Core was busy during the run (sampled)."""

    seconds: float
    attempts: list[Attempt]
    logs: list[CoreLog]
    busy_seconds: float

    def outcomes(self) -> Counter:
        """Files by how they ended: VERDICT, NONRECOVERABLE, or FAILED (lost)."""
        return Counter(attempt.outcome for attempt in self.attempts if attempt.final)


def collect(events, files: int) -> list[Attempt]:
    """Every attempt, until each of `files` files has had its final one."""
    attempts: list[Attempt] = []
    while sum(attempt.final for attempt in attempts) < files:
        attempts.append(events.get(timeout=20 * TIMEOUT))
    return attempts


def run_burst(urls: list[str], cores: tuple[CoreSpec, ...], instances: int, files: int, workdir: str) -> Burst:
    """`files` files queued at once for `instances` service processes, all started before the clock starts."""
    context = multiprocessing.get_context("spawn")
    queue, events, logs = context.Queue(), context.Queue(), context.Queue()
    ready = context.Barrier(instances + 1)
    workers = [context.Process(target=worker, args=(urls, queue, events, logs, ready)) for _ in range(instances)]
    for process in workers:
        process.start()
    for path in write_files(workdir, files, "overload"):
        queue.put((path, 1))
    ready.wait(timeout=STARTUP_SECONDS)
    started = time.perf_counter()
    with LoadSampler(urls, cores) as load:
        attempts = collect(events, files)
    for _ in workers:
        queue.put(None)
    core_logs = [logs.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=30)
    return Burst(max(a.ended for a in attempts if a.final) - started, attempts, core_logs, load.busy_seconds)


def settled_reports(scans: list[tuple[str, str]]) -> tuple[dict[tuple[str, str], dict | None], int]:
    """Each scan's report, by (Core's base URL, data id), once Core finished or dropped it (None: Core no longer
    knows it), and how many were still unfinished after SETTLE_SECONDS (their last report is kept)."""
    reports: dict[tuple[str, str], dict | None] = {}
    pending, give_up = list(scans), time.monotonic() + SETTLE_SECONDS
    with requests.Session() as session:
        while pending:
            for base, data_id in pending:
                answer = session.get(f"{base}file/{data_id}", timeout=10)
                reports[base, data_id] = answer.json() if answer.status_code == 200 else None
            pending = [d for d in pending if reports[d] is not None and not is_complete(reports[d])]
            if pending and time.monotonic() < give_up:
                time.sleep(POLL_INTERVAL)
            else:
                break
    return reports, len(pending)


@dataclass(frozen=True)
class CoreUse:
    """Core's side of a burst: scan seconds wasted and of scans fetched finished (useful), uploads, cancels, and
    scans unfinished when the reports were read; uploads per Core, in the order of `urls`. `last_wasted`: of the
    wasted seconds, those of scans a file's last attempt uploaded or followed and left running (the service cannot
    tell a last attempt from the others)."""

    wasted: float
    useful: float
    uploads: int
    cancels: int
    unfinished: int
    per_core: tuple[int, ...]
    last_wasted: float


def core_use(urls: list[str], logs: list[CoreLog]) -> CoreUse:
    """Scan time of the uploaded scans: wasted if canceled or never fetched finished by the service, else useful."""
    uploads = [scan for log in logs for scan in log.uploads]
    fetched = set().union(*(log.fetched for log in logs))
    last_attempt = set().union(*(log.last_attempt for log in logs))
    reports, unfinished = settled_reports(uploads)
    spent = {True: 0.0, False: 0.0}
    last_wasted = 0.0
    for (_, data_id), report in reports.items():
        report = report or {}
        canceled = (report.get("scan_results") or {}).get("scan_all_result_i") == CANCELED
        seconds = ((report.get("process_info") or {}).get("processing_time") or 0) / 1000
        wasted = canceled or data_id not in fetched
        spent[wasted] += seconds
        if wasted and not canceled and data_id in last_attempt:
            last_wasted += seconds
    per_core = Counter(base for base, _ in uploads)
    return CoreUse(spent[True], spent[False], len(uploads), sum(len(log.cancels) for log in logs), unfinished,
                   tuple(per_core[url] for url in urls), last_wasted)


@dataclass(frozen=True)
class Setup:
    """A scenario's Cores, and the second Core's outage in it (None: every Core stays up)."""

    name: str
    cores: tuple[CoreSpec, ...]
    scenario: Scenario
    outage: bool

    @property
    def capacity(self) -> float:
        return sum(core.capacity for core in self.cores)

    @property
    def slots(self) -> int:
        return sum(core.slots for core in self.cores)

    def capacity_up(self, seconds: float) -> float:
        """Files per second the Cores could scan on average over a run of `seconds`, while they were up."""
        if not self.outage:
            return self.capacity
        down = min(OUTAGE_SECONDS, max(0.0, seconds - OUTAGE_AFTER))
        return self.capacity - self.cores[1].capacity * down / seconds

    def emulator_args(self, hash_unfinished: bool) -> list[str]:
        args = []
        for index, core in enumerate(self.cores):
            args += ["--node-concurrency", f"{index}:{core.slots}", "--node-scan-seconds", f"{index}:{core.seconds}"]
        if self.outage:
            args += ["--outage", f"1:{OUTAGE_AFTER:g}:{OUTAGE_SECONDS:g}"]
        return args + (["--hash-unfinished"] if hash_unfinished else [])

    def describe(self) -> str:
        cores = ", ".join(f"{core.slots} x {core.seconds:g} s" for core in self.cores)
        outage = f"; Core 2 down {OUTAGE_SECONDS:g} s from {OUTAGE_AFTER:g} s" if self.outage else ""
        return f"{len(self.cores)} Core(s) of {cores} (capacity {self.capacity:.2f}/s){outage}"


def scenario_rows(setup: Setup, instances: int, files: int, burst: Burst, core: CoreUse) -> list[Row]:
    """The scenario's figures against its targets, the naive floor beside the verdicts lost."""
    name, scenario = setup.name, setup.scenario
    outcomes, deadline = burst.outcomes(), deadline_seconds()
    capacity, slot_time = setup.capacity_up(burst.seconds), burst.seconds * setup.slots
    goodput = outcomes[VERDICT] / burst.seconds / capacity
    wasted = core.wasted / slot_time
    sampled_waste = max(0.0, burst.busy_seconds - core.useful) / slot_time
    lost = outcomes[FAILED] / files
    naive_lost = (1 - min(1.0, setup.capacity * deadline / instances)) ** ATTEMPTS
    times = [attempt.ended - attempt.started for attempt in burst.attempts]
    unfinished = f", {core.unfinished} scans unfinished {SETTLE_SECONDS} s after" if core.unfinished else ""
    return [
        Row(f"{name}: goodput ({outcomes[VERDICT]}/{files} verdicts in {burst.seconds:.0f} s)", f"{goodput:.2f}",
            f">= {scenario.goodput:.2f}", goodput >= scenario.goodput, "-"),
        Row(f"{name}: Core time wasted, reports ({core.wasted:.0f} s of {slot_time:.0f}{unfinished})",
            f"{wasted:.1%}", f"<= {scenario.wasted:.0%}", wasted <= scenario.wasted, "-"),
        Row(f"{name}: Core time wasted, sampled (slots busy, not on a fetched scan)", f"{sampled_waste:.1%}",
            f"<= {scenario.wasted:.0%}", sampled_waste <= scenario.wasted, "-"),
        Row(f"{name}: of the waste (reports), scans a file's last attempt left running",
            f"{core.last_wasted / slot_time:.1%}", "(reported)", True, "-"),
        Row(f"{name}: verdicts lost after {ATTEMPTS} attempts ({outcomes[FAILED]})", f"{lost:.1%}",
            f"<= {scenario.lost:.0%}", lost <= scenario.lost, f"{naive_lost:.1%}"),
        Row(f"{name}: files ended by a NonRecoverableError", str(outcomes[NONRECOVERABLE]), "0",
            not outcomes[NONRECOVERABLE]),
        Row(f"{name}: task time median / max ({len(times)} attempts, {core.uploads} uploads, {core.cancels} "
            f"cancels)", f"{statistics.median(times):.1f} / {max(times):.1f} s", "(reported)", True),
        Row(f"{name}: uploads per Core", " / ".join(map(str, core.per_core)), "(reported)", True),
    ]


def run_scenario(setup: Setup, files: int, hash_unfinished: bool) -> bool:
    """One scenario on fresh Cores; prints its table, True when every target is met."""
    deadline = deadline_seconds()
    instances = instances_for(setup.scenario.overload, setup.capacity, deadline)
    workdir = tasking_dir()
    with EmulatorProcess(*setup.emulator_args(hash_unfinished), nodes=len(setup.cores)) as emulator:
        burst = run_burst(emulator.urls, setup.cores, instances, files, workdir)
        core = core_use(emulator.urls, burst.logs)
    overload = instances / setup.capacity / deadline
    return print_table(f"Overload {setup.name}: {instances} instances, overload {overload:.2f}, {files} files at "
                       f"once, {setup.describe()}, deadline {deadline:g} s",
                       scenario_rows(setup, instances, files, burst, core))


def setups(core_sets: list[str], scenarios: list[str]) -> list[Setup]:
    """Each named scenario on each named set of Cores; the outage only where there is a second Core."""
    return [Setup(f"{cores} {name}", CORE_SETS[cores], SCENARIOS[name], name == "outage")
            for cores in core_sets for name in scenarios if name != "outage" or len(CORE_SETS[cores]) > 1]


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=FILES, help=f"files in the burst (default {FILES})")
    parser.add_argument("--cores", nargs="+", action="extend", choices=list(CORE_SETS),
                        help="sets of Cores (default: all)")
    parser.add_argument("--scenario", nargs="+", action="extend", choices=list(SCENARIOS),
                        help="scenarios to run on each set (default: all)")
    parser.add_argument("--hash-unfinished", action="store_true",
                        help="start the emulator with --hash-unfinished (GET /hash also answers unfinished scans)")
    args = parser.parse_args(argv)
    chosen = setups(args.cores or list(CORE_SETS), args.scenario or list(SCENARIOS))
    results = [run_scenario(setup, args.files, args.hash_unfinished) for setup in chosen]
    return all(results)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
