"""HTTP(S) serving: the request handler, one listening `Node` per Core, and `Emulator`.

Each node is a ThreadingHTTPServer on loopback speaking HTTP/1.1 with keep-alive; every
response carries a Content-Length. Request bodies are always consumed (or the connection
is closed) before answering, so keep-alive connections stay in sync.
"""

import re
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .core import ENGINE_LISTS, REPORT_FLAVOURS, Core, Reply, Settings, error_reply
from .faults import GARBAGE_BODY, check_fault
from .processing import DEFAULT_RULE, Clock, Submission, UploadDigest
from .tls import make_certificates, server_context

CHUNK = 64 * 1024
V3_PREFIX = "/metascan_rest"
_PASSWORD_HEADER = re.compile(r"archivepwd([1-9][0-9]{0,5})?", re.IGNORECASE)


def _upload(request: "_Handler", node: "Node") -> Reply | None:
    """POST /file: 411 without Content-Length (or chunked), 422 when empty, else queue the body."""
    if request.body_left is None:
        return error_reply(411, "Missing Content-Length header.")
    if request.body_left == 0:
        return error_reply(422, "File is empty.")
    submission = request.submission()
    refused = node.upload_refused(submission, request.body_left)
    if refused is not None:
        return refused
    digest = request.read_body()
    return None if digest is None else node.upload(digest, submission)


_ROUTES = (
    (re.compile(r"/version"), {"GET": lambda request, node: node.version()}),
    (re.compile(r"/stat/engines"), {"GET": lambda request, node: node.engine_list()}),
    (re.compile(r"/stat/nodes"), {"GET": lambda request, node: node.nodes_status()}),
    (re.compile(r"/readyz"), {"GET": lambda request, node: node.readiness()}),
    (re.compile(r"/file"), {"POST": _upload}),
    (re.compile(r"/file/rules"), {"GET": lambda request, node: node.rules()}),
    (re.compile(r"/file/converted/([^/]+)"), {"GET": lambda request, node, data_id: node.converted(data_id)}),
    (re.compile(r"/file/([^/]+)"), {"GET": lambda request, node, data_id: node.result(data_id)}),
    (re.compile(r"/file/([^/]+)/cancel"), {"POST": lambda request, node, data_id: node.cancel(data_id)}),
    (re.compile(r"/hash/([^/]+)"), {"GET": lambda request, node, digest: node.hash_lookup(digest, request.rule())}),
)


class _Handler(BaseHTTPRequestHandler):
    """Serves one connection of a node; `server.node` is the Node behind it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: "_HttpServer"

    def setup(self) -> None:
        context = self.server.ssl_context
        if context is not None:  # the TLS handshake runs here, in the connection's own thread
            self.request.settimeout(10)
            self.request = context.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        self.server.node.track(self.request)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.node.untrack(self.request)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _serve(self) -> None:
        """Answer one request (or hang up for the drop/down faults) and log it."""
        node = self.server.node
        begun = time.monotonic()
        node.count_request()
        self._frame_body()
        status = "dropped"
        try:
            reply = None if node.faults & {"drop", "down"} else self._answer(node)
            if reply is None:
                self._hang_up()
            else:
                status = reply.status
                self._send(reply, node)
        finally:
            node.log(self.command, self.path, status, time.monotonic() - begun)

    def _answer(self, node: "Node") -> Reply | None:
        """The reply to the current request; None means: close without answering."""
        if "garbage" in node.faults:
            return Reply(200, GARBAGE_BODY, "text/html; charset=utf-8")
        if not node.key_accepted(self.headers.get("apikey")):
            return node.access_denied()
        path = urlsplit(self.path).path
        if node.settings.md_version == 3:
            path = path.removeprefix(V3_PREFIX) if path.startswith(V3_PREFIX + "/") else ""
        for pattern, methods in _ROUTES:
            match = pattern.fullmatch(path)
            if match:
                endpoint = methods.get(self.command)
                if endpoint is None:
                    return error_reply(405, "Method not allowed")
                return endpoint(self, node, *match.groups())
        return error_reply(404, "Not found")

    # ------------------------------------------------------------------ request body

    def _frame_body(self) -> None:
        """Set `body_left`: the body bytes still unread, or None for chunked or no/invalid length."""
        length = self.headers.get("Content-Length", "")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        self.body_left = int(length) if length.isdecimal() and not chunked else None
        self._unframed = chunked or (length != "" and self.body_left is None)

    def read_body(self) -> UploadDigest | None:
        """Stream the body into an UploadDigest; None if the client went away mid-body."""
        digest = UploadDigest()
        while self.body_left:
            chunk = self.rfile.read(min(CHUNK, self.body_left))
            if not chunk:
                return None
            digest.feed(chunk)
            self.body_left -= len(chunk)
        return digest

    def _discard_body(self) -> None:
        """Drop whatever body is left unread; a body we cannot delimit closes the connection."""
        if self._unframed:
            self.close_connection = True
        while self.body_left:
            chunk = self.rfile.read(min(CHUNK, self.body_left))
            if not chunk:
                self.close_connection = True
                return
            self.body_left -= len(chunk)

    def rule(self) -> str | None:
        """The URL-decoded header rule (or its old alias workflow); None when absent or empty."""
        return unquote(self.headers.get("rule") or self.headers.get("workflow") or "") or None

    def submission(self) -> Submission:
        """The upload headers: filename, rule (default DEFAULT_RULE), archive passwords; URL-decoded."""
        headers = self.headers
        return Submission(unquote(headers.get("filename", "")), self.rule() or DEFAULT_RULE, self.archive_passwords())

    def archive_passwords(self) -> tuple[str, ...]:
        """The URL-decoded archive passwords: header archivepwd, then archivepwd<N> (N >= 1) in the order of N, as
        OpenAPI's "Process a file" describes them; empty ones are none."""
        numbered = {}
        for name, value in self.headers.items():
            match = _PASSWORD_HEADER.fullmatch(name)
            if match and value:
                numbered[int(match.group(1) or 0)] = unquote(value)
        return tuple(numbered[number] for number in sorted(numbered))

    # ------------------------------------------------------------------ response

    def _send(self, reply: Reply, node: "Node") -> None:
        delay = node.answer_delay
        if delay:
            time.sleep(delay)
        self._discard_body()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)

    def _hang_up(self) -> None:
        self.close_connection = True
        hang_up(self.connection)

    def log_request(self, code="-", size="-") -> None:
        """Requests are logged by _serve, with their duration."""

    def log_message(self, format: str, *args) -> None:
        self.server.node.note(format % args)


