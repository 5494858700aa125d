"""Talking HTTP to one MetaDefender Core: engines, upload, report, cancel, sanitized file.

`CoreClient` owns one keep-alive `requests.Session` per Core. Every failure is a `CoreError`
that says whether retrying can help (`permanent`) and whether the Core itself is unwell
(`node_fault`); its message never contains the API key.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import quote

import requests

from mdservice.transport import ExchangeGuard, GuardedAdapter

# The most each answer may take, far above what real Cores send: a report lists every engine (and an
# archive's members), the engine list and node status a few dozen engines, other answers one line.
REPORT_MAX_BYTES = 8 * 1024 * 1024
STATUS_MAX_BYTES = 1024 * 1024
SMALL_MAX_BYTES = 64 * 1024
ERROR_MAX_BYTES = 4096
# JSON of tiny containers costs ~50 times its size in memory; real reports hold a few thousand.
MAX_CONTAINERS = 200_000
# Longer integers are read as floats (so huge ones become inf) instead of costing big-number arithmetic.
MAX_INT_DIGITS = 30
MAX_FILENAME_CHARS = 200
MAX_ERROR_CHARS = 200
# Core's data ids are 32 hex digits; anything else is refused before it reaches a URL or a message.
DATA_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The shortest piece of the API key that is masked wherever a Core or proxy echoes it.
KEY_PIECE = 8
CHUNK = 64 * 1024
# The most archive passwords one upload carries (as archivepwd, archivepwd1, archivepwd2, ...), and the most bytes
# their headers may take together: plenty for real lists, far below any web server's limit on request headers.
MAX_PASSWORDS = 20
MAX_PASSWORD_BYTES = 8 * 1024
# Where a not-ready answer of `GET readyz` may give its reason.
READY_REASONS = ("reason", "err", "message", "status")
# What a 400 answer to an upload names when the admin must fix something (OPSWAT's error table: an invalid callback
# URL or API key; the emulator, like Core, refuses an unknown rule so). Any other 400 to an upload is that Core
# unable to take the file now: since Core 4.19, too little free disk space (the text of that answer is undocumented).
ADMIN_FIX = re.compile(r"api[ _-]?key|rule|workflow|callback", re.IGNORECASE)
# What a 503 answer says when it is Core limiting the rate of requests (Core 5.13+), not a full queue.
RATE_LIMIT = re.compile(r"rate[ _-]?limit|too many requests", re.IGNORECASE)
# A Retry-After in seconds (fractions are read too); anything else is read as an HTTP date.
RETRY_SECONDS = re.compile(r"\d{1,9}(?:\.\d{1,6})?")


class CoreLoad(NamedTuple):
    """A Core's `stat/nodes`, summed over its nodes: `queue`, the files it has not finished (`scan_queue`); `slots`,
    the files it scans at once as far as it tells (`cpu_cores`, at least 1 per node); `available_slots`, the free
    places in its scan queue (`scan_queue_details.available_slots` of newer Cores; None when a node does not say).

    `available_slots` never counts free scan slots. OPSWAT's Helm chart divides it by `total_scan_queue` and shows an
    idle Core as 500 of 500 available: both count places in the scan queue (500 is its default size), whatever the
    number of files being scanned. No field of `stat/nodes` gives the scan slots (`cpu_cores` is the machine's CPU
    count). What the free places do tell: 0 means the queue is full, and Core refuses the next upload (503).
    """

    queue: int
    slots: int
    available_slots: int | None = None


class Passwords(NamedTuple):
    """The archive passwords an upload carries (`sent`), and how many others were skipped as `unsendable` (not text a
    header can carry: not a string, or a lone surrogate) or `left_out` (past MAX_PASSWORDS or MAX_PASSWORD_BYTES)."""

    sent: tuple[str, ...]
    unsendable: int = 0
    left_out: int = 0


class CoreError(Exception):
    """A Core did not give what was asked for.

    permanent: retrying cannot help (wrong API key, file refused, TLS refused): the admin must change something.
    node_fault: the Core itself is unwell or unusable, so it should sit out for a while.
    lost: Core no longer knows the scan asked about.
    """

    def __init__(self, message: str, permanent: bool = False, node_fault: bool = True, lost: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.node_fault = node_fault
        self.lost = lost


class CoreBusy(CoreError):
    """A Core that works but is full: its scan queue refused the file, or our file (`data_id`) was still waiting
    (`queued`) or being scanned when the time given to it ran out. Busy is not broken: the Core is not put aside."""

    def __init__(self, message: str, queued: bool = True, data_id: str = ""):
        super().__init__(message, node_fault=False)
        self.queued = queued
        self.data_id = data_id


class CoreRateLimited(CoreError):
    """A Core that limits the rate of requests (429, or a 503 that says so; Core 5.13 and later, set by its admin): a
    request to ask less often, not a broken or full Core, so it is never put aside. `retry_after`: the seconds Core
    asked us to wait (its Retry-After), None when it did not say."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message, node_fault=False)
        self.retry_after = retry_after


