"""Whether a scan Core already has of this file may stand for this task (pure: a report in, a decision out).

Assemblyline gives a file a few attempts; under heavy load an attempt can end while the file still waits in a
Core's queue. The next attempt asks Core for its newest scan of the file (`GET hash/{sha256}`) and takes it over,
finished or not, instead of uploading again at the back of the queue. A scan may stand for the task only when it
is this file's, made under the same rule, not canceled, recent, and Core does not say its data is outdated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mdservice.engines import parse_def_time
from mdservice.report import foreign_report, outdated_kinds

CANCELED = 19
# Core's clock and ours may differ a little: a scan that seems to start up to this far in the future is still taken.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Wanted:
    """What the task needs of a previous scan: the file, the rule it must be made under ("" = Core's default, whose
    name the Core told us in an earlier report, if it did), and how old it may be."""

    sha256: str
    rule: str
    default_rule: str | None
    max_age: timedelta


def reuse_problem(report: dict, wanted: Wanted, now: datetime) -> str | None:
    """Why `report` may not stand for the task, or None when it may."""
    data_id = report.get("data_id")
    if not isinstance(data_id, str):
        return "it has no data id"
    foreign = foreign_report(report, data_id, wanted.sha256)
    if foreign or not wanted.sha256:
        return foreign or "the file's SHA-256 is not known"
    process = _part(report, "process_info")
    rule = wanted.rule or wanted.default_rule
    if rule is None or process.get("profile") != rule:
        return f"it was made under another rule ({str(process.get('profile'))[:80]!r})"
    if _part(report, "scan_results").get("scan_all_result_i") == CANCELED:
        return "it was canceled"
    if outdated_kinds(report):
        return "Core says its data is outdated"
    started = _upload_time(report)
    if started is None or not now - wanted.max_age <= started <= now + CLOCK_SKEW:
        return "it is older than reuse_scan_minutes allows (or its upload time is unreadable)"
    return None


def _upload_time(report: dict) -> datetime | None:
    return parse_def_time(_part(report, "file_info").get("upload_timestamp"), 4)


def _part(report: dict, key: str) -> dict:
    value = report.get(key)
    return value if isinstance(value, dict) else {}
