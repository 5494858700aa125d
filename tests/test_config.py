"""parse_config: the service variables of contract section 1, checked at start with errors that name the key."""

from __future__ import annotations

import pytest

from mdservice.config import AvConfig, ConfigError, parse_config


def config(**overrides) -> dict:
    """A complete valid config (the contract's defaults) with some keys replaced."""
    raw = {
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
    raw.update(overrides)
    return raw


def av_config(**overrides) -> dict:
    return config(av_config={**config()["av_config"], **overrides})


def assert_error_names(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert key in str(error.value)


# --- base_url ---------------------------------------------------------------------------------------------------------

def test_base_url_single_string():
    assert parse_config(config(base_url="http://core-1:8008/")).base_urls == ("http://core-1:8008/",)


def test_base_url_list_keeps_the_order():
    urls = ["http://core-1:8008/", "https://core-2:8008/"]
    assert parse_config(config(base_url=urls)).base_urls == tuple(urls)


def test_base_url_string_is_stripped_of_spaces():
    assert parse_config(config(base_url="  http://core-1:8008/ ")).base_urls == ("http://core-1:8008/",)


def test_base_url_every_list_entry_is_stripped_of_spaces():
    raw = config(base_url=[" http://core-1:8008/", "http://core-2:8008/  "])
    assert parse_config(raw).base_urls == ("http://core-1:8008/", "http://core-2:8008/")


def test_base_url_without_trailing_slash_gets_one():
    assert parse_config(config(base_url="http://core-1:8008")).base_urls == ("http://core-1:8008/",)


@pytest.mark.parametrize("url", ["https://h/metascan_rest", "https://h/metascan_rest/", " https://h/metascan_rest "])
def test_base_url_path_is_kept(url):
    assert parse_config(config(base_url=url)).base_urls == ("https://h/metascan_rest/",)


def test_base_url_path_is_kept_in_a_list():
    raw = config(base_url=["https://h/metascan_rest", "http://other:8008"])
    assert parse_config(raw).base_urls == ("https://h/metascan_rest/", "http://other:8008/")


@pytest.mark.parametrize("value", [
    8008,
    {"url": "http://core-1:8008/"},
    None,
    "",
    "   ",
    [],
    "ftp://core-1/",
    "core-1:8008",
    "localhost",
    ["http://core-1:8008/", 8008],
    ["http://core-1:8008/", None],
    ["http://core-1:8008/", "file:///etc/passwd"],
])
def test_bad_base_url_is_an_error_naming_base_url(value):
    assert_error_names(config(base_url=value), "base_url")


# --- md_version -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [3, 4])
def test_md_version_3_and_4_are_accepted(version):
    assert parse_config(config(md_version=version)).md_version == version


@pytest.mark.parametrize("version", [2, 5, "4", "3", True, None, 4.5])
def test_other_md_version_is_an_error_naming_md_version(version):
    assert_error_names(config(md_version=version), "md_version")


# --- md_timeout, max_md_scan_time ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["md_timeout", "max_md_scan_time"])
@pytest.mark.parametrize("value", [1, 2.5, 120])
def test_positive_seconds_are_accepted(key, value):
    assert getattr(parse_config(config(**{key: value})), key) == value


@pytest.mark.parametrize("key", ["md_timeout", "max_md_scan_time"])
@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, "40", "fast", None, True, [40], {"s": 40}])
def test_bad_seconds_are_an_error_naming_the_key(key, value):
    assert_error_names(config(**{key: value}), key)


# --- av_config --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["kw_score_revision_map", "sig_score_revision_map"])
@pytest.mark.parametrize("score", ["100", 100.0, 99.5, True, None])
def test_non_integer_score_is_an_error_naming_the_map(key, score):
    assert_error_names(av_config(**{key: {"adware": score}}), key)


@pytest.mark.parametrize("key", ["kw_score_revision_map", "sig_score_revision_map"])
def test_score_map_that_is_not_a_mapping_is_an_error_naming_the_map(key):
    assert_error_names(av_config(**{key: ["adware", 100]}), key)


def test_score_maps_are_kept():
    raw = av_config(kw_score_revision_map={"adware": 100, "riskware": 50},
                    sig_score_revision_map={"ClamAV.Eicar-Test-Signature": 0})
    parsed = parse_config(raw).av_config
    assert parsed.kw_score_revision_map == {"adware": 100, "riskware": 50}
    assert parsed.sig_score_revision_map == {"ClamAV.Eicar-Test-Signature": 0}


