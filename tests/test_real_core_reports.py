"""Reports as real Cores send them: older Cores' field set, partial and wrong-typed fields, in-progress reports that
look clean, reports for another file, archive members, and reports with thousands of engines.

The field sets follow OPSWAT's published Core answers (Core 4.3 in its client test data) and the API notes.
"""

from __future__ import annotations

import copy
import json

import pytest
from al_checks import validate_antivirus_parts, validate_sections

from mdservice.config import AvConfig
from mdservice.engines import EngineMap
from mdservice.report import (
    TITLE_ARCHIVE,
    TITLE_HITS,
    TITLE_NOT_SHOWN,
    ResultOptions,
    build_result,
    foreign_report,
    is_finished,
)

# README: a result lists at most 500 engines (the rest in one line) and 100 archive members (then how many more).
MAX_ENGINES_SHOWN = 500
MAX_MEMBERS_SHOWN = 100
DATA_ID = "61dffeaa728844adbf49eb090e4ece0e"
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
ENGINES = EngineMap.from_engine_list([
    {"eng_name": "ClamAV", "eng_ver": "0.99.2", "engine_type": "av", "def_time": "2017-05-02T07:16:00.000Z",
     "active": True, "state": "production"},
    {"eng_name": "Clamav", "eng_ver": "1462 (20150625)", "engine_type": "av", "def_time": "", "active": False,
     "state": "downloaded"},
    {"eng_name": "Avira", "eng_ver": "8.3.44.100", "engine_type": "av", "def_time": "2017-05-02T04:00:00.000Z",
     "active": True, "state": "production"},
    {"eng_name": "ESET", "eng_ver": "26534-26", "engine_type": "av", "def_time": "2017-05-01T22:00:00.000Z",
     "active": True, "state": "production"},
], 4)


def old_core_report() -> dict:
    """A finished report of a Core 4.3: no wait_time, eng_id, queue_time, processing_time, verdicts, outdated_data."""
    return {
        "data_id": DATA_ID,
        "file_info": {"display_name": "eicar.com", "file_size": 68, "file_type": "text/plain", "sha256": SHA256,
                      "md5": "44d88612fea8a8f36de82e1278abb02f", "upload_timestamp": "2017-05-02T09:00:00.000Z"},
        "scan_results": {
            "data_id": DATA_ID, "progress_percentage": 100, "scan_all_result_i": 1, "scan_all_result_a": "Infected",
            "start_time": "2017-05-02T09:00:00.100Z", "total_avs": 3, "total_time": 1240,
            "scan_details": {
                "ClamAV": {"scan_result_i": 1, "threat_found": "Eicar-Test-Signature", "scan_time": 12,
                           "def_time": "2017-05-02T07:16:00.000Z"},
                "Avira": {"scan_result_i": 0, "threat_found": "", "scan_time": 3, "def_time": "2017-05-02T04:00:00Z"},
                "ESET": {"scan_result_i": 3, "threat_found": "", "scan_time": 0, "def_time": "2017-05-01T22:00:00Z"},
            }},
        "process_info": {"progress_percentage": 100, "result": "Blocked", "blocked_reason": "Infected",
                         "profile": "File scan", "file_type_skipped_scan": False, "user_agent": "",
                         "post_processing": {"actions_ran": "", "actions_failed": "", "converted_to": "",
                                             "copy_move_destination": "", "converted_destination": ""}},
    }


def new_core_report() -> dict:
    """The same scan as a current Core reports it, with the fields older Cores lack."""
    report = old_core_report()
    for index, (name, entry) in enumerate(report["scan_results"]["scan_details"].items()):
        entry.update(wait_time=index + 1, eng_id=f"{name.lower()}_1_linux")
    report["process_info"].update(queue_time=321, processing_time=1240, verdicts=["Infected"], outdated_data=[])
    return report


def shown(report: dict, engines: EngineMap | None = ENGINES, options: ResultOptions | None = None):
    """Everything an analyst sees: each section's depth, title, body and heuristic, and the Antivirus parts."""
    built = build_result(report, engines, options or ResultOptions())
    stored = validate_sections(built.sections)
    sections = [(s.depth, s.title_text, s.body, s.heuristic and (s.heuristic.heur_id, s.heuristic.score))
                for s in stored.result.sections]
    parts = [part.as_primitives() for part in validate_antivirus_parts(built.antivirus)]
    return sections, parts


# --- older Cores and partial fields -----------------------------------------------------------------------------------

def test_an_old_core_report_gives_the_same_result_as_a_new_one_but_core_5_verdicts():
    old, new = old_core_report(), new_core_report()
    assert is_finished(old) and is_finished(new)
    (old_sections, old_parts), (new_sections, new_parts) = shown(old), shown(new)
    summary = 2
    assert new_sections[summary][1] == "1/2 engines flagged the file"
    old_summary = json.loads(old_sections[summary][2])
    assert json.loads(new_sections[summary][2]) == {**old_summary, "core_verdicts": ["Infected"]}
    del old_sections[summary], new_sections[summary]
    assert (old_sections, old_parts) == (new_sections, new_parts)
    sections, parts = shown(old)
    assert sections[1][1] == "ClamAV identified the file as Eicar-Test-Signature"
    assert json.loads(sections[1][2])["engine_version"] == "0.99.2"
    assert {p["engine_name"]: p["engine_version"] for p in parts} == {
        "Avira": "8.3.44.100", "ClamAV": "0.99.2", "ESET": "26534-26"}


