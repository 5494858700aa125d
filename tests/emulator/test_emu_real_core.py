"""The emulator as real Cores answer: engine lists with Linux and Windows packages, Core 4.3 reports, archives."""


import pytest

from mdcore_emulator import ARCHIVE, EICAR


def listed(client, emu) -> list[dict]:
    return client(emu.urls[0]).get("stat/engines").json()


def test_the_tidy_engine_list_stays_the_default(start_emulator, client):
    emu = start_emulator()
    engines = listed(client, emu)
    assert [e["eng_name"] for e in engines] == [e.name for e in emu.nodes[0].engines]


def test_the_package_list_shows_engines_as_real_cores_do(start_emulator, client):
    emu = start_emulator(engine_list="packages")
    engines = listed(client, emu)
    clamav = [e for e in engines if e["eng_name"].lower() == "clamav"]
    assert [(e["eng_id"], e["active"], e["state"], e["def_time"] == "") for e in clamav] == [
        ("clamav_1_windows", False, "downloaded", True), ("clamav_1_linux", True, "production", False)]
    assert {e["eng_name"] for e in engines} >= {"Clamav", "ClamAV", "Quickheal", "Quick Heal", "TotalDefense",
                                                "Total Defense"}
    assert {e["state"] for e in engines} >= {"downloaded", "disabled"}
    assert not any(e["active"] for e in engines if e["eng_name"].replace(" ", "").lower() in ("totaldefense",
                                                                                             "quickheal"))
    assert "util" in {e["engine_type"] for e in engines}
    ids = [e["eng_id"] for e in engines]
    assert ids.index("avira_1_linux") < ids.index("avira_1_windows")


def test_new_inactive_packages_change_only_the_inactive_entries(start_emulator, client):
    emu = start_emulator(engine_list="packages")
    before = listed(client, emu)
    emu.nodes[0].update_inactive_packages()
    after = listed(client, emu)
    changed = [new["eng_id"] for old, new in zip(before, after, strict=True) if old != new]
    assert changed and all(not e["active"] for e in after if e["eng_id"] in changed)
    assert [e for e in after if e["active"]] == [e for e in before if e["active"]]


def test_a_core_4_3_report_has_the_older_field_set(start_emulator, client):
    emu = start_emulator(report_flavour="4.3")
    report = client(emu.urls[0]).scan(b"nothing to see")
    assert report["scan_results"]["scan_all_result_a"] == "Clean"
    assert all("wait_time" not in entry for entry in report["scan_results"]["scan_details"].values())
    assert not {"queue_time", "processing_time"} & set(report["process_info"])
    infected = client(emu.urls[0]).scan(EICAR.encode())
    assert infected["scan_results"]["scan_all_result_a"] == "Infected"


def test_a_core_4_3_report_in_progress_looks_clean_but_for_its_progress(on_hand_clock, client):
    emu, clock = on_hand_clock(report_flavour="4.3", scan_seconds=5)
    core = client(emu.urls[0])
    data_id = core.submit(EICAR.encode())
    clock.sleep(1.0)
    report = core.report(data_id)
    results = report["scan_results"]
    assert results["progress_percentage"] < 100
    assert (results["scan_all_result_i"], results["scan_details"], results["total_avs"], results["total_time"]) == (
        0, {}, 0, -1)


@pytest.mark.parametrize("flavour", ["current", "4.3"])
def test_an_archive_lists_its_members_one_flagged(start_emulator, client, flavour):
    emu = start_emulator(report_flavour=flavour)
    report = client(emu.urls[0]).scan(ARCHIVE.encode())
    members = report["extracted_files"]["files_in_archive"]
    flagged = [m for m in members if m["scan_all_result_i"] == 1]
    assert [m["display_name"] for m in flagged] == ["bin/dropper.exe"]
    assert flagged[0]["detected_by"] == flagged[0]["scanned_with"] > 0
    assert all(m["progress_percentage"] == 100 for m in members)
    assert report["scan_results"]["scan_all_result_i"] == 1


def test_unknown_engine_list_or_flavour_is_refused(start_emulator):
    with pytest.raises(ValueError, match="engine_list"):
        start_emulator(engine_list="messy")
    with pytest.raises(ValueError, match="report_flavour"):
        start_emulator(report_flavour="9")
