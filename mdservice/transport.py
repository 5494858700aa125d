"""A `requests` transport whose every exchange ends by its deadline, whatever the other end does.

`requests`' timeout bounds each socket operation, not the exchange: a Core or proxy that sends one
byte per second never trips it. Here every exchange runs under an `ExchangeGuard`; the sockets it
uses (a new connection from its first byte, or a reused keep-alive one) are registered with it, and
when its time is up a watchdog thread shuts them down, so whatever was blocked on them fails at once.

The same connection classes skip interim `1xx` answers (`103 Early Hints`, `102 Processing`) the way
`http.client` already skips `100 Continue`, so only a final answer is ever taken for Core's.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import socket
import threading
import time

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class ExchangeGuard:
    """Ends one request-response exchange `seconds` after it starts, by shutting down its sockets.

    Use as a context manager around the whole exchange (request, headers and body); `expired` tells
    afterwards whether the guard had to cut it.
    """

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + max(seconds, 0.0)
        self.expired = False
        self.finished = False
        self._sockets: list[socket.socket] = []
        self._owned: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ExchangeGuard:
        _current.guard = self
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc_info) -> None:
        _current.guard = None
        self.finish()
        with self._lock:
            owned, self._owned = self._owned, []
        for sock in owned:
            sock.close()

    def finish(self) -> bool:
        """End the watch (before the connection goes back to the pool); True when the time had run out first."""
        with self._lock:
            self.finished = True
            self._sockets = []
            return self.expired

    def watch(self, sock: socket.socket, own: bool = False) -> None:
        """Cut `sock` when the time is up (at once if it already is); `own`: close it when the exchange ends."""
        with self._lock:
            self._sockets.append(sock)
            if own:
                self._owned.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def expire(self) -> None:
        """The time is up: cut every socket of the exchange, unless it is already over."""
        with self._lock:
            if self.finished:
                return
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


class _Watchdog:
    """One daemon thread that expires guards at their deadlines (a thread per exchange would cost far more)."""

    def __init__(self):
        self._due: list[tuple[float, int, ExchangeGuard]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, guard: ExchangeGuard) -> None:
        with self._wake:
            heapq.heappush(self._due, (guard.deadline, next(self._order), guard))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="md-exchange-watchdog", daemon=True)
                self._thread.start()
            if self._due[0][2] is guard:  # a new earliest deadline: the thread must wake sooner
                self._wake.notify()

    def _run(self) -> None:
        while True:
            guard = self._next_due()
            try:
                guard.expire()
            except Exception:  # this one thread keeps every deadline: it must outlive any failure
                pass

    def _next_due(self) -> ExchangeGuard:
        """Wait for the earliest deadline of a guard whose exchange is still going on, and return that guard."""
        with self._wake:
            while True:
                while self._due and self._due[0][2].finished:
                    heapq.heappop(self._due)
                if not self._due:
                    self._wake.wait()
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._due)[2]
                self._wake.wait(wait)


_WATCHDOG = _Watchdog()


def _shut(sock: socket.socket) -> None:
    """Shut a socket down from another thread: the plain-socket call, which leaves a TLS socket's state alone."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError):
        pass  # already closed, or not a socket this can cut


def _watch(sock: socket.socket | None, own: bool = False) -> None:
    guard = getattr(_current, "guard", None)
    if guard is not None and sock is not None:
        guard.watch(sock, own)


class _FinalResponse(http.client.HTTPResponse):
    """Reads past interim 1xx answers: they are passed to `http.client` as the `100 Continue` it skips."""

    def _read_status(self):
        version, status, reason = super()._read_status()
        if 100 <= status < 200 and status != 101:
            return version, http.client.CONTINUE, reason
        return version, status, reason


class _GuardedConnection:
    """Mixin for urllib3's connections: every socket an exchange uses is watched by its guard."""

    response_class = _FinalResponse

    def _new_conn(self):
        sock = super()._new_conn()
        # A duplicate stays shut-downable while TLS wraps (and detaches) the original during the handshake.
        _watch(sock.dup(), own=True)
        return sock

    def connect(self) -> None:
        super().connect()
        _watch(self.sock)

    def request(self, *args, **kwargs):
        _watch(self.sock)
        return super().request(*args, **kwargs)


class _GuardedHTTPConnection(_GuardedConnection, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """The `requests` adapter whose connections obey `ExchangeGuard` and skip interim answers."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}
