"""Assemblyline service for OPSWAT MetaDefender Core: every antivirus engine's verdict on every file.

The thin `ServiceBase` glue. The work lives in `mdservice`: `config` (service variables),
`client` and `transport` (HTTP to one Core, every exchange within its deadline), `engines` (engine map,
tool version), `nodes` and `queues` (which Core next), `polling` (when to ask again), `scan` (one task,
with failover) and `report` (Core report to sections).
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime

from assemblyline.common.exceptions import NonRecoverableError, RecoverableError
from assemblyline.odm.models.ontology.results import Antivirus
from assemblyline_v4_service.common.base import ServiceBase
from assemblyline_v4_service.common.request import ServiceRequest
from assemblyline_v4_service.common.result import Result, ResultSection, ResultTextSection

from mdservice.client import (
    MAX_PASSWORD_BYTES,
    MAX_PASSWORDS,
    CoreClient,
    CoreError,
    KeyMaskFilter,
    choose_passwords,
    mask_json,
    mask_key,
)
from mdservice.config import ServiceConfig, parse_config
from mdservice.engines import tool_version
from mdservice.nodes import CoreNode, NodePool
from mdservice.report import ResultOptions, build_result, sanitized_ran
from mdservice.scan import Clock, ScanJob, hold_if_saturated, scan_file
from mdservice.timing import DEADLINE_MARGIN, MAINTENANCE_SECONDS, MAINTENANCE_SHARE, MIN_DEADLINE_MARGIN


def _password_candidates(request: ServiceRequest) -> list:
    """The archive passwords offered for the file, as given: the `archive_password` submission parameter (a task sent
    without it, by an old dispatcher config, has none), then the `passwords` Assemblyline shares for the submission
    (temporary submission data, found by the user or by services such as Extract)."""
    try:
        param = request.get_param("archive_password")
    except Exception:  # the framework raises a bare Exception for an unknown parameter
        param = ""
    shared = request.temp_submission_data.get("passwords")
    return [param, *(shared if isinstance(shared, list | tuple) else [])]


class ServiceStartError(RuntimeError):
    """The service cannot work with this configuration (invalid, or refused by every Core); the message says why."""


class MetaDefender(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.settings: ServiceConfig | None = None
        self.pool: NodePool | None = None
        self.safelist: frozenset[str] = frozenset()
        self._safelist_read_at = 0.0
        self._safelist_reread: threading.Thread | None = None
        self.task_started: float | None = None
        # Monotonic time for deadlines, schedules and the Cores' health, wall time for the age of definitions and of
        # earlier scans and for the outage's start; the pool built at start() reads the clock set by then.
        self.clock = Clock()
        # When (UTC) no Core can scan since (None while one can), and the tool version meanwhile.
        self.outage_since: datetime | None = None
        self._outage_version = ""

    def start(self) -> None:
        """Check the config, read every Core's engines and fetch the safelisted virus names.

        Only what the admin must fix stops the start: an invalid config, or every Core refusing it (API key,
        certificate, address). Cores that cannot be reached or have no active antivirus engine do not: the service
        starts with a warning, and its tasks fail as recoverable errors until a Core can scan.
        """
        try:
            self.settings = parse_config(self.config)
        except ValueError as exc:
            raise ServiceStartError(f"Invalid MetaDefender service configuration: {exc}") from None
        self._mask_logs(self.settings.api_key)
        if self.settings.verify is False:
            self.log.warning("verify_certificate is false: Core's TLS certificates are not checked")
        self.pool = self._build_pool(self.settings)
        self.pool.read_all_engines()
        self._refuse_refused_config()
        self._refuse_unknown_rule()
        self._track_outage()
        self._safelist_read_at = self.clock.now()
        self.safelist = self._fetch_safelist() or frozenset()

    def stop(self) -> None:
        if self.pool:
            self.pool.close()

    def handle_task(self, task) -> None:
        """Assemblyline's task handling, noting when the task started: its deadline counts from then.

        The framework asks get_tool_version() before execute(), so the engine refresh and probes done
        there are part of the task's time.
        """
        self.task_started = self.clock.now()
        try:
            super().handle_task(task)
        finally:
            self.task_started = None

    def get_tool_version(self) -> str | None:
        """MD5 of every Core's engine list; re-read on schedule so new definitions change it without a restart.

        The re-reading and the probes of failed Cores fit in a small budget at the start of the task. While no Core
        can scan, every answering Core's list is re-read at each task, and the tool version is a marker unique to
        the outage (`unavailable-<random>`): the task fails, so no result is made under it, and no result cached
        before (under an engine digest, or None before start) can be taken for it.
        """
        if self.pool is None:
            return None
        start = self._task_start()
        budget = min(MAINTENANCE_SECONDS, MAINTENANCE_SHARE * (self._deadline() - start))
        max_age = 0.0 if self.outage_since is not None else self.settings.engine_refresh_seconds
        self.pool.refresh_engines(max_age, start + budget)
        if self._track_outage():
            return self._outage_version
        return tool_version(self.pool.fingerprints())

    def execute(self, request: ServiceRequest) -> None:
        """Scan the file and build its result; every error message has any piece of the API key masked."""
        try:
            self._scan(request)
        except Exception as exc:
            message = mask_key(str(exc), self.settings.api_key)
            if message == str(exc):
                raise
            kind = RecoverableError if isinstance(exc, RecoverableError) else NonRecoverableError
            raise kind(message) from None

    def _scan(self, request: ServiceRequest) -> None:
        """Scan the file on a Core (none while no Core can scan: a RecoverableError says why) and set the result."""
        settings, deadline = self.settings, self._deadline()
        if self.outage_since is not None:
            raise RecoverableError(f"{self._outage_text()}; Assemblyline will retry the file")
        self.refresh_safelist(self.clock.now())
        job = ScanJob(request.file_path, request.file_name or request.sha256, settings.rule,
                      self._archive_passwords(request), request.sha256, 60 * settings.reuse_scan_minutes)
        scan = scan_file(self.pool, job, deadline, self.clock)
        node, report = scan.node, mask_json(scan.report, settings.api_key)
        options = ResultOptions(settings.av_config, self.safelist, settings.stale_definition_days, self.clock.wall())
        built = build_result(report, node.engines, options)
        if built.cdr and settings.fetch_sanitized_file and sanitized_ran(report):
            self._attach_sanitized(request, node, scan.data_id, built.cdr, deadline)
        result = Result()
        for section in built.sections:
            result.add_section(section)
        for part in built.antivirus:
            self.ontology.add_result_part(Antivirus, part)
        request.set_service_context(node.engines.service_context() if node.engines else None)
        request.result = result
        hold_if_saturated(self.pool, scan, deadline, self.clock)

    def _archive_passwords(self, request: ServiceRequest) -> tuple[str, ...]:
        """The archive passwords sent with the file (see choose_passwords); those skipped or left out are logged by
        number only: no password is ever shown."""
        chosen = choose_passwords(_password_candidates(request))
        if chosen.unsendable:
            self.log.warning(f"{chosen.unsendable} archive password(s) skipped: not text that can be sent to Core "
                             "(not a string, or a lone surrogate)")
        if chosen.left_out:
            self.log.info(f"{chosen.left_out} archive password(s) left out: at most {MAX_PASSWORDS} passwords and "
                          f"{MAX_PASSWORD_BYTES // 1024} KiB of them go with a file")
        return chosen.sent

    def _build_pool(self, settings: ServiceConfig) -> NodePool:
        nodes = [CoreNode(CoreClient(url, settings.api_key, settings.verify, settings.md_timeout), settings.md_version,
                          settings.rule) for url in settings.base_urls]
        return NodePool(nodes, settings.max_md_scan_time, self.log, clock=self.clock.now)

    def _refuse_unknown_rule(self) -> None:
        """Stop the start when the configured `rule` is on none of the Cores that list their rules."""
        rule, listed = self.settings.rule, [node.rules for node in self.pool.nodes if node.rules is not None]
        if rule and listed and not any(rule in rules for rules in listed):
            offered = mask_key(", ".join(repr(name) for name in sorted({name for rules in listed for name in rules})),
                               self.settings.api_key)
            raise ServiceStartError(f"No MetaDefender Core has the rule {rule!r} that the rule variable names; the "
                                    f"Cores offer: {offered or 'no rule'}. Set rule to one of them (or empty for "
                                    "Core's default)")

    def _mask_logs(self, key: str) -> None:
        """Mask the API key in every line logged through the service's logger (one filter: this service's key)."""
        for old in [f for f in self.log.filters if isinstance(f, KeyMaskFilter)]:
            self.log.removeFilter(old)
        self.log.addFilter(KeyMaskFilter(key))

    def _refuse_refused_config(self) -> None:
        """Stop the start when every Core refused the service for a reason only the admin can fix."""
        nodes = self.pool.nodes
        if all(node.engines is None and node.health.last_error_permanent for node in nodes):
            problems = "; ".join(node.health.last_error for node in nodes)
            raise ServiceStartError(f"No MetaDefender Core accepts this configuration: {problems}")

    def _track_outage(self) -> bool:
        """Whether no Core can scan: none is known to have an active antivirus engine (none answered yet, or those
        that did have none). Notes since when, with a warning naming each Core's problem, and when one can again."""
        if any(node.engines is not None and node.engines.active_av_count for node in self.pool.nodes):
            if self.outage_since is not None:
                self.log.info("A MetaDefender Core can scan again: tasks are scanned again")
            self.outage_since = None
            return False
        if self.outage_since is None:
            self.outage_since = self.clock.wall()
            self._outage_version = f"unavailable-{uuid.uuid4().hex}"
            self.log.warning(f"{self._outage_text()}. Every task fails as a recoverable error until one can")
        return True

    def _outage_text(self) -> str:
        """Since when (UTC) no Core can scan, and each Core's problem."""
        since = self.outage_since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        problems = "; ".join(node.health.last_error if node.failed and node.health.last_error else
                             f"{node.name} has no active antivirus engine: check Core's Inventory > Technologies "
                             "(licence and engine updates)" for node in self.pool.nodes)
        return f"No MetaDefender Core can scan files since {since} UTC: {problems}"

    def refresh_safelist(self, now: float) -> threading.Thread | None:
        """Re-read the safelisted virus names once `engine_refresh_seconds` passed since the last read.

        The read runs in a background thread (returned, for whoever wants to wait for it): the framework's call
        retries for as long as Assemblyline's service server is unreachable, and no task may wait for that. Tasks
        meanwhile score with the names read last; one re-read at a time.
        """
        running = self._safelist_reread is not None and self._safelist_reread.is_alive()
        if running or now - self._safelist_read_at < self.settings.engine_refresh_seconds:
            return None
        self._safelist_read_at = now
        reread = threading.Thread(target=self._reread_safelist, name="safelist-reread", daemon=True)
        try:
            reread.start()
        except RuntimeError as exc:  # "can't start new thread": the names read last stay until the next schedule
            self.log.warning(f"Could not re-read the safelisted virus names: {exc}")
            return None
        self._safelist_reread = reread
        return reread

    def _reread_safelist(self) -> None:
        names = self._fetch_safelist()
        if names is not None:
            self.safelist = names

    def _fetch_safelist(self) -> frozenset[str] | None:
        """Virus names on Assemblyline's safelist; None (with a warning) when the call fails: the last list stays."""
        try:
            safelist = self.get_api_interface().get_safelist(["av.virus_name"]) or {}
            names = safelist.get("match", {}).get("av.virus_name", [])
            return frozenset(name for name in names if isinstance(name, str))
        except Exception as exc:  # the safelist is an extra: the service works without it
            self.log.warning(f"Could not fetch the safelisted virus names, scoring with the {len(self.safelist)} "
                             f"read before: {exc}")
            return None

    def _task_start(self) -> float:
        """When the current task started (now, outside a task)."""
        return self.clock.now() if self.task_started is None else self.task_started

    def _deadline(self) -> float:
        """The monotonic time by which the scan must be over: the service timeout from the task start, less a margin."""
        timeout = float(self.service_attributes.timeout)
        return self._task_start() + timeout - max(MIN_DEADLINE_MARGIN, DEADLINE_MARGIN * timeout)

    def _attach_sanitized(self, request: ServiceRequest, node: CoreNode, data_id: str, cdr: ResultSection,
                          deadline: float) -> None:
        """Download Core's sanitized file as a supplementary file by `deadline`; a failure is a note in the CDR section.

        The AV verdict is already in hand, so nothing that goes wrong here may fail the task.
        """
        destination = os.path.join(self.working_directory, f"{request.sha256}.sanitized")
        max_bytes = int(self.settings.sanitized_file_max_mb * 2**20)
        try:
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                raise CoreError("the task had no time left to download it")
            node.client.download_converted(data_id, destination, max_bytes, timeout=remaining)
            name = f"{request.file_name or request.sha256}.sanitized"
            if request.add_supplementary(destination, name, "File sanitized by MetaDefender Core (Deep CDR)"):
                return
            problem = "Core returned an empty file"
        except CoreError as exc:
            problem = str(exc)
        ResultTextSection("Sanitized file could not be downloaded", body=problem, parent=cdr)
