"""The whole service through Assemblyline's task handling, Cores answered by requests-mock, time on a fake clock: what
the README promises of several Cores and of time passing (which Core's context a result carries, a proxy's bare 503,
one log line per change of a Core's state, readiness asked every 30 s, rules read with each refresh, archive-password
scans canceled at the deadline, the "Core is full" message and its warning)."""

import logging
import time
from urllib.parse import unquote

import pytest
import requests
from al_checks import run_task
from core_answers import CLAMAV_EICAR, CLAMAV_ONLY, finished_report, mock_core
from fakes import FakeClock, on_fake_time

from metadefender import MetaDefender

CORE_A = "http://core-a:8008/"
CORE_B = "http://core-b:8008/"
EICAR_DETAILS = {"ClamAV": {"scan_result_i": 1, "threat_found": "Eicar-Test-Signature"},
                 "ESET": {"scan_result_i": 0, "threat_found": ""}}
SAMPLE = b"sample content"  # 14 bytes


def engines(clamav_time: str, eset_time: str) -> list[dict]:
    return [{"eng_name": "ClamAV", "eng_ver": "1.0.1", "engine_type": "av", "def_time": clamav_time, "active": True,
             "state": "production"},
            {"eng_name": "ESET", "eng_ver": "8.2", "engine_type": "av", "def_time": eset_time, "active": True,
             "state": "production"}]


@pytest.fixture
def fake():
    return FakeClock()


def core4(requests_mock, base: str, engine_list: list = CLAMAV_ONLY, details: dict = CLAMAV_EICAR):
    """A Core 4 at `base` (see mock_core) whose queue cannot be read (stat/nodes 404: Cores count as idle)."""
    mock_core(requests_mock, base, engine_list, finished_report(details))
    requests_mock.get(base + "stat/nodes", status_code=404, json={"err": "Not found"})


def core5(requests_mock, base: str, rules: dict[str, int] | None = None):
    """A Core 5 at `base`: ready, with `rules` ({name: max_file_size}, default {"File scan": 200000000})."""
    core4(requests_mock, base)
    requests_mock.get(base + "readyz", json={"ready": True})
    listed = [{"name": name, "max_file_size": size} for name, size in (rules or {"File scan": 200_000_000}).items()]
    requests_mock.get(base + "file/rules", json=listed)


def started(fake: FakeClock, base_url, **config) -> MetaDefender:
    """The service on fake time. Without take-over (`reuse_scan_minutes` 0, unless `config` says otherwise) files go
    round the Cores in turn, which `on_turn_of` steers."""
    service = on_fake_time(MetaDefender({"base_url": base_url, "reuse_scan_minutes": 0, **config}), fake)
    service.start()
    return service


def task(service, tmp_path, params=None):
    path = tmp_path / "sample.bin"
    path.write_bytes(SAMPLE)
    return run_task(service, str(path), str(tmp_path / "tasking"), params=params)


def sent(requests_mock, method: str, url: str) -> int:
    """How many `method` requests went to `url` so far."""
    return sum(1 for r in requests_mock.request_history if r.method == method and r.url == url)


def on_turn_of(service, index: int) -> MetaDefender:
    """`service` with the turn in rotation on Core `index` for its next task."""
    service.pool.cursor = index
    return service


def error_of(outcome) -> tuple[str, str]:
    """A failed task's status and the text of its error (the framework puts a recoverable error's traceback first)."""
    kind, doc, _ = outcome
    assert kind == "error", doc
    last = doc["response"]["message"].splitlines()[-1]
    return doc["response"]["status"], last.removeprefix("RecoverableError: ").removeprefix("NonRecoverableError: ")


# --- several Cores ------------------------------------------------------------------------------------------------

CONTEXT_A = "Definition Time Range: 2026-11-26 06:00:00 - 2026-11-26 11:08:00"
CONTEXT_B = "Definition Time Range: 2026-12-01 02:00:00 - 2026-12-03 04:30:00"


