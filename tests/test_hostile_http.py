"""Oversized, broken and misdirected HTTP answers, and hostile file names, at the HTTP level (requests-mock).

Through `CoreClient` (each answer becomes a clear `CoreError`) and through the whole service (`run_task`: the task
ends in Assemblyline's error, never a result and never a crash of another kind).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
import urllib3
from al_checks import run_task
from core_answers import CLAMAV_EICAR, CLAMAV_ONLY, finished_report, mock_core

from mdservice.client import MAX_FILENAME_CHARS, CoreClient, CoreError, CoreLoad
from mdservice.scan import Clock
from metadefender import MetaDefender

CORE = "http://core-1:8008/"
ELSEWHERE = "http://attacker.example/"
KEY = "hostile-http-api-key-0123"
ENGINES = CLAMAV_ONLY
FINISHED = finished_report(CLAMAV_EICAR, actions_ran="")


class Flood(io.RawIOBase):
    """A response body of `size` bytes of JSON whitespace, produced on demand; counts what was read."""

    def __init__(self, size: int):
        self.left = size
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = b" " * count
        self.left -= count
        self.served += count
        return count


class BrokenOff(io.RawIOBase):
    """A body that starts like a report, then the connection drops."""

    def __init__(self):
        self.started = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.started:
            raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(12 bytes read)")
        self.started = True
        buffer[:12] = b'{"data_id": '
        return 12


@pytest.fixture
def core(requests_mock):
    mock_core(requests_mock, CORE, ENGINES, FINISHED)
    return requests_mock


def started(config=None) -> MetaDefender:
    service = MetaDefender({"base_url": CORE, "api_key": KEY, **(config or {})})
    service.start()
    return service


def error_message(error_doc: dict) -> str:
    return error_doc["response"]["message"]


# --- oversized ---------------------------------------------------------------------------------------------------

# The caps the README promises ("What the service promises, whatever the network sends").
MIB = 2**20
REPORT_CAP = 8 * MIB
STATUS_CAP = 1 * MIB
SMALL_CAP = 64 * 1024
CONTAINER_CAP = 200_000


def padded(document, size: int) -> bytes:
    """`document` as JSON, followed by spaces up to exactly `size` bytes."""
    text = json.dumps(document).encode()
    assert len(text) <= size
    return text + b" " * (size - len(text))


def test_oversized_report_is_cut_off_at_the_cap_with_a_clear_error(core):
    flood = Flood(4 * REPORT_CAP)
    core.get(CORE + "file/d1", body=flood)
    with pytest.raises(CoreError, match="more than 8 MiB for file/d1"):
        CoreClient(CORE).get_report("d1")
    assert flood.served <= REPORT_CAP + MIB, "the client kept reading far past its cap"


def test_a_report_of_exactly_8_mib_is_read_and_one_byte_more_is_refused(core):
    core.get(CORE + "file/d1", content=padded(FINISHED, REPORT_CAP))
    assert CoreClient(CORE).get_report("d1") == FINISHED
    core.get(CORE + "file/d1", content=padded(FINISHED, REPORT_CAP + 1))
    with pytest.raises(CoreError, match="more than 8 MiB for file/d1"):
        CoreClient(CORE).get_report("d1")


def test_oversized_report_fails_the_task_as_retryable_not_a_result(core, sample, tmp_path):
    core.get(CORE + "file/d1", body=Flood(REPORT_CAP + 640 * 1024))
    kind, error, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "error" and error["response"]["status"] == "FAIL_RECOVERABLE"
    assert "more than 8 MiB for file/d1" in error_message(error)


NODES = [{"statuses": [{"scan_queue": 2, "cpu_cores": 4}]}]
RULES = [{"name": "File scan", "max_file_size": 1000}]
# (path, its answer, what the client makes of it) for the answers capped at 1 MiB and at 64 KiB
STATUS_ANSWERS = {
    "stat/engines": ("GET", ENGINES, lambda client: client.get_engines(), ENGINES),
    # a Core that does not say its free queue places (no scan_queue_details): available_slots None
    "stat/nodes": ("GET", NODES, lambda client: client.get_load(), CoreLoad(queue=2, slots=4, available_slots=None)),
    "file/rules": ("GET", RULES, lambda client: client.get_rules(), {"File scan": 1000}),
}
SMALL_ANSWERS = {
    "file": ("POST", {"data_id": "d1"}, lambda client: client.upload(__file__, "x.py"), "d1"),
    "file/d1/cancel": ("POST", {"d1": "cancelled"}, lambda client: client.cancel("d1"), None),
}


@pytest.mark.parametrize(("path", "cap", "shown"),
                         [(path, STATUS_CAP, "1 MiB") for path in STATUS_ANSWERS]
                         + [(path, SMALL_CAP, "64 KiB") for path in SMALL_ANSWERS])
def test_status_and_small_answers_are_read_up_to_their_cap_and_refused_one_byte_beyond(core, path, cap, shown):
    method, document, call, expected = {**STATUS_ANSWERS, **SMALL_ANSWERS}[path]
    core.register_uri(method, CORE + path, content=padded(document, cap))
    assert call(CoreClient(CORE)) == expected
    core.register_uri(method, CORE + path, content=padded(document, cap + 1))
    with pytest.raises(CoreError, match=f"more than {shown} for {path}$"):
        call(CoreClient(CORE))


def report_with_containers(count: int) -> bytes:
    """A finished report holding `count` JSON objects and lists in all, none nested deeper than three levels."""
    report = json.dumps(FINISHED).encode()
    own = report.count(b"{") + report.count(b"[")
    pad = b"[" + b",".join([b"[]"] * (count - own - 1)) + b"]"
    return report[:-1] + b', "pad": ' + pad + b"}"


def test_a_report_of_200000_objects_and_lists_is_read(core):
    core.get(CORE + "file/d1", content=report_with_containers(CONTAINER_CAP))
    report = CoreClient(CORE).get_report("d1")
    assert report["scan_results"] == FINISHED["scan_results"]


def test_a_shallow_report_of_200001_objects_and_lists_is_refused_before_it_is_decoded(core):
    core.get(CORE + "file/d1", content=report_with_containers(CONTAINER_CAP + 1))
    with pytest.raises(CoreError, match="file/d1 with JSON of more than 200000 objects and lists"):
        CoreClient(CORE).get_report("d1")


def test_deeply_nested_json_is_a_clear_error_not_a_recursion_crash(core):
    core.get(CORE + "file/d1", text="[" * 100_000 + "]" * 100_000)
    with pytest.raises(CoreError, match="not JSON"):
        CoreClient(CORE).get_report("d1")


def test_deeply_nested_error_body_still_gives_the_http_status(core):
    core.post(CORE + "file", status_code=500, text="[" * 4096)
    with pytest.raises(CoreError, match="HTTP 500$"):
        CoreClient(CORE).upload(__file__, "x.py")


# --- truncated / broken ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", ['{"data_id": "d1", "scan_results": {"progress_percen', "", "{", "\x00\x01"])
def test_truncated_report_is_a_clear_error(core, body):
    core.get(CORE + "file/d1", text=body)
    with pytest.raises(CoreError, match="answered file/d1 with something that is not JSON"):
        CoreClient(CORE).get_report("d1")


def test_connection_dropped_mid_body_is_a_clear_error(core):
    core.get(CORE + "file/d1", body=BrokenOff())
    with pytest.raises(CoreError, match="broke off its answer to file/d1"):
        CoreClient(CORE).get_report("d1")


def test_truncated_report_through_the_service_is_retried_never_a_result(core, sample, tmp_path):
    core.get(CORE + "file/d1", [{"body": BrokenOff()}])
    kind, error, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "error" and error["response"]["status"] == "FAIL_RECOVERABLE"
    assert "broke off" in error_message(error)


# --- content type ------------------------------------------------------------------------------------------------

LOGIN_PAGE = "<html><body><form action='/login'>Proxy login</form><script>x()</script></body></html>"


def test_html_page_instead_of_json_is_a_clear_error(core):
    core.get(CORE + "file/d1", text=LOGIN_PAGE, headers={"Content-Type": "text/html"})
    with pytest.raises(CoreError, match="not JSON") as caught:
        CoreClient(CORE).get_report("d1")
    assert "<script>" not in str(caught.value)


def test_html_engine_list_at_start_is_a_clear_task_error(requests_mock, sample, tmp_path):
    requests_mock.get(CORE + "stat/engines", text=LOGIN_PAGE, headers={"Content-Type": "text/html"})
    kind, error, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "error" and error["response"]["status"] == "FAIL_RECOVERABLE"
    assert "stat/engines with something that is not JSON" in error["response"]["message"]
    assert "<script>" not in error["response"]["message"]


def test_json_with_an_odd_content_type_is_still_read(core, sample, tmp_path):
    """Some proxies relabel Core's JSON (text/plain); the report itself is what counts."""
    core.get(CORE + "file/d1", text=json.dumps(FINISHED), headers={"Content-Type": "text/plain; charset=latin-1"})
    kind, result, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "result"
    assert result.result.sections[1].title_text == "ClamAV identified the file as Eicar-Test-Signature"


