"""Property tests: whatever JSON a Core (or something pretending to be one) sends, the report path gives a result
that Assemblyline accepts, keeps the contract's promises, and never crashes with anything but the service's own error.

Inputs: arbitrary JSON shapes, missing / extra / null / wrongly typed fields, hundreds of engines, and virus and engine
names that are very long, unicode, control characters, lone surrogates (JSON `\\ud800` escapes) or HTML / script.
"""

from __future__ import annotations

import json
import math
import re
import time

from al_checks import validate_antivirus_parts, validate_sections
from assemblyline.common.dict_utils import unflatten
from assemblyline.common.str_utils import safe_str
from assemblyline.odm.base import construct_safe
from assemblyline.odm.models.tagging import Tagging
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mdservice.config import AvConfig
from mdservice.engines import EngineMap, clean_text, tool_version
from mdservice.report import (
    CVE_ID,
    MAX_CVES,
    MAX_PRODUCTS,
    MAX_TAG_CHARS,
    TITLE_HITS,
    TITLE_NO_VERDICT,
    TITLE_VULNERABILITIES,
    ResultOptions,
    build_result,
    cdr_section,
    engine_outcomes,
    is_finished,
    progress_of,
    queue_seconds,
    vulnerability_section,
)

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AV_CONFIG = AvConfig()
OPTIONS = ResultOptions(AV_CONFIG)
CODES = [0, 1, 2, 3, 4, 10, 12, 15, 19, 22, 23, 5, 99, -1, 2**40]
SCAN_RESULT_WORDS = {1: "infected", 4: "infected", 2: "suspicious", 22: "suspicious"}

# Names as a hostile or broken Core could send them.
NASTY_PIECES = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "\x00", "\n", "\r\n", "\t", "\x1b[31m",
                "\ud800", "\udfff", "\u202e", "\u200b", "\ufeff", "é", "病毒", "🦠", "a variant of ", " ", "!", "AV",
                "APEX", "%s%n", "{}", "\\", "."]
names = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(NASTY_PIECES) | st.text(max_size=5), max_size=8).map("".join),
    st.integers(1, 3).map(lambda n: "W" * (MAX_TAG_CHARS * n - 1 + n)),  # around and beyond the tag limit
    st.sampled_from(["ClamAV", "ESET", "Zillya!", "NANOAV", "Antiy-AVL", "apex", ""]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), names)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4), max_leaves=12)
percentages = st.one_of(st.just(100), st.just(100.0), st.integers(-5, 120), st.floats(), scalars)


def maybe(strategy):
    """A field that is sometimes missing, null or of a wrong type."""
    return st.one_of(strategy, strategy, st.none(), json_values)


def optional_dict(required: dict, optional: dict):
    return st.fixed_dictionaries(required, optional=optional)


engine_entries = st.one_of(
    optional_dict({}, {"scan_result_i": maybe(st.sampled_from(CODES) | st.floats()), "threat_found": maybe(names),
                       "def_time": maybe(st.text(max_size=30)), "scan_time": json_values, "extra": json_values}),
    json_values,
)
scan_details = st.one_of(st.dictionaries(names, engine_entries, max_size=12), json_values)
post_processing = st.one_of(
    optional_dict({}, {"actions_ran": maybe(st.sampled_from(["", "Sanitized", "Sanitized|Removed"])),
                       "actions_failed": maybe(st.sampled_from(["", "Sanitization failed"])),
                       "converted_to": json_values, "extra": json_values}),
    json_values,
)
reports = st.one_of(
    optional_dict({}, {
        "data_id": json_values,
        "scan_results": st.one_of(optional_dict({}, {"progress_percentage": percentages,
                                                     "scan_details": scan_details, "extra": json_values}),
                                  json_values),
        "process_info": st.one_of(optional_dict({}, {"progress_percentage": percentages,
                                                     "post_processing": post_processing, "result": json_values}),
                                  json_values),
        "extra": json_values,
    }),
    json_values,
)
engine_items = st.one_of(
    optional_dict({"eng_name": names}, {
        "eng_ver": maybe(st.text(max_size=10) | st.integers() | st.floats()),
        "def_time": maybe(st.sampled_from(["2024-03-11T06:00:00.000Z", "", "0001-01-01T00:00:00+01:00",
                                           "9999-12-31T23:59:59-01:00", "03/11/2024 01:08:00 PM", "garbage"])
                          | st.text(max_size=25)),
        "engine_type": maybe(st.sampled_from(["av", "Bundled engine", "archive"])),
        "eng_type": maybe(st.sampled_from(["av", "Bundled engine", "archive"])),
        "active": maybe(st.booleans()), "state": maybe(st.sampled_from(["production", "removed", "download failed"])),
    }),
    json_values,
)
engine_lists = st.one_of(st.lists(engine_items, max_size=8), json_values)