@pytest.mark.parametrize(("turn", "a_fails", "context"), [(0, False, CONTEXT_A), (1, False, CONTEXT_B),
                                                          (0, True, CONTEXT_B)],
                         ids=["core A scans", "core B scans", "core A fails, core B scans"])
def test_the_service_context_is_that_of_the_core_that_scanned_the_file(requests_mock, fake, tmp_path, turn,
                                                                       a_fails, context):
    core4(requests_mock, CORE_A, engines("2026-11-26T11:08:00.000Z", "2026-11-26T06:00:00.000Z"), EICAR_DETAILS)
    core4(requests_mock, CORE_B, engines("2026-12-01T02:00:00.000Z", "2026-12-03T04:30:00.000Z"), EICAR_DETAILS)
    if a_fails:
        requests_mock.post(CORE_A + "file", status_code=500, json={"err": "Failed to request scan. Try again later."})
    kind, result, doc = task(on_turn_of(started(fake, [CORE_A, CORE_B]), turn), tmp_path)
    assert kind == "result", result
    assert doc["response"]["service_context"] == context


@pytest.mark.parametrize("answer", [{"text": ""}, {"text": "no healthy upstream"},
                                    {"text": "<html><body><h1>503 Service Unavailable</h1></body></html>",
                                     "headers": {"Content-Type": "text/html"}}],
                         ids=["empty", "proxy text", "proxy page"])
def test_a_bare_503_from_a_proxy_is_a_failure_the_core_sits_out_and_the_file_moves(requests_mock, fake, tmp_path,
                                                                                  answer):
    core4(requests_mock, CORE_A)
    core4(requests_mock, CORE_B)
    requests_mock.post(CORE_A + "file", status_code=503, **answer)
    service = started(fake, [CORE_A, CORE_B])
    for _ in range(4):  # a file a second, each first offered to core A
        kind, result, _ = task(on_turn_of(service, 0), tmp_path)
        assert kind == "result" and result.result.score == 1000
        fake.sleep(1)
    # The first file moved on to core B. Core A, failed, then sat out its 5 s: the other files went to core B without
    # trying it (a full Core, whose 503 carries Core's own text, would sit out one turn only).
    assert (sent(requests_mock, "POST", CORE_A + "file"), sent(requests_mock, "POST", CORE_B + "file")) == (1, 4)


def test_each_change_of_a_cores_state_is_one_log_line_not_one_per_task(requests_mock, fake, tmp_path, caplog):
    core4(requests_mock, CORE_A)
    core4(requests_mock, CORE_B)
    requests_mock.post(CORE_A + "file", status_code=500, json={"err": "Failed to request scan. Try again later."})
    service = started(fake, [CORE_A, CORE_B])
    caplog.set_level(logging.INFO)
    caplog.clear()
    for _ in range(4):  # core A fails the first file and sits out 5 s; the files meanwhile go to core B
        assert task(on_turn_of(service, 0), tmp_path)[0] == "result"
        fake.sleep(1)
    requests_mock.post(CORE_A + "file", json={"data_id": "d1"})
    fake.sleep(2)  # core A's 5 s are over: the next task's upkeep probes it
    for _ in range(4):
        assert task(on_turn_of(service, 0), tmp_path)[0] == "result"
        fake.sleep(1)
    assert sent(requests_mock, "POST", CORE_A + "file") == 5
    lines = [record.getMessage() for record in caplog.records if CORE_A in record.getMessage()]
    assert len(lines) == 3, lines
    put_aside, failover, back = lines
    assert "put aside" in put_aside and "Failed to request scan" in put_aside
    assert f"Failing over from {CORE_A} to {CORE_B}" in failover
    assert "back in rotation" in back


# --- readiness (Core 5's readyz) and rules (file/rules) -----------------------------------------------------------