@pytest.mark.parametrize("blocklist", ["Antiy-AVL", {"Antiy-AVL": True}, None, ["Antiy-AVL", 3]])
def test_blocklist_that_is_not_a_list_of_names_is_an_error_naming_blocklist(blocklist):
    assert_error_names(av_config(blocklist=blocklist), "blocklist")


def test_heuristic_name_keys_are_kept_and_match_ignoring_case():
    parsed = parse_config(av_config(heuristic_name_keys=["HEUR:", "not-a-virus"])).av_config
    assert parsed.heuristic_name_keys == ("HEUR:", "not-a-virus")
    assert parsed.is_heuristic_name("heur:Trojan.Win32.Generic")
    assert parsed.is_heuristic_name("Adware.Toolbar (Not-A-Virus)")
    assert not parsed.is_heuristic_name("Trojan.Win32.Heuristic")


def test_no_heuristic_name_keys_by_default():
    assert not parse_config(config()).av_config.is_heuristic_name("HEUR:Trojan.Win32.Generic")


@pytest.mark.parametrize(("minimum", "hits", "enough"), [(1, 0, True), (1, 1, True), (3, 2, False), (3, 3, True),
                                                          (3, 4, True), (2.0, 1, False)])
def test_min_engines_to_score(minimum, hits, enough):
    parsed = parse_config(av_config(min_engines_to_score=minimum)).av_config
    assert parsed.enough_engines(hits) is enough


def test_av_config_that_is_not_a_mapping_is_an_error_naming_av_config():
    assert_error_names(config(av_config=["Antiy-AVL"]), "av_config")


def test_configured_blocklist_replaces_the_default():
    parsed = parse_config(av_config(blocklist=["ClamAV"])).av_config
    assert parsed.is_blocked("ClamAV")
    assert not parsed.is_blocked("Antiy-AVL")


def test_empty_blocklist_blocks_nothing():
    parsed = parse_config(av_config(blocklist=[])).av_config
    assert not parsed.is_blocked("Antiy-AVL")
    assert not parsed.is_blocked("APEX")


# --- AvConfig.is_blocked ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Antiy-AVL", "antiy-avl", "ANTIY-AVL", "Antiy - AVL", " Antiy-AVL ", "apex",
                                  "Jiang min"])
def test_default_blocklist_ignores_case_and_spaces(name):
    assert AvConfig().is_blocked(name)


@pytest.mark.parametrize("name", ["Vir.IT eXplorer", "vir.it explorer", "VIR.ITEXPLORER", " Vir.IT  eXplorer"])
def test_configured_blocklist_entry_matches_regardless_of_case_and_spaces(name):
    parsed = parse_config(av_config(blocklist=["Vir.IT eXplorer"])).av_config
    assert parsed.is_blocked(name)


@pytest.mark.parametrize("name", ["ClamAV", "Antiy", "AVL", "Antiy-AVL2", "APEXX"])
def test_blocklist_does_not_block_other_engines(name):
    assert not AvConfig().is_blocked(name)


# --- verify_certificate -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [True, False])
def test_verify_certificate_bool(value):
    assert parse_config(config(verify_certificate=value)).verify is value


def test_verify_certificate_path_of_an_existing_ca_bundle(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert parse_config(config(verify_certificate=str(bundle))).verify == str(bundle)


def test_verify_certificate_path_that_does_not_exist_is_an_error_naming_the_key(tmp_path):
    assert_error_names(config(verify_certificate=str(tmp_path / "missing.pem")), "verify_certificate")


@pytest.mark.parametrize("value", [1, None, ["ca.pem"]])
def test_verify_certificate_of_another_type_is_an_error_naming_the_key(value):
    assert_error_names(config(verify_certificate=value), "verify_certificate")


# --- api_key and old keys -----------------------------------------------------------------------------------------

def test_api_key_is_kept():
    assert parse_config(config(api_key="0123abcd")).api_key == "0123abcd"


def test_old_node_time_keys_are_accepted_and_ignored():
    plain = parse_config(config())
    old = parse_config(config(min_node_time=60, max_node_time=300))
    assert old == plain


def test_old_node_time_keys_with_odd_values_do_not_break_start():
    assert parse_config(config(min_node_time="sixty", max_node_time=None)) == parse_config(config())
