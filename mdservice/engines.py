"""What a Core's `GET /stat/engines` says: engine versions, definition times and the tool version.

Everything here is pure: a decoded engine list in, an `EngineMap` out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

AV_ENGINE_TYPES = {"av", "bundled engine"}
FAILED_STATES = {"removed", "temporary failed", "permanently failed", "content invalid", "download failed"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
UNKNOWN = "unknown"


def engine_key(name: str, md_version: int) -> str:
    """The key that matches an engine across the engine list and scan reports.

    Lower case without spaces and `!`; with md_version 3 also without `scanengine`; then a trailing
    `av` dropped: "Zillya!" -> "zillya", "NANOAV" -> "nano", "ClamAV scan engine" (v3) -> "clam".
    """
    key = name.lower().replace(" ", "").replace("!", "")
    if md_version == 3:
        key = key.replace("scanengine", "")
    return key[:-2] if key.endswith("av") else key


def clean_text(value) -> str:
    """`value` as text that any UTF-8 store accepts: lone surrogates (JSON `\\ud800` escapes) become U+FFFD."""
    text = value if isinstance(value, str) else ""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def parse_def_time(raw: str, md_version: int) -> datetime | None:
    """A definition time in UTC: v4 ISO 8601, v3 `MM/DD/YYYY hh:mm:ss AM|PM`; None when empty or unreadable."""
    raw = raw.strip() if isinstance(raw, str) else ""
    if not raw:
        return None
    try:
        if md_version == 3:
            return datetime.strptime(raw, "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that moves year 1 or 9999 out of range
        return None


def format_time(moment: datetime | None) -> str:
    """`YYYY-MM-DD HH:MM:SS`, or `unknown`."""
    return moment.strftime(TIME_FORMAT) if moment else UNKNOWN


@dataclass(frozen=True)
class EngineInfo:
    """One engine of one Core."""

    name: str
    version: str
    raw_def_time: str
    def_time: datetime | None
    is_av: bool
    active: bool

    @property
    def def_time_text(self) -> str:
        return format_time(self.def_time)


@dataclass(frozen=True)
class EngineMap:
    """The engines of one Core, keyed by `engine_key`, in Core's order."""

    engines: dict[str, EngineInfo]
    md_version: int

    @classmethod
    def from_engine_list(cls, payload, md_version: int) -> EngineMap:
        """Read a decoded `/stat/engines` answer; raise ValueError when it is not a list of engines.

        Core lists an engine once per installed package (Linux, Windows, Wine); the copies, matched by
        `engine_key`, become one engine: the one `scanning_copy` picks, at the place of its first copy.
        """
        if not isinstance(payload, list):
            raise ValueError("the engine list is not a JSON list")
        copies: dict[str, list[EngineInfo]] = {}
        for item in payload:
            info = _engine_info(item, md_version)
            copies.setdefault(engine_key(info.name, md_version), []).append(info)
        return cls({key: scanning_copy(infos) for key, infos in copies.items()}, md_version)

    def lookup(self, report_engine_name: str) -> EngineInfo | None:
        """The engine a scan report names, or None when this Core did not list it."""
        return self.engines.get(engine_key(report_engine_name, self.md_version))

    @property
    def active_av_count(self) -> int:
        """Distinct active antivirus engines: the ones that can give a verdict."""
        return len(self._active_av())

    def definition_range(self) -> tuple[datetime | None, datetime | None]:
        """(oldest definition time over active AV engines, newest over all active engines), None when none has one."""
        active = [e for e in self.engines.values() if e.active and e.def_time]
        av_times = [e.def_time for e in active if e.is_av]
        all_times = [e.def_time for e in active]
        return (min(av_times) if av_times else None, max(all_times) if all_times else None)

    def service_context(self) -> str:
        oldest, newest = self.definition_range()
        return f"Definition Time Range: {format_time(oldest)} - {format_time(newest)}"

    def fingerprint(self) -> str:
        """Each active AV engine's key, version and raw definition time, in Core's order (the tool version's input).

        Inactive packages and utility engines are left out: a package Core downloads but does not scan with
        must not change the tool version (and so empty Assemblyline's result cache).
        """
        return "".join(f"{key}{e.version}{e.raw_def_time}" for key, e in self._active_av().items())

    def stale_engines(self, now: datetime, max_age_days: float) -> list[EngineInfo]:
        """Active AV engines whose definitions are older than `max_age_days`, oldest first."""
        stale = [
            e for e in self._active_av().values()
            if e.def_time and (now - e.def_time).total_seconds() > max_age_days * 86400
        ]
        return sorted(stale, key=lambda e: e.def_time)

    def _active_av(self) -> dict[str, EngineInfo]:
        return {key: e for key, e in self.engines.items() if e.is_av and e.active}


def scanning_copy(copies: list[EngineInfo]) -> EngineInfo:
    """The copy of an engine listed several times that scans: an active one (several: the newest definitions,
    the first of equals), else the first that has a version, else the first."""
    active = [copy for copy in copies if copy.active]
    if active:
        return max(active, key=lambda copy: copy.def_time or datetime.min.replace(tzinfo=UTC))
    return next((copy for copy in copies if copy.version), copies[0])


def tool_version(fingerprints: list[str]) -> str:
    """MD5 of every Core's engine fingerprint, in base_url order: changes whenever any definitions change."""
    return hashlib.md5("".join(fingerprints).encode("utf-8"), usedforsecurity=False).hexdigest()


def _engine_info(item, md_version: int) -> EngineInfo:
    if not isinstance(item, dict) or not isinstance(item.get("eng_name"), str) or not item["eng_name"].strip():
        raise ValueError("an engine list entry has no eng_name")
    # The other API version's type field when this one's is missing, e.g. a v4 Core configured as md_version 3.
    primary, fallback = ("engine_type", "eng_type") if md_version == 4 else ("eng_type", "engine_type")
    engine_type = item.get(primary) or item.get(fallback)
    raw_time = clean_text(item.get("def_time"))
    state = item.get("state")
    return EngineInfo(
        name=clean_text(item["eng_name"]),
        version=_version_text(item.get("eng_ver")),
        raw_def_time=raw_time,
        def_time=parse_def_time(raw_time, md_version),
        is_av=isinstance(engine_type, str) and engine_type.lower() in AV_ENGINE_TYPES,
        active=item.get("active", True) is True and not (isinstance(state, str) and state.lower() in FAILED_STATES),
    )


def _version_text(value) -> str:
    """`eng_ver` as text: a string or number as Core sent it, anything else (null, list...) empty."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return clean_text(str(value))