def at(fake: FakeClock, moment: float) -> None:
    """Move the fake clock on to `moment`."""
    fake.sleep(moment - fake.now())


def test_readyz_is_asked_again_every_30_seconds_at_the_start_of_a_task(requests_mock, fake, tmp_path):
    core5(requests_mock, CORE_A)
    started_at = fake.now()
    service = started(fake, CORE_A)
    asked = []
    for moment in (10, 29.5, 30.5, 31, 45, 61):
        at(fake, started_at + moment)
        assert task(service, tmp_path)[0] == "result"
        asked.append(sent(requests_mock, "GET", CORE_A + "readyz"))
    # Asked at start, then by the first task 30 s after that, and by the first task 30 s after that one.
    assert asked == [1, 1, 2, 2, 2, 3]


def test_a_core_not_ready_gets_no_file_and_a_readyz_that_cannot_be_asked_readmits_nothing(requests_mock, fake,
                                                                                        tmp_path):
    core5(requests_mock, CORE_A)
    requests_mock.get(CORE_A + "readyz", status_code=503,
                      json={"ready": False, "reason": "scan queue above threshold"})
    service = started(fake, CORE_A)
    status, message = error_of(task(service, tmp_path))
    assert status == "FAIL_RECOVERABLE"
    assert message.startswith("No MetaDefender Core is ready") and "scan queue above threshold" in message
    requests_mock.get(CORE_A + "readyz", exc=requests.exceptions.ConnectTimeout)
    fake.sleep(6)  # after its 5 s back-off the Core is probed: engine list, then readyz, which cannot be asked
    status, message = error_of(task(service, tmp_path))
    assert status == "FAIL_RECOVERABLE" and message.startswith("No MetaDefender Core is ready")
    assert sent(requests_mock, "GET", CORE_A + "readyz") == 2
    assert sent(requests_mock, "POST", CORE_A + "file") == 0
    requests_mock.get(CORE_A + "readyz", json={"ready": True})
    fake.sleep(1)  # nothing changed: the Core is still aside, its back-off over, so the next task probes it again
    kind, result, _ = task(service, tmp_path)
    assert kind == "result" and result.result.score == 1000
    assert sent(requests_mock, "POST", CORE_A + "file") == 1


def test_rules_are_read_again_with_each_engine_refresh(requests_mock, fake, tmp_path):
    core5(requests_mock, CORE_A, rules={"Strict": 1000})
    service = started(fake, CORE_A, rule="Strict", engine_refresh_seconds=600)
    requests_mock.get(CORE_A + "file/rules", json=[{"name": "Strict", "max_file_size": 10}])  # Core's admin lowers it
    fake.sleep(599)
    assert task(service, tmp_path)[0] == "result"  # the rules read at start still stand
    fake.sleep(2)
    status, message = error_of(task(service, tmp_path))
    assert status == "FAIL_NONRECOVERABLE"
    assert "14 bytes" in message and "10 bytes" in message and "'Strict'" in message
    assert sent(requests_mock, "GET", CORE_A + "file/rules") == 2
    assert sent(requests_mock, "POST", CORE_A + "file") == 1


def test_a_core_answering_405_to_file_rules_is_used_as_one_that_does_not_list_rules(requests_mock, fake, tmp_path):
    core5(requests_mock, CORE_A)
    requests_mock.get(CORE_A + "file/rules", status_code=405, json={"err": "Method not allowed"})
    service = started(fake, CORE_A, rule="Strict", engine_refresh_seconds=600)  # no rule list: the start checks none
    for _ in range(2):
        kind, result, _ = task(service, tmp_path)
        assert kind == "result" and result.result.score == 1000
        fake.sleep(601)  # the next task re-reads the engine list
    uploads = [r for r in requests_mock.request_history if r.method == "POST" and r.url == CORE_A + "file"]
    assert [unquote(r.headers["rule"]) for r in uploads] == ["Strict", "Strict"]  # Core judges the rule itself
    assert sent(requests_mock, "GET", CORE_A + "stat/engines") == 2
    assert sent(requests_mock, "GET", CORE_A + "file/rules") == 1  # as a Core without the endpoint: not asked again


