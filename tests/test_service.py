"""The whole service through Assemblyline's own task handling, with Core answered by requests-mock (no network)."""

import json
import logging
import os
import re
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from al_checks import run_task
from assemblyline.odm.models.ontology.results import Antivirus
from core_answers import finished_report, mock_core
from fakes import FakeClock, clock_of

from mdservice.engines import tool_version
from mdservice.report import TITLE_STALE
from mdservice.scan import Clock
from metadefender import MetaDefender, ServiceStartError

CORE = "http://core-1:8008/"
KEY = "k3y-that-must-never-leak"
ENGINES_V4 = [
    {"eng_name": "ClamAV", "eng_ver": "1.0.1", "engine_type": "av", "eng_type": "Bundled engine",
     "def_time": "2026-11-26T11:08:00.000Z", "active": True, "state": "production"},
    {"eng_name": "ESET", "eng_ver": "8.2", "engine_type": "av", "def_time": "2026-11-26T06:00:00.000Z",
     "active": True, "state": "production"},
    {"eng_name": "Archive", "eng_ver": "6.1", "engine_type": "archive", "def_time": "", "active": True,
     "state": "production"},
]
EICAR_DETAILS = {
    "ClamAV": {"scan_result_i": 1, "threat_found": "Eicar-Test-Signature"},
    "ESET": {"scan_result_i": 0, "threat_found": ""},
}


@pytest.fixture
def core(requests_mock):
    return mock_core(requests_mock, CORE, ENGINES_V4, finished_report(EICAR_DETAILS))


def started(config=None, clock: FakeClock | None = None):
    """A started service; on `clock` when given (else on the real clocks)."""
    service = MetaDefender({"base_url": CORE, **(config or {})})
    if clock:
        service.clock = clock_of(clock)
    service.start()
    return service


def titles(odm_result):
    return [(s.depth, s.title_text) for s in odm_result.result.sections]


def ontology_parts(doc, tmp_path) -> list[Antivirus]:
    """The Antivirus parts of the ontology file the task attached."""
    ontology_file = next(f for f in doc["response"]["supplementary"] if f["name"].endswith(".ontology"))
    ontology = json.load(open(os.path.join(str(tmp_path), "working_directory", os.listdir(
        os.path.join(str(tmp_path), "working_directory"))[0], ontology_file["name"].split("_", 1)[1])))
    return [Antivirus(part) for part in ontology["results"]["antivirus"]]


def test_eicar_result_validates_and_carries_context_and_ontology(core, sample, tmp_path):
    kind, result, doc = run_task(started(), sample, str(tmp_path), filename="eicar.com")
    assert kind == "result"
    assert titles(result)[:2] == [(0, "AV Detections as Infected or Suspicious"),
                                  (1, "ClamAV identified the file as Eicar-Test-Signature")]
    assert result.result.score == 1000
    assert doc["response"]["service_context"] == "Definition Time Range: 2026-11-26 06:00:00 - 2026-11-26 11:08:00"
    assert {(p.engine_name, p.category, p.virus_name) for p in ontology_parts(doc, tmp_path)} == {
        ("ClamAV", "malicious", "Eicar-Test-Signature"), ("ESET", "undetected", None)}
    upload = next(r for r in core.request_history if r.method == "POST")
    assert unquote(upload.headers["filename"]) == "eicar.com"


def test_clean_file_gives_an_empty_result(core, sample, tmp_path):
    core.get(CORE + "file/d1", json=finished_report({"ClamAV": {"scan_result_i": 0}, "ESET": {"scan_result_i": 0}}))
    kind, result, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "result" and result.result.sections == [] and result.result.score == 0


def test_polls_until_process_info_is_done_through_a_queued_document(core, sample, tmp_path):
    queued = {"data_id": "d1", "process_info": {"progress_percentage": 0, "result": "Processing"}}
    av_done_cdr_running = finished_report(EICAR_DETAILS)
    av_done_cdr_running["process_info"]["progress_percentage"] = 80
    core.get(CORE + "file/d1", [{"json": queued}, {"json": av_done_cdr_running},
                                {"json": finished_report(EICAR_DETAILS, actions_ran="Sanitized")}])
    kind, result, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "result"
    assert titles(result)[-1] == (0, "CDR Successfully Executed")
    assert [r.path for r in core.request_history if r.method == "GET"].count("/file/d1") == 3


