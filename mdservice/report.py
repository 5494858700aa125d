"""Turning a finished Core report into Assemblyline result sections and Antivirus ontology parts.

Pure: a decoded report, the scanning Core's `EngineMap`, the admin's `AvConfig` and the safelisted
virus names in; sections and ontology dicts out. Titles and bodies follow the behaviour contract
exactly, since analysts' habits and dashboards depend on them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice

from assemblyline.odm.base import construct_safe
from assemblyline.odm.models.tagging import Tagging
from assemblyline_v4_service.common.result import (
    Heuristic,
    ResultJSONSection,
    ResultKeyValueSection,
    ResultSection,
    ResultTextSection,
)

from mdservice.config import AvConfig
from mdservice.engines import UNKNOWN, EngineInfo, EngineMap, clean_text, format_time, parse_def_time

HEUR_INFECTED = 1
HEUR_SUSPICIOUS = 2
# scan_result_i -> (heuristic, scan_result text, ontology category) for the codes that are hits.
HIT_CODES = {
    1: (HEUR_INFECTED, "infected", "malicious"),
    4: (HEUR_INFECTED, "infected", "malicious"),
    2: (HEUR_SUSPICIOUS, "suspicious", "suspicious"),
    22: (HEUR_SUSPICIOUS, "suspicious", "suspicious"),
}
NO_THREAT = 0
UNSUPPORTED = 23
IN_PROGRESS = 255
# Core's documented result codes; any other code is shown with its number.
KNOWN_CODES = {
    0: "No threat detected", 1: "Infected", 2: "Suspicious", 3: "Failed", 4: "Cleaned / Deleted", 5: "Unknown",
    6: "Quarantined", 7: "Skipped clean", 8: "Skipped dirty", 9: "Exceeded archive depth", 10: "Not scanned",
    11: "Aborted", 12: "Encrypted archive", 13: "Exceeded archive size", 14: "Exceeded archive file number",
    15: "Password protected document", 16: "Exceeded archive timeout", 17: "File type mismatch",
    18: "Potentially vulnerable file", 19: "Canceled", 20: "Sensitive data found", 21: "Yara rule matched",
    22: "Potentially unwanted program", 23: "Unsupported file type",
}
VARIANT_PREFIX = "a variant of "
# Elasticsearch's `ignore_above` for Assemblyline keywords: a longer tag is kept but can never be searched.
MAX_TAG_CHARS = 8191
# Far beyond any real Core (about 30 engines), and small enough that Assemblyline's per-section tag merging stays
# fast and the total score stays within 2**31 - 1 with every hit revised to the config's bound of 1,000,000.
MAX_ENGINES_SHOWN = 500
MAX_MEMBERS_SHOWN = 100

TITLE_HITS = "AV Detections as Infected or Suspicious"
TITLE_FAILS = "Failed to Scan or No Threats Detected"
TITLE_NO_THREAT = "No Threat Detected by AV Engine(s)"
TITLE_NO_VERDICT = "No AV Engine Gave a Verdict"
TITLE_CDR_FAILED = "CDR Failed or No Malicious Files Found"
TITLE_CDR_DONE = "CDR Successfully Executed"
TITLE_STALE = "Outdated Antivirus Definitions"
TITLE_ARCHIVE = "Archive Members Flagged by AV Engines"
TITLE_NOT_SHOWN = "Engines Not Shown"
TITLE_VULNERABILITIES = "Known Vulnerabilities in Detected Software"
TITLE_OUTDATED = "Verdict Used Outdated Data"
# The kinds of `process_info.outdated_data` the OpenAPI spec documents, in plain words; others are shown as sent.
OUTDATED_WORDS = {
    "enginedefinitions": "antivirus engine definitions (an engine that scanned the file has newer ones now)",
    "configuration": "configuration (the scan rule, or something it uses, changed since the file was scanned)",
    "sanitization": "sanitization (the sanitized file of that scan may no longer be available)",
}
# The most entries of one list a Core sends (outdated_data, verdicts, blocked_reasons) that are shown.
MAX_LISTED = 10
# Bounds for the vulnerability part of a report: what an analyst can read, whatever a Core sends.
MAX_PRODUCTS = 10
MAX_CVES = 100
MAX_FIELD_CHARS = 200
CVE_ID = re.compile(r"CVE-\d{4}-\d{4,12}", re.IGNORECASE)


@dataclass(frozen=True)
class EngineOutcome:
    """What one engine said about the file; `def_time` is the report's own for this engine, else the engine list's.

    `virus` is the threat name of a hit, empty for every other outcome: a failed engine's `threat_found` holds its
    error text, which must never pass for a virus name.
    """

    name: str
    code: int | None
    virus: str
    engine: EngineInfo | None
    def_time: datetime | None = None

    @property
    def version(self) -> str:
        return self.engine.version if self.engine else ""

    @property
    def def_time_text(self) -> str:
        return format_time(self.def_time)

    @property
    def signature(self) -> str:
        """The heuristic signature of a hit: `<engine>.<virus>`."""
        return f"{self.name}.{self.virus}"

    @property
    def is_hit(self) -> bool:
        return self.code in HIT_CODES

    @property
    def is_clean(self) -> bool:
        return self.code == NO_THREAT

    @property
    def category(self) -> str:
        if self.is_hit:
            return HIT_CODES[self.code][2]
        if self.is_clean:
            return "undetected"
        return "type-unsupported" if self.code == UNSUPPORTED else "failure"


def is_finished(report: dict) -> bool:
    """True when Core is done with the file: every progress the report carries (`process_info`, `scan_results`,
    each archive member) is 100, at least one of the first two is there, and no engine is still in progress (255).

    Old Cores' in-progress reports can look clean (code 0, no engines yet): only the progress tells them apart.
    """
    parts = [report_part(report, key) for key in ("process_info", "scan_results")]
    progresses = [part["progress_percentage"] for part in parts if "progress_percentage" in part]
    members = [m["progress_percentage"] for m in archive_members(report) if "progress_percentage" in m]
    return bool(progresses) and all(_is_complete(p) for p in progresses + members) and not _engine_in_progress(report)


def foreign_report(report: dict, data_id: str, sha256: str) -> str | None:
    """Why `report` is not the report of this upload, else None: its `data_id`, or its `file_info.sha256` when it
    has one (and `sha256` is known), is another. A Core that answers with another file's report is faulty."""
    theirs = report.get("data_id") if isinstance(report, dict) else None
    if theirs is not None and theirs != data_id:
        return f"the report is for data id {_excerpt(theirs)}, not {data_id}"
    their_sha256 = report_part(report, "file_info").get("sha256")
    if sha256 and their_sha256 not in (None, "") and not (
            isinstance(their_sha256, str) and their_sha256.lower() == sha256.lower()):
        return f"the report is for a file with SHA-256 {_excerpt(their_sha256)}, not {sha256}"
    return None


