"""Talking HTTP to one MetaDefender Core: engines, upload, report, cancel, sanitized file.

`CoreClient` owns one keep-alive `requests.Session` per Core. Every failure is a `CoreError`
that says whether retrying can help (`permanent`) and whether the Core itself is unwell
(`node_fault`); its message never contains the API key.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

import requests

MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_FILENAME_CHARS = 200
# Core's data ids are 32 hex digits; anything far longer is not one.
MAX_DATA_ID_CHARS = 256
CHUNK = 64 * 1024


class CoreError(Exception):
    """A Core did not give what was asked for.

    permanent: retrying cannot help (wrong API key, file refused, TLS refused): the admin must change something.
    node_fault: the Core itself is unwell or unusable, so it should sit out for a while.
    """

    def __init__(self, message: str, permanent: bool = False, node_fault: bool = True):
        super().__init__(message)
        self.permanent = permanent
        self.node_fault = node_fault


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
    """One Core's REST API at `base_url` (which ends with `/`)."""

    def __init__(self, base_url: str, api_key: str = "", verify: bool | str = True, timeout: float = 40.0):
        self.base_url = base_url
        self.name = redact_url(base_url)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify
        self.session.trust_env = False
        self._api_key = api_key
        if api_key:
            self.session.headers["apikey"] = api_key

    def close(self) -> None:
        self.session.close()

    def get_engines(self, timeout: float | None = None):
        """The decoded `GET stat/engines` answer."""
        return self._json("GET", "stat/engines", timeout)

    def get_scan_queue(self, timeout: float | None = None) -> int:
        """Files Core has not finished yet (`GET stat/nodes`: `scan_queue` summed over Core's nodes)."""
        answer = self._json("GET", "stat/nodes", timeout)
        statuses = [status for item in (answer if isinstance(answer, list) else [])
                    if isinstance(item, dict) and isinstance(item.get("statuses"), list)
                    for status in item["statuses"] if isinstance(status, dict)]
        queues = [status.get("scan_queue") for status in statuses]
        if not queues or not all(isinstance(q, int) and not isinstance(q, bool) and q >= 0 for q in queues):
            raise CoreError(f"{self.name} sent no readable scan_queue in stat/nodes", node_fault=False)
        return sum(queues)

    def upload(self, path: str, filename: str, rule: str = "", archive_password: str = "",
               timeout: float | None = None) -> str:
        """Stream the file at `path` to `POST file` and return Core's data_id."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(os.path.getsize(path)),
            "filename": encode_header_value(display_filename(filename)),
        }
        if rule:
            headers["rule"] = encode_header_value(rule)
        if archive_password:
            headers["archivepwd"] = encode_header_value(archive_password)
        with open(path, "rb") as body:
            answer = self._json("POST", "file", timeout, data=body, headers=headers)
        data_id = answer.get("data_id") if isinstance(answer, dict) else None
        if not isinstance(data_id, str) or not data_id.strip() or len(data_id) > MAX_DATA_ID_CHARS:
            raise CoreError(f"{self.name} accepted the upload but gave no usable data_id")
        return data_id

    def get_report(self, data_id: str, timeout: float | None = None) -> dict:
        """The report of `GET file/{data_id}`; a CoreError when Core no longer knows the data id."""
        report = self._json("GET", f"file/{quote(data_id, safe='')}", timeout, lost_id=data_id)
        if not isinstance(report, dict) or report.get(data_id) == "Not Found":
            raise CoreError(f"{self.name} lost the scan (data id {data_id} not found)")
        return report

    def cancel(self, data_id: str, timeout: float | None = None) -> None:
        """Ask Core to stop a scan nobody will wait for any more."""
        self._json("POST", f"file/{quote(data_id, safe='')}/cancel", timeout)

    def download_converted(self, data_id: str, destination: str, timeout: float | None = None) -> None:
        """Stream the sanitized file of `GET file/converted/{data_id}` to `destination`."""
        with self._send("GET", f"file/converted/{quote(data_id, safe='')}", timeout) as response:
            if response.status_code != 200:
                raise self._status_error(response, "file/converted")
            with open(destination, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)

    def _json(self, method: str, path: str, timeout: float | None, lost_id: str | None = None, **kwargs):
        with self._send(method, path, timeout, **kwargs) as response:
            if response.status_code == 404 and lost_id is not None:
                raise CoreError(f"{self.name} lost the scan (data id {lost_id} not found)")
            if response.status_code != 200:
                raise self._status_error(response, path)
            return self._read_json(response, path)

    def _send(self, method: str, path: str, timeout: float | None, **kwargs) -> requests.Response:
        timeout = self.timeout if timeout is None else max(0.001, min(timeout, self.timeout))
        try:
            return self.session.request(method, self.base_url + path, timeout=timeout, stream=True,
                                        allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise CoreError(
                f"{self.name} failed TLS verification ({_reason(exc)}): set verify_certificate to the path of the "
                "CA bundle that signed Core's certificate (or false to skip verification)", permanent=True) from None
        except requests.exceptions.Timeout:
            raise CoreError(f"{self.name} did not answer {method} {path} within {timeout:g} s") from None
        except requests.exceptions.RequestException as exc:
            raise CoreError(f"{self.name} could not be reached for {method} {path}: {_reason(exc)}") from None

    def _read_json(self, response: requests.Response, path: str):
        body = bytearray()
        try:
            for chunk in response.iter_content(CHUNK):
                body += chunk
                if len(body) > MAX_JSON_BYTES:
                    raise CoreError(f"{self.name} sent more than {MAX_JSON_BYTES // 2**20} MiB for {path}")
            return json.loads(body)
        except requests.exceptions.RequestException as exc:
            raise CoreError(f"{self.name} broke off its answer to {path}: {_reason(exc)}") from None
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python can decode
            raise CoreError(f"{self.name} answered {path} with something that is not JSON") from None

    def _status_error(self, response: requests.Response, path: str) -> CoreError:
        status, detail = response.status_code, self._scrub(_error_text(response))
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
        if status in (400, 404, 405, 411, 413, 422):
            return CoreError(f"{where}: check base_url and md_version", permanent=True)
        return CoreError(where)

    def _scrub(self, text: str) -> str:
        """`text` from Core (or a proxy) with the API key masked, should it echo the request's headers."""
        return text.replace(self._api_key, "***") if self._api_key else text


def _error_text(response: requests.Response) -> str:
    """Core's own `{"err": ...}` message, short, when it sent one."""
    try:
        raw = response.raw.read(4096, decode_content=True)
        message = json.loads(raw).get("err", "")
    except (ValueError, AttributeError, OSError, RecursionError, requests.exceptions.RequestException):
        return ""
    return f" ({str(message)[:200]})" if message else ""


def _reason(exc: Exception) -> str:
    """A one-line cause for a transport error, without URLs (they could carry credentials)."""
    text = str(exc.__context__ or exc) if not str(exc) else str(exc)
    for marker in ("Connection refused", "Connection reset", "Remote end closed", "timed out",
                   "CERTIFICATE_VERIFY_FAILED", "Name or service not known", "No route to host"):
        if marker.lower() in text.lower():
            return marker.lower()
    return type(exc).__name__