@pytest.mark.parametrize(("path", "value"), [
    (("scan_results", "total_avs"), "3"),
    (("scan_results", "total_time"), None),
    (("scan_results", "scan_all_result_a"), 5),
    (("scan_results", "start_time"), []),
    (("scan_results", "data_id"), {"id": 1}),
    (("process_info", "profile"), None),
    (("process_info", "queue_time"), "soon"),
    (("process_info", "verdicts"), "Infected"),
    (("process_info", "outdated_data"), {"x": 1}),
    (("scan_results", "scan_details", "ClamAV", "scan_time"), "12"),
    (("scan_results", "scan_details", "Avira", "wait_time"), [1]),
    (("scan_results", "scan_details", "ESET", "eng_id"), 7),
    (("file_info",), ["not", "an", "object"]),
    (("extracted_files",), "none"),
    (("extracted_files",), {"files_in_archive": {"not": "a list"}}),
])
def test_fields_the_service_does_not_use_may_be_of_any_type(path, value):
    report = old_core_report()
    target = report
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert shown(report) == shown(old_core_report())


@pytest.mark.parametrize("missing", ["file_info", "data_id", "process_info"])
def test_missing_top_level_fields_still_give_the_same_sections(missing):
    report = old_core_report()
    del report[missing]
    assert is_finished(report)
    baseline = old_core_report()
    if missing == "process_info":  # Core's own verdict is read from there
        del baseline["process_info"]["result"], baseline["process_info"]["blocked_reason"]
    assert shown(report)[0] == shown(baseline)[0]


# --- finished or not --------------------------------------------------------------------------------------------------

def in_progress_that_looks_clean(with_process_info: bool) -> dict:
    """An old Core's report while it scans: code 0 and no engines, only the progress says it is not done."""
    report = {"data_id": DATA_ID, "scan_results": {
        "progress_percentage": 40, "scan_all_result_i": 0, "scan_all_result_a": "Clean", "scan_details": {},
        "total_avs": 0, "total_time": -1}}
    if with_process_info:
        report["process_info"] = {"progress_percentage": 40, "result": "Processing", "post_processing": {}}
    return report


@pytest.mark.parametrize("with_process_info", [True, False])
def test_an_in_progress_report_that_looks_clean_is_not_finished(with_process_info):
    assert not is_finished(in_progress_that_looks_clean(with_process_info))


def mutated(change) -> dict:
    report = old_core_report()
    change(report)
    return report


@pytest.mark.parametrize("report", [
    mutated(lambda r: r["scan_results"].update(progress_percentage=60)),
    mutated(lambda r: r["process_info"].update(progress_percentage=99.5)),
    mutated(lambda r: r["process_info"].update(progress_percentage="100")),
    mutated(lambda r: r["scan_results"].update(progress_percentage=None)),
    mutated(lambda r: r["scan_results"]["scan_details"]["ESET"].update(scan_result_i=255)),
    mutated(lambda r: r.update(extracted_files={"files_in_archive": [{"progress_percentage": 50}]})),
    mutated(lambda r: (r.pop("process_info"), r.pop("scan_results"))),
], ids=["scan-60", "process-99.5", "text-100", "null-progress", "engine-255", "member-50", "no-progress"])
def test_a_report_is_finished_only_when_every_progress_is_100_and_no_engine_scans(report):
    assert not is_finished(report)


# --- a report for another file ----------------------------------------------------------------------------------------

def test_the_report_of_this_upload_is_not_foreign():
    assert foreign_report(old_core_report(), DATA_ID, SHA256) is None
    assert foreign_report(old_core_report(), DATA_ID, SHA256.upper()) is None
    assert foreign_report(mutated(lambda r: r.pop("file_info")), DATA_ID, SHA256) is None
    assert foreign_report(old_core_report(), DATA_ID, "") is None


@pytest.mark.parametrize(("report", "reason"), [
    (old_core_report(), "data id"),
    (mutated(lambda r: r.update(data_id=12345)), "data id"),
])
def test_a_report_for_another_data_id_is_foreign(report, reason):
    assert reason in foreign_report(report, "8101abae27be4d63859c55d9e0ed0135" if report["data_id"] == DATA_ID
                                    else DATA_ID, SHA256)


@pytest.mark.parametrize("their_sha256", ["0" * 64, 42, ["x"]])
def test_a_report_for_another_sha256_is_foreign(their_sha256):
    report = mutated(lambda r: r["file_info"].update(sha256=their_sha256))
    assert "SHA-256" in foreign_report(report, DATA_ID, SHA256)


