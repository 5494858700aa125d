"""HTTP to one Core: what is sent, and which error class each kind of answer becomes."""

import io
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
import requests

from mdservice.client import (
    MAX_FILENAME_CHARS,
    CoreBusy,
    CoreClient,
    CoreError,
    CoreNotReady,
    CoreRateLimited,
    display_filename,
    retry_after,
)

BASE = "http://core-1:8008/"
KEY = "s3cret-api-key-123"


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "sample.bin"
    path.write_bytes(b"A" * 1000)
    return str(path)


def test_upload_streams_the_file_with_length_and_url_encoded_name(requests_mock, sample):
    requests_mock.post(BASE + "file", json={"data_id": "abc123"})
    client = CoreClient(BASE, api_key=KEY)
    data_id = client.upload(sample, "rapport d'été\n#1.pdf", rule="multiscan only",
                            passwords=("p@ss wörd", "fox", "cow\n"))
    assert data_id == "abc123"
    sent = requests_mock.last_request
    assert not isinstance(sent.body, bytes | bytearray)
    assert isinstance(sent.body, io.BufferedReader)
    assert sent.headers["Content-Length"] == "1000"
    assert sent.headers["Content-Type"] == "application/octet-stream"
    assert "Transfer-Encoding" not in sent.headers
    assert sent.headers["apikey"] == KEY
    assert unquote(sent.headers["filename"]) == "rapport d'été_#1.pdf"
    assert unquote(sent.headers["rule"]) == "multiscan only"
    assert [unquote(sent.headers[name]) for name in ("archivepwd", "archivepwd1", "archivepwd2")] == [
        "p@ss wörd", "fox", "cow\n"]
    assert "archivepwd3" not in sent.headers
    assert all(ord(ch) < 128 for value in sent.headers.values() for ch in str(value))


def test_no_apikey_rule_or_password_header_when_not_set(requests_mock, sample):
    requests_mock.post(BASE + "file", json={"data_id": "abc123"})
    requests_mock.get(BASE + "stat/engines", json=[])
    client = CoreClient(BASE)
    client.upload(sample, "a.txt")
    client.get_engines()
    for request in requests_mock.request_history:
        assert "apikey" not in request.headers
    assert "rule" not in requests_mock.request_history[0].headers
    assert "archivepwd" not in requests_mock.request_history[0].headers


def test_apikey_sent_on_every_request(requests_mock, sample):
    requests_mock.get(BASE + "stat/engines", json=[])
    requests_mock.post(BASE + "file", json={"data_id": "d1"})
    requests_mock.get(BASE + "file/d1", json={"data_id": "d1"})
    client = CoreClient(BASE, api_key=KEY)
    client.get_engines()
    client.upload(sample, "a")
    client.get_report("d1")
    assert [r.headers.get("apikey") for r in requests_mock.request_history] == [KEY] * 3


def test_long_file_names_are_capped_and_keep_their_extension():
    name = display_filename("x" * 5000 + ".docx")
    assert len(name) == MAX_FILENAME_CHARS
    assert name.endswith(".docx")
    assert display_filename("") == "file"


def test_a_path_in_base_url_is_kept(requests_mock):
    requests_mock.get("https://core/metascan_rest/stat/engines", json=[])
    CoreClient("https://core/metascan_rest/").get_engines()
    assert requests_mock.last_request.url == "https://core/metascan_rest/stat/engines"


