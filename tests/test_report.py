"""The result of contract section 4: hits, failures, clean engines, scores, CDR and Antivirus ontology parts.

Every result built here is also loaded in Assemblyline's own Result model (`validate_sections`), and the scores
checked are the ones Assemblyline computes from the sections' heuristics.
"""

from __future__ import annotations

import json

import pytest
from al_checks import validate_antivirus_parts, validate_sections

from mdservice import report as md_report
from mdservice.config import AvConfig
from mdservice.engines import EngineMap
from mdservice.report import ResultOptions, build_result, is_finished, progress_of, queue_seconds

TITLE_HITS = "AV Detections as Infected or Suspicious"
TITLE_FAILS = "Failed to Scan or No Threats Detected"
TITLE_NO_THREAT = "No Threat Detected by AV Engine(s)"
TITLE_CDR_FAILED = "CDR Failed or No Malicious Files Found"
TITLE_CDR_DONE = "CDR Successfully Executed"
HIT_KEYS = ["av_name", "virus_name", "scan_result", "engine_version", "engine_definition_time"]

# The scanning Core's engines: (name, version, def_time) as `/stat/engines` gives them.
ENGINE_LIST = [
    ("Avira", "8.3.64", "2024-03-11T06:00:00.000Z"),
    ("ClamAV", "1.0.1", "2024-03-11T11:08:00.000Z"),
    ("ESET", "2.1.0", "2024-03-10T22:15:30.000Z"),
    ("K7", "12.1", "2024-03-09T01:02:03.000Z"),
    ("TACHYON", "2024.1", "2024-03-11T00:00:00.000Z"),
    ("Zillya!", "3.0.2", "2024-03-08T12:00:00.000Z"),
]


def engine_map() -> EngineMap:
    return EngineMap.from_engine_list([
        {"eng_id": name.lower(), "eng_name": name, "eng_ver": ver, "eng_type": "Bundled engine", "engine_type": "av",
         "def_time": def_time, "active": True, "state": "production"}
        for name, ver, def_time in ENGINE_LIST], 4)


def verdict(code, threat: str = "") -> dict:
    """One engine's entry in `scan_details` (`make_report` adds the engine's `def_time`)."""
    return {"scan_result_i": code, "threat_found": threat, "scan_time": 10, "wait_time": 1}


def make_report(details: dict, post_processing: dict | None = None, process_progress: int | None = None) -> dict:
    """A finished report; `process_info` (v4) only when post_processing or process_progress is given.

    Each engine of ENGINE_LIST carries the definition time the engine list shows for it, as on a Core whose
    definitions did not change between the engine list and the scan.
    """
    listed = {name: def_time for name, _, def_time in ENGINE_LIST}
    for name, entry in details.items():
        if isinstance(entry, dict) and name in listed:
            entry.setdefault("def_time", listed[name])
    doc = {"data_id": "8101abae27be4d63859c55d9e0ed0135",
           "scan_results": {"progress_percentage": 100, "scan_all_result_i": 1, "scan_details": details}}
    if post_processing is not None or process_progress is not None:
        doc["process_info"] = {"progress_percentage": 100 if process_progress is None else process_progress,
                               "result": "Allowed", "post_processing": post_processing or {}}
    return doc


def result_of(doc: dict, av_config: AvConfig | None = None, safelist=(), engines: EngineMap | None = None):
    """The sections the service gives for `doc`, as Assemblyline stores them (flattened, with `depth`)."""
    options = ResultOptions(av_config or AvConfig(), frozenset(safelist))
    return validate_sections(build_result(doc, engines or engine_map(), options).sections).result


def titles(result) -> list[tuple[int, str]]:
    return [(section.depth, section.title_text) for section in result.sections]


def section(result, title: str):
    found = [s for s in result.sections if s.title_text == title]
    assert len(found) == 1, f"expected one section titled {title!r}, got {titles(result)}"
    return found[0]


def hit_sections(result) -> list:
    return [s for s in result.sections if s.heuristic is not None]


def only_hit(result):
    hits = hit_sections(result)
    assert len(hits) == 1, titles(result)
    return hits[0]


def kv_items(sec) -> list[tuple]:
    assert sec.body_format == "KEY_VALUE"
    return list(json.loads(sec.body).items())