def test_upload_answered_with_html_is_a_retryable_error(core, sample, tmp_path):
    core.post(CORE + "file", text=LOGIN_PAGE, headers={"Content-Type": "text/html"})
    kind, error, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "error" and error["response"]["status"] == "FAIL_RECOVERABLE"
    assert "not JSON" in error_message(error)


# --- redirects ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method, path", [("GET", "stat/engines"), ("POST", "file"), ("GET", "file/d1")])
def test_redirect_to_another_host_is_not_followed(core, sample, status, method, path):
    core.register_uri(method, CORE + path, status_code=status, headers={"Location": ELSEWHERE + path})
    trap = core.register_uri(method, ELSEWHERE + path, json={"data_id": "stolen"})
    client = CoreClient(CORE, api_key=KEY)
    calls = {"stat/engines": client.get_engines, "file": lambda: client.upload(sample, "a.bin"),
             "file/d1": lambda: client.get_report("d1")}
    with pytest.raises(CoreError, match="redirect \\(not followed\\); set base_url") as caught:
        calls[path]()
    assert caught.value.permanent
    assert not trap.called
    assert all(r.netloc == "core-1:8008" for r in core.request_history)
    assert ELSEWHERE not in str(caught.value)


def test_redirected_upload_fails_the_task_without_sending_the_key_elsewhere(core, sample, tmp_path):
    core.post(CORE + "file", status_code=307, headers={"Location": ELSEWHERE + "file"})
    trap = core.post(ELSEWHERE + "file", json={"data_id": "stolen"})
    kind, error, _ = run_task(started(), sample, str(tmp_path))
    assert kind == "error" and error["response"]["status"] == "FAIL_NONRECOVERABLE"
    assert "set base_url" in error_message(error)
    assert not trap.called
    assert [r.headers.get("apikey") for r in core.request_history if r.netloc != "core-1:8008"] == []


