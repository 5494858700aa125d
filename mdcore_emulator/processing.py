"""The scan model of one Core: uploads, a FIFO queue with `concurrency` slots, and reports.

Nothing runs in the background. A job's start is planned when it is admitted (start =
max(upload time, earliest free slot)) and planned again for every waiting job when a
cancel frees a queue position or a slot; every report is computed from the job and the
current monotonic time `now`, so the functions here are pure apart from `Clock` and
`Scheduler`.
"""

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .engines import Engine, def_time_text, iso_ms
from .verdicts import (
    ARCHIVE,
    CDR,
    CDR_FAIL,
    OUTDATED,
    RESULT_TEXT,
    VULNERABLE,
    Markers,
    MarkerScanner,
    Verdict,
    engine_results,
    overall_code,
)

KEEP_LIMIT = 10 * 1024 * 1024  # files under this size get their own sanitized bytes back
LARGE_SANITIZED = b"Sanitized by the MetaDefender Core emulator (the original was 10 MiB or larger).\n"
POST_PROCESSING_SHARE = 0.2  # Deep CDR takes this share of the scan time after the AV scan
STUCK_FRACTION = 0.99  # how far a never-completing scan gets
BLOCKING_CODES = frozenset({1, 2, 4, 22})
DEFAULT_RULE = "File scan"
ENGINE_FAILURE = "scan engine failed: timeout"  # a failed engine's threat_found on Core 5
# The product a MDEMU:VULNERABLE file is recognised as, with OpenAPI's example CVEs.
VULNERABLE_CVES = ("CVE-2015-8459", "CVE-2015-8460", "CVE-2015-8636", "CVE-2015-8645")


class Clock:
    """Monotonic time (`now()`) plus the wall-clock moment of any monotonic instant; `wall_start` (an aware datetime,
    default: now) is the wall-clock moment of the clock's creation."""

    def __init__(self, monotonic=time.monotonic, wall_start: datetime | None = None) -> None:
        self.now = monotonic
        self._origin = monotonic()
        self._wall_origin = wall_start or datetime.now(UTC)

    def wall(self, instant: float) -> datetime:
        """The UTC datetime of monotonic `instant`."""
        return self._wall_origin + timedelta(seconds=instant - self._origin)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


# ----------------------------------------------------------------------------- uploads

_TYPES = (
    (b"%PDF", "application/pdf", "Adobe Portable Document Format", "pdf"),
    (b"PK\x03\x04", "application/zip", "ZIP Archive", "zip"),
    (b"MZ", "application/x-dosexec", "Windows Executable", "exe"),
    (b"\x7fELF", "application/x-executable", "ELF Executable", "elf"),
)


_TEXT_BYTES = bytes(range(32, 127)) + b"\t\n\r"


def file_type(head: bytes) -> tuple[str, str, str]:
    """(mime type, description, extension) guessed from the first bytes of a file."""
    for magic, mime, description, extension in _TYPES:
        if head.startswith(magic):
            return mime, description, extension
    if head.translate(None, _TEXT_BYTES):  # something is left that is not printable ASCII
        return "application/octet-stream", "Binary Data", "bin"
    return "text/plain", "ASCII Text", "txt"


@dataclass(frozen=True)
class FileFacts:
    """What Core reports in file_info, plus the extension used for a sanitized name."""

    display_name: str
    size: int
    md5: str
    sha1: str
    sha256: str
    mime: str
    description: str
    extension: str
    uploaded_at: datetime


class UploadDigest:
    """Consumes an upload chunk by chunk: hashes, markers, file type, and the content while
    it is under KEEP_LIMIT (for the sanitized copy). Memory stays below ~KEEP_LIMIT."""

    def __init__(self) -> None:
        self._hashes = (hashlib.md5(), hashlib.sha1(), hashlib.sha256())
        self._scanner = MarkerScanner()
        self._kept: bytearray | None = bytearray()
        self._head = b""
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        for digest in self._hashes:
            digest.update(chunk)
        self._scanner.feed(chunk)
        if len(self._head) < 512:
            self._head += chunk[: 512 - len(self._head)]
        self.size += len(chunk)
        if self._kept is not None and self.size < KEEP_LIMIT:
            self._kept += chunk
        else:
            self._kept = None

    def facts(self, display_name: str, uploaded_at: datetime) -> FileFacts:
        """The file_info facts of the complete upload."""
        mime, description, extension = file_type(self._head)
        md5, sha1, sha256 = (digest.hexdigest() for digest in self._hashes)
        return FileFacts(display_name, self.size, md5, sha1, sha256, mime, description, extension, uploaded_at)

    def markers(self) -> Markers:
        return self._scanner.finish()

    def sanitized(self) -> bytes:
        """The sanitized file: the content without the CDR marker text, or a fixed text for large files."""
        return bytes(self._kept).replace(CDR.encode(), b"") if self._kept is not None else LARGE_SANITIZED


