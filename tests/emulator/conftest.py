"""Fixtures for the emulator tests: emulators that are always stopped, and a small Core client."""

import time

import pytest
import requests
from fakes import FakeClock
from timing import PATIENCE

from mdcore_emulator import Emulator
from mdcore_emulator.processing import Clock


class CoreClient:
    """A minimal MetaDefender Core client over one keep-alive session."""

    def __init__(self, base_url: str, apikey: str | None = None, verify=True) -> None:
        self.base_url = base_url
        self.verify = verify  # per request: requests lets REQUESTS_CA_BUNDLE override Session.verify
        self.session = requests.Session()
        if apikey is not None:
            self.session.headers["apikey"] = apikey

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=10, verify=self.verify, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.base_url + path, timeout=10, verify=self.verify, **kwargs)

    def upload(self, content: bytes, **headers) -> requests.Response:
        headers.setdefault("Content-Type", "application/octet-stream")
        return self.post("file", data=content, headers=headers)

    def submit(self, content: bytes, **headers) -> str:
        """Upload and return the data_id (the upload must succeed)."""
        response = self.upload(content, **headers)
        assert response.status_code == 200, response.text
        return response.json()["data_id"]

    def report(self, data_id: str) -> dict:
        response = self.get(f"file/{data_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, data_id: str, timeout: float = PATIENCE) -> dict:
        """Poll until the job is complete (process_info at 100, or scan_results for v3), on an emulator on the real
        clock."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.report(data_id)
            if complete(report):
                return report
            assert time.monotonic() < deadline, f"scan {data_id} did not complete: {report}"
            time.sleep(0.02)

    def scan(self, content: bytes, **headers) -> dict:
        """Upload and wait for the final report."""
        return self.wait(self.submit(content, **headers))


def complete(report: dict) -> bool:
    progress = report.get("process_info", report.get("scan_results", {})).get("progress_percentage", 0)
    return "scan_results" in report and progress == 100


@pytest.fixture
def start_emulator():
    """Factory: start_emulator(**Emulator kwargs) -> a started Emulator, stopped after the test."""
    started = []

    def start(**kwargs) -> Emulator:
        kwargs.setdefault("scan_seconds", 0.1)
        emulator = Emulator(**kwargs).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def on_hand_clock(start_emulator):
    """Factory: on_hand_clock(**Emulator kwargs) -> (a started Emulator whose scans run on a clock that moves only by
    hand, that clock): `clock.sleep(seconds)` lets that much time pass on every Core."""

    def start(**kwargs) -> tuple[Emulator, FakeClock]:
        clock = FakeClock()
        return start_emulator(clock=Clock(clock.now), **kwargs), clock

    return start


@pytest.fixture(scope="session")
def client():
    """Factory: client(base_url, apikey=None, verify=True) -> CoreClient."""
    return CoreClient
