"""The emulator over real HTTP: uploads, reports, queueing, errors, API key, v3, stats."""

import hashlib
import http.client
import socket
from datetime import UTC, datetime

import pytest
import requests

from mdcore_emulator import CDR, CDR_FAIL, EICAR, Emulator, scan_marker


def complete(report: dict) -> bool:
    """Whether a v4 report says the scan and its post-processing are done."""
    return report["process_info"]["progress_percentage"] == 100


ENGINE_ORDER = [
    "ClamAV",
    "Avira",
    "ESET",
    "Bitdefender",
    "K7",
    "Ikarus",
    "NANOAV",
    "Zillya!",
    "Vir.IT eXplorer",
    "AhnLab",
    "Emsisoft",
    "Antiy-AVL",
]


def test_upload_then_poll_until_complete(on_hand_clock, client):
    emulator, clock = on_hand_clock(scan_seconds=0.3)
    core = client(emulator.urls[0])
    response = core.upload(b"hello world", filename="hello.txt")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    data_id = response.json()["data_id"]
    assert len(data_id) == 32 and int(data_id, 16) >= 0
    seen = []
    while not seen or seen[-1][1] < 100:
        report = core.report(data_id)
        seen.append(
            (
                report["scan_results"]["progress_percentage"],
                report["process_info"]["progress_percentage"],
                list(report["scan_results"]["scan_details"]),
            )
        )
        clock.sleep(0.03)
    partial = [s for s in seen if s[0] < 100]
    assert partial, "the scan was never seen in progress"
    for scan_progress, process_progress, engines in partial:
        assert scan_progress == process_progress
        assert engines == ENGINE_ORDER[: len(engines)]  # engines finish in order
    assert len(set(p[0] for p in partial)) > 1
    assert seen[-1][2] == ENGINE_ORDER


def test_report_shape(start_emulator, client):
    emulator = start_emulator(scan_seconds=0.05)
    core = client(emulator.urls[0])
    content = b"some file"
    report = core.scan(content, filename="dir%2Fmy%20file.txt", rule="My%20Rule")
    assert set(report) == {"data_id", "file_info", "scan_results", "process_info"}
    info = report["file_info"]
    assert info["display_name"] == "dir/my file.txt" and info["file_size"] == len(content)
    assert info["md5"] == hashlib.md5(content).hexdigest()
    assert info["sha1"] == hashlib.sha1(content).hexdigest()
    assert info["sha256"] == hashlib.sha256(content).hexdigest()
    assert info["upload_timestamp"].endswith("Z")
    results = report["scan_results"]
    assert (results["scan_all_result_i"], results["scan_all_result_a"]) == (0, "No Threat Detected")
    assert results["total_avs"] == 12 and results["progress_percentage"] == 100
    for detail in results["scan_details"].values():
        assert set(detail) == {"scan_result_i", "threat_found", "def_time", "scan_time", "wait_time"}
        assert detail["scan_result_i"] == 0 and detail["def_time"].endswith("Z")
    process = report["process_info"]
    assert process["result"] == "Allowed" and process["blocked_reason"] == ""
    assert process["profile"] == "My Rule" and process["processing_time"] >= 40
    assert process["post_processing"] == {
        "actions_ran": "",
        "actions_failed": "",
        "converted_to": "",
        "copy_move_destination": "",
        "converted_destination": "",
    }
    record = emulator.nodes[0].stats.scans[report["data_id"]]
    assert (record.filename, record.size, record.rule) == ("dir/my file.txt", len(content), "My Rule")


def test_workflow_header_and_archive_passwords_are_recorded(start_emulator, client):
    emulator = start_emulator(scan_seconds=0)
    data_id = client(emulator.urls[0]).submit(
        b"abc", filename="%C3%A9t%C3%A9.txt", workflow="Old%20Name", archivepwd="pass%20word",
        archivepwd10="ten", archivepwd2="w%C3%B6rd", archivepwd0="not a number >= 1", ARCHIVEPWD1="one",
    )
    record = emulator.nodes[0].stats.scans[data_id]
    assert (record.filename, record.rule) == ("été.txt", "Old Name")
    assert record.archive_passwords == ("pass word", "one", "wörd", "ten")
    assert client(emulator.urls[0]).report(data_id)["process_info"]["profile"] == "Old Name"


