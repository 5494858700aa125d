"""Assemblyline's safelisted virus names are re-read on the engine-refresh schedule, never at a task's expense.

Assemblyline's service server is stubbed at the service's API interface (`get_safelist`), the boundary with
Assemblyline; Core is answered by requests-mock. The service runs on a fake clock: the refresh interval passes when the
test moves the clock on.
"""

from __future__ import annotations

import logging
import threading

import pytest
from al_checks import run_task
from core_answers import CLAMAV_EICAR, CLAMAV_ONLY, finished_report, mock_core
from fakes import FakeClock, clock_of
from timing import PATIENCE, wait_until

from metadefender import MetaDefender

CORE = "http://core-1:8008/"
EICAR_NAME = CLAMAV_EICAR["ClamAV"]["threat_found"]
REFRESH = 60.0


class ServiceServer:
    """Answers `get_safelist` with the current `names`; `error` makes it fail, `hold` makes it wait (until set, or
    for far longer than a task may take)."""

    def __init__(self, names: list[str]):
        self.names = names
        self.error: Exception | None = None
        self.hold: threading.Event | None = None
        self.calls = 0

    def get_safelist(self, tag_types):
        self.calls += 1
        if self.hold:
            self.hold.wait(2 * PATIENCE)
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


@pytest.fixture
def clock():
    return FakeClock()


def started(clock: FakeClock) -> MetaDefender:
    service = MetaDefender({"base_url": CORE, "engine_refresh_seconds": REFRESH})
    service.clock = clock_of(clock)
    service.start()
    return service


def hit_score(service, sample, tmp_path) -> int:
    kind, result, _ = run_task(service, sample, str(tmp_path))
    assert kind == "result"
    return result.result.sections[1].heuristic.score


def reread_later(service: MetaDefender, clock: FakeClock) -> None:
    """Move the clock past the refresh interval, ask for the re-read and wait for it."""
    clock.sleep(REFRESH + 1)
    reread = service.refresh_safelist(clock.now())
    assert reread is not None
    reread.join(PATIENCE)
    assert not reread.is_alive(), "the re-read never ended"


def test_a_name_safelisted_while_the_service_runs_is_picked_up(core, server, sample, tmp_path, clock):
    service = started(clock)
    assert hit_score(service, sample, tmp_path) == 1000
    server.names = [EICAR_NAME]
    reread_later(service, clock)
    assert hit_score(service, sample, tmp_path) == 0


def test_a_name_removed_from_the_safelist_scores_again(core, server, sample, tmp_path, clock):
    server.names = [EICAR_NAME]
    service = started(clock)
    assert hit_score(service, sample, tmp_path) == 0
    server.names = []
    reread_later(service, clock)
    assert hit_score(service, sample, tmp_path) == 1000


def test_no_reread_before_the_refresh_interval(core, server, clock):
    service = started(clock)
    assert server.calls == 1
    clock.sleep(REFRESH / 2)
    assert service.refresh_safelist(clock.now()) is None
    assert server.calls == 1


def test_a_task_after_the_refresh_interval_starts_the_reread(core, server, sample, tmp_path, clock):
    server.names = [EICAR_NAME]
    service = started(clock)
    assert hit_score(service, sample, tmp_path) == 0
    assert server.calls == 1, "a task re-read the names before the refresh interval"
    server.names = []
    clock.sleep(REFRESH + 1)
    hit_score(service, sample, tmp_path)
    wait_until(lambda: not service.safelist, "the re-read started by the task")
    assert server.calls == 2
    assert hit_score(service, sample, tmp_path) == 1000


def test_a_failing_service_server_keeps_the_last_list_with_a_warning(core, server, sample, tmp_path, caplog, clock):
    server.names = [EICAR_NAME]
    service = started(clock)
    server.error = ConnectionError("service server down")
    with caplog.at_level(logging.WARNING):
        reread_later(service, clock)
    assert "safelisted virus names" in caplog.text and "1 read before" in caplog.text
    assert service.safelist == frozenset({EICAR_NAME})
    assert hit_score(service, sample, tmp_path) == 0


def test_a_hanging_service_server_delays_no_task(core, server, sample, tmp_path, clock):
    """Tasks after the refresh interval score with the names read last while the re-read hangs: a task that waited
    for it would get the new (empty) list, so score 1000."""
    server.names = [EICAR_NAME]
    service = started(clock)
    server.hold = threading.Event()
    server.names = []
    clock.sleep(REFRESH + 1)
    try:
        assert hit_score(service, sample, tmp_path) == 0, "the task waited for the re-read"
        wait_until(lambda: server.calls == 2, "the re-read")
        clock.sleep(REFRESH + 1)
        assert hit_score(service, sample, tmp_path) == 0
        assert server.calls == 2, "a second re-read started while the first one hung"
    finally:
        server.hold.set()
    wait_until(lambda: not service.safelist, "the re-read once the server answered")