@pytest.mark.parametrize("status, body, expected", [
    (403, {"err": "Access denied"}, "FAIL_NONRECOVERABLE"),
    (401, {"err": "Invalid API key"}, "FAIL_NONRECOVERABLE"),
    (500, {"err": "Failed to request scan. Try again later."}, "FAIL_RECOVERABLE"),
    (503, {"err": "Server is too busy. Try again later."}, "FAIL_RECOVERABLE"),
    (422, {"err": "File is empty."}, "FAIL_NONRECOVERABLE"),
    (200, "not json at all", "FAIL_RECOVERABLE"),
])
def test_upload_failures_give_the_named_error_class(core, sample, tmp_path, status, body, expected):
    if isinstance(body, dict):
        core.post(CORE + "file", status_code=status, json=body)
    else:
        core.post(CORE + "file", status_code=status, text=body)
    kind, error, _ = run_task(started({"api_key": KEY}), sample, str(tmp_path))
    assert kind == "error"
    assert error["response"]["status"] == expected
    assert KEY not in json.dumps(error)


@pytest.mark.parametrize("status, body", [(404, {"d1": "Not Found"}), (200, {"d1": "Not Found"}),
                                          (500, {"err": "boom"})])
def test_result_failures_are_recoverable_never_a_result(core, sample, tmp_path, status, body):
    core.get(CORE + "file/d1", status_code=status, json=body)
    kind, error, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "error" and error["response"]["status"] == "FAIL_RECOVERABLE"


def test_v3_core_with_path_in_base_url(requests_mock, sample, tmp_path):
    base = "http://old-core/metascan_rest/"
    requests_mock.get(base + "stat/engines", json=[
        {"eng_name": "ClamAV scan engine", "eng_ver": "0.99", "eng_type": "Bundled engine",
         "def_time": "03/11/2024 01:08:00 PM", "active": True}])
    requests_mock.post(base + "file", json={"data_id": "d1"})
    requests_mock.get(base + "file/d1", json={"data_id": "d1", "scan_results": {"progress_percentage": 100,
                      "scan_details": {"ClamAV": {"scan_result_i": 1, "threat_found": "Eicar-Test-Signature"}}}})
    service = MetaDefender({"base_url": " http://old-core/metascan_rest ", "md_version": 3})
    service.start()
    kind, result, doc = run_task(service, sample, str(tmp_path))
    assert kind == "result"
    hit = result.result.sections[1]
    assert json.loads(hit.body)["engine_definition_time"] == "2024-03-11 13:08:00"
    assert json.loads(hit.body)["engine_version"] == "0.99"
    assert not any("CDR" in s.title_text for s in result.result.sections)


def test_tool_version_follows_new_definitions_without_restart(core):
    clock = FakeClock()
    service = started({"engine_refresh_seconds": 60}, clock)
    before = service.get_tool_version()
    assert service.get_tool_version() == before
    newer = json.loads(json.dumps(ENGINES_V4))
    newer[1]["def_time"] = "2026-11-27T06:00:00.000Z"
    core.get(CORE + "stat/engines", json=newer)
    clock.sleep(30)
    assert service.get_tool_version() == before, "the engine list was re-read before engine_refresh_seconds"
    clock.sleep(31)
    assert service.get_tool_version() != before


def test_engine_list_is_not_fetched_per_file(core, sample, tmp_path):
    service = started()
    for _ in range(3):
        run_task(service, sample, str(tmp_path))
    assert [r.path for r in core.request_history].count("/stat/engines") == 1


def test_safelisted_virus_scores_zero_and_keyword_cannot_beat_it(core, sample, tmp_path, monkeypatch):
    class Safelist:
        def get_safelist(self, tag_types):
            assert tag_types == ["av.virus_name"]
            return {"match": {"av.virus_name": ["Eicar-Test-Signature"]}, "regex": {}}
    monkeypatch.setattr(MetaDefender, "get_api_interface", lambda self: Safelist())
    service = started({"av_config": {"kw_score_revision_map": {"eicar": 700}}})
    kind, result, _ = run_task(service, sample, str(tmp_path))
    assert result.result.sections[1].heuristic.score == 0


def test_failing_safelist_call_is_a_warning_not_a_crash(core, sample, tmp_path, monkeypatch, caplog):
    class Broken:
        def get_safelist(self, tag_types):
            raise ConnectionError("service server down")
    monkeypatch.setattr(MetaDefender, "get_api_interface", lambda self: Broken())
    with caplog.at_level(logging.WARNING):
        service = started()
    assert "safelist" in caplog.text
    kind, result, _ = run_task(service, sample, str(tmp_path))
    assert result.result.sections[1].heuristic.score == 1000


