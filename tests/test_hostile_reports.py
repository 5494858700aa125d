"""Property tests: whatever JSON a Core (or something pretending to be one) sends, the report path gives a result
that Assemblyline accepts, keeps the contract's promises, and never crashes with anything but the service's own error.

Inputs: arbitrary JSON shapes, missing / extra / null / wrongly typed fields, hundreds of engines, and virus and engine
names that are very long, unicode, control characters, lone surrogates (JSON `\\ud800` escapes) or HTML / script.
For well-formed reports, what each engine's code must give is written here from the contract (service-behaviour.md
section 4, the README's "What analysts see"); for any other input, only what holds whatever Core sends is asserted.
"""

from __future__ import annotations

import json
import math
import re

from al_checks import validate_antivirus_parts, validate_sections
from assemblyline.common.dict_utils import unflatten
from assemblyline.odm.base import construct_safe
from assemblyline.odm.models.tagging import Tagging
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mdservice.config import AvConfig
from mdservice.engines import EngineMap, tool_version
from mdservice.report import ResultOptions, build_result, cdr_section, is_finished, progress_of, queue_seconds

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTIONS = ResultOptions(AvConfig())
CODES = [0, 1, 2, 3, 4, 10, 12, 15, 19, 22, 23, 5, 99, -1, 2**40]
# Titles, as the contract gives them exactly.
TITLE_HITS = "AV Detections as Infected or Suspicious"
TITLE_FAILS = "Failed to Scan or No Threats Detected"
TITLE_NO_THREAT = "No Threat Detected by AV Engine(s)"
TITLE_NO_VERDICT = "No AV Engine Gave a Verdict"
TITLE_VULNERABILITIES = "Known Vulnerabilities in Detected Software"
HIT_TITLE = re.compile(r".+ (identified the file as .+|flagged the file as (infected|suspicious))", re.DOTALL)
# Elasticsearch's ignore_above for Assemblyline's keyword fields: no longer tag can be searched.
MAX_TAG_CHARS = 8191
# README: only strings that look like CVE ids (CVE-YYYY-NNNN...) are tagged attribution.exploit.
CVE_TAG = re.compile(r"CVE-\d{4}-\d{4,}")

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


def is_well_formed_engine_list(payload) -> bool:
    """A list whose every entry is an object naming its engine (`eng_name`, not blank): what a Core sends."""
    return isinstance(payload, list) and all(
        isinstance(item, dict) and isinstance(item.get("eng_name"), str) and item["eng_name"].strip()
        for item in payload)


def read_engines(payload, md_version: int) -> EngineMap | None:
    """The engine map of a well-formed list; for anything else the service's own clear error, and None."""
    if is_well_formed_engine_list(payload):
        return EngineMap.from_engine_list(payload, md_version)
    try:
        EngineMap.from_engine_list(payload, md_version)
    except ValueError as exc:
        assert "engine list" in str(exc)
        return None
    raise AssertionError(f"an engine list of another form was taken: {payload!r}")


def all_sections(sections):
    for section in sections:
        yield section
        yield from all_sections(section.subsections)


def details_of(report) -> dict:
    scan_results = report.get("scan_results") if isinstance(report, dict) else None
    details = scan_results.get("scan_details") if isinstance(scan_results, dict) else None
    return details if isinstance(details, dict) else {}


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
    built = build_result(report, read_engines(engine_list, md_version), OPTIONS)
    sections = built.sections
    check_result_is_storable(sections)
    check_tags_are_accepted(sections)
    parts = validate_antivirus_parts(built.antivirus)
    json.dumps(built.antivirus, ensure_ascii=False).encode("utf-8")
    # At most one ontology part per engine of the report, and one hit section per part that is a hit.
    assert len(parts) <= len(details_of(report))
    hits = [s for s in all_sections(sections) if s.heuristic is not None]
    assert len(hits) == len([p for p in parts if p.category in ("malicious", "suspicious")])
    assert all(HIT_TITLE.fullmatch(hit.title_text) and hit.heuristic.heur_id in (1, 2) for hit in hits)
    top = [s.title_text for s in sections]
    # Hits come first, in their own section; a file some engine flagged is never said to have no verdict.
    assert (top[:1] == [TITLE_HITS]) is bool(hits)
    assert not (hits and TITLE_NO_VERDICT in top)
    assert all(hit in sections[0].subsections for hit in hits)
    # No verdict at all (no engine found the file clean or flagged it) is never a quiet, clean-looking result.
    if not any(p.category in ("malicious", "suspicious", "undetected") for p in parts):
        assert top[:1] == [TITLE_NO_VERDICT], "nothing scanned, yet no warning"