class CoreTimeout(CoreError):
    """A Core that did not answer within the time an exchange had."""


class CoreNotReady(CoreError):
    """A Core that says it does not meet its admin's health policy (`GET readyz` not 200, Core 5)."""


def redact_url(url: str) -> str:
    """The URL without any user:password part, for logs and messages.

    Works on text that does not parse as a URL too (no scheme, bad port): whatever comes before the
    last `@` of the authority is replaced.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, tail = re.match(r"([^/?#]*)(.*)", rest, re.DOTALL).groups()
    if "@" not in authority:
        return url
    return f"{scheme}{sep}***@{authority.rsplit('@', 1)[-1]}{tail}"


def encode_header_value(text: str) -> str:
    """URL-encode a header value (file names, rule names, passwords) so any character is safe to send."""
    return quote(text, safe="")


def choose_passwords(candidates: list) -> Passwords:
    """The archive passwords to send of `candidates`: each text once, in their order, none empty, as many as fit in
    MAX_PASSWORDS and MAX_PASSWORD_BYTES of headers (names and URL-encoded values)."""
    texts = [value for value in candidates if isinstance(value, str)]
    sent, unsendable, left_out, size = [], len(candidates) - len(texts), 0, 0
    for password in dict.fromkeys(text for text in texts if text):
        try:
            header = len(_password_header(len(sent))) + len(encode_header_value(password)) + len(": \r\n")
        except UnicodeError:  # a lone surrogate: no UTF-8 for it
            unsendable += 1
            continue
        if len(sent) == MAX_PASSWORDS or size + header > MAX_PASSWORD_BYTES:
            left_out += 1
            continue
        sent.append(password)
        size += header
    return Passwords(tuple(sent), unsendable, left_out)


def _password_header(index: int) -> str:
    """The upload header of the archive password at `index`: archivepwd, then archivepwd1, archivepwd2, ..."""
    return f"archivepwd{index or ''}"


def display_filename(name: str) -> str:
    """The file name as sent to Core: control characters replaced, at most MAX_FILENAME_CHARS (extension kept)."""
    name = "".join(ch if ch.isprintable() else "_" for ch in (name or "file")) or "file"
    if len(name) <= MAX_FILENAME_CHARS:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = ext if dot and stem and len(ext) <= 16 else ""
    keep = MAX_FILENAME_CHARS - len(ext) - (1 if ext else 0)
    return name[:keep] + ("." + ext if ext else "")


class CoreClient:
    """One Core's REST API at `base_url` (which ends with `/`).

    Every call takes `timeout`, the seconds the whole exchange may last (default `md_timeout`); no single
    socket operation waits longer than `md_timeout`. Every failure is a `CoreError`.
    """

    def __init__(self, base_url: str, api_key: str = "", verify: bool | str = True, timeout: float = 40.0):
        self.base_url = base_url
        self.name = redact_url(base_url)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify
        self.session.trust_env = False
        self.session.mount("http://", GuardedAdapter())
        self.session.mount("https://", GuardedAdapter())
        # Compressed answers can inflate a thousandfold, so none are asked for (and any that come are refused).
        self.session.headers["Accept-Encoding"] = "identity"
        self._api_key = api_key
        if api_key:
            self.session.headers["apikey"] = api_key

    def close(self) -> None:
        self.session.close()

    def get_engines(self, timeout: float | None = None):
        """The decoded `GET stat/engines` answer, every text in it masked (engine names reach results)."""
        return mask_json(self._json("GET", "stat/engines", timeout, STATUS_MAX_BYTES), self._api_key)

    def get_load(self, timeout: float | None = None) -> CoreLoad:
        """How busy Core is (`GET stat/nodes`): see CoreLoad."""
        answer = self._json("GET", "stat/nodes", timeout, STATUS_MAX_BYTES)
        statuses = [status for item in (answer if isinstance(answer, list) else [])
                    if isinstance(item, dict) and isinstance(item.get("statuses"), list)
                    for status in item["statuses"] if isinstance(status, dict)]
        queues = [status.get("scan_queue") for status in statuses]
        if not queues or not all(_is_count(q) for q in queues):
            raise CoreError(f"{self.name} sent no readable scan_queue in stat/nodes", node_fault=False)
        places = [_free_places(status) for status in statuses]
        free = None if None in places else sum(places)
        return CoreLoad(sum(queues), sum(_slots(status) for status in statuses), free)

    def check_ready(self, timeout: float | None = None) -> bool:
        """Whether Core can tell its readiness (`GET readyz`, Core 5 and later): True when it says it is ready, False
        when it has no such endpoint or refuses it for this key; a CoreNotReady with Core's reason when not ready."""
        def read(response: requests.Response) -> bool:
            status = response.status_code
            if status in (200, 401, 403, 404, 405):
                b"".join(self._body(response, "readyz", ERROR_MAX_BYTES))
                return status == 200
            reason = self._error_text(response, READY_REASONS)
            if status == 429 or RATE_LIMIT.search(reason):  # a request to ask less often says nothing of readiness
                raise self._rate_limited(response, f"{self.name} answered readyz with HTTP {status}{reason}")
            raise CoreNotReady(f"{self.name} says it is not ready (readyz answered HTTP {status}{reason})")

        return self._exchange("GET", "readyz", timeout, read)

    def get_rules(self, timeout: float | None = None) -> dict[str, int | None] | None:
        """Core's rules (`GET file/rules`): each name with the largest file it takes in bytes (None: no limit, see
        `_size_limit`); None when Core has no such endpoint (older versions)."""
        try:
            answer = self._json("GET", "file/rules", timeout, STATUS_MAX_BYTES, on_404=lambda: None)
        except CoreError as exc:
            if exc.permanent:  # 405, 400: a Core that does not offer the list
                return None
            raise
        if not isinstance(answer, list):  # a Core that does not list its rules (or not in a form it documents)
            return None
        return {rule["name"]: _size_limit(rule.get("max_file_size"))
                for rule in answer if isinstance(rule, dict) and isinstance(rule.get("name"), str)}

    def upload(self, path: str, filename: str, rule: str = "", passwords: tuple[str, ...] = (),
               timeout: float | None = None) -> str:
        """Stream the file at `path` to `POST file` and return Core's data_id. `passwords` (see choose_passwords) go
        as archivepwd, archivepwd1, archivepwd2, ...; an error never shows them, even where Core's text does."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(os.path.getsize(path)),
            "filename": encode_header_value(display_filename(filename)),
        }
        if rule:
            headers["rule"] = encode_header_value(rule)
        for index, password in enumerate(passwords):
            headers[_password_header(index)] = encode_header_value(password)
        try:
            with open(path, "rb") as body:
                answer = self._json("POST", "file", timeout, SMALL_MAX_BYTES, data=body, headers=headers)
        except CoreError as exc:
            exc.args = (_mask_passwords(str(exc), passwords),)
            raise
        data_id = answer.get("data_id") if isinstance(answer, dict) else None
        if not isinstance(data_id, str) or not DATA_ID.fullmatch(data_id):
            raise CoreError(f"{self.name} accepted the upload but gave no usable data_id")
        if not self._usable_id(data_id):
            raise CoreError(f"{self.name} accepted the upload but answered with a data_id that holds part of the "
                            "API key: not used")
        return data_id

    def _usable_id(self, data_id) -> bool:
        """Whether `data_id` may go into URLs, logs and error messages: Core's form, and no piece of the API key."""
        return isinstance(data_id, str) and bool(DATA_ID.fullmatch(data_id)) and self._scrub(data_id) == data_id

    def get_report(self, data_id: str, timeout: float | None = None) -> dict:
        """The report of `GET file/{data_id}`; a CoreError when Core no longer knows the data id."""
        report = self._json("GET", f"file/{data_id}", timeout, REPORT_MAX_BYTES, on_404=lambda: self._lost(data_id))
        if not isinstance(report, dict) or report.get(data_id) == "Not Found":
            self._lost(data_id)
        return report

    def _lost(self, data_id: str):
        raise CoreError(f"{self.name} lost the scan (data id {data_id} not found)", lost=True)

    def find_scan(self, sha256: str, rule: str = "", timeout: float | None = None) -> dict | None:
        """Core's newest report of the file with this SHA-256 (`GET hash/{sha256}`, under `rule` when one is set),
        or None when Core has none."""
        headers = {"rule": encode_header_value(rule)} if rule else {}
        path = f"hash/{sha256}"
        report = self._json("GET", path, timeout, REPORT_MAX_BYTES, on_404=lambda: None, headers=headers)
        if not isinstance(report, dict) or "Not Found" in report.values() or not self._usable_id(report.get("data_id")):
            return None
        return report

    def cancel(self, data_id: str, timeout: float | None = None) -> None:
        """Ask Core to stop a scan nobody will wait for any more."""
        self._json("POST", f"file/{data_id}/cancel", timeout, SMALL_MAX_BYTES)

    def download_converted(self, data_id: str, destination: str, max_bytes: int,
                           timeout: float | None = None) -> None:
        """Stream the sanitized file of `GET file/converted/{data_id}` to `destination`, at most `max_bytes`.

        On any failure the partial file is removed and a CoreError says why.
        """
        path = f"file/converted/{data_id}"

        def save(response: requests.Response) -> None:
            if response.status_code != 200:
                raise self._status_error(response, path)
            with _open_output(destination) as out:
                for chunk in self._body(response, path, max_bytes):
                    _write(out, chunk)

        try:
            self._exchange("GET", path, timeout, save)
        except CoreError:
            _remove(destination)
            raise

    def _json(self, method: str, path: str, timeout: float | None, max_bytes: int,
              on_404: Callable[[], object] | None = None, **kwargs):
        """The decoded JSON answer of one exchange; `on_404` gives what a 404 answer means (else it is an error)."""
        def read(response: requests.Response):
            if response.status_code == 404 and on_404 is not None:
                b"".join(self._body(response, path, ERROR_MAX_BYTES))  # read out, so the connection can be reused
                return on_404()
            if response.status_code != 200:
                raise self._status_error(response, path)
            return self._decode(b"".join(self._body(response, path, max_bytes)), path)

        return self._exchange(method, path, timeout, read, **kwargs)

    def _exchange(self, method: str, path: str, timeout: float | None, read: Callable, **kwargs):
        """Send one request and `read` its answer, all within `timeout`; any failure becomes a CoreError."""
        budget = self.timeout if timeout is None else max(0.001, timeout)
        per_read = min(budget, self.timeout)
        guard = ExchangeGuard(budget)
        try:
            with guard, self.session.request(method, self.base_url + path, timeout=per_read, stream=True,
                                             allow_redirects=False, **kwargs) as response:
                answer = read(response)
                # A body that ends where the guard cut the connection looks complete, but is not.
                if guard.finish():
                    raise self._failure(None, method, path, budget, expired=True)
                return answer
        except CoreError as exc:
            if guard.expired:  # what was read before the cut is not the answer Core meant
                raise self._failure(exc, method, path, budget, expired=True) from None
            raise
        except Exception as exc:  # urllib3 and http.client raise many types for what a broken peer sends
            raise self._failure(exc, method, path, budget, guard.expired) from None

    def _failure(self, exc: Exception | None, method: str, path: str, budget: float, expired: bool) -> CoreError:
        """The CoreError for an exchange that failed in transport; only a refused certificate is permanent."""
        if expired or isinstance(exc, requests.exceptions.Timeout):
            return CoreTimeout(f"{self.name} did not answer {method} {path} within {budget:g} s")
        if isinstance(exc, requests.exceptions.SSLError) and _failed_verification(exc):
            return CoreError(
                f"{self.name} failed TLS verification ({_reason(exc)}): set verify_certificate to the path of the "
                "CA bundle that signed Core's certificate (or false to skip verification)", permanent=True)
        if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
                exc, requests.exceptions.ChunkedEncodingError):
            return CoreError(f"{self.name} could not be reached for {method} {path}: {_reason(exc)}")
        return CoreError(f"{self.name} broke off its answer to {path}: {_reason(exc)}")

    def _body(self, response: requests.Response, path: str, max_bytes: int):
        """The answer's bytes as they arrive; a CoreError past `max_bytes` or for a compressed answer."""
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise CoreError(f"{self.name} sent a compressed answer to {path} (Content-Encoding "
                            f"{_shown(self._scrub(encoding))}) although none was asked for")
        received = 0
        for chunk in response.raw.stream(CHUNK, decode_content=False):
            received += len(chunk)
            if received > max_bytes:
                raise CoreError(f"{self.name} sent more than {_size(max_bytes)} for {path}")
            yield chunk

    def _decode(self, body: bytes, path: str):
        """The JSON value of `body`, built only when it is small enough to hold in memory."""
        if body.count(b"[") + body.count(b"{") > MAX_CONTAINERS:
            raise CoreError(f"{self.name} answered {path} with JSON of more than {MAX_CONTAINERS} objects and lists")
        try:
            return json.loads(body, parse_int=_read_int)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python can decode
            raise CoreError(f"{self.name} answered {path} with something that is not JSON") from None

    def _status_error(self, response: requests.Response, path: str) -> CoreError:
        status, detail = response.status_code, self._error_text(response)
        where = f"{self.name} answered {path} with HTTP {status}{detail}"
        if status in (401, 403):
            return CoreError(f"{where}: the API key was refused; set api_key to a key of a Core user allowed "
                             "to scan", permanent=True)
        if 300 <= status < 400:
            return CoreError(f"{where}: a redirect (not followed); set base_url to the Core's real address",
                             permanent=True)
        if "size exceeded" in detail.lower():
            return CoreError(f"{where}: the file is larger than Core's scan rule allows; raise the limit in "
                             "Core's workflow settings", permanent=True, node_fault=False)
        if status == 400 and path == "file":
            return _refused_upload(where, detail)
        if status in (400, 404, 405, 411, 413, 422):
            return CoreError(f"{where}: check base_url and md_version", permanent=True)
        if status == 429 or (status == 503 and RATE_LIMIT.search(detail)):
            return self._rate_limited(response, where)
        if status == 503 and detail:  # Core's own answer; a bare 503 is a proxy whose Core is down
            return CoreBusy(f"{where}: its scan queue is full")
        return CoreError(where)

    @staticmethod
    def _rate_limited(response: requests.Response, where: str) -> CoreRateLimited:
        """The error of an answer that limits the rate of requests, with the wait its Retry-After asks for."""
        wait = retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        asked = "" if wait is None else f" (Retry-After {wait:g} s)"
        return CoreRateLimited(f"{where}{asked}: Core limits the rate of requests; raise the limit of this API in "
                               "Core's Settings > Security, or lower the service's instance limit", wait)

    def _error_text(self, response: requests.Response, fields: tuple[str, ...] = ("err",)) -> str:
        """Core's own message (the first of `fields` in its JSON answer, `{"err": ...}` by default), key masked,
        then shortened; "" when there is none to read."""
        try:
            raw = response.raw.read(ERROR_MAX_BYTES, decode_content=False)
            answer = json.loads(raw)
            message = next((answer[name] for name in fields if answer.get(name)), "")
        except Exception:  # an error answer that is itself broken still has its status to report
            return ""
        text = self._scrub(message if isinstance(message, str) else str(message)[:ERROR_MAX_BYTES])
        return f" ({text[:MAX_ERROR_CHARS]})" if text else ""

    def _scrub(self, text: str) -> str:
        """`text` with every piece of the API key of KEY_PIECE characters or more masked as `***`."""
        return mask_key(text, self._api_key)


