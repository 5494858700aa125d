"""One task's scan: upload to a Core, poll until Core is done, fail over to the next Core, within a deadline.

`scan_file` returns the Core that scanned the file and its finished report, or raises Assemblyline's
`RecoverableError` (a transient problem: Assemblyline retries later) or `NonRecoverableError`
(retrying cannot help; the message says what to change). It never returns an unfinished report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from assemblyline.common.exceptions import NonRecoverableError, RecoverableError

from mdservice.client import CoreBusy, CoreError, CoreRateLimited, CoreTimeout
from mdservice.nodes import PROBE_TIMEOUT, CoreNode, NodePool
from mdservice.polling import FLOOR, STALLED, PollSchedule
from mdservice.report import foreign_report, is_finished, overall_result, progress_of, queue_seconds
from mdservice.resume import ENDED_UNSCANNED, Wanted, reuse_problem

# Of the time a Core is given, this share (at most CANCEL_TIMEOUT s) is kept for canceling a scan given up on.
CANCEL_SHARE = 0.1
CANCEL_TIMEOUT = 1.0
# On the last Core, where a running scan is left for the retry, only this share (at most this many s) is kept.
LEAVE_CANCEL_SHARE = 0.025
LEAVE_CANCEL_TIMEOUT = 0.25
# The last poll is only sent while this share of the time (at most LAST_POLL_TIME s) is left for its answer; once
# Core has answered a poll of the scan, ANSWER_FACTOR times its slowest answer so far (at least LAST_POLL_FLOOR s)
# is enough: a Core nearby is asked until just before the deadline, so a failing attempt too uses all its time (the
# floor covers a busy host's scheduling delays and a finished report that takes longer to send).
LAST_POLL_SHARE = 0.05
LAST_POLL_TIME = 0.5
ANSWER_FACTOR = 3.0
LAST_POLL_FLOOR = 0.1
# The next task's candidate Cores are asked this long before the poll expected to find the scan finished: time
# for the answers of a Core across a network to be in when that task arrives, which is soon after that poll.
NEARLY_DONE_LEAD = 0.1
# A file still waiting in Core's queue this long after the upload has the pool read that Core's queue, so that a
# task that cannot finish in time can say how full the Core is.
QUEUED_NOTICE = 1.0
OVERLOAD_ADVICE = ("Files come faster than the Cores can scan them: lower the service's instance limit in "
                   "Assemblyline (its licence count), add Cores, or raise the service timeout.")
# While our file waits in Core's queue, an earlier copy's finished scan is looked for this often (in seconds).
DUPLICATE_CHECK = 1.0
# The most a look-up of an earlier scan may take: it only saves work, so a slow answer is not waited for.
LOOKUP_TIMEOUT = 1.0
# A result held back under overload (see hold_if_saturated) is returned this long before the deadline.
HOLD_MARGIN = 0.2
# A Core that limits the rate of requests without saying for how long (no Retry-After) is asked again after this many
# seconds (OPSWAT's own load-test tool polls every 500 ms); never sooner than polling's FLOOR.
RATE_LIMIT_WAIT = 1.0
# An upload Core limited is sent again only while at least this much of the Core's time is left after the wait.
RETRY_UPLOAD_TIME = 1.0


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


def scan_file(pool: NodePool, job: ScanJob, deadline: float, clock: Clock | None = None) -> ScanResult:
    """Scan `job` on the pool's Cores in `attempt_order` until one finishes it before `deadline` (monotonic).

    Each Core gets half of the time left while other Cores remain untried, the last one all of it. A scan still
    running on the last Core at the deadline is left there for a later attempt to take over.
    """
    clock = clock or Clock()
    order = pool.attempt_order()
    if not order:
        reasons = "; ".join(node.not_ready for node in pool.nodes)
        raise RecoverableError(f"No MetaDefender Core is ready to scan, Assemblyline will retry: {reasons}")
    errors: list[tuple[CoreNode, CoreError, float]] = []
    for position, node in enumerate(order):
        remaining = deadline - clock.now()
        if remaining <= 0:
            break
        last = position == len(order) - 1
        started = clock.now()
        until = started + (remaining if last else remaining / 2)
        try:
            result = scan_on_node(node, job, (until, last and job.resumable), clock, pool.watch(node))
        except CoreError as exc:
            pool.record_failure(node, exc, clock.now() - started)
            errors.append((node, exc, until - started))
            if not last:
                pool.log.warning(f"Failing over from {node.name} to {order[position + 1].name}: {exc}")
            continue
        pool.record_scan(node, clock.now() - started, queue_seconds(result.report), result.resumed)
        return result
    raise _final_error(pool, order, errors)


def hold_if_saturated(pool: NodePool, result: ScanResult, deadline: float, clock: Clock | None = None) -> None:
    """Return a taken-over result only at the deadline (HOLD_MARGIN before it) while its Core has files waiting for a
    slot. Under overload an attempt that ends early only brings Assemblyline's next one sooner, and most of those find
    nothing ready: holding paces the attempts to what the Cores can do. Call it once the result is complete."""
    clock, until = clock or Clock(), deadline - HOLD_MARGIN
    if result.resumed and pool.is_saturated(result.node, wait=until - clock.now()):
        clock.sleep(max(0.0, until - clock.now()))


def scan_on_node(node: CoreNode, job: ScanJob, end: tuple[float, bool], clock: Clock, watch) -> ScanResult:
    """Take over a scan of this file Core already has, else upload it, and poll until Core is done, by `end` =
    (deadline, whether a scan still running then is left on Core for a later attempt). A CoreError when Core could
    not.

    `watch.nearly_done()` is called once, NEARLY_DONE_LEAD s before the poll that is timed to find the scan finished;
    `watch.queued()` once our file has waited in Core's queue for a while. A scan we sent and give up on is canceled,
    and that too is over by the deadline, unless it is running and may be left: a later attempt takes it over. A file
    still waiting in the queue is not left: nothing says a later attempt will come (a file has 3), nor that Core will
    show it that scan (whether Core's hash look-up shows unfinished scans is not documented); left there, it would
    wait for nobody or be scanned twice. A scan we took over is never canceled: another attempt may wait on it.
    """
    deadline, leave = end
    budget = deadline - clock.now()
    # On the last Core the polls go on as long as they can (under overload every second of an attempt counts): only
    # a little time is kept, for canceling a file still queued at the end.
    share, most = (LEAVE_CANCEL_SHARE, LEAVE_CANCEL_TIMEOUT) if leave else (CANCEL_SHARE, CANCEL_TIMEOUT)
    reserve = min(most, share * budget)
    polls_end = deadline - reserve
    if node.engines is None:
        node.read_engines(clock.now(), timeout=min(PROBE_TIMEOUT, polls_end - clock.now()))
    _check_size(node, job)
    previous = find_previous(node, job, polls_end - clock.now(), clock.wall()) if job.resumable else None
    if previous is not None and is_finished(previous.report):
        return previous
    if previous is not None:
        try:
            return _follow(node, job, previous.data_id, (deadline, polls_end, leave), clock, watch, True)
        except CoreError as exc:
            if not exc.lost or polls_end <= clock.now():
                raise
            watch.log.info(f"{node.name}: {exc}; sending the file again")
    data_id = _upload(node, job, polls_end, clock)
    return _follow(node, job, data_id, (deadline, polls_end, leave), clock, watch, False)


def _upload(node: CoreNode, job: ScanJob, until: float, clock: Clock) -> str:
    """Send the file by `until` and return Core's data id. While Core limits the rate of requests, it is sent again
    after the wait Core asks for, as long as RETRY_UPLOAD_TIME is left after it (else the CoreRateLimited)."""
    while True:
        try:
            return node.client.upload(job.path, job.filename, job.rule, job.passwords, timeout=until - clock.now())
        except CoreRateLimited as exc:
            pause = _rate_pause(exc)
            if until - clock.now() - pause < RETRY_UPLOAD_TIME:
                raise
            clock.sleep(pause)


def _rate_pause(limited: CoreRateLimited) -> float:
    """How long to wait before asking a Core that limited the rate of requests again: its Retry-After (RATE_LIMIT_WAIT
    when it did not say), at least FLOOR."""
    return max(FLOOR, RATE_LIMIT_WAIT if limited.retry_after is None else limited.retry_after)


def _check_size(node: CoreNode, job: ScanJob) -> None:
    """Refuse, before sending it, a file larger than Core's rule takes (its `max_file_size`, where Core lists it)."""
    limit, size = node.max_file_size, os.path.getsize(job.path)
    if limit is not None and size > limit:
        rule = node.rule_applied or "default"
        raise CoreError(f"{node.name}: the file ({size} bytes) is larger than the {limit} bytes Core's rule {rule!r} "
                        "takes (its max_file_size); raise the limit in Core's workflow settings", permanent=True,
                        node_fault=False)


def find_previous(node: CoreNode, job: ScanJob, timeout: float, now: datetime) -> ScanResult | None:
    """The scan of this file Core already has that may stand for the task at wall-clock `now` (see
    `resume.reuse_problem`), or None.

    The look-up only saves work: a Core that cannot answer it is sent the file as usual (and one that refuses it
    for good, such as an API key without the right, is not asked again).
    """
    if not node.abilities.finds_scans:
        return None
    try:
        report = node.client.find_scan(job.sha256, job.rule, timeout=min(LOOKUP_TIMEOUT, timeout))
    except CoreError as exc:
        node.abilities.finds_scans = not exc.permanent
        return None
    if report is None:
        return None
    wanted = Wanted(job.sha256, node.rule_applied, timedelta(seconds=job.reuse_seconds))
    if reuse_problem(report, wanted, now, node.engines):
        return None
    return ScanResult(node, report["data_id"], report, resumed=True)


def _follow(node: CoreNode, job: ScanJob, data_id: str, end: tuple[float, float, bool], clock: Clock, watch,
            resumed: bool) -> ScanResult:
    """Poll `data_id` (one we sent, or took over when `resumed`) until finished; `end` = (deadline, when polls end,
    whether a running scan may be left on Core)."""
    deadline, polls_end, leave = end
    try:
        last_poll = min(LAST_POLL_TIME, LAST_POLL_SHARE * (deadline - clock.now()))
        # A file sent without a rule tells, in any report, the name of the rule Core applies then.
        learn = node.learn_default_rule if not (job.rule or resumed) else None
        earlier = None if resumed or not job.resumable else \
            (lambda: find_previous(node, job, polls_end - clock.now(), clock.wall()))
        report = _poll_until_finished(node, data_id, (polls_end, last_poll), clock, watch, (learn, earlier))
        if isinstance(report, ScanResult):  # an earlier attempt's scan of the file finished while ours waited
            _cancel_quietly(node, data_id, deadline - clock.now())
            return report
        _check_complete(node, data_id, report, job)
    except CoreError as exc:
        left = isinstance(exc, CoreBusy) and leave and not exc.queued
        if not (resumed or left):
            _cancel_quietly(node, data_id, deadline - clock.now())
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


def _poll_until_finished(node: CoreNode, data_id: str, end: tuple[float, float], clock: Clock, watch,
                         hooks: tuple[Callable | None, Callable | None]) -> dict | ScanResult:
    """Poll `data_id` until its report is finished; `end` = (when polling ends, the most time kept for the last poll's
    answer: see LAST_POLL_SHARE).

    `hooks` = (shown every report, or None; asked every DUPLICATE_CHECK s while our file waits in Core's queue for
    an earlier attempt's scan of the file, or None): a Core whose look-up hides unfinished scans gets a second copy
    from a retry, and the first copy's result, once in, is returned instead (a ScanResult) of waiting behind it.
    The last poll is sent as late as its answer can still come in time; a CoreBusy says where our file stood then.
    A poll Core limits (CoreRateLimited) is sent again after the wait Core asks for, and the polls after it come no
    more often than that; when Core kept limiting them to the end, the CoreRateLimited says so.
    """
    polls_end, last_poll = end
    learn, earlier = hooks
    schedule = PollSchedule(clock.now())
    delay, progress, report, next_check, slowest = schedule.first_delay(), None, None, DUPLICATE_CHECK, 0.0
    limited, least_delay = None, 0.0
    while True:
        keep = last_poll if report is None else min(last_poll, max(LAST_POLL_FLOOR, ANSWER_FACTOR * slowest))
        wait = min(delay, polls_end - keep - clock.now())
        # A last poll brought forward to fit the time left is not worth it for a scan whose progress is stuck.
        if wait <= 0 or (wait < delay and schedule.is_stuck(clock.now())):
            if limited:
                raise CoreRateLimited(f"{limited}; it limited our polls of the scan (data id {data_id}) until the "
                                      "time for this Core ran out", limited.retry_after)
            raise _unfinished(node, data_id, clock.now() - schedule.uploaded_at, progress, schedule)
        if schedule.expects_finish and not watch.told_nearly_done:
            clock.sleep(max(0.0, wait - NEARLY_DONE_LEAD))
            watch.nearly_done()
            wait = min(wait, NEARLY_DONE_LEAD)
        clock.sleep(wait)
        asked = clock.now()
        try:
            answer = _poll(node, data_id, polls_end - asked, report is not None, progress)
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
        if not progress and waited >= QUEUED_NOTICE:
            watch.queued()
        if not progress and earlier and waited >= next_check:
            found, next_check = earlier(), waited + DUPLICATE_CHECK
            if found is not None and found.data_id != data_id and is_finished(found.report):
                return found
        delay = max(least_delay, schedule.next_delay(clock.now(), progress))


def _poll(node: CoreNode, data_id: str, timeout: float, seen: bool, progress: float | None) -> dict:
    """One poll. A Core that has answered about this scan before and is now too slow to answer is busy (CoreBusy)."""
    try:
        return node.client.get_report(data_id, timeout=timeout)
    except CoreTimeout as exc:
        if not seen:
            raise
        raise CoreBusy(f"{exc}, with the file {_where(progress)} (data id {data_id})", queued=not progress) from None


def _where(progress: float | None) -> str:
    """Where our file stood on Core, by the progress its latest report showed."""
    return f"being scanned ({progress:.0f} %)" if progress else "waiting in its queue"


def _unfinished(node: CoreNode, data_id: str, waited: float, progress: float | None,
                schedule: PollSchedule) -> CoreError:
    """Why the scan did not finish in time: a CoreBusy while our file waits or its scan moves on (a later attempt can
    take it over), a plain CoreError when its progress is stuck (a later attempt should not wait on that scan)."""
    text = f"{node.name} still had the file {_where(progress)} {waited:.1f} s after it was sent (data id {data_id})"
    if schedule.is_stuck(schedule.uploaded_at + waited):
        return CoreError(f"{text}, its progress stuck for {STALLED:g} s or more")
    return CoreBusy(text, queued=not progress)


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
