"""The opt-in scoring options (heuristic names, minimum engines) and Core's vulnerability section.

Off (the defaults), every result is the one `test_report.py` checks against the contract; here each option is
switched on, with its edge cases. Results are loaded in Assemblyline's Result model and scores are Assemblyline's.
"""

from __future__ import annotations

import json

import pytest
from al_checks import validate_sections
from assemblyline_v4_service.common.result import Result
from test_report import (
    TITLE_FAILS,
    TITLE_HITS,
    TITLE_NO_THREAT,
    engine_map,
    hit_sections,
    kv_items,
    make_report,
    only_hit,
    result_of,
    section,
    titles,
    verdict,
    virus_tags,
)

from mdservice.config import AvConfig
from mdservice.report import ResultOptions, build_result

HEUR_KEYS = AvConfig(heuristic_name_keys=("HEUR:", "Heur.", "not-a-virus"))
SUMMARY_KEYS = ["engines_flagged", "engines_with_verdict", "engines_failed"]
# README: at most 100 CVE ids per product, 10 products.
MAX_CVES, MAX_PRODUCTS = 100, 10
TITLE_VULNERABILITIES = "Known Vulnerabilities in Detected Software"


def heuristic_tags(sec) -> list[str]:
    return list(sec.tags.av.heuristic) if sec.tags.av and sec.tags.av.heuristic else []


def summary(result):
    return next(s for s in result.sections if s.title_text.endswith(" engines flagged the file"))


def min_engines(count: int, **kwargs) -> AvConfig:
    return AvConfig(min_engines_to_score=count, **kwargs)


# --- heuristic_name_keys ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("virus", ["HEUR:Trojan.Win32.Generic", "heur:trojan.win32.generic", "Gen:Heur.Mint.1",
                                   "Toolbar.Ask (not-a-virus)"])
def test_infected_hit_with_a_heuristic_name_is_suspicious_and_tagged(virus):
    result = result_of(make_report({"ClamAV": verdict(1, virus)}), HEUR_KEYS)
    hit = only_hit(result)
    assert hit.heuristic.heur_id == "2"
    assert hit.heuristic.score == 500
    assert heuristic_tags(hit) == [virus]
    assert virus_tags(hit) == [virus]
    assert dict(kv_items(hit))["scan_result"] == "infected", "the body keeps what the engine said"
    assert result.score == 500


def test_heuristic_names_are_not_special_without_keys():
    hit = only_hit(result_of(make_report({"ClamAV": verdict(1, "HEUR:Trojan.Win32.Generic")})))
    assert hit.heuristic.heur_id == "1" and hit.heuristic.score == 1000
    assert heuristic_tags(hit) == []


def test_name_without_a_key_stays_infected_beside_a_heuristic_one():
    doc = make_report({"ClamAV": verdict(1, "Win.Trojan.Agent"), "ESET": verdict(1, "HEUR:Agent")})
    result = result_of(doc, HEUR_KEYS)
    hits = {s.title_text: s for s in hit_sections(result)}
    assert hits["ClamAV identified the file as Win.Trojan.Agent"].heuristic.heur_id == "1"
    assert heuristic_tags(hits["ClamAV identified the file as Win.Trojan.Agent"]) == []
    assert hits["ESET identified the file as HEUR:Agent"].heuristic.heur_id == "2"
    assert result.score == 1000 + 500


def test_suspicious_hit_with_a_heuristic_name_gets_the_tag():
    hit = only_hit(result_of(make_report({"K7": verdict(2, "HEUR:Riskware")}), HEUR_KEYS))
    assert hit.heuristic.heur_id == "2" and heuristic_tags(hit) == ["HEUR:Riskware"]


def test_hit_without_a_name_never_matches_a_key():
    hit = only_hit(result_of(make_report({"ClamAV": verdict(1, "")}), HEUR_KEYS))
    assert hit.heuristic.heur_id == "1" and hit.tags.av is None


@pytest.mark.parametrize(("av_config", "safelist", "score"), [
    (AvConfig(heuristic_name_keys=("HEUR:",), kw_score_revision_map={"trojan": 50}), (), 50),
    (AvConfig(heuristic_name_keys=("HEUR:",), sig_score_revision_map={"ClamAV.HEUR:Trojan.X": 7}), (), 7),
    (AvConfig(heuristic_name_keys=("HEUR:",)), ("HEUR:Trojan.X",), 0),
    (AvConfig(heuristic_name_keys=("HEUR:",), kw_score_revision_map={"adware": 100}), (), 500),
])
def test_score_revisions_apply_to_heuristic_hits(av_config, safelist, score):
    hit = only_hit(result_of(make_report({"ClamAV": verdict(1, "HEUR:Trojan.X")}), av_config, safelist))
    assert hit.heuristic.heur_id == "2"
    assert hit.heuristic.score == score


