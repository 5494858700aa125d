"""Which earlier scan may stand for a task (README, `reuse_scan_minutes`; docs/design.md, "Taking over earlier
scans"): one of this file, under the rule our files get, not canceled or aborted, not made with outdated
definitions, uploaded at most `reuse_scan_minutes` ago (up to 5 minutes in the future for clock skew).

Reports and engine lists have the shape of Core's `GET /hash/{sha256}` and `GET /stat/engines` answers; the clock
is a fixed moment, so nothing depends on today's date.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from mdservice.engines import EngineMap
from mdservice.resume import Wanted, reuse_problem

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
RULE = "File scan"
# reuse_scan_minutes: 30 (its default)
WANTED = Wanted(SHA256, RULE, timedelta(minutes=30))
# Core's engine list: ClamAV's definitions of 11:08 on 2026-12-01.
ENGINES = EngineMap.from_engine_list([
    {"eng_name": "ClamAV", "eng_ver": "1.0.1", "engine_type": "av", "def_time": "2026-12-01T11:08:00.000Z",
     "active": True, "state": "production"},
], 4)
# Core's result codes: 0 No threat detected, 1 Infected, 11 Aborted, 19 Canceled.
NO_THREAT, INFECTED, ABORTED, CANCELED = 0, 1, 11, 19


def earlier_scan(uploaded: datetime = NOW - timedelta(minutes=10), def_time: str = "2026-12-01T11:08:00.000Z") -> dict:
    """Core's report of this file, scanned under RULE with ClamAV's current definitions, uploaded at `uploaded`."""
    return {
        "data_id": "8101abae27be4d63859c55d9e0ed0135",
        "file_info": {"display_name": "sample.bin", "sha256": SHA256,
                      "upload_timestamp": uploaded.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
        "scan_results": {"progress_percentage": 100, "scan_all_result_i": INFECTED,
                         "scan_details": {"ClamAV": {"scan_result_i": INFECTED, "threat_found": "Eicar-Test-Signature",
                                                     "def_time": def_time}}},
        "process_info": {"progress_percentage": 100, "profile": RULE, "result": "Blocked"},
    }


def changed(path: str, value) -> dict:
    """`earlier_scan()` with the field at dotted `path` set to `value` (None: removed)."""
    report = copy.deepcopy(earlier_scan())
    *parents, key = path.split(".")
    part = report
    for parent in parents:
        part = part[parent]
    if value is None:
        del part[key]
    else:
        part[key] = value
    return report


def test_a_recent_scan_of_this_file_under_the_rule_stands_for_the_task():
    assert reuse_problem(earlier_scan(), WANTED, NOW, ENGINES) is None


@pytest.mark.parametrize(("path", "value"), [
    ("file_info.sha256", "0" * 64),  # another file
    ("file_info.sha256", None),  # a report that does not say which file
    ("process_info.profile", "Strict"),  # made under another rule
    ("scan_results.scan_all_result_i", CANCELED),
    ("scan_results.scan_all_result_i", ABORTED),
    ("process_info.outdated_data", ["enginedefinitions"]),  # Core says the verdict used outdated data
    ("file_info.upload_timestamp", "yesterday"),  # an upload time that cannot be read
])
def test_a_scan_of_another_file_rule_or_outcome_does_not_stand(path, value):
    assert reuse_problem(changed(path, value), WANTED, NOW, ENGINES) is not None


def test_the_file_in_any_case_of_its_sha256_is_this_file():
    report = changed("file_info.sha256", SHA256.upper())
    assert reuse_problem(report, WANTED, NOW, ENGINES) is None


def test_no_scan_stands_while_the_rule_our_files_get_is_unknown():
    unknown_rule = Wanted(SHA256, None, WANTED.max_age)
    assert reuse_problem(earlier_scan(), unknown_rule, NOW, ENGINES) is not None


def test_no_scan_stands_for_a_file_whose_sha256_is_not_known():
    assert reuse_problem(earlier_scan(), Wanted("", RULE, WANTED.max_age), NOW, ENGINES) is not None


def test_a_scan_made_with_definitions_older_than_the_cores_does_not_stand():
    older = earlier_scan(def_time="2026-11-30T23:00:00.000Z")
    assert reuse_problem(older, WANTED, NOW, ENGINES) is not None
    # Without the engine list (not read yet), only Core's own outdated_data can tell.
    assert reuse_problem(older, WANTED, NOW, None) is None


def test_a_scan_made_with_the_cores_definitions_or_newer_ones_stands():
    assert reuse_problem(earlier_scan(def_time="2026-12-01T11:08:00.000Z"), WANTED, NOW, ENGINES) is None
    assert reuse_problem(earlier_scan(def_time="2026-12-01T12:00:00.000Z"), WANTED, NOW, ENGINES) is None


def test_an_engine_the_core_does_not_list_or_an_unreadable_engine_entry_decides_nothing():
    report = earlier_scan(def_time="2026-11-30T23:00:00.000Z")
    report["scan_results"]["scan_details"] = {"Avira": report["scan_results"]["scan_details"]["ClamAV"],
                                              "ClamAV": None}
    assert reuse_problem(report, WANTED, NOW, ENGINES) is None


@pytest.mark.parametrize(("uploaded", "stands"), [
    (NOW - timedelta(minutes=30), True),  # "at most reuse_scan_minutes ago"
    (NOW - timedelta(minutes=30, seconds=1), False),
    (NOW + timedelta(minutes=5), True),  # Core's clock up to 5 minutes ahead of ours
    (NOW + timedelta(minutes=5, seconds=1), False),
])
def test_a_scan_stands_when_uploaded_at_most_reuse_scan_minutes_ago_or_5_minutes_in_the_future(uploaded, stands):
    assert (reuse_problem(earlier_scan(uploaded), WANTED, NOW, ENGINES) is None) is stands
