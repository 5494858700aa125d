"""Assemblyline service for OPSWAT MetaDefender Core: every antivirus engine's verdict on every file.

The thin `ServiceBase` glue. The work lives in `mdservice`: `config` (service variables),
`client` and `transport` (HTTP to one Core, every exchange within its deadline), `engines` (engine map,
tool version), `nodes` and `queues` (which Core next), `polling` (when to ask again), `scan` (one task,
with failover) and `report` (Core report to sections).
"""

from __future__ import annotations

import os
import threading
import time

from assemblyline.common.exceptions import NonRecoverableError
from assemblyline.odm.models.ontology.results import Antivirus
from assemblyline_v4_service.common.base import ServiceBase
from assemblyline_v4_service.common.request import ServiceRequest
from assemblyline_v4_service.common.result import Result, ResultSection, ResultTextSection

from mdservice.client import CoreClient, CoreError
from mdservice.config import ServiceConfig, is_valid_text, parse_config
from mdservice.engines import tool_version
from mdservice.nodes import CoreNode, NodePool
from mdservice.report import ResultOptions, build_result, sanitized_ran
from mdservice.scan import ScanJob, scan_file

# Part of the service timeout kept free for Assemblyline's own work after the scan.
DEADLINE_MARGIN = 0.1
MIN_DEADLINE_MARGIN = 1.0
# Engine-list refreshes and probes of failed Cores get at most this part of a task's time, and this many seconds.
MAINTENANCE_SHARE = 0.2
MAINTENANCE_SECONDS = 2.0


def _archive_password(request: ServiceRequest) -> str:
    """The `archive_password` submission parameter; a task sent without it (old dispatcher config) has none."""
    try:
        value = request.get_param("archive_password")
    except Exception:  # the framework raises a bare Exception for an unknown parameter
        return ""
    if not isinstance(value, str):
        return ""
    if not is_valid_text(value):
        raise NonRecoverableError("The archive_password submission parameter is not valid Unicode text (it holds "
                                  "a lone surrogate); resubmit the file with the password typed as plain text")
    return value


class ServiceStartError(RuntimeError):
    """The service cannot work with this configuration or these Cores; the message says why."""


class MetaDefender(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.settings: ServiceConfig | None = None
        self.pool: NodePool | None = None
        self.safelist: frozenset[str] = frozenset()
        self._safelist_read_at = 0.0
        self._safelist_reread: threading.Thread | None = None
        self.task_started: float | None = None

    def start(self) -> None:
        """Check the config, read every Core's engines and fetch the safelisted virus names."""
        try:
            self.settings = parse_config(self.config)
        except ValueError as exc:
            raise ServiceStartError(f"Invalid MetaDefender service configuration: {exc}") from None
        if self.settings.verify is False:
            self.log.warning("verify_certificate is false: Core's TLS certificates are not checked")
        self.pool = self._build_pool(self.settings)
        self.pool.read_all_engines()
        self._check_engines()
        self._safelist_read_at = time.monotonic()
        self.safelist = self._fetch_safelist() or frozenset()

    def stop(self) -> None:
        if self.pool:
            self.pool.close()

    def handle_task(self, task) -> None:
        """Assemblyline's task handling, noting when the task started: its deadline counts from then.

        The framework asks get_tool_version() before execute(), so the engine refresh and probes done
        there are part of the task's time.
        """
        self.task_started = time.monotonic()
        try:
            super().handle_task(task)
        finally:
            self.task_started = None

    def get_tool_version(self) -> str | None:
        """MD5 of every Core's engine list; re-read on schedule so new definitions change it without a restart.

        The re-reading and the probes of failed Cores fit in a small budget at the start of the task.
        """
        if self.pool is None:
            return None
        start = self._task_start()
        budget = min(MAINTENANCE_SECONDS, MAINTENANCE_SHARE * (self._deadline() - start))
        self.pool.refresh_engines(self.settings.engine_refresh_seconds, start + budget)
        return tool_version(self.pool.fingerprints())

    def execute(self, request: ServiceRequest) -> None:
        settings, deadline = self.settings, self._deadline()
        self.refresh_safelist(time.monotonic())
        job = ScanJob(request.file_path, request.file_name or request.sha256, settings.rule,
                      _archive_password(request), request.sha256, 60 * settings.reuse_scan_minutes)
        scan = scan_file(self.pool, job, deadline)
        node, report = scan.node, scan.report
        options = ResultOptions(settings.av_config, self.safelist, settings.stale_definition_days)
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

    def _build_pool(self, settings: ServiceConfig) -> NodePool:
        nodes = [CoreNode(CoreClient(url, settings.api_key, settings.verify, settings.md_timeout), settings.md_version)
                 for url in settings.base_urls]
        return NodePool(nodes, settings.max_md_scan_time, self.log)

    def _check_engines(self) -> None:
        """Refuse to start when no Core answered, or none has an active antivirus engine."""
        answered = [node for node in self.pool.nodes if node.engines is not None]
        if not answered:
            problems = "; ".join(node.last_error for node in self.pool.nodes)
            raise ServiceStartError(f"No MetaDefender Core could be reached: {problems}")
        if not any(node.engines.active_av_count for node in answered):
            raise ServiceStartError("No reachable MetaDefender Core has an active antivirus engine: check Core's "
                                    "Inventory > Technologies (licence and engine updates)")

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
        return time.monotonic() if self.task_started is None else self.task_started

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
            remaining = deadline - time.monotonic()
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
