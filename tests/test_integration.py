"""The service against the Core emulator over real HTTP: every marker outcome, v3, API keys, TLS, end to end."""

import json
import logging
import pathlib
import sys

import pytest
from al_checks import run_task
from assemblyline.odm.models.ontology.results import Antivirus
from timing import SteppedClock

from mdcore_emulator import (
    ARCHIVE,
    CDR,
    CDR_FAIL,
    CLEANED,
    EICAR,
    ENCRYPTED,
    FAILED,
    HEUR,
    MIXED,
    NONAME,
    NOT_SCANNED,
    PUA,
    SUSPICIOUS,
    UNKNOWN_CODE,
    UNSUPPORTED,
    VULNERABLE,
    Emulator,
)
from mdservice.scan import Clock
from metadefender import MetaDefender, ServiceStartError

HITS = "AV Detections as Infected or Suspicious"
FAILS = "Failed to Scan or No Threats Detected"
NO_VERDICT = "No AV Engine Gave a Verdict"
# The emulator's AV engines that are not on the default blocklist (Antiy-AVL is).
EICAR_ENGINES = ["AhnLab", "Avira", "Bitdefender", "ClamAV", "ESET", "Emsisoft", "Ikarus", "K7", "NANOAV",
                 "Vir.IT eXplorer", "Zillya!"]


@pytest.fixture(scope="module")
def emulator():
    with Emulator(nodes=1, scan_seconds=0.1) as emu:
        yield emu


@pytest.fixture(scope="module")
def service(emulator):
    service = MetaDefender({"base_url": emulator.urls[0]})
    service.start()
    return service


def scan(service, tmp_path, content: str | bytes, params=None):
    path = tmp_path / "sample.bin"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    kind, result, doc = run_task(service, str(path), str(tmp_path / "tasking"), params=params)
    assert kind == "result", result
    return result, doc


def tree(result):
    return [(s.depth, s.title_text) for s in result.result.sections]


def hits(result):
    return {json.loads(s.body)["av_name"]: s for s in result.result.sections
            if s.depth == 1 and s.heuristic is not None}


def test_clean_file_is_quiet(service, tmp_path):
    result, doc = scan(service, tmp_path, "just some text")
    assert result.result.sections == [] and result.result.score == 0
    assert doc["response"]["service_context"].startswith("Definition Time Range: ")


def test_eicar_detected_by_every_engine_except_blocklisted(service, tmp_path):
    result, _ = scan(service, tmp_path, EICAR)
    found = hits(result)
    assert sorted(found) == sorted(EICAR_ENGINES)
    assert all(s.heuristic.heur_id == "1" and s.heuristic.score == 1000 for s in found.values())
    assert found["ESET"].title_text == "ESET identified the file as Eicar test file"
    assert tree(result)[-1] == (1, "11/11 engines flagged the file")
    assert result.result.score == 11000


def test_suspicious_marker(service, tmp_path):
    result, _ = scan(service, tmp_path, SUSPICIOUS)
    found = hits(result)
    assert sorted(found) == ["Ikarus", "K7"]
    assert {json.loads(s.body)["scan_result"] for s in found.values()} == {"suspicious"}
    assert all(s.heuristic.score == 500 for s in found.values())


def test_pua_is_suspicious_and_adware_keyword_revises_score(service, tmp_path):
    result, _ = scan(service, tmp_path, PUA)
    (section,) = hits(result).values()
    assert section.heuristic.heur_id == "2"
    assert section.heuristic.score == 100
    assert section.tags.av.virus_name == ["Adware.Generic.123"]


def test_failures_beside_a_hit(service, tmp_path):
    result, _ = scan(service, tmp_path, EICAR + " " + FAILED)
    titles = tree(result)
    assert (0, FAILS) in titles
    assert (1, "AhnLab failed to scan the file") in titles and (1, "Zillya! failed to scan the file") in titles
    failed = next(s for s in result.result.sections if s.title_text == "AhnLab failed to scan the file")
    assert failed.body.startswith("Engine: ") and ":: Definition: " in failed.body


def test_failures_without_a_hit_stay_quiet(service, tmp_path):
    result, _ = scan(service, tmp_path, FAILED)
    assert result.result.sections == []


@pytest.mark.parametrize("marker", [NOT_SCANNED, ENCRYPTED, UNSUPPORTED])
def test_no_engine_verdict_is_never_a_clean_looking_result(service, tmp_path, marker):
    result, _ = scan(service, tmp_path, marker)
    assert tree(result) == [(0, NO_VERDICT)]


