"""Several Cores over real HTTP (3 emulated nodes): one test per fault, each within the task deadline.

The service timeout is lowered to TIMEOUT seconds (as an admin would in the UI) so that a task's
deadline, and so these tests, stay short. A fault that must strike at a given moment is set when the
emulator shows that moment came (a poll, an upload); a back-off or refresh interval passes by stepping
the service's clock forward, not by sleeping.
"""

import json
import time

import pytest
import requests
from al_checks import run_task
from timing import PATIENCE, SteppedClock, assert_ended_in_time, in_background, wait_until

from mdcore_emulator import EICAR, Emulator, scan_marker
from mdservice.scan import Clock
from metadefender import MetaDefender, ServiceStartError

TIMEOUT = 6
SCAN = 0.1
# README: a failing Core sits out 5 s, doubling per failure in a row up to 60 s.
BACKOFF_MAX = 60.0


@pytest.fixture
def emulator():
    with Emulator(nodes=3, scan_seconds=SCAN, slow_seconds=1.5) as emu:
        yield emu


def start_service(urls, clock: SteppedClock | None = None, **config):
    """The service on these Cores with the service timeout at TIMEOUT; on `clock` when given. Without take-over
    (`reuse_scan_minutes` 0) files go round the Cores in turn, which these tests steer with `first_node`; files that
    may be taken over go to Cores picked by their hash (see test_take_over.py)."""
    service = MetaDefender({"base_url": urls, "md_timeout": 1, "max_md_scan_time": 1, "reuse_scan_minutes": 0,
                            **config})
    service.service_attributes.timeout = TIMEOUT
    if clock:
        service.clock = Clock(now=clock.now)
    service.start()
    return service


def scan(service, tmp_path, content=EICAR, name="f"):
    path = tmp_path / f"{name}.bin"
    path.write_text(content)
    started = time.monotonic()
    outcome = run_task(service, str(path), str(tmp_path / "tasking"))
    assert_ended_in_time(time.monotonic() - started, TIMEOUT)
    return outcome


def assert_detected(outcome):
    kind, result, _ = outcome
    assert kind == "result", result
    assert result.result.sections[0].title_text == "AV Detections as Infected or Suspicious"


def uploads(emu):
    return [node.stats.uploads for node in emu.nodes]


def first_node(service, index):
    """Make node `index` the next in rotation, so the fault under test is met first."""
    service.pool.cursor = index


def test_node_down_at_start_is_skipped_then_rejoins_when_back(emulator, tmp_path):
    emulator.nodes[0].set_fault("down")
    clock = SteppedClock()
    service = start_service(emulator.urls, clock)
    for i in range(6):
        assert_detected(scan(service, tmp_path, EICAR + str(i), name=str(i)))
    assert uploads(emulator)[0] == 0 and sum(uploads(emulator)) == 6
    emulator.nodes[0].clear_fault("down")
    clock.step(BACKOFF_MAX)  # its probe is due, however many times it failed
    for i in range(6):  # new files: the first six would be taken from the scans the Cores already have
        assert_detected(scan(service, tmp_path, f"{EICAR} back {i}", name=f"back{i}"))
    assert uploads(emulator)[0] >= 1


def test_node_dying_during_polling(emulator, tmp_path):
    service = start_service(emulator.urls)
    first_node(service, 0)
    dying = emulator.nodes[0]
    dying.scan_seconds = 30  # still scanning the file when it dies
    task, outcome = in_background(lambda: scan(service, tmp_path))
    wait_until(lambda: any(record.result_requests for record in dying.stats.scans.values()),
               "a poll of the scan on the first Core")
    dying.set_fault("down")
    task.join(PATIENCE)
    assert outcome, "the task did not end"
    assert_detected(outcome[0])
    assert uploads(emulator)[0] == 1 and sum(uploads(emulator)) == 2


@pytest.mark.parametrize("fault", ["upload_503", "result_500", "garbage", "lost", "drop"])
def test_fault_on_one_node_moves_the_file_to_the_next(emulator, tmp_path, fault):
    service = start_service(emulator.urls)
    emulator.nodes[0].set_fault(fault)
    first_node(service, 0)
    assert_detected(scan(service, tmp_path))
    assert sum(uploads(emulator)[1:]) == 1
    # A full queue (503) is busy, not broken: that Core stays in rotation; the other faults put it aside.
    assert service.pool.nodes[0].failed is (fault != "upload_503")


def test_a_core_low_on_disk_sits_out_and_its_files_go_to_the_other(tmp_path):
    with Emulator(nodes=2, scan_seconds=SCAN, faults={0: ["low_disk"]}) as emu:
        service = start_service(emu.urls)
        first_node(service, 0)
        for i in range(6):
            assert_detected(scan(service, tmp_path, EICAR + str(i), name=str(i)))
        assert uploads(emu) == [0, 6]
        low = service.pool.nodes[0]
        assert low.failed and "Not enough free disk space" in low.health.last_error


