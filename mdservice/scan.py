"""One task's scan: upload to a Core, poll until Core is done, fail over to the next Core, within a deadline.

`scan_file` returns the Core that scanned the file and its finished report, or raises Assemblyline's
`RecoverableError` (a transient problem: Assemblyline retries later) or `NonRecoverableError`
(retrying cannot help; the message says what to change). It never returns an unfinished report.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from assemblyline.common.exceptions import NonRecoverableError, RecoverableError

from mdservice.client import CoreBusy, CoreError, CoreRateLimited, CoreTimeout
from mdservice.nodes import CoreNode, NodePool
from mdservice.polling import PollSchedule
from mdservice.report import foreign_report, is_finished, overall_result, progress_of
from mdservice.resume import ENDED_UNSCANNED, Wanted, reuse_problem
from mdservice.timing import (
    ANSWER_FACTOR,
    HELPER_TIMEOUT,
    HOLD_MARGIN,
    LAST_POLL_FLOOR,
    LAST_POLL_SHARE,
    LAST_POLL_TIME,
    LEAVE_SHARE,
    LEAVE_TIME,
    POLL_FLOOR,
    PROBE_TIMEOUT,
    QUEUED_CHECK,
    RATE_LIMIT_WAIT,
    RETRY_UPLOAD_TIME,
)

OVERLOAD_ADVICE = ("Files come faster than the Cores can scan them: lower the service's instance limit in "
                   "Assemblyline (its licence count), add Cores, or raise the service timeout.")


@dataclass(frozen=True)
class ScanJob:
    """What to send: the file, the name Core shows, the optional rule and archive passwords (see
    client.choose_passwords; never shown), and the file's SHA-256 (to recognise a report that is not for this file;
    empty: not checked). `reuse_seconds`: how old a scan Core already has of this file may be to stand for this task
    (0: every task uploads)."""

    path: str
    filename: str
    rule: str = ""
    passwords: tuple[str, ...] = field(default=(), repr=False)
    sha256: str = ""
    reuse_seconds: float = 0.0

    @property
    def resumable(self) -> bool:
        """Whether a scan of this file left on a Core can be taken over by a later attempt: not with archive
        passwords (Core's report does not say which passwords a scan used)."""
        return bool(self.reuse_seconds and self.sha256 and not self.passwords)


@dataclass(frozen=True)
class ScanResult:
    """A finished scan: the Core that did it, Core's data id and the finished report; `resumed` when the scan was
    one an earlier attempt (or another client) had left on Core."""

    node: CoreNode
    data_id: str
    report: dict
    resumed: bool = False


@dataclass
class Clock:
    """Monotonic time and sleeping, replaceable in tests."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], datetime] = partial(datetime.now, UTC)


@dataclass(frozen=True)
class Span:
    """The time one Core has for the file: polls end at `polls_end`, the attempt at `deadline` (the rest is kept for
    canceling a file still queued then). A Core that hangs for `hang_limit` s (a request unanswered, or our scan's
    progress unmoved) has failed: while other Cores remain, that is half of the time left when it got the file, so
    that they still have time. `leave`: a scan still running at the end is left on Core for a later attempt."""

    deadline: float
    polls_end: float
    hang_limit: float
    leave: bool

    def request_time(self, now: float) -> float:
        """The most the next request to Core may take from `now`."""
        return min(self.polls_end - now, self.hang_limit)


def span_for(now: float, deadline: float, others: bool, leave: bool) -> Span:
    """The Span of a Core given the file at `now`: all the time to `deadline`; it hangs after half of it while
    `others` (other Cores) remain untried."""
    budget = deadline - now
    polls_end = deadline - min(LEAVE_TIME, LEAVE_SHARE * budget)
    return Span(deadline, polls_end, budget / 2 if others else math.inf, leave)


def scan_file(pool: NodePool, job: ScanJob, deadline: float, clock: Clock | None = None) -> ScanResult:
    """Scan `job` on the pool's Cores by `deadline` (monotonic): an earlier scan of the file one of its candidate
    Cores has (`pool.candidates`: the same ones for every attempt), else an upload to the Core `pool.attempt_order`
    puts first (where it will finish soonest; the faster of its pair when it can finish in time nowhere).

    The chosen Core keeps the file for the whole time: a busy Core is not a failed one. Only a failure (an error, a
    lost or stuck scan, a Core that hangs for half of the time left) moves the file to the next Core. A scan still
    running at the deadline on one of the file's candidates is left there for a later attempt to take over.
    """
    clock = clock or Clock()
    # Files a retry may take over have the same candidates every attempt (keyed by the file), others any.
    candidates = pool.candidates(job.sha256 if job.resumable else "")
    look_up = partial(find_earlier, candidates.cores, job, deadline, clock) if job.resumable else None
    earlier = look_up() if look_up else None
    if earlier is not None and is_finished(earlier.report):
        pool.record_scan(earlier.node, 0.0, earlier.report, resumed=True)
        return earlier
    order = pool.attempt_order(candidates, deadline - clock.now())
    if not order:
        reasons = "; ".join(node.not_ready for node in pool.nodes)
        raise RecoverableError(f"No MetaDefender Core is ready to scan, Assemblyline will retry: {reasons}")
    if earlier is not None:
        order = [earlier.node] + [node for node in order if node is not earlier.node]
    # A later attempt looks for a scan this one leaves running only on the file's candidates.
    return _attempt(pool, job, order, deadline, clock, earlier, look_up, candidates.cores if job.resumable else ())


def _attempt(pool: NodePool, job: ScanJob, order: list[CoreNode], deadline: float, clock: Clock,
             earlier: ScanResult | None, look_up: Callable[[], ScanResult | None] | None,
             leave_on: tuple[CoreNode, ...]) -> ScanResult:
    """Give the file to the Cores in `order` until one finishes it (following the `earlier` scan on its Core), each
    with all the time left; the next Core only after a failure. A scan still running at the deadline is left only on
    the Cores `leave_on` (where a later attempt looks for it), else canceled. The task's error when none could."""
    errors: list[tuple[CoreNode, CoreError, float]] = []
    for position, node in enumerate(order):
        started = clock.now()
        if started >= deadline:
            break
        others = position < len(order) - 1
        span = span_for(started, deadline, others, node in leave_on)
        taken_over = earlier if earlier is not None and earlier.node is node else None
        try:
            result = scan_on_node(node, job, span, clock, pool.watch(node), taken_over, look_up)
        except CoreError as exc:
            pool.record_failure(node, exc)
            errors.append((node, exc, deadline - started))
            if isinstance(exc, CoreBusy) and exc.data_id:  # Core kept our file to the end: no time is left
                break
            if others:
                pool.log.warning(f"Failing over from {node.name} to {order[position + 1].name}: {exc}")
            continue
        pool.record_scan(result.node, clock.now() - started, result.report, result.resumed)
        return result
    raise _final_error(pool, order, errors)


def hold_if_saturated(pool: NodePool, result: ScanResult, deadline: float, clock: Clock | None = None) -> None:
    """Return a taken-over result only at the deadline (HOLD_MARGIN before it) while its Core has files waiting for a
    slot. Under overload an attempt that ends early only brings Assemblyline's next one sooner, and most of those find
    nothing ready: holding paces the attempts to what the Cores can do. Call it once the result is complete."""
    clock, until = clock or Clock(), deadline - HOLD_MARGIN
    if result.resumed and pool.is_saturated(result.node, wait=until - clock.now()):
        clock.sleep(max(0.0, until - clock.now()))


def scan_on_node(node: CoreNode, job: ScanJob, span: Span, clock: Clock, watch,
                 earlier: ScanResult | None = None, look_up: Callable[[], ScanResult | None] | None = None
                 ) -> ScanResult:
    """Follow the `earlier` scan of this file Core has (unfinished; sent again if Core lost it), else upload the file,
    and poll until Core is done, within `span`. A CoreError when Core could not.

    `watch.queued()` is called once our file has waited in Core's queue for a while, `look_up()` (see find_earlier)
    every QUEUED_CHECK s while it waits. A scan we sent and give up on is canceled, and that too is over by the
    deadline, unless it is running and `span.leave`: a later attempt takes it over. A file still waiting in the queue
    is not left: nothing says a later attempt will come (a file has 3), nor that Core will show it that scan (whether
    Core's hash look-up shows unfinished scans is not documented); left there, it would wait for nobody or be scanned
    twice. A scan we took over is never canceled: another attempt may wait on it.
    """
    if node.engines is None:
        node.read_engines(clock.now(), timeout=min(PROBE_TIMEOUT, span.request_time(clock.now())))
    _check_size(node, job)
    if earlier is not None:
        try:
            return _follow(node, job, earlier.data_id, span, clock, watch, resumed=True)
        except CoreError as exc:
            if not exc.lost or span.polls_end <= clock.now():
                raise
            watch.log.info(f"{node.name}: {exc}; sending the file again")
    data_id = _upload(node, job, span, clock)
    return _follow(node, job, data_id, span, clock, watch, resumed=False, look_up=look_up)


def _upload(node: CoreNode, job: ScanJob, span: Span, clock: Clock) -> str:
    """Send the file within `span` and return Core's data id. While Core limits the rate of requests, it is sent
    again after the wait Core asks for, as long as RETRY_UPLOAD_TIME is left after it (else the CoreRateLimited)."""
    while True:
        try:
            return node.client.upload(job.path, job.filename, job.rule, job.passwords,
                                      timeout=span.request_time(clock.now()))
        except CoreRateLimited as exc:
            pause = _rate_pause(exc)
            if span.polls_end - clock.now() - pause < RETRY_UPLOAD_TIME:
                raise
            clock.sleep(pause)


def _rate_pause(limited: CoreRateLimited) -> float:
    """How long to wait before asking a Core that limited the rate of requests again: its Retry-After (RATE_LIMIT_WAIT
    when it did not say), at least POLL_FLOOR."""
    return max(POLL_FLOOR, RATE_LIMIT_WAIT if limited.retry_after is None else limited.retry_after)


def _check_size(node: CoreNode, job: ScanJob) -> None:
    """Refuse, before sending it, a file larger than Core's rule takes (its `max_file_size`, where Core lists it)."""
    limit, size = node.max_file_size, os.path.getsize(job.path)
    if limit is not None and size > limit:
        rule = node.rule_applied or "default"
        raise CoreError(f"{node.name}: the file ({size} bytes) is larger than the {limit} bytes Core's rule {rule!r} "
                        "takes (its max_file_size); raise the limit in Core's workflow settings", permanent=True,
                        node_fault=False)


def find_earlier(nodes: tuple[CoreNode, ...], job: ScanJob, deadline: float, clock: Clock) -> ScanResult | None:
    """The first scan of this file, in the order of `nodes` (the healthy ones, asked in parallel), that may stand for
    the task (see `find_previous`), or None. The file's candidate Cores are where any earlier attempt left it running,
    on a Core back from an outage too."""
    healthy = [node for node in nodes if not node.failed]
    timeout, now = deadline - clock.now(), clock.wall()
    if not healthy or timeout <= 0:
        return None
    if len(healthy) == 1:
        return find_previous(healthy[0], job, timeout, now)
    with ThreadPoolExecutor(len(healthy), thread_name_prefix="md-look-up") as asking:
        found = list(asking.map(lambda node: find_previous(node, job, timeout, now), healthy))
    return next((scan for scan in found if scan is not None), None)


def find_previous(node: CoreNode, job: ScanJob, timeout: float, now: datetime) -> ScanResult | None:
    """The scan of this file Core already has that may stand for the task at wall-clock `now` (see
    `resume.reuse_problem`), or None.

    The look-up only saves work: a Core that cannot answer it is sent the file as usual (and one that refuses it
    for good, such as an API key without the right, is not asked again).
    """
    if not node.abilities.finds_scans:
        return None
    try:
        report = node.client.find_scan(job.sha256, job.rule, timeout=min(HELPER_TIMEOUT, timeout))
    except CoreError as exc:
        node.abilities.finds_scans = not exc.permanent
        return None
    if report is None:
        return None
    wanted = Wanted(job.sha256, node.rule_applied, timedelta(seconds=job.reuse_seconds))
    if reuse_problem(report, wanted, now, node.engines):
        return None
    return ScanResult(node, report["data_id"], report, resumed=True)


def _follow(node: CoreNode, job: ScanJob, data_id: str, span: Span, clock: Clock, watch, resumed: bool,
            look_up: Callable[[], ScanResult | None] | None = None) -> ScanResult:
    """Poll `data_id` (one we sent, or took over when `resumed`) until finished, within `span`; a finished earlier
    scan `look_up` finds meanwhile stands for ours (ours is then canceled)."""
    try:
        last_poll = min(LAST_POLL_TIME, LAST_POLL_SHARE * (span.deadline - clock.now()))
        # A file sent without a rule tells, in any report, the name of the rule Core applies then.
        learn = node.learn_default_rule if not (job.rule or resumed) else None
        report = _poll_until_finished(node, data_id, span, last_poll, clock, watch, learn=learn, look_up=look_up)
        if isinstance(report, ScanResult):  # an earlier attempt's scan of the file finished while ours waited
            _cancel_quietly(node, data_id, span.deadline - clock.now())
            watch.left_queue()  # whether Core is full is then read afresh, without our copy
            return report
        _check_complete(node, data_id, report, job)
    except CoreError as exc:
        left = isinstance(exc, CoreBusy) and span.leave and not exc.queued
        if not (resumed or left):
            _cancel_quietly(node, data_id, span.deadline - clock.now())
        raise
    return ScanResult(node, data_id, report, resumed)


def _check_complete(node: CoreNode, data_id: str, report: dict, job: ScanJob) -> None:
    """A CoreError when a finished report is not this scan's, or the scan ended without scanning (canceled or
    aborted, by someone else: `lost`, so that a scan taken over is sent again)."""
    foreign = foreign_report(report, data_id, job.sha256)
    if foreign:
        raise CoreError(f"{node.name} answered with another file's report: {foreign}")
    if overall_result(report) in ENDED_UNSCANNED:
        raise CoreError(f"{node.name} ended the scan without scanning it: canceled or aborted (data id {data_id})",
                        node_fault=False, lost=True)


def _poll_until_finished(node: CoreNode, data_id: str, span: Span, last_poll: float, clock: Clock, watch,
                         learn: Callable[[dict], None] | None = None,
                         look_up: Callable[[], ScanResult | None] | None = None) -> dict | ScanResult:
    """Poll `data_id` until its report is finished, by `span.polls_end`; `last_poll`: the most time kept for the last
    poll's answer (see LAST_POLL_SHARE).

    `learn` is shown every report; `look_up` is asked every QUEUED_CHECK s while our file waits in Core's queue:
    a Core whose look-up hides unfinished scans gets a second copy from a retry, and the first copy's result, once in,
    is returned instead (a ScanResult) of waiting behind it. The last poll is sent as late as its answer can still
    come in time; a CoreBusy says where our file stood then. A poll Core limits (CoreRateLimited) is sent again after
    the wait Core asks for, and the polls after it come no more often than that; when Core kept limiting them to the
    end, the CoreRateLimited says so.
    """
    schedule = PollSchedule(clock.now())
    delay, progress, report, next_check, slowest = schedule.first_delay(), None, None, QUEUED_CHECK, 0.0
    limited, least_delay = None, 0.0
    while True:
        if schedule.stuck_seconds(clock.now()) >= span.hang_limit:
            raise _unfinished(node, data_id, clock.now() - schedule.uploaded_at, progress, schedule)
        keep = last_poll if report is None else min(last_poll, max(LAST_POLL_FLOOR, ANSWER_FACTOR * slowest))
        wait = min(delay, span.polls_end - keep - clock.now())
        # A last poll brought forward to fit the time left is not worth it for a scan whose progress is stuck.
        if wait <= 0 or (wait < delay and schedule.is_stuck(clock.now())):
            if limited:
                raise CoreRateLimited(f"{limited}; it limited our polls of the scan (data id {data_id}) until the "
                                      "time for this Core ran out", limited.retry_after)
            raise _unfinished(node, data_id, clock.now() - schedule.uploaded_at, progress, schedule)
        clock.sleep(wait)
        asked = clock.now()
        try:
            answer = _poll(node, data_id, span, asked, report is not None, progress)
        except CoreRateLimited as exc:
            limited, least_delay = exc, max(least_delay, _rate_pause(exc))
            delay = least_delay
            continue
        report, limited = answer, None
        slowest = max(slowest, clock.now() - asked)
        if learn:
            learn(report)
        if is_finished(report):
            return report
        progress, waited = progress_of(report), clock.now() - schedule.uploaded_at
        if not progress and waited >= QUEUED_CHECK:
            watch.queued()
        if not progress and look_up and waited >= next_check:
            found, next_check = look_up(), waited + QUEUED_CHECK
            if found is not None and found.data_id != data_id and is_finished(found.report):
                return found
        delay = max(least_delay, schedule.next_delay(clock.now(), progress))


def _poll(node: CoreNode, data_id: str, span: Span, now: float, seen: bool, progress: float | None) -> dict:
    """One poll. A Core that has answered about this scan before and is too slow to answer by the end of the polls is
    busy (CoreBusy); one that hangs for `span.hang_limit` has failed."""
    try:
        return node.client.get_report(data_id, timeout=span.request_time(now))
    except CoreTimeout as exc:
        if not seen or span.hang_limit < span.polls_end - now:
            raise
        raise CoreBusy(f"{exc}, with the file {_where(progress)} (data id {data_id})", queued=not progress,
                       data_id=data_id) from None


def _where(progress: float | None) -> str:
    """Where our file stood on Core, by the progress its latest report showed."""
    return f"being scanned ({progress:.0f} %)" if progress else "waiting in its queue"


def _unfinished(node: CoreNode, data_id: str, waited: float, progress: float | None,
                schedule: PollSchedule) -> CoreError:
    """Why the scan did not finish in time: a CoreBusy while our file waits or its scan moves on (a later attempt can
    take it over), a plain CoreError when its progress is stuck (a later attempt should not wait on that scan)."""
    text = f"{node.name} still had the file {_where(progress)} {waited:.1f} s after it was sent (data id {data_id})"
    if schedule.is_stuck(schedule.uploaded_at + waited):
        stuck = schedule.stuck_seconds(schedule.uploaded_at + waited)
        return CoreError(f"{text}, its progress stuck for {stuck:.1f} s")
    return CoreBusy(text, queued=not progress, data_id=data_id)


def _cancel_quietly(node: CoreNode, data_id: str, timeout: float) -> None:
    """Tell Core to drop a scan nobody waits for; it is only a courtesy, so errors are ignored."""
    if timeout <= 0:
        return
    try:
        node.client.cancel(data_id, timeout=timeout)
    except CoreError:
        pass


def _final_error(pool: NodePool, order: list[CoreNode], errors: list[tuple[CoreNode, CoreError, float]]) -> Exception:
    """The task's error: NonRecoverableError when every Core refused the file for good, else RecoverableError; when
    Cores were merely full, it says how full and what to change (and the pool warns, now and then, in the log)."""
    tried = {node for node, _, _ in errors}
    lines = [f"{node.name}: {error}" for node, error, _ in errors]
    lines += [f"{node.name}: not tried, the task ran out of time" for node in order if node not in tried]
    summary = "; ".join(lines)
    if errors and all(error.permanent for _, error, _ in errors) and len(tried) == len(order):
        return NonRecoverableError(f"MetaDefender Core refused the file: {summary}")
    busy = [(node, seconds) for node, error, seconds in errors if isinstance(error, CoreBusy)]
    if not busy:
        return RecoverableError(f"No MetaDefender Core could scan the file in time, Assemblyline will retry: {summary}")
    load = "; ".join(pool.load_text(node, seconds) for node, seconds in busy)
    message = (f"MetaDefender Core is full ({load}), Assemblyline will retry: {summary}. {OVERLOAD_ADVICE}")
    pool.warn_overloaded(message)
    return RecoverableError(message)