@pytest.mark.parametrize("config, key", [
    ({"base_url": 8008}, "base_url"), ({"base_url": ""}, "base_url"), ({"base_url": []}, "base_url"),
    ({"base_url": "ftp://core/"}, "base_url"), ({"md_version": 2}, "md_version"),
    ({"md_timeout": -1}, "md_timeout"), ({"max_md_scan_time": -5}, "max_md_scan_time"),
    ({"av_config": {"kw_score_revision_map": {"adware": "high"}}}, "kw_score_revision_map"),
    ({"av_config": {"sig_score_revision_map": {"X.Y": 1.5}}}, "sig_score_revision_map"),
    ({"verify_certificate": "/no/such/ca.pem"}, "verify_certificate"),
])
def test_bad_config_stops_the_service_at_start_naming_the_key(requests_mock, config, key):
    with pytest.raises(ServiceStartError, match=key):
        MetaDefender({"base_url": CORE, **config}).start()
    assert requests_mock.request_history == []


def assert_waits_for_a_core(service, sample, tmp_path, problem: str) -> dict:
    """A task fails as a recoverable error naming the Core, its problem and since when; nothing is uploaded."""
    kind, error, _ = run_task(service, sample, str(tmp_path))
    assert kind == "error" and error["response"]["status"] == "FAIL_RECOVERABLE"
    since = r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: "
    assert re.search(f"No MetaDefender Core can scan files {since}{re.escape(problem)}", error["response"]["message"])
    version = error["response"]["service_tool_version"]
    assert version.startswith("unavailable-") and version != tool_version([""])
    return error


def test_no_core_reachable_at_start_starts_and_scans_once_the_core_answers(requests_mock, sample, tmp_path,
                                                                           monkeypatch, caplog):
    monkeypatch.setattr("mdservice.nodes.BACKOFF_START", 0.0)  # the Core's next probe is due at once
    requests_mock.get(CORE + "stat/engines", status_code=503, json={"err": "busy"})
    clock = FakeClock()
    clock.sleep(90)  # the service starts at 12:01:30 on the fake clock's day
    with caplog.at_level(logging.WARNING):
        service = started(clock=clock)
    problem = "http://core-1:8008/ answered stat/engines with HTTP 503 (busy)"
    assert f"No MetaDefender Core can scan files since 2026-11-26 12:01:30 UTC: {problem}" in caplog.text
    assert_waits_for_a_core(service, sample, tmp_path, problem)
    assert not [r for r in requests_mock.request_history if r.method == "POST"]
    mock_core(requests_mock, CORE, ENGINES_V4, finished_report(EICAR_DETAILS))
    kind, result, doc = run_task(service, sample, str(tmp_path))
    assert kind == "result" and result.result.score == 1000
    assert doc["response"]["service_tool_version"] == tool_version([service.pool.nodes[0].engines.fingerprint()])


@pytest.mark.parametrize("listed", [
    [dict(e, state="permanently failed") for e in ENGINES_V4],
    [dict(e, active=False, state="disabled") if e["engine_type"] == "av" else e for e in ENGINES_V4],
], ids=["every engine failed", "only utility engines active"])
def test_no_active_antivirus_engine_at_start_starts_and_scans_once_one_is(requests_mock, sample, tmp_path, listed):
    requests_mock.get(CORE + "stat/engines", json=listed)
    service = started()
    first = assert_waits_for_a_core(service, sample, tmp_path, "http://core-1:8008/ has no active antivirus engine")
    assert_waits_for_a_core(service, sample, tmp_path, "http://core-1:8008/ has no active antivirus engine")
    mock_core(requests_mock, CORE, ENGINES_V4, finished_report(EICAR_DETAILS))
    kind, result, _ = run_task(service, sample, str(tmp_path))
    assert kind == "result" and result.result.score == 1000
    assert "since" in first["response"]["message"]


def test_service_starts_when_its_only_antivirus_engine_is_also_listed_as_an_inactive_package(requests_mock):
    windows_copy = dict(ENGINES_V4[0], eng_name="Clamav", eng_ver="1462 (20150625)", def_time="", active=False,
                        state="downloaded")
    requests_mock.get(CORE + "stat/engines", json=[ENGINES_V4[0], windows_copy])
    assert started().pool.nodes[0].engines.active_av_count == 1