# --- well-formed reports: what each code gives, from the contract ---------------------------------------------------

# Engine and virus names without surrogates or control characters (which are shown cleaned or escaped), never blank.
# No spaces at the ends, nor two in a row (the service shows Core's texts with runs of spaces collapsed).
readable = st.text(st.characters(categories=["L", "N", "P", "S"]) | st.just(" "), min_size=1, max_size=12).filter(
    lambda text: text.strip() == text and "  " not in text and "a variant of " not in text)
# The default blocklist (Antiy-AVL, APEX, Jiangmin) as Core may spell the names: case and spaces do not count.
BLOCKED_SPELLINGS = ["Antiy-AVL", "antiy-avl", "Antiy - AVL", "APEX", "Apex", "A PEX", "Jiangmin", "JIANG MIN"]
CONTRACT = {  # scan_result_i -> (heuristic, scan_result, ontology category), service-behaviour.md section 4
    1: (1, "infected", "malicious"), 4: (1, "infected", "malicious"),
    2: (2, "suspicious", "suspicious"), 22: (2, "suspicious", "suspicious"),
    0: (None, None, "undetected"), 23: (None, None, "type-unsupported"),
}
HEURISTIC_SCORES = {1: 1000, 2: 500}  # the manifest's heuristics
verdicts = st.fixed_dictionaries({
    "code": st.sampled_from([0, 1, 2, 3, 4, 10, 12, 15, 19, 22, 23, 42]),
    "virus": st.just("") | readable,
    "variant": st.booleans(),
})
BLOCKED_KEYS = {"antiy-avl", "apex", "jiangmin"}
engine_names = readable.filter(lambda name: name.lower().replace(" ", "") not in BLOCKED_KEYS)
engine_verdicts = st.dictionaries(engine_names | st.sampled_from(BLOCKED_SPELLINGS), verdicts, max_size=10)
NO_REVISIONS = ResultOptions(AvConfig(kw_score_revision_map={}, sig_score_revision_map={}))


def well_formed_report(engines: dict) -> dict:
    details = {name: {"scan_result_i": v["code"],
                      "threat_found": ("a variant of " if v["variant"] else "") + v["virus"]}
               for name, v in engines.items()}
    return {"scan_results": {"progress_percentage": 100, "scan_details": details},
            "process_info": {"progress_percentage": 100}}


@SETTINGS
@given(engines=engine_verdicts)
@example(engines={"ClamAV": {"code": 4, "virus": "", "variant": True},
                  "K7": {"code": 23, "virus": "", "variant": False},
                  "A PEX": {"code": 1, "virus": "X", "variant": False},
                  "Antiy - AVL": {"code": 2, "virus": "Y", "variant": True}})