def overall_result(report: dict) -> int | None:
    """Core's overall result code of the scan (`scan_results.scan_all_result_i`), None when unreadable."""
    return _result_code(report_part(report, "scan_results").get("scan_all_result_i"))


def progress_of(report: dict) -> float | None:
    """The progress (0-100) the report shows, None for a queued document that has no (readable) progress yet."""
    for part in ("process_info", "scan_results"):
        value = _finite(report_part(report, part).get("progress_percentage"))
        if value is not None:
            return min(max(value, 0.0), 100.0)
    return None


def queue_seconds(report: dict) -> float:
    """How long the file waited in Core's queue before its scan began (`process_info.queue_time`, ms); 0 when the
    report does not say (older Cores) or says something unusable."""
    value = _finite(report_part(report, "process_info").get("queue_time"))
    return value / 1000 if value is not None and value > 0 else 0.0


def scan_seconds(report: dict) -> float | None:
    """How long Core worked on the file (`process_info.processing_time`, ms); None when the report does not say (older
    Cores) or says something unusable."""
    value = _finite(report_part(report, "process_info").get("processing_time"))
    return value / 1000 if value is not None and value >= 0 else None


def engine_outcomes(report: dict, engines: EngineMap | None, av_config: AvConfig) -> list[EngineOutcome]:
    """Every engine of `scan_results.scan_details` that is not blocklisted, in engine-name order."""
    details = report_part(report, "scan_results").get("scan_details")
    if not isinstance(details, dict):
        return []
    outcomes = []
    for name, entry in sorted(details.items()):
        if not isinstance(name, str) or not name.strip() or av_config.is_blocked(name):
            continue
        entry = entry if isinstance(entry, dict) else {}
        code = _result_code(entry.get("scan_result_i"))
        threat = entry.get("threat_found") if code in HIT_CODES else ""
        engine = engines.lookup(name) if engines else None
        scanned_with = parse_def_time(entry.get("def_time"), engines.md_version if engines else 4)
        outcomes.append(EngineOutcome(
            name=clean_text(name),
            code=code,
            virus=clean_text(threat).replace(VARIANT_PREFIX, "").strip(),
            engine=engine,
            def_time=scanned_with or (engine.def_time if engine else None),
        ))
    return outcomes