def virus_tags(sec) -> list[str]:
    return list(sec.tags.av.virus_name) if sec.tags.av and sec.tags.av.virus_name else []


def failure_titles(result) -> list[str]:
    return [s.title_text for s in result.sections if s.title_text.endswith(" failed to scan the file")]


# --- result codes -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "heur_id", "scan_result", "score"), [
    (1, "1", "infected", 1000),
    (4, "1", "infected", 1000),
    (2, "2", "suspicious", 500),
    (22, "2", "suspicious", 500),
])
def test_hit_codes(code, heur_id, scan_result, score):
    result = result_of(make_report({"ClamAV": verdict(code, "Eicar-Test-Signature")}))
    hit = section(result, "ClamAV identified the file as Eicar-Test-Signature")
    assert hit.heuristic.heur_id == heur_id
    assert hit.heuristic.score == score
    assert [sig.name for sig in hit.heuristic.signature] == ["ClamAV.Eicar-Test-Signature"]
    assert kv_items(hit) == [
        ("av_name", "ClamAV"),
        ("virus_name", "Eicar-Test-Signature"),
        ("scan_result", scan_result),
        ("engine_version", "1.0.1"),
        ("engine_definition_time", "2024-03-11 11:08:00"),
    ]
    assert virus_tags(hit) == ["Eicar-Test-Signature"]
    assert result.score == score


def test_clean_engine_is_listed_as_no_threat():
    result = result_of(make_report({"ClamAV": verdict(1, "Eicar"), "Avira": verdict(0)}))
    assert kv_items(section(result, TITLE_NO_THREAT)) == [("no_threat_detected", ["Avira"])]
    assert failure_titles(result) == []


@pytest.mark.parametrize("code", [3, 10, 12, 15, 19, 23])
def test_failure_codes(code):
    result = result_of(make_report({"ClamAV": verdict(1, "Eicar"), "ESET": verdict(code)}))
    failed = section(result, "ESET failed to scan the file")
    assert failed.body == "Engine: 2.1.0 :: Definition: 2024-03-10 22:15:30"
    assert failed.heuristic is None
    assert TITLE_NO_THREAT not in [s.title_text for s in result.sections]
    assert result.score == 1000


def test_failure_of_an_engine_not_in_the_engine_map_has_an_empty_body():
    result = result_of(make_report({"ClamAV": verdict(1, "Eicar"), "Sophos": verdict(3)}))
    assert not section(result, "Sophos failed to scan the file").body


def test_unknown_code_is_a_failure_that_shows_the_code():
    result = result_of(make_report({"ClamAV": verdict(1, "Eicar"), "ESET": verdict(42)}))
    failed = section(result, "ESET failed to scan the file")
    assert "42" in failed.body
    assert result.score == 1000


@pytest.mark.parametrize("entry", [
    {"threat_found": ""},
    {"scan_result_i": None},
    {"scan_result_i": "garbage"},
    {"scan_result_i": [1]},
])
def test_missing_or_non_integer_code_does_not_crash_and_is_a_failure(entry):
    result = result_of(make_report({"ClamAV": verdict(1, "Eicar"), "ESET": entry}))
    assert failure_titles(result) == ["ESET failed to scan the file"]
    assert len(hit_sections(result)) == 1


# --- hit sections -----------------------------------------------------------------------------------------------------

def test_definition_time_shown_is_the_one_that_scanned_the_file():
    entry = dict(verdict(1, "Eicar"), def_time="2024-03-12T07:30:00.000Z")
    doc = make_report({"ClamAV": entry, "ESET": dict(verdict(3), def_time="2024-03-12T01:00:00Z"), "Avira": verdict(0)})
    built = build_result(doc, engine_map(), ResultOptions())
    result = validate_sections(built.sections).result
    assert dict(kv_items(section(result, "ClamAV identified the file as Eicar")))["engine_definition_time"] == (
        "2024-03-12 07:30:00")
    assert section(result, "ESET failed to scan the file").body == "Engine: 2.1.0 :: Definition: 2024-03-12 01:00:00"
    parts = {p.engine_name: p for p in validate_antivirus_parts(built.antivirus)}
    assert parts["ClamAV"].engine_definition_version == "2024-03-12 07:30:00"