def retry_after(value: str | None, now: datetime) -> float | None:
    """The seconds a Retry-After header asks to wait at wall-clock `now`: a number of seconds or an HTTP date (0 once
    past); None when there is none or it cannot be read."""
    value = (value or "").strip()
    if RETRY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _mask_passwords(text: str, passwords: tuple[str, ...]) -> str:
    """`text` with each password, as sent (URL-encoded) or not, masked as `mask_key` masks the API key."""
    for password in passwords:
        text = mask_key(mask_key(text, encode_header_value(password)), password)
    return text


def _refused_upload(where: str, detail: str) -> CoreError:
    """The error of a 400 answer to an upload: permanent when Core's text names what the admin must fix (ADMIN_FIX),
    else a failure of that Core (it sits out, and the file goes to another Core)."""
    if ADMIN_FIX.search(detail):
        return CoreError(f"{where}: fix what Core's answer names in the service's configuration (api_key, rule) or "
                         "in Core", permanent=True)
    return CoreError(f"{where}: Core could not take the file (from Core 4.19: it lacks the free disk space for it)")


def mask_key(text: str, key: str) -> str:
    """`text` with each run of characters that contains a KEY_PIECE-long piece of `key` replaced by `***`.

    A key shorter than that is masked where it stands alone (not inside a word or number): a key "k" must not
    mask every k of a message.
    """
    if not key:
        return text
    if len(key) < KEY_PIECE:
        return re.sub(f"(?<![A-Za-z0-9]){re.escape(key)}(?![A-Za-z0-9])", "***", text)
    if len(text) < KEY_PIECE or not _piece_pattern(key).search(text):  # the common case, found at C speed
        return text
    pieces = {key[i:i + KEY_PIECE] for i in range(len(key) - KEY_PIECE + 1)}
    hidden = [False] * len(text)
    for start in range(len(text) - KEY_PIECE + 1):
        if text[start:start + KEY_PIECE] in pieces:
            hidden[start:start + KEY_PIECE] = [True] * KEY_PIECE
    shown, previous = [], False
    for char, masked in zip(text, hidden, strict=True):
        if not masked:
            shown.append(char)
        elif not previous:
            shown.append("***")
        previous = masked
    return "".join(shown)