@pytest.mark.parametrize("status, body, permanent, node_fault", [
    (401, {"err": "Invalid API key"}, True, True),
    (403, {"err": "Access denied"}, True, True),
    (411, {"err": "Missing Content-Length header."}, True, True),
    (422, {"err": "File is empty."}, True, True),
    (500, {"err": "Failed to request scan. Try again later."}, False, True),
    (500, {"err": "Failed to request scan. File size exceeded the maximum size permitted by your configuration."},
     True, False),
    (503, {"err": "Server is too busy. Try again later."}, False, False),
    (502, None, False, True),
    (400, {"err": "Callback url is invalid."}, True, True),
    (400, {"err": "Not enough disk space"}, False, True),
    (400, None, False, True),
    (429, {"err": "Too many requests"}, False, False),
    (429, None, False, False),
])
def test_upload_errors_map_to_their_class(requests_mock, sample, status, body, permanent, node_fault):
    requests_mock.post(BASE + "file", status_code=status, json=body)
    with pytest.raises(CoreError) as caught:
        CoreClient(BASE, api_key=KEY).upload(sample, "a")
    assert (caught.value.permanent, caught.value.node_fault) == (permanent, node_fault)
    assert str(status) in str(caught.value)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(("status", "body", "headers", "wait"), [
    (429, {"err": "Too many requests"}, {"Retry-After": "2"}, 2.0),
    (429, None, {}, None),
    (503, {"err": "Rate limit exceeded"}, {"Retry-After": "0.5"}, 0.5),
    (503, {"err": "API rate-limit reached"}, {}, None),
])
def test_rate_limits_are_a_request_to_wait_not_a_fault_of_core(requests_mock, status, body, headers, wait):
    requests_mock.get(BASE + "file/d1", status_code=status, json=body, headers=headers)
    with pytest.raises(CoreRateLimited) as caught:
        CoreClient(BASE).get_report("d1")
    assert (caught.value.retry_after, caught.value.permanent, caught.value.node_fault) == (wait, False, False)
    assert f"HTTP {status}" in str(caught.value) and "Settings > Security" in str(caught.value)


def test_a_503_that_does_not_say_rate_limit_is_still_a_full_queue(requests_mock):
    requests_mock.get(BASE + "file/d1", status_code=503, json={"err": "Server is too busy. Try again later."},
                      headers={"Retry-After": "5"})
    with pytest.raises(CoreBusy):
        CoreClient(BASE).get_report("d1")


@pytest.mark.parametrize(("value", "seconds"), [
    ("3", 3.0), (" 120 ", 120.0), ("0.25", 0.25), ("0", 0.0),
    ("Thu, 01 Jan 2026 00:00:30 GMT", 30.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    (None, None), ("", None), ("-1", None), ("soon", None), ("1e3", None),
])
def test_retry_after_in_seconds_or_as_an_http_date(value, seconds):
    assert retry_after(value, datetime(2026, 1, 1, tzinfo=UTC)) == seconds


@pytest.mark.parametrize(("status", "body"), [(429, {"err": "Too many requests"}), (503, {"reason": "rate limit"})])
def test_a_rate_limited_readiness_check_is_not_a_core_that_is_not_ready(requests_mock, status, body):
    requests_mock.get(BASE + "readyz", status_code=status, json=body)
    with pytest.raises(CoreRateLimited):
        CoreClient(BASE).check_ready()
    requests_mock.get(BASE + "readyz", status_code=503, json={"reason": "scan queue above threshold"})
    with pytest.raises(CoreNotReady, match="scan queue above threshold"):
        CoreClient(BASE).check_ready()


def test_key_refused_says_what_to_change(requests_mock):
    requests_mock.get(BASE + "stat/engines", status_code=403, json={"err": "Access denied"})
    with pytest.raises(CoreError, match="api_key"):
        CoreClient(BASE, api_key=KEY).get_engines()


def test_too_large_file_says_what_to_change(requests_mock, sample):
    requests_mock.post(BASE + "file", status_code=500, json={"err": "File size exceeded the maximum size"})
    with pytest.raises(CoreError, match="larger than Core"):
        CoreClient(BASE).upload(sample, "a")


@pytest.mark.parametrize("status, body", [(404, {"d1": "Not Found"}), (200, {"d1": "Not Found"})])
def test_lost_data_id_is_transient(requests_mock, status, body):
    requests_mock.get(BASE + "file/d1", status_code=status, json=body)
    with pytest.raises(CoreError, match="lost the scan") as caught:
        CoreClient(BASE).get_report("d1")
    assert not caught.value.permanent and caught.value.node_fault


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"", b'{"truncated": ', b"\xff\xfe"])
def test_non_json_answers_are_transient(requests_mock, body):
    requests_mock.get(BASE + "file/d1", content=body, headers={"Content-Type": "text/html"})
    with pytest.raises(CoreError, match="not JSON") as caught:
        CoreClient(BASE).get_report("d1")
    assert not caught.value.permanent


