"""`python -m mdcore_emulator`: help, start-up lines, request log, clean stop on SIGTERM / SIGINT."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mdcore_emulator import FAULTS
from mdcore_emulator.verdicts import MARKERS

REPO = Path(__file__).resolve().parents[2]
OPTIONS = [
    "--port",
    "--host",
    "--nodes",
    "--apikey",
    "--scan-seconds",
    "--md-version",
    "--concurrency",
    "--queue-limit",
    "--slow-seconds",
    "--fault",
    "--engine-list",
    "--report-flavour",
    "--node-scan-seconds",
    "--latency",
    "--node-latency",
    "--hash-unfinished",
    "--core-version",
    "--rule",
    "--not-ready",
    "--limited-polls",
    "--retry-after",
    "--tls",
    "--cert-dir",
    "--quiet",
]


def _run(*args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "mdcore_emulator", *args],
        cwd=kwargs.get("cwd", REPO),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _free_port_pair() -> int:
    """A port p with p and p + 1 free right now."""
    while True:
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port


def _stop(process: subprocess.Popen, signum: int) -> tuple[str, str]:
    process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, err
    return out, err


def test_help_documents_every_option_marker_and_fault():
    result = subprocess.run(
        [sys.executable, "-m", "mdcore_emulator", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        check=True,
    )
    for word in [*OPTIONS, *FAULTS, *MARKERS[1:], "MDEMU:SCAN=", "EICAR"]:
        assert word in result.stdout, word


def test_serves_v3_nodes_logs_requests_and_stops_on_sigterm():
    port = _free_port_pair()
    process = _run(
        "--port", str(port), "--nodes", "2", "--md-version", "3", "--scan-seconds", "0.1", "--fault", "1:lost"
    )
    try:
        lines = [process.stdout.readline().strip() for _ in range(2)]
        assert lines == [
            f"node 0: http://127.0.0.1:{port}/metascan_rest/",
            f"node 1: http://127.0.0.1:{port + 1}/metascan_rest/",
        ]
        assert requests.get(f"http://127.0.0.1:{port}/metascan_rest/version", timeout=5).json()["version"] < "4"
        assert requests.get(f"http://127.0.0.1:{port + 1}/metascan_rest/file/abc", timeout=5).status_code == 404
    finally:
        _, err = _stop(process, signal.SIGTERM)
    assert "node 0 GET /metascan_rest/version 200" in err
    assert "node 1 GET /metascan_rest/file/abc 404" in err


def test_core_5_rules_and_not_ready_nodes():
    port = _free_port_pair()
    process = _run("--port", str(port), "--nodes", "2", "--core-version", "5", "--rule", "Strict:1024",
                   "--rule", "Archive:scan", "--not-ready", "1:scan queue above threshold", "--quiet")
    try:
        assert process.stdout.readline().strip() == f"node 0: http://127.0.0.1:{port}/"
        process.stdout.readline()
        rules = requests.get(f"http://127.0.0.1:{port}/file/rules", timeout=5).json()
        assert rules == [
            {"name": "Strict", "max_file_size": 1024},
            {"name": "Archive:scan", "max_file_size": 200_000_000},
        ]
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        not_ready = requests.get(f"http://127.0.0.1:{port + 1}/readyz", timeout=5)
        assert (not_ready.status_code, not_ready.json()["reason"]) == (503, "scan queue above threshold")
    finally:
        _stop(process, signal.SIGTERM)


def test_limited_polls_answer_429_with_the_retry_after_given():
    port = _free_port_pair()
    process = _run("--port", str(port), "--limited-polls", "1", "--retry-after", "2", "--quiet")
    try:
        url = process.stdout.readline().split(": ", 1)[1].strip()
        data_id = requests.post(url + "file", data=b"x", timeout=5).json()["data_id"]
        limited = requests.get(url + f"file/{data_id}", timeout=5)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
        assert requests.get(url + f"file/{data_id}", timeout=5).status_code == 200
    finally:
        _stop(process, signal.SIGTERM)


def test_tls_quiet_and_sigint(tmp_path):
    process = _run("--port", str(_free_port_pair()), "--tls", "--quiet", cwd=tmp_path)
    try:
        url = process.stdout.readline().split(": ", 1)[1].strip()
        ca_line = process.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:") and url.endswith("/")
        ca_path = ca_line.removeprefix("CA certificate: ")
        assert Path(ca_path) == (tmp_path / ".emulator-tls" / "ca.pem").resolve()
        assert requests.get(url + "version", verify=ca_path, timeout=5).ok
    finally:
        _, err = _stop(process, signal.SIGINT)
    assert err == ""


@pytest.mark.parametrize(
    "args",
    [["--fault", "3:down"], ["--fault", "0:melting"], ["--md-version", "5"], ["--nodes", "0"],
     ["--latency", "-1"], ["--node-latency", "1:0.1"], ["--node-latency", "0:x"], ["--core-version", "6"],
     ["--rule", "Strict:10"], ["--core-version", "5", "--not-ready", "1:busy"],
     ["--core-version", "5", "--rule", ":5"], ["--limited-polls", "-1"], ["--retry-after", "x"]],
)
def test_bad_arguments_exit_2(args):
    result = subprocess.run(
        [sys.executable, "-m", "mdcore_emulator", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=10,
    )
    assert result.returncode == 2 and "error" in result.stderr
