"""The engine catalogue of an emulated Core and its v3/v4 list formats.

The catalogue is a tuple of immutable `Engine` values in a stable order. Definition
times are placed relative to the emulator's start (see `catalogue`); `advance` returns
the catalogue after a definition update.
"""

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta

STALE_ENGINE = "Vir.IT eXplorer"
INACTIVE_ENGINE = "Quick Heal"
FAILED_STATES = frozenset({"removed", "temporary failed", "permanently failed", "content invalid", "download failed"})


@dataclass(frozen=True)
class Engine:
    """One engine as a Core lists it. `name` is also its key in scan reports."""

    name: str
    eng_id: str
    version: str
    engine_type: str  # "av", "archive" or "filetype"
    eng_type: str  # human readable type; v3 carries the engine type here
    def_time: datetime | None  # None: the engine has no definitions ("" in lists)
    download_time: datetime
    active: bool = True
    state: str = "production"
    v3_name: str = ""  # the name in a v3 engine list when it differs from `name`

    @property
    def scans(self) -> bool:
        """True for an AV engine that takes part in scans (it appears in scan_details)."""
        return self.engine_type == "av" and self.active and self.state not in FAILED_STATES


# name, eng_id, version, engine_type, eng_type, time of day of the definitions (None: none), age in days
_CATALOGUE = (
    ("ClamAV", "clamav_1_linux", "1.0.1", "av", "Bundled engine", time(12, 20), 0),
    ("Avira", "avira_1_linux", "8.3.64.222", "av", "av", time(15, 40), 0),
    ("ESET", "eset_1_linux", "2.1.16.0", "av", "av", time(0, 45), 0),
    ("Bitdefender", "bitdefender_1_linux", "7.95311", "av", "av", time(21, 5), 0),
    ("K7", "k7_1_linux", "16.0.0.1104", "av", "av", time(9, 30), 0),
    ("Ikarus", "ikarus_1_linux", "6.1.14.0", "av", "av", time(18, 55), 0),
    ("NANOAV", "nanoav_1_linux", "1.0.146.91167", "av", "av", time(6, 10), 0),
    ("Zillya!", "zillya_1_linux", "2.0.0.5140", "av", "av", time(13, 25), 0),
    (STALE_ENGINE, "virit_1_linux", "9.5.57", "av", "av", time(11, 0), 30),
    ("AhnLab", "ahnlab_1_linux", "3.25.0.0", "av", "av", time(4, 35), 0),
    ("Emsisoft", "emsisoft_1_linux", "2024.1.0.12345", "av", "av", time(16, 15), 0),
    ("Antiy-AVL", "antiy_1_linux", "3.0.0.1", "av", "av", time(8, 50), 0),
    (INACTIVE_ENGINE, "quickheal_1_linux", "3.0.0.17", "av", "av", time(10, 40), 0),
    ("Archive", "archive_1_linux", "6.2.0", "archive", "archive", None, 0),
    ("File type analysis", "filetype_1_linux", "7.3.0", "filetype", "filetype", time(2, 15), 0),
)


# The Windows and Wine packages a real Core lists beside the Linux ones (as OPSWAT's published Core answers show):
# catalogue name -> (eng_id suffix, name as listed, version, state, listed before the Linux package). All inactive.
_OTHER_PACKAGES = {
    "ClamAV": ("windows", "Clamav", "0.99.2", "downloaded", True),
    "Avira": ("windows", "Avira", "8.3.44.100", "disabled", False),
    "Bitdefender": ("wine", "BitDefender", "7.1 (20150625)", "downloaded", True),
    "K7": ("windows", "K7", "1462 (20150625)", "disabled", False),
    INACTIVE_ENGINE: ("windows", "Quickheal", "26534-26", "disabled", True),
}
# Entries of engines that have inactive packages only, and a utility engine: name, eng_id, version, type, state.
_PACKAGE_ONLY = (
    ("TotalDefense", "totaldefense_1_windows", "3.0.0.1", "av", "disabled"),
    ("Total Defense", "totaldefense_1_wine", "3.0.0.2", "av", "downloaded"),
    ("Proactive DLP", "dlp_1_linux", "2.9.0", "util", "production"),
)


def _last_before(start: datetime, at: time) -> datetime:
    """The latest moment at time of day `at` (UTC) that lies at least one hour before `start`."""
    limit = start - timedelta(hours=1)
    moment = datetime.combine(limit.date(), at, tzinfo=UTC)
    return moment if moment <= limit else moment - timedelta(days=1)


def _engine(start: datetime, row: tuple) -> Engine:
    name, eng_id, version, engine_type, eng_type, at, age_days = row
    def_time = None if at is None else _last_before(start, at) - timedelta(days=age_days)
    download_time = (def_time or start - timedelta(hours=2)) + timedelta(minutes=40)
    return Engine(
        name=name,
        eng_id=eng_id,
        version=version,
        engine_type=engine_type,
        eng_type=eng_type,
        def_time=def_time,
        download_time=download_time,
        active=name != INACTIVE_ENGINE,
        state="temporary failed" if name == INACTIVE_ENGINE else "production",
        v3_name="ClamAV scan engine" if name == "ClamAV" else "",
    )


