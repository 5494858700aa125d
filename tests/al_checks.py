"""Checks that results are what Assemblyline itself would accept: the framework's own path, then its ODM models."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid

from assemblyline.common.heuristics import HeuristicHandler
from assemblyline.common.isotime import now_as_iso
from assemblyline.odm.messages.task import Task as ServiceTask
from assemblyline.odm.models.ontology.results import Antivirus
from assemblyline.odm.models.result import Result as ODMResult
from assemblyline_v4_service.common.helper import get_heuristics
from assemblyline_v4_service.common.result import Result


def to_odm_result(doc: dict) -> ODMResult:
    """Turn a service result document into Assemblyline's stored `Result`, as run_service_once does."""
    doc = json.loads(json.dumps(doc, default=str))
    doc.pop("temp_submission_data", None)
    for file in doc["response"]["extracted"] + doc["response"]["supplementary"]:
        file.pop("path", None)
        file.pop("is_supplementary", None)
    heuristics = get_heuristics()
    total = 0
    for section in doc["result"]["sections"]:
        section.pop("zeroize_on_tag_safe", None)
        section.pop("zeroize_on_sig_safe", None)
        if section["heuristic"]:
            heur_id = section["heuristic"]["heur_id"]
            section["heuristic"], new_tags = HeuristicHandler().service_heuristic_to_result_heuristic(
                section["heuristic"], heuristics)
            for tag_type, value in new_tags:
                section["tags"].setdefault(tag_type, []).append(value)
            section["heuristic"]["name"] = heuristics[heur_id]["name"]
            total += section["heuristic"]["score"]
    doc["result"]["score"] = total
    doc.update(created=now_as_iso(), archive_ts=None, expiry_ts=now_as_iso(3600))
    return ODMResult(doc)


def validate_sections(sections) -> ODMResult:
    """Wrap service sections in a Result, finalize it and load it in Assemblyline's Result model."""
    result = Result()
    for section in sections:
        result.add_section(section)
    return to_odm_result({
        "classification": "TLP:C",
        "response": {"service_name": "MetaDefender", "service_version": "4.7.0.1", "service_tool_version": "x",
                     "supplementary": [], "extracted": [], "service_context": None, "service_debug_info": None,
                     "milestones": {"service_started": now_as_iso(), "service_completed": now_as_iso()}},
        "result": result.finalize(),
        "sha256": "0" * 64, "type": "unknown", "size": 1, "drop_file": False, "partial": False,
    })


def validate_antivirus_parts(parts: list[dict]) -> list[Antivirus]:
    return [Antivirus({**part, "objectid": {"tag": part["engine_name"], "ontology_id": f"antivirus_{i}"}})
            for i, part in enumerate(parts)]


def make_task(path: str, filename: str = "sample.bin", params: dict | None = None,
              temp_data: dict | None = None) -> ServiceTask:
    """A service task for the file at `path`, as the dispatcher would send it (with `temp_data` as the submission's
    temporary data)."""
    data = open(path, "rb").read()
    return ServiceTask({
        "sid": uuid.uuid4().hex[:22], "metadata": {}, "min_classification": "TLP:C",
        "fileinfo": {"magic": "data", "md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
                     "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "type": "unknown"},
        "filename": filename, "service_name": "MetaDefender", "service_config": params or {},
        "max_files": 50, "ttl": 1,
        "temporary_submission_data": [{"name": name, "value": value} for name, value in (temp_data or {}).items()],
    })


def run_task(service, path: str, tasking_dir: str, filename: str = "sample.bin", params: dict | None = None,
             temp_data: dict | None = None):
    """Run one task through the framework's handle_task; return ("result", odm Result, raw doc) or ("error", doc)."""
    os.makedirs(tasking_dir, exist_ok=True)
    previous = os.environ.get("TASKING_DIR")
    os.environ["TASKING_DIR"] = tasking_dir
    try:
        task = make_task(path, filename, params, temp_data)
        target = os.path.join(tasking_dir, task.fileinfo.sha256)
        if not os.path.exists(target):
            shutil.copyfile(path, target)
        service.handle_task(task)
    finally:
        if previous is None:
            os.environ.pop("TASKING_DIR", None)
        else:
            os.environ["TASKING_DIR"] = previous
    stem = os.path.join(tasking_dir, f"{task.sid}_{task.fileinfo.sha256}")
    if os.path.exists(stem + "_result.json"):
        doc = json.load(open(stem + "_result.json"))
        return "result", to_odm_result(doc), doc
    return "error", json.load(open(stem + "_error.json")), None
