"""The engine map of contract section 3: engine keys, definition times, active engines, context, tool version."""

from __future__ import annotations

import copy

import pytest

from mdservice.engines import EngineMap, engine_key, parse_def_time, tool_version

FAILED_STATES = ["removed", "temporary failed", "permanently failed", "content invalid", "download failed"]


def v4_engine(name: str, ver: str = "1.0", def_time: str = "2024-03-11T11:08:00.000Z", engine_type: str = "av",
              active: bool = True, state: str = "production") -> dict:
    """One entry of a v4/v5 `/stat/engines` answer (shape from the API notes)."""
    return {"eng_id": f"{name.lower()}_1_linux", "eng_name": name, "eng_ver": ver, "eng_type": "Bundled engine",
            "engine_type": engine_type, "def_time": def_time, "download_time": "2024-03-11T12:00:00.000Z",
            "download_progress": 100, "active": active, "state": state, "type": "engine"}


def v3_engine(name: str, ver: str = "1.0", def_time: str = "03/11/2024 11:08:00 AM", eng_type: str = "Bundled engine",
              active: bool = True) -> dict:
    """One entry of a v3 `/stat/engines` answer: type in `eng_type`, 12-hour definition time."""
    return {"eng_id": f"{name.lower()}_v3", "eng_name": name, "eng_ver": ver, "eng_type": eng_type,
            "def_time": def_time, "active": active}


def v4_list() -> list[dict]:
    return [
        v4_engine("ClamAV", "1.0.1", "2024-03-11T11:08:00.000Z"),
        v4_engine("Avira", "8.3.64", "2024-03-11T06:00:00.000Z"),
        v4_engine("Zillya!", "3.0.2", "2024-03-10T22:15:30.000Z"),
        v4_engine("Archive", "5.2", "", engine_type="archive"),
        v4_engine("File type analysis", "7.1", "2024-03-12T09:00:00.000Z", engine_type="filetype"),
    ]


def as_text(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# --- engine_key -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "key"), [
    ("Zillya!", "zillya"),
    ("NANOAV", "nano"),
    ("Vir.IT eXplorer", "vir.itexplorer"),
    ("ClamAV", "clam"),
    ("Avira", "avira"),
])
def test_engine_key_v4(name, key):
    assert engine_key(name, 4) == key


def test_engine_key_v3_removes_scan_engine_before_dropping_av():
    assert engine_key("ClamAV scan engine", 3) == "clam"


def test_v3_report_name_meets_its_engine_list_name():
    assert engine_key("ClamAV", 3) == engine_key("ClamAV scan engine", 3)


def test_v3_report_engine_is_found_in_the_v3_engine_list():
    engines = EngineMap.from_engine_list([v3_engine("ClamAV scan engine", "0.103.2")], 3)
    found = engines.lookup("ClamAV")
    assert found is not None
    assert found.version == "0.103.2"


def test_v4_report_names_are_found_in_the_engine_list():
    engines = EngineMap.from_engine_list(v4_list(), 4)
    assert engines.lookup("Zillya!").version == "3.0.2"
    assert engines.lookup("ClamAV").version == "1.0.1"


def test_lookup_of_an_engine_not_in_the_map_is_none():
    engines = EngineMap.from_engine_list(v4_list(), 4)
    assert engines.lookup("Sophos") is None


# --- definition times -----------------------------------------------------------------------------------------------

def test_v4_iso_definition_time():
    assert as_text(parse_def_time("2024-03-11T11:08:00.000Z", 4)) == "2024-03-11 11:08:00"


@pytest.mark.parametrize(("raw", "shown"), [
    ("03/11/2024 11:08:00 AM", "2024-03-11 11:08:00"),
    ("03/11/2024 12:05:00 AM", "2024-03-11 00:05:00"),
    ("03/11/2024 12:05:00 PM", "2024-03-11 12:05:00"),
    ("03/11/2024 01:30:00 PM", "2024-03-11 13:30:00"),
    ("12/31/2023 11:59:59 PM", "2023-12-31 23:59:59"),
])
def test_v3_twelve_hour_definition_time(raw, shown):
    assert as_text(parse_def_time(raw, 3)) == shown


def test_v3_definition_time_is_shown_in_the_engine_map():
    engines = EngineMap.from_engine_list([v3_engine("ClamAV scan engine", def_time="03/11/2024 01:30:00 PM")], 3)
    assert engines.lookup("ClamAV").def_time_text == "2024-03-11 13:30:00"


@pytest.mark.parametrize("version", [3, 4])
def test_empty_definition_time_has_no_time(version):
    assert parse_def_time("", version) is None


