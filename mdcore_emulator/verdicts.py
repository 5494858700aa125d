"""Markers in a file's content and the per-engine verdicts they produce (pure, no I/O).

`MarkerScanner` finds the markers while an upload streams in (also across chunk
boundaries); `engine_results` turns the markers found into one `Verdict` per AV engine;
`overall_code` is Core's summary of those verdicts. The markers are listed in the package
docstring.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SUSPICIOUS = "MDEMU:SUSPICIOUS"
PUA = "MDEMU:PUA"
FAILED = "MDEMU:FAILED"
NOT_SCANNED = "MDEMU:NOT-SCANNED"
ENCRYPTED = "MDEMU:ENCRYPTED"
UNSUPPORTED = "MDEMU:UNSUPPORTED"
CLEANED = "MDEMU:CLEANED"
NONAME = "MDEMU:NONAME"
UNKNOWN_CODE = "MDEMU:UNKNOWN-CODE"
MIXED = "MDEMU:MIXED"
CDR = "MDEMU:CDR"
CDR_FAIL = "MDEMU:CDR-FAIL"
ARCHIVE = "MDEMU:ARCHIVE"
HEUR = "MDEMU:HEUR"
VULNERABLE = "MDEMU:VULNERABLE"
OUTDATED = "MDEMU:OUTDATED"
SCAN_PREFIX = "MDEMU:SCAN="
ARCHIVE_PASSWORD = "infected"  # the archivepwd that opens an ENCRYPTED file without a password of its own

MARKERS = (
    EICAR,
    SUSPICIOUS,
    PUA,
    FAILED,
    NOT_SCANNED,
    ENCRYPTED,
    UNSUPPORTED,
    CLEANED,
    NONAME,
    UNKNOWN_CODE,
    MIXED,
    CDR,
    CDR_FAIL,
    ARCHIVE,
    HEUR,
    VULNERABLE,
    OUTDATED,
)

RESULT_TEXT = {
    0: "No Threat Detected",
    1: "Infected",
    2: "Suspicious",
    3: "Failed",
    4: "Cleaned / Deleted",
    5: "Unknown",
    6: "Quarantined",
    7: "Skipped Clean",
    8: "Skipped Dirty",
    9: "Exceeded Archive Depth",
    10: "Not Scanned",
    11: "Aborted",
    12: "Encrypted Archive",
    13: "Exceeded Archive Size",
    14: "Exceeded Archive File Number",
    15: "Password Protected Document",
    16: "Exceeded Archive Timeout",
    17: "File type Mismatch",
    18: "Potentially Vulnerable File",
    19: "Canceled",
    20: "Sensitive data found",
    21: "Yara Rule Matched",
    22: "Potentially Unwanted Program",
    23: "Unsupported file type",
    255: "In Progress",
}


def scan_marker(seconds: float) -> str:
    """The marker that sets a file's scan time, e.g. scan_marker(1.3) == "MDEMU:SCAN=1.3"."""
    return f"{SCAN_PREFIX}{seconds:g}"


class Verdict(NamedTuple):
    """One engine's result: `code` is its scan_result_i, `threat` its threat_found."""

    code: int
    threat: str = ""


@dataclass(frozen=True)
class Markers:
    """What a file contains: the marker strings found, the MDEMU:SCAN= value, if any, and the password of an
    ENCRYPTED file (MDEMU:ENCRYPTED=<password>; None: ARCHIVE_PASSWORD opens it)."""

    names: frozenset[str] = frozenset()
    scan_seconds: float | None = None
    password: str | None = None


# EICAR, or MDEMU:ENCRYPTED=<password>, or "MDEMU:" + an upper-case token (dash-separated) + optional "=<number>".
_PATTERN = re.compile(
    re.escape(EICAR.encode())
    + rb"|MDEMU:ENCRYPTED=([A-Za-z0-9_-]{1,32})"
    + rb"|MDEMU:([A-Z]{1,20}(?:-[A-Z]{1,20})?)(?:=(\d{1,6}(?:\.\d{1,6})?))?"
)
_HOLD = 96  # bytes held back between chunks: more than the longest match


