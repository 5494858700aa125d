"""The API key (and any password in base_url) never shows: not in logs, error messages, results or service context.

Each test runs the whole service with a key set through one failure path, capturing everything: every log record at
DEBUG on the root logger, everything written to stdout / stderr (Assemblyline's own log handler), the start error,
and every file the framework writes for the task (result JSON, error JSON, ontology).
"""

from __future__ import annotations

import base64
import json
import logging
import pathlib

import pytest
import requests
from al_checks import run_task
from core_answers import CLAMAV_EICAR, CLAMAV_ONLY, finished_report, mock_core

from mdservice.client import CoreClient, CoreError, mask_key, redact_url
from metadefender import MetaDefender, ServiceStartError

CORE = "http://core-1:8008/"
KEY = "Zq7-secret-apikey-5f3e9c1d"
PASSWORD = "url-pa55word-8c1"
ENGINES = CLAMAV_ONLY
FINISHED = finished_report(CLAMAV_EICAR, actions_ran="Sanitized")
REFUSED = requests.exceptions.ConnectionError(
    f"HTTPConnectionPool(host='core-1', port=8008): Max retries exceeded with url: /file?apikey={KEY} "
    "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))")
ECHO = {"err": f"Invalid apikey: {KEY}"}  # a Core or proxy that echoes the header it refused

# (what Core does, text that must show somewhere so the capture is known to have seen the failure)
TASK_FAILURES = {
    "401 echoing the key": (("POST", "file", {"status_code": 401, "json": ECHO}), "HTTP 401"),
    "403": (("POST", "file", {"status_code": 403, "json": {"err": "Access denied"}}), "HTTP 403"),
    "404 on the report": (("GET", "file/d1", {"status_code": 404, "json": {"err": f"{KEY} not found"}}), "lost"),
    "500 echoing the key": (("POST", "file", {"status_code": 500, "json": ECHO}), "HTTP 500"),
    "503": (("POST", "file", {"status_code": 503, "json": {"err": "Server is too busy"}}), "HTTP 503"),
    "non-JSON echoing the key": (("GET", "file/d1", {"text": f"<html>apikey={KEY}</html>"}), "not JSON"),
    "connection refused": (("POST", "file", {"exc": REFUSED}), "connection refused"),
    "timeout": (("GET", "file/d1", {"exc": requests.exceptions.ReadTimeout(f"read timed out apikey={KEY}")}),
                "did not answer"),
    "redirect": (("POST", "file", {"status_code": 302, "headers": {"Location": f"http://x/?apikey={KEY}"}}),
                 "redirect"),
    "lost data id": (("GET", "file/d1", {"json": {"d1": "Not Found"}}), "lost the scan"),
    "sanitized download refused": (("GET", "file/converted/d1", {"status_code": 401, "json": ECHO}), "HTTP 401"),
}


@pytest.fixture
def core(requests_mock):
    mock_core(requests_mock, CORE, ENGINES, FINISHED)
    requests_mock.get(CORE + "file/converted/d1", content=b"clean")
    return requests_mock


def logged(caplog) -> str:
    """Every log record, except the test double's own: requests-mock logs each full request URL at DEBUG, where
    the real transport (urllib3) logs only host and path."""
    return "\n".join(f"{r.levelname} {r.name} {r.getMessage()}" for r in caplog.records
                     if not r.name.startswith("requests_mock"))


@pytest.fixture
def everything(caplog, capfd, tmp_path):
    """A function returning all text the run produced: logs, stdout/stderr and every file under tmp_path."""
    caplog.set_level(logging.DEBUG)

    def collect(*extra: str) -> str:
        out, err = capfd.readouterr()
        files = [p.read_text(errors="replace") for p in pathlib.Path(tmp_path).rglob("*") if p.is_file()]
        return "\n".join([logged(caplog), out, err, *files, *extra])
    return collect


