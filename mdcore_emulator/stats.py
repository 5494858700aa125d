"""What a node counts about its clients, for tests and benchmarks (times on time.monotonic())."""

from dataclasses import dataclass, field


@dataclass
class ScanRecord:
    """One accepted upload. `started_at` and `finished_at` are when the job starts and is
    complete as planned now (a cancel moves the jobs behind it up): `finished_at` is None for
    a scan that never completes, the cancel time for a canceled scan (and its `started_at`
    too when it was canceled while waiting)."""

    data_id: str
    filename: str
    size: int
    queued_at: float
    started_at: float
    finished_at: float | None
    result_requests: int = 0
    rule: str = ""
    archive_passwords: tuple[str, ...] = ()


@dataclass
class NodeStats:
    """Counters of one node since it started or since its last reset_stats().

    `requests` counts every request received; `connections` the TCP connections accepted;
    `uploads` the accepted uploads;
    `result_requests` every GET /file/{id} that reached the routing (garbage, drop and
    bad_key answer before it), `limited_requests` those answered 429 (limited_polls).
    """

    uploads: int = 0
    result_requests: int = 0
    limited_requests: int = 0
    requests: int = 0
    connections: int = 0
    scans: dict[str, ScanRecord] = field(default_factory=dict)

    def processing_seconds(self, data_id: str) -> float | None:
        """finished_at - queued_at of that scan (queue included); None if it never finishes."""
        record = self.scans[data_id]
        return None if record.finished_at is None else record.finished_at - record.queued_at