def shown_outcomes(outcomes: list[EngineOutcome]) -> list[EngineOutcome]:
    """At most MAX_ENGINES_SHOWN of `outcomes`, hits before the others, each kept in its engine-name order."""
    if len(outcomes) <= MAX_ENGINES_SHOWN:
        return outcomes
    chosen = sorted(range(len(outcomes)), key=lambda i: not outcomes[i].is_hit)[:MAX_ENGINES_SHOWN]
    return [outcomes[i] for i in sorted(chosen)]


def signature_score(signature: str, virus: str, av_config: AvConfig, safelist: frozenset[str]) -> int | None:
    """A hit's revised score: signature map, then safelist (0), then the highest keyword; None keeps the heuristic's."""
    if signature in av_config.sig_score_revision_map:
        return av_config.sig_score_revision_map[signature]
    if virus and virus in safelist:
        return 0
    lowered = signature.lower()
    keyword_scores = [score for kw, score in av_config.kw_score_revision_map.items() if kw.lower() in lowered]
    return max(keyword_scores) if keyword_scores else None


class AvHitSection(ResultKeyValueSection):
    """One engine that found the file infected or suspicious.

    A virus name with one of `heuristic_name_keys` makes the hit suspicious (heuristic 2) and is also tagged
    `av.heuristic`. `zeroize_on_tag_safe` lets Assemblyline's own tag safelist zero the hit's score.
    """

    def __init__(self, outcome: EngineOutcome, score: int | None, heuristic_name: bool):
        heur_id, scan_result, _ = HIT_CODES[outcome.code]
        title = (f"{outcome.name} identified the file as {outcome.virus}" if outcome.virus
                 else f"{outcome.name} flagged the file as {scan_result}")
        super().__init__(title, body={
            "av_name": outcome.name,
            "virus_name": outcome.virus,
            "scan_result": scan_result,
            "engine_version": outcome.version or UNKNOWN,
            "engine_definition_time": outcome.def_time_text,
        }, zeroize_on_tag_safe=True)
        score_map = {outcome.signature: score} if score is not None else None
        heur_id = HEUR_SUSPICIOUS if heuristic_name else heur_id
        self.set_heuristic(Heuristic(heur_id, signature=outcome.signature, score_map=score_map))
        if is_taggable(outcome.virus):
            self.add_tag("av.virus_name", outcome.virus)
            if heuristic_name:
                self.add_tag("av.heuristic", outcome.virus)


def is_taggable(virus: str) -> bool:
    """True when `virus` makes a searchable `av.virus_name` tag that Assemblyline's Tagging model keeps.

    Empty, control-character and overlong names are only shown in the section, never tagged.
    """
    if not virus or len(virus) > MAX_TAG_CHARS or not virus.isprintable():
        return False
    _, dropped = construct_safe(Tagging, {"av": {"virus_name": [virus]}})
    return not dropped