def catalogue(start: datetime) -> tuple[Engine, ...]:
    """The engines of a Core started at `start` (aware UTC datetime).

    Every definition time lies between 1 and 25 hours before `start` at a fixed time of
    day (so v3 lists always show AM and PM times and the hours 12 AM and 12 PM), except
    `STALE_ENGINE`, whose definitions are 30 days older. `INACTIVE_ENGINE` is listed but
    inactive ("temporary failed") and never scans; the archive engine has no definitions.
    """
    return tuple(_engine(start, row) for row in _CATALOGUE)


def packages(engines: tuple[Engine, ...]) -> tuple[Engine, ...]:
    """The engine list of a Core with Linux and Windows packages installed: every engine of `engines`, several
    beside an inactive copy (def_time "", state "downloaded" or "disabled", the name in other case), before or
    after it; then Total Defense, listed with inactive packages only, and an active utility engine."""
    listing: list[Engine] = []
    for engine in engines:
        other = _OTHER_PACKAGES.get(engine.name)
        if other is None:
            listing.append(engine)
            continue
        copy = _inactive_package(engine, *other[:4])
        listing += [copy, engine] if other[4] else [engine, copy]
    start = min(e.download_time for e in engines)
    extra = [Engine(name, eng_id, version, kind, kind, None, start, active=state == "production", state=state)
             for name, eng_id, version, kind, state in _PACKAGE_ONLY]
    return tuple(listing + extra)


def _inactive_package(engine: Engine, suffix: str, name: str, version: str, state: str) -> Engine:
    eng_id = engine.eng_id.rsplit("_", 1)[0] + f"_{suffix}"
    return replace(engine, name=name, eng_id=eng_id, version=version, def_time=None, active=False, state=state)


def reinstall_inactive(listing: tuple[Engine, ...]) -> tuple[Engine, ...]:
    """The listing after Core downloaded new inactive packages: their last version number goes up by one."""
    return tuple(e if e.active else replace(e, version=_bump(e.version)) for e in listing)


def _bump(version: str) -> str:
    return re.sub(r"(\d+)(\D*)$", lambda match: f"{int(match.group(1)) + 1}{match.group(2)}", version)


def advance(engines: tuple[Engine, ...], days: int = 1) -> tuple[Engine, ...]:
    """The catalogue after a definition update: every definition time moves `days` forward."""
    step = timedelta(days=days)
    return tuple(
        replace(e, def_time=e.def_time + step, download_time=e.download_time + step) if e.def_time else e
        for e in engines
    )


def iso_ms(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, e.g. "2024-03-11T11:08:00.000Z"."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def v3_time(moment: datetime) -> str:
    """The v3 12-hour format, e.g. "03/11/2024 11:08:00 AM" (independent of the locale)."""
    moment = moment.astimezone(UTC)
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return moment.strftime("%m/%d/%Y ") + f"{hour:02d}:{moment.minute:02d}:{moment.second:02d} {half}"


def def_time_text(engine: Engine, md_version: int) -> str:
    """The engine's definition time as Core `md_version` writes it ("" when it has none)."""
    if engine.def_time is None:
        return ""
    return iso_ms(engine.def_time) if md_version == 4 else v3_time(engine.def_time)


def engine_list(engines: tuple[Engine, ...], md_version: int) -> list[dict]:
    """The body of GET /stat/engines for Core `md_version` (3 or 4)."""
    return [_v4_entry(e) if md_version == 4 else _v3_entry(e) for e in engines]


def _v4_entry(engine: Engine) -> dict:
    return {
        "eng_id": engine.eng_id,
        "eng_name": engine.name,
        "eng_ver": engine.version,
        "eng_type": engine.eng_type,
        "engine_type": engine.engine_type,
        "def_time": def_time_text(engine, 4),
        "download_time": iso_ms(engine.download_time),
        "download_progress": 100,
        "active": engine.active,
        "state": engine.state,
        "type": "engine",
    }


def _v3_entry(engine: Engine) -> dict:
    return {
        "eng_id": engine.eng_id,
        "eng_name": engine.v3_name or engine.name,
        "eng_ver": engine.version,
        "eng_type": engine.eng_type,
        "def_time": def_time_text(engine, 3),
        "active": engine.active,
        "state": engine.state,
    }


def node_engine_summary(engine: Engine, md_version: int) -> dict:
    """An engine as GET /stat/nodes summarises it for a node."""
    return {
        "id": engine.eng_id,
        "eng_name": engine.name,
        "eng_ver": engine.version,
        "engine_type": engine.engine_type,
        "def_time": def_time_text(engine, md_version),
        "db_ver": engine.def_time.strftime("%y%m%d%H%M") if engine.def_time else "",
        "active": engine.active,
    }