@pytest.mark.parametrize("def_time", ["", None, 20240312, ["2024-03-12"], "yesterday"])
def test_unreadable_report_definition_time_falls_back_to_the_engine_list(def_time):
    doc = make_report({"ClamAV": dict(verdict(1, "Eicar"), def_time=def_time)})
    hit = only_hit(result_of(doc))
    assert dict(kv_items(hit))["engine_definition_time"] == "2024-03-11 11:08:00"


def test_hit_of_an_engine_not_in_the_engine_map_shows_the_reports_definition_time():
    doc = make_report({"Sophos": dict(verdict(2, "Mal/Generic-S"), def_time="2024-03-12T07:30:00.000Z"),
                       "McAfee": dict(verdict(3), def_time="2024-03-12T08:00:00.000Z")})
    result = result_of(doc)
    body = dict(kv_items(section(result, "Sophos identified the file as Mal/Generic-S")))
    assert (body["engine_version"], body["engine_definition_time"]) == ("unknown", "2024-03-12 07:30:00")
    failed = section(result, "McAfee failed to scan the file")
    assert failed.body == "Engine: unknown :: Definition: 2024-03-12 08:00:00"


def test_v3_report_definition_time_is_read_in_the_v3_format():
    engines = EngineMap.from_engine_list([{"eng_name": "ClamAV scan engine", "eng_ver": "0.103", "eng_type": "av",
                                           "def_time": "03/11/2024 01:30:00 PM"}], 3)
    doc = make_report({"ClamAV": dict(verdict(1, "Eicar"), def_time="03/12/2024 02:45:00 AM")})
    hit = only_hit(result_of(doc, engines=engines))
    assert dict(kv_items(hit))["engine_definition_time"] == "2024-03-12 02:45:00"


def test_hit_of_an_engine_not_in_the_engine_map_shows_unknown_version_and_time():
    result = result_of(make_report({"Sophos": verdict(2, "Mal/Generic-S")}))
    assert kv_items(section(result, "Sophos identified the file as Mal/Generic-S")) == [
        ("av_name", "Sophos"),
        ("virus_name", "Mal/Generic-S"),
        ("scan_result", "suspicious"),
        ("engine_version", "unknown"),
        ("engine_definition_time", "unknown"),
    ]


def test_a_variant_of_is_stripped_from_the_virus_name():
    result = result_of(make_report({"ESET": verdict(1, "a variant of Win32/Agent.ABC trojan")}))
    hit = section(result, "ESET identified the file as Win32/Agent.ABC trojan")
    assert dict(kv_items(hit))["virus_name"] == "Win32/Agent.ABC trojan"
    assert [sig.name for sig in hit.heuristic.signature] == ["ESET.Win32/Agent.ABC trojan"]
    assert virus_tags(hit) == ["Win32/Agent.ABC trojan"]


@pytest.mark.parametrize("threat", ["", None, "  ", "a variant of "])
def test_hit_without_threat_name_is_a_hit_without_virus_tag(threat):
    entry = verdict(1)
    entry["threat_found"] = threat
    result = result_of(make_report({"ClamAV": entry, "Avira": verdict(0)}))
    hit = only_hit(result)
    assert hit.title_text == "ClamAV flagged the file as infected"
    assert [sig.name for sig in hit.heuristic.signature] == ["ClamAV."]
    assert hit.heuristic.heur_id == "1"
    assert hit.heuristic.score == 1000
    assert dict(kv_items(hit))["av_name"] == "ClamAV"
    assert dict(kv_items(hit))["scan_result"] == "infected"
    assert virus_tags(hit) == []
    assert result.score == 1000


@pytest.mark.parametrize("code", [2, 22])
def test_suspicious_hit_without_threat_name_says_suspicious(code):
    hit = only_hit(result_of(make_report({"K7": verdict(code)})))
    assert hit.title_text == "K7 flagged the file as suspicious"
    assert hit.heuristic.heur_id == "2"


