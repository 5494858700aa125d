"""Every marker's outcome in a finished report, over HTTP (scan time 0: reports are final at once)."""

import tracemalloc

import pytest

from mdcore_emulator import (
    CDR,
    CLEANED,
    EICAR,
    ENCRYPTED,
    FAILED,
    MIXED,
    NONAME,
    NOT_SCANNED,
    PUA,
    SUSPICIOUS,
    UNKNOWN_CODE,
    UNSUPPORTED,
    Emulator,
)


@pytest.fixture(scope="module")
def core(client):
    """A client of a module-wide emulator whose scans complete at once."""
    with Emulator(scan_seconds=0) as emulator:
        yield client(emulator.urls[0])


def details(report: dict) -> dict[str, tuple[int, str]]:
    return {name: (d["scan_result_i"], d["threat_found"]) for name, d in report["scan_results"]["scan_details"].items()}


def codes(report: dict) -> list[int]:
    return [code for code, _ in details(report).values()]


def overall(report: dict) -> tuple[int, str]:
    return report["scan_results"]["scan_all_result_i"], report["scan_results"]["scan_all_result_a"]


def test_no_marker_is_clean(core):
    report = core.scan(b"just text")
    assert set(codes(report)) == {0} and overall(report) == (0, "No Threat Detected")
    assert report["process_info"]["result"] == "Allowed"


def test_eicar_every_av_engine_with_its_own_name(core):
    report = core.scan(b"prefix " + EICAR.encode() + b" suffix")
    found = details(report)
    assert len(found) == 12 and set(codes(report)) == {1}
    assert len({threat for _, threat in found.values()}) == 12
    assert found["ESET"][1].startswith("a variant of ")
    assert "Archive" not in found and "File type analysis" not in found and "Quick Heal" not in found
    assert overall(report) == (1, "Infected")
    assert (report["process_info"]["result"], report["process_info"]["blocked_reason"]) == ("Blocked", "Infected")


def test_suspicious(core):
    report = core.scan(SUSPICIOUS.encode())
    suspicious = [(name, threat) for name, (code, threat) in details(report).items() if code == 2]
    assert len(suspicious) == 2 and all(threat for _, threat in suspicious)
    assert overall(report) == (2, "Suspicious")


def test_pua(core):
    report = core.scan(PUA.encode())
    pua = [threat for code, threat in details(report).values() if code == 22]
    assert len(pua) == 1 and "Adware" in pua[0]
    assert overall(report)[0] == 22


def test_failed(core):
    report = core.scan(FAILED.encode())
    assert sorted(codes(report)) == [0] * 10 + [3, 3]
    assert overall(report)[0] == 0


@pytest.mark.parametrize("marker, code", [(NOT_SCANNED, 10), (ENCRYPTED, 12), (UNSUPPORTED, 23)])
def test_markers_that_leave_no_verdict(core, marker, code):
    report = core.scan(f"{EICAR} {marker}".encode())
    assert set(codes(report)) == {code} and overall(report)[0] == code


def test_encrypted_with_the_right_password(core):
    assert set(codes(core.scan(ENCRYPTED.encode(), archivepwd="wrong"))) == {12}
    assert set(codes(core.scan(ENCRYPTED.encode(), archivepwd="infected"))) == {0}
    opened = core.scan(ENCRYPTED.encode() + b" " + EICAR.encode(), archivepwd="infected")
    assert set(codes(opened)) == {1}


def test_encrypted_with_a_password_of_its_own_opens_with_any_of_the_passwords_sent(core):
    locked = f"{ENCRYPTED}=fox_2 {EICAR}".encode()
    assert set(codes(core.scan(locked, archivepwd="infected"))) == {12}
    assert set(codes(core.scan(locked, archivepwd="cow", archivepwd1="bear"))) == {12}
    assert set(codes(core.scan(locked, archivepwd="cow", archivepwd1="fox_2"))) == {1}
    assert set(codes(core.scan(locked, archivepwd1="cow", archivepwd2="fox_2"))) == {1}


def test_cleaned(core):
    report = core.scan(CLEANED.encode())
    cleaned = [threat for code, threat in details(report).values() if code == 4]
    assert len(cleaned) == 1 and cleaned[0]
    assert overall(report)[0] == 1


def test_noname(core):
    report = core.scan(NONAME.encode())
    assert [threat for code, threat in details(report).values() if code == 1] == [""]


def test_unknown_code(core):
    report = core.scan(UNKNOWN_CODE.encode())
    assert sorted(codes(report)) == [0] * 11 + [42]


def test_mixed(core):
    report = core.scan(MIXED.encode())
    assert {1, 4, 2, 22, 0, 3, 10, 12, 23} <= set(codes(report))
    assert overall(report)[0] == 1


def test_markers_combine(core):
    report = core.scan(f"{EICAR}\n{FAILED} {PUA},{CDR}".encode())
    assert sorted(set(codes(report))) == [1, 3, 22]
    assert report["process_info"]["post_processing"]["actions_ran"] == "Sanitized"


def test_markers_are_whole_tokens(core):
    assert set(codes(core.scan(f"{FAILED}X {PUA}{PUA}".encode()))) == {0}


def test_marker_split_across_upload_chunks(core):
    content = b"a" * (64 * 1024 - 5) + EICAR.encode() + b"b" * (64 * 1024)
    assert set(codes(core.scan(content))) == {1}


class _Zeros:
    """A file-like body of `size` zero bytes with a marker at the end, never held in memory."""

    def __init__(self, size: int, tail: bytes) -> None:
        self._left, self._tail = size - len(tail), tail

    def __len__(self) -> int:
        return self._left + len(self._tail)

    def read(self, amount: int = -1) -> bytes:
        if self._left:
            chunk = min(amount if amount > 0 else 1 << 20, self._left, 1 << 20)
            self._left -= chunk
            return bytes(chunk)
        tail, self._tail = self._tail, b""
        return tail


def test_large_uploads_are_streamed(core):
    size = 48 * 1024 * 1024
    tracemalloc.start()
    try:
        report = core.scan(_Zeros(size, EICAR.encode()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report["file_info"]["file_size"] == size and set(codes(report)) == {1}
    assert peak < 20 * 1024 * 1024
