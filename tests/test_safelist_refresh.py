"""Assemblyline's safelisted virus names are re-read on the engine-refresh schedule, never at a task's expense.

Assemblyline's service server is stubbed at the service's API interface (`get_safelist`), the boundary with
Assemblyline; Core is answered by requests-mock.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from al_checks import run_task
from core_answers import CLAMAV_EICAR, CLAMAV_ONLY, finished_report, mock_core

from metadefender import MetaDefender

CORE = "http://core-1:8008/"
EICAR_NAME = CLAMAV_EICAR["ClamAV"]["threat_found"]
REFRESH = 60.0


class ServiceServer:
    """Answers `get_safelist` with the current `names`; `error` makes it fail, `hold` makes it wait."""

    def __init__(self, names: list[str]):
        self.names = names
        self.error: Exception | None = None
        self.hold: threading.Event | None = None
        self.calls = 0

    def get_safelist(self, tag_types):
        self.calls += 1
        if self.hold:
            self.hold.wait(10)
        if self.error:
            raise self.error
        return {"match": {"av.virus_name": list(self.names)}, "regex": {}}


@pytest.fixture
def server(monkeypatch):
    stub = ServiceServer([])
    monkeypatch.setattr(MetaDefender, "get_api_interface", lambda self: stub)
    return stub


@pytest.fixture
def core(requests_mock):
    return mock_core(requests_mock, CORE, CLAMAV_ONLY, finished_report(CLAMAV_EICAR))


def started(refresh: float = REFRESH) -> MetaDefender:
    service = MetaDefender({"base_url": CORE, "engine_refresh_seconds": refresh})
    service.start()
    return service


def hit_score(service, sample, tmp_path) -> int:
    kind, result, _ = run_task(service, sample, str(tmp_path))
    assert kind == "result"
    return result.result.sections[1].heuristic.score


def reread_later(service: MetaDefender) -> None:
    """Ask for a re-read as if the refresh interval had passed, and wait for it."""
    reread = service.refresh_safelist(time.monotonic() + REFRESH + 1)
    assert reread is not None
    reread.join(5)


def test_a_name_safelisted_while_the_service_runs_is_picked_up(core, server, sample, tmp_path):
    service = started()
    assert hit_score(service, sample, tmp_path) == 1000
    server.names = [EICAR_NAME]
    reread_later(service)
    assert hit_score(service, sample, tmp_path) == 0


def test_a_name_removed_from_the_safelist_scores_again(core, server, sample, tmp_path):
    server.names = [EICAR_NAME]
    service = started()
    assert hit_score(service, sample, tmp_path) == 0
    server.names = []
    reread_later(service)
    assert hit_score(service, sample, tmp_path) == 1000


def test_no_reread_before_the_refresh_interval(core, server):
    service = started()
    assert server.calls == 1
    assert service.refresh_safelist(time.monotonic() + REFRESH / 2) is None
    assert server.calls == 1


def test_a_failing_service_server_keeps_the_last_list_with_a_warning(core, server, sample, tmp_path, caplog):
    server.names = [EICAR_NAME]
    service = started()
    server.error = ConnectionError("service server down")
    with caplog.at_level(logging.WARNING):
        reread_later(service)
    assert "safelisted virus names" in caplog.text and "1 read before" in caplog.text
    assert service.safelist == frozenset({EICAR_NAME})
    assert hit_score(service, sample, tmp_path) == 0


def test_a_hanging_service_server_delays_no_task(core, server, sample, tmp_path):
    server.names = [EICAR_NAME]
    service = started(refresh=0.01)
    server.hold = threading.Event()
    server.names = []
    time.sleep(0.02)
    try:
        began = time.monotonic()
        assert hit_score(service, sample, tmp_path) == 0, "the task waited for the re-read"
        time.sleep(0.02)
        assert hit_score(service, sample, tmp_path) == 0
        assert time.monotonic() - began < 5
        assert server.calls == 2, "a second re-read started while the first one hung"
    finally:
        server.hold.set()
    deadline = time.monotonic() + 5
    while service.safelist and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.safelist == frozenset()