def test_api_key_refused_by_every_core_still_stops_the_start(requests_mock):
    requests_mock.get(CORE + "stat/engines", status_code=401, json={"err": "Invalid API key"})
    with pytest.raises(ServiceStartError, match="API key was refused; set api_key"):
        started({"api_key": KEY})


def test_one_core_down_at_start_is_tolerated(core):
    core.get("http://core-2:8008/stat/engines", status_code=500, json={"err": "Error querying engine list"})
    service = MetaDefender({"base_url": [CORE, "http://core-2:8008"]})
    service.start()
    assert [n.engines is not None for n in service.pool.nodes] == [True, False]


def test_old_random_switching_keys_are_ignored(core, sample, tmp_path):
    """service-behaviour.md: an old config that still carries min_node_time / max_node_time must not break anything."""
    kind, result, _ = run_task(started({"min_node_time": 60, "max_node_time": 300}), sample, str(tmp_path))
    assert kind == "result" and result.result.score == 1000
    assert titles(result)[:2] == [(0, "AV Detections as Infected or Suspicious"),
                                  (1, "ClamAV identified the file as Eicar-Test-Signature")]


def test_rule_and_archive_password_are_sent(core, sample, tmp_path):
    run_task(started({"rule": "multiscan only"}), sample, str(tmp_path), params={"archive_password": "infected"})
    upload = next(r for r in core.request_history if r.method == "POST")
    assert unquote(upload.headers["rule"]) == "multiscan only"
    assert unquote(upload.headers["archivepwd"]) == "infected"


@pytest.mark.parametrize("text", ["Callback url is invalid.", "Invalid apikey", "Failed to request scan. Unknown "
                                                                                "rule: multiscan"])
def test_a_400_to_the_upload_that_names_what_the_admin_must_fix_is_nonrecoverable(core, sample, tmp_path, text):
    core.post(CORE + "file", status_code=400, json={"err": text})
    kind, error, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "error" and error["response"]["status"] == "FAIL_NONRECOVERABLE"
    assert f"HTTP 400 ({text})" in error["response"]["message"]


@pytest.mark.parametrize("answer", [{"err": "Insufficient disk space"}, {}])
def test_any_other_400_to_the_upload_is_recoverable(core, sample, tmp_path, answer):
    core.post(CORE + "file", status_code=400, json=answer)
    kind, error, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "error" and error["response"]["status"] == "FAIL_RECOVERABLE"
    assert "HTTP 400" in error["response"]["message"]


@pytest.mark.parametrize(("status", "answer", "headers"), [
    (503, {"err": "Rate limit exceeded"}, {"Retry-After": "0.2"}),
    (429, {"err": "Too many requests"}, {}),  # no Retry-After: asked again after 1 s
])
def test_a_poll_limited_by_core_is_sent_again_and_the_file_scanned(core, sample, tmp_path, status, answer, headers):
    core.get(CORE + "file/d1", [{"status_code": status, "json": answer, "headers": headers},
                                {"json": finished_report(EICAR_DETAILS)}])
    service = started()
    kind, result, _ = run_task(service, sample, str(tmp_path))
    assert kind == "result", result
    assert len([r for r in core.request_history if r.path == "/file/d1"]) == 2  # the limited poll, then the report
    assert not service.pool.nodes[0].failed


def test_sanitized_file_is_attached_when_asked(core, sample, tmp_path):
    core.get(CORE + "file/d1", json=finished_report(EICAR_DETAILS, actions_ran="Sanitized"))
    core.get(CORE + "file/converted/d1", content=b"sanitized bytes")
    kind, result, doc = run_task(started({"fetch_sanitized_file": True}), sample, str(tmp_path), filename="a.docx")
    assert [f["name"] for f in doc["response"]["supplementary"] if f["name"].endswith(".sanitized")] == [
        "a.docx.sanitized"]


def test_sanitized_download_failure_is_a_note_not_a_failed_task(core, sample, tmp_path):
    core.get(CORE + "file/d1", json=finished_report(EICAR_DETAILS, actions_ran="Sanitized"))
    core.get(CORE + "file/converted/d1", status_code=404, json={"err": "File could not be found"})
    kind, result, _ = run_task(started({"fetch_sanitized_file": True}), sample, str(tmp_path))
    assert kind == "result"
    assert titles(result)[-2:] == [(0, "CDR Successfully Executed"), (1, "Sanitized file could not be downloaded")]