class AvErrorSection(ResultTextSection):
    """One engine that failed to scan the file (or answered with a code this service does not know)."""

    def __init__(self, outcome: EngineOutcome):
        super().__init__(f"{outcome.name} failed to scan the file")
        if outcome.engine or outcome.def_time:
            self.add_line(f"Engine: {outcome.version or UNKNOWN} :: Definition: {outcome.def_time_text}")
        if outcome.code not in KNOWN_CODES:
            self.add_line(f"Result code: {outcome.code if outcome.code is not None else 'unreadable'}")


class EngineSummarySection(ResultKeyValueSection):
    """How many of the engines that gave a verdict flagged the file, Core's own verdict (`core_verdict`), and why
    the hits score 0 when too few count."""

    def __init__(self, outcomes: list[EngineOutcome], av_config: AvConfig, scoring_hits: int,
                 verdict: dict[str, str | list[str]]):
        flagged = sum(1 for o in outcomes if o.is_hit)
        with_verdict = sum(1 for o in outcomes if o.is_hit or o.is_clean)
        super().__init__(f"{flagged}/{with_verdict} engines flagged the file", body={
            "engines_flagged": flagged,
            "engines_with_verdict": with_verdict,
            "engines_failed": len(outcomes) - with_verdict,
            **verdict,
        })
        if not av_config.enough_engines(scoring_hits):
            self.set_item("not_scored", f"every hit scores 0: {scoring_hits} engine(s) flagged the file with a "
                                        f"score above 0, fewer than the {av_config.min_engines_to_score} required "
                                        "(av_config.min_engines_to_score)")


class NoVerdictSection(ResultTextSection):
    """Nothing scanned the file: the result must not pass for a clean one."""

    def __init__(self, outcomes: list[EngineOutcome]):
        super().__init__(TITLE_NO_VERDICT)
        self.add_line("No antivirus engine gave a verdict on this file, so this result says nothing about "
                      "whether it is malicious.")
        for outcome in outcomes:
            code = outcome.code if outcome.code is not None else "unreadable"
            self.add_line(f"{outcome.name}: {KNOWN_CODES.get(outcome.code, 'Unknown result')} ({code})")


class NotShownSection(ResultTextSection):
    """The engines left out by `shown_outcomes`, in one line."""

    def __init__(self, outcomes: list[EngineOutcome], shown: list[EngineOutcome]):
        super().__init__(TITLE_NOT_SHOWN)
        listed = {id(o) for o in shown}
        left = [o for o in outcomes if id(o) not in listed]
        flagged, clean = sum(1 for o in left if o.is_hit), sum(1 for o in left if o.is_clean)
        self.add_line(f"{len(left)} more engines are not listed ({flagged} flagged the file, {clean} found nothing, "
                      f"{len(left) - flagged - clean} failed); only {len(shown)} of the {len(outcomes)} engines "
                      f"in Core's report are shown.")


def av_sections(outcomes: list[EngineOutcome], shown: list[EngineOutcome], av_config: AvConfig,
                safelist: frozenset[str], verdict: dict[str, str | list[str]]) -> list[ResultSection]:
    """The AV part of the result: hits (with failures and clean engines beside them), or a no-verdict warning.

    At most MAX_ENGINES_SHOWN engines are listed (hits first), the rest summed up in one line; the engine
    summary counts them all and shows Core's own `verdict`.
    """
    not_shown = [NotShownSection(outcomes, shown)] if len(shown) < len(outcomes) else []
    hits = [o for o in shown if o.is_hit]
    failures = [o for o in shown if not o.is_hit and not o.is_clean]
    clean = [o.name for o in shown if o.is_clean]
    if not hits:
        return not_shown if clean else [NoVerdictSection(shown), *not_shown]
    sections = [hits_section(hits, outcomes, av_config, safelist, verdict)]
    if failures or clean:
        fail_section = ResultSection(TITLE_FAILS)
        for outcome in failures:
            fail_section.add_subsection(AvErrorSection(outcome))
        if clean:
            fail_section.add_subsection(ResultKeyValueSection(TITLE_NO_THREAT, body={"no_threat_detected": clean}))
        sections.append(fail_section)
    return sections + not_shown