@pytest.mark.parametrize("failure", TASK_FAILURES, ids=list(TASK_FAILURES))
def test_api_key_never_shows_through_any_task_failure(core, sample, tmp_path, everything, failure):
    (method, path, answer), visible = TASK_FAILURES[failure]
    core.register_uri(method, CORE + path, **answer)
    service = MetaDefender({"base_url": CORE, "api_key": KEY, "fetch_sanitized_file": True})
    service.start()
    kind, doc, raw = run_task(service, sample, str(tmp_path))
    text = everything(repr(doc), repr(raw), str(service.pool.nodes[0].health.last_error))
    assert visible in text, "the failure did not reach the captured output"
    assert KEY not in text
    assert all(r.headers.get("apikey") == KEY for r in core.request_history), "the key must still be sent to Core"


@pytest.mark.parametrize("answer, visible", [
    ({"status_code": 401, "json": ECHO}, "API key was refused"),
    ({"status_code": 403, "json": ECHO}, "API key was refused"),
    ({"status_code": 301, "headers": {"Location": f"http://x/{KEY}"}}, "redirect"),
])
def test_api_key_never_shows_when_start_fails(requests_mock, everything, answer, visible):
    requests_mock.get(CORE + "stat/engines", **answer)
    with pytest.raises(ServiceStartError) as caught:
        MetaDefender({"base_url": CORE, "api_key": KEY}).start()
    text = everything(str(caught.value), repr(caught.value.args))
    assert visible in str(caught.value)
    assert KEY not in text


@pytest.mark.parametrize("answer, visible", [
    ({"exc": REFUSED}, "connection refused"),
    ({"exc": requests.exceptions.ConnectTimeout(f"timed out {KEY}")}, "did not answer"),
    ({"text": f"{KEY} is not allowed here"}, "not JSON"),
    ({"status_code": 500, "json": ECHO}, "HTTP 500 (Invalid apikey: ***)"),
])
def test_api_key_never_shows_when_no_core_answers_at_start(requests_mock, sample, tmp_path, everything, answer,
                                                          visible):
    requests_mock.get(CORE + "stat/engines", **answer)
    service = MetaDefender({"base_url": CORE, "api_key": KEY})
    service.start()
    kind, doc, _ = run_task(service, sample, str(tmp_path))
    text = everything(repr(doc))
    assert kind == "error" and visible in doc["response"]["message"]
    assert KEY not in text


def test_data_id_holding_the_key_is_refused_never_shown(core, sample, tmp_path, everything):
    core.post(CORE + "file", json={"data_id": KEY})
    service = MetaDefender({"base_url": CORE, "api_key": KEY})
    service.start()
    kind, doc, _ = run_task(service, sample, str(tmp_path))
    assert kind == "error" and "data_id that holds part of the API key" in doc["response"]["message"]
    assert not holds_key_piece(everything(repr(doc)))
    assert not [r for r in core.request_history if holds_key_piece(r.path)]


def holds_key_piece(text: str) -> bool:
    return any(KEY[i:i + 8] in text for i in range(len(KEY) - 7))


def test_report_echoing_the_key_is_masked_in_task_error_and_logs(core, sample, tmp_path, everything, caplog):
    core.get(CORE + "file/d1", json=dict(FINISHED, data_id=f"x{KEY[3:]}"))  # another file's report, Core says
    service = MetaDefender({"base_url": CORE, "api_key": KEY})
    service.start()
    kind, doc, _ = run_task(service, sample, str(tmp_path))
    assert kind == "error" and "another file's report" in doc["response"]["message"]
    assert "another file's report" in logged(caplog)
    assert not holds_key_piece(everything(repr(doc)))