def test_queueing_with_concurrency_one(on_hand_clock, client):
    emulator, clock = on_hand_clock(scan_seconds=0.3, concurrency=1)
    core = client(emulator.urls[0])
    ids = [core.submit(f"file {i}".encode()) for i in range(3)]
    # Core's scan queue holds every unfinished file: one scanning, two waiting.
    assert core.get("stat/nodes").json()[0]["statuses"][0]["scan_queue"] == 3
    queued = core.report(ids[2])
    assert "scan_results" not in queued and set(queued) == {"data_id", "file_info", "process_info"}
    assert (queued["process_info"]["progress_percentage"], queued["process_info"]["result"]) == (0, "Processing")
    assert "scan_results" not in core.report(ids[1])
    assert "scan_results" in core.report(ids[0])
    clock.sleep(0.1)
    assert core.report(ids[2])["process_info"]["queue_time"] > queued["process_info"]["queue_time"]
    clock.sleep(0.8)  # the third file's scan ends 0.9 s after the first began
    finals = [core.report(data_id) for data_id in ids]
    assert all(complete(report) for report in finals)
    assert [r["process_info"]["queue_time"] for r in finals] == sorted(r["process_info"]["queue_time"] for r in finals)
    assert finals[2]["process_info"]["queue_time"] == 600
    stats = emulator.nodes[0].stats
    first, third = stats.scans[ids[0]], stats.scans[ids[2]]
    assert third.finished_at == pytest.approx(first.started_at + 0.9)
    assert stats.processing_seconds(ids[2]) == pytest.approx(third.finished_at - third.queued_at)
    assert stats.scans[ids[1]].started_at == pytest.approx(stats.scans[ids[0]].finished_at)


def test_concurrency_scans_files_side_by_side(on_hand_clock, client):
    emulator, _ = on_hand_clock(scan_seconds=0.3, concurrency=2)
    core = client(emulator.urls[0])
    ids = [core.submit(f"file {i}".encode()) for i in range(3)]
    assert [("scan_results" in core.report(i)) for i in ids] == [True, True, False]
    assert core.get("stat/nodes").json()[0]["statuses"][0]["load"] == 100


def test_queue_limit_gives_503(on_hand_clock, client):
    emulator, _ = on_hand_clock(scan_seconds=1.0, queue_limit=1)
    core = client(emulator.urls[0])
    core.submit(b"one")
    core.submit(b"two")
    response = core.upload(b"three")
    assert response.status_code == 503
    assert response.json() == {"err": "Server is too busy. Try again later."}


def test_limited_polls_answer_429_with_retry_after_per_scan(start_emulator, client):
    emulator = start_emulator(limited_polls=2, retry_after=0.5)
    core = client(emulator.urls[0])
    first, second = core.submit(b"one"), core.submit(b"two")
    for data_id in (first, first, second, second):
        limited = core.get(f"file/{data_id}")
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "0.5")
        assert limited.json() == {"err": "Too many requests: rate limit exceeded. Try again later."}
    assert core.get(f"file/{first}").status_code == 200 and core.get(f"file/{second}").status_code == 200
    assert (emulator.nodes[0].stats.limited_requests, emulator.nodes[0].stats.result_requests) == (4, 6)


def test_scan_marker_sets_the_scan_time(start_emulator, client):
    emulator = start_emulator(scan_seconds=5)
    data_id = client(emulator.urls[0]).submit(scan_marker(0.2).encode())
    assert emulator.nodes[0].stats.processing_seconds(data_id) == pytest.approx(0.2)
    client(emulator.urls[0]).wait(data_id)