def read_engines(payload, md_version: int) -> EngineMap | None:
    """The engine map, or None where the service refuses the list with its own clear ValueError."""
    try:
        return EngineMap.from_engine_list(payload, md_version)
    except ValueError as exc:
        assert "engine" in str(exc)
        return None


def all_sections(sections):
    for section in sections:
        yield section
        yield from all_sections(section.subsections)


def details_of(report) -> dict:
    scan_results = report.get("scan_results") if isinstance(report, dict) else None
    details = scan_results.get("scan_details") if isinstance(scan_results, dict) else None
    return details if isinstance(details, dict) else {}


def expected_hits(report) -> list[str]:
    """Titles the contract promises for the hits of `report`, as Assemblyline shows titles."""
    titles = []
    for name, entry in sorted(details_of(report).items()):
        if not name.strip() or AV_CONFIG.is_blocked(name) or not isinstance(entry, dict):
            continue
        code = entry.get("scan_result_i")
        code = int(code) if isinstance(code, float) and code.is_integer() else code
        if isinstance(code, bool) or not isinstance(code, int) or code not in SCAN_RESULT_WORDS:
            continue
        threat = entry.get("threat_found")
        virus = clean_text(threat).replace("a variant of ", "").strip()
        said = f"identified the file as {virus}" if virus else f"flagged the file as {SCAN_RESULT_WORDS[code]}"
        titles.append(safe_str(f"{clean_text(name)} {said}"))
    return titles


def check_tags_are_accepted(sections) -> None:
    """Every tag survives Assemblyline's own Tagging validation and stays searchable."""
    for section in all_sections(sections):
        _, dropped = construct_safe(Tagging, unflatten(section.tags))
        assert dropped == {}, dropped
        for value in section.tags.get("av.virus_name", []):
            assert value and value.isprintable() and len(value) <= MAX_TAG_CHARS
            assert value in section.title_text


def check_result_is_storable(sections) -> None:
    """The result loads in Assemblyline's Result model and can be written as UTF-8 (what Elasticsearch stores)."""
    odm = validate_sections(sections)
    json.dumps(odm.as_primitives(), ensure_ascii=False).encode("utf-8")


@SETTINGS
@given(report=reports, engine_list=engine_lists, md_version=st.sampled_from([3, 4]))
@example(report={"scan_results": {"progress_percentage": 100, "scan_details": {
    "ClamAV": {"scan_result_i": 1, "threat_found": "Eicar\ud800"},
    "ESET": {"scan_result_i": 2, "threat_found": "\n"}}}},
    engine_list=[{"eng_name": "ClamAV", "eng_ver": "", "def_time": "0001-01-01T00:00:00+01:00", "engine_type": "av"}],
    md_version=4)
@example(report=[], engine_list=None, md_version=4)
@example(report={"scan_results": {"scan_details": {"ESET": {"scan_result_i": 1, "threat_found": "x\x00y"}}},
                 "process_info": {"progress_percentage": 100, "post_processing": {"actions_ran": "Sanitized",
                                                                                   "x": float("nan")}}},
         engine_list=[{"eng_name": "ESET", "eng_ver": None}], md_version=4)
def test_any_report_gives_a_result_assemblyline_accepts(report, engine_list, md_version):
    engines = read_engines(engine_list, md_version)
    built = build_result(report, engines, OPTIONS)
    sections = built.sections
    outcomes = engine_outcomes(report, engines, AV_CONFIG)
    check_result_is_storable(sections)
    check_tags_are_accepted(sections)
    parts = built.antivirus
    assert len(validate_antivirus_parts(parts)) == len(outcomes)
    json.dumps(parts, ensure_ascii=False).encode("utf-8")

    hit_titles = [s.title_text for s in all_sections(sections) if s.heuristic is not None]
    assert hit_titles == expected_hits(report)
    if not any(o.is_hit or o.is_clean for o in outcomes):
        assert [s.title_text for s in sections][:1] == [TITLE_NO_VERDICT], "nothing scanned, yet no warning"
    if any(o.is_clean for o in outcomes) and not hit_titles:
        assert [s.title_text for s in sections if s.title_text in (TITLE_HITS, TITLE_NO_VERDICT)] == []