@example(engines={"ESET": {"code": 0, "virus": "", "variant": False}})
@example(engines={"ESET": {"code": 10, "virus": "", "variant": False}})
def test_each_engine_of_a_well_formed_report_gives_what_the_contract_says(engines):
    built = build_result(well_formed_report(engines), None, NO_REVISIONS)
    kept = sorted((name, v) for name, v in engines.items() if name not in BLOCKED_SPELLINGS)
    hits = [(name, v) for name, v in kept if v["code"] in (1, 2, 4, 22)]
    clean = [name for name, v in kept if v["code"] == 0]
    expected = [
        (f"{name} identified the file as {v['virus']}" if v["virus"] else
         f"{name} flagged the file as {CONTRACT[v['code']][1]}", CONTRACT[v["code"]][0])
        for name, v in hits]
    shown = [(s.title_text, s.heuristic.heur_id) for s in all_sections(built.sections) if s.heuristic]
    assert shown == expected
    assert [s.heuristic.score for s in all_sections(built.sections) if s.heuristic] == [
        HEURISTIC_SCORES[heur] for _, heur in expected]
    assert [(p["engine_name"], p["category"], p["virus_name"]) for p in built.antivirus] == [
        (name, CONTRACT.get(v["code"], (None, None, "failure"))[2], v["virus"] if (name, v) in hits and v["virus"]
         else None) for name, v in kept]
    top = [s.title_text for s in built.sections]
    if hits:
        summary = f"{len(hits)}/{len(hits) + len(clean)} engines flagged the file"
        assert top == [TITLE_HITS] + ([TITLE_FAILS] if len(kept) > len(hits) else [])
        assert built.sections[0].subsections[-1].title_text == summary
    else:
        assert top == ([] if clean else [TITLE_NO_VERDICT]), "a clean file is quiet; nothing scanned is said"
    fails = [s for s in built.sections if s.title_text == TITLE_FAILS]
    for section in fails:
        listed = [s.title_text for s in section.subsections]
        failed = [f"{name} failed to scan the file" for name, v in kept if v["code"] not in (0, 1, 2, 4, 22)]
        assert listed == failed + ([TITLE_NO_THREAT] if clean else [])


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


def check_engine_map(engines: EngineMap, payload: list) -> None:
    """What holds for the map of any well-formed engine list."""
    assert re.fullmatch(r"Definition Time Range: (\S+ \S+|unknown) - (\S+ \S+|unknown)", engines.service_context())
    assert re.fullmatch(r"[0-9a-f]{32}", tool_version([engines.fingerprint()]))
    assert 0 <= engines.active_av_count <= len(payload)
    for info in engines.engines.values():
        info.name.encode("utf-8"), info.version.encode("utf-8")
        assert info.version != "None"


INACTIVE_PACKAGE = {"eng_name": "ClamAV", "eng_ver": "0.99", "engine_type": "av", "def_time": "", "active": False,
                    "state": "downloaded"}


@SETTINGS
@given(payload=engine_lists, md_version=st.sampled_from([3, 4]))
@example(payload=[{"eng_name": "X", "def_time": "9999-12-31T23:59:59-01:00", "engine_type": "av"}], md_version=4)
@example(payload=[{"eng_name": "Eng\udc80", "eng_ver": "1\ud800", "def_time": "\ud800"}], md_version=4)
@example(payload=[{"eng_name": " "}], md_version=4)
def test_any_engine_list_gives_a_map_or_the_services_own_error(payload, md_version):
    engines = read_engines(payload, md_version)
    if engines is not None:
        check_engine_map(engines, payload)
        # An inactive package Core downloads must not change the tool version (and so empty Assemblyline's cache).
        with_package = EngineMap.from_engine_list([*payload, INACTIVE_PACKAGE], md_version)
        assert tool_version([with_package.fingerprint()]) == tool_version([engines.fingerprint()])
    assert (engines is not None) is is_well_formed_engine_list(payload)


@SETTINGS
@given(names=st.lists(readable, min_size=1, max_size=8, unique_by=lambda n: n.lower().replace(" ", "")),
       changed=st.integers(0, 7))
def test_new_definitions_of_any_active_antivirus_engine_change_the_tool_version(names, changed):
    listed = [{"eng_name": name, "eng_ver": "1", "engine_type": "av", "def_time": "2026-11-26T06:00:00.000Z",
               "active": True, "state": "production"} for name in names]
    updated = [dict(item) for item in listed]
    updated[changed % len(names)]["def_time"] = "2026-11-27T06:00:00.000Z"
    before, after = (EngineMap.from_engine_list(payload, 4) for payload in (listed, updated))
    check_engine_map(after, updated)
    assert tool_version([after.fingerprint()]) != tool_version([before.fingerprint()])


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(virus=names, code=st.sampled_from([1, 2, 4, 22]))
def test_hundreds_of_engines_with_hostile_names(virus, code):
    count = 400  # fewer than the 500 engines a result lists
    details = {f"Engine {i} {virus[:50]}": {"scan_result_i": code if i % 3 else 0, "threat_found": f"{virus}.{i}"}
               for i in range(count)}
    report = {"scan_results": {"progress_percentage": 100, "scan_details": details}}
    engine_list = [{"eng_name": f"Engine {i} {virus[:50]}", "eng_ver": str(i), "engine_type": "av",
                    "def_time": "2024-03-11T06:00:00.000Z"} for i in range(count)]
    built = build_result(report, read_engines(engine_list, 4), OPTIONS)
    check_result_is_storable(built.sections)
    check_tags_are_accepted(built.sections)
    hits = [s for s in all_sections(built.sections) if s.heuristic is not None]
    assert len(hits) == len([k for k in details if details[k]["scan_result_i"]])
    assert len(validate_antivirus_parts(built.antivirus)) == count


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