@pytest.mark.parametrize("answer", [{"something": "else"}, {"data_id": ""}, {"data_id": 42}, {"data_id": "x" * 5000}])
def test_upload_answer_without_usable_data_id_is_an_error(requests_mock, sample, answer):
    requests_mock.post(BASE + "file", json=answer)
    with pytest.raises(CoreError, match="no usable data_id"):
        CoreClient(BASE).upload(sample, "a")


def test_redirects_are_not_followed(requests_mock):
    requests_mock.get(BASE + "stat/engines", status_code=302, headers={"Location": "http://elsewhere/steal"})
    requests_mock.get("http://elsewhere/steal", json=[])
    with pytest.raises(CoreError, match="redirect") as caught:
        CoreClient(BASE, api_key=KEY).get_engines()
    assert caught.value.permanent
    assert len(requests_mock.request_history) == 1


@pytest.mark.parametrize("exc, text", [
    (requests.exceptions.ConnectionError("Connection refused"), "could not be reached"),
    (requests.exceptions.ConnectTimeout("timed out"), "did not answer"),
    (requests.exceptions.ReadTimeout("timed out"), "did not answer"),
])
def test_transport_failures_are_transient(requests_mock, exc, text):
    requests_mock.get(BASE + "stat/engines", exc=exc)
    with pytest.raises(CoreError, match=text) as caught:
        CoreClient(BASE).get_engines()
    assert not caught.value.permanent and caught.value.node_fault


