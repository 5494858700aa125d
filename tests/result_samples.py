"""The samples whose results are kept in tests/results/, as Assemblyline services keep theirs, and how to make them.

Each sample is a small file made here: text with the markers that make the Core emulator answer as a Core would
(docs/emulator.md), never real malware (the EICAR test string at most). It is scanned by the service against the
emulator, whose wall clock is fixed (`WALL_START`) so that definition times do not change from run to run.
`tests/results/<sha256>_<name>/` holds `params.json` (the service config, submission parameters and file name the
sample is scanned with) and `result.json`, what Assemblyline's TestHelper (assemblyline-service-utilities) makes of
the result: files, heuristics and tags, and every section under `extra`. tests/test_results.py scans each sample
again and compares with TestHelper's comparison. After a change to what analysts see, look at the differences it
reports, then write the results anew (and review them with git diff):

    make results        (or, from the repository root: .venv/bin/python -m tests.result_samples)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "tests" / "results"
# The service framework reads its manifest when imported.
os.environ.setdefault("SERVICE_MANIFEST_PATH", str(ROOT / "service_manifest.yml"))

from assemblyline_service_utilities.testing.helper import TestHelper  # noqa: E402
from cart import pack_stream  # noqa: E402

import metadefender  # noqa: E402
from mdcore_emulator import ARCHIVE, CDR, EICAR, ENCRYPTED, MIXED, PUA, SUSPICIOUS, VULNERABLE, Emulator  # noqa: E402

# The emulated Cores' start: their engines' definitions are 1 to 25 hours older (Vir.IT eXplorer's 30 days).
WALL_START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FOLDER = re.compile(r"[0-9a-f]{64}_.+")


@dataclass(frozen=True)
class Sample:
    """A file to scan: its content, the name it is submitted under, the service config (beside base_url), the
    submission parameters and the submission's temporary data (such as the archive passwords Assemblyline found)."""

    content: str
    filename: str
    config: dict = field(default_factory=dict)
    submission_params: dict = field(default_factory=dict)
    temp_submission_data: dict = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()

    def params(self) -> dict:
        """The sample's params.json, as TestHelper reads it."""
        return {"config": self.config, "submission_params": self.submission_params,
                "temp_submission_data": self.temp_submission_data, "filename": self.filename}


SAMPLES = {
    "infected": Sample(f"{EICAR}\n", "eicar.com"),
    "clean": Sample("Minutes of the weekly meeting: nothing to report.\n", "minutes.txt"),
    "suspicious": Sample(f"{SUSPICIOUS} {PUA}\n", "setup.exe"),
    "failures": Sample(f"{MIXED}\n", "mixed.bin"),
    "cdr": Sample(f"{EICAR} {CDR}\n", "report.docx", config={"fetch_sanitized_file": True}),
    "archive": Sample(f"{ARCHIVE}\n", "bundle.zip"),
    # Opened by the second password Assemblyline shares for the submission, after the analyst's archive_password.
    "encrypted": Sample(f"{ENCRYPTED}=fox {EICAR}\n", "protected.zip", submission_params={"archive_password": "bear"},
                        temp_submission_data={"passwords": ["cow", "fox"]}),
    "vulnerable": Sample(f"{VULNERABLE}\n", "flashplayer.exe"),
}


def folder_of(name: str) -> str:
    """The folder of sample `name` in tests/results/ (TestHelper finds the sample by the SHA-256 before the `_`)."""
    return f"{SAMPLES[name].sha256}_{name}"


def service_on(url: str) -> type[metadefender.MetaDefender]:
    """The service class TestHelper instantiates, with base_url set to the emulated Core at `url`."""

    class MetaDefender(metadefender.MetaDefender):
        def __init__(self, config: dict | None = None) -> None:
            super().__init__({**(config or {}), "base_url": url})

    return MetaDefender


@contextmanager
def emulated_core() -> Iterator[str]:
    """An emulated Core 4 on loopback, its wall clock at WALL_START; yields its URL."""
    with Emulator(scan_seconds=0.05, wall_start=WALL_START) as emulator:
        yield emulator.urls[0]


def results_helper(url: str, samples_dir: Path) -> TestHelper:
    """A TestHelper for the service against the Core at `url`, each sample written to `samples_dir` as TestHelper
    finds samples: neutered by CaRT, as `<sha256>.cart`."""
    for sample in SAMPLES.values():
        with open(samples_dir / f"{sample.sha256}.cart", "wb") as carted:
            pack_stream(io.BytesIO(sample.content.encode()), carted)
    return TestHelper(service_on(url), str(RESULTS), str(samples_dir))


def regenerate() -> None:
    """Scan every sample and write its folder in tests/results/ anew; remove the folders of samples no longer listed.

    TestHelper's own regeneration (`regenerate_results`) cannot be used: it checks each heuristic's file type as a
    regular expression, and the manifest's `*` (any file) is not one.
    """
    for stale in (path for path in RESULTS.glob("*") if FOLDER.fullmatch(path.name)):
        if stale.name not in {folder_of(name) for name in SAMPLES}:
            shutil.rmtree(stale)
    with tempfile.TemporaryDirectory() as samples_dir, emulated_core() as url:
        helper = results_helper(url, Path(samples_dir))
        for name, sample in SAMPLES.items():
            folder = RESULTS / folder_of(name)
            folder.mkdir(parents=True, exist_ok=True)
            write_json(folder / "params.json", sample.params())
            write_json(folder / "result.json", helper._execute_sample(folder.name))
            print(f"{folder.relative_to(ROOT)}: {name}")


def write_json(path: Path, document: dict) -> None:
    """Write `document` as TestHelper writes results: indented, keys sorted."""
    with open(path, "w") as output:
        json.dump(document, output, indent=2, allow_nan=False, sort_keys=True)
        output.write("\n")


if __name__ == "__main__":
    regenerate()