def archive_members(report: dict) -> list[dict]:
    """The entries of `extracted_files.files_in_archive` that are JSON objects."""
    members = report_part(report, "extracted_files").get("files_in_archive")
    return [member for member in members if isinstance(member, dict)] if isinstance(members, list) else []


def archive_section(report: dict) -> ResultSection | None:
    """The archive members Core flagged (informational, no score): path, verdict, engines; None when none was."""
    flagged = [member for member in archive_members(report) if _member_flagged(member)]
    if not flagged:
        return None
    section = ResultTextSection(TITLE_ARCHIVE)
    section.add_line("Core flagged these files inside the archive (path in the archive: verdict):")
    section.add_lines([_member_line(member) for member in flagged[:MAX_MEMBERS_SHOWN]])
    if len(flagged) > MAX_MEMBERS_SHOWN:
        section.add_line(f"... and {len(flagged) - MAX_MEMBERS_SHOWN} more flagged files, not listed")
    return section


def _member_flagged(member: dict) -> bool:
    return _result_code(member.get("scan_all_result_i")) in HIT_CODES or (_count(member.get("detected_by")) or 0) > 0


def _member_line(member: dict) -> str:
    path = " ".join(clean_text(member.get("display_name")).splitlines()) or "(no name)"
    code = _result_code(member.get("scan_all_result_i"))
    verdict = KNOWN_CODES.get(code, "Unknown result" if code is None else f"Result code {code}")
    detected, scanned = _count(member.get("detected_by")), _count(member.get("scanned_with"))
    if detected is None:
        return f"{path}: {verdict}"
    if scanned is None:
        return f"{path}: {verdict}, flagged by {detected} engine{'' if detected == 1 else 's'}"
    return f"{path}: {verdict}, flagged by {detected} of {scanned} engines"


def hits_section(hits: list[EngineOutcome], outcomes: list[EngineOutcome], av_config: AvConfig,
                 safelist: frozenset[str], verdict: dict[str, str | list[str]]) -> ResultSection:
    """`AV Detections as Infected or Suspicious`: one subsection per hit, then the engine summary (with `verdict`).

    Only hits whose revised score is above 0 count toward `min_engines_to_score` (a safelisted name never pushes
    the file over it); below it every hit is kept but scores 0.
    """
    scores = [signature_score(o.signature, o.virus, av_config, safelist) for o in hits]
    scoring_hits = sum(1 for score in scores if score is None or score > 0)
    if not av_config.enough_engines(scoring_hits):
        scores = [0] * len(hits)
    section = ResultSection(TITLE_HITS)
    for outcome, score in zip(hits, scores, strict=True):
        section.add_subsection(AvHitSection(outcome, score, av_config.is_heuristic_name(outcome.virus)))
    section.add_subsection(EngineSummarySection(outcomes, av_config, scoring_hits, verdict))
    return section


def cdr_section(report: dict) -> ResultSection | None:
    """The post-processing (Deep CDR) section, only once `process_info` reached 100."""
    process_info = report_part(report, "process_info")
    if process_info.get("progress_percentage") != 100:
        return None
    post = process_info.get("post_processing")
    if not isinstance(post, dict):
        return None
    if post.get("actions_failed"):
        return ResultSection(TITLE_CDR_FAILED)
    if post.get("actions_ran"):
        section = ResultJSONSection(TITLE_CDR_DONE)
        # NaN / Infinity (which Python's JSON reader accepts) become text: Assemblyline refuses them in a body.
        section.set_json(json.loads(json.dumps(post, default=str), parse_constant=str))
        return section
    return None


def sanitized_ran(report: dict) -> bool:
    """True when Core's finished post-processing produced a sanitized file."""
    post = report_part(report, "process_info").get("post_processing")
    actions = post.get("actions_ran") if isinstance(post, dict) else None
    return is_finished(report) and isinstance(actions, str) and "sanitized" in actions.lower()


@dataclass(frozen=True)
class ResultOptions:
    """What besides the report decides the result: the admin's settings, the safelist and the time now."""

    av_config: AvConfig = field(default_factory=AvConfig)
    safelist: frozenset[str] = frozenset()
    stale_definition_days: float = 0.0
    now: datetime | None = None