@dataclass(frozen=True)
class Submission:
    """The upload's request headers, decoded: display name, rule (workflow) and archive passwords (archivepwd, then
    archivepwd1, archivepwd2, ... by number)."""

    display_name: str
    rule: str = DEFAULT_RULE
    archive_passwords: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- jobs and the queue


@dataclass
class Job:
    """One scan. Times are monotonic seconds; `engines` are the scanning AV engines as they
    were at upload, `verdicts` their final results and `overall` the scan_all_result_i.
    `started_at` is planned by the Scheduler and moves earlier when a job ahead is canceled;
    a job canceled while waiting gets its cancel time as start (it never scanned)."""

    data_id: str
    file: FileFacts
    submission: Submission
    markers: Markers
    engines: tuple[Engine, ...]
    verdicts: dict[str, Verdict]
    overall: int
    queued_at: float
    started_at: float
    scan_seconds: float
    post_seconds: float
    stuck: bool = False
    canceled_at: float | None = None
    sanitized: bytes | None = None  # the converted file, for a job that sanitizes

    @property
    def finished_at(self) -> float | None:
        """When the job is (or will be) complete; None when it never completes."""
        if self.canceled_at is not None:
            return self.canceled_at
        return None if self.stuck else self.slot_until

    @property
    def slot_until(self) -> float:
        """When the job leaves its scan slot: canceled, or done (a stuck job too: its report
        stays below 100 % but the slot is free after the scan time)."""
        if self.canceled_at is not None:
            return self.canceled_at
        return self.started_at + self.scan_seconds + self.post_seconds

    def finished(self, now: float) -> bool:
        return self.finished_at is not None and self.finished_at <= now

    @property
    def sanitizes(self) -> bool:
        """True when post-processing produces a sanitized file (MDEMU:CDR without CDR-FAIL)."""
        return CDR in self.markers.names and CDR_FAIL not in self.markers.names


def durations(markers: Markers, default_scan_seconds: float) -> tuple[float, float]:
    """(scan seconds, post-processing seconds) of a file: MDEMU:SCAN= overrides the default;
    Deep CDR (MDEMU:CDR or CDR-FAIL) adds POST_PROCESSING_SHARE of the scan time."""
    scan = default_scan_seconds if markers.scan_seconds is None else markers.scan_seconds
    post = scan * POST_PROCESSING_SHARE if markers.names & {CDR, CDR_FAIL} else 0.0
    return scan, post


def make_job(
    data_id: str,
    digest: UploadDigest,
    submission: Submission,
    engines: tuple[Engine, ...],
    *,
    queued_at: float,
    seconds: tuple[float, float],
    stuck: bool,
    uploaded_at: datetime,
) -> Job:
    """The job of a complete upload, not yet admitted (started_at is its upload time until the
    Scheduler plans it); `seconds` = (scan seconds, post-processing seconds)."""
    markers = digest.markers()
    scanning = tuple(e for e in engines if e.scans)
    verdicts = engine_results(markers, [e.name for e in scanning], submission.archive_passwords)
    scan_seconds, post_seconds = seconds
    job = Job(
        data_id=data_id,
        file=digest.facts(submission.display_name, uploaded_at),
        submission=submission,
        markers=markers,
        engines=scanning,
        verdicts=verdicts,
        overall=1 if ARCHIVE in markers.names else overall_code(v.code for v in verdicts.values()),
        queued_at=queued_at,
        started_at=queued_at,
        scan_seconds=scan_seconds,
        post_seconds=post_seconds,
        stuck=stuck,
    )
    if job.sanitizes:
        job.sanitized = digest.sanitized()
    return job