def _later(seconds: float, action, *args) -> None:
    timer = threading.Timer(seconds, action, args)
    timer.daemon = True
    timer.start()


def hang_up(connection: socket.socket) -> None:
    """Cut a connection from any thread: the plain-socket shutdown, so a TLS socket's state
    is not touched by a thread that does not own it. The owning thread then sees EOF."""
    try:
        socket.socket.shutdown(connection, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _HttpServer(ThreadingHTTPServer):
    """A node's listener; handler threads are daemons so a stuck client never blocks stop()."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog: benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], node: "Node", ssl_context) -> None:
        self.node = node
        self.ssl_context = ssl_context
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host (slow on some machines)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        """Connections cut by clients, faults or stop() are routine: one note, no traceback."""
        self.node.note(f"connection from {client_address[0]} ended: {sys.exc_info()[1]!r}")


class Node(Core):
    """One emulated Core listening on `host`:`port` (port 0: a free port, fixed once picked).

    Adds to Core the listener's life cycle: the `down` fault closes the listening socket and
    every open connection; clearing it listens again on the same port.
    """

    def __init__(
        self, index: int, settings: Settings, clock: Clock, address: tuple[str, int], ssl_context=None, faults=()
    ) -> None:
        super().__init__(index, settings, clock, faults)
        self.host, self.port = address
        self._ssl_context = ssl_context
        self._server: _HttpServer | None = None
        self._running = False
        self._connections: set[socket.socket] = set()
        self._io_lock = threading.Lock()
        # (seconds after this Core's first upload, seconds down): an outage to play, once; None: none.
        self.outage: tuple[float, float] | None = None

    @property
    def url(self) -> str:
        """The base URL a client uses (ends with "/"; v3 adds the /metascan_rest/ prefix)."""
        scheme = "https" if self._ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        prefix = V3_PREFIX + "/" if self.settings.md_version == 3 else "/"
        return f"{scheme}://{host}:{self.port}{prefix}"

    def start(self) -> None:
        """Bind (which fixes the port) and serve, unless the node starts `down`."""
        self._running = True
        self._listen()
        if "down" in self.faults:
            self._stop_listening()

    def stop(self) -> None:
        """Close the listener and every connection."""
        self._running = False
        self._stop_listening()

    def set_fault(self, name: str) -> None:
        super().set_fault(name)
        if name == "down":
            self._stop_listening()

    def clear_fault(self, name: str) -> None:
        super().clear_fault(name)
        if name == "down" and self._running:
            self._listen()

    def upload(self, digest: UploadDigest, submission: Submission) -> Reply:
        """Core's upload; the first one starts the clock of this Core's outage, if it has one."""
        reply = super().upload(digest, submission)
        with self._io_lock:
            outage, self.outage = self.outage, None
        if outage is not None:
            after, seconds = outage
            _later(after, self.set_fault, "down")
            _later(after + seconds, self.clear_fault, "down")
        return reply

    def _listen(self) -> None:
        with self._io_lock:
            if self._server is not None:
                return
            server = _HttpServer((self.host, self.port), self, self._ssl_context)
            self.port = server.server_address[1]
            self._server = server
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
            name=f"mdcore-emulator-node-{self.index}",
        ).start()

    def _stop_listening(self) -> None:
        with self._io_lock:
            server, self._server = self._server, None
            connections = list(self._connections)
        if server is not None:
            server.shutdown()
            server.server_close()
        for connection in connections:
            hang_up(connection)

    def track(self, connection: socket.socket) -> None:
        with self._io_lock:
            self._connections.add(connection)
            self.stats.connections += 1

    def untrack(self, connection: socket.socket) -> None:
        with self._io_lock:
            self._connections.discard(connection)

    def log(self, method: str, path: str, status: int | str, seconds: float) -> None:
        """One line per request on stderr, unless quiet."""
        self.note(f"{method} {path} {status} {seconds * 1000:.1f} ms")

    def note(self, text: str) -> None:
        if not self.settings.quiet:
            print(f"node {self.index} {text}", file=sys.stderr, flush=True)


class Emulator:
    """`nodes` independent emulated Cores on loopback; a context manager (or start()/stop()).

    scan_seconds: scan time per file (MDEMU:SCAN= overrides it per file); apikey: when set,
    every request needs header `apikey` equal to it; md_version: 3 or 4 (API flavour);
    tls: serve HTTPS with a fresh CA (`ca_path`, written into cert_dir, default a temporary
    directory removed by stop()); concurrency: files scanned at once per Core; queue_limit:
    waiting files per Core before uploads get 503; slow_seconds: delay of the `slow` fault;
    port: 0 for free ports, else node i listens on port + i; faults: {node index: [fault]}
    active from the start; node_scan_seconds: {node index: scan time} for Cores slower or
    faster than scan_seconds; latency: seconds every answer is delayed (a network delay),
    node_latency: {node index: delay} for Cores farther or nearer; quiet: no per-request log
    lines on stderr; engine_list: "tidy" (one entry per engine) or "packages" (Linux and Windows
    packages as real Cores list them); report_flavour: "current" or "4.3" (the field set of an older Core);
    hash_unfinished: GET /hash/{hash} also returns scans still queued or scanning (default: finished only);
    core_version: 4, or 5 (md_version 4, report_flavour "current"): /version 5.x, GET /readyz (see
    Node.set_ready), GET /file/rules, stat/nodes scan_queue_details, Core 5 report fields, and uploads
    refused under a rule the Core lacks or above its rule's max_file_size; rules: {name: max_file_size
    in bytes, 0: no limit}, Core 5 only (default {"File scan": DEFAULT_MAX_FILE_SIZE}); node_concurrency: {node
    index: scan slots} for Cores bigger or smaller than concurrency; outages: {node index: (after, seconds)}: that
    Core refuses connections (the `down` fault) from `after` s after its first upload, for `seconds`, then answers
    again with its scans as they are then (they go on meanwhile, as on a Core cut off by its network); limited_polls:
    the first polls (GET /file/{id}) of every scan that answer 429 (request rate limiting, Core 5.13+) with a
    Retry-After of retry_after seconds (fractions, which HTTP does not define, keep tests short); wall_start: the
    wall-clock time (aware datetime) the Cores take as their start, default now: engine definition times count back
    from it and scan times forward, so that the same files scanned give the same reports run after run;
    clock: the time every Core's scans run on (a `Clock`; None: the monotonic clock from start), so that a test can
    move it on by hand (latency, the slow fault and outages still take real time).
    """

    def __init__(
        self,
        nodes: int = 1,
        scan_seconds: float = 1.0,
        apikey: str | None = None,
        md_version: int = 4,
        tls: bool = False,
        concurrency: int = 1,
        queue_limit: int = 500,
        slow_seconds: float = 2.0,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: dict[int, list[str]] | None = None,
        quiet: bool = True,
        cert_dir: str | Path | None = None,
        node_scan_seconds: dict[int, float] | None = None,
        engine_list: str = "tidy",
        report_flavour: str = "current",
        latency: float = 0.0,
        node_latency: dict[int, float] | None = None,
        hash_unfinished: bool = False,
        core_version: int = 4,
        rules: dict[str, int] | None = None,
        node_concurrency: dict[int, int] | None = None,
        outages: dict[int, tuple[float, float]] | None = None,
        limited_polls: int = 0,
        retry_after: float = 1.0,
        wall_start: datetime | None = None,
        clock: Clock | None = None,
    ) -> None:
        _check(nodes >= 1, "nodes must be at least 1")
        _check(md_version in (3, 4), "md_version must be 3 or 4")
        _check(concurrency >= 1 and queue_limit >= 0, "concurrency must be >= 1 and queue_limit >= 0")
        _check(scan_seconds >= 0 and slow_seconds >= 0, "scan_seconds and slow_seconds must be >= 0")
        _check(port == 0 or 0 < port <= 65536 - nodes, "port must be 0 or leave room for every node")
        _check(all(0 <= index < nodes for index in faults or {}), "faults names a node that does not exist")
        for name, per_node in (("node_scan_seconds", node_scan_seconds), ("node_latency", node_latency)):
            _check(all(0 <= index < nodes and seconds >= 0 for index, seconds in (per_node or {}).items()),
                   f"{name} needs existing nodes and times >= 0")
        _check(latency >= 0, "latency must be >= 0")
        _check(all(0 <= index < nodes and slots >= 1 for index, slots in (node_concurrency or {}).items()),
               "node_concurrency needs existing nodes and at least 1 slot")
        _check(all(0 <= index < nodes and min(times) >= 0 for index, times in (outages or {}).items()),
               "outages need existing nodes and times >= 0")
        _check(limited_polls >= 0 and retry_after >= 0, "limited_polls and retry_after must be >= 0")
        _check(wall_start is None or wall_start.utcoffset() is not None, "wall_start must be an aware datetime")
        _check(engine_list in ENGINE_LISTS, f"engine_list must be one of {', '.join(ENGINE_LISTS)}")
        _check(report_flavour in REPORT_FLAVOURS, f"report_flavour must be one of {', '.join(REPORT_FLAVOURS)}")
        _check_core_version(core_version, md_version, report_flavour, rules)
        for names in (faults or {}).values():
            for name in names:
                check_fault(name)
        self.settings = Settings(scan_seconds, apikey, md_version, concurrency, queue_limit, slow_seconds, quiet,
                                 engine_list, report_flavour, latency, hash_unfinished, core_version,
                                 tuple(rules.items()) if rules else Settings.rules, limited_polls, retry_after)
        self._count, self._host, self._port = nodes, host, port
        self._tls, self._cert_dir = tls, cert_dir
        self._faults = faults or {}
        self._node_scan_seconds = node_scan_seconds or {}
        self._node_latency = node_latency or {}
        self._node_concurrency = node_concurrency or {}
        self._outages = outages or {}
        self._wall_start = wall_start
        self._clock = clock
        self._temp_dir: str | None = None
        self.nodes: list[Node] = []
        self.ca_path: str | None = None

    @property
    def urls(self) -> list[str]:
        """Base URL of every node, in node order."""
        return [node.url for node in self.nodes]

    def start(self) -> "Emulator":
        """Create (and, with tls, certify) the nodes and start listening."""
        ssl_context = self._make_tls() if self._tls else None
        clock = self._clock or Clock(wall_start=self._wall_start)
        self.nodes = [
            Node(
                i,
                self.settings,
                clock,
                (self._host, self._port + i if self._port else 0),
                ssl_context,
                self._faults.get(i, ()),
            )
            for i in range(self._count)
        ]
        for index, seconds in self._node_scan_seconds.items():
            self.nodes[index].scan_seconds = seconds
        for index, seconds in self._node_latency.items():
            self.nodes[index].latency = seconds
        for index, slots in self._node_concurrency.items():
            self.nodes[index].set_concurrency(slots)
        for index, outage in self._outages.items():
            self.nodes[index].outage = outage
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close every listener and connection; remove the temporary certificate directory."""
        for node in self.nodes:
            node.stop()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def _make_tls(self):
        if self._cert_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="mdcore-emulator-tls-")
        files = make_certificates(Path(self._cert_dir or self._temp_dir), self._host)
        self.ca_path = str(files.ca_path.resolve())
        return server_context(files)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _check_core_version(core_version: int, md_version: int, report_flavour: str, rules: dict | None) -> None:
    _check(core_version in (4, 5), "core_version must be 4 or 5")
    if core_version == 5:
        _check(md_version == 4 and report_flavour == "current",
               "core_version 5 needs md_version 4 and report_flavour current")
    _check(rules is None or core_version == 5, "rules need core_version 5")
    _check(all(name and size >= 0 for name, size in (rules or {}).items()), "rules need names and sizes >= 0")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
