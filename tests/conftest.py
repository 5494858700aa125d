"""Shared setup: the framework reads the manifest at import time, so point it at ours first."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
os.environ["SERVICE_MANIFEST_PATH"] = str(ROOT / "service_manifest.yml")


@pytest.fixture
def sample(tmp_path):
    """A small file to scan."""
    path = tmp_path / "sample.bin"
    path.write_bytes(b"sample content")
    return str(path)