# --- min_engines_to_score -----------------------------------------------------------------------------------------

def test_fewer_engines_than_the_minimum_keep_their_sections_but_score_0():
    doc = make_report({"ClamAV": verdict(1, "Eicar"), "ESET": verdict(2, "Win32/Agent"), "Avira": verdict(0)})
    result = result_of(doc, min_engines(3))
    assert [title for _, title in titles(result)] == [
        TITLE_HITS, "ClamAV identified the file as Eicar", "ESET identified the file as Win32/Agent",
        "2/3 engines flagged the file", TITLE_FAILS, TITLE_NO_THREAT]
    assert [hit.heuristic.score for hit in hit_sections(result)] == [0, 0]
    assert result.score == 0
    assert virus_tags(section(result, "ClamAV identified the file as Eicar")) == ["Eicar"]
    note = dict(kv_items(summary(result)))["not_scored"]
    assert "2 engine(s)" in note and "3 required" in note and "min_engines_to_score" in note


def test_exactly_the_minimum_scores_as_usual():
    doc = make_report({"ClamAV": verdict(1, "Eicar"), "ESET": verdict(2, "Win32/Agent"), "K7": verdict(1, "Eicar")})
    result = result_of(doc, min_engines(3))
    assert result.score == 1000 + 500 + 1000
    assert [key for key, _ in kv_items(summary(result))] == SUMMARY_KEYS


def test_blocklisted_engines_do_not_count_toward_the_minimum():
    doc = make_report({"ClamAV": verdict(1, "Eicar"), "Antiy-AVL": verdict(1, "Trojan"), "APEX": verdict(1, "X")})
    result = result_of(doc, min_engines(2))
    assert [hit.title_text for hit in hit_sections(result)] == ["ClamAV identified the file as Eicar"]
    assert result.score == 0
    assert "1 engine(s)" in dict(kv_items(summary(result)))["not_scored"]


def test_safelisted_names_do_not_count_toward_the_minimum():
    doc = make_report({"ClamAV": verdict(1, "Eicar"), "ESET": verdict(1, "Win32/Agent")})
    assert result_of(doc, min_engines(2), safelist={"Eicar"}).score == 0
    assert result_of(doc, min_engines(2)).score == 2000


def test_hits_revised_to_0_do_not_count_but_a_signature_revision_over_the_safelist_does():
    doc = make_report({"ClamAV": verdict(1, "Eicar"), "ESET": verdict(1, "Win32/Agent")})
    zeroed = min_engines(2, sig_score_revision_map={"ESET.Win32/Agent": 0})
    assert result_of(doc, zeroed).score == 0
    revised = min_engines(2, sig_score_revision_map={"ClamAV.Eicar": 10})
    assert result_of(doc, revised, safelist={"Eicar"}).score == 10 + 1000


def test_minimum_of_1_keeps_a_negative_revision_and_adds_no_note():
    doc = make_report({"ClamAV": verdict(1, "Eicar")})
    result = result_of(doc, AvConfig(sig_score_revision_map={"ClamAV.Eicar": -50}))
    assert result.score == -50
    assert [key for key, _ in kv_items(summary(result))] == SUMMARY_KEYS


def test_minimum_and_heuristic_names_together():
    doc = make_report({"ClamAV": verdict(1, "HEUR:Trojan.X"), "ESET": verdict(1, "Win32/Agent")})
    result = result_of(doc, AvConfig(heuristic_name_keys=("HEUR:",), min_engines_to_score=2))
    assert [(h.heuristic.heur_id, h.heuristic.score) for h in hit_sections(result)] == [("2", 500), ("1", 1000)]


# --- Assemblyline's tag safelisting -------------------------------------------------------------------------------

def test_hit_sections_ask_assemblyline_to_zeroize_them_when_their_tags_are_safe():
    doc = make_report({"ClamAV": verdict(1, "Eicar"), "ESET": verdict(3), "Avira": verdict(0)})
    result = Result()
    for sec in build_result(doc, engine_map(), ResultOptions()).sections:
        result.add_section(sec)
    flags = {s["title_text"]: s["zeroize_on_tag_safe"] for s in result.finalize()["sections"]}
    assert flags["ClamAV identified the file as Eicar"] is True
    assert not any(flag for title, flag in flags.items() if title != "ClamAV identified the file as Eicar")


# --- vulnerability_info -------------------------------------------------------------------------------------------

def vulnerable(result_part: dict | list, details: dict | None = None) -> dict:
    doc = make_report(details or {"ClamAV": verdict(0)})
    doc["vulnerability_info"] = {"result": result_part}
    return doc