def test_hit_subsections_are_in_engine_name_order_followed_by_the_summary():
    doc = make_report({"Zillya!": verdict(2, "Trojan.Z"), "Avira": verdict(1, "TR/A"), "ESET": verdict(0)})
    result = result_of(doc)
    assert titles(result)[:4] == [
        (0, TITLE_HITS),
        (1, "Avira identified the file as TR/A"),
        (1, "Zillya! identified the file as Trojan.Z"),
        (1, "2/3 engines flagged the file"),
    ]
    assert section(result, TITLE_HITS).body is None
    assert result.score == 1500


def test_full_section_order():
    doc = make_report({
        "Zillya!": verdict(0),
        "K7": verdict(3),
        "ClamAV": verdict(1, "Eicar"),
        "Avira": verdict(0),
        "ESET": verdict(23),
        "TACHYON": verdict(2, "Suspicious/Other"),
    }, post_processing={"actions_ran": "Sanitized", "actions_failed": ""})
    result = result_of(doc)
    assert titles(result) == [
        (0, TITLE_HITS),
        (1, "ClamAV identified the file as Eicar"),
        (1, "TACHYON identified the file as Suspicious/Other"),
        (1, "2/4 engines flagged the file"),
        (0, TITLE_FAILS),
        (1, "ESET failed to scan the file"),
        (1, "K7 failed to scan the file"),
        (1, TITLE_NO_THREAT),
        (0, TITLE_CDR_DONE),
    ]
    assert section(result, TITLE_FAILS).body is None
    assert kv_items(section(result, TITLE_NO_THREAT)) == [("no_threat_detected", ["Avira", "Zillya!"])]


def test_hits_only_give_no_failure_section():
    result = result_of(make_report({"ClamAV": verdict(1, "Eicar"), "Avira": verdict(1, "Eicar-Test")}))
    assert TITLE_FAILS not in [s.title_text for s in result.sections]
    assert section(result, "2/2 engines flagged the file")


# --- clean and no-verdict reports -------------------------------------------------------------------------------------

def test_clean_only_report_gives_no_section():
    result = result_of(make_report({"ClamAV": verdict(0), "Avira": verdict(0)}))
    assert titles(result) == []
    assert result.score == 0


def test_clean_verdict_beside_failures_gives_no_section():
    result = result_of(make_report({"ClamAV": verdict(0), "ESET": verdict(3), "K7": verdict(23)}))
    assert titles(result) == []


@pytest.mark.parametrize("details", [
    {"ClamAV": verdict(3), "ESET": verdict(10)},
    {"ClamAV": verdict(23)},
    {"ClamAV": verdict(12), "ESET": verdict(15), "K7": verdict(19), "Avira": verdict(42)},
])
def test_report_without_any_verdict_says_so(details):
    result = result_of(make_report(details))
    assert [title for _, title in titles(result)][0] == md_report.TITLE_NO_VERDICT
    shown = [s.title_text for s in result.sections]
    assert TITLE_NO_THREAT not in shown
    assert TITLE_HITS not in shown


def test_report_whose_only_engines_are_blocklisted_says_no_engine_gave_a_verdict():
    result = result_of(make_report({"Antiy-AVL": verdict(0), "APEX": verdict(1, "Malware")}))
    assert [title for _, title in titles(result)] == [md_report.TITLE_NO_VERDICT]
    assert result.score == 0


# --- blocklist --------------------------------------------------------------------------------------------------------

def test_blocklisted_engines_are_removed_entirely():
    doc = make_report({
        "ClamAV": verdict(1, "Eicar"),
        "ANTIY-AVL": verdict(1, "Trojan/Generic"),
        "Apex": verdict(3),
        "Jiang min": verdict(0),
        "Avira": verdict(0),
    })
    result = result_of(doc)
    assert titles(result) == [
        (0, TITLE_HITS),
        (1, "ClamAV identified the file as Eicar"),
        (1, "1/2 engines flagged the file"),
        (0, TITLE_FAILS),
        (1, TITLE_NO_THREAT),
    ]
    assert kv_items(section(result, TITLE_NO_THREAT)) == [("no_threat_detected", ["Avira"])]
    assert result.score == 1000


def test_configured_blocklist_ignores_case_and_spaces():
    av_config = AvConfig(blocklist=frozenset({"clamav"}))
    doc = make_report({"Clam AV": verdict(1, "Eicar"), "Avira": verdict(0)})
    assert titles(result_of(doc, av_config)) == []


