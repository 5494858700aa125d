"""Emulator responses validated against OPSWAT's OpenAPI description of Core v4.

The description lives outside the repository (../shared/reference/...); without it these
tests skip. Its $refs point across files and are resolved here with pyyaml.
"""

from pathlib import Path

import pytest
import yaml

from mdcore_emulator import CDR, EICAR, MIXED, Emulator

jsonschema = pytest.importorskip("jsonschema")

OPENAPI = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "metadefender-core-openapi" / "openapi"
pytestmark = pytest.mark.skipif(not OPENAPI.is_dir(), reason=f"OpenAPI description not found at {OPENAPI}")


def _resolve(node, base: Path):
    """`node` with every {"$ref": "relative/file.yaml"} replaced by that file's (resolved) content."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = (base / node["$ref"]).resolve()
            return _resolve(yaml.safe_load(target.read_text()), target.parent)
        return {key: _resolve(value, base) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, base) for item in node]
    return node


def _with_errata(schema):
    """The spec's result-text enum lists "Threat Detected" where its own table (and every Core)
    says "No Threat Detected" for code 0: accept the documented text as well."""
    if isinstance(schema, dict):
        schema = {key: _with_errata(value) for key, value in schema.items()}
        if "Threat Detected" in schema.get("enum", []):
            schema["enum"] = [*schema["enum"], "No Threat Detected"]
        return schema
    if isinstance(schema, list):
        return [_with_errata(item) for item in schema]
    return schema


def response_schema(path_file: str, method: str, status: int) -> dict:
    """The JSON schema of one documented response, e.g. ("file@{data_id}.yaml", "get", 200)."""
    source = OPENAPI / "paths" / path_file
    operation = yaml.safe_load(source.read_text())[method]
    response = _resolve(operation["responses"][str(status)], source.parent)
    return _with_errata(response["content"]["application/json"]["schema"])


def check(response, path_file: str, method: str, status: int | None = None) -> None:
    """Assert the HTTP status and that the JSON body matches the documented schema for it."""
    status = status or response.status_code
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    jsonschema.Draft4Validator(response_schema(path_file, method, status)).validate(response.json())


@pytest.fixture(scope="module")
def core(client):
    with Emulator(scan_seconds=0.3) as emulator:
        yield client(emulator.urls[0]), emulator.nodes[0]


def test_engines_version_and_nodes(core):
    api, node = core
    check(api.get("stat/engines"), "stat@engines.yaml", "get", 200)
    check(api.get("version"), "version.yaml", "get", 200)
    check(api.get("stat/nodes"), "stat@nodes.yaml", "get", 200)
    node.set_fault("bad_key")
    try:
        check(api.get("stat/nodes"), "stat@nodes.yaml", "get", 403)
        check(api.upload(b"x"), "file.yaml", "post", 403)
    finally:
        node.clear_fault("bad_key")


def test_uploads_and_upload_errors(start_emulator, client):
    api = client(start_emulator(scan_seconds=1, queue_limit=1).urls[0])
    for content in (b"scanning", b"queued"):
        check(api.upload(content), "file.yaml", "post", 200)
    check(api.upload(b"refused"), "file.yaml", "post", 503)
    check(api.upload(b""), "file.yaml", "post", 422)
    check(api.post("file", data=iter([b"chunked"])), "file.yaml", "post", 411)


@pytest.mark.parametrize("content", [b"clean", EICAR.encode(), MIXED.encode(), CDR.encode()])
def test_reports_queued_scanning_and_finished(on_hand_clock, client, content):
    emulator, clock = on_hand_clock(scan_seconds=0.3)
    api = client(emulator.urls[0])
    data_id = api.submit(b"ahead of the others " + content)
    queued = api.submit(content)
    report = api.report(queued)
    assert "scan_results" not in report
    check(api.get(f"file/{queued}"), "file@{data_id}.yaml", "get", 200)
    clock.sleep(0.1)
    scanning = api.get(f"file/{data_id}")
    assert 0 < scanning.json()["process_info"]["progress_percentage"] < 100
    check(scanning, "file@{data_id}.yaml", "get", 200)
    clock.sleep(1.0)  # both scans and their Deep CDR are done
    finished = api.get(f"file/{queued}")
    assert finished.json()["process_info"]["progress_percentage"] == 100
    check(finished, "file@{data_id}.yaml", "get", 200)


def test_cancel_converted_and_errors(core):
    api, node = core
    data_id = api.submit(b"to cancel")
    check(api.post(f"file/{data_id}/cancel"), "file@{data_id}@cancel.yaml", "post", 200)
    check(api.get(f"file/{data_id}"), "file@{data_id}.yaml", "get", 200)
    check(api.post("file/unknown/cancel"), "file@{data_id}@cancel.yaml", "post", 404)
    check(api.get(f"file/{data_id}/cancel"), "file@{data_id}@cancel.yaml", "post", 405)
    check(api.get(f"file/converted/{data_id}"), "file@converted@{data_id}.yaml", "get", 404)
    node.set_fault("result_500")
    try:
        check(api.get(f"file/{data_id}"), "file@{data_id}.yaml", "get", 500)
    finally:
        node.clear_fault("result_500")


def test_the_schemas_are_not_vacuous():
    report = response_schema("file@{data_id}.yaml", "get", 200)
    for broken in (
        {"scan_results": {"progress_percentage": "100"}},
        {"scan_results": {"scan_all_result_i": 42}},
        {"process_info": {"post_processing": {"actions_ran": None}}},
        {"file_info": {"file_size": 1.5}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft4Validator(report).validate(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(response_schema("stat@engines.yaml", "get", 200)).validate([{"state": "fine"}])


def test_core_5_rules_and_nodes(client):
    with Emulator(scan_seconds=0.05, core_version=5, rules={"File scan": 2**20, "Strict": 1024}) as emulator:
        api = client(emulator.urls[0])
        check(api.get("file/rules"), "file@rules.yaml", "get", 200)
        check(api.get("stat/nodes"), "stat@nodes.yaml", "get", 200)
        data_id = api.submit(EICAR.encode())
        api.wait(data_id)
        check(api.get(f"file/{data_id}"), "file@{data_id}.yaml", "get", 200)
