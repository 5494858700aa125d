"""Broken Cores and proxies at the socket level (`HostileCore`), through Assemblyline's own task handling.

The promise checked everywhere: a task ends by its deadline (the service timeout), with a result or with
Assemblyline's RecoverableError / NonRecoverableError, whatever the network sends; a healthy Core beside
the bad one still gets the file; disk and memory stay bounded; no piece of the API key shows.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import time

import pytest
from al_checks import run_task
from hostile_core import (
    CHUNKED_HEADERS,
    HostileCore,
    answer,
    chunked,
    cut,
    endless,
    finished_report,
    gzip_bomb,
    http_answer,
    json_answer,
    reset,
    stall,
    thousands_of_hits,
    tiny_containers,
    trickle,
    with_interim,
    zeros_forever,
)
from timing import assert_ended_in_time

from mdservice.client import CoreClient, CoreError
from mdservice.report import TITLE_HITS
from metadefender import MetaDefender, ServiceStartError

TIMEOUT = 10
KEY = "Zq7Xw2Lp9Rt4Vn6Bc8Hd3Kf5Mj1Gs0Ay"
UPLOAD, REPORT, ENGINES, CONVERTED = "POST file", "GET file/[0-9a-z]+", "GET stat/engines", "GET file/converted/.*"
CUT_ERROR = b'HTTP/1.1 500 Oops\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n{"err": "Fail'
CUT_BODY = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"data_id": "d'


def started(*cores, timeout: int = TIMEOUT, **config) -> MetaDefender:
    """The service on these Cores, the first one first in rotation, with the service timeout at `timeout`. Files go
    round the Cores in turn (no take-over, `reuse_scan_minutes` 0, unless `config` says otherwise)."""
    service = MetaDefender({"base_url": [core.url for core in cores], "api_key": KEY, "reuse_scan_minutes": 0,
                            **config})
    service.service_attributes.timeout = timeout
    service.start()
    service.pool.cursor = 0
    return service


def timed_task(service, sample, tmp_path, **kwargs):
    began = time.monotonic()
    outcome = run_task(service, sample, str(tmp_path / "task"), **kwargs)
    return outcome, time.monotonic() - began


def error_of(doc: dict) -> tuple[str, str]:
    return doc["response"]["status"], doc["response"]["message"]


def key_pieces(text: str) -> list[str]:
    """Every 8-character piece of the API key found in `text`."""
    return [KEY[i:i + 8] for i in range(len(KEY) - 7) if KEY[i:i + 8] in text]


@pytest.fixture
def good():
    with HostileCore() as core:
        yield core


# --- items 1, 2, 6, 10, 14: whatever one Core sends, the healthy one gets the file in time --------------------------

BAD_ANSWERS = {
    "upload answer trickled": (UPLOAD, trickle()),
    "report trickled": (REPORT, trickle()),
    "headers stall": (UPLOAD, stall(b"HTTP/1.1 200 OK\r\nContent-")),
    "report body stalls": (REPORT, stall(CUT_BODY)),
    "report body cut short": (REPORT, cut(CUT_BODY)),
    "error body cut short": (UPLOAD, cut(CUT_ERROR)),
    "error body stalls": (UPLOAD, stall(CUT_ERROR)),
    "error body trickled": (UPLOAD, trickle(CUT_ERROR + b' "}' + b" " * 300)),
    "error body with bad gzip": (UPLOAD, answer(http_answer(500, b"\x1f\x8b not gzip", {"Content-Encoding": "gzip"}))),
    "error body with broken chunking": (UPLOAD, answer(b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n"
                                                       b"ZZ\r\nbroken\r\n")),
    "report with broken chunking": (REPORT, answer(CHUNKED_HEADERS + b"5\r\n{\"dat\r\nQQ\r\n")),
    "connection reset": (UPLOAD, reset()),
    "reset inside an error body": (UPLOAD, reset(CUT_ERROR)),
    "gzip report": (REPORT, answer(lambda r, c: http_answer(200, gzip.compress(json.dumps(finished_report(
        r.path[5:])).encode()), {"Content-Type": "application/json", "Content-Encoding": "gzip"}))),
    "gzip bomb report": (REPORT, answer(http_answer(200, gzip_bomb(64, layers=2), {
        "Content-Type": "application/json", "Content-Encoding": "gzip, gzip"}))),
    "endless report": (REPORT, endless(CHUNKED_HEADERS, lambda: chunked(zeros_forever()))),
    "32 MiB of tiny JSON containers": (REPORT, endless(CHUNKED_HEADERS, lambda: chunked(tiny_containers(32 * 2**20)))),
    "data id with a path": (UPLOAD, answer(json_answer(200, {"data_id": "../../stat/engines"}))),
    "data id of 65 characters": (UPLOAD, answer(json_answer(200, {"data_id": "a" * 65}))),
}


@pytest.mark.parametrize("route, act", BAD_ANSWERS.values(), ids=list(BAD_ANSWERS))
def test_a_broken_core_fails_over_to_the_healthy_one_within_the_deadline(good, sample, tmp_path, route, act):
    with HostileCore({route: act}) as bad:
        service = started(bad, good)
        (kind, result, _), elapsed = timed_task(service, sample, tmp_path)
        service.stop()
    assert_ended_in_time(elapsed, TIMEOUT)
    upload, *after = bad.paths("POST")
    assert upload == "file", "the broken Core was not tried first"
    assert [path.endswith("/cancel") for path in after] == ([True] if route == REPORT else []), \
        "a scan abandoned on the broken Core was not canceled there"
    assert kind == "result" and good.uploads == 1
    assert result.result.sections[0].title_text == TITLE_HITS
    assert service.pool.nodes[0].failed, "the broken Core was not put aside"


@pytest.mark.parametrize("name", ["error body cut short", "error body stalls", "error body with bad gzip",
                                  "error body with broken chunking", "reset inside an error body",
                                  "upload answer trickled"])
def test_a_broken_engine_list_beside_a_healthy_core_does_not_stop_the_start(good, name):
    _, act = BAD_ANSWERS[name]
    with HostileCore({ENGINES: act}) as bad:
        began = time.monotonic()
        service = started(bad, good, md_timeout=3)
        elapsed = time.monotonic() - began
        service.stop()
    assert_ended_in_time(elapsed, 3, "the start with md_timeout 3")
    assert [node.failed for node in service.pool.nodes] == [True, False]


@pytest.mark.parametrize("timeout", [TIMEOUT, 60])
def test_a_lone_trickling_core_ends_the_task_by_its_deadline_as_retryable(sample, tmp_path, timeout):
    with HostileCore({REPORT: trickle(interval=0.3)}) as bad:
        service = started(bad, timeout=timeout)
        (kind, error, _), elapsed = timed_task(service, sample, tmp_path)
        service.stop()
    assert_ended_in_time(elapsed, timeout)
    assert kind == "error"
    status, message = error_of(error)
    assert status == "FAIL_RECOVERABLE" and "did not answer GET file/" in message


@pytest.mark.parametrize("status", [102, 103])
def test_interim_answers_are_skipped_on_every_endpoint(sample, tmp_path, status):
    routes = {route: with_interim(status) for route in (ENGINES, UPLOAD, REPORT)}
    with HostileCore(routes) as core:
        service = started(core)
        (kind, result, _), _ = timed_task(service, sample, tmp_path)
    assert kind == "result" and result.result.sections[0].title_text == TITLE_HITS


def test_hostile_data_ids_are_never_echoed(sample, tmp_path):
    with HostileCore({UPLOAD: answer(json_answer(200, {"data_id": "<script>alert(1)</script>/.."}))}) as bad:
        (kind, error, _), _ = timed_task(started(bad), sample, tmp_path)
    status, message = error_of(error)
    assert status == "FAIL_RECOVERABLE" and "gave no usable data_id" in message
    polls = [path for path in bad.paths("GET") if path.startswith("file/") and path != "file/rules"]
    assert "<script>" not in message and not polls


# --- item 9: TLS --------------------------------------------------------------------------------------------------

@pytest.fixture
def tls_context(tmp_path):
    from mdcore_emulator.tls import make_certificates, server_context

    return server_context(make_certificates(tmp_path / "tls", "127.0.0.1"))


def test_a_handshake_cut_by_a_load_balancer_is_a_transient_core_failure(sample, tmp_path, tls_context):
    with HostileCore(tls=tls_context) as core:
        service = started(core, verify_certificate=False)
        core.cut_handshakes = True
        core.drop_connections()
        (kind, error, _), elapsed = timed_task(service, sample, tmp_path)
    status, message = error_of(error)
    assert status == "FAIL_RECOVERABLE", message
    assert "verify_certificate" not in message
    assert_ended_in_time(elapsed, TIMEOUT)


def test_a_certificate_that_fails_verification_is_still_permanent(tls_context):
    with HostileCore(tls=tls_context) as core, pytest.raises(CoreError, match="verify_certificate") as caught:
        CoreClient(core.url, verify=True).get_engines()
    assert caught.value.permanent


# --- items 5: the sanitized file ------------------------------------------------------------------------------

def slow_pieces():
    while True:
        time.sleep(0.1)
        yield b"0123456789"


CDR_REPORT = {"report": lambda data_id: finished_report(data_id, actions_ran="Sanitized")}
SANITIZED_FAILURES = {
    "endless stream": (endless(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n", lambda: chunked(zeros_forever())),
                       "more than 1 MiB"),
    "gzip bomb": (answer(http_answer(200, gzip_bomb(100), {"Content-Encoding": "gzip"})), "compressed"),
    "gzip twice": (answer(http_answer(200, gzip_bomb(8, layers=2), {"Content-Encoding": "gzip, gzip"})),
                   "compressed"),
    "stream broken off": (cut(b"HTTP/1.1 200 OK\r\nContent-Length: 900000\r\n\r\n" + b"\0" * 70000), "broke off"),
    "trickle": (trickle(http_answer(200, b"x" * 5000, {"Content-Type": "application/octet-stream"}), 0.2),
                "did not answer GET file/converted/"),
    # Without a length the body ends where the connection does: the cut at the deadline must not pass for the end.
    "trickle without a length": (endless(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", slow_pieces),
                                 "did not answer GET file/converted/"),
}


def cdr_notes(result) -> list[str]:
    return [s.body for s in result.result.sections if s.title_text == "Sanitized file could not be downloaded"]


@pytest.mark.parametrize("act, problem", SANITIZED_FAILURES.values(), ids=list(SANITIZED_FAILURES))
def test_a_failed_sanitized_download_is_a_note_and_the_verdict_survives(sample, tmp_path, act, problem):
    with HostileCore({CONVERTED: act}, **CDR_REPORT) as core:
        service = started(core, fetch_sanitized_file=True, sanitized_file_max_mb=1)
        (kind, result, doc), elapsed = timed_task(service, sample, tmp_path)
    assert kind == "result"
    assert_ended_in_time(elapsed, TIMEOUT)
    assert result.result.sections[0].title_text == TITLE_HITS
    [note] = cdr_notes(result)
    assert problem in note
    assert [f for f in doc["response"]["supplementary"] if f["name"].endswith(".sanitized")] == []
    assert not [name for name in os.listdir(tmp_path / "task") if name.endswith(".sanitized")]


def test_a_full_disk_is_a_note_and_the_verdict_survives(sample, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    with HostileCore(**CDR_REPORT) as core:
        service = started(core, fetch_sanitized_file=True)
        sha256 = __import__("hashlib").sha256(open(sample, "rb").read()).hexdigest()
        os.symlink("/dev/full", workdir / f"{sha256}.sanitized")  # every write there fails with ENOSPC
        service._working_directory = str(workdir)
        (kind, result, _), _ = timed_task(service, sample, tmp_path)
    assert kind == "result" and result.result.sections[0].title_text == TITLE_HITS
    [note] = cdr_notes(result)
    assert "No space left on device" in note


def test_the_sanitized_download_is_written_in_full_under_the_cap(sample, tmp_path):
    with HostileCore(**CDR_REPORT) as core:
        (kind, result, doc), _ = timed_task(started(core, fetch_sanitized_file=True), sample, tmp_path)
    assert kind == "result" and cdr_notes(result) == []
    assert [f["name"] for f in doc["response"]["supplementary"] if f["name"].endswith(".sanitized")] == [
        "sample.bin.sanitized"]


# --- items 7, 8, 12, 13: reports that strain the arithmetic, scans that never end -----------------------------

def test_twenty_thousand_hit_engines_give_a_bounded_result_in_time(sample, tmp_path):
    with HostileCore(report=thousands_of_hits(20_000)) as core:
        service = started(core, av_config={"kw_score_revision_map": {"trojan": 1_000_000}})
        (kind, result, _), elapsed = timed_task(service, sample, tmp_path)
    assert kind == "result"
    assert_ended_in_time(elapsed, TIMEOUT)
    assert 0 < result.result.score <= 2**31 - 1
    assert "Engines Not Shown" in [s.title_text for s in result.result.sections]


def numbers_then_finished(progress_values: list) -> callable:
    """A report function: in-progress reports with these progress values, then a finished one."""
    served = []

    def report(data_id: str) -> dict:
        served.append(data_id)
        if len(served) <= len(progress_values):
            value = progress_values[len(served) - 1]
            return {"data_id": data_id, "scan_results": {"progress_percentage": value, "scan_details": {}},
                    "process_info": {"progress_percentage": value}}
        return finished_report(data_id)
    return report


@pytest.mark.parametrize("values", [[5e-324, 5e-324, 1e-300], [10**400, -(10**400)], [1e308, float("nan")]])
def test_progress_numbers_that_break_arithmetic_only_delay_the_result(sample, tmp_path, values):
    with HostileCore(report=numbers_then_finished(values)) as core:
        (kind, result, _), elapsed = timed_task(started(core), sample, tmp_path)
    assert kind == "result"
    assert_ended_in_time(elapsed, TIMEOUT)


def stuck_at_99(data_id: str) -> dict:
    return {"data_id": data_id, "scan_results": {"progress_percentage": 99, "scan_details": {}},
            "process_info": {"progress_percentage": 99}}


def sent_at(service, client_call: str) -> list[float]:
    """The times (time.monotonic) at which the service sends that request to its first Core: a list that fills as it
    does, with the deadline of the task at that moment."""
    client, times = service.pool.nodes[0].client, []
    send = getattr(client, client_call)

    def timed(*args, **kwargs):
        # README, "Deadline": the service keeps 10 % of the timeout, at least 1 s, for Assemblyline's own work.
        times.append((time.monotonic(), service.task_started + TIMEOUT - max(1.0, 0.1 * TIMEOUT)))
        return send(*args, **kwargs)

    setattr(client, client_call, timed)
    return times


def test_a_scan_stuck_at_99_percent_is_polled_at_most_once_a_second_and_canceled_in_time(sample, tmp_path):
    with HostileCore(report=stuck_at_99) as core:
        service = started(core)
        uploads, polls, cancels = (sent_at(service, call) for call in ("upload", "get_report", "cancel"))
        (kind, error, _), elapsed = timed_task(service, sample, tmp_path)
    assert kind == "error" and error_of(error)[0] == "FAIL_RECOVERABLE"
    assert_ended_in_time(elapsed, TIMEOUT)
    # Timed where the service sends them, so that a busy machine cannot bring two polls closer together.
    ((upload, _),) = uploads
    since_upload = [at - upload for at, _ in polls]
    late = [b - a for a, b in zip(since_upload, since_upload[1:], strict=False) if a >= 2.5]
    assert late and min(late) >= 1.0, f"polls of a stalled scan came {min(late):.2f} s apart"
    # Polls at least 50 ms apart for the first 2 s (the scan looks nearly done: at most 40), then at most once a
    # second until 0.25 s before the deadline (6), a last poll brought forward to fit (1), and one the timer's
    # rounding may add at the 2 s step (1).
    assert len([r for r in core.requests if r.method == "GET" and r.path.startswith("file/")]) <= 48
    # A stuck scan is not left for a later attempt to wait on: it is canceled, before the deadline.
    assert core.paths("POST")[-1].endswith("/cancel")
    ((cancel_sent, deadline),) = cancels
    assert cancel_sent < deadline, "the cancel was sent past the deadline"


# --- items 10, 11: the API key and texts that cannot be sent ------------------------------------------------------

def key_echoes(offset: int) -> dict:
    """An error answer that echoes the API key `offset` characters into its text."""
    return {UPLOAD: answer(json_answer(500, {"err": "e" * offset + f"apikey={KEY}; then more text" * 3}))}


@pytest.mark.parametrize("offset", [0, 150, 185, 195, 199, 205])
def test_no_piece_of_the_key_shows_whatever_core_echoes(sample, tmp_path, caplog, offset):
    caplog.set_level(logging.DEBUG)
    with HostileCore(key_echoes(offset)) as core:
        (kind, error, _), _ = timed_task(started(core), sample, tmp_path)
    status, message = error_of(error)
    assert status == "FAIL_RECOVERABLE" and "HTTP 500" in message
    assert key_pieces(message) == []
    assert key_pieces(caplog.text) == []


def test_a_password_that_is_not_valid_unicode_is_skipped_not_fatal(sample, tmp_path, caplog):
    with HostileCore() as core:
        (kind, result, _), _ = timed_task(started(core), sample, tmp_path, params={"archive_password": "pw\udc80"})
    assert kind == "result", result
    upload = next(request for request in core.requests if request.method == "POST")
    assert [name for name in upload.headers if name.startswith("archivepwd")] == []
    assert "1 archive password(s) skipped: not text that can be sent to Core" in caplog.text


def test_a_rule_that_is_not_valid_unicode_stops_the_start():
    with HostileCore() as core, pytest.raises(ServiceStartError, match="rule"):
        started(core, rule="multiscan\ud800")


# --- item 6: memory, in a fresh process ---------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", ["report", "stat/nodes"])
def test_32_mib_of_tiny_json_containers_costs_a_task_little_memory(scenario, tmp_path):
    child = os.path.join(os.path.dirname(__file__), "rss_child.py")
    root = os.path.dirname(os.path.dirname(child))
    done = subprocess.run([sys.executable, child, scenario, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": root})
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["kind"] == "result"
    assert figures["extra_mib"] < 300, f"the task grew the process by {figures['extra_mib']:.0f} MiB"