def test_engine_with_empty_definition_time_is_kept_in_the_map():
    engines = EngineMap.from_engine_list(v4_list(), 4)
    archive = engines.lookup("Archive")
    assert archive is not None
    assert archive.version == "5.2"


# --- active engines -------------------------------------------------------------------------------------------------

def active_engines(engines: EngineMap) -> int:
    return sum(1 for engine in engines.engines.values() if engine.active)


def test_all_active_engines_are_counted():
    assert active_engines(EngineMap.from_engine_list(v4_list(), 4)) == 5


def test_inactive_engine_is_not_counted():
    engines = v4_list()
    engines[1]["active"] = False
    assert active_engines(EngineMap.from_engine_list(engines, 4)) == 4


@pytest.mark.parametrize("state", FAILED_STATES)
def test_engine_in_a_failed_state_is_not_counted(state):
    engines = v4_list()
    engines[0]["state"] = state
    assert active_engines(EngineMap.from_engine_list(engines, 4)) == 4


@pytest.mark.parametrize("state", ["downloading", "downloaded", "staging", "production"])
def test_engine_in_a_working_state_is_counted(state):
    engines = v4_list()
    engines[0]["state"] = state
    assert active_engines(EngineMap.from_engine_list(engines, 4)) == 5


def test_no_active_engine_counts_zero():
    engines = [v4_engine("ClamAV", active=False), v4_engine("Avira", state="removed")]
    assert active_engines(EngineMap.from_engine_list(engines, 4)) == 0


def test_v3_inactive_engine_is_not_counted():
    engines = [v3_engine("ClamAV scan engine"), v3_engine("Avira", active=False)]
    assert active_engines(EngineMap.from_engine_list(engines, 3)) == 1


# --- definition range and service context -------------------------------------------------------------------------

def test_service_context_v4():
    # Oldest over AV engines (Zillya!), newest over all engines (the filetype engine); the archive engine has no time.
    engines = EngineMap.from_engine_list(v4_list(), 4)
    assert engines.service_context() == "Definition Time Range: 2024-03-10 22:15:30 - 2024-03-12 09:00:00"


def test_oldest_definition_ignores_engines_that_are_not_av():
    engines = v4_list() + [v4_engine("Old filetype", def_time="2020-01-01T00:00:00.000Z", engine_type="filetype")]
    context = EngineMap.from_engine_list(engines, 4).service_context()
    assert context == "Definition Time Range: 2024-03-10 22:15:30 - 2024-03-12 09:00:00"


def test_newest_definition_is_over_all_engines():
    engines = [v4_engine("ClamAV", def_time="2024-03-11T11:08:00.000Z"),
               v4_engine("Archive", def_time="2024-05-01T08:00:00.000Z", engine_type="archive")]
    context = EngineMap.from_engine_list(engines, 4).service_context()
    assert context == "Definition Time Range: 2024-03-11 11:08:00 - 2024-05-01 08:00:00"


def test_service_context_v3_counts_bundled_engines_as_av():
    engines = [
        v3_engine("ClamAV scan engine", def_time="03/11/2024 01:30:00 PM"),
        v3_engine("Avira", def_time="03/10/2024 12:15:00 AM", eng_type="av"),
        v3_engine("Archive", def_time="01/01/2020 10:00:00 AM", eng_type="archive"),
        v3_engine("Filetype", def_time="03/12/2024 12:00:00 PM", eng_type="filetype"),
    ]
    context = EngineMap.from_engine_list(engines, 3).service_context()
    assert context == "Definition Time Range: 2024-03-10 00:15:00 - 2024-03-12 12:00:00"


# --- tool version -----------------------------------------------------------------------------------------------------

def version_of(*engine_lists: list[dict]) -> str:
    return tool_version([EngineMap.from_engine_list(engines, 4).fingerprint() for engines in engine_lists])


def test_tool_version_is_an_md5_hex_digest():
    version = version_of(v4_list())
    assert len(version) == 32
    assert all(char in "0123456789abcdef" for char in version)


def test_tool_version_is_stable_for_the_same_engines():
    assert version_of(v4_list()) == version_of(copy.deepcopy(v4_list()))


def test_tool_version_changes_when_one_definition_time_changes():
    updated = v4_list()
    updated[1]["def_time"] = "2024-03-12T06:00:00.000Z"
    assert version_of(updated) != version_of(v4_list())


def test_tool_version_changes_when_one_engine_version_changes():
    updated = v4_list()
    updated[0]["eng_ver"] = "1.0.2"
    assert version_of(updated) != version_of(v4_list())


