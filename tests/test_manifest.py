"""service_manifest.yml: loads in Assemblyline's own models and keeps the facts of the behaviour contract."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from assemblyline.odm.models.heuristic import Heuristic
from assemblyline.odm.models.service import Service

from mdservice.config import parse_config

MANIFEST_PATH = pathlib.Path(__file__).resolve().parent.parent / "service_manifest.yml"
VERSION = "4.7.0.stable1"


def load_manifest(tag: str | None = VERSION) -> dict:
    """The manifest as YAML data; `$SERVICE_TAG` replaced by `tag` (kept as written when tag is None)."""
    text = MANIFEST_PATH.read_text()
    if tag is not None:
        text = text.replace("$SERVICE_TAG", tag)
    return yaml.safe_load(text)


@pytest.fixture
def manifest() -> dict:
    return load_manifest()


def heuristics_by_id(manifest: dict) -> dict[int, dict]:
    return {heur["heur_id"]: heur for heur in manifest["heuristics"]}


# --- Assemblyline's models, strict mode ---------------------------------------------------------------------------

def test_manifest_loads_in_the_service_model_in_strict_mode(manifest):
    manifest.pop("heuristics")
    manifest.pop("file_required")
    service = Service(manifest, ignore_extra_values=False)
    assert service.name == "MetaDefender"
    assert service.version == VERSION


@pytest.mark.parametrize("heur_id", [1, 2])
def test_each_heuristic_loads_in_the_heuristic_model_in_strict_mode(manifest, heur_id):
    heur = dict(heuristics_by_id(manifest)[heur_id])
    heur["heur_id"] = f"MetaDefender.{heur_id}"
    heur["attack_id"] = heur.get("attack_id") or []
    loaded = Heuristic(heur, ignore_extra_values=False)
    assert loaded.heur_id == f"MetaDefender.{heur_id}"


# --- facts the contract lists ---------------------------------------------------------------------------------------

def test_version_is_the_service_tag_placeholder():
    assert load_manifest(tag=None)["version"] == "$SERVICE_TAG"


def test_service_identity_and_file_selection(manifest):
    assert manifest["name"] == "MetaDefender"
    assert manifest["accepts"] == ".*"
    assert manifest["rejects"] == "empty|metadata/.*"
    assert manifest["stage"] == "CORE"
    assert manifest["category"] == "Antivirus"


def test_runtime_facts(manifest):
    assert manifest["file_required"] is True
    assert manifest["timeout"] == 60
    assert manifest["enabled"] is False


def test_the_service_receives_the_passwords_assemblyline_shares(manifest):
    assert manifest["uses_temp_submission_data"] is True


def test_docker_config(manifest):
    assert manifest["docker_config"]["allow_internet_access"] is True
    assert manifest["docker_config"]["cpu_cores"] == 0.25


def test_exactly_heuristics_1_and_2(manifest):
    assert sorted(heuristics_by_id(manifest)) == [1, 2]


@pytest.mark.parametrize(("heur_id", "name", "score"), [
    (1, "File is infected", 1000),
    (2, "File is suspicious", 500),
])
def test_heuristic_definition(manifest, heur_id, name, score):
    heur = heuristics_by_id(manifest)[heur_id]
    assert heur["name"] == name
    assert heur["score"] == score
    assert heur["filetype"] == "*"
    assert "MetaDefender antivirus hit" in heur["description"]


# --- config: contract section 1 plus the manifest's extra keys ------------------------------------------------------

CONTRACT_CONFIG = {
    "api_key": "",
    "base_url": "http://localhost:8008/",
    "verify_certificate": True,
    "md_version": 4,
    "md_timeout": 40,
    "max_md_scan_time": 5,
    "av_config": {
        "blocklist": ["Antiy-AVL", "APEX", "Jiangmin"],
        "kw_score_revision_map": {"adware": 100},
        "sig_score_revision_map": {"TACHYON.Suspicious/XOX.Obfus.Gen.2": 100},
    },
}
EXTRA_CONFIG = {
    "rule": "",
    "fetch_sanitized_file": False,
}
# Numbers whose default the contract leaves open: seconds between engine-list refreshes (> 0) and the age in days
# after which definitions are reported as stale (0 may mean "not checked").
EXTRA_NUMERIC_KEYS = {"engine_refresh_seconds": 0, "stale_definition_days": -1, "sanitized_file_max_mb": 0,
                      "reuse_scan_minutes": -1}


def test_config_has_the_contract_keys_and_the_documented_extras_only(manifest):
    assert set(manifest["config"]) == set(CONTRACT_CONFIG) | set(EXTRA_CONFIG) | set(EXTRA_NUMERIC_KEYS)


# av_config keys beyond the contract's three, with the defaults that keep every result as it is.
EXTRA_AV_CONFIG = {
    "heuristic_name_keys": [],
    "min_engines_to_score": 1,
}


@pytest.mark.parametrize("key", sorted(CONTRACT_CONFIG))
def test_config_default_matches_the_contract(manifest, key):
    value = manifest["config"][key]
    if key == "av_config":
        value = {k: v for k, v in value.items() if k not in EXTRA_AV_CONFIG}
    assert value == CONTRACT_CONFIG[key]
    assert type(value) is type(CONTRACT_CONFIG[key])


def test_av_config_has_the_contract_maps_and_the_documented_extras_only(manifest):
    assert set(manifest["config"]["av_config"]) == set(CONTRACT_CONFIG["av_config"]) | set(EXTRA_AV_CONFIG)


@pytest.mark.parametrize("key", sorted(EXTRA_AV_CONFIG))
def test_extra_av_config_default_keeps_every_result(manifest, key):
    assert manifest["config"]["av_config"][key] == EXTRA_AV_CONFIG[key]
    assert type(manifest["config"]["av_config"][key]) is type(EXTRA_AV_CONFIG[key])


@pytest.mark.parametrize("key", sorted(EXTRA_CONFIG))
def test_extra_config_default_keeps_the_original_behaviour(manifest, key):
    assert manifest["config"][key] == EXTRA_CONFIG[key]
    assert type(manifest["config"][key]) is type(EXTRA_CONFIG[key])


@pytest.mark.parametrize(("key", "above"), sorted(EXTRA_NUMERIC_KEYS.items()))
def test_extra_numeric_config_is_a_number(manifest, key, above):
    value = manifest["config"][key]
    assert isinstance(value, int | float) and not isinstance(value, bool)
    assert value > above


def test_parse_config_on_the_manifest_config_gives_the_contract_defaults(manifest):
    config = parse_config(manifest["config"])
    assert config.api_key == ""
    assert config.base_urls == ("http://localhost:8008/",)
    assert config.verify is True
    assert config.md_version == 4
    assert config.md_timeout == 40
    assert config.max_md_scan_time == 5
    assert config.rule == ""
    assert config.fetch_sanitized_file is False
    av = config.av_config
    assert av.heuristic_name_keys == ()
    assert av.min_engines_to_score == 1
    assert av.kw_score_revision_map == {"adware": 100}
    assert av.sig_score_revision_map == {"TACHYON.Suspicious/XOX.Obfus.Gen.2": 100}
    for engine in ("Antiy-AVL", "APEX", "Jiangmin"):
        assert av.is_blocked(engine)
    assert not av.is_blocked("ClamAV")


def test_parse_config_of_an_empty_config_gives_the_same_defaults(manifest):
    assert parse_config({}) == parse_config(manifest["config"])


def test_submission_param_archive_password(manifest):
    params = {param["name"]: param for param in manifest["submission_params"]}
    assert set(params) == {"archive_password"}
    assert params["archive_password"]["type"] == "str"
    assert params["archive_password"]["default"] == ""
    assert params["archive_password"]["value"] == ""


def test_readme_configuration_table_names_every_manifest_key(manifest):
    readme = (MANIFEST_PATH.parent / "README.md").read_text()
    table = {line.split("|")[1].strip().strip("`") for line in readme.splitlines() if line.startswith("| `")}
    keys = {f"av_config.{key}" for key in manifest["config"]["av_config"]}
    keys |= {key for key in manifest["config"] if key != "av_config"}
    assert keys - table == set()