# --- file names --------------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "rapport\nété\r\n.pdf",
    "evil\r\nX-Injected: 1.exe",
    "файл 病毒 🦠.docx",
    "a" * 5000 + ".exe",
    "b" * 5000,
    "x.\udcff\udc80.bin",  # undecodable bytes of a POSIX name (surrogateescape)
    "\x00\x1b[31m.txt",
    "",
    "%0d%0a%25.txt",
]


def sent_filename(request) -> str:
    header = request.headers["filename"]
    assert all(" " < ch <= "~" for ch in header), f"unsafe byte on the wire: {header!r}"
    return unquote(header)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_file_names_are_sent_url_encoded_and_capped(core, sample, name):
    assert CoreClient(CORE).upload(sample, name) == "d1"
    upload = core.last_request
    shown = sent_filename(upload)
    assert 0 < len(shown) <= MAX_FILENAME_CHARS
    assert shown.isprintable()
    assert "X-Injected" not in upload.headers
    if name.endswith((".exe", ".pdf", ".docx", ".txt")) and "\x00" not in name:
        assert shown.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1], "the extension was lost"
    if len(name) <= MAX_FILENAME_CHARS and name.isprintable() and name:
        assert shown == name


@pytest.mark.parametrize("name", ["rapport\nété.pdf", "файл 病毒 🦠.docx", "a" * 5000 + ".exe"])
def test_hostile_file_names_through_the_service(core, sample, tmp_path, name):
    kind, result, _ = run_task(started(), sample, str(tmp_path), filename=name)
    assert kind == "result"
    upload = next(r for r in core.request_history if r.method == "POST")
    shown = sent_filename(upload)
    assert len(shown) <= MAX_FILENAME_CHARS and shown.endswith(name[-4:].replace("\n", "_"))


# --- earlier scans (GET hash/{sha256}) -----------------------------------------------------------------------------

# The wall-clock time of the task, and a moment before it.
TASK_TIME = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
A_MINUTE_BEFORE = "2026-11-26T11:59:00.000Z"


def earlier_scan(path: str, data_id) -> dict:
    """A finished, sanitized scan of the file at `path` under rule "File scan", made a minute before TASK_TIME, with
    `data_id`."""
    report = finished_report(CLAMAV_EICAR, actions_ran="Sanitized", data_id=data_id)
    report["file_info"] = {"sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
                           "upload_timestamp": A_MINUTE_BEFORE}
    report["process_info"]["profile"] = "File scan"
    return report


@pytest.mark.parametrize(("data_id", "uploads"), [("0123abcd", 0), ("../../admin", 1), (KEY[8:20], 1)],
                         ids=["Core's form", "a path", "a piece of the key"])
def test_an_earlier_scan_is_taken_only_with_a_data_id_of_cores_form(core, sample, tmp_path, data_id, uploads):
    core.get(re.compile(re.escape(CORE) + "hash/"), json=earlier_scan(sample, data_id))
    core.get(CORE + "file/converted/0123abcd", content=b"sanitized")
    core.get(CORE + "file/converted/d1", content=b"sanitized")
    service = started({"rule": "File scan", "fetch_sanitized_file": True})
    service.clock = Clock(wall=lambda: TASK_TIME)
    kind, result, _ = run_task(service, sample, str(tmp_path))
    assert kind == "result" and result.result.sections[1].title_text == "ClamAV identified the file as " \
                                                                        "Eicar-Test-Signature"
    assert [r.path for r in core.request_history if r.method == "POST"] == ["/file"] * uploads
    if uploads:
        assert not [r.path for r in core.request_history if data_id in r.path], "a hostile data id reached a URL"