class MarkerScanner:
    """Finds markers in content fed chunk by chunk; memory stays bounded by the chunk size."""

    def __init__(self) -> None:
        self._pending = b""
        self._names: set[str] = set()
        self._scan_seconds: float | None = None
        self._password: str | None = None

    def feed(self, chunk: bytes) -> None:
        """Scan the next chunk. Matches starting in the last _HOLD bytes wait for more data."""
        data = self._pending + chunk
        cutoff = len(data) - _HOLD
        if cutoff > 0:
            self._collect(data, cutoff)
            data = data[cutoff:]
        self._pending = data

    def finish(self) -> Markers:
        """Scan what is left and return every marker found (calling it again returns the same)."""
        self._collect(self._pending, len(self._pending))
        self._pending = b""
        return Markers(frozenset(self._names), self._scan_seconds, self._password)

    def _collect(self, data: bytes, cutoff: int) -> None:
        for match in _PATTERN.finditer(data):
            if match.start() >= cutoff:
                return
            password, token, value = match.groups()
            marker = "" if token is None else f"MDEMU:{token.decode()}"
            if password is not None:
                self._names.add(ENCRYPTED)
                self._password = self._password or password.decode()
            elif token is None:
                self._names.add(EICAR)
            elif marker == "MDEMU:SCAN" and value is not None and self._scan_seconds is None:
                self._scan_seconds = float(value)
            elif marker in MARKERS:
                self._names.add(marker)


def find_markers(content: bytes) -> Markers:
    """The markers in `content` (convenience for whole, small contents)."""
    scanner = MarkerScanner()
    scanner.feed(content)
    return scanner.finish()


EICAR_NAMES = {
    "ClamAV": "Eicar-Test-Signature",
    "Avira": "Eicar-Test-File (not a virus)",
    "ESET": "a variant of Eicar test file",
    "Bitdefender": "EICAR-Test-File (not a virus)",
    "K7": "EICAR_Test_File",
    "Ikarus": "EICAR-Test-File",
    "NANOAV": "Marker.Dos.EICAR-Test-File.dyb",
    "Zillya!": "EICAR.TestFile",
    "Vir.IT eXplorer": "EICAR.Test.File-NoVirus",
    "AhnLab": "Virus/EICAR_Test_File",
    "Emsisoft": "EICAR-Test-File (not a virus) (B)",
    "Antiy-AVL": "TestFile/Win32.EICAR",
}

# Markers that set the verdicts of a few named engines, applied in this order over the base verdicts.
_TARGETED = {
    MIXED: {
        "ClamAV": Verdict(1, "Win.Trojan.Generic-6330621-0"),
        "Avira": Verdict(0),
        "ESET": Verdict(1, "a variant of Win32/Kryptik.HMQB trojan"),
        "Bitdefender": Verdict(22, "Adware.Generic.456"),
        "K7": Verdict(2, "Riskware ( 0040eff71 )"),
        "Ikarus": Verdict(3, "Scan timed out"),
        "NANOAV": Verdict(10),
        "Zillya!": Verdict(12),
        "Vir.IT eXplorer": Verdict(23),
        "AhnLab": Verdict(0),
        "Emsisoft": Verdict(4, "Gen:Variant.Mixed.1 (B)"),
        "Antiy-AVL": Verdict(1, "Trojan/Win32.Mixed"),
    },
    SUSPICIOUS: {"Ikarus": Verdict(2, "Trojan.Win32.Suspect"), "K7": Verdict(2, "Riskware ( 0040eff71 )")},
    PUA: {"Bitdefender": Verdict(22, "Adware.Generic.123")},
    FAILED: {"AhnLab": Verdict(3, "Scan timed out"), "Zillya!": Verdict(3)},
    CLEANED: {"Emsisoft": Verdict(4, "Trojan.GenericKD.4711 (B)")},
    NONAME: {"NANOAV": Verdict(1)},
    UNKNOWN_CODE: {"Vir.IT eXplorer": Verdict(42)},
    HEUR: {
        "ClamAV": Verdict(1, "Win.Trojan.Agent-6330621-0"),
        "Ikarus": Verdict(1, "HEUR:Trojan.Win32.Generic"),
        "Bitdefender": Verdict(1, "Gen:Heur.Mint.Zard.1"),
        "K7": Verdict(2, "Suspicious ( 0055e3ef1 )"),
    },
}


def _uniform_code(markers: Markers, passwords: Sequence[str]) -> int | None:
    """The code every engine gives when a marker leaves no engine a verdict, else None."""
    if ENCRYPTED in markers.names and (markers.password or ARCHIVE_PASSWORD) not in passwords:
        return 12
    if UNSUPPORTED in markers.names:
        return 23
    if NOT_SCANNED in markers.names:
        return 10
    return None


