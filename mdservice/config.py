"""Reading and checking the service variables an admin sets in the Assemblyline UI.

`parse_config` turns the raw `config` dict into a `ServiceConfig` or raises `ConfigError`
naming the offending key, so that a bad value stops the service at start instead of
failing every task later.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mdservice.client import redact_url

DEFAULT_BLOCKLIST = ("Antiy-AVL", "APEX", "Jiangmin")
DEFAULT_KW_SCORES = {"adware": 100}
DEFAULT_SIG_SCORES = {"TACHYON.Suspicious/XOX.Obfus.Gen.2": 100}
# Longest wait for one HTTP request: beyond about 10^11 s the OS refuses the socket timeout (OverflowError).
MAX_REQUEST_TIMEOUT = 3600.0
# Score revisions stay well inside the 32-bit integer Assemblyline stores scores (and their sums) in.
MAX_SCORE = 1_000_000
# Larger than any file Assemblyline keeps as a supplementary file.
MAX_SANITIZED_MB = 100 * 1024.0
# A week: far longer than Assemblyline keeps retrying a file, short enough to stay a valid time span.
MAX_REUSE_MINUTES = 7 * 24 * 60.0
# More engines than any Core runs: a larger min_engines_to_score could never be reached.
MAX_MIN_ENGINES = 1000


class ConfigError(ValueError):
    """A service variable has a value the service cannot work with."""


@dataclass(frozen=True)
class AvConfig:
    """The `av_config` variable: engines to ignore, score revisions, heuristic names and the engine threshold."""

    blocklist: frozenset[str] = frozenset(name.lower().replace(" ", "") for name in DEFAULT_BLOCKLIST)
    kw_score_revision_map: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_KW_SCORES))
    sig_score_revision_map: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SIG_SCORES))
    heuristic_name_keys: tuple[str, ...] = ()
    min_engines_to_score: int = 1

    def is_blocked(self, engine_name: str) -> bool:
        """True when results of the engine (as Core names it) must be ignored; case and spaces do not count."""
        return engine_name.lower().replace(" ", "") in self.blocklist

    def is_heuristic_name(self, virus: str) -> bool:
        """True when the virus name contains one of `heuristic_name_keys`, ignoring case (e.g. `HEUR:`)."""
        lowered = virus.lower()
        return any(key.lower() in lowered for key in self.heuristic_name_keys)

    def enough_engines(self, scoring_hits: int) -> bool:
        """True when `scoring_hits` engines may score the file: at least `min_engines_to_score` (1: always)."""
        return self.min_engines_to_score <= 1 or scoring_hits >= self.min_engines_to_score


@dataclass(frozen=True)
class ServiceConfig:
    """Every service variable, checked and converted to the types the service uses."""

    base_urls: tuple[str, ...] = ("http://localhost:8008/",)
    api_key: str = ""
    verify: bool | str = True
    md_version: int = 4
    md_timeout: float = 40.0
    max_md_scan_time: float = 5.0
    av_config: AvConfig = field(default_factory=AvConfig)
    rule: str = ""
    fetch_sanitized_file: bool = False
    sanitized_file_max_mb: float = 256.0
    engine_refresh_seconds: float = 600.0
    stale_definition_days: float = 0.0
    reuse_scan_minutes: float = 30.0


def parse_config(raw: dict) -> ServiceConfig:
    """Check every known key of `raw` and return the typed config; unknown keys are ignored."""
    if not isinstance(raw, dict):
        raise ConfigError(f"the service config must be a mapping, not {type(raw).__name__}")
    return ServiceConfig(
        base_urls=parse_base_urls(raw.get("base_url", "http://localhost:8008/")),
        api_key=_api_key(raw),
        verify=_verify(raw.get("verify_certificate", True)),
        md_version=_md_version(raw.get("md_version", 4)),
        md_timeout=_at_most(_number(raw, "md_timeout", 40.0, positive=True), "md_timeout", MAX_REQUEST_TIMEOUT),
        max_md_scan_time=_number(raw, "max_md_scan_time", 5.0, positive=True),
        av_config=_av_config(raw.get("av_config", {})),
        rule=_text(raw, "rule"),
        fetch_sanitized_file=_boolean(raw, "fetch_sanitized_file", False),
        sanitized_file_max_mb=_at_most(_number(raw, "sanitized_file_max_mb", 256.0, positive=True),
                                       "sanitized_file_max_mb", MAX_SANITIZED_MB, "MiB"),
        engine_refresh_seconds=_number(raw, "engine_refresh_seconds", 600.0, positive=True),
        stale_definition_days=_number(raw, "stale_definition_days", 0.0, positive=False),
        reuse_scan_minutes=_at_most(_number(raw, "reuse_scan_minutes", 30.0, positive=False), "reuse_scan_minutes",
                                    MAX_REUSE_MINUTES, "minutes"),
    )


def parse_base_urls(value) -> tuple[str, ...]:
    """`base_url`: one URL or a list of them; each stripped and given a trailing `/` so its path is kept."""
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list) or not entries:
        raise ConfigError("base_url must be a URL or a non-empty list of URLs, e.g. 'http://core-1:8008/'")
    urls = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ConfigError(f"base_url entries must be strings, got {type(entry).__name__}")
        url = entry.strip()
        if not _is_http_url(url):
            raise ConfigError(f"base_url entry {_shown(redact_url(url))} is not an http(s) URL, "
                              "e.g. 'http://core-1:8008/'")
        urls.append(url if url.endswith("/") else url + "/")
    if len(set(urls)) != len(urls):
        raise ConfigError("base_url lists the same Core twice")
    return tuple(urls)


def _is_http_url(url: str) -> bool:
    """True for an http(s) URL with a host, a valid port (if any) and no spaces or control characters."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or not url.isprintable() or " " in url:
        return False
    # A DNS name must encode as IDNA: no empty label, none longer than 63 characters (IPv6 literals hold ":").
    return ":" in parts.hostname or _encodes(parts.hostname, "idna")


