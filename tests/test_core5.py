"""Today's Cores (the emulator's Core 5 flavour, over real HTTP, through the task handling): readiness, rules and
their size limits, with the fallbacks on Cores that lack each endpoint."""

import json
from dataclasses import replace

import pytest
import requests
from al_checks import run_task

from mdcore_emulator import EICAR, Emulator, scan_marker
from mdcore_emulator.core import error_reply, json_reply
from metadefender import MetaDefender, ServiceStartError

TIMEOUT = 6


def start_service(urls, **config):
    service = MetaDefender({"base_url": urls, "md_timeout": 1, **config})
    service.service_attributes.timeout = TIMEOUT
    service.start()
    return service


def scan(service, tmp_path, content: bytes | None = None, name="f"):
    """One task on a file of its own content (the same content would be answered by the scan Core already has)."""
    path = tmp_path / f"{name}.bin"
    path.write_bytes(content if content is not None else f"{EICAR}\n{name}".encode())
    return run_task(service, str(path), str(tmp_path / "tasking"))


def uploads(emulator) -> list[int]:
    return [node.stats.uploads for node in emulator.nodes]


def error_message(outcome) -> tuple[str, str]:
    kind, doc, _ = outcome
    assert kind == "error", doc
    return doc["response"]["status"], doc["response"]["message"]


def test_a_core_that_says_it_is_not_ready_gets_no_files_and_rejoins_when_ready(tmp_path):
    with Emulator(nodes=2, scan_seconds=0.1, core_version=5) as emulator:
        emulator.nodes[0].set_ready(False, "scan queue above threshold")
        service = start_service(emulator.urls, reuse_scan_minutes=0)  # files go round the Cores in turn
        assert service.pool.nodes[0].failed
        assert "scan queue above threshold" in service.pool.nodes[0].health.last_error
        for index in range(4):
            assert scan(service, tmp_path, name=f"a{index}")[0] == "result"
        assert uploads(emulator) == [0, 4]
        emulator.nodes[0].set_ready(True)
        node = service.pool.nodes[0]
        node.health = replace(node.health, retry_at=0.0)  # its back-off is over
        for index in range(4):
            assert scan(service, tmp_path, name=f"b{index}")[0] == "result"
        assert not service.pool.nodes[0].failed and uploads(emulator)[0] >= 1


def test_a_healthy_core_that_turns_not_ready_is_left_once_asked_again(tmp_path):
    with Emulator(nodes=2, scan_seconds=0.1, core_version=5) as emulator:
        service = start_service(emulator.urls)
        emulator.nodes[1].set_ready(False, "not enough active engines")
        for node in service.pool.nodes:
            node.ready_checked_at -= 3600  # the next task asks again
        assert scan(service, tmp_path)[0] == "result"
        assert service.pool.nodes[1].failed and not service.pool.nodes[0].failed


def test_cores_without_readyz_or_rules_are_used_as_before(tmp_path):
    with Emulator(nodes=1, scan_seconds=0.1) as emulator:  # Core 4: both answer 404
        service = start_service(emulator.urls, rule="File scan")
        node = service.pool.nodes[0]
        assert not node.abilities.checks_ready and not node.abilities.lists_rules and not node.failed
        assert scan(service, tmp_path)[0] == "result"
        requests_before = emulator.nodes[0].stats.requests
        assert scan(service, tmp_path, name="g")[0] == "result"
        # A task costs the look-up of an earlier scan, the upload and its polls: nothing asks readyz or rules again.
        assert emulator.nodes[0].stats.requests - requests_before <= 1 + 1 + 4


def test_a_rule_no_core_has_stops_the_start_naming_it_and_the_rules_offered():
    with Emulator(nodes=2, scan_seconds=0.1, core_version=5, rules={"File scan": 10**8, "Strict": 1024}) as emulator:
        with pytest.raises(ServiceStartError, match=r"'Multiscan'.*'File scan', 'Strict'"):
            start_service(emulator.urls, rule="Multiscan")


