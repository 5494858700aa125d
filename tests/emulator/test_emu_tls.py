"""HTTPS with the emulator's own CA."""

import os

import pytest
import requests


def test_verify_with_the_ca_succeeds_and_default_verify_fails(start_emulator, client):
    emulator = start_emulator(tls=True, nodes=2, scan_seconds=0.05)
    assert all(url.startswith("https://127.0.0.1:") for url in emulator.urls)
    assert os.path.isfile(emulator.ca_path)
    for url in emulator.urls:
        core = client(url, verify=emulator.ca_path)
        assert core.get("version").json()["version"] == "4.18.0"
        assert core.scan(b"over tls")["scan_results"]["progress_percentage"] == 100
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + "version", timeout=5)
    assert client(emulator.urls[0].replace("127.0.0.1", "localhost"), verify=emulator.ca_path).get("version").ok


def test_tls_down_and_up(start_emulator, client):
    emulator = start_emulator(tls=True)
    core = client(emulator.urls[0], verify=emulator.ca_path)
    assert core.get("version").ok
    emulator.nodes[0].set_fault("down")
    with pytest.raises(requests.ConnectionError):
        core.get("version")
    emulator.nodes[0].clear_fault("down")
    assert core.get("version").ok


def test_cert_dir_and_temporary_directory(start_emulator, tmp_path):
    emulator = start_emulator(tls=True, cert_dir=tmp_path / "certs")
    assert emulator.ca_path == str((tmp_path / "certs" / "ca.pem").resolve())
    temporary = start_emulator(tls=True)
    ca_path = temporary.ca_path
    temporary.stop()
    assert not os.path.exists(ca_path)
    assert start_emulator().ca_path is None