def engine_results(markers: Markers, engines: Sequence[str], passwords: Sequence[str] = ()) -> dict[str, Verdict]:
    """The verdict of each AV engine in `engines` (same order) for a file with `markers`, sent with the archive
    `passwords`.

    ENCRYPTED (unless one of `passwords` opens it), UNSUPPORTED and NOT-SCANNED, in
    that order of precedence, give every engine the same code. Otherwise every engine
    starts at 0 (or 1 with its own threat name when EICAR is present) and the targeted
    markers then set the verdicts of their engines.
    """
    uniform = _uniform_code(markers, passwords)
    if uniform is not None:
        return {name: Verdict(uniform) for name in engines}
    infected = EICAR in markers.names
    results = {
        name: Verdict(1, EICAR_NAMES.get(name, "EICAR-Test-File")) if infected else Verdict(0) for name in engines
    }
    for marker, overrides in _TARGETED.items():
        if marker in markers.names:
            results.update({name: v for name, v in overrides.items() if name in results})
    return results


_OVERALL_PRIORITY = (1, 2, 22, 0, 12, 23, 10, 3)


def overall_code(codes: Iterable[int]) -> int:
    """Core's scan_all_result_i for these per-engine codes.

    Infected (1) when any engine says 1 or 4, then Suspicious (2), PUA (22), No Threat
    Detected (0); when no engine gave a verdict: Encrypted (12), Unsupported (23), Not
    Scanned (10), Failed (3), in that order; Failed (3) also when only unknown codes remain.
    """
    present = {1 if code == 4 else code for code in codes}
    return next((code for code in _OVERALL_PRIORITY if code in present), 3)


MARKERS_HELP = """\
Markers (anywhere in a file's content, upper case, whole tokens) decide the verdicts:
  EICAR test string   every AV engine 1 Infected, each with its own threat name
                      (ESET's starts with "a variant of ")
  MDEMU:SUSPICIOUS    Ikarus and K7: 2 Suspicious
  MDEMU:PUA           Bitdefender: 22 Potentially Unwanted Program "Adware.Generic.123"
  MDEMU:FAILED        AhnLab and Zillya!: 3 Failed; the others 0
  MDEMU:NOT-SCANNED   every engine 10 Not Scanned
  MDEMU:ENCRYPTED     every engine 12 Encrypted Archive, unless a header archivepwd (or archivepwd1,
                      archivepwd2, ...) is "infected" (then as if the marker were absent)
  MDEMU:ENCRYPTED=<p> the same, opened only by the password <p> (letters, digits, _ and -, at most 32)
  MDEMU:UNSUPPORTED   every engine 23 Unsupported file type
  MDEMU:CLEANED       Emsisoft: 4 Cleaned/Deleted with a threat name
  MDEMU:NONAME        NANOAV: 1 Infected with an empty threat_found
  MDEMU:UNKNOWN-CODE  Vir.IT eXplorer: the unknown code 42
  MDEMU:MIXED         one file with 1, 4, 2, 22, 0, 3, 10, 12 and 23 across the engines
  MDEMU:CDR           Deep CDR "Sanitized" runs after the scan (20 % of the scan time more);
                      GET /file/converted/{id} then serves the file without the marker text
                      (a short fixed text for files of 10 MiB or more)
  MDEMU:CDR-FAIL      Deep CDR fails: post_processing.actions_failed is "Sanitized"
  MDEMU:ARCHIVE       the file is an archive: extracted_files.files_in_archive lists a clean
                      member and one every engine flags (bin/dropper.exe); overall 1 Infected
  MDEMU:HEUR          ClamAV 1 "Win.Trojan.Agent-6330621-0", Ikarus 1 "HEUR:Trojan.Win32.Generic",
                      Bitdefender 1 "Gen:Heur.Mint.Zard.1", K7 2 "Suspicious ( 0055e3ef1 )"
  MDEMU:VULNERABLE    vulnerability_info: the file is Adobe Flash Player 20.0.0.235 (critical), 4 CVEs
  MDEMU:OUTDATED      process_info.outdated_data is ["enginedefinitions"], as after a definition update
  MDEMU:SCAN=<s>      this file's scan time in seconds instead of --scan-seconds, e.g. MDEMU:SCAN=1.3
  no marker           every engine 0 No Threat Detected
ENCRYPTED, UNSUPPORTED and NOT-SCANNED (in that order) set every engine; otherwise EICAR sets
all engines to 1 and the other markers then set their own engines (MIXED first).
Utility engines (archive, file type) and the inactive engine never appear in scan_details.
"""
