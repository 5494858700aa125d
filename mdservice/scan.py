"""One task's scan: upload to a Core, poll until Core is done, fail over to the next Core, within a deadline.

`scan_file` returns the Core that scanned the file and its finished report, or raises Assemblyline's
`RecoverableError` (a transient problem: Assemblyline retries later) or `NonRecoverableError`
(retrying cannot help; the message says what to change). It never returns an unfinished report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from assemblyline.common.exceptions import NonRecoverableError, RecoverableError

from mdservice.client import CoreError
from mdservice.nodes import PROBE_TIMEOUT, CoreNode, NodePool
from mdservice.polling import STALLED_INTERVAL, PollSchedule
from mdservice.report import foreign_report, is_finished, progress_of, queue_seconds

# Of the time a Core is given, this share (at most CANCEL_TIMEOUT s) is kept for canceling a scan given up on.
CANCEL_SHARE = 0.1
CANCEL_TIMEOUT = 1.0
# The last poll is only sent while this share of the time (at most LAST_POLL_TIME s) is left for its answer.
LAST_POLL_SHARE = 0.05
LAST_POLL_TIME = 0.5
# The next task's candidate Cores are asked this long before the poll expected to find the scan finished: time
# for the answers of a Core across a network to be in when that task arrives, which is soon after that poll.
NEARLY_DONE_LEAD = 0.1


def _nothing() -> None:
    """What `nearly_done` becomes once it has been called."""


@dataclass(frozen=True)
class ScanJob:
    """What to send: the file, the name Core shows, the optional rule and archive password, and the file's SHA-256
    (to recognise a report that is not for this file; empty: not checked)."""

    path: str
    filename: str
    rule: str = ""
    archive_password: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class ScanResult:
    """A finished scan: the Core that did it, Core's data id and the finished report."""

    node: CoreNode
    data_id: str
    report: dict


@dataclass
class Clock:
    """Monotonic time and sleeping, replaceable in tests."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def scan_file(pool: NodePool, job: ScanJob, deadline: float, clock: Clock | None = None) -> ScanResult:
    """Scan `job` on the pool's Cores in `attempt_order` until one finishes it before `deadline` (monotonic).

    Each Core gets half of the time left while other Cores remain untried, the last one all of it.
    """
    clock = clock or Clock()
    order = pool.attempt_order()
    errors: list[tuple[CoreNode, CoreError]] = []
    for position, node in enumerate(order):
        remaining = deadline - clock.now()
        if remaining <= 0:
            break
        budget = remaining / 2 if position < len(order) - 1 else remaining
        started = clock.now()
        try:
            data_id, report = scan_on_node(node, job, started + budget, clock, partial(pool.prepare_next, node))
        except CoreError as exc:
            pool.record_failure(node, exc)
            errors.append((node, exc))
            if position < len(order) - 1:
                pool.log.warning(f"Failing over from {node.name} to {order[position + 1].name}")
            continue
        pool.record_scan(node, clock.now() - started, queue_seconds(report))
        return ScanResult(node, data_id, report)
    raise _final_error(order, errors)


def scan_on_node(node: CoreNode, job: ScanJob, deadline: float, clock: Clock,
                 nearly_done: Callable[[], None]) -> tuple[str, dict]:
    """Upload to one Core and poll until its report is finished: (data id, report), or a CoreError by `deadline`.

    `nearly_done` is called once, NEARLY_DONE_LEAD s before the poll that is timed to find the scan finished.

    A scan given up on (too slow, or its Core failed to answer a poll) is canceled, and that too is over by
    `deadline`.
    """
    budget = deadline - clock.now()
    polls_end = deadline - min(CANCEL_TIMEOUT, CANCEL_SHARE * budget)
    if node.engines is None:
        node.read_engines(clock.now(), timeout=min(PROBE_TIMEOUT, polls_end - clock.now()))
    data_id = node.client.upload(job.path, job.filename, job.rule, job.archive_password,
                                 timeout=polls_end - clock.now())
    try:
        last_poll = min(LAST_POLL_TIME, LAST_POLL_SHARE * budget)
        report = _poll_until_finished(node, data_id, (polls_end, last_poll), clock, nearly_done)
        foreign = foreign_report(report, data_id, job.sha256)
        if foreign:
            raise CoreError(f"{node.name} answered with another file's report: {foreign}")
    except CoreError:
        _cancel_quietly(node, data_id, deadline - clock.now())
        raise
    return data_id, report


def _poll_until_finished(node: CoreNode, data_id: str, end: tuple[float, float], clock: Clock,
                         nearly_done: Callable[[], None]) -> dict:
    """Poll `data_id` until its report is finished; `end` = (when polling ends, the time kept for the last poll)."""
    polls_end, last_poll = end
    schedule = PollSchedule(clock.now())
    delay = schedule.first_delay()
    while True:
        wait = min(delay, polls_end - last_poll - clock.now())
        # A last poll brought forward to fit the time left is worth it only where polls come quickly anyway.
        if wait <= 0 or (wait < delay and delay >= STALLED_INTERVAL):
            raise CoreError(f"{node.name} did not finish scanning within {clock.now() - schedule.uploaded_at:.1f} s "
                            f"of the upload (data id {data_id})")
        if schedule.expects_finish and nearly_done is not _nothing:
            clock.sleep(max(0.0, wait - NEARLY_DONE_LEAD))
            nearly_done()
            nearly_done, wait = _nothing, min(wait, NEARLY_DONE_LEAD)
        clock.sleep(wait)
        report = node.client.get_report(data_id, timeout=polls_end - clock.now())
        if is_finished(report):
            return report
        delay = schedule.next_delay(clock.now(), progress_of(report))


def _cancel_quietly(node: CoreNode, data_id: str, timeout: float) -> None:
    """Tell Core to drop a scan nobody waits for; it is only a courtesy, so errors are ignored."""
    if timeout <= 0:
        return
    try:
        node.client.cancel(data_id, timeout=timeout)
    except CoreError:
        pass


def _final_error(order: list[CoreNode], errors: list[tuple[CoreNode, CoreError]]) -> Exception:
    tried = {node for node, _ in errors}
    lines = [f"{node.name}: {error}" for node, error in errors]
    lines += [f"{node.name}: not tried, the task ran out of time" for node in order if node not in tried]
    summary = "; ".join(lines)
    if errors and all(error.permanent for _, error in errors) and len(tried) == len(order):
        return NonRecoverableError(f"MetaDefender Core refused the file: {summary}")
    return RecoverableError(f"No MetaDefender Core could scan the file in time, Assemblyline will retry: {summary}")
