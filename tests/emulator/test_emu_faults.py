"""Every fault, switched on and off while the emulator runs."""

import time

import pytest
import requests
from timing import wait_until

from mdcore_emulator import FAULTS

ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def setup(start_emulator, client):
    """(node, client) of a one-node emulator with short scan and slow times."""
    emulator = start_emulator(scan_seconds=0.1, slow_seconds=0.3)
    return emulator.nodes[0], client(emulator.urls[0])


def test_fault_names():
    assert set(FAULTS) == {
        "down",
        "slow",
        "upload_503",
        "low_disk",
        "result_500",
        "garbage",
        "never_complete",
        "lost",
        "drop",
        "bad_key",
    }


def test_unknown_fault_is_rejected(setup):
    node, _ = setup
    with pytest.raises(ValueError):
        node.set_fault("melting")


def test_down_refuses_and_recovers_on_the_same_port(setup, client):
    node, core = setup
    port = node.port
    assert core.get("version").ok  # leaves a keep-alive connection open
    node.set_fault("down")
    assert node.faults == {"down"}
    with pytest.raises(requests.ConnectionError):
        core.get("version")  # the open connection was closed and no new one is accepted
    with pytest.raises(requests.ConnectionError):
        client(core.base_url).get("version")
    node.clear_fault("down")
    assert node.port == port and node.faults == set()
    assert core.get("version").ok and client(core.base_url).get("version").ok


def test_drop_closes_without_an_answer(setup):
    node, core = setup
    node.set_fault("drop")
    with pytest.raises(requests.ConnectionError):
        core.get("version")
    with pytest.raises(requests.ConnectionError):
        core.upload(b"x" * 100_000)
    node.clear_fault("drop")
    assert core.get("version").ok
    assert node.stats.uploads == 0


def test_garbage_answers_html_everywhere(setup):
    node, core = setup
    data_id = core.submit(b"x")
    node.set_fault("garbage")
    for response in (core.get("version"), core.get("stat/engines"), core.get(f"file/{data_id}"), core.upload(b"y")):
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
        with pytest.raises(ValueError):
            response.json()
    node.clear_fault("garbage")
    assert core.get("version").json()["product_id"] == "MSCL"


# The delay of the latency and slow tests: an answer given without it comes far sooner, even on a busy machine.
DELAY = 1.0


def _answer_seconds(core, path: str = "version") -> float:
    begun = time.monotonic()
    assert core.get(path).ok
    return time.monotonic() - begun


def test_latency_delays_every_answer_per_core_or_for_all(start_emulator, client):
    emulator = start_emulator(nodes=2, latency=DELAY, node_latency={1: 0.0}, slow_seconds=DELAY)
    near, far = client(emulator.urls[1]), client(emulator.urls[0])
    assert _answer_seconds(far) >= DELAY and _answer_seconds(far, "stat/nodes") >= DELAY
    assert _answer_seconds(near) < DELAY
    emulator.nodes[1].set_fault("slow")
    assert _answer_seconds(near) >= DELAY


def test_slow_delays_every_response(start_emulator, client):
    emulator = start_emulator(slow_seconds=DELAY)
    node, core = emulator.nodes[0], client(emulator.urls[0])
    node.set_fault("slow")
    assert _answer_seconds(core) >= DELAY
    node.clear_fault("slow")
    assert _answer_seconds(core) < DELAY


def test_upload_503(setup):
    node, core = setup
    node.set_fault("upload_503")
    response = core.upload(b"x" * 200_000)
    assert (response.status_code, response.json()) == (503, {"err": "Server is too busy. Try again later."})
    assert core.get("version").ok  # the same keep-alive connection still works
    node.clear_fault("upload_503")
    assert core.upload(b"x").status_code == 200


def test_low_disk_refuses_uploads_with_400(setup):
    node, core = setup
    node.set_fault("low_disk")
    response = core.upload(b"x" * 200_000)
    assert (response.status_code, response.json()) == (400, {"err": "Failed to request scan. Not enough free disk "
                                                                    "space."})
    assert core.get("version").ok and node.stats.uploads == 0
    node.clear_fault("low_disk")
    assert core.upload(b"x").status_code == 200


def test_result_500(setup):
    node, core = setup
    data_id = core.submit(b"x")
    node.set_fault("result_500")
    response = core.get(f"file/{data_id}")
    assert response.status_code == 500 and response.json()["err"]
    node.clear_fault("result_500")
    assert core.get(f"file/{data_id}").status_code == 200


def test_lost(setup):
    node, core = setup
    data_id = core.submit(b"x")
    node.set_fault("lost")
    response = core.get(f"file/{data_id}")
    assert (response.status_code, response.json()) == (404, {data_id: "Not Found"})
    node.clear_fault("lost")
    assert core.wait(data_id)["data_id"] == data_id


def test_never_complete(on_hand_clock, client):
    emulator, clock = on_hand_clock(scan_seconds=0.1)
    node, core = emulator.nodes[0], client(emulator.urls[0])
    node.set_fault("never_complete")
    stuck = core.submit(b"x")
    clock.sleep(0.3)  # three times its scan time
    report = core.report(stuck)
    assert report["scan_results"]["progress_percentage"] < 100
    assert report["scan_results"]["scan_all_result_i"] == 255
    assert report["process_info"]["progress_percentage"] < 100
    assert node.stats.processing_seconds(stuck) is None
    node.clear_fault("never_complete")
    done = core.submit(b"y")
    clock.sleep(0.1)
    assert core.report(done)["scan_results"]["progress_percentage"] == 100
    assert core.report(stuck)["scan_results"]["progress_percentage"] < 100


@pytest.mark.parametrize("md_version, status", [(4, 403), (3, 401)])
def test_bad_key(start_emulator, client, md_version, status):
    emulator = start_emulator(md_version=md_version, apikey="k")
    node, core = emulator.nodes[0], client(emulator.urls[0], apikey="k")
    node.set_fault("bad_key")
    for response in (core.get("version"), core.get("stat/engines"), core.upload(b"x")):
        assert response.status_code == status and "err" in response.json()
    node.clear_fault("bad_key")
    assert core.get("stat/engines").ok


def test_faults_at_construction_and_clear_faults(start_emulator, client):
    emulator = start_emulator(faults={0: ["lost", "slow"]}, slow_seconds=0.1)
    node = emulator.nodes[0]
    assert node.faults == {"lost", "slow"}
    node.clear_faults()
    assert node.faults == set()
    assert client(emulator.urls[0]).get("version").ok


def _refuses(core) -> bool:
    try:
        core.get("version")
    except requests.ConnectionError:
        return True
    return False


def test_an_outage_refuses_connections_after_the_first_upload_then_keeps_the_scans(start_emulator, client):
    emulator = start_emulator(scan_seconds=0.1, outages={0: (0.5, 2.0)})
    core = client(emulator.urls[0])
    data_id = core.submit(b"a file")
    wait_until(lambda: _refuses(client(core.base_url)), "the outage")
    wait_until(lambda: not _refuses(client(core.base_url)), "the end of the outage")
    assert client(core.base_url).report(data_id)["data_id"] == data_id
    client(core.base_url).submit(b"another file")  # an outage is played once
    assert not _refuses(client(core.base_url))


def test_each_core_can_have_its_own_scan_slots(start_emulator, client):
    emulator = start_emulator(nodes=2, concurrency=1, node_concurrency={1: 3})
    statuses = [client(url).get("stat/nodes").json()[0]["statuses"][0] for url in emulator.urls]
    assert [status["cpu_cores"] for status in statuses] == [1, 3]
