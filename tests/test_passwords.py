"""Every archive password through the task handling: the submission's archive_password, then the passwords Assemblyline
shares as temporary submission data, sent as archivepwd, archivepwd1, ... (emulated Core over real HTTP)."""

import json
import logging

import pytest
from al_checks import run_task

from mdcore_emulator import EICAR, ENCRYPTED, Emulator
from mdcore_emulator.core import error_reply
from metadefender import MetaDefender

HITS = "AV Detections as Infected or Suspicious"
SECRET = "S3cret_Pw-77"


@pytest.fixture
def emulator():
    with Emulator(nodes=1, scan_seconds=0.05) as emu:
        yield emu


def start_service(emulator):
    service = MetaDefender({"base_url": emulator.urls, "md_timeout": 2})
    service.service_attributes.timeout = 6
    service.start()
    return service


def task(service, tmp_path, content: str, params=None, temp_data=None, name="f"):
    path = tmp_path / f"{name}.bin"
    path.write_text(content)
    return run_task(service, str(path), str(tmp_path / "tasking"), params=params, temp_data=temp_data)


def sent_passwords(emulator) -> tuple[str, ...]:
    """The archive passwords Core received with the latest upload."""
    return list(emulator.nodes[0].stats.scans.values())[-1].archive_passwords


def titles(result) -> list[str]:
    return [section.title_text for section in result.result.sections]


def test_a_password_shared_by_assemblyline_opens_the_archive(emulator, tmp_path):
    service = start_service(emulator)
    kind, result, _ = task(service, tmp_path, f"{ENCRYPTED}=fox {EICAR}", params={"archive_password": "bear"},
                           temp_data={"passwords": ["cow", "fox"]})
    assert kind == "result" and titles(result)[0] == HITS
    assert sent_passwords(emulator) == ("bear", "cow", "fox")


def test_without_the_password_that_opens_it_the_archive_stays_encrypted(emulator, tmp_path):
    service = start_service(emulator)
    kind, result, _ = task(service, tmp_path, f"{ENCRYPTED}=fox {EICAR}", temp_data={"passwords": ["cow"]})
    assert kind == "result" and HITS not in titles(result)
    assert sent_passwords(emulator) == ("cow",)


@pytest.mark.parametrize(("param", "shared", "sent"), [
    ("fox", ["fox", "cow", "fox", ""], ("fox", "cow")),  # each once, in order, none empty
    ("", None, ()),  # nothing to send: no archivepwd header, as before
    ("infected", None, ("infected",)),  # the submission parameter alone, as before
    ("", ["pw\udc80", 42, "ok"], ("ok",)),  # what a header cannot carry is skipped
])
def test_the_passwords_sent(emulator, tmp_path, param, shared, sent):
    service = start_service(emulator)
    temp_data = {} if shared is None else {"passwords": shared}
    assert task(service, tmp_path, "clean", params={"archive_password": param}, temp_data=temp_data)[0] == "result"
    assert sent_passwords(emulator) == sent


def test_at_most_twenty_passwords_go_with_a_file_and_the_log_does_not_show_the_others(emulator, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    shared = [f"{SECRET}{index:02d}" for index in range(25)]
    service = start_service(emulator)
    assert task(service, tmp_path, "clean", temp_data={"passwords": shared})[0] == "result"
    assert sent_passwords(emulator) == tuple(shared[:20])
    assert "5 archive password(s) left out" in caplog.text
    assert SECRET not in caplog.text


def test_passwords_go_with_a_file_only_up_to_8_kib_of_headers(emulator, tmp_path):
    shared = ["a" * 3000, "é" * 1000, "b" * 3000, "c" * 100]  # "é" is 6 bytes URL-encoded: 6000
    service = start_service(emulator)
    assert task(service, tmp_path, "clean", temp_data={"passwords": shared})[0] == "result"
    assert sent_passwords(emulator) == ("a" * 3000, "b" * 3000, "c" * 100)


def test_no_password_shows_in_logs_errors_or_results(emulator, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    service = start_service(emulator)
    kind, result, doc = task(service, tmp_path, EICAR, temp_data={"passwords": [SECRET]})
    assert kind == "result" and SECRET not in json.dumps([doc["result"], doc["response"]])
    node = emulator.nodes[0]
    node.upload_refused = lambda submission, size: error_reply(400, f"Bad archivepwd: {submission.archive_passwords}")
    kind, error, _ = task(service, tmp_path, EICAR, temp_data={"passwords": [SECRET]}, name="g")
    assert kind == "error" and "Bad archivepwd" in error["response"]["message"]
    assert SECRET not in error["response"]["message"] and SECRET not in caplog.text


@pytest.mark.parametrize(("temp_data", "uploads"), [({"passwords": ["cow"]}, 2), ({}, 1)])
def test_a_scan_made_with_passwords_never_stands_for_a_later_task(emulator, tmp_path, temp_data, uploads):
    service = start_service(emulator)
    for name in ("first", "second"):
        assert task(service, tmp_path, EICAR, temp_data=temp_data, name=name)[0] == "result"
    assert emulator.nodes[0].stats.uploads == uploads