@functools.lru_cache(maxsize=4)
def _piece_pattern(key: str) -> re.Pattern:
    """Matches any KEY_PIECE-long piece of `key`."""
    return re.compile("|".join(re.escape(key[i:i + KEY_PIECE]) for i in range(len(key) - KEY_PIECE + 1)))


def mask_json(value, key: str):
    """A copy of decoded JSON `value` with every text in it, object keys included, masked by `mask_key` (`value`
    itself when there is no key). Walked without recursion: any nesting Python's JSON reader accepts is fine."""
    if not key:
        return value
    root = [value]
    pending: list[tuple[list | dict, int | str]] = [(root, 0)]
    while pending:
        holder, place = pending.pop()
        item = holder[place]
        if isinstance(item, str):
            holder[place] = mask_key(item, key)
        elif isinstance(item, list):
            holder[place] = item = list(item)
            pending.extend((item, index) for index in range(len(item)))
        elif isinstance(item, dict):
            holder[place] = item = {mask_key(name, key): entry for name, entry in item.items()}
            pending.extend((item, name) for name in item)
    return root[0]


class KeyMaskFilter(logging.Filter):
    """A logging filter that masks every piece of the API key (as `mask_key`) in each record's message."""

    def __init__(self, key: str):
        super().__init__()
        self.key = key

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_key(message, self.key)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _read_int(digits: str) -> int | float:
    return int(digits) if len(digits) <= MAX_INT_DIGITS else float(digits)