def test_blocklisted_engines_have_no_antivirus_part():
    doc = make_report({"ClamAV": verdict(1, "Eicar"), "Antiy - AVL": verdict(1, "Trojan")})
    parts = build_result(doc, engine_map(), ResultOptions()).antivirus
    assert [part["engine_name"] for part in parts] == ["ClamAV"]


# --- scores -----------------------------------------------------------------------------------------------------------

def score_of(engine: str, virus: str, code: int = 1, av_config: AvConfig | None = None, safelist=()) -> int:
    return only_hit(result_of(make_report({engine: verdict(code, virus)}), av_config, safelist)).heuristic.score


def test_default_signature_revision():
    assert score_of("TACHYON", "Suspicious/XOX.Obfus.Gen.2", code=2) == 100


def test_signature_revision_map():
    assert score_of("ClamAV", "Eicar", av_config=AvConfig(sig_score_revision_map={"ClamAV.Eicar": 10})) == 10


def test_signature_revision_beats_the_safelist():
    av_config = AvConfig(sig_score_revision_map={"ClamAV.Eicar": 10})
    assert score_of("ClamAV", "Eicar", av_config=av_config, safelist={"Eicar"}) == 10


def test_safelisted_virus_name_scores_zero():
    assert score_of("ClamAV", "Eicar", safelist={"Eicar"}) == 0


def test_safelist_beats_a_keyword():
    assert score_of("ESET", "Win32/Adware.Agent", safelist={"Win32/Adware.Agent"}) == 0


def test_safelist_matches_the_name_without_a_variant_of():
    assert score_of("ESET", "a variant of Win32/Agent.ABC", safelist={"Win32/Agent.ABC"}) == 0


def test_safelist_of_another_name_does_not_apply():
    assert score_of("ClamAV", "Eicar", safelist={"Eicar-Test"}) == 1000


def test_default_keyword_revision_matches_the_lower_cased_signature():
    assert score_of("ESET", "Win32/ADWARE.Agent") == 100


def test_highest_matching_keyword_wins():
    av_config = AvConfig(kw_score_revision_map={"adware": 100, "agent": 300, "win64": 900, "win32": 50})
    assert score_of("ESET", "Win32/Adware.Agent", av_config=av_config) == 300


def test_keyword_may_match_the_engine_part_of_the_signature():
    assert score_of("ClamAV", "Eicar", av_config=AvConfig(kw_score_revision_map={"clamav.": 42})) == 42


@pytest.mark.parametrize(("code", "score"), [(1, 1000), (2, 500), (4, 1000), (22, 500)])
def test_no_revision_keeps_the_heuristic_score(code, score):
    assert score_of("ESET", "Win32/Agent.ABC", code=code) == score


def test_scores_add_up_over_hits():
    doc = make_report({"ClamAV": verdict(1, "Eicar"), "ESET": verdict(22, "Win32/Adware.Agent"),
                       "K7": verdict(2, "Riskware")})
    assert result_of(doc).score == 1000 + 100 + 500


# --- CDR --------------------------------------------------------------------------------------------------------------

def test_cdr_failed():
    post = {"actions_ran": "", "actions_failed": "Sanitized"}
    result = result_of(make_report({"ClamAV": verdict(0)}, post_processing=post))
    assert titles(result) == [(0, TITLE_CDR_FAILED)]


def test_cdr_failed_wins_over_actions_ran():
    post = {"actions_ran": "Sanitized", "actions_failed": "Copy To Folder"}
    result = result_of(make_report({"ClamAV": verdict(0)}, post_processing=post))
    assert titles(result) == [(0, TITLE_CDR_FAILED)]


def test_cdr_successfully_executed_shows_post_processing():
    post = {"actions_ran": "Sanitized", "actions_failed": "", "converted_to": "application/pdf",
            "copy_move_destination": "", "converted_destination": "a_sanitized.pdf"}
    result = result_of(make_report({"ClamAV": verdict(1, "Eicar")}, post_processing=post))
    cdr = result.sections[-1]
    assert cdr.title_text == TITLE_CDR_DONE
    assert cdr.depth == 0
    assert cdr.body_format == "JSON"
    assert json.loads(cdr.body) == post