@dataclass(frozen=True)
class ReportResult:
    """Everything a finished report gives: sections in the contract's order, Antivirus parts, the CDR section."""

    sections: list[ResultSection]
    antivirus: list[dict]
    cdr: ResultSection | None


def build_result(report: dict, engines: EngineMap | None, options: ResultOptions) -> ReportResult:
    """The whole result of a finished report: AV hits, failures / clean, CDR, outdated data and definitions.

    Pure text from Core is shown as it is: a report that may echo the API key must be masked first.
    """
    outcomes = engine_outcomes(report, engines, options.av_config)
    shown = shown_outcomes(outcomes)
    sections = av_sections(outcomes, shown, options.av_config, options.safelist, core_verdict(report))
    archive = archive_section(report)
    if archive:
        sections.insert(1, archive)  # right after the hits (or the no-verdict warning), first when there is neither
    cdr = cdr_section(report)
    stale = stale_section(engines, options)
    extras = (cdr, vulnerability_section(report), outdated_section(report), stale)
    sections += [section for section in extras if section]
    return ReportResult(sections, antivirus_parts(shown), cdr)


def core_verdict(report: dict) -> dict[str, str | list[str]]:
    """Core's own verdict from `process_info`, as summary keys: `core_result` ("Blocked", "Allowed"),
    `core_blocked_reason`, and Core 5's lists `core_verdicts` and `core_blocked_reasons`; each only when present
    and readable, as bounded, cleaned text."""
    info = report_part(report, "process_info")
    verdict = {
        "core_result": _text(info.get("result")),
        "core_blocked_reason": _text(info.get("blocked_reason")),
        "core_verdicts": _fields(info.get("verdicts")),
        "core_blocked_reasons": _fields(info.get("blocked_reasons")),
    }
    return {key: value for key, value in verdict.items() if value}


def outdated_kinds(report: dict) -> list[str]:
    """The kinds of data Core says this result is based on an outdated copy of (`process_info.outdated_data`, e.g.
    `["enginedefinitions"]`), cleaned and bounded like other Core text; [] when none or unreadable."""
    return _fields(report_part(report, "process_info").get("outdated_data"))


def outdated_section(report: dict) -> ResultSection | None:
    """Informational (no score): the kinds of outdated data the verdict used, in plain words where known."""
    kinds = outdated_kinds(report)
    if not kinds:
        return None
    section = ResultTextSection(TITLE_OUTDATED)
    section.add_line("MetaDefender Core says this verdict was reached with outdated data, so a new scan may "
                     "give another verdict:")
    section.add_lines([f"- {OUTDATED_WORDS.get(kind.lower(), kind)}" for kind in kinds])
    return section


def stale_section(engines: EngineMap | None, options: ResultOptions) -> ResultSection | None:
    """Engines (not blocklisted) whose definitions are older than `stale_definition_days` (0: not checked)."""
    days = options.stale_definition_days
    if engines is None or not days:
        return None
    now = options.now or datetime.now(UTC)
    stale = [e for e in engines.stale_engines(now, days) if not options.av_config.is_blocked(e.name)]
    if not stale:
        return None
    section = ResultTextSection(TITLE_STALE)
    section.add_line(f"These engines' definitions are older than {days:g} days, so they may miss recent threats:")
    section.add_lines([f"{e.name}: {e.def_time_text}" for e in stale])
    return section


def vulnerability_section(report: dict) -> ResultSection | None:
    """Informational (no score): each product Core's vulnerability engine found with its CVEs, CVE ids tagged.

    `vulnerability_info.result` is one object in the OpenAPI spec; a list of them, or the correctly spelled
    `vulnerabilities`, is read the same. Only products with at least one listed vulnerability are shown.
    """
    products = list(islice(filter(None, map(_vulnerable_product, _vulnerability_results(report))), MAX_PRODUCTS))
    if not products:
        return None
    section = ResultTextSection(TITLE_VULNERABILITIES)
    section.add_line("MetaDefender Core's vulnerability engine recognised this file as a product version with "
                     "known vulnerabilities.")
    for title, body, cves in products:
        product = ResultKeyValueSection(title, body=body, parent=section)
        for cve in cves:
            product.add_tag("attribution.exploit", cve)
    return section