def test_tls_failure_is_permanent_and_says_how_to_fix(requests_mock):
    requests_mock.get(BASE + "stat/engines", exc=requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"))
    with pytest.raises(CoreError, match="verify_certificate") as caught:
        CoreClient(BASE).get_engines()
    assert caught.value.permanent


def test_credentials_in_url_never_appear_in_messages(requests_mock):
    url = "http://admin:hunter2@core-1:8008/"
    requests_mock.get(url + "stat/engines", status_code=500, json={"err": "x"})
    with pytest.raises(CoreError) as caught:
        CoreClient(url).get_engines()
    assert "hunter2" not in str(caught.value)
    assert "core-1:8008" in str(caught.value)


def test_sanitized_file_is_streamed_to_disk(requests_mock, tmp_path):
    requests_mock.get(BASE + "file/converted/d1", content=b"clean copy")
    destination = tmp_path / "out"
    CoreClient(BASE).download_converted("d1", str(destination), max_bytes=100)
    assert destination.read_bytes() == b"clean copy"


def test_missing_sanitized_file_is_an_error(requests_mock, tmp_path):
    requests_mock.get(BASE + "file/converted/d1", status_code=404, json={"err": "File could not be found"})
    with pytest.raises(CoreError, match="404"):
        CoreClient(BASE).download_converted("d1", str(tmp_path / "out"), max_bytes=100)


def test_per_request_timeout_never_exceeds_md_timeout(requests_mock):
    requests_mock.get(BASE + "stat/engines", json=[])
    client = CoreClient(BASE, timeout=7)
    client.get_engines(timeout=30)
    assert requests_mock.last_request.timeout == 7
    client.get_engines(timeout=2)
    assert requests_mock.last_request.timeout == 2


def test_load_sums_the_queues_and_cpu_cores_of_core_nodes(requests_mock):
    requests_mock.get(BASE + "stat/nodes", json=[{"statuses": [{"scan_queue": 3, "load": 50, "cpu_cores": 8},
                                                               {"scan_queue": 2, "cpu_cores": 4}]}])
    assert CoreClient(BASE).get_load() == (5, 12, None)


@pytest.mark.parametrize("cpu_cores", [None, 0, -4, "8", True, 2.5, 10**40])
def test_a_node_without_a_usable_cpu_core_count_scans_one_file_at_a_time(requests_mock, cpu_cores):
    status = {"scan_queue": 1} if cpu_cores is None else {"scan_queue": 1, "cpu_cores": cpu_cores}
    requests_mock.get(BASE + "stat/nodes", json=[{"statuses": [status, {"scan_queue": 0, "cpu_cores": 2}]}])
    assert CoreClient(BASE).get_load() == (1, 3, None)


@pytest.mark.parametrize("body", [[], [{"statuses": [{"load": 5}]}], {"scan_queue": 1},
                                  [{"statuses": [{"scan_queue": "many"}]}]])
def test_unreadable_scan_queue_is_an_error_but_not_a_core_fault(requests_mock, body):
    requests_mock.get(BASE + "stat/nodes", json=body)
    with pytest.raises(CoreError, match="scan_queue") as caught:
        CoreClient(BASE).get_load()
    assert not caught.value.node_fault


@pytest.mark.parametrize(("details", "load"), [
    ({"available_slots": 1}, (3, 16, 1)),
    ({"available_slots": 0, "total_scan_queue": 500}, (3, 16, 0)),
    ({"available_slots": 497, "total_scan_queue": 500}, (3, 16, 497)),
    ({"available_slots": 500, "total_scan_queue": 500}, (3, 16, 500)),
    ({"available_slots": "x"}, (3, 16, None)),
    ({"available_slots": -1}, (3, 16, None)),
    ({"total_scan_queue": 500}, (3, 16, None)),
    ([], (3, 16, None)),
    (None, (3, 16, None)),
])
def test_free_queue_places_are_their_own_number_and_scan_slots_come_from_cpu_cores(requests_mock, details, load):
    status = {"scan_queue": 3, "cpu_cores": 16}
    if details is not None:
        status["scan_queue_details"] = details
    requests_mock.get(BASE + "stat/nodes", json=[{"statuses": [status]}])
    assert CoreClient(BASE).get_load() == load


def test_free_queue_places_are_summed_over_nodes_only_when_every_node_tells(requests_mock):
    def nodes(*free):
        return [{"statuses": [{"scan_queue": 1, "cpu_cores": 2, **({"scan_queue_details": {"available_slots": f}}
                                                                   if f is not None else {})} for f in free]}]

    requests_mock.get(BASE + "stat/nodes", json=nodes(499, 0))
    assert CoreClient(BASE).get_load() == (2, 4, 499)
    requests_mock.get(BASE + "stat/nodes", json=nodes(499, None))
    assert CoreClient(BASE).get_load() == (2, 4, None)


SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def earlier_report(data_id) -> dict:
    return {"data_id": data_id, "file_info": {"sha256": SHA256},
            "scan_results": {"progress_percentage": 100, "scan_details": {"ClamAV": {"scan_result_i": 0}}},
            "process_info": {"progress_percentage": 100, "profile": "File scan"}}


@pytest.mark.parametrize("status", [404, 200])  # OPSWAT: {"<HASH>": "Not Found"}; some versions answer it with 200
def test_a_hash_core_has_not_scanned_is_no_earlier_scan(requests_mock, status):
    requests_mock.get(BASE + f"hash/{SHA256}", status_code=status, json={SHA256.upper(): "Not Found"})
    assert CoreClient(BASE).find_scan(SHA256) is None


def test_an_earlier_scan_is_looked_up_by_sha256_under_the_url_encoded_rule(requests_mock):
    requests_mock.get(BASE + f"hash/{SHA256}", json=earlier_report("0123abcd"))
    assert CoreClient(BASE).find_scan(SHA256, rule="Multiscan & CDR") == earlier_report("0123abcd")
    assert requests_mock.last_request.headers["rule"] == "Multiscan%20%26%20CDR"


@pytest.mark.parametrize("data_id", ["../stat/nodes", "x" * 65, "", "id with space", 42, None, KEY[3:13]])
def test_an_earlier_scan_whose_data_id_is_not_cores_form_or_holds_a_piece_of_the_key_is_not_taken(requests_mock,
                                                                                                  data_id):
    requests_mock.get(BASE + f"hash/{SHA256}", json=earlier_report(data_id))
    assert CoreClient(BASE, api_key=KEY).find_scan(SHA256) is None
