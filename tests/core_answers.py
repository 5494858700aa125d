"""Answers a MetaDefender Core gives, for tests that mock Core at the HTTP level."""

import re

CLAMAV_ONLY = [{"eng_name": "ClamAV", "eng_ver": "1.0.1", "engine_type": "av", "def_time": "2026-11-26T11:08:00.000Z",
                "active": True, "state": "production"}]


def finished_report(details: dict, actions_ran: str = "", data_id: str = "d1") -> dict:
    """A v4 report whose scanning and post-processing are both done."""
    return {"data_id": data_id, "scan_results": {"progress_percentage": 100, "scan_details": details},
            "process_info": {"progress_percentage": 100,
                             "post_processing": {"actions_ran": actions_ran, "actions_failed": ""}}}


CLAMAV_EICAR = {"ClamAV": {"scan_result_i": 1, "threat_found": "Eicar-Test-Signature"}}


def mock_core(requests_mock, base: str, engines: list, report: dict):
    """Answer as one Core 4 at `base` would: its engines, an upload as data id d1, `report` for it, a cancel, and
    404 for what only newer Cores offer (readyz, file/rules) and for hash look-ups (no earlier scan)."""
    requests_mock.get(base + "stat/engines", json=engines)
    requests_mock.get(base + "readyz", status_code=404, json={"err": "Not found"})
    requests_mock.get(base + "file/rules", status_code=404, json={"rules": "Not Found"})
    requests_mock.get(re.compile(re.escape(base) + "hash/.*"), status_code=404, json={"HASH": "Not Found"})
    requests_mock.post(base + "file", json={"data_id": "d1"})
    requests_mock.get(base + "file/d1", json=report)
    requests_mock.post(base + "file/d1/cancel", json={})
    return requests_mock
