"""Every timing constant of the service, grouped by what it bounds: seconds, unless named a share or a factor.

Scale: a Core nearby answers in milliseconds, a scan takes seconds, and the service timeout is a minute by default
(a deadline of 54 s).
"""

# The task. Of the service timeout, DEADLINE_MARGIN (at least MIN_DEADLINE_MARGIN s) is kept for Assemblyline's own
# work after the scan; the rest is the scan's deadline.
DEADLINE_MARGIN = 0.1
MIN_DEADLINE_MARGIN = 1.0

# Upkeep at the start of a task: engine lists and rules re-read, readiness asked, failed Cores probed, within
# MAINTENANCE_SHARE of the task's time and MAINTENANCE_SECONDS at most. Each request gets PROBE_TIMEOUT at most; none
# starts with less than MIN_REQUEST_SECONDS left, Core's rules not with less than MIN_RULES_SECONDS. A Core that tells
# its readiness (Core 5's readyz) is asked again after READY_SECONDS.
MAINTENANCE_SHARE = 0.2
MAINTENANCE_SECONDS = 2.0
PROBE_TIMEOUT = 3.0
MIN_REQUEST_SECONDS = 0.05
MIN_RULES_SECONDS = 0.5
READY_SECONDS = 30.0

# Health. A failing Core sits out BACKOFF_START, doubled for each failure in a row up to BACKOFF_MAX; a Core slower
# than max_md_scan_time sits out one turn more for each such file in a row, up to MAX_SKIP_TURNS.
BACKOFF_START = 5.0
BACKOFF_MAX = 60.0
MAX_SKIP_TURNS = 5

# The choice. The candidates' queues are waited for QUEUE_WAIT at most; a reading is used while FRESH_SECONDS old. A
# Core's time per file is trusted for SPEED_MEMORY. The second Core of the file's pair, and then the spare, gets the
# file when it would finish there CLEARLY_SOONER times sooner.
QUEUE_WAIT = 0.5
FRESH_SECONDS = 1.0
SPEED_MEMORY = 300.0
CLEARLY_SOONER = 1.2

# Requests that only help (a queue reading, a look-up of an earlier scan) are not waited for longer than
# HELPER_TIMEOUT; a Core that cannot tell its queue within it is failing.
HELPER_TIMEOUT = 1.0

# Polling a scan. The first poll comes POLL_FLOOR after the upload, and no two closer than that. While the file waits
# in Core's queue, the next poll comes after QUEUED_FACTOR of the time waited so far; once it is scanned, at the end
# the progress promises, at most POLL_CEILING away. A scan that does not move is asked about every STILL_POLL: the
# queued wait grows to it, and progress stuck for STALLED is polled no more often.
POLL_FLOOR = 0.05
QUEUED_FACTOR = 0.25
POLL_CEILING = 3.0
STILL_POLL = 1.0
STALLED = 2.0

# While our file waits in Core's queue, every QUEUED_CHECK: that Core's queue is read (so that a task that cannot
# finish in time can say how full it was) and a finished earlier copy of the file is looked for.
QUEUED_CHECK = 1.0

# The end of a Core's time. A file still queued when the polls end is canceled: LEAVE_SHARE of the Core's time (at
# most LEAVE_TIME) is kept for that. The last poll is sent while LAST_POLL_SHARE of the time (at most LAST_POLL_TIME)
# is left for its answer; once Core has answered a poll of the scan, ANSWER_FACTOR times its slowest answer (at least
# LAST_POLL_FLOOR, for a busy host's scheduling delays and a finished report that takes longer to send) is enough.
LEAVE_SHARE = 0.025
LEAVE_TIME = 0.25
LAST_POLL_SHARE = 0.05
LAST_POLL_TIME = 0.5
ANSWER_FACTOR = 3.0
LAST_POLL_FLOOR = 0.1

# Overload. A result taken over from an earlier scan is held back while its Core is full, and returned HOLD_MARGIN
# before the deadline. The "Core is full" message uses a queue reading up to FULL_MESSAGE_SECONDS old, and is logged
# as a warning at most once in FULL_MESSAGE_SECONDS.
HOLD_MARGIN = 0.2
FULL_MESSAGE_SECONDS = 60.0

# Rate limits. A Core that limits our requests without saying for how long (no Retry-After) is asked again after
# RATE_LIMIT_WAIT (OPSWAT's own load-test tool polls every 500 ms); an upload it limited is sent again only while
# RETRY_UPLOAD_TIME of the Core's time is left after the wait.
RATE_LIMIT_WAIT = 1.0
RETRY_UPLOAD_TIME = 1.0