MAX_PRODUCTS, MAX_CVES = 10, 100  # README: at most 100 CVE ids per product, 10 products


@settings(SETTINGS, max_examples=60)
@given(info=vulnerability_infos)
@example(info={"result": {"detected_product": {"product": {"name": "\ud800<b>x</b>\x00"}, "version": float("nan")},
                          "vulnerabilites": [{"details": {"cve": "cve-2021-44228\n"}}, {"cve": ["CVE-2021-1"]}]}})
@example(info={"result": [{"vulnerabilites": [{"details": {"cve": f"CVE-2020-{i:05}"}} for i in range(2000)]}]
               * (MAX_PRODUCTS + 2)})
def test_any_vulnerability_info_gives_a_bounded_informational_section(info):
    report = {"scan_results": {"progress_percentage": 100, "scan_details": {"ClamAV": {"scan_result_i": 1}}},
              "vulnerability_info": info}
    sections = build_result(report, None, OPTIONS).sections
    check_result_is_storable(sections)
    check_tags_are_accepted(sections)
    found = [s for s in sections if s.title_text == TITLE_VULNERABILITIES]
    assert len(found) <= 1
    for section in found:
        assert section.heuristic is None and 1 <= len(section.subsections) <= MAX_PRODUCTS
        for product in section.subsections:
            assert product.heuristic is None
            body = json.loads(product.body)
            assert isinstance(body["vulnerabilities"], int) and body["vulnerabilities"] >= 1
            assert len(body["cve"]) <= MAX_CVES and all(isinstance(cve, str) for cve in body["cve"])
            exploits = product.tags.get("attribution.exploit", [])
            assert all(CVE_TAG.fullmatch(cve) for cve in exploits)
            assert set(exploits) <= {cve.upper() for cve in body["cve"]}


@settings(SETTINGS, max_examples=30)
@given(products=st.lists(st.tuples(readable, readable, st.integers(0, 130)), max_size=13))
def test_every_listed_vulnerability_of_a_well_formed_report_is_shown_up_to_the_readmes_bounds(products):
    results = [{"detected_product": {"product": {"name": name}, "vendor": {"name": "Vendor"}, "version": version,
                                     "severity": "critical"},
                "vulnerabilites": [{"details": {"cve": f"CVE-2020-{10000 + i}"}} for i in range(count)]}
               for name, version, count in products]
    report = {"scan_results": {"progress_percentage": 100, "scan_details": {"ClamAV": {"scan_result_i": 0}}},
              "vulnerability_info": {"result": results}}
    sections = build_result(report, None, OPTIONS).sections
    listed = [(name, version, count) for name, version, count in products if count][:MAX_PRODUCTS]
    assert [s.title_text for s in sections] == ([TITLE_VULNERABILITIES] if listed else [])
    shown = sections[0].subsections if listed else []
    assert [s.title_text for s in shown] == [f"{name} {version}" for name, version, _ in listed]
    cves = [[f"CVE-2020-{10000 + i}" for i in range(min(count, MAX_CVES))] for _, _, count in listed]
    assert [json.loads(s.body)["vulnerabilities"] for s in shown] == [count for _, _, count in listed]
    assert [json.loads(s.body)["cve"] for s in shown] == cves
    assert [list(s.tags["attribution.exploit"]) for s in shown] == cves