# --- the deadline --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "canceled"), [({"archive_password": "infected"}, True), ({}, False)],
                         ids=["archive password: canceled", "none: left for the retry"])
def test_a_scan_with_an_archive_password_running_at_the_deadline_is_canceled(requests_mock, fake, tmp_path, params,
                                                                            canceled):
    core4(requests_mock, CORE_A)
    uploaded = []

    def upload(request, context):
        uploaded.append(fake.now())
        return {"data_id": "d1"}

    def scanning(request, context):  # 1 % a second: still running at the deadline
        progress = min(99, int(fake.now() - uploaded[0]))
        return {"data_id": "d1", "scan_results": {"progress_percentage": progress, "scan_details": {}},
                "process_info": {"progress_percentage": progress, "result": "Processing"}}

    requests_mock.post(CORE_A + "file", json=upload)
    requests_mock.get(CORE_A + "file/d1", json=scanning)
    service = started(fake, CORE_A, reuse_scan_minutes=30)  # the default: a retry may take the scan over
    status, message = error_of(task(service, tmp_path, params=params))
    assert status == "FAIL_RECOVERABLE" and "being scanned" in message
    assert sent(requests_mock, "POST", CORE_A + "file/d1/cancel") == (1 if canceled else 0)


def until_read(gauge, node, since: float, now: float) -> None:
    """Wait (at most 5 s) until the service holds a queue reading of `node` taken at fake time `since` or later (it
    reads queues on a background thread; the fake clock stands at `now` meanwhile)."""
    give_up = time.monotonic() + 5
    while gauge.latest(node, now - since) is None and time.monotonic() < give_up:
        time.sleep(0.001)


def test_a_full_core_fails_the_task_saying_how_full_and_warns_at_most_once_a_minute(requests_mock, fake, tmp_path,
                                                                                    caplog):
    core4(requests_mock, CORE_A)
    requests_mock.get(CORE_A + "stat/nodes", json=[{"statuses": [{"scan_queue": 7, "cpu_cores": 2}]}])
    service = started(fake, CORE_A)
    service.service_attributes.timeout = 10  # a 9 s deadline (10 % kept, at least 1 s)
    uploaded, late_polls = [], []

    def upload(request, context):
        uploaded.append(fake.now())
        return {"data_id": "d1"}

    def queued(request, context):
        """Our file waits in Core's queue to the end. Once it has waited 1 s the service reads Core's queue: from
        the poll after that on, this answers once that reading is in, so the task cannot end before it."""
        if fake.now() - uploaded[-1] >= 1:
            late_polls.append(uploaded[-1])
            if late_polls.count(uploaded[-1]) > 1:
                until_read(service.pool.gauge, service.pool.nodes[0], uploaded[-1], fake.now())
        return {"data_id": "d1", "process_info": {"progress_percentage": 0, "result": "Processing"}}

    requests_mock.post(CORE_A + "file", json=upload)
    requests_mock.get(CORE_A + "file/d1", json=queued)
    caplog.set_level(logging.WARNING)
    messages = []
    for pause in (0, 0, 60):  # the second task ends 9 s after the first, the third a minute later
        fake.sleep(pause)
        status, message = error_of(task(service, tmp_path))
        assert status == "FAIL_RECOVERABLE"
        messages.append(message)
    first = messages[0]
    assert first.startswith(f"MetaDefender Core is full ({CORE_A} held 7 files for 2 scan slots")
    assert "9.0 s" in first
    assert "instance limit" in first and "add Cores" in first and "raise the service timeout" in first
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and "MetaDefender Core is full" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert warnings[0].endswith(messages[0]) and warnings[1].endswith(messages[2])