def test_archive_password_opens_encrypted_file(service, tmp_path):
    result, _ = scan(service, tmp_path, ENCRYPTED + " " + EICAR, params={"archive_password": "infected"})
    assert len(hits(result)) == len(EICAR_ENGINES)


def test_cleaned_is_infected(service, tmp_path):
    result, _ = scan(service, tmp_path, CLEANED)
    (section,) = hits(result).values()
    assert json.loads(section.body)["scan_result"] == "infected" and section.heuristic.score == 1000


def test_hit_without_name_has_no_tag(service, tmp_path):
    result, _ = scan(service, tmp_path, NONAME)
    (section,) = hits(result).values()
    assert json.loads(section.body)["av_name"] == "NANOAV"
    assert not (section.tags.av and section.tags.av.virus_name)


def test_unknown_code_is_a_failure_with_its_code(service, tmp_path):
    result, _ = scan(service, tmp_path, EICAR + " " + UNKNOWN_CODE)
    failed = next(s for s in result.result.sections if s.title_text == "Vir.IT eXplorer failed to scan the file")
    assert "42" in failed.body


def test_mixed_outcomes_and_ontology(service, tmp_path):
    result, doc = scan(service, tmp_path, MIXED)
    titles = tree(result)
    assert titles[0] == (0, HITS)
    assert (0, FAILS) in titles and titles[-1] == (1, "No Threat Detected by AV Engine(s)")
    work = tmp_path / "tasking" / "working_directory"
    (ontology_path,) = work.glob("*/*.ontology")
    parts = [Antivirus(p) for p in json.loads(ontology_path.read_text())["results"]["antivirus"]]
    assert {p.category for p in parts} == {"malicious", "suspicious", "undetected", "failure", "type-unsupported"}
    assert all(p.engine_version for p in parts)


def test_cdr_sections(service, tmp_path):
    result, _ = scan(service, tmp_path, EICAR + " " + CDR)
    cdr = result.result.sections[-1]
    assert cdr.title_text == "CDR Successfully Executed"
    assert json.loads(cdr.body)["actions_ran"] == "Sanitized"
    result, _ = scan(service, tmp_path, EICAR + " " + CDR_FAIL)
    assert result.result.sections[-1].title_text == "CDR Failed or No Malicious Files Found"


def test_v3_core(tmp_path):
    with Emulator(md_version=3, scan_seconds=0.1) as emu:
        assert emu.urls[0].endswith("/metascan_rest/")
        service = MetaDefender({"base_url": emu.urls[0].rstrip("/"), "md_version": 3})
        service.start()
        result, doc = scan(service, tmp_path, EICAR + " " + CDR)
    clam = hits(result)["ClamAV"]
    assert json.loads(clam.body)["engine_version"] != "unknown"
    assert not any("CDR" in title for _, title in tree(result))
    assert doc["response"]["service_context"].startswith("Definition Time Range: 20")


def test_api_key_given_and_missing(tmp_path):
    with Emulator(apikey="right-key", scan_seconds=0.1) as emu:
        good = MetaDefender({"base_url": emu.urls[0], "api_key": "right-key"})
        good.start()
        result, _ = scan(good, tmp_path, EICAR)
        assert len(hits(result)) == len(EICAR_ENGINES)
        for key in ("", "wrong-key"):
            with pytest.raises(ServiceStartError, match="api_key"):
                MetaDefender({"base_url": emu.urls[0], "api_key": key}).start()


def test_api_key_revoked_while_running_is_not_recoverable(tmp_path):
    with Emulator(scan_seconds=0.1) as emu:
        service = MetaDefender({"base_url": emu.urls[0], "api_key": "k"})
        service.start()
        emu.nodes[0].set_fault("bad_key")
        path = tmp_path / "f.bin"
        path.write_text("x")
        kind, error, _ = run_task(service, str(path), str(tmp_path / "t"))
    assert kind == "error" and error["response"]["status"] == "FAIL_NONRECOVERABLE"
    assert "api_key" in error["response"]["message"]


def test_tls_with_the_emulator_ca_and_without_verification(tmp_path):
    with Emulator(tls=True, scan_seconds=0.1) as emu:
        assert emu.urls[0].startswith("https://")
        with pytest.raises(ServiceStartError, match="verify_certificate"):
            MetaDefender({"base_url": emu.urls[0]}).start()
        for verify in (emu.ca_path, False):
            service = MetaDefender({"base_url": emu.urls[0], "verify_certificate": verify})
            service.start()
            result, _ = scan(service, tmp_path, EICAR)
            assert len(hits(result)) == len(EICAR_ENGINES)