def test_sanitized_file_not_fetched_by_default(core, sample, tmp_path):
    core.get(CORE + "file/d1", json=finished_report(EICAR_DETAILS, actions_ran="Sanitized"))
    run_task(started(), sample, str(tmp_path))
    assert not any("converted" in r.path for r in core.request_history)


def on_day(service: MetaDefender, day: datetime) -> MetaDefender:
    """`service` with its wall clock fixed at `day` (its deadlines still on the real monotonic clock)."""
    service.clock = Clock(wall=lambda: day)
    return service


def test_stale_definitions_listed_only_when_asked(core, sample, tmp_path):
    old = json.loads(json.dumps(ENGINES_V4))
    old[1]["def_time"] = "2020-01-01T00:00:00.000Z"
    core.get(CORE + "stat/engines", json=old)
    # Not asked for: nothing listed, even a year after every definition.
    kind, result, _ = run_task(on_day(started(), datetime(2027, 12, 7, tzinfo=UTC)), sample, str(tmp_path))
    assert TITLE_STALE not in [t for _, t in titles(result)]
    # Asked for (7 days), a day after ClamAV's definitions of 2026-11-26: only ESET's of 2020 are listed.
    kind, result, _ = run_task(on_day(started({"stale_definition_days": 7}), datetime(2026, 11, 27, tzinfo=UTC)),
                               sample, str(tmp_path))
    stale = next(s for s in result.result.sections if s.title_text == TITLE_STALE)
    assert "ESET: 2020-01-01 00:00:00" in stale.body and "ClamAV" not in stale.body


def test_api_key_never_logged(core, sample, tmp_path, caplog, capfd):
    """A Core that echoes the key in an error text, a report's fields and an engine name: the service's logs, its task
    error and its result show each echo masked, never the key."""
    echoing_engine = {"eng_name": f"Engine-{KEY}", "eng_ver": "2", "engine_type": "av", "active": True,
                      "state": "production", "def_time": "2020-01-01T00:00:00.000Z"}
    core.get(CORE + "stat/engines", json=[*ENGINES_V4, echoing_engine])
    core.post(CORE + "file", [{"status_code": 500, "json": {"err": f"scan refused for apikey {KEY}"}},
                              {"json": {"data_id": "d1"}}])
    core.get(CORE + "file/d1", json=report_with_process_info(
        {"ClamAV": {"scan_result_i": 1, "threat_found": f"Trojan.{KEY}"},
         f"Engine-{KEY}": {"scan_result_i": 2, "threat_found": "Suspicious"}}, blocked_reason=f"key {KEY} blocked"))
    with caplog.at_level(logging.DEBUG):
        service = on_day(started({"api_key": KEY, "stale_definition_days": 7}), datetime(2026, 11, 27, tzinfo=UTC))
        _, error, _ = run_task(service, sample, str(tmp_path / "first"))
        kind, result, doc = run_task(service, sample, str(tmp_path / "second"))
    out, err = capfd.readouterr()
    logged = "\n".join([caplog.text, out, err])
    assert "HTTP 500 (scan refused for apikey ***)" in error["response"]["message"]
    assert "scan refused for apikey ***" in logged, "the task's error was not logged"
    assert kind == "result"
    shown = [s.title_text for s in result.result.sections]
    assert "ClamAV identified the file as Trojan.***" in shown
    assert "Engine-*** identified the file as Suspicious" in shown
    summary = next(s for s in result.result.sections if s.title_text == "2/2 engines flagged the file")
    assert json.loads(summary.body)["core_blocked_reason"] == "key *** blocked"
    stale = next(s for s in result.result.sections if s.title_text == TITLE_STALE)
    assert "Engine-***: 2020-01-01 00:00:00" in stale.body
    assert KEY not in logged + json.dumps(error) + json.dumps(doc)


def report_with_process_info(details: dict, **process_info) -> dict:
    report = finished_report(details)
    report["process_info"].update(process_info)
    return report


def test_outdated_data_is_shown_and_the_hits_still_score(core, sample, tmp_path):
    core.get(CORE + "file/d1", json=report_with_process_info(
        EICAR_DETAILS,
        outdated_data=["enginedefinitions", "configuration", "sanitization", "new\x00kind\ud800", 7, ""]))
    kind, result, _ = run_task(started(), sample, str(tmp_path))
    assert result.result.score == 1000
    outdated = next(s for s in result.result.sections if s.title_text == "Verdict Used Outdated Data")
    assert outdated.depth == 0 and outdated.heuristic is None
    assert outdated.body.splitlines() == [
        "MetaDefender Core says this verdict was reached with outdated data, so a new scan may give another verdict:",
        "- antivirus engine definitions (an engine that scanned the file has newer ones now)",
        "- configuration (the scan rule, or something it uses, changed since the file was scanned)",
        "- sanitization (the sanitized file of that scan may no longer be available)",
        "- newkind\ufffd"]