def test_tool_version_changes_when_an_engine_is_added():
    assert version_of(v4_list() + [v4_engine("Sophos")]) != version_of(v4_list())


def test_tool_version_changes_when_a_second_core_changes():
    other_core = [v4_engine("ESET", "2.0", "2024-03-09T10:00:00.000Z")]
    updated_core = [v4_engine("ESET", "2.0", "2024-03-12T10:00:00.000Z")]
    assert version_of(v4_list(), updated_core) != version_of(v4_list(), other_core)


def test_tool_version_ignores_fields_other_than_name_version_and_definition_time():
    updated = v4_list()
    updated[0]["download_time"] = "2024-03-12T00:00:00.000Z"
    updated[0]["download_progress"] = 50
    assert version_of(updated) == version_of(v4_list())


# --- one engine, several packages (as real Cores list them) -------------------------------------------------------

def linux_and_windows(active_first: bool) -> list[dict]:
    """ClamAV listed twice, as OPSWAT's published Core answers show it: the Windows copy inactive, named differently."""
    active = dict(v4_engine("ClamAV", "0.103.2", "2024-03-11T11:08:00.000Z"), eng_id="clamav_1_linux")
    inactive = dict(v4_engine("Clamav", "1462 (20150625)", "", active=False, state="downloaded"),
                    eng_id="clamav_1_windows")
    return [active, inactive] if active_first else [inactive, active]


@pytest.mark.parametrize("active_first", [True, False])
def test_the_active_package_of_an_engine_is_the_engine(active_first):
    engines = EngineMap.from_engine_list(linux_and_windows(active_first) + [v4_engine("Avira")], 4)
    clamav = engines.lookup("ClamAV")
    assert (clamav.version, clamav.def_time_text, clamav.active) == ("0.103.2", "2024-03-11 11:08:00", True)
    assert active_engines(engines) == 2
    assert engines.active_av_count == 2


@pytest.mark.parametrize(("names", "report_name"), [
    (("QuickHeal", "Quickheal"), "Quick Heal"),
    (("TotalDefense", "Total Defense"), "TOTALDEFENSE"),
])
def test_packages_whose_names_differ_in_case_and_spaces_are_one_engine(names, report_name):
    payload = [v4_engine(names[0], "3.0", "", active=False, state="disabled"),
               v4_engine(names[1], "3.1", "2024-03-10T08:00:00.000Z")]
    engines = EngineMap.from_engine_list(payload, 4)
    assert len(engines.engines) == 1
    assert engines.lookup(report_name).version == "3.1"


def test_among_several_active_packages_the_newest_definitions_win():
    payload = [v4_engine("ESET", "2.0", "2024-03-01T00:00:00.000Z"), v4_engine("Eset", "2.1", "2024-03-11T00:00:00Z"),
               v4_engine("ESET", "1.9", "")]
    assert EngineMap.from_engine_list(payload, 4).lookup("ESET").version == "2.1"


@pytest.mark.parametrize("order", [1, -1])
def test_an_engine_with_only_inactive_packages_is_the_copy_with_a_version_and_counts_as_inactive(order):
    payload = [v4_engine("K7", "", "", active=False, state="disabled"),
               v4_engine("K7", "16.0", "", active=False, state="downloaded")][::order]
    engines = EngineMap.from_engine_list(payload + [v4_engine("Avira")], 4)
    assert engines.lookup("K7").version == "16.0"
    assert active_engines(engines) == 1


def test_counts_range_and_stale_check_see_each_engine_once_and_active_copies_only():
    old_inactive = v4_engine("Avira", "7.0", "2020-01-01T00:00:00.000Z", active=False, state="downloaded")
    new_inactive = v4_engine("File type analysis", "8", "2030-01-01T00:00:00.000Z", "filetype", active=False)
    engines = EngineMap.from_engine_list(linux_and_windows(False) + v4_list() + [old_inactive, new_inactive], 4)
    assert active_engines(engines) == len(v4_list())
    assert engines.active_av_count == 3
    assert engines.service_context() == "Definition Time Range: 2024-03-10 22:15:30 - 2024-03-12 09:00:00"
    now = parse_def_time("2024-03-12T00:00:00Z", 4)
    assert [e.name for e in engines.stale_engines(now, 1)] == ["Zillya!"]


def test_only_utility_engines_active_means_no_active_antivirus_engine():
    payload = [v4_engine("ClamAV", active=False, state="disabled"),
               v4_engine("Archive", "6", "", engine_type="archive"), v4_engine("Utility", "1", "", engine_type="util")]
    engines = EngineMap.from_engine_list(payload, 4)
    assert (active_engines(engines), engines.active_av_count) == (2, 0)


