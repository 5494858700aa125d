"""A fake MetaDefender Core on loopback that misbehaves at the socket level, on demand.

`HostileCore` answers like a healthy Core (engines, uploads, finished reports, cancels, sanitized
files) except on the routes it is given a `Misbehaviour` for. A misbehaviour writes whatever it
likes to the raw socket: a trickle, a stall, a cut, a reset, an endless stream, interim answers,
bad gzip or broken chunking, as a broken Core, proxy or load balancer would.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

ENGINES = [{"eng_name": "ClamAV", "eng_ver": "1.0.1", "engine_type": "av", "def_time": "2026-11-26T11:08:00.000Z",
            "active": True, "state": "production"}]
EICAR_HIT = {"ClamAV": {"scan_result_i": 1, "threat_found": "Eicar-Test-Signature"}}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


# A misbehaviour gets the socket and the request and writes what it likes; it returns True to keep the
# connection open for the next request (only a complete, well-framed answer may).
Misbehaviour = Callable[[socket.socket, Request, "HostileCore"], bool]


def http_answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None, reason: str = "X") -> bytes:
    """A complete HTTP/1.1 answer with a Content-Length."""
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {"Content-Type": "application/json"}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_answer(status: int, document) -> bytes:
    return http_answer(status, json.dumps(document).encode())


def finished_report(data_id: str, details: dict | None = None, actions_ran: str = "") -> dict:
    return {"data_id": data_id,
            "scan_results": {"progress_percentage": 100, "scan_all_result_i": 1, "scan_details": details or EICAR_HIT},
            "process_info": {"progress_percentage": 100,
                             "post_processing": {"actions_ran": actions_ran, "actions_failed": ""}}}


class HostileCore:
    """One fake Core. `routes` maps "METHOD path-regex" (path after the base, e.g. "GET file/[^/]+") to a
    misbehaviour; `report` gives the report for a data id (default: finished, ClamAV found EICAR)."""

    def __init__(self, routes: dict[str, Misbehaviour] | None = None,
                 report: Callable[[str], dict] | None = None, tls=None):
        self.routes = {re.compile(key.split(" ", 1)[1]): (key.split(" ", 1)[0], act)
                       for key, act in (routes or {}).items()}
        self.report = report or finished_report
        self.requests: list[Request] = []
        self.uploads = 0
        self.stopped = threading.Event()
        self.tls = tls
        # Set: every open connection is dropped and new ones are closed during the TLS handshake, as by an
        # overloaded load balancer.
        self.cut_handshakes = False
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._listener.getsockname()[1]}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    def close(self) -> None:
        self.stopped.set()
        self._listener.close()
        self.drop_connections()

    def drop_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shut(conn)

    def __enter__(self) -> HostileCore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn = self._secure(conn)
            if conn is not None:
                self._serve_requests(conn)
        except OSError:  # the client went away, or a test cut the connection on purpose
            pass
        finally:
            with self._lock:
                self._connections.discard(conn)
            if conn is not None:
                conn.close()

    def _secure(self, conn: socket.socket) -> socket.socket | None:
        """The connection as the client speaks to it: TLS when the Core has a context; None once cut."""
        if self.tls is None:
            return conn
        with self._lock:
            self._connections.discard(conn)
        if self.cut_handshakes:
            conn.recv(512)  # the start of the client's hello, then the connection is gone
            conn.close()
            return None
        conn = self.tls.wrap_socket(conn, server_side=True)
        with self._lock:
            self._connections.add(conn)
        return conn

    def _serve_requests(self, conn: socket.socket) -> None:
        with conn.makefile("rb") as reader:
            while not self.stopped.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                if not self._answer(conn, request):
                    return

    def _answer(self, conn: socket.socket, request: Request) -> bool:
        for pattern, (method, act) in self.routes.items():
            if method == request.method and pattern.fullmatch(request.path):
                return act(conn, request, self)
        conn.sendall(self.healthy_answer(request))
        return True

    def healthy_answer(self, request: Request) -> bytes:
        """What a healthy Core answers to `request`."""
        path = request.path
        if request.method == "POST" and path == "file":
            self.uploads += 1
            return json_answer(200, {"data_id": f"d{self.uploads:031x}"})
        if request.method == "GET" and path == "stat/engines":
            return json_answer(200, ENGINES)
        if request.method == "GET" and path.startswith("file/converted/"):
            return http_answer(200, b"sanitized copy", {"Content-Type": "application/octet-stream"})
        if request.method == "GET" and path.startswith("file/"):
            return json_answer(200, self.report(path.split("/", 1)[1]))
        if request.method == "POST" and path.endswith("/cancel"):
            return json_answer(200, {})
        return json_answer(404, {"err": "Not found"})


def _read_request(reader) -> Request | None:
    line = reader.readline(65536)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while (header := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0") or 0))
    return Request(method, target.lstrip("/"), headers, body, time.monotonic())


def _shut(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _wait_for_close(conn: socket.socket, core: HostileCore, seconds: float = 120.0) -> None:
    """Hold the connection open, sending nothing, until the client closes it (or the Core stops)."""
    conn.settimeout(0.1)
    until = time.monotonic() + seconds
    while time.monotonic() < until and not core.stopped.is_set():
        try:
            if conn.recv(4096) == b"":
                return
        except TimeoutError:
            continue
        except OSError:
            return


# --- misbehaviours ----------------------------------------------------------------------------------------------

def answer(raw: bytes | Callable[[Request, HostileCore], bytes], keep_open: bool = False) -> Misbehaviour:
    """Send `raw` (or what it computes for the request) as it is."""
    def act(conn, request, core):
        conn.sendall(raw(request, core) if callable(raw) else raw)
        return keep_open
    return act


def trickle(raw: bytes | None = None, interval: float = 0.5) -> Misbehaviour:
    """Send the answer (default: the healthy one) one byte every `interval` seconds."""
    def act(conn, request, core):
        for byte in raw if raw is not None else core.healthy_answer(request):
            if core.stopped.wait(interval):
                return False
            conn.sendall(bytes([byte]))
        return False
    return act


def stall(prefix: bytes = b"") -> Misbehaviour:
    """Send `prefix` (nothing, part of the headers or of the body), then nothing more."""
    def act(conn, request, core):
        conn.sendall(prefix)
        _wait_for_close(conn, core)
        return False
    return act


def cut(prefix: bytes) -> Misbehaviour:
    """Send `prefix`, then close the connection."""
    def act(conn, request, core):
        conn.sendall(prefix)
        return False
    return act


def reset(prefix: bytes = b"") -> Misbehaviour:
    """Send `prefix`, then reset the connection (TCP RST)."""
    def act(conn, request, core):
        conn.sendall(prefix)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False
    return act


def endless(headers: bytes, pieces: Callable[[], Iterator[bytes]]) -> Misbehaviour:
    """Send `headers`, then the pieces for as long as the client reads them."""
    def act(conn, request, core):
        conn.sendall(headers)
        for piece in pieces():
            if core.stopped.is_set():
                break
            conn.sendall(piece)
        return False
    return act


def with_interim(status: int = 103) -> Misbehaviour:
    """Send interim answers (`status`, twice, with headers) before the healthy answer."""
    def act(conn, request, core):
        interim = f"HTTP/1.1 {status} Interim\r\nLink: </style.css>; rel=preload\r\n\r\n".encode()
        conn.sendall(interim + interim + core.healthy_answer(request))
        return True
    return act


# --- hostile bodies ------------------------------------------------------------------------------------------------

CHUNKED_HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """`pieces` in HTTP chunked framing (without the closing zero chunk: the stream may be endless)."""
    for piece in pieces:
        yield b"%x\r\n%s\r\n" % (len(piece), piece)


def tiny_containers(size: int) -> Iterator[bytes]:
    """A JSON list of `size` bytes of empty lists, `[[],[],...]`, 64 KiB at a time."""
    piece = b"[]," * 21845
    yield b"["
    sent = 1
    while sent + len(piece) < size - 3:
        yield piece
        sent += len(piece)
    yield b"[]]"


def zeros_forever() -> Iterator[bytes]:
    piece = b"\0" * 65536
    while True:
        yield piece


def gzip_bomb(decoded_mib: int, layers: int = 1) -> bytes:
    """Zeros that inflate to `decoded_mib` MiB, gzip-compressed `layers` times."""
    compressor = gzip.compress
    data = compressor(b"\0" * (decoded_mib * 2**20), 9)
    for _ in range(layers - 1):
        data = compressor(data, 9)
    return data


def thousands_of_hits(count: int) -> Callable[[str], dict]:
    """A report function: `count` engines, every one a hit with its own name."""
    details = {f"Engine {i}": {"scan_result_i": 1, "threat_found": f"Trojan.Generic.{i}"} for i in range(count)}
    return lambda data_id: finished_report(data_id, details)