def _vulnerability_results(report: dict) -> list[dict]:
    """The result objects of `vulnerability_info`, however a Core nests them (one object or a list)."""
    info = report.get("vulnerability_info") if isinstance(report, dict) else None
    results = info.get("result", info) if isinstance(info, dict) else info
    results = results if isinstance(results, list) else [results]
    return [r for r in results if isinstance(r, dict)]


def _vulnerable_product(result: dict) -> tuple[str, dict, list[str]] | None:
    """(title, KEY_VALUE body, CVE ids to tag) of one vulnerability result, None when it lists no vulnerability."""
    listed = result.get("vulnerabilites", result.get("vulnerabilities"))
    entries = [entry for entry in listed if isinstance(entry, dict)] if isinstance(listed, list) else []
    if not entries:
        return None
    detected = report_part(result, "detected_product")
    name = _field(report_part(detected, "product").get("name")) or _field(detected.get("sig_name")) or UNKNOWN
    version = _field(detected.get("version")) or UNKNOWN
    ids = list(dict.fromkeys(cve for cve in map(_cve_of, entries[:MAX_CVES * 10]) if cve))
    body = {"product": name, "vendor": _field(report_part(detected, "vendor").get("name")) or UNKNOWN,
            "version": version, "severity": _field(detected.get("severity")) or UNKNOWN,
            "vulnerabilities": len(entries), "cve": ids[:MAX_CVES]}
    tagged = [cve for cve in ids[:MAX_CVES] if CVE_ID.fullmatch(cve)]
    return f"{name} {version}", body, tagged


def _cve_of(entry: dict) -> str:
    """The CVE id of one listed vulnerability (`details.cve`, or `cve` beside it), upper-cased when it is one."""
    value = _field(report_part(entry, "details").get("cve")) or _field(entry.get("cve"))
    return value.upper() if CVE_ID.fullmatch(value) else value


def _field(value) -> str:
    """A text field of the vulnerability part as safe, bounded text; numbers (a version) become text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    text = "".join(ch for ch in " ".join(clean_text(value).split()) if ch.isprintable())
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + "..."


def _fields(value) -> list[str]:
    """A JSON list of texts as at most MAX_LISTED distinct `_field` texts (empty and non-text entries left out)."""
    entries = value[:MAX_LISTED * 10] if isinstance(value, list) else []
    return list(dict.fromkeys(text for text in map(_text, entries) if text))[:MAX_LISTED]


def _text(value) -> str:
    """A text Core sent as `_field` text; "" for anything that is not text."""
    return _field(value) if isinstance(value, str) else ""


def antivirus_parts(outcomes: list[EngineOutcome]) -> list[dict]:
    """One Assemblyline `Antivirus` ontology part per engine outcome."""
    return [{
        "engine_name": o.name,
        "engine_version": o.version or None,
        "engine_definition_version": o.def_time_text if o.def_time else None,
        "virus_name": o.virus if o.is_hit and o.virus else None,
        "category": o.category,
    } for o in outcomes]


def report_part(report, key: str) -> dict:
    """`report[key]` when both are JSON objects, else an empty dict: a hostile report cannot crash the reading."""
    value = report.get(key) if isinstance(report, dict) else None
    return value if isinstance(value, dict) else {}


def _engine_in_progress(report: dict) -> bool:
    engines = report_part(report, "scan_results").get("scan_details")
    entries = engines.values() if isinstance(engines, dict) else []
    return any(isinstance(entry, dict) and _result_code(entry.get("scan_result_i")) == IN_PROGRESS for entry in entries)


def _is_complete(progress) -> bool:
    return progress == 100 and not isinstance(progress, bool)


def _finite(value) -> float | None:
    """A finite JSON number as a float, else None (booleans are not numbers here)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _count(value) -> int | None:
    """A non-negative JSON integer, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _excerpt(value) -> str:
    """A bounded, printable rendering of a value a Core sent, for error messages."""
    return repr(value)[:80]


def _result_code(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
