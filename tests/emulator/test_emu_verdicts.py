"""The pure parts: marker scanning, per-engine verdicts, overall codes, engine catalogue, scheduler."""

from datetime import UTC, datetime

import pytest

from mdcore_emulator import CDR, CDR_FAIL, EICAR, ENCRYPTED, MIXED, NOT_SCANNED, UNSUPPORTED, scan_marker
from mdcore_emulator.engines import advance, catalogue, engine_list, v3_time
from mdcore_emulator.processing import Scheduler, Submission, UploadDigest, make_job
from mdcore_emulator.verdicts import Markers, MarkerScanner, engine_results, find_markers, overall_code

CONTENT = (
    b"x" * 150
    + EICAR.encode()
    + b"y" * 90
    + CDR_FAIL.encode()
    + b" "
    + scan_marker(1.25).encode()
    + b"z" * 40
    + CDR.encode()
)
ENGINES = [
    "ClamAV",
    "Avira",
    "ESET",
    "Bitdefender",
    "K7",
    "Ikarus",
    "NANOAV",
    "Zillya!",
    "Vir.IT eXplorer",
    "AhnLab",
    "Emsisoft",
    "Antiy-AVL",
]


@pytest.mark.parametrize("size", [1, 2, 7, 13, 64, 95, 96, 97, 200, 10_000])
def test_markers_are_found_across_chunk_boundaries(size):
    scanner = MarkerScanner()
    for start in range(0, len(CONTENT), size):
        scanner.feed(CONTENT[start : start + size])
    assert scanner.finish() == Markers(frozenset({EICAR, CDR_FAIL, CDR}), 1.25)


def test_markers_are_whole_tokens():
    assert find_markers(b"MDEMU:CDR-FAIL").names == {CDR_FAIL}
    assert find_markers(b"MDEMU:CDRX mdemu:cdr MDEMU:SCAN=").names == set()
    assert find_markers(b"MDEMU:SCAN=2 MDEMU:SCAN=3").scan_seconds == 2.0
    assert find_markers(b"plain").names == set()


def test_scan_marker_text():
    assert scan_marker(1.3) == "MDEMU:SCAN=1.3"


def test_uniform_markers_override_everything():
    both = Markers(frozenset({EICAR, ENCRYPTED, UNSUPPORTED}))
    assert {v.code for v in engine_results(both, ENGINES).values()} == {12}
    assert {v.code for v in engine_results(both, ENGINES, ("infected",)).values()} == {23}
    assert {v.code for v in engine_results(Markers(frozenset({NOT_SCANNED})), ENGINES).values()} == {10}


def test_mixed_covers_every_outcome():
    codes = [v.code for v in engine_results(Markers(frozenset({MIXED})), ENGINES).values()]
    assert {1, 4, 2, 22, 0, 3, 10, 12, 23} <= set(codes)


def test_engines_not_in_a_table_still_get_eicar_verdicts():
    results = engine_results(Markers(frozenset({EICAR})), ["SomeNewAV"])
    assert results["SomeNewAV"].code == 1 and results["SomeNewAV"].threat


@pytest.mark.parametrize(
    "codes, expected",
    [
        ([0, 0], 0),
        ([0, 4], 1),
        ([2, 1], 1),
        ([0, 22, 2], 2),
        ([0, 22], 22),
        ([3, 0, 42], 0),
        ([12, 12], 12),
        ([23], 23),
        ([10, 10], 10),
        ([3, 3], 3),
        ([42], 3),
        ([], 3),
    ],
)
def test_overall_code(codes, expected):
    assert overall_code(codes) == expected


def test_catalogue_times_and_update():
    start = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)
    engines = catalogue(start)
    ages = {e.name: start - e.def_time for e in engines if e.def_time}
    assert all(1 <= age.total_seconds() / 3600 <= 25 for name, age in ages.items() if name != "Vir.IT eXplorer")
    assert ages["Vir.IT eXplorer"].days >= 30
    updated = advance(engines)
    assert [e.name for e in updated] == [e.name for e in engines]
    assert all((u.def_time - e.def_time).days == 1 for u, e in zip(updated, engines, strict=True) if e.def_time)
    assert engine_list(updated, 4) != engine_list(engines, 4)


def test_v3_time_uses_a_12_hour_clock():
    assert v3_time(datetime(2024, 3, 11, 0, 5, 9, tzinfo=UTC)) == "03/11/2024 12:05:09 AM"
    assert v3_time(datetime(2024, 3, 11, 12, 0, tzinfo=UTC)) == "03/11/2024 12:00:00 PM"
    assert v3_time(datetime(2024, 3, 11, 23, 8, tzinfo=UTC)) == "03/11/2024 11:08:00 PM"


def _job(queued_at: float, seconds: float):
    digest = UploadDigest()
    digest.feed(b"x")
    return make_job("id", digest, Submission("x"), (), queued_at=queued_at, seconds=(seconds, 0.0), stuck=False,
                    uploaded_at=datetime(2024, 3, 12, 9, 30, tzinfo=UTC))


def test_scheduler_is_fifo_with_concurrency_and_a_queue_limit():
    scheduler = Scheduler(concurrency=2, queue_limit=2)
    jobs = [_job(0.0, 1.0) for _ in range(4)]
    assert all(scheduler.admit(job, 0.0) for job in jobs)
    assert [job.started_at for job in jobs] == [0.0, 0.0, 1.0, 1.0]
    assert scheduler.waiting(0.5) == 2 and scheduler.busy(0.5) == 2
    assert not scheduler.admit(_job(0.5, 1.0), 0.5)
    assert scheduler.waiting(1.0) == 0
    late = _job(1.0, 1.0)
    assert scheduler.admit(late, 1.0) and late.started_at == 2.0


def test_scheduler_cancel_frees_the_slot_or_the_queue_position_at_once():
    scheduler = Scheduler(concurrency=1, queue_limit=3)
    running, second, third, fourth = jobs = [_job(0.0, 1.0) for _ in range(4)]
    assert all(scheduler.admit(job, 0.0) for job in jobs)
    assert scheduler.cancel(second, 0.5) == [second, third, fourth]  # canceled while waiting: leaves the queue
    assert (second.started_at, second.finished_at) == (0.5, 0.5)
    assert (third.started_at, fourth.started_at) == (1.0, 2.0)
    assert scheduler.cancel(running, 0.6) == [running, third, fourth]  # canceled while scanning: the slot frees
    assert (third.started_at, third.finished_at, fourth.started_at) == (0.6, 1.6, 1.6)
    assert scheduler.waiting(0.7) == 1 and scheduler.busy(0.7) == 1
    assert scheduler.cancel(running, 0.8) == []  # already over
    assert scheduler.cancel(third, 1.7) == []
