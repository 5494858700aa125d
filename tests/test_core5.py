"""Today's Cores (the emulator's Core 5 flavour, over real HTTP, through the task handling): readiness, rules and
their size limits, with the fallbacks on Cores that lack each endpoint."""

import json
from dataclasses import replace

import pytest
import requests
from al_checks import run_task

from mdcore_emulator import EICAR, Emulator, scan_marker
from mdcore_emulator.core import json_reply
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
        service = start_service(emulator.urls)
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


def test_core_5s_free_slots_steer_files_away_from_a_core_whose_cpu_count_looks_free(tmp_path):
    with Emulator(nodes=2, scan_seconds=0.2, core_version=5) as emulator:  # each scans one file at a time
        for node in emulator.nodes:
            reporting_machine_cpus(node, 8)
        busy = requests.post(emulator.urls[0] + "file", data=scan_marker(30).encode(), timeout=5)
        assert busy.status_code == 200  # another client's long scan holds Core 0's only slot
        service = start_service(emulator.urls, max_md_scan_time=5)
        for index in range(8):
            assert scan(service, tmp_path, name=f"c{index}")[0] == "result"
        # One file in a Core that reports 8 CPU cores looks like room; its 0 available_slots say otherwise. (A queue
        # reading that comes in late can still send one file there, which then moves on to the free Core.)
        assert uploads(emulator)[0] - 1 <= 1 and uploads(emulator)[1] == 8