class Scheduler:
    """FIFO admission to `concurrency` scan slots with at most `queue_limit` jobs waiting.

    Sets each admitted job's `started_at`; cancel() frees the job's queue position or slot
    at once and moves the jobs behind it up. Not thread-safe: the caller locks.
    """

    def __init__(self, concurrency: int, queue_limit: int) -> None:
        self._concurrency = concurrency
        self._queue_limit = queue_limit
        self._free_at = [0.0] * concurrency  # when each slot is free, once every admitted job has run
        self._active: list[Job] = []  # admitted jobs still waiting or in a slot, in admission order

    def waiting(self, now: float) -> int:
        """Jobs admitted but not started at `now`."""
        return sum(1 for job in self._current(now) if job.started_at > now)

    def busy(self, now: float) -> int:
        """Slots occupied at `now`."""
        return sum(1 for job in self._current(now) if job.started_at <= now)

    def admit(self, job: Job, now: float) -> bool:
        """Plan `job` into the earliest free slot (setting its started_at); False (nothing
        planned) when it would have to wait and `queue_limit` jobs already wait."""
        slot = min(range(self._concurrency), key=self._free_at.__getitem__)
        start = max(now, self._free_at[slot])
        if start > now and self.waiting(now) >= self._queue_limit:
            return False
        job.started_at = start
        self._free_at[slot] = job.slot_until
        self._active.append(job)
        return True

    def cancel(self, job: Job, now: float) -> list[Job]:
        """Cancel an unfinished `job` at `now` and plan the waiting jobs again; the jobs whose
        times changed (the canceled one first), or [] when `job` had already finished."""
        if job.finished(now):
            return []
        job.canceled_at = now
        job.started_at = min(job.started_at, now)
        return [job, *self._replan(now)]

    def _current(self, now: float) -> list[Job]:
        """The admitted jobs still waiting or in a slot at `now` (the others are forgotten)."""
        self._active = [job for job in self._active if job.slot_until > now]
        return self._active

    def _replan(self, now: float) -> list[Job]:
        """Give the waiting jobs, in FIFO order, the slots as they free up after `now`; the moved jobs."""
        jobs = self._current(now)
        running = [job.slot_until for job in jobs if job.started_at <= now]
        self._free_at = running + [now] * (self._concurrency - len(running))
        moved = []
        for job in (job for job in jobs if job.started_at > now):
            slot = min(range(self._concurrency), key=self._free_at.__getitem__)
            start = max(now, self._free_at[slot])
            if start != job.started_at:
                job.started_at = start
                moved.append(job)
            self._free_at[slot] = job.slot_until
        return moved


