"""Shared setup: the framework reads the manifest at import time, so point it at ours first."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
os.environ["SERVICE_MANIFEST_PATH"] = str(ROOT / "service_manifest.yml")