def product(name="Adobe Flash Player", version="20.0.0.235", severity="critical", cves=("CVE-2015-8459",),
            key="vulnerabilites") -> dict:
    """One result of `vulnerability_info` in the OpenAPI shape (whose spelling is `vulnerabilites`)."""
    return {"code": 0, "method": 50700,
            "detected_product": {"has_vulnerability": True, "product": {"id": 104, "name": name},
                                 "vendor": {"id": 91, "name": "Adobe Systems Inc."}, "version": version,
                                 "severity": severity},
            key: [{"severity": "CRITICAL", "details": {"cve": cve, "cwe": "CWE-119"}} for cve in cves]}


def exploit_tags(sec) -> list[str]:
    return list(sec.tags.attribution.exploit) if sec.tags.attribution and sec.tags.attribution.exploit else []


def test_vulnerable_product_is_an_informational_section_with_tagged_cves():
    doc = vulnerable(product(cves=("CVE-2015-8459", "CVE-2015-8460")))
    result = result_of(doc)
    assert titles(result) == [(0, TITLE_VULNERABILITIES), (1, "Adobe Flash Player 20.0.0.235")]
    assert kv_items(section(result, "Adobe Flash Player 20.0.0.235")) == [
        ("product", "Adobe Flash Player"), ("vendor", "Adobe Systems Inc."), ("version", "20.0.0.235"),
        ("severity", "critical"), ("vulnerabilities", 2), ("cve", ["CVE-2015-8459", "CVE-2015-8460"])]
    assert exploit_tags(section(result, "Adobe Flash Player 20.0.0.235")) == ["CVE-2015-8459", "CVE-2015-8460"]
    assert result.score == 0
    assert all(s.heuristic is None for s in result.sections)


def test_vulnerability_section_follows_the_av_and_cdr_sections():
    doc = vulnerable(product(), details={"ClamAV": verdict(1, "Eicar")})
    doc["process_info"] = {"progress_percentage": 100, "post_processing": {"actions_ran": "Sanitized"}}
    top = [title for depth, title in titles(result_of(doc)) if depth == 0]
    assert top == [TITLE_HITS, "CDR Successfully Executed", TITLE_VULNERABILITIES]


@pytest.mark.parametrize("info", [None, {}, {"result": {}}, {"result": {"code": 0}}, {"result": []},
                                  {"result": product(cves=())}, "none", [], {"result": {"vulnerabilites": "x"}}])
def test_no_vulnerability_section_without_listed_vulnerabilities(info):
    doc = make_report({"ClamAV": verdict(0)})
    if info is not None:
        doc["vulnerability_info"] = info
    assert titles(result_of(doc)) == []


def test_variations_real_cores_send_are_read_alike():
    doc = vulnerable([product(key="vulnerabilities"), product(name="7-Zip", version=19.0, severity="")])
    result = result_of(doc)
    assert [title for _, title in titles(result)] == [TITLE_VULNERABILITIES, "Adobe Flash Player 20.0.0.235",
                                                       "7-Zip 19.0"]
    assert dict(kv_items(section(result, "7-Zip 19.0")))["severity"] == "unknown"


def test_only_cve_ids_are_tagged_and_lower_case_ids_are_upper_cased():
    doc = vulnerable(product(cves=("cve-2021-44228", "OPSWAT-123", "CVE-21-1", "CVE-2015-8459", "CVE-2015-8459",
                                   "<script>x</script>")))
    sec = section(result_of(doc), "Adobe Flash Player 20.0.0.235")
    assert dict(kv_items(sec))["cve"] == ["CVE-2021-44228", "OPSWAT-123", "CVE-21-1", "CVE-2015-8459",
                                          "<script>x</script>"]
    assert exploit_tags(sec) == ["CVE-2021-44228", "CVE-2015-8459"]


def test_counts_and_lengths_are_bounded():
    cves = [f"CVE-2020-{10000 + i}" for i in range(5000)]
    doc = vulnerable([product(name="P" * 10_000, cves=cves) for _ in range(MAX_PRODUCTS + 5)])
    result = result_of(doc)
    products = [s for s in result.sections if s.depth == 1]
    assert len(products) == MAX_PRODUCTS
    body = json.loads(products[0].body)
    assert body["vulnerabilities"] == 5000
    assert body["cve"] == cves[:MAX_CVES] and exploit_tags(products[0]) == cves[:MAX_CVES]
    assert len(body["product"]) < 300 and len(products[0].title_text) < 400


def test_vulnerability_section_beside_hits_adds_no_score_and_keeps_both_kinds_of_tags():
    doc = vulnerable(product(), details={"ClamAV": verdict(1, "Eicar")})
    result = validate_sections(build_result(doc, None, ResultOptions()).sections).result
    assert [title for depth, title in titles(result) if depth == 0] == [TITLE_HITS, TITLE_VULNERABILITIES]
    assert result.score == 1000, "only the hit scores"
    assert virus_tags(section(result, "ClamAV identified the file as Eicar")) == ["Eicar"]
    assert exploit_tags(section(result, "Adobe Flash Player 20.0.0.235")) == ["CVE-2015-8459"]