class ScanBook:
    """The jobs of one Core by data id and by hash. Not thread-safe: the caller locks."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._by_hash: dict[str, list[str]] = {}

    def add(self, job: Job) -> None:
        self._jobs[job.data_id] = job
        for digest in (job.file.md5, job.file.sha1, job.file.sha256):
            self._by_hash.setdefault(digest, []).append(job.data_id)

    def get(self, data_id: str) -> Job | None:
        return self._jobs.get(data_id)

    def latest(self, digest: str, now: float, rule: str | None, unfinished: bool) -> Job | None:
        """The newest job for this md5/sha1/sha256 (any case) that was not canceled, made under
        `rule` (None: any rule); a job still queued or scanning counts only when `unfinished`."""
        for data_id in reversed(self._by_hash.get(digest.lower(), [])):
            job = self._jobs[data_id]
            if job.canceled_at is not None or rule not in (None, job.submission.rule):
                continue
            if unfinished or job.finished(now):
                return job
        return None


# ----------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class _State:
    phase: str  # "queued", "scanning", "post" (Deep CDR), "done" or "canceled"
    scan: float  # fraction of the AV scan done, 0..1
    whole: float  # fraction of the whole job (scan + post-processing) done, 0..1


def _fraction(elapsed: float, duration: float) -> float:
    return 1.0 if duration <= 0 else min(1.0, elapsed / duration)


def _state(job: Job, now: float) -> _State:
    """Where `job` stands at `now` (a canceled job stays where it was when canceled)."""
    canceled = job.canceled_at is not None and job.canceled_at <= now
    elapsed = max(0.0, (job.canceled_at if canceled else now) - job.started_at)
    scan = _fraction(elapsed, job.scan_seconds)
    whole = _fraction(elapsed, job.scan_seconds + job.post_seconds)
    if job.stuck:
        scan, whole = min(scan, STUCK_FRACTION), min(whole, STUCK_FRACTION)
    if canceled:
        phase = "canceled"
    elif now < job.started_at:
        phase = "queued"
    else:
        phase = "scanning" if scan < 1 else "post" if whole < 1 else "done"
    return _State(phase, scan, whole)


def build_report(
    job: Job, now: float, md_version: int, clock: Clock, flavour: str, engines: tuple[Engine, ...]
) -> dict:
    """GET /file/{data_id} at monotonic `now`. Queued: no scan_results. v3: no process_info.

    MDEMU:ARCHIVE files also list their members; flavour "4.3" words the report as a Core 4.3
    does, "5" as a Core 5 does (see as_core_5), "current" as Core 4.18 does. `engines` are the
    Core's engines now: when one the job scanned with has newer definitions (or the file has
    MDEMU:OUTDATED), process_info.outdated_data says so.
    """
    state = _state(job, now)
    report = {"data_id": job.data_id, "file_info": _file_info(job.file)}
    if state.phase != "queued":
        report["scan_results"] = _scan_results(job, state, md_version, clock)
        if ARCHIVE in job.markers.names:
            report["extracted_files"] = {"files_in_archive": _archive_members(job, state)}
    if md_version == 4:
        report["process_info"] = _process_info(job, state, now)
        if _outdated(job, engines):
            report["process_info"]["outdated_data"] = ["enginedefinitions"]
    if md_version == 4 and VULNERABLE in job.markers.names and state.phase in ("post", "done"):
        report["vulnerability_info"] = _vulnerability_info(job)
    if flavour == "4.3":
        return as_core_4_3(report)
    return as_core_5(report) if flavour == "5" else report


def _outdated(job: Job, engines: tuple[Engine, ...]) -> bool:
    """True when an engine the job scanned with now has newer definitions, or the file has MDEMU:OUTDATED."""
    newest = {e.name: e.def_time for e in engines if e.def_time is not None}
    return OUTDATED in job.markers.names or any(
        e.def_time is not None and newest.get(e.name, e.def_time) > e.def_time for e in job.engines
    )


def _archive_members(job: Job, state: _State) -> list[dict]:
    """Two members: a clean text file and an executable that every engine flags once the scan is done."""
    done, engines = state.scan >= 1, len(job.engines)
    members = []
    for index, (path, flagged, size) in enumerate((("docs/readme.txt", False, 120), ("bin/dropper.exe", True, 4096))):
        members.append({
            "data_id": f"{job.data_id}-{index}",
            "display_name": path,
            "scan_all_result_i": (1 if flagged else 0) if done else 255,
            "detected_by": engines if flagged and done else 0,
            "scanned_with": engines,
            "progress_percentage": int(100 * state.scan),
            "file_size": size,
        })
    return members


def as_core_4_3(report: dict) -> dict:
    """`report` as a Core 4.3 words it: "Clean" for no threat, no per-engine wait_time, no queue or processing
    time, no outdated_data; while scanning, code 0 with no engines yet, total_avs 0 and total_time -1 (only the
    progress tells)."""
    results = report.get("scan_results")
    if results is not None:
        if results["progress_percentage"] < 100:
            results.update(scan_all_result_i=0, scan_details={}, total_avs=0, total_time=-1)
        if results["scan_all_result_i"] == 0:
            results["scan_all_result_a"] = "Clean"
        for entry in results["scan_details"].values():
            entry.pop("wait_time")
    for key in ("queue_time", "processing_time", "outdated_data"):
        report.get("process_info", {}).pop(key, None)
    return report


def as_core_5(report: dict) -> dict:
    """`report` (v4) as a Core 5 words it: process_info always has outdated_data (maybe []) and
    verdicts (the overall result text once complete, [] while processing); a failed engine
    (code 3) has its engine error ENGINE_FAILURE in threat_found."""
    process, results = report["process_info"], report.get("scan_results")
    process.setdefault("outdated_data", [])
    complete = results is not None and process["progress_percentage"] == 100
    process["verdicts"] = [results["scan_all_result_a"]] if complete else []
    for entry in (results or {}).get("scan_details", {}).values():
        if entry["scan_result_i"] == 3:
            entry["threat_found"] = ENGINE_FAILURE
    return report


def _file_info(facts: FileFacts) -> dict:
    return {
        "display_name": facts.display_name,
        "file_size": facts.size,
        "file_type": facts.mime,
        "file_type_description": facts.description,
        "md5": facts.md5,
        "sha1": facts.sha1,
        "sha256": facts.sha256,
        "upload_timestamp": iso_ms(facts.uploaded_at),
    }


def _scan_results(job: Job, state: _State, md_version: int, clock: Clock) -> dict:
    """scan_results: engines finish in order, engine i at (i + 1) / n of the scan time."""
    if state.phase == "canceled":
        code, progress = 19, 100
    elif state.phase == "scanning":
        code, progress = 255, int(100 * state.scan)
    else:
        code, progress = job.overall, 100
    finished = job.engines[: int(state.scan * len(job.engines) + 1e-9)]
    return {
        "data_id": job.data_id,
        "progress_percentage": progress,
        "scan_all_result_i": code,
        "scan_all_result_a": RESULT_TEXT[code],
        "start_time": iso_ms(clock.wall(job.started_at)),
        "total_avs": len(job.engines),
        "total_time": _ms(state.scan * job.scan_seconds),
        "scan_details": {e.name: _engine_result(job, i, md_version) for i, e in enumerate(finished)},
    }


def _engine_result(job: Job, index: int, md_version: int) -> dict:
    engine = job.engines[index]
    verdict = job.verdicts[engine.name]
    return {
        "scan_result_i": verdict.code,
        "threat_found": verdict.threat,
        "def_time": def_time_text(engine, md_version),
        "scan_time": _ms(job.scan_seconds * (index + 1) / len(job.engines)),
        "wait_time": 1 + index % 4,
    }


def _vulnerability_info(job: Job) -> dict:
    """vulnerability_info as the OpenAPI spec shapes it (including its spelling `vulnerabilites`)."""
    vulnerabilities = [{"description": f"Flash Player memory corruption ({cve})", "severity": "CRITICAL",
                        "severity_index": 5, "static_id": int(cve[4:].replace("-", "")),
                        "details": {"cve": cve, "cwe": "CWE-119", "cvss": {"score": "10.0"}}}
                       for cve in VULNERABLE_CVES]
    return {"result": {
        "code": 0, "hash": job.file.sha1.upper(), "method": 50700, "timing": 48,
        "detected_product": {
            "has_vulnerability": True, "is_current": False, "severity": "critical",
            "product": {"id": 104, "name": "Adobe Flash Player"}, "vendor": {"id": 91, "name": "Adobe Systems Inc."},
            "version": "20.0.0.235", "version_data": {"count_behind": 65, "version": "25.0.0.149"},
            "remediation_link": "http://get.adobe.com/flashplayer/"},
        "vulnerabilites": vulnerabilities}}


def _process_info(job: Job, state: _State, now: float) -> dict:
    """process_info: complete (100) only after post-processing; "Processing" until then."""
    if state.phase == "canceled":
        result, reason = "Blocked", RESULT_TEXT[19]
    elif state.phase == "done":
        blocked = job.overall in BLOCKING_CODES
        result, reason = ("Blocked", RESULT_TEXT[job.overall]) if blocked else ("Allowed", "")
    else:
        result, reason = "Processing", ""
    complete = state.phase in ("done", "canceled")
    waited_until = min(now, job.started_at, now if job.canceled_at is None else job.canceled_at)
    return {
        "blocked_reason": reason,
        "file_type_skipped_scan": False,
        "profile": job.submission.rule,
        "progress_percentage": 100 if complete else int(100 * state.whole),
        "queue_time": _ms(max(0.0, waited_until - job.queued_at)),
        "processing_time": _ms(state.whole * (job.scan_seconds + job.post_seconds)),
        "result": result,
        "post_processing": _post_processing(job, state.phase == "done"),
    }


def _post_processing(job: Job, done: bool) -> dict:
    """Deep CDR outcome once the job is done: "Sanitized" ran (MDEMU:CDR) or failed (MDEMU:CDR-FAIL)."""
    outcome = dict.fromkeys(
        ("actions_ran", "actions_failed", "converted_to", "copy_move_destination", "converted_destination"), ""
    )
    if done and CDR_FAIL in job.markers.names:
        outcome["actions_failed"] = "Sanitized"
    elif done and job.sanitizes:
        stem = job.file.display_name.rsplit(".", 1)[0] or job.data_id
        outcome.update(
            actions_ran="Sanitized",
            converted_to=job.file.extension,
            converted_destination=f"{stem}_sanitized.{job.file.extension}",
        )
    return outcome


def converted_file(job: Job, now: float) -> bytes | None:
    """The sanitized file once the job is done and sanitized it, else None."""
    return job.sanitized if job.sanitized is not None and _state(job, now).phase == "done" else None