def test_a_core_that_lacks_the_rule_is_not_used_and_a_warning_names_it(tmp_path, caplog):
    with Emulator(nodes=2, scan_seconds=0.1, core_version=5, rules={"File scan": 10**8, "Strict": 10**8}) as emulator:
        node = emulator.nodes[1]
        node.settings = replace(node.settings, rules=(("File scan", 10**8),))  # this Core lacks "Strict"
        service = start_service(emulator.urls, rule="Strict")
        assert any(emulator.urls[1] in r.message and "Strict" in r.message for r in caplog.records
                   if r.levelname == "WARNING")
        for index in range(4):
            assert scan(service, tmp_path, name=f"s{index}")[0] == "result"
        assert uploads(emulator) == [4, 0]


def test_a_file_larger_than_the_rule_takes_is_refused_without_an_upload(tmp_path):
    with Emulator(nodes=1, scan_seconds=0.1, core_version=5, rules={"Strict": 64}) as emulator:
        service = start_service(emulator.urls, rule="Strict")
        status, message = error_message(scan(service, tmp_path, content=b"x" * 100))
        assert status == "FAIL_NONRECOVERABLE"
        assert "100 bytes" in message and "64 bytes" in message and "'Strict'" in message
        assert uploads(emulator) == [0]
        assert scan(service, tmp_path, content=b"small", name="small")[0] == "result"


def test_a_rule_whose_max_file_size_is_0_limits_nothing(tmp_path):
    with Emulator(nodes=1, scan_seconds=0.1, core_version=5, rules={"File scan": 0}) as emulator:
        service = start_service(emulator.urls)
        assert scan(service, tmp_path, content=b"x" * 5000)[0] == "result"
        assert uploads(emulator) == [1]


def listing_rules(node, rules: list) -> None:
    """Make an emulated Core answer GET file/rules with `rules` (uploads keep its own rules)."""
    node.rules = lambda: json_reply(200, rules)


@pytest.mark.parametrize("entry", [{"name": "File scan"}, {"name": "File scan", "max_file_size": -1},
                                   {"name": "File scan", "max_file_size": "100"},
                                   {"name": "File scan", "max_file_size": None}])
def test_a_rule_without_a_usable_max_file_size_limits_nothing(tmp_path, entry):
    with Emulator(nodes=1, scan_seconds=0.1, core_version=5) as emulator:
        listing_rules(emulator.nodes[0], [entry])
        service = start_service(emulator.urls)
        assert service.pool.nodes[0].rules == {"File scan": None}
        assert scan(service, tmp_path, content=b"x" * 5000)[0] == "result"
        assert uploads(emulator) == [1]


def filling_the_queue(emulator, index: int) -> None:
    """Fill Core `index`'s queue with another client's long scans: one in its only scan slot, the rest waiting in
    every place of its queue (queue_limit 2)."""
    for filler in range(3):
        response = requests.post(emulator.urls[index] + "file", data=f"{scan_marker(30)} {filler}".encode(), timeout=5)
        assert response.status_code == 200


def reporting_machine_cpus(node, cpus: int) -> None:
    """Make an emulated Core report `cpus` CPU cores in stat/nodes, as a real Core reports its machine's."""
    honest = node.nodes_status

    def status():
        answer = json.loads(honest().body)
        for item in answer:
            for entry in item["statuses"]:
                entry["cpu_cores"] = cpus
        return json_reply(200, answer)

    node.nodes_status = status


def uploads_sent(node) -> list[str]:
    """The names of the files sent to an emulated Core from now on, whether it takes them or not."""
    sent, honest = [], node.upload_refused

    def refused(submission, size):
        sent.append(submission.display_name)
        return honest(submission, size)

    node.upload_refused = refused
    return sent


def test_a_core_whose_queue_is_full_gets_no_file_while_another_has_room(tmp_path):
    with Emulator(nodes=2, scan_seconds=0.1, core_version=5, queue_limit=2) as emulator:
        for node in emulator.nodes:
            reporting_machine_cpus(node, 8)  # 3 files for 8 CPU cores: by cpu_cores alone, Core 0 has room
        filling_the_queue(emulator, 0)
        status = requests.get(emulator.urls[0] + "stat/nodes", timeout=5).json()[0]["statuses"][0]
        assert status["scan_queue_details"] == {"available_slots": 0, "total_scan_queue": 2}
        sent = uploads_sent(emulator.nodes[0])
        service = start_service(emulator.urls)
        for index in range(10):
            assert scan(service, tmp_path, name=f"q{index}")[0] == "result"
        assert uploads(emulator) == [3, 10]  # the full Core kept only the other client's 3 files
        assert sent == []  # none of ours was even sent to it
        full = service.pool.nodes[0]
        assert (full.health.failures, full.pace.skip_turns) == (0, 0)  # passed over, not put aside


