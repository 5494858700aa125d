"""One emulated Core without its HTTP plumbing: state, faults, stats and endpoint answers.

Every endpoint method returns a `Reply`; `server.py` turns requests into calls and
replies into HTTP responses. All state changes happen under the Core's lock, so handler
threads may call in concurrently.
"""

import json
import threading
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from .engines import advance, catalogue, engine_list, node_engine_summary, packages, reinstall_inactive
from .faults import check_fault
from .processing import (
    DEFAULT_RULE,
    Clock,
    ScanBook,
    Scheduler,
    Submission,
    UploadDigest,
    build_report,
    converted_file,
    durations,
    make_job,
)
from .stats import NodeStats, ScanRecord

VERSIONS = {3: "3.13.1", 4: "4.18.0"}
CORE_5_VERSION = "5.14.0"
ENGINE_LISTS = ("tidy", "packages")
REPORT_FLAVOURS = ("current", "4.3")
STALE_DAYS = 7  # definitions older than this are reported as an issue in /stat/nodes
DEFAULT_MAX_FILE_SIZE = 200_000_000  # bytes; the OpenAPI description's example for a rule
TOO_LARGE = "Failed to request scan. File size exceeded the maximum size permitted by your configuration."
# The emulator's own words: Core's texts for these answers are not documented.
LOW_DISK = "Failed to request scan. Not enough free disk space."
RATE_LIMITED = "Too many requests: rate limit exceeded. Try again later."