def _failed_verification(exc: BaseException) -> bool:
    """True when a TLS failure is Core's certificate or host name failing verification (not a cut handshake)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = next((arg for arg in (*getattr(exc, "args", ()), getattr(exc, "reason", None))
                    if isinstance(arg, BaseException)), exc.__cause__ or exc.__context__)
    return False


def _open_output(path: str):
    try:
        return open(path, "wb", buffering=0)  # unbuffered: a full disk shows in write(), not in close()
    except OSError as exc:
        raise _unwritable(exc) from None


def _write(out, chunk: bytes) -> None:
    view = memoryview(chunk)
    try:
        while view:
            view = view[out.write(view):]
    except OSError as exc:
        raise _unwritable(exc) from None


def _unwritable(exc: OSError) -> CoreError:
    """A local disk problem, not the Core's."""
    return CoreError(f"the sanitized file could not be written: {exc.strerror}", node_fault=False)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _size(count: int) -> str:
    return f"{count // 2**20} MiB" if count >= 2**20 else f"{count // 1024} KiB"


def _reason(exc: Exception) -> str:
    """A one-line cause for a transport error, without URLs (they could carry credentials)."""
    text = str(exc.__context__ or exc) if not str(exc) else str(exc)
    for marker in ("Connection refused", "Connection reset", "Remote end closed", "timed out",
                   "CERTIFICATE_VERIFY_FAILED", "Name or service not known", "No route to host"):
        if marker.lower() in text.lower():
            return marker.lower()
    return type(exc).__name__


def _slots(status: dict) -> int:
    """The files one Core node scans at once, as far as its status tells: its `cpu_cores`, at least 1."""
    cpus = status.get("cpu_cores")
    return cpus if _is_count(cpus) and cpus > 0 else 1


def _free_places(status: dict) -> int | None:
    """The free places in one Core node's scan queue (`scan_queue_details.available_slots`), None when not said."""
    details = status.get("scan_queue_details")
    free = details.get("available_slots") if isinstance(details, dict) else None
    return free if _is_count(free) else None


def _size_limit(max_file_size) -> int | None:
    """The largest file in bytes a rule's `max_file_size` allows, None for no limit: 0, a missing, negative or
    non-numeric value is no limit (what 0 means is not documented, and no file could be scanned under 0 bytes)."""
    if isinstance(max_file_size, bool) or not isinstance(max_file_size, int | float):
        return None
    return int(max_file_size) if 0 < max_file_size < math.inf else None


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
