"""Whether a scan Core already has of this file may stand for this task (pure: a report in, a decision out).

Assemblyline gives a file a few attempts; under heavy load an attempt can end while the file is still being scanned.
The next attempt asks Core for its newest scan of the file (`GET hash/{sha256}`) and takes it over, finished or not,
instead of uploading again. A scan may stand for the task only when it is this file's, made under the same rule,
not canceled, recent, and made with the definitions the Core has now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mdservice.engines import EngineMap, parse_def_time
from mdservice.report import foreign_report, outdated_kinds, overall_result, report_part

# Results of scans that ended without scanning the file: 11 Aborted, 19 Canceled.
ENDED_UNSCANNED = (11, 19)
# Core's clock and ours may differ a little: a scan that seems to start up to this far in the future is still taken.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Wanted:
    """What the task needs of a previous scan: the file, the rule it must be made under (None while the name of the
    rule Core applies to our files is not known: then no scan is taken), and how old it may be."""

    sha256: str
    rule: str | None
    max_age: timedelta


def reuse_problem(report: dict, wanted: Wanted, now: datetime, engines: EngineMap | None) -> str | None:
    """Why `report` may not stand for the task at wall-clock `now`, given the Core's current `engines`, or None."""
    file_info = report_part(report, "file_info")
    if not wanted.sha256 or not isinstance(file_info.get("sha256"), str):
        return "the file's SHA-256 is not known"
    foreign = foreign_report(report, report.get("data_id"), wanted.sha256)
    if foreign:
        return foreign
    profile = report_part(report, "process_info").get("profile")
    if wanted.rule is None or profile != wanted.rule:
        return f"it was made under another rule ({str(profile)[:80]!r})"
    if overall_result(report) in ENDED_UNSCANNED:
        return "it was canceled or aborted"
    if outdated_kinds(report) or _older_definitions(report, engines):
        return "it was made with definitions older than the Core's"
    uploaded = parse_def_time(file_info.get("upload_timestamp"), 4)
    if uploaded is None or not now - wanted.max_age <= uploaded <= now + CLOCK_SKEW:
        return "it is older than reuse_scan_minutes allows (or its upload time is unreadable)"
    return None


def _older_definitions(report: dict, engines: EngineMap | None) -> bool:
    """True when an engine of the report scanned with older definitions than the Core's engine list now shows
    (the check that works on Cores that do not send `outdated_data`)."""
    details = report_part(report, "scan_results").get("scan_details")
    if engines is None or not isinstance(details, dict):
        return False
    for name, entry in details.items():
        engine = engines.lookup(name) if isinstance(name, str) else None
        used = parse_def_time(entry.get("def_time"), engines.md_version) if isinstance(entry, dict) else None
        if engine and engine.def_time and used and used < engine.def_time:
            return True
    return False