class Reply(NamedTuple):
    """An HTTP answer: status, body bytes, content type and any other headers as (name, value) pairs."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(status: int, document: object) -> Reply:
    return Reply(status, json.dumps(document).encode())


def error_reply(status: int, message: str) -> Reply:
    return json_reply(status, {"err": message})


BUSY = error_reply(503, "Server is too busy. Try again later.")


@dataclass(frozen=True)
class Settings:
    """What every node of an emulator shares (see Emulator for the meaning of each)."""

    scan_seconds: float = 1.0
    apikey: str | None = None
    md_version: int = 4
    concurrency: int = 1
    queue_limit: int = 500
    slow_seconds: float = 2.0
    quiet: bool = True
    engine_list: str = "tidy"
    report_flavour: str = "current"
    latency: float = 0.0
    hash_unfinished: bool = False
    core_version: int = 4
    rules: tuple[tuple[str, int], ...] = ((DEFAULT_RULE, DEFAULT_MAX_FILE_SIZE),)  # (name, max_file_size)
    limited_polls: int = 0
    retry_after: float = 1.0


class Core:
    """The behaviour of one MetaDefender Core: scans, engines, faults and stats."""

    def __init__(self, index: int, settings: Settings, clock: Clock, faults=()) -> None:
        self.index = index
        self.settings = settings
        self.clock = clock
        self.engines = catalogue(clock.wall(clock.now()))
        # What GET /stat/engines lists: the engines themselves, or (engine_list "packages") every package of them.
        self.listing = packages(self.engines) if settings.engine_list == "packages" else self.engines
        self.stats = NodeStats()
        # This Core's own scan time per file; None: the emulator-wide settings.scan_seconds.
        self.scan_seconds: float | None = None
        # This Core's own network delay before every answer; None: the emulator-wide settings.latency.
        self.latency: float | None = None
        self._faults = {check_fault(name) for name in faults}
        self._book = ScanBook()
        # Files this Core scans at once (its scan slots).
        self.concurrency = settings.concurrency
        self._scheduler = Scheduler(settings.concurrency, settings.queue_limit)
        self._not_ready: str | None = None  # why GET /readyz answers 503; None: ready
        self._limited: dict[str, int] = {}  # polls answered 429, by the data id of the scan
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ controls

    @property
    def faults(self) -> set[str]:
        """A copy of the active faults."""
        with self._lock:
            return set(self._faults)

    def set_fault(self, name: str) -> None:
        """Turn a fault on (see faults.FAULTS)."""
        with self._lock:
            self._faults.add(check_fault(name))

    def clear_fault(self, name: str) -> None:
        """Turn a fault off (no error if it was off)."""
        with self._lock:
            self._faults.discard(check_fault(name))

    def clear_faults(self) -> None:
        for name in self.faults:
            self.clear_fault(name)

    def set_concurrency(self, slots: int) -> None:
        """Give this Core its own number of scan slots (before it takes any file)."""
        with self._lock:
            self.concurrency = slots
            self._scheduler = Scheduler(slots, self.settings.queue_limit)

    def set_ready(self, ready: bool, reason: str = "not ready") -> None:
        """Core 5: make GET /readyz answer 200, or 503 with `reason` (e.g. "scan queue above threshold")."""
        with self._lock:
            self._not_ready = None if ready else reason

    def update_definitions(self) -> None:
        """New definitions: every engine's def_time moves one day forward. Running scans keep theirs;
        the reports of earlier scans then carry process_info.outdated_data ["enginedefinitions"]."""
        with self._lock:
            self.engines, self.listing = advance(self.engines), advance(self.listing)

    def update_inactive_packages(self) -> None:
        """Core downloads new versions of the packages it does not scan with; the engines that scan stay."""
        with self._lock:
            self.listing = reinstall_inactive(self.listing)

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = NodeStats()

    def count_request(self) -> None:
        with self._lock:
            self.stats.requests += 1

    @property
    def answer_delay(self) -> float:
        """Seconds every answer waits before it is sent: the modelled network delay, plus the slow fault's."""
        delay = self.settings.latency if self.latency is None else self.latency
        return delay + (self.settings.slow_seconds if "slow" in self.faults else 0.0)

    # ------------------------------------------------------------------ access

    def key_accepted(self, apikey: str | None) -> bool:
        """Whether a request with this `apikey` header may proceed (bad_key refuses all)."""
        if "bad_key" in self.faults:
            return False
        return self.settings.apikey is None or apikey == self.settings.apikey

    def access_denied(self) -> Reply:
        """v4: 403 Access denied; v3: 401 Invalid API key."""
        if self.settings.md_version == 3:
            return error_reply(401, "Invalid API key")
        return error_reply(403, "Access denied")

    # ------------------------------------------------------------------ endpoints

    @property
    def _version(self) -> str:
        return CORE_5_VERSION if self.settings.core_version == 5 else VERSIONS[self.settings.md_version]

    def version(self) -> Reply:
        return json_reply(200, {"product_id": "MSCL", "version": self._version})

    def readiness(self) -> Reply:
        """GET /readyz (Core 5): 200 {"ready": true}, or 503 {"ready": false, "reason": ...}; older Cores 404."""
        if self.settings.core_version < 5:
            return error_reply(404, "Not found")
        with self._lock:
            reason = self._not_ready
        if reason is None:
            return json_reply(200, {"ready": True})
        return json_reply(503, {"ready": False, "reason": reason})

    def rules(self) -> Reply:
        """GET /file/rules (Core 5): [{"name", "max_file_size"}] for every rule (none is restricted to a
        user agent, so header user_agent filters nothing); older Cores take "rules" for a data id."""
        if self.settings.core_version < 5:
            return self.result("rules")
        return json_reply(200, [{"name": name, "max_file_size": size} for name, size in self.settings.rules])

    def engine_list(self) -> Reply:
        return json_reply(200, engine_list(self.listing, self.settings.md_version))

    def nodes_status(self) -> Reply:
        """GET /stat/nodes, shaped as the OpenAPI schema: a list holding one instance with one node. Core 5 adds
        scan_queue_details in places of the scan queue, as OPSWAT's Helm chart reads them: total_scan_queue its
        size (queue_limit), available_slots its free places (an idle Core: 500 of 500; 0: the next upload that
        finds no free scan slot gets 503)."""
        now = self.clock.now()
        with self._lock:
            waiting, busy = self._scheduler.waiting(now), self._scheduler.busy(now)
        status = {
            "address": "",
            "cpu_cores": self.concurrency,
            "engines": [node_engine_summary(e, self.settings.md_version) for e in self.engines],
            "free_disk_space": 100 * 1024**3,
            "id": f":{self.index}",
            "issues": self._issues(now),
            "load": int(100 * busy / self.concurrency),
            "os": "Linux (MetaDefender Core emulator)",
            "scan_queue": waiting + busy,  # files Core has not finished: waiting or being scanned
            "total_memory": 16384,
            "version": self._version,
        }
        if self.settings.core_version == 5:
            status["scan_queue_details"] = {
                "available_slots": max(0, self.settings.queue_limit - waiting),
                "total_scan_queue": self.settings.queue_limit,
            }
        return json_reply(200, [{"external_nodes_allowed": False, "max_node_count": 1, "statuses": [status]}])

    def _issues(self, now: float) -> list[dict]:
        """Warnings for engines that do not scan and for definitions older than STALE_DAYS."""
        today = self.clock.wall(now)
        issues = [f"{e.name} engine is {e.state}" for e in self.engines if e.engine_type == "av" and not e.scans]
        issues += [
            f"{e.name} definitions are {(today - e.def_time).days} days old"
            for e in self.engines
            if e.def_time and (today - e.def_time).days > STALE_DAYS
        ]
        return [{"description": text, "severity": "warning"} for text in issues]

    def upload_refused(self, submission: Submission, size: int) -> Reply | None:
        """The refusal of an upload of `size` bytes, answered before the body is read; else None.

        The 503 of the upload_503 fault, the 400 of the low_disk fault; Core 5 only: 400 for a rule it
        lacks, 500 for a file larger than its rule's max_file_size (0: no limit).
        """
        if "upload_503" in self.faults:
            return BUSY
        if "low_disk" in self.faults:
            return error_reply(400, LOW_DISK)
        if self.settings.core_version < 5:
            return None
        limit = dict(self.settings.rules).get(submission.rule)
        if limit is None:
            return error_reply(400, f"Failed to request scan. Unknown rule: {submission.rule}")
        return error_reply(500, TOO_LARGE) if limit and size > limit else None

    def upload(self, digest: UploadDigest, submission: Submission) -> Reply:
        """Queue a complete upload: 200 {"data_id"}, or 503 when queue_limit jobs already wait."""
        data_id = uuid.uuid4().hex
        default_seconds = self.settings.scan_seconds if self.scan_seconds is None else self.scan_seconds
        scan_seconds, post_seconds = durations(digest.markers(), default_seconds)
        with self._lock:
            now = self.clock.now()
            job = make_job(
                data_id,
                digest,
                submission,
                self.engines,
                queued_at=now,
                seconds=(scan_seconds, post_seconds),
                stuck="never_complete" in self._faults,
                uploaded_at=self.clock.wall(now),
            )
            if not self._scheduler.admit(job, now):
                return BUSY
            self._book.add(job)
            self.stats.uploads += 1
            self.stats.scans[data_id] = ScanRecord(
                data_id=data_id,
                filename=submission.display_name,
                size=job.file.size,
                queued_at=now,
                started_at=job.started_at,
                finished_at=job.finished_at,
                rule=submission.rule,
                archive_passwords=submission.archive_passwords,
            )
        return json_reply(200, {"data_id": data_id})

    def result(self, data_id: str) -> Reply:
        """GET /file/{data_id}; the first `limited_polls` polls of each scan answer 429 with a Retry-After of
        `retry_after` seconds (request rate limiting, Core 5.13+); honours the result_500 and lost faults."""
        with self._lock:
            self.stats.result_requests += 1
            if data_id in self.stats.scans:
                self.stats.scans[data_id].result_requests += 1
            if self._book.get(data_id) and self._limited.get(data_id, 0) < self.settings.limited_polls:
                self._limited[data_id] = self._limited.get(data_id, 0) + 1
                self.stats.limited_requests += 1
                return error_reply(429, RATE_LIMITED)._replace(
                    headers=(("Retry-After", f"{self.settings.retry_after:g}"),))
            if "result_500" in self._faults:
                return error_reply(500, "Failed to fetch the scan result. Internal server error.")
            job = None if "lost" in self._faults else self._book.get(data_id)
            if job is None:
                return json_reply(404, {data_id: "Not Found"})
            return json_reply(200, self._report(job, self.clock.now()))

    def converted(self, data_id: str) -> Reply:
        """GET /file/converted/{data_id}: the sanitized bytes, or 404 while/when there are none."""
        with self._lock:
            job = self._book.get(data_id)
            content = None if job is None else converted_file(job, self.clock.now())
        if content is None:
            return error_reply(404, "File could not be found")
        return Reply(200, content, "application/octet-stream")

    def cancel(self, data_id: str) -> Reply:
        """POST /file/{data_id}/cancel: an unfinished scan ends as 19 Canceled at once; its queue
        position or slot is free, and the jobs behind it (and their ScanRecords) move up."""
        with self._lock:
            job = self._book.get(data_id)
            if job is None:
                return json_reply(404, {data_id: "Not Found"})
            for changed in self._scheduler.cancel(job, self.clock.now()):
                record = self.stats.scans.get(changed.data_id)  # None after reset_stats
                if record is not None:
                    record.started_at, record.finished_at = changed.started_at, changed.finished_at
        return json_reply(200, {data_id: "cancelled"})

    def hash_lookup(self, digest: str, rule: str | None) -> Reply:
        """GET /hash/{md5|sha1|sha256}: the report of the newest scan of that file (under `rule`
        when given) that was not canceled and, unless hash_unfinished, is finished; else
        404 {HASH: "Not Found"}."""
        with self._lock:
            now = self.clock.now()
            job = self._book.latest(digest, now, rule, self.settings.hash_unfinished)
            if job is None:
                return json_reply(404, {digest.upper(): "Not Found"})
            return json_reply(200, self._report(job, now))

    def _report(self, job, now: float) -> dict:
        flavour = "5" if self.settings.core_version == 5 else self.settings.report_flavour
        return build_report(job, now, self.settings.md_version, self.clock, flavour, self.engines)