def test_end_to_end_run_service_once(tmp_path):
    """The path a new user takes: Assemblyline's run_service_once in a child process, then result.json."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    from demo.__main__ import run_service_once, write_manifest

    sample = tmp_path / "eicar.com"
    sample.write_text(EICAR + " " + CDR)
    with Emulator(scan_seconds=0.1) as emu:
        manifest = write_manifest(tmp_path, {"base_url": emu.urls[0], "fetch_sanitized_file": True})
        result_path = run_service_once(sample, manifest)
    result = json.loads(result_path.read_text())
    sections = result["result"]["sections"]
    assert sections[0]["title_text"] == HITS
    assert result["result"]["score"] == 1000 * len(EICAR_ENGINES)
    assert {s["heuristic"]["heur_id"] for s in sections if s["heuristic"]} == {1}
    assert sections[-1]["title_text"] == "CDR Successfully Executed"
    names = [f["name"] for f in result["response"]["supplementary"]]
    assert "eicar.com.sanitized" in names and any(n.endswith(".ontology") for n in names)
    ontology_file = next(result_path.parent.glob("working_directory/*/*.ontology"))
    assert len(json.loads(ontology_file.read_text())["results"]["antivirus"]) == len(EICAR_ENGINES)


def test_one_keep_alive_connection_per_core_across_tasks(emulator, service, tmp_path):
    service.get_tool_version()
    before = emulator.nodes[0].stats.connections
    for i in range(5):
        scan(service, tmp_path, f"file {i}")
    assert emulator.nodes[0].stats.connections - before <= 1


def test_every_optional_feature_on_still_validates(tmp_path):
    config = {"rule": "Multiscan & CDR", "fetch_sanitized_file": True, "stale_definition_days": 7,
              "engine_refresh_seconds": 0.2,
              "av_config": {"heuristic_name_keys": HEURISTIC_KEYS, "min_engines_to_score": len(EICAR_ENGINES)}}
    with Emulator(scan_seconds=0.1) as emu:
        service = MetaDefender({"base_url": emu.urls[0], **config})
        service.start()
        result, doc = scan(service, tmp_path, " ".join([EICAR, CDR, ENCRYPTED, HEUR, VULNERABLE]),
                           params={"archive_password": "infected"})
        record = list(emu.nodes[0].stats.scans.values())[-1]
    assert (record.rule, record.archive_passwords) == ("Multiscan & CDR", ("infected",))
    titles = [title for _, title in tree(result)]
    assert titles[0] == HITS and "CDR Successfully Executed" in titles
    stale = next(s for s in result.result.sections if s.title_text == "Outdated Antivirus Definitions")
    assert "Vir.IT eXplorer" in stale.body
    assert [f["name"] for f in doc["response"]["supplementary"] if f["name"].endswith(".sanitized")] == [
        "sample.bin.sanitized"]
    assert {name for name, s in hits(result).items() if s.heuristic.heur_id == "2"} == {"Bitdefender", "Ikarus", "K7"}
    assert VULNERABILITIES in titles
    assert result.result.score > 0


HEURISTIC_KEYS = ["HEUR:", "Heur.", "Suspicious"]
VULNERABILITIES = "Known Vulnerabilities in Detected Software"


def heuristic_service(emulator, min_engines: int = 1) -> MetaDefender:
    av_config = {"heuristic_name_keys": HEURISTIC_KEYS, "min_engines_to_score": min_engines}
    service = MetaDefender({"base_url": emulator.urls[0], "av_config": av_config})
    service.start()
    return service


def test_heuristic_virus_names_are_suspicious_and_tagged(emulator, tmp_path):
    result, _ = scan(heuristic_service(emulator), tmp_path, HEUR)
    found = hits(result)
    assert {name: s.heuristic.heur_id for name, s in found.items()} == {
        "ClamAV": "1", "Ikarus": "2", "Bitdefender": "2", "K7": "2"}
    assert found["Ikarus"].tags.av.heuristic == ["HEUR:Trojan.Win32.Generic"]
    assert not found["ClamAV"].tags.av.heuristic
    assert result.result.score == 1000 + 3 * 500


def test_too_few_engines_keep_their_hits_but_score_nothing(emulator, tmp_path):
    result, _ = scan(heuristic_service(emulator, min_engines=5), tmp_path, HEUR)
    assert len(hits(result)) == 4 and result.result.score == 0
    summary = next(s for s in result.result.sections if s.title_text == "4/11 engines flagged the file")
    assert "5 required" in json.loads(summary.body)["not_scored"]


def test_vulnerable_product_from_the_emulator(service, tmp_path):
    result, _ = scan(service, tmp_path, VULNERABLE)
    assert tree(result) == [(0, VULNERABILITIES), (1, "Adobe Flash Player 20.0.0.235")]
    product = result.result.sections[1]
    assert json.loads(product.body)["severity"] == "critical"
    assert product.tags.attribution.exploit == json.loads(product.body)["cve"]
    assert len(product.tags.attribution.exploit) == 4 and result.result.score == 0


def on_stepped_clock(config: dict) -> tuple[MetaDefender, SteppedClock]:
    """A service started on a clock the test steps forward (for engine_refresh_seconds to pass), and the clock."""
    service, clock = MetaDefender(config), SteppedClock()
    service.clock = Clock(now=clock.now)
    service.start()
    return service, clock


def test_new_definitions_change_the_tool_version_without_restart(tmp_path):
    with Emulator(scan_seconds=0.1) as emu:
        service, clock = on_stepped_clock({"base_url": emu.urls[0], "engine_refresh_seconds": 600})
        before = service.get_tool_version()
        emu.nodes[0].update_definitions()
        clock.step(599)
        assert service.get_tool_version() == before, "the engine list was read again before engine_refresh_seconds"
        clock.step(1)
        after = service.get_tool_version()
        _, doc = scan(service, tmp_path, "x")
    assert after != before
    assert doc["response"]["service_tool_version"] == after


def test_unverified_tls_warns_once(tmp_path, caplog):
    with Emulator(tls=True, scan_seconds=0.1) as emu, caplog.at_level(logging.WARNING):
        service = MetaDefender({"base_url": emu.urls[0], "verify_certificate": False})
        service.start()
        for i in range(2):
            scan(service, tmp_path, f"x{i}")
    assert caplog.text.count("verify_certificate is false") == 1


# --- Cores that list every engine package, and older Cores ------------------------------------------------------------

@pytest.fixture(scope="module")
def package_core():
    with Emulator(scan_seconds=0.1, engine_list="packages") as emu:
        service, clock = on_stepped_clock({"base_url": emu.urls[0], "engine_refresh_seconds": 600})
        yield emu, service, clock


def test_against_a_package_list_hits_and_ontology_show_the_active_engines(package_core, tmp_path):
    emu, service, _ = package_core
    scanning = {engine.name: engine for engine in emu.nodes[0].engines}
    result, doc = scan(service, tmp_path, EICAR)
    found = hits(result)
    assert sorted(found) == sorted(EICAR_ENGINES)
    for name, section in found.items():
        body = json.loads(section.body)
        assert body["engine_version"] == scanning[name].version, name
        assert body["engine_definition_time"] == scanning[name].def_time.strftime("%Y-%m-%d %H:%M:%S"), name
    ontology_file = next(tmp_path.glob("tasking/working_directory/*/*.ontology"))
    parts = [Antivirus(p) for p in json.loads(ontology_file.read_text())["results"]["antivirus"]]
    assert {p.engine_name: p.engine_version for p in parts} == {name: scanning[name].version for name in found}
    assert "unknown" not in doc["response"]["service_context"]


def test_against_a_package_list_the_tool_version_ignores_inactive_packages(package_core):
    emu, service, clock = package_core
    before = service.get_tool_version()
    emu.nodes[0].update_inactive_packages()
    clock.step(600)
    assert service.get_tool_version() == before
    emu.nodes[0].update_definitions()
    clock.step(600)
    assert service.get_tool_version() != before


def test_an_old_core_gives_the_same_sections_as_a_new_one(tmp_path):
    results = []
    with Emulator(scan_seconds=0.1) as new_core, Emulator(scan_seconds=0.1, report_flavour="4.3") as old_core:
        for emu in (new_core, old_core):
            core_service = MetaDefender({"base_url": emu.urls[0]})
            core_service.start()
            results.append(scan(core_service, tmp_path, EICAR + " " + MIXED)[0])
    new, old = results
    assert [(s.depth, s.title_text, s.body) for s in old.result.sections] == [
        (s.depth, s.title_text, s.body) for s in new.result.sections]
    assert old.result.score == new.result.score > 0


def test_flagged_archive_members_are_shown_without_a_score(service, tmp_path):
    result, _ = scan(service, tmp_path, ARCHIVE)
    assert tree(result) == [(0, "Archive Members Flagged by AV Engines")]
    section = result.result.sections[0]
    assert section.heuristic is None and result.result.score == 0
    assert section.body.splitlines()[1] == f"bin/dropper.exe: Infected, flagged by {len(EICAR_ENGINES) + 1} of " \
                                           f"{len(EICAR_ENGINES) + 1} engines"