@SETTINGS
@given(report=reports)
@example(report={"process_info": {"progress_percentage": float("nan")}, "scan_results": {"progress_percentage": 50}})
@example(report={"scan_results": {"progress_percentage": float("inf")}})
@example(report="Not Found")
@example(report={"process_info": {"queue_time": float("nan")}})
@example(report={"process_info": {"queue_time": -5}})
def test_progress_is_a_bounded_number_and_finished_means_100(report):
    finished = is_finished(report)
    progress = progress_of(report)
    assert isinstance(finished, bool)
    assert progress is None or (math.isfinite(progress) and 0 <= progress <= 100)
    if finished:
        assert progress == 100
    if cdr_section(report) is not None:
        assert finished
    waited = queue_seconds(report)
    assert math.isfinite(waited) and waited >= 0


@SETTINGS
@given(payload=engine_lists, md_version=st.sampled_from([3, 4]))
@example(payload=[{"eng_name": "X", "def_time": "9999-12-31T23:59:59-01:00", "engine_type": "av"}], md_version=4)
@example(payload=[{"eng_name": "Eng\udc80", "eng_ver": "1\ud800", "def_time": "\ud800"}], md_version=4)
def test_any_engine_list_gives_a_map_or_the_services_own_error(payload, md_version):
    engines = read_engines(payload, md_version)
    if engines is None:
        return
    assert re.fullmatch(r"Definition Time Range: (\S+ \S+|unknown) - (\S+ \S+|unknown)", engines.service_context())
    assert len(tool_version([engines.fingerprint()])) == 32
    assert 0 <= engines.active_av_count <= len(engines.engines)
    for info in engines.engines.values():
        info.name.encode("utf-8"), info.version.encode("utf-8")
        assert info.version != "None"


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(virus=names, code=st.sampled_from([1, 2, 4, 22]))
def test_hundreds_of_engines_with_hostile_names(virus, code):
    count = 400
    details = {f"Engine {i} {virus[:50]}": {"scan_result_i": code if i % 3 else 0, "threat_found": f"{virus}.{i}"}
               for i in range(count)}
    report = {"scan_results": {"progress_percentage": 100, "scan_details": details}}
    engine_list = [{"eng_name": f"Engine {i} {virus[:50]}", "eng_ver": str(i), "engine_type": "av",
                    "def_time": "2024-03-11T06:00:00.000Z"} for i in range(count)]
    engines = read_engines(engine_list, 4)
    started = time.monotonic()
    sections = build_result(report, engines, OPTIONS).sections
    assert time.monotonic() - started < 5
    check_result_is_storable(sections)
    check_tags_are_accepted(sections)
    hits = [s for s in all_sections(sections) if s.heuristic is not None]
    assert len(hits) == len([k for k in details if details[k]["scan_result_i"]])
    assert len(validate_antivirus_parts(build_result(report, engines, OPTIONS).antivirus)) == count


def test_untaggable_virus_names_are_still_shown():
    """A virus name no tag can hold (control characters, overlong) is shown in the hit's title and body."""
    long_name = "Trojan." + "x" * MAX_TAG_CHARS
    report = {"scan_results": {"progress_percentage": 100, "scan_details": {
        "ClamAV": {"scan_result_i": 1, "threat_found": "Evil\nName"},
        "ESET": {"scan_result_i": 1, "threat_found": long_name},
        "K7": {"scan_result_i": 1, "threat_found": "<b>Fine</b>"}}}}
    hit_section = build_result(report, None, OPTIONS).sections[0]
    hits = {s.title_text: s for s in hit_section.subsections if s.heuristic}
    assert hits["ClamAV identified the file as Evil\nName"].tags == {}
    assert json.loads(hits["ClamAV identified the file as Evil\nName"].body)["virus_name"] == "Evil\nName"
    assert hits[f"ESET identified the file as {long_name}"].tags == {}
    assert hits["K7 identified the file as <b>Fine</b>"].tags == {"av.virus_name": ["<b>Fine</b>"]}
    assert all(s.heuristic.heur_id == 1 for s in hits.values())