def test_no_cdr_section_when_nothing_ran():
    post = {"actions_ran": "", "actions_failed": "", "converted_to": ""}
    hit_doc = make_report({"ClamAV": verdict(1, "Eicar")}, post_processing=post)
    clean_doc = make_report({"ClamAV": verdict(0)}, post_processing=post)
    assert TITLE_CDR_DONE not in [title for _, title in titles(result_of(hit_doc))]
    assert titles(result_of(clean_doc)) == []


@pytest.mark.parametrize("post", [{"actions_ran": "Sanitized", "actions_failed": ""},
                                  {"actions_ran": "", "actions_failed": "Sanitized"}])
def test_no_cdr_section_while_post_processing_is_incomplete(post):
    doc = make_report({"ClamAV": verdict(1, "Eicar")}, post_processing=post, process_progress=90)
    shown = [title for _, title in titles(result_of(doc))]
    assert TITLE_CDR_DONE not in shown
    assert TITLE_CDR_FAILED not in shown


@pytest.mark.parametrize("details", [{"ClamAV": verdict(1, "Eicar")}, {"ClamAV": verdict(0)}])
def test_no_cdr_section_for_a_v3_report(details):
    shown = [title for _, title in titles(result_of(make_report(details)))]
    assert TITLE_CDR_DONE not in shown
    assert TITLE_CDR_FAILED not in shown


def test_no_cdr_section_when_process_info_has_no_post_processing():
    doc = make_report({"ClamAV": verdict(0)}, process_progress=100)
    del doc["process_info"]["post_processing"]
    assert titles(result_of(doc)) == []


# --- is_finished / progress_of ----------------------------------------------------------------------------------------

def test_v4_is_finished_when_process_info_reaches_100():
    doc = make_report({"ClamAV": verdict(0)}, process_progress=100)
    assert is_finished(doc)


def test_v4_is_not_finished_while_post_processing_runs():
    doc = make_report({"ClamAV": verdict(0)}, process_progress=80)
    assert doc["scan_results"]["progress_percentage"] == 100
    assert not is_finished(doc)


def test_v3_is_finished_when_scan_results_reach_100():
    assert is_finished(make_report({"ClamAV": verdict(0)}))


def test_v3_is_not_finished_below_100():
    doc = make_report({"ClamAV": verdict(0)})
    doc["scan_results"]["progress_percentage"] = 50
    assert not is_finished(doc)


@pytest.mark.parametrize("doc", [
    {"data_id": "8101abae27be4d63859c55d9e0ed0135"},
    {"data_id": "8101abae27be4d63859c55d9e0ed0135", "file_info": {"display_name": "a.pdf"}},
])
def test_queued_document_without_scan_results_is_not_finished(doc):
    assert not is_finished(doc)
    assert progress_of(doc) is None


@pytest.mark.parametrize(("process_info", "seconds"), [
    ({"queue_time": 321, "processing_time": 4804}, 0.321),
    ({"queue_time": 0}, 0.0),
    ({}, 0.0),  # Core 4.3 reports carry no queue_time
    ({"queue_time": "321"}, 0.0),
    ({"queue_time": True}, 0.0),
    ({"queue_time": -40}, 0.0),
    ({"queue_time": float("inf")}, 0.0),
])
def test_time_waited_in_cores_queue_comes_from_queue_time_in_ms(process_info, seconds):
    assert queue_seconds({"process_info": process_info}) == pytest.approx(seconds)


def test_progress_of_a_running_v4_scan_is_the_whole_job_progress():
    doc = make_report({"ClamAV": verdict(0)}, process_progress=80)
    assert progress_of(doc) == 80


# --- Antivirus ontology parts -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "category"), [
    (1, "malicious"), (4, "malicious"),
    (2, "suspicious"), (22, "suspicious"),
    (0, "undetected"),
    (3, "failure"), (10, "failure"), (12, "failure"), (15, "failure"), (19, "failure"), (42, "failure"),
    (23, "type-unsupported"),
])
def test_antivirus_part_category(code, category):
    doc = make_report({"ClamAV": verdict(code, "Eicar" if code in (1, 2, 4, 22) else "")})
    parts = build_result(doc, engine_map(), ResultOptions()).antivirus
    assert [part["category"] for part in parts] == [category]
    [loaded] = validate_antivirus_parts(parts)
    assert loaded.category == category