def test_tool_version_ignores_an_inactive_package_being_downloaded():
    updated = v4_list() + [v4_engine("Clamav", "1463 (20150701)", "", active=False, state="downloaded")]
    assert version_of(updated) == version_of(v4_list())


def test_tool_version_ignores_utility_engines_but_not_new_antivirus_definitions():
    updated = v4_list()
    updated[4]["def_time"] = "2024-03-13T09:00:00.000Z"
    assert version_of(updated) == version_of(v4_list())
    updated[0]["def_time"] = "2024-03-13T09:00:00.000Z"
    assert version_of(updated) != version_of(v4_list())


@pytest.mark.parametrize("version", ["1462 (20150625)", "26534-26"])
def test_free_text_engine_versions_are_kept_as_core_wrote_them(version):
    assert EngineMap.from_engine_list([v4_engine("K7", version)], 4).lookup("K7").version == version


def test_the_type_field_of_the_other_api_version_is_read_when_this_ones_is_missing():
    v4_shaped = {"eng_name": "ClamAV", "eng_ver": "1.0", "engine_type": "av", "def_time": "", "active": True}
    assert EngineMap.from_engine_list([v4_shaped], 3).active_av_count == 1
    assert EngineMap.from_engine_list([v3_engine("Avira", eng_type="av")], 4).active_av_count == 1


# --- lookups, ranges and stale engines at their edges ---------------------------------------------------------------

def test_a_v3_report_that_names_an_engine_as_the_engine_list_does_finds_it():
    engines = EngineMap.from_engine_list([v3_engine("ClamAV scan engine", "0.103.2")], 3)
    assert engines.lookup("ClamAV scan engine").version == "0.103.2"


def test_engines_without_definition_times_give_an_unknown_range():
    engines = EngineMap.from_engine_list([v4_engine("ClamAV", def_time=""),
                                          v4_engine("Archive", def_time="", engine_type="archive")], 4)
    assert engines.definition_range() == (None, None)
    assert engines.service_context() == "Definition Time Range: unknown - unknown"


def test_stale_engines_are_those_older_than_the_days_given_oldest_first():
    # stale_definition_days 2 at noon on 2024-03-12: older than 2024-03-10 12:00:00 is stale.
    engines = EngineMap.from_engine_list([
        v4_engine("ClamAV", def_time="2024-03-10T11:59:59.000Z"),  # 2 days and 1 s
        v4_engine("Avira", def_time="2024-03-10T12:00:00.000Z"),  # 2 days exactly: not older
        v4_engine("Zillya!", def_time="2024-03-01T00:00:00.000Z"),
    ], 4)
    now = parse_def_time("2024-03-12T12:00:00Z", 4)
    assert [e.name for e in engines.stale_engines(now, 2)] == ["Zillya!", "ClamAV"]


@pytest.mark.parametrize(("raw", "shown"), [
    ("2024-03-11T13:08:00+02:00", "2024-03-11 11:08:00"),  # an ISO 8601 offset is converted to UTC
    ("2024-03-11T11:08:00", "2024-03-11 11:08:00"),  # no offset: taken as UTC
])
def test_v4_definition_times_with_or_without_an_offset_are_utc(raw, shown):
    moment = parse_def_time(raw, 4)
    assert as_text(moment) == shown and moment.utcoffset().total_seconds() == 0


def test_v3_definition_times_are_utc_and_checked_for_staleness():
    engines = EngineMap.from_engine_list([v3_engine("ClamAV scan engine", def_time="03/01/2024 01:30:00 PM")], 3)
    now = parse_def_time("2024-03-12T00:00:00Z", 4)
    assert [e.name for e in engines.stale_engines(now, 7)] == ["ClamAV scan engine"]


@pytest.mark.parametrize("entry", ["ClamAV", None, {"eng_name": None}, {"eng_name": 7}, {"eng_name": "  "}])
def test_an_engine_list_entry_without_a_name_is_an_unreadable_list(entry):
    with pytest.raises(ValueError):
        EngineMap.from_engine_list([v4_engine("Avira"), entry], 4)


def test_an_engine_whose_packages_are_all_inactive_and_without_version_is_still_listed():
    payload = [v4_engine("K7", "", "", active=False, state="disabled"),
               v4_engine("K7", "", "", active=False, state="downloading")]
    engines = EngineMap.from_engine_list(payload, 4)
    assert engines.lookup("K7").active is False and engines.active_av_count == 0