@pytest.mark.parametrize("outdated", [[], None, "enginedefinitions", [None, 3]])
def test_no_outdated_section_without_a_readable_list(core, sample, tmp_path, outdated):
    core.get(CORE + "file/d1", json=report_with_process_info(EICAR_DETAILS, outdated_data=outdated))
    kind, result, _ = run_task(started(), sample, str(tmp_path))
    assert "Verdict Used Outdated Data" not in [t for _, t in titles(result)]


def test_core_verdict_is_in_the_summary_body_only_where_readable(core, sample, tmp_path):
    core.get(CORE + "file/d1", json=report_with_process_info(
        EICAR_DETAILS, result="Blocked", blocked_reason="Infected", verdicts=["Infected", "Infected", 5],
        blocked_reasons="not a list"))
    kind, result, _ = run_task(started(), sample, str(tmp_path))
    summary = next(s for s in result.result.sections if s.title_text == "1/2 engines flagged the file")
    assert json.loads(summary.body) == {"engines_flagged": 1, "engines_with_verdict": 2, "engines_failed": 0,
                                        "core_result": "Blocked", "core_blocked_reason": "Infected",
                                        "core_verdicts": ["Infected"]}
    hit = next(s for s in result.result.sections if s.title_text.startswith("ClamAV identified"))
    assert list(json.loads(hit.body)) == ["av_name", "virus_name", "scan_result", "engine_version",
                                          "engine_definition_time"]


def test_cores_own_texts_in_the_summary_keep_200_characters_and_its_lists_10_entries(core, sample, tmp_path):
    core.get(CORE + "file/d1", json=report_with_process_info(
        EICAR_DETAILS, result="B" * 200, blocked_reason="R" * 201, verdicts=[f"Verdict {i}" for i in range(15)],
        blocked_reasons=["Q" * 300, *(f"Reason {i}" for i in range(14))]))
    kind, result, _ = run_task(started(), sample, str(tmp_path))
    summary = next(s for s in result.result.sections if s.title_text == "1/2 engines flagged the file")
    body = json.loads(summary.body)
    assert body["core_result"] == "B" * 200
    assert body["core_blocked_reason"] == "R" * 200 + "..."
    assert body["core_verdicts"] == [f"Verdict {i}" for i in range(10)]
    assert body["core_blocked_reasons"] == ["Q" * 200 + "...", *(f"Reason {i}" for i in range(9))]


def test_failed_engine_error_text_is_never_a_virus_name(core, sample, tmp_path):
    error_text = "Engine error: license expired"
    core.get(CORE + "file/d1", json=finished_report({
        "ClamAV": {"scan_result_i": 1, "threat_found": "Eicar-Test-Signature"},
        "ESET": {"scan_result_i": 3, "threat_found": error_text}}))
    kind, result, doc = run_task(started(), sample, str(tmp_path))
    failure = next(s for s in result.result.sections if s.title_text == "ESET failed to scan the file")
    assert failure.body == "Engine: 8.2 :: Definition: 2026-11-26 06:00:00"
    assert error_text not in json.dumps(doc)
    assert {(p.engine_name, p.category, p.virus_name) for p in ontology_parts(doc, tmp_path)} == {
        ("ClamAV", "malicious", "Eicar-Test-Signature"), ("ESET", "failure", None)}


def test_every_engine_failed_with_error_texts_gives_no_virus_name(core, sample, tmp_path):
    core.get(CORE + "file/d1", json=finished_report({
        "ClamAV": {"scan_result_i": 3, "threat_found": "scan timeout"},
        "ESET": {"scan_result_i": 3, "threat_found": "Engine error"}}))
    kind, result, doc = run_task(started(), sample, str(tmp_path))
    assert titles(result)[0] == (0, "No AV Engine Gave a Verdict")
    assert "scan timeout" not in json.dumps(doc) and "Engine error" not in json.dumps(doc)
    assert result.result.score == 0
    assert [p.virus_name for p in ontology_parts(doc, tmp_path)] == [None, None]