def test_antivirus_parts_of_a_mixed_report():
    doc = make_report({
        "ClamAV": verdict(1, "a variant of Eicar"),
        "Avira": verdict(0),
        "Sophos": verdict(3),
        "ESET": verdict(1, ""),
    })
    parts = build_result(doc, engine_map(), ResultOptions()).antivirus
    loaded = {part.engine_name: part for part in validate_antivirus_parts(parts)}
    assert set(loaded) == {"ClamAV", "Avira", "Sophos", "ESET"}
    assert loaded["ClamAV"].category == "malicious"
    assert loaded["ClamAV"].virus_name == "Eicar"
    assert loaded["ClamAV"].engine_version == "1.0.1"
    assert loaded["ClamAV"].engine_definition_version == "2024-03-11 11:08:00"
    assert loaded["Avira"].category == "undetected"
    assert loaded["Avira"].virus_name is None
    assert loaded["Sophos"].category == "failure"
    assert loaded["Sophos"].engine_version is None
    assert loaded["ESET"].category == "malicious"
    assert not loaded["ESET"].virus_name


# --- archive members, Core's times and progress -----------------------------------------------------------------------

TITLE_ARCHIVE = "Archive Members Flagged by AV Engines"


def with_members(members: list[dict]) -> dict:
    """A finished report of an archive whose children Core lists in `extracted_files.files_in_archive`."""
    doc = make_report({"ClamAV": verdict(1, "Eicar-Test-Signature")})
    doc["extracted_files"] = {"files_in_archive": members}
    return doc


def archive_lines(result) -> list[str]:
    return section(result, TITLE_ARCHIVE).body.splitlines()[1:]


def test_archive_members_flagged_by_their_verdict_or_an_engine_are_listed_with_path_verdict_and_engines():
    result = result_of(with_members([
        {"display_name": "docs/evil.exe", "scan_all_result_i": 1, "detected_by": 3, "scanned_with": 10},
        {"display_name": "macro.doc", "scan_all_result_i": 2},  # Suspicious: flagged by its verdict alone
        {"display_name": "drop.js", "scan_all_result_i": 1, "detected_by": 2},
        {"display_name": "odd.bin", "scan_all_result_i": 99, "detected_by": 1},  # a code Core does not document
        {"display_name": "clean.txt", "scan_all_result_i": 0, "detected_by": 0},
    ]))
    lines = archive_lines(result)
    assert len(lines) == 4
    evil, macro, drop, odd = lines
    assert all(told in evil for told in ("docs/evil.exe", "Infected", "3 of 10"))
    assert "macro.doc" in macro and "Suspicious" in macro
    assert "drop.js" in drop and "2 engines" in drop
    assert "odd.bin" in odd and "99" in odd and "1 engine" in odd and "1 engines" not in odd


@pytest.mark.parametrize(("flagged", "not_listed"), [(100, 0), (101, 1), (250, 150)])
def test_at_most_100_flagged_archive_members_are_listed_and_the_rest_counted(flagged, not_listed):
    members = [{"display_name": f"m{i}.exe", "scan_all_result_i": 1, "detected_by": 1} for i in range(flagged)]
    lines = archive_lines(result_of(with_members(members)))
    notes = [line for line in lines if not line.startswith("m")]
    assert len(lines) - len(notes) == 100
    assert len(notes) == (1 if not_listed else 0) and all(f"{not_listed} more" in note for note in notes)


@pytest.mark.parametrize(("processing_time", "seconds"), [(4804, 4.804), (0, 0.0), (-5, None), (None, None)])
def test_cores_processing_time_is_read_in_milliseconds(processing_time, seconds):
    info = {} if processing_time is None else {"processing_time": processing_time}
    assert md_report.scan_seconds({"process_info": info}) == seconds


def test_a_report_without_process_info_takes_its_progress_from_scan_results():
    # v3 Cores send process_info only when workflows are used.
    assert progress_of({"scan_results": {"progress_percentage": 40}}) == 40
    assert progress_of({"scan_results": {"progress_percentage": 150}}) == 100
