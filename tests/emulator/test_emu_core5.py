"""The Core 5 flavour (core_version=5) over real HTTP: version, readyz, rules, stat/nodes, reports."""

import pytest

from mdcore_emulator import EICAR, FAILED, Emulator

TOO_LARGE = "Failed to request scan. File size exceeded the maximum size permitted by your configuration."


def test_version_and_readyz_switched_at_run_time(start_emulator, client):
    emulator = start_emulator(core_version=5, nodes=2)
    first, second = (client(url) for url in emulator.urls)
    assert first.get("version").json() == {"product_id": "MSCL", "version": "5.14.0"}
    assert first.get("stat/nodes").json()[0]["statuses"][0]["version"] == "5.14.0"
    assert (first.get("readyz").status_code, first.get("readyz").json()) == (200, {"ready": True})
    emulator.nodes[0].set_ready(False, "scan queue above threshold")
    response = first.get("readyz")
    assert (response.status_code, response.json()) == (503, {"ready": False, "reason": "scan queue above threshold"})
    assert second.get("readyz").status_code == 200  # per node
    emulator.nodes[0].set_ready(True)
    assert first.get("readyz").status_code == 200


def test_core_4_has_no_readyz_nor_rules(start_emulator, client):
    core = client(start_emulator().urls[0])
    assert core.get("readyz").status_code == 404
    assert core.get("file/rules").status_code == 404
    assert core.get("version").json()["version"] == "4.18.0"
    status = core.get("stat/nodes").json()[0]["statuses"][0]
    assert "scan_queue_details" not in status
    assert core.upload(b"x" * 10, rule="Anything").status_code == 200


def test_scan_queue_details_count_places_in_the_queue(on_hand_clock, client):
    emulator, _ = on_hand_clock(core_version=5, scan_seconds=1.0, concurrency=2, queue_limit=7)
    core = client(emulator.urls[0])
    status = core.get("stat/nodes").json()[0]["statuses"][0]
    assert status["scan_queue_details"] == {"available_slots": 7, "total_scan_queue": 7}  # idle: 7 of 7 free
    ids = [core.submit(f"file {i}".encode()) for i in range(3)]  # two being scanned, one waiting
    status = core.get("stat/nodes").json()[0]["statuses"][0]
    assert status["scan_queue_details"] == {"available_slots": 6, "total_scan_queue": 7}
    assert (status["scan_queue"], status["cpu_cores"]) == (3, 2)
    core.post(f"file/{ids[2]}/cancel")
    core.post(f"file/{ids[0]}/cancel")
    status = core.get("stat/nodes").json()[0]["statuses"][0]
    assert status["scan_queue_details"]["available_slots"] == 7 and status["scan_queue"] == 1


def test_a_full_queue_has_no_free_place_and_refuses_the_next_upload(start_emulator, client):
    core = client(start_emulator(core_version=5, scan_seconds=5.0, concurrency=1, queue_limit=2).urls[0])
    for index in range(3):  # one being scanned, two waiting
        core.submit(f"file {index}".encode())
    status = core.get("stat/nodes").json()[0]["statuses"][0]
    assert status["scan_queue_details"] == {"available_slots": 0, "total_scan_queue": 2}
    refused = core.upload(b"one more")
    assert (refused.status_code, refused.json()) == (503, {"err": "Server is too busy. Try again later."})


def test_default_rule_and_its_size_limit(start_emulator, client):
    core = client(start_emulator(core_version=5).urls[0])
    assert core.get("file/rules", headers={"user_agent": "mdservice"}).json() == [
        {"name": "File scan", "max_file_size": 200_000_000}
    ]
    assert core.upload(b"hello").status_code == 200


def test_rules_refuse_unknown_rules_and_large_files(start_emulator, client):
    emulator = start_emulator(core_version=5, rules={"File scan": 100 * 2**20, "Strict": 1024})
    core = client(emulator.urls[0])
    assert core.get("file/rules").json() == [
        {"name": "File scan", "max_file_size": 100 * 2**20},
        {"name": "Strict", "max_file_size": 1024},
    ]
    assert core.scan(b"x" * 1024, rule="Strict")["process_info"]["profile"] == "Strict"
    large = core.upload(b"x" * 1025, workflow="Strict")
    assert (large.status_code, large.json()) == (500, {"err": TOO_LARGE})
    unknown = core.upload(b"x", rule="No%20Such")
    assert unknown.status_code == 400 and "No Such" in unknown.json()["err"]
    assert core.upload(b"x" * 1025).status_code == 200  # the default rule "File scan" allows it
    assert emulator.nodes[0].stats.uploads == 2


def test_a_rule_whose_max_file_size_is_0_takes_files_of_any_size(start_emulator, client):
    core = client(start_emulator(core_version=5, rules={"Unlimited": 0}).urls[0])
    assert core.get("file/rules").json() == [{"name": "Unlimited", "max_file_size": 0}]
    assert core.upload(b"x" * 4096, rule="Unlimited").status_code == 200


def test_core_5_report_fields(start_emulator, client):
    emulator = start_emulator(core_version=5, scan_seconds=0.05)
    core = client(emulator.urls[0])
    clean = core.scan(b"clean")
    process = clean["process_info"]
    assert (process["result"], process["blocked_reason"]) == ("Allowed", "")
    assert process["verdicts"] == ["No Threat Detected"]
    assert process["outdated_data"] == []
    infected = core.scan(EICAR.encode())["process_info"]
    assert (infected["result"], infected["blocked_reason"]) == ("Blocked", "Infected")
    assert infected["verdicts"] == ["Infected"]
    failed = core.scan(FAILED.encode())["scan_results"]["scan_details"]
    assert failed["AhnLab"] == {**failed["AhnLab"], "scan_result_i": 3, "threat_found": "scan engine failed: timeout"}
    assert failed["Zillya!"]["threat_found"] == "scan engine failed: timeout"
    assert failed["ClamAV"]["threat_found"] == ""
    emulator.nodes[0].update_definitions()
    assert core.report(clean["data_id"])["process_info"]["outdated_data"] == ["enginedefinitions"]


def test_core_5_report_while_processing(start_emulator, client):
    core = client(start_emulator(core_version=5, scan_seconds=1.0).urls[0])
    core.submit(b"first")
    queued = core.report(core.submit(b"second"))["process_info"]
    assert (queued["result"], queued["verdicts"], queued["outdated_data"]) == ("Processing", [], [])


@pytest.mark.parametrize(
    "kwargs",
    [{"core_version": 6}, {"core_version": 5, "md_version": 3}, {"core_version": 5, "report_flavour": "4.3"},
     {"rules": {"Strict": 1}}, {"core_version": 5, "rules": {"Strict": -1}}],
)
def test_bad_core_5_settings(kwargs):
    with pytest.raises(ValueError):
        Emulator(**kwargs)