def test_the_only_core_low_on_disk_is_a_recoverable_error_quoting_core(tmp_path):
    with Emulator(nodes=1, scan_seconds=SCAN, faults={0: ["low_disk"]}) as emu:
        kind, error, _ = scan(start_service(emu.urls), tmp_path)
    assert kind == "error" and error["response"]["status"] == "FAIL_RECOVERABLE"
    assert "HTTP 400 (Failed to request scan. Not enough free disk space.)" in error["response"]["message"]


def test_scan_that_never_completes_on_one_node(emulator, tmp_path):
    service = start_service(emulator.urls)
    emulator.nodes[0].set_fault("never_complete")
    first_node(service, 0)
    assert_detected(scan(service, tmp_path))
    assert uploads(emulator)[0] == 1 and sum(uploads(emulator)[1:]) == 1


def test_node_slower_than_md_timeout(emulator, tmp_path):
    service = start_service(emulator.urls)
    emulator.nodes[0].set_fault("slow")
    first_node(service, 0)
    assert_detected(scan(service, tmp_path))
    assert sum(uploads(emulator)[1:]) == 1


def test_wrong_key_everywhere(tmp_path):
    with Emulator(nodes=3, scan_seconds=SCAN, apikey="right") as emu:
        with pytest.raises(ServiceStartError, match="api_key"):
            start_service(emu.urls, api_key="wrong")
        service = start_service(emu.urls, api_key="right")
        for node in emu.nodes:
            node.set_fault("bad_key")
        kind, error, _ = scan(service, tmp_path)
    assert kind == "error" and error["response"]["status"] == "FAIL_NONRECOVERABLE"
    assert "api_key" in error["response"]["message"]


def test_every_node_down(emulator, tmp_path):
    service = start_service(emulator.urls)
    for node in emulator.nodes:
        node.set_fault("down")
    kind, error, _ = scan(service, tmp_path)
    assert kind == "error" and error["response"]["status"] == "FAIL_RECOVERABLE"
    for url in emulator.urls:
        assert url in error["response"]["message"]


def test_queued_documents_without_scan_results(tmp_path):
    """Core's reports of a file waiting in its queue have no scan_results: the service polls on until the scan is done.
    The only scan slot is held by a file that scans until the test cancels it, once the service has been told twice
    that our file waits."""
    with Emulator(nodes=1, scan_seconds=SCAN, concurrency=1) as emu:
        service = start_service(emu.urls)
        node = emu.nodes[0]
        sent = requests.post(emu.urls[0] + "file", data=f"slot holder {scan_marker(60)}".encode(), timeout=5)
        sent.raise_for_status()
        holder = sent.json()["data_id"]
        queued = requests.get(emu.urls[0] + "stat/nodes", timeout=5).json()
        assert "scan_queue" in str(queued)
        told_waiting, answer = [], node.result

        def result(data_id):
            reply = answer(data_id)
            if data_id != holder and "scan_results" not in json.loads(reply.body):
                told_waiting.append(data_id)
                if len(told_waiting) == 2:
                    node.cancel(holder)
            return reply

        node.result = result
        assert_detected(scan(service, tmp_path))
        record = list(node.stats.scans.values())[-1]
    assert told_waiting == [record.data_id] * 2
    assert record.started_at > record.queued_at
    assert record.result_requests >= 3


def test_thirty_files_spread_evenly_over_three_healthy_nodes(emulator, tmp_path):
    service = start_service(emulator.urls)
    for i in range(30):
        kind, _, _ = scan(service, tmp_path, f"clean {i}", name=str(i))
        assert kind == "result"
    assert all(9 <= count <= 11 for count in uploads(emulator)), uploads(emulator)


def test_slow_node_gets_clearly_fewer_files(tmp_path):
    with Emulator(nodes=3, scan_seconds=SCAN, slow_seconds=0.4) as emu:
        service = start_service(emu.urls, md_timeout=2, max_md_scan_time=0.5)
        emu.nodes[2].set_fault("slow")
        for i in range(30):
            kind, _, _ = scan(service, tmp_path, f"clean {i}", name=str(i))
            assert kind == "result"
        counts = uploads(emu)
    assert counts[2] <= 5 and counts[0] + counts[1] >= 25, counts


def test_slow_cores_cannot_push_a_ten_second_task_past_its_deadline(tmp_path):
    with Emulator(nodes=3, scan_seconds=SCAN, slow_seconds=4) as emu:
        service = MetaDefender({"base_url": emu.urls, "engine_refresh_seconds": 600})
        service.service_attributes.timeout = 10
        clock = SteppedClock()
        service.clock = Clock(now=clock.now)
        service.start()
        for node in emu.nodes[:2]:
            node.set_fault("slow")
        clock.step(600)  # every engine list is due for a refresh
        path = tmp_path / "f.bin"
        path.write_text(EICAR)
        started = time.monotonic()
        outcome = run_task(service, str(path), str(tmp_path / "tasking"))
        elapsed = time.monotonic() - started
    assert_ended_in_time(elapsed, 10)
    assert_detected(outcome)
    assert [node.stats.uploads for node in emu.nodes] == [0, 0, 1]