def _shown(value, limit: int = 80) -> str:
    """`repr(value)` cut to `limit` characters, so a huge value cannot flood the error message."""
    try:
        text = repr(value)
    except ValueError:  # an integer with more digits than Python converts to text
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= limit else text[:limit] + "...'"


def _api_key(raw: dict) -> str:
    """`api_key`, stripped; an HTTP header value must be visible ASCII. The value itself is never shown."""
    key = _string(raw, "api_key", "").strip()
    if key and not all("!" <= ch <= "~" for ch in key):
        raise ConfigError("api_key contains spaces, control or non-ASCII characters: paste the key exactly as "
                          "MetaDefender Core shows it")
    return key


def _at_most(value: float, key: str, limit: float, unit: str = "seconds") -> float:
    """`value`, or a ConfigError naming `key` when it exceeds `limit` (in `unit`)."""
    if value > limit:
        raise ConfigError(f"{key} must be at most {limit:g} {unit}, not {value:g}")
    return value


def _string(raw: dict, key: str, default: str) -> str:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, not {type(value).__name__}")
    return value


def _text(raw: dict, key: str) -> str:
    """A string sent to Core in a header, stripped; it must be valid Unicode (no lone surrogates)."""
    value = _string(raw, key, "").strip()
    if not is_valid_text(value):
        raise ConfigError(f"{key} contains characters that are not valid Unicode text")
    return value


def is_valid_text(text: str) -> bool:
    """True when `text` can be encoded as UTF-8 (JSON allows lone surrogates such as "\\udc80"; UTF-8 does not)."""
    return _encodes(text, "utf-8")


def _encodes(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeError:
        return False
    return True


def _boolean(raw: dict, key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, not {_shown(value)}")
    return value


def _number(raw: dict, key: str, default: float, positive: bool) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not _is_finite(value):
        raise ConfigError(f"{key} must be a number, not {_shown(value)}")
    if positive and not value > 0:
        raise ConfigError(f"{key} must be greater than 0, not {value!r}")
    if not value >= 0:
        raise ConfigError(f"{key} must be 0 or more, not {value!r}")
    return float(value)


def _is_finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _verify(value) -> bool | str:
    """`verify_certificate`: true/false, or the path of a CA bundle to trust."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and os.path.isfile(value.strip()):
        return value.strip()
    if isinstance(value, str):
        raise ConfigError(f"verify_certificate {_shown(value)} is not a CA bundle file: give its path, or true/false")
    raise ConfigError("verify_certificate must be true, false or the path of a CA bundle file")


def _md_version(value) -> int:
    if isinstance(value, bool) or value not in (3, 4):
        raise ConfigError(f"md_version must be 3 or 4, not {_shown(value)}")
    return int(value)


def _av_config(value) -> AvConfig:
    if not isinstance(value, dict):
        raise ConfigError("av_config must be a mapping with blocklist, kw_score_revision_map, sig_score_revision_map, "
                          "heuristic_name_keys, min_engines_to_score")
    blocklist = value.get("blocklist", list(DEFAULT_BLOCKLIST))
    if not isinstance(blocklist, list) or not all(isinstance(name, str) for name in blocklist):
        raise ConfigError("av_config.blocklist must be a list of engine names")
    return AvConfig(
        blocklist=frozenset(name.lower().replace(" ", "") for name in blocklist),
        kw_score_revision_map=_score_map(value, "kw_score_revision_map", DEFAULT_KW_SCORES),
        sig_score_revision_map=_score_map(value, "sig_score_revision_map", DEFAULT_SIG_SCORES),
        heuristic_name_keys=_heuristic_name_keys(value.get("heuristic_name_keys", [])),
        min_engines_to_score=_min_engines(value.get("min_engines_to_score", 1)),
    )


def _heuristic_name_keys(value) -> tuple[str, ...]:
    """`av_config.heuristic_name_keys`: non-empty texts; a virus name containing one makes the hit suspicious."""
    if not isinstance(value, list) or not all(isinstance(key, str) and key.strip() for key in value):
        raise ConfigError("av_config.heuristic_name_keys must be a list of non-empty texts, e.g. ['HEUR:', 'Heur.']")
    return tuple(value)


def _min_engines(value) -> int:
    """`av_config.min_engines_to_score`: a whole number of engines from 1 to MAX_MIN_ENGINES (2.0 is read as 2)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MIN_ENGINES:
        raise ConfigError(f"av_config.min_engines_to_score must be a whole number of engines from 1 to "
                          f"{MAX_MIN_ENGINES}, not {_shown(value)}")
    return value


def _score_map(av_config: dict, key: str, default: dict[str, int]) -> dict[str, int]:
    value = av_config.get(key, default)
    if not isinstance(value, dict):
        raise ConfigError(f"av_config.{key} must be a mapping of text to integer score")
    for name, score in value.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"av_config.{key} keys must be non-empty strings, got {_shown(name)}")
        if isinstance(score, bool) or not isinstance(score, int) or abs(score) > MAX_SCORE:
            raise ConfigError(f"av_config.{key}[{_shown(name)}] must be an integer score from {-MAX_SCORE} to "
                              f"{MAX_SCORE}, not {_shown(score)}")
    return dict(value)