# --- archive members --------------------------------------------------------------------------------------------------

def member(path: str, code: int, detected_by: int | None = None, scanned_with: int | None = 3) -> dict:
    entry = {"data_id": f"m-{path}", "display_name": path, "scan_all_result_i": code, "progress_percentage": 100,
             "scanned_with": scanned_with, "file_size": 68}
    if detected_by is not None:
        entry["detected_by"] = detected_by
    return entry


def with_members(report: dict, *members: dict) -> dict:
    report["extracted_files"] = {"files_in_archive": list(members)}
    return report


def archive_body(report: dict) -> str:
    sections, _ = shown(report)
    bodies = [body for _, title, body, _ in sections if title == TITLE_ARCHIVE]
    assert len(bodies) == 1, sections
    return bodies[0]


def test_flagged_archive_members_are_listed_after_the_hits_without_a_score():
    report = with_members(old_core_report(), member("docs/readme.txt", 0, 0),
                          member("bin/dropper.exe", 1, 2), member("bin/tool.exe", 2, 1, None))
    sections, _ = shown(report)
    assert [title for depth, title, _, _ in sections if depth == 0][:2] == [TITLE_HITS, TITLE_ARCHIVE]
    archive = next(s for s in sections if s[1] == TITLE_ARCHIVE)
    assert archive[3] is None
    lines = archive[2].splitlines()[1:]
    assert lines == ["bin/dropper.exe: Infected, flagged by 2 of 3 engines",
                     "bin/tool.exe: Suspicious, flagged by 1 engine"]
    assert sum(score for *_, heur in sections if heur for score in heur[1:]) == 1000


def test_only_members_flagged_gives_the_archive_section_alone():
    report = with_members(old_core_report(), member("inner/evil.js", 1, 3))
    for entry in report["scan_results"]["scan_details"].values():
        entry["scan_result_i"] = 0
    sections, _ = shown(report)
    assert [title for _, title, _, _ in sections] == [TITLE_ARCHIVE]


@pytest.mark.parametrize("members", [
    [member("a.txt", 0, 0), member("b.txt", 0, 0)],
    [{"display_name": "c.txt", "scan_all_result_i": "1", "detected_by": "2"}, "not an object", None],
    [],
])
def test_no_flagged_member_gives_no_archive_section(members):
    sections, _ = shown(with_members(old_core_report(), *members))
    assert TITLE_ARCHIVE not in [title for _, title, _, _ in sections]


def test_hostile_member_paths_stay_on_one_line_and_the_list_is_capped():
    members = [member(f"dir\n{i}\ud800.exe", 1, 1) for i in range(MAX_MEMBERS_SHOWN + 25)]
    lines = archive_body(with_members(old_core_report(), *members)).splitlines()
    assert len(lines) == 1 + MAX_MEMBERS_SHOWN + 1
    assert lines[1] == "dir 0\ufffd.exe: Infected, flagged by 1 of 3 engines"
    assert "25 more" in lines[-1]


# --- thousands of engines ---------------------------------------------------------------------------------------------

def test_twenty_thousand_engines_are_storable_and_summed_up():
    count = 20_000
    details = {f"Engine{i:05d}": {"scan_result_i": 1 if i % 4 else 3, "threat_found": f"Trojan.Gen.{i}"}
               for i in range(count)}
    report = {"data_id": DATA_ID, "scan_results": {"progress_percentage": 100, "scan_details": details}}
    options = ResultOptions(AvConfig(kw_score_revision_map={"trojan": 1_000_000}))
    built = build_result(report, None, options)
    stored = validate_sections(built.sections)
    assert 0 < stored.result.score <= 2**31 - 1
    hits = [s for s in stored.result.sections if s.heuristic]
    assert len(hits) == MAX_ENGINES_SHOWN
    flagged = count // 4 * 3
    assert stored.result.sections[len(hits) + 1].title_text == f"{flagged}/{flagged} engines flagged the file"
    [note] = [s for s in stored.result.sections if s.title_text == TITLE_NOT_SHOWN]
    left_out = count - MAX_ENGINES_SHOWN
    assert note.body.startswith(f"{left_out} more engines are not listed ({flagged - MAX_ENGINES_SHOWN} flagged the "
                                f"file, 0 found nothing, {count // 4} failed)")
    assert len(validate_antivirus_parts(built.antivirus)) == MAX_ENGINES_SHOWN


def test_a_report_within_the_limit_has_no_not_shown_note():
    details = {f"Engine{i:03d}": {"scan_result_i": 1, "threat_found": "X"} for i in range(MAX_ENGINES_SHOWN)}
    sections, parts = shown({"scan_results": {"progress_percentage": 100, "scan_details": details}}, None)
    assert TITLE_NOT_SHOWN not in [title for _, title, _, _ in sections]
    assert len(parts) == MAX_ENGINES_SHOWN


def test_reading_a_report_does_not_change_it():
    report = with_members(old_core_report(), member("x.exe", 1, 1))
    before = copy.deepcopy(report)
    shown(report)
    assert report == before