def test_key_echoed_in_virus_names_error_texts_and_verdicts_is_masked_in_the_result(core, sample, tmp_path,
                                                                                     everything):
    report = finished_report({"ClamAV": {"scan_result_i": 1, "threat_found": f"Trojan.{KEY}"},
                              "ESET": {"scan_result_i": 3, "threat_found": f"bad key {KEY}"},
                              f"Engine-{KEY[:10]}": {"scan_result_i": 2, "threat_found": "Suspicious"}})
    report["process_info"].update(blocked_reason=KEY, verdicts=[f"{KEY[2:12]} found"], outdated_data=[KEY[1:]])
    core.get(CORE + "file/d1", json=report)
    service = MetaDefender({"base_url": CORE, "api_key": KEY})
    service.start()
    kind, result, raw = run_task(service, sample, str(tmp_path))
    assert kind == "result" and "ClamAV identified the file as Trojan.***" in [s.title_text for s in
                                                                               result.result.sections]
    summary = next(s for s in result.result.sections if s.title_text.endswith("engines flagged the file"))
    assert json.loads(summary.body)["core_verdicts"] == ["*** found"]
    assert not holds_key_piece(everything(repr(raw)))


def test_result_and_service_context_of_a_good_scan_hold_no_key(core, sample, tmp_path, everything):
    service = MetaDefender({"base_url": CORE, "api_key": KEY, "fetch_sanitized_file": True})
    service.start()
    kind, result, raw = run_task(service, sample, str(tmp_path))
    assert kind == "result"
    assert raw["response"]["service_context"].startswith("Definition Time Range:")
    assert KEY not in everything(repr(raw), service.get_tool_version())


def test_password_in_base_url_never_shows(requests_mock, sample, tmp_path, everything):
    base = f"http://admin:{PASSWORD}@core-1:8008/"
    requests_mock.get(base + "stat/engines", json=ENGINES)
    requests_mock.post(base + "file", status_code=503, json={"err": "busy"})
    service = MetaDefender({"base_url": base})
    service.start()
    kind, doc, _ = run_task(service, sample, str(tmp_path))
    text = everything(repr(doc), service.pool.nodes[0].name)
    assert kind == "error" and "http://***@core-1:8008/" in text
    assert PASSWORD not in text
    expected = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert all(r.headers["Authorization"] == expected for r in requests_mock.request_history)


@pytest.mark.parametrize("base_url", [
    f"ftp://admin:{PASSWORD}@core-1/",
    f"admin:{PASSWORD}@core-1:8008",
    f"http://admin:{PASSWORD}@core-1:notaport/",
    f"http://admin:{PASSWORD}@/",
    [CORE, f"gopher://u:{PASSWORD}@core-2/"],
])
def test_password_in_a_rejected_base_url_is_redacted_in_the_error(requests_mock, base_url):
    with pytest.raises(ServiceStartError, match="base_url") as caught:
        MetaDefender({"base_url": base_url}).start()
    assert PASSWORD not in str(caught.value)
    assert requests_mock.request_history == []


@pytest.mark.parametrize("url, shown", [
    ("http://user:pass@host/", "http://***@host/"),
    ("https://u:p@ss@core:8443/metascan_rest/", "https://***@core:8443/metascan_rest/"),
    ("http://core-1:8008/a@b", "http://core-1:8008/a@b"),
    ("http://:secret@core?x=@y", "http://***@core?x=@y"),
    ("user:pass@core:8008", "***@core:8008"),
    ("http://core-1:8008/", "http://core-1:8008/"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_core_echoing_the_key_in_its_error_text_is_masked(requests_mock):
    requests_mock.get(CORE + "stat/engines", status_code=401, json=ECHO)
    with pytest.raises(CoreError) as caught:
        CoreClient(CORE, api_key=KEY).get_engines()
    assert "Invalid apikey: ***" in str(caught.value)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("text, masked", [
    ("Invalid apikey: k9; set api_key", "Invalid apikey: ***; set api_key"),
    ("/file/k9/cancel k99 xk9", "/file/***/cancel k99 xk9"),
])
def test_a_key_shorter_than_a_piece_is_masked_where_it_stands_alone(text, masked):
    assert mask_key(text, "k9") == masked
