"""Assemblyline service for OPSWAT MetaDefender Core: every antivirus engine's verdict on every file.

The thin `ServiceBase` glue. The work lives in `mdservice`: `config` (service variables),
`client` (HTTP to one Core), `engines` (engine map, tool version), `nodes` (which Core next),
`polling` (when to ask again), `scan` (one task, with failover) and `report` (Core report to sections).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from assemblyline.odm.models.ontology.results import Antivirus
from assemblyline_v4_service.common.base import ServiceBase
from assemblyline_v4_service.common.request import ServiceRequest
from assemblyline_v4_service.common.result import Result, ResultSection, ResultTextSection

from mdservice.client import CoreClient, CoreError
from mdservice.config import ServiceConfig, parse_config
from mdservice.engines import EngineMap, tool_version
from mdservice.nodes import CoreNode, NodePool
from mdservice.report import antivirus_parts, av_sections, cdr_section, engine_outcomes, sanitized_ran
from mdservice.scan import ScanJob, scan_file

TITLE_STALE = "Outdated Antivirus Definitions"
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
    return value if isinstance(value, str) else ""


class ServiceStartError(RuntimeError):
    """The service cannot work with this configuration or these Cores; the message says why."""


class MetaDefender(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.settings: ServiceConfig | None = None
        self.pool: NodePool | None = None
        self.safelist: frozenset[str] = frozenset()
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
        self.safelist = self._fetch_safelist()

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
        job = ScanJob(request.file_path, request.file_name or request.sha256, settings.rule,
                      _archive_password(request))
        scan = scan_file(self.pool, job, deadline)
        node, report = scan.node, scan.report
        outcomes = engine_outcomes(report, node.engines, settings.av_config)
        result = Result()
        for section in av_sections(outcomes, settings.av_config, self.safelist):
            result.add_section(section)
        cdr = cdr_section(report)
        if cdr:
            result.add_section(cdr)
            if settings.fetch_sanitized_file and sanitized_ran(report):
                self._attach_sanitized(request, node, scan.data_id, cdr)
        stale = self._stale_section(node.engines)
        if stale:
            result.add_section(stale)
        for part in antivirus_parts(outcomes):
            self.ontology.add_result_part(Antivirus, part)
        request.set_service_context(node.engines.service_context() if node.engines else None)
        request.result = result

    def _build_pool(self, settings: ServiceConfig) -> NodePool:
        nodes = [CoreNode(CoreClient(url, settings.api_key, settings.verify, settings.md_timeout), settings.md_version)
                 for url in settings.base_urls]
        return NodePool(nodes, settings.max_md_scan_time, self.log)

    def _check_engines(self) -> None:
        """Refuse to start when no Core answered, or none has an active engine."""
        answered = [node for node in self.pool.nodes if node.engines is not None]
        if not answered:
            problems = "; ".join(node.last_error for node in self.pool.nodes)
            raise ServiceStartError(f"No MetaDefender Core could be reached: {problems}")
        if not any(node.engines.active_count for node in answered):
            raise ServiceStartError("No reachable MetaDefender Core has an active engine: check Core's "
                                    "Inventory > Technologies (licence and engine updates)")

    def _fetch_safelist(self) -> frozenset[str]:
        """Virus names on Assemblyline's safelist; a failure only means no safelist, with a warning."""
        try:
            safelist = self.get_api_interface().get_safelist(["av.virus_name"]) or {}
            names = safelist.get("match", {}).get("av.virus_name", [])
            return frozenset(name for name in names if isinstance(name, str))
        except Exception as exc:  # the safelist is an extra: the service works without it
            self.log.warning(f"Could not fetch the safelisted virus names, scoring without them: {exc}")
            return frozenset()

    def _task_start(self) -> float:
        """When the current task started (now, outside a task)."""
        return time.monotonic() if self.task_started is None else self.task_started

    def _deadline(self) -> float:
        """The monotonic time by which the scan must be over: the service timeout from the task start, less a margin."""
        timeout = float(self.service_attributes.timeout)
        return self._task_start() + timeout - max(MIN_DEADLINE_MARGIN, DEADLINE_MARGIN * timeout)

    def _attach_sanitized(self, request: ServiceRequest, node: CoreNode, data_id: str, cdr: ResultSection) -> None:
        """Download Core's sanitized file as a supplementary file; a failure is a note in the CDR section."""
        destination = os.path.join(self.working_directory, f"{request.sha256}.sanitized")
        try:
            node.client.download_converted(data_id, destination)
            name = f"{request.file_name or request.sha256}.sanitized"
            if request.add_supplementary(destination, name, "File sanitized by MetaDefender Core (Deep CDR)"):
                return
            problem = "Core returned an empty file"
        except CoreError as exc:
            problem = str(exc)
        ResultTextSection("Sanitized file could not be downloaded", body=problem, parent=cdr)

    def _stale_section(self, engines: EngineMap | None) -> ResultSection | None:
        """Engines (not blocklisted) whose definitions are older than `stale_definition_days` (0: not checked)."""
        if engines is None or not self.settings.stale_definition_days:
            return None
        stale = [e for e in engines.stale_engines(datetime.now(UTC), self.settings.stale_definition_days)
                 if not self.settings.av_config.is_blocked(e.name)]
        if not stale:
            return None
        section = ResultTextSection(TITLE_STALE)
        section.add_line(f"These engines' definitions are older than {self.settings.stale_definition_days:g} "
                         "days, so they may miss recent threats:")
        section.add_lines([f"{e.name}: {e.def_time_text}" for e in stale])
        return section