def test_lone_surrogate_from_json_escape_is_replaced_not_stored():
    """`"\\ud800"` is valid JSON but no UTF-8 store (Elasticsearch) can hold the string it decodes to."""
    report = json.loads('{"scan_results": {"progress_percentage": 100, "scan_details": '
                        '{"ClamAV": {"scan_result_i": 1, "threat_found": "Eicar\\ud800"}}}}')
    sections = build_result(report, None, OPTIONS).sections
    hit = sections[0].subsections[0]
    assert hit.title_text == "ClamAV identified the file as Eicar\ufffd"
    assert hit.tags == {"av.virus_name": ["Eicar\ufffd"]}
    assert build_result(report, None, OPTIONS).antivirus[0]["virus_name"] == "Eicar\ufffd"


def test_engine_listed_without_a_version_keeps_its_ontology_part():
    """An engine with `eng_ver: ""` must still get an Antivirus part (AL's model refuses empty strings)."""
    engines = EngineMap.from_engine_list([{"eng_name": "ClamAV", "eng_ver": "", "engine_type": "av"}], 4)
    report = {"scan_results": {"scan_details": {"ClamAV": {"scan_result_i": 0}}}}
    parts = build_result(report, engines, OPTIONS).antivirus
    assert [p.engine_name for p in validate_antivirus_parts(parts)] == ["ClamAV"]


cve_texts = st.one_of(st.from_regex(r"(?i)CVE-\d{4}-\d{4,7}", fullmatch=True), names)
vulnerability_entries = st.one_of(
    optional_dict({}, {"details": st.one_of(optional_dict({}, {"cve": maybe(cve_texts), "cvss": json_values}),
                                            json_values),
                       "cve": maybe(cve_texts), "severity": maybe(names), "description": maybe(names)}),
    json_values,
)
vulnerability_lists = st.one_of(st.lists(vulnerability_entries, max_size=8), json_values)
detected_products = st.one_of(
    optional_dict({}, {"product": st.one_of(optional_dict({}, {"name": maybe(names)}), json_values),
                       "vendor": st.one_of(optional_dict({}, {"name": maybe(names)}), json_values),
                       "version": maybe(names | st.integers() | st.floats()), "severity": maybe(names),
                       "sig_name": maybe(names)}),
    json_values,
)
vulnerability_results = optional_dict({}, {"detected_product": detected_products,
                                           "vulnerabilites": vulnerability_lists,
                                           "vulnerabilities": vulnerability_lists, "code": json_values})
vulnerability_infos = st.one_of(
    optional_dict({}, {"result": st.one_of(vulnerability_results, st.lists(vulnerability_results, max_size=4),
                                           json_values)}),
    st.lists(vulnerability_results, max_size=3),
    json_values,
)


@settings(SETTINGS, max_examples=60)
@given(info=vulnerability_infos)
@example(info={"result": {"detected_product": {"product": {"name": "\ud800<b>x</b>\x00"}, "version": float("nan")},
                          "vulnerabilites": [{"details": {"cve": "cve-2021-44228\n"}}, {"cve": ["CVE-2021-1"]}]}})
@example(info={"result": [{"vulnerabilites": [{"details": {"cve": f"CVE-2020-{i:05}"}} for i in range(2000)]}]
               * (MAX_PRODUCTS + 2)})
def test_any_vulnerability_info_gives_a_bounded_informational_section(info):
    report = {"scan_results": {"progress_percentage": 100, "scan_details": {"ClamAV": {"scan_result_i": 1}}},
              "vulnerability_info": info}
    started = time.monotonic()
    sections = build_result(report, None, OPTIONS).sections
    assert time.monotonic() - started < 5
    check_result_is_storable(sections)
    check_tags_are_accepted(sections)
    section = vulnerability_section(report)
    if section is None:
        assert TITLE_VULNERABILITIES not in [s.title_text for s in sections]
        return
    assert section.heuristic is None and len(section.subsections) <= MAX_PRODUCTS
    for product in section.subsections:
        assert product.heuristic is None
        body = json.loads(product.body)
        assert isinstance(body["vulnerabilities"], int) and body["vulnerabilities"] >= 1
        assert len(body["cve"]) <= MAX_CVES and all(isinstance(cve, str) for cve in body["cve"])
        exploits = product.tags.get("attribution.exploit", [])
        assert all(CVE_ID.fullmatch(cve) and cve == cve.upper() for cve in exploits)
        assert set(exploits) <= set(body["cve"])
