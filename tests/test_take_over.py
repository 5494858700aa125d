"""A retry takes over the scan an earlier attempt left on Core (README, "A retry takes over, it does not start over"),
against the emulator over real HTTP: the look-up `GET hash/{sha256}` (under header `rule` when one is set), Core's
"Not Found" answer, `reuse_scan_minutes` (minutes; 0 turns reuse off), finished and unfinished earlier scans.

What a user notices is counted on the emulator: how many files the service uploaded, which scans Core made and
whether the service's own copy was canceled. An earlier attempt's scan is sent here by a plain HTTP client, as an
earlier attempt (or another instance) left it on Core.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
import requests
from al_checks import run_task
from timing import wait_until

from mdcore_emulator import EICAR, Emulator, scan_marker
from mdservice.scan import Clock
from metadefender import MetaDefender

# The emulator's AV engines that are not on the default blocklist (Antiy-AVL is): each flags EICAR.
EICAR_ENGINES = ["AhnLab", "Avira", "Bitdefender", "ClamAV", "ESET", "Emsisoft", "Ikarus", "K7", "NANOAV",
                 "Vir.IT eXplorer", "Zillya!"]
SAMPLE = EICAR.encode()
SHA256 = hashlib.sha256(SAMPLE).hexdigest()
# A file that keeps Core's only scan slot busy until the test cancels it.
BLOCKER = f"blocker {scan_marker(60)}".encode()
CANCELED = 19  # Core's overall result of a canceled scan
# Longer than any wait between polls (at most 3 s): a service that waits this long holds its result back.
HELD = 5.0


class Core:
    """One emulated Core, what the service uploaded to it and the hash look-ups it answered."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.node = emulator.nodes[0]
        self.url = emulator.urls[0]
        self.lookups: list[tuple[str, str | None]] = []
        self.service_uploads: list[str] = []
        self.on_lookup = self.on_upload = lambda: None
        answer_lookup, accept_upload = self.node.hash_lookup, self.node.upload

        def hash_lookup(digest, rule):
            self.lookups.append((digest, rule))
            reply = answer_lookup(digest, rule)
            self.on_lookup()
            return reply

        def upload(digest, submission):
            reply = accept_upload(digest, submission)
            if submission.display_name == "sample.bin":  # the name the service sends the task's file under
                self.service_uploads.append(json.loads(reply.body)["data_id"])
                self.on_upload()
            return reply

        self.node.hash_lookup, self.node.upload = hash_lookup, upload

    def send(self, content: bytes, rule: str = "") -> str:
        """Upload `content` as an earlier attempt did (under `rule`, else Core's default); its data id."""
        headers = {"Content-Type": "application/octet-stream", "filename": "earlier-attempt.bin"}
        if rule:
            headers["rule"] = quote(rule)
        answer = requests.post(self.url + "file", data=content, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["data_id"]

    def wait_finished(self, data_id: str) -> None:
        """Wait until Core reports that scan finished."""
        wait_until(lambda: self.report(data_id)["process_info"]["progress_percentage"] == 100, f"scan {data_id}")

    def report(self, data_id: str) -> dict:
        return requests.get(self.url + f"file/{data_id}", timeout=10).json()


@pytest.fixture
def core4():
    with Emulator(scan_seconds=0.1) as emulator:
        yield Core(emulator)


def started(core: Core, **config) -> MetaDefender:
    service = MetaDefender({"base_url": core.url, **config})
    service.start()
    return service


def scan(service: MetaDefender, tmp_path, content: bytes = SAMPLE):
    path = tmp_path / "sample.bin"
    path.write_bytes(content)
    kind, result, _ = run_task(service, str(path), str(tmp_path / "tasking"))
    assert kind == "result", result
    return result


def flagged_by(result) -> list[str]:
    return sorted(json.loads(s.body)["av_name"] for s in result.result.sections if s.depth == 1 and s.heuristic)


def test_a_finished_earlier_scan_is_the_result_without_a_second_upload(core4, tmp_path):
    service = started(core4)
    scan(service, tmp_path, b"another file first")  # Core 4 names the rule our files get in this scan's report
    earlier = core4.send(SAMPLE)
    core4.wait_finished(earlier)
    result = scan(service, tmp_path)
    assert flagged_by(result) == EICAR_ENGINES
    assert len(core4.service_uploads) == 1, "the retry sent the file again"
    assert list(core4.node.stats.scans) == [core4.service_uploads[0], earlier]
    # Looked up by its SHA-256 without a rule header; the first look-up's "Not Found" did not stop the second.
    assert core4.lookups == [(hashlib.sha256(b"another file first").hexdigest(), None), (SHA256, None)]


def test_under_a_rule_the_earlier_scan_under_that_rule_is_taken_not_a_newer_one_under_another(core4, tmp_path):
    service = started(core4, rule="Multiscan & CDR")
    ours = core4.send(SAMPLE, rule="Multiscan & CDR")
    other = core4.send(SAMPLE, rule="Strict Scan")  # newer, under a rule this service does not use
    core4.wait_finished(other)
    result = scan(service, tmp_path)
    assert flagged_by(result) == EICAR_ENGINES
    assert core4.service_uploads == []
    assert list(core4.node.stats.scans) == [ours, other]
    assert core4.lookups == [(SHA256, "Multiscan & CDR")]


def test_under_a_rule_an_earlier_scan_under_another_rule_only_is_sent_again(core4, tmp_path):
    service = started(core4, rule="Multiscan & CDR")
    core4.wait_finished(core4.send(SAMPLE, rule="Strict Scan"))
    result = scan(service, tmp_path)
    assert flagged_by(result) == EICAR_ENGINES
    (sent,) = core4.service_uploads
    assert core4.node.stats.scans[sent].rule == "Multiscan & CDR"


def test_a_fresh_instance_on_a_core_that_lists_one_rule_takes_over_an_unfinished_scan(tmp_path):
    """A Core 5 that shows unfinished scans: the retry follows the earlier scan, queued when looked up, to its end."""
    with Emulator(scan_seconds=0.1, core_version=5, hash_unfinished=True) as emulator:
        core = Core(emulator)
        service = started(core)
        blocker = core.send(BLOCKER)
        earlier = core.send(SAMPLE)  # waits in the queue behind the blocker
        core.on_lookup = lambda: core.node.cancel(blocker)  # the earlier scan starts once the retry has seen it
        result = scan(service, tmp_path)
        polled = core.node.stats.scans[earlier].result_requests
    assert flagged_by(result) == EICAR_ENGINES
    assert core.service_uploads == []
    assert core.lookups == [(SHA256, None)]
    assert polled >= 1, "the earlier scan's result was never asked for"


def test_a_core_that_hides_unfinished_scans_gets_a_copy_that_is_canceled_once_the_earlier_result_is_in(tmp_path):
    """Then nothing waits for a slot (the second blocker runs), so the result is not held back (README, "Attempts are
    paced to the Cores")."""
    with Emulator(scan_seconds=0.1) as emulator:
        core = Core(emulator)
        service = started(core, rule="File scan")
        waits = []
        service.clock = Clock(sleep=lambda seconds: waits.append(seconds) if seconds > HELD else time.sleep(seconds))
        first_blocker = core.send(BLOCKER)
        earlier = core.send(SAMPLE)
        core.send(BLOCKER + b" second")  # keeps the service's copy waiting after the earlier scan ends
        core.on_upload = lambda: core.node.cancel(first_blocker)  # the earlier scan runs once the copy is queued
        result = scan(service, tmp_path)
        (copy,) = core.service_uploads
        copy_report = core.report(copy)
    assert flagged_by(result) == EICAR_ENGINES
    assert earlier != copy
    assert copy_report["scan_results"]["scan_all_result_i"] == CANCELED, "the copy took a slot of its own"
    assert waits == [], "the result was held back although no file waited for a slot"


def later_service(core: Core, minutes_later: float, **config) -> MetaDefender:
    """A service whose wall clock runs `minutes_later` minutes ahead of Core's (deadlines on the real clock)."""
    service = started(core, rule="File scan", **config)
    cores_clock = core.node.clock
    service.clock = Clock(wall=lambda: cores_clock.wall(cores_clock.now()) + timedelta(minutes=minutes_later))
    return service


@pytest.mark.parametrize(("reuse_scan_minutes", "uploads"), [(15, 0), (5, 1)])
def test_reuse_scan_minutes_is_how_many_minutes_old_an_earlier_scan_may_be(core4, tmp_path, reuse_scan_minutes,
                                                                           uploads):
    core4.wait_finished(core4.send(SAMPLE))
    service = later_service(core4, 10, reuse_scan_minutes=reuse_scan_minutes)  # the earlier scan is 10 minutes old
    result = scan(service, tmp_path)
    assert flagged_by(result) == EICAR_ENGINES
    assert len(core4.service_uploads) == uploads


def test_reuse_scan_minutes_0_sends_every_file_and_asks_core_for_no_earlier_scan(core4, tmp_path):
    core4.wait_finished(core4.send(SAMPLE))
    result = scan(started(core4, rule="File scan", reuse_scan_minutes=0), tmp_path)
    assert flagged_by(result) == EICAR_ENGINES
    assert len(core4.service_uploads) == 1
    assert core4.lookups == []
