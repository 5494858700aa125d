"""How busy Cores are (`GET stat/nodes`), asked in parallel and, where possible, before a task needs it.

`QueueGauge.ask(nodes)` starts reading those Cores' scan queues on daemon threads and returns at once;
`readings(nodes, wait)` returns the fresh readings, asking for the missing ones and waiting at most
`wait` seconds for answers still out. The threads only call the Core and keep its answer (queue and slot
counts, free queue places, or the CoreError), unless the caller dropped what the Core told (`forget`) while it was
out; what an answer means for the Core's health is decided by the caller, on its own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mdservice.client import CoreError, CoreLoad
from mdservice.timing import FRESH_SECONDS, HELPER_TIMEOUT


@dataclass(frozen=True)
class Reading:
    """One answer to `stat/nodes`: when it came, and the files Core had not finished, scans at once and the free
    places in its queue (None: not said), or why there are no numbers."""

    at: float
    queue: int | None = None
    slots: int = 1
    error: CoreError | None = None
    free: int | None = None


class LoadSource(Protocol):
    """A client that tells how busy its Core is (`CoreClient.get_load`)."""

    def get_load(self, timeout: float | None = None) -> CoreLoad: ...


class Gauged(Protocol):
    """What the gauge needs of a Core (a key, such as a CoreNode): a name for its messages and a client to ask."""

    @property
    def name(self) -> str: ...

    @property
    def client(self) -> LoadSource: ...


class QueueGauge:
    """The latest scan-queue reading of each Core, refreshed on demand by background requests."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._lock = threading.Lock()
        self._asking: dict[Gauged, threading.Event] = {}
        self._latest: dict[Gauged, Reading] = {}
        self._closed = False

    def ask(self, nodes: list[Gauged]) -> None:
        """Start asking each of `nodes` for its queue, without waiting; not those being asked, nor those whose latest
        reading is fresh (at most FRESH_SECONDS old)."""
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            for node in nodes:
                if node not in self._asking and not self._fresh(node, now):
                    self._start_reading(node)

    def _start_reading(self, node: Gauged) -> None:
        """Ask `node` on a daemon thread; with no thread to be had, it is not asked (its queue counts as unknown)."""
        asked = self._asking[node] = threading.Event()
        try:
            threading.Thread(target=self._read, args=(node, asked), daemon=True, name="md-stat-nodes").start()
        except RuntimeError:  # "can't start new thread"
            del self._asking[node]

    def latest(self, node: Gauged, within: float = FRESH_SECONDS) -> Reading | None:
        """The latest answer of `node` if it is at most `within` seconds old."""
        with self._lock:
            return self._latest[node] if self._fresh(node, self._clock(), within) else None

    def _fresh(self, node: Gauged, now: float, within: float = FRESH_SECONDS) -> bool:
        return node in self._latest and now - self._latest[node].at <= within

    def readings(self, nodes: list[Gauged], wait: float) -> dict[Gauged, Reading]:
        """Fresh readings of `nodes`; errors are handed out once.

        A fresh reading is used even while a newer one is being asked for; for the others this waits at most
        `wait` s for the answers still out.
        """
        self.ask(nodes)
        with self._lock:
            now = self._clock()
            pending = [self._asking[n] for n in nodes if n in self._asking and not self._fresh(n, now)]
        until = time.monotonic() + wait
        for event in pending:
            if not event.wait(max(0.0, until - time.monotonic())):
                break
        with self._lock:
            found = {n: self._latest[n] for n in nodes if self._fresh(n, self._clock())}
            for node, reading in found.items():
                if reading.error:
                    del self._latest[node]
        return found

    def forget(self, node: Gauged) -> None:
        """Drop the latest reading of `node`, and the answer to a request still out: its queue changed since (our file
        left it), so it is asked afresh."""
        with self._lock:
            self._latest.pop(node, None)
            self._asking.pop(node, None)

    def close(self) -> None:
        """Ask nothing more; requests still out end on their own within HELPER_TIMEOUT (daemon threads)."""
        with self._lock:
            self._closed = True

    def _read(self, node: Gauged, asked: threading.Event) -> None:
        """Ask `node` for its queue and keep the answer, unless the request was forgotten meanwhile (`forget`)."""
        try:
            load = node.client.get_load(timeout=HELPER_TIMEOUT)
            reading = Reading(self._clock(), queue=load.queue, slots=load.slots, free=load.available_slots)
        except CoreError as exc:
            reading = Reading(self._clock(), error=exc)
        except Exception as exc:  # a thread must not die silently: an unexpected failure stops the asking
            reading = Reading(self._clock(), error=CoreError(f"{node.name}: stat/nodes failed ({exc!r})",
                                                             node_fault=False))
        with self._lock:
            if self._asking.get(node) is asked:
                self._latest[node] = reading
                del self._asking[node]
        asked.set()