def test_a_full_core_that_does_not_count_its_free_places_refuses_files_as_before(tmp_path):
    with Emulator(nodes=2, scan_seconds=0.1, queue_limit=2) as emulator:  # Core 4: no scan_queue_details
        for node in emulator.nodes:
            reporting_machine_cpus(node, 8)
        filling_the_queue(emulator, 0)
        sent = uploads_sent(emulator.nodes[0])
        service = start_service(emulator.urls)
        for index in range(10):
            assert scan(service, tmp_path, name=f"q{index}")[0] == "result"
        assert uploads(emulator) == [3, 10]
        assert sent and service.pool.nodes[0].health.failures == 0  # it is sent files; its 503s say full, not broken


def reporting_queue_places(node, free: int, total: int) -> None:
    """Make an emulated Core 5 report `free` of `total` places free in its scan queue (a queue of another size)."""
    honest = node.nodes_status

    def status():
        answer = json.loads(honest().body)
        for item in answer:
            for entry in item["statuses"]:
                entry["scan_queue_details"] = {"available_slots": free, "total_scan_queue": total}
        return json_reply(200, answer)

    node.nodes_status = status


def test_between_idle_cores_the_one_with_more_free_places_gets_the_file(tmp_path):
    with Emulator(nodes=2, scan_seconds=0.1, core_version=5) as emulator:
        reporting_queue_places(emulator.nodes[0], 100, 100)
        reporting_queue_places(emulator.nodes[1], 500, 500)
        service = start_service(emulator.urls, reuse_scan_minutes=0)  # files go round the Cores in turn
        service.pool.cursor = 0  # Core 0's turn
        assert scan(service, tmp_path)[0] == "result"
        assert uploads(emulator) == [0, 1]


# --- request rate limiting (Core 5.13 and later): 429 with Retry-After ---------------------------------------------

def test_every_file_is_scanned_when_two_of_each_scans_polls_are_limited(tmp_path):
    with Emulator(nodes=1, scan_seconds=0.1, limited_polls=2, retry_after=0.2) as emulator:
        service = start_service(emulator.urls)
        for index in range(5):
            assert scan(service, tmp_path, name=f"r{index}")[0] == "result"
        assert emulator.nodes[0].stats.limited_requests == 10
        assert service.pool.nodes[0].health.failures == 0


def test_a_core_that_limits_polls_keeps_its_file_and_is_not_put_aside(tmp_path):
    with Emulator(nodes=2, scan_seconds=0.1) as emulator:
        limiting = emulator.nodes[0]
        limiting.settings = replace(limiting.settings, limited_polls=2, retry_after=0.2)
        service = start_service(emulator.urls, reuse_scan_minutes=0)  # files go round the Cores in turn
        service.pool.cursor = 0
        assert scan(service, tmp_path)[0] == "result"
        assert uploads(emulator) == [1, 0]
        node = service.pool.nodes[0]
        assert (node.failed, node.pace.skip_turns) == (False, 0)


def test_a_core_that_limits_polls_until_the_deadline_fails_the_task_saying_so(tmp_path):
    with Emulator(nodes=1, scan_seconds=0.1, limited_polls=1000, retry_after=0.2) as emulator:
        service = start_service(emulator.urls)
        service.service_attributes.timeout = 3
        status, message = error_message(scan(service, tmp_path))
        assert status == "FAIL_RECOVERABLE"
        assert "HTTP 429" in message and "Retry-After 0.2 s" in message and "limited our polls" in message
        assert not service.pool.nodes[0].failed


def test_a_limited_upload_is_sent_again_after_its_retry_after(tmp_path):
    with Emulator(nodes=1, scan_seconds=0.1) as emulator:
        node, refusals = emulator.nodes[0], [error_reply(429, "Too many requests")._replace(
            headers=(("Retry-After", "0.3"),))]
        honest = node.upload_refused
        node.upload_refused = lambda submission, size: refusals.pop() if refusals else honest(submission, size)
        sent = uploads_sent(node)
        service = start_service(emulator.urls)
        assert scan(service, tmp_path)[0] == "result"
        assert (len(sent), uploads(emulator)) == (2, [1])
        assert service.pool.nodes[0].health.failures == 0