def _raw_request(port: int, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders(body or None)
    response = connection.getresponse()
    answer = response.status, response.read()
    connection.close()
    return answer


def test_upload_without_content_length_is_411(start_emulator, client):
    emulator = start_emulator()
    port = emulator.nodes[0].port
    status, body = _raw_request(port, "POST", "/file", {})
    assert (status, body) == (411, b'{"err": "Missing Content-Length header."}')
    chunked = client(emulator.urls[0]).post("file", data=iter([b"abc", b"def"]))
    assert chunked.request.headers.get("Transfer-Encoding") == "chunked"
    assert chunked.status_code == 411


def test_empty_upload_is_422(start_emulator, client):
    response = client(start_emulator().urls[0]).upload(b"")
    assert (response.status_code, response.json()) == (422, {"err": "File is empty."})


def test_unknown_ids_paths_and_methods(start_emulator, client):
    core = client(start_emulator().urls[0])
    response = core.get("file/0123456789abcdef0123456789abcdef")
    assert (response.status_code, response.json()) == (404, {"0123456789abcdef0123456789abcdef": "Not Found"})
    assert core.post("file/nope/cancel").status_code == 404
    missing = core.get("no/such/path")
    assert missing.status_code == 404 and "err" in missing.json()
    for method, path in [("GET", "file"), ("DELETE", "version"), ("POST", "stat/engines"), ("PUT", "file/x")]:
        response = core.session.request(method, core.base_url + path, timeout=5)
        assert response.status_code == 405 and "err" in response.json(), (method, path)


def test_every_response_has_a_content_length_and_keeps_the_connection(start_emulator):
    emulator = start_emulator()
    connection = http.client.HTTPConnection("127.0.0.1", emulator.nodes[0].port, timeout=5)
    for method, path, body in [
        ("GET", "/version", None),
        ("POST", "/file", b"x"),
        ("GET", "/nope", None),
        ("POST", "/file", b""),
        ("GET", "/stat/engines", None),
        ("DELETE", "/file", b"abc"),
    ]:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        assert response.getheader("Content-Length") == str(len(response.read()))
        assert response.getheader("Connection") != "close"
    connection.close()
    assert emulator.nodes[0].stats.requests == 6


def test_cancel(on_hand_clock, client):
    emulator, _ = on_hand_clock(scan_seconds=1.0)
    core = client(emulator.urls[0])
    first, second = core.submit(b"one"), core.submit(b"two")
    for data_id in (first, second):  # scanning, and still queued
        response = core.post(f"file/{data_id}/cancel")
        assert (response.status_code, response.json()) == (200, {data_id: "cancelled"})
        report = core.report(data_id)
        assert report["scan_results"]["scan_all_result_i"] == 19
        assert report["scan_results"]["scan_all_result_a"] == "Canceled"
        assert report["scan_results"]["progress_percentage"] == 100
        assert report["process_info"]["progress_percentage"] == 100


def test_cancel_frees_the_slot_and_the_queue_position_at_once(on_hand_clock, client):
    emulator, clock = on_hand_clock(scan_seconds=1.0, queue_limit=1)
    core = client(emulator.urls[0])
    scanning, waiting = core.submit(b"one"), core.submit(b"two")
    assert core.upload(b"three").status_code == 503
    clock.sleep(0.25)
    core.post(f"file/{waiting}/cancel")  # its queue position is free
    behind = core.submit(b"three")
    assert core.get("stat/nodes").json()[0]["statuses"][0]["scan_queue"] == 2
    clock.sleep(0.25)
    core.post(f"file/{scanning}/cancel")  # its slot is free: the next job scans now, not half a second later
    canceled_at = emulator.nodes[0].stats.scans[scanning].finished_at
    record = emulator.nodes[0].stats.scans[behind]
    assert record.started_at == pytest.approx(canceled_at) and record.finished_at == pytest.approx(canceled_at + 1.0)
    report = core.report(behind)
    assert "scan_results" in report and report["process_info"]["result"] == "Processing"
    clock.sleep(1.0)
    final = core.report(behind)
    assert complete(final)
    assert final["process_info"]["queue_time"] == pytest.approx(1000 * (canceled_at - record.queued_at), abs=2)
    assert emulator.nodes[0].stats.processing_seconds(behind) < 1.5


def test_hash_lookup(on_hand_clock, client):
    emulator, clock = on_hand_clock(scan_seconds=0.2)
    core = client(emulator.urls[0])
    content = EICAR.encode()
    data_id = core.submit(content)
    md5 = hashlib.md5(content).hexdigest()
    assert core.get(f"hash/{md5}").json() == {md5.upper(): "Not Found"}  # not finished yet
    clock.sleep(0.2)
    assert complete(core.report(data_id))
    for digest in (md5, hashlib.sha1(content).hexdigest(), hashlib.sha256(content).hexdigest().upper()):
        response = core.get(f"hash/{digest}")
        assert response.status_code == 200 and response.json()["data_id"] == data_id
    missing = core.get("hash/" + "0" * 64)
    assert (missing.status_code, missing.json()) == (404, {"0" * 64: "Not Found"})


def test_hash_lookup_is_rule_aware_and_skips_canceled_scans(start_emulator, client):
    core = client(start_emulator(scan_seconds=0.05).urls[0])
    content = b"same file"
    sha1 = hashlib.sha1(content).hexdigest()
    default_rule = core.scan(content)["data_id"]
    strict = core.scan(content, rule="Strict%20Scan")["data_id"]
    canceled = core.submit(content, workflow="Strict%20Scan")
    core.post(f"file/{canceled}/cancel")
    assert core.get(f"hash/{sha1}").json()["data_id"] == strict  # the newest, any rule
    assert core.get(f"hash/{sha1}", headers={"rule": "File%20scan"}).json()["data_id"] == default_rule
    by_alias = core.get(f"hash/{sha1.upper()}", headers={"workflow": "Strict%20Scan"}).json()
    assert by_alias["data_id"] == strict and by_alias == core.report(strict)
    missing = core.get(f"hash/{sha1}", headers={"rule": "Other"})
    assert (missing.status_code, missing.json()) == (404, {sha1.upper(): "Not Found"})


@pytest.mark.parametrize("hash_unfinished", [False, True])
def test_hash_lookup_of_unfinished_scans(on_hand_clock, client, hash_unfinished):
    emulator, _ = on_hand_clock(scan_seconds=1.0, hash_unfinished=hash_unfinished)
    core = client(emulator.urls[0])
    md5 = hashlib.md5(b"queued").hexdigest()
    core.submit(b"scanning")
    queued = core.submit(b"queued")
    response = core.get(f"hash/{md5}")
    if hash_unfinished:
        assert response.status_code == 200 and response.json()["data_id"] == queued
        assert response.json()["process_info"]["result"] == "Processing" and "scan_results" not in response.json()
    else:
        assert (response.status_code, response.json()) == (404, {md5.upper(): "Not Found"})


def test_cdr_post_processing_and_converted_file(on_hand_clock, client):
    emulator, clock = on_hand_clock(scan_seconds=1.0)  # Deep CDR then runs from 1.0 s to 1.2 s
    core = client(emulator.urls[0])
    content = b"Hello " + CDR.encode() + b" world"
    data_id = core.submit(content, filename="doc.txt")
    clock.sleep(1.03)
    report = core.report(data_id)  # AV scan done, Deep CDR still running
    assert report["scan_results"]["progress_percentage"] == 100
    assert report["scan_results"]["scan_all_result_i"] == 0
    assert 80 <= report["process_info"]["progress_percentage"] < 100
    assert report["process_info"]["result"] == "Processing"
    assert core.get(f"file/converted/{data_id}").status_code == 404
    clock.sleep(0.2)
    done = core.report(data_id)
    assert complete(done)
    post = done["process_info"]["post_processing"]
    assert post["actions_ran"] == "Sanitized" and post["actions_failed"] == ""
    assert post["converted_to"] == "txt" and post["converted_destination"] == "doc_sanitized.txt"
    converted = core.get(f"file/converted/{data_id}")
    assert converted.status_code == 200 and converted.headers["Content-Type"] == "application/octet-stream"
    assert converted.content == b"Hello  world"


def test_cdr_of_a_large_file_serves_a_fixed_text(start_emulator, client):
    core = client(start_emulator(scan_seconds=0).urls[0])
    content = CDR.encode() + bytes(10 * 1024 * 1024)
    data_id = core.wait(core.submit(content), timeout=10)["data_id"]
    converted = core.get(f"file/converted/{data_id}")
    assert converted.status_code == 200 and 0 < len(converted.content) < 1000


def test_cdr_failure(start_emulator, client):
    core = client(start_emulator(scan_seconds=0.05).urls[0])
    report = core.scan(CDR_FAIL.encode())
    assert report["process_info"]["post_processing"]["actions_failed"] == "Sanitized"
    assert report["process_info"]["post_processing"]["actions_ran"] == ""
    response = core.get(f"file/converted/{report['data_id']}")
    assert (response.status_code, response.json()) == (404, {"err": "File could not be found"})


def test_engine_list_v4(start_emulator, client):
    engines = client(start_emulator().urls[0]).get("stat/engines").json()
    by_name = {e["eng_name"]: e for e in engines}
    assert len([e for e in engines if e["engine_type"] == "av"]) >= 12
    assert {"archive", "filetype"} <= {e["engine_type"] for e in engines}
    assert by_name["ClamAV"]["eng_type"] == "Bundled engine"
    assert by_name["Archive"]["def_time"] == ""
    assert any(not e["active"] or e["state"] == "temporary failed" for e in engines)
    for engine in engines:
        assert {
            "eng_id",
            "eng_name",
            "eng_ver",
            "eng_type",
            "engine_type",
            "def_time",
            "download_time",
            "download_progress",
            "active",
            "state",
            "type",
        } <= set(engine)
    stale = by_name["Vir.IT eXplorer"]["def_time"]
    fresh = by_name["ESET"]["def_time"]
    assert stale < fresh and stale[:10] != fresh[:10]


def test_a_wall_start_fixes_definition_and_upload_times(start_emulator, client):
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    core = client(start_emulator(wall_start=start).urls[0])
    times = {e["eng_name"]: e["def_time"] for e in core.get("stat/engines").json() if e["def_time"]}
    # Definitions 1 to 25 hours before the start, Vir.IT eXplorer's 30 days older.
    assert all("2026-02-28T11:00:00.000Z" <= t <= "2026-03-01T11:00:00.000Z" for n, t in times.items()
               if n != "Vir.IT eXplorer"), times
    assert "2026-01-29T11:00:00.000Z" <= times["Vir.IT eXplorer"] <= "2026-01-30T11:00:00.000Z"
    assert core.scan(b"one")["file_info"]["upload_timestamp"].startswith("2026-03-01T12:00:0")
    with pytest.raises(ValueError, match="wall_start"):
        Emulator(wall_start=datetime(2026, 3, 1))


def test_update_definitions_changes_the_engine_list_and_new_reports(start_emulator, client):
    emulator = start_emulator(scan_seconds=0)
    core = client(emulator.urls[0])
    before = core.get("stat/engines").json()
    old_report = core.scan(b"one")
    emulator.nodes[0].update_definitions()
    after = core.get("stat/engines").json()
    assert [e["eng_name"] for e in after] == [e["eng_name"] for e in before]
    changed = [(b["def_time"], a["def_time"]) for b, a in zip(before, after, strict=True) if b["def_time"]]
    assert changed and all(old < new for old, new in changed)
    new_report = core.scan(b"two")
    assert (
        new_report["scan_results"]["scan_details"]["ClamAV"]["def_time"]
        > old_report["scan_results"]["scan_details"]["ClamAV"]["def_time"]
    )
    assert "outdated_data" not in old_report["process_info"] and "outdated_data" not in new_report["process_info"]
    # The earlier scan's report is unchanged, except that it now says its definitions are outdated.
    old_report["process_info"]["outdated_data"] = ["enginedefinitions"]
    assert core.report(old_report["data_id"]) == old_report
    assert core.get(f"hash/{old_report['file_info']['sha256']}").json() == old_report


def test_outdated_marker_and_the_4_3_flavour(start_emulator, client):
    core = client(start_emulator(scan_seconds=0).urls[0])
    assert core.scan(b"MDEMU:OUTDATED")["process_info"]["outdated_data"] == ["enginedefinitions"]
    old = client(start_emulator(scan_seconds=0, report_flavour="4.3").urls[0])
    assert "outdated_data" not in old.scan(b"MDEMU:OUTDATED")["process_info"]


@pytest.mark.parametrize("md_version, status, err", [(4, 403, "Access denied"), (3, 401, "Invalid API key")])
def test_api_key(start_emulator, client, md_version, status, err):
    url = start_emulator(apikey="s3cret", md_version=md_version).urls[0]
    for key in (None, "wrong"):
        for method, path in [("GET", "stat/engines"), ("POST", "file"), ("GET", "file/abc"), ("GET", "version")]:
            response = client(url, apikey=key).session.request(method, url + path, data=b"x", timeout=5)
            assert (response.status_code, response.json()) == (status, {"err": err}), (key, path)
    good = client(url, apikey="s3cret")
    assert good.get("stat/engines").status_code == 200
    assert good.scan(b"fine")["scan_results"]["scan_all_result_i"] == 0


def test_no_api_key_configured_accepts_any(start_emulator, client):
    url = start_emulator().urls[0]
    assert client(url, apikey="anything").get("version").status_code == 200
    assert client(url).get("version").status_code == 200


def test_v3_paths_engines_and_reports(start_emulator, client):
    emulator = start_emulator(md_version=3, scan_seconds=0.05)
    url = emulator.urls[0]
    assert url.endswith("/metascan_rest/")
    core = client(url)
    assert core.get("version").json()["version"].startswith("3.")
    assert requests.get(url.replace("metascan_rest/", "version"), timeout=5).status_code == 404
    engines = core.get("stat/engines").json()
    names = [e["eng_name"] for e in engines]
    assert "ClamAV scan engine" in names and "ClamAV" not in names
    assert all("engine_type" not in e for e in engines)
    assert {"Bundled engine", "av", "archive", "filetype"} <= {e["eng_type"] for e in engines}
    times = [e["def_time"] for e in engines if e["def_time"]]
    assert all(len(t) == 22 and t[2] == "/" and t[-2:] in ("AM", "PM") for t in times)
    assert any(t.endswith("PM") for t in times) and any(t[11:13] == "12" for t in times)
    report = core.scan(EICAR.encode())
    assert "process_info" not in report
    assert report["scan_results"]["scan_details"]["ClamAV"]["scan_result_i"] == 1
    assert report["scan_results"]["scan_details"]["ClamAV"]["def_time"][-2:] in ("AM", "PM")


def test_stats_count_and_reset(start_emulator, client):
    emulator = start_emulator(scan_seconds=0)
    node = emulator.nodes[0]
    core = client(emulator.urls[0])
    data_id = core.submit(b"x")
    core.report(data_id)
    core.report(data_id)
    core.get("version")
    assert (node.stats.uploads, node.stats.result_requests, node.stats.requests) == (1, 2, 4)
    assert node.stats.scans[data_id].result_requests == 2
    node.reset_stats()
    assert (node.stats.uploads, node.stats.requests, node.stats.scans) == (0, 0, {})
    assert core.report(data_id)["data_id"] == data_id


def test_nodes_are_independent_and_on_consecutive_ports(start_emulator, client):
    for _ in range(5):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            emulator = start_emulator(nodes=3, port=port, faults={2: ["down"]})
            break
        except OSError:  # port + 1 or port + 2 was taken: try elsewhere
            continue
    else:
        pytest.fail("no three consecutive free ports found")
    assert [n.port for n in emulator.nodes] == [port, port + 1, port + 2]
    assert emulator.urls[1] == f"http://127.0.0.1:{port + 1}/"
    data_id = client(emulator.urls[0]).submit(b"x")
    assert client(emulator.urls[1]).get(f"file/{data_id}").status_code == 404
    with pytest.raises(requests.ConnectionError):
        client(emulator.urls[2]).get("version")
    emulator.nodes[2].clear_fault("down")
    assert client(emulator.urls[2]).get("version").status_code == 200


def test_stop_closes_the_sockets_of_every_node(start_emulator):
    emulator = start_emulator(nodes=4)
    session = requests.Session()
    assert all(session.get(url + "version", timeout=5).ok for url in emulator.urls)  # keep-alive connections open
    emulator.stop()
    for url in emulator.urls:
        with pytest.raises(requests.ConnectionError):
            session.get(url + "version", timeout=5)


def test_constructor_rejects_bad_arguments():
    for kwargs in [
        {"md_version": 5},
        {"nodes": 0},
        {"faults": {3: ["down"]}},
        {"concurrency": 0},
        {"faults": {0: ["melting"]}},
    ]:
        with pytest.raises(ValueError):
            Emulator(**kwargs)
