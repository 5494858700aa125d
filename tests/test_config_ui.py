"""Service variables as an admin can type them in the Assemblyline UI: wrong types, empty and out-of-range values.

Each bad value stops `MetaDefender(config).start()` with one `ServiceStartError` that names the key, before any
request reaches Core (requests-mock history stays empty) and before any Core client exists (no half-started service).
"""

from __future__ import annotations

import math

import pytest

from mdservice.config import MAX_MIN_ENGINES, MAX_SCORE
from metadefender import MetaDefender, ServiceStartError

CORE = "http://core-1:8008/"
ENGINES = [{"eng_name": "ClamAV", "eng_ver": "1.0.1", "engine_type": "av", "def_time": "2026-11-26T11:08:00.000Z",
            "active": True, "state": "production"}]
HUGE = "x" * 100_000
MAX_REQUEST_TIMEOUT = 3600  # README: md_timeout is at most 3600 seconds

# key -> values an admin could enter that the service cannot work with
BAD_VALUES = {
    "api_key": [12345, ["key"], {"k": "v"}, True, "key with spaces", "key\nX-Injected: 1", "clé-non-ascii", "\x00k"],
    "base_url": [None, "", "   ", [], [""], [None], 8008, {"url": CORE}, True, "core-1:8008", "ftp://core-1/",
                 "http://", "http://core-1:99999/", "http://core-1:port/", "http://[::1/", "http://core 1:8008/",
                 "http://core-1:8008/a\nb", [CORE, CORE], [CORE, 5], HUGE, "http://core..example:8008/",
                 "http://" + "a" * 64 + ".example:8008/", "http://.core-1:8008/"],
    "verify_certificate": [None, "", "   ", 1, 0, "/no/such/ca.pem", ["/etc/ssl"], HUGE],
    "md_version": [None, "", "4", 2, 5, 3.5, True, [4], math.nan, HUGE],
    "md_timeout": [None, "", "40", 0, -1, math.nan, math.inf, True, [40], MAX_REQUEST_TIMEOUT + 1, 1e300, HUGE,
                   10**400, 10**5000],
    "max_md_scan_time": [None, "", "5", 0, -5, math.nan, math.inf, False, {"s": 5}, 10**400],
    "rule": [5, ["multiscan"], {"name": "x"}, True, "multiscan\udc80", "\ud800"],
    "fetch_sanitized_file": [None, "", "true", 1, 0, [True]],
    "sanitized_file_max_mb": [None, "", "256", 0, -1, math.nan, math.inf, True, 10**400, 200 * 1024],
    "engine_refresh_seconds": [None, "", "600", 0, -1, math.nan, math.inf, True, 10**400],
    "stale_definition_days": [None, "", "7", -1, -0.5, math.nan, math.inf, True, -(10**400)],
    "reuse_scan_minutes": [None, "", "30", -1, math.nan, math.inf, True, 10**400, 8 * 24 * 60],
    "av_config": [None, "", [], "blocklist", 5],
}
BAD_AV_CONFIG = {
    "blocklist": [None, "", "APEX", 5, [5], ["APEX", None], {"APEX": True}],
    "kw_score_revision_map": [None, "", [], ["adware"], {"": 100}, {"adware": "100"}, {"adware": 1.5},
                              {"adware": True}, {"adware": None}, {"adware": MAX_SCORE + 1}, {"adware": -MAX_SCORE - 1},
                              {"adware": 10**30}],
    "sig_score_revision_map": [None, "", [], {"": 5}, {"X.Y": "high"}, {"X.Y": 2.0}, {"X.Y": 2**63}],
    "heuristic_name_keys": [None, "", "HEUR:", 5, [5], ["HEUR:", None], [""], ["  "], {"HEUR:": True}, [["HEUR:"]]],
    "min_engines_to_score": [None, "", "2", 0, -1, 1.5, True, [2], {"n": 2}, math.nan, math.inf,
                             MAX_MIN_ENGINES + 1, 10**30, HUGE],
}
CASES = [(key, {key: value}) for key, values in BAD_VALUES.items() for value in values]
CASES += [(key, {"av_config": {key: value}}) for key, values in BAD_AV_CONFIG.items() for value in values]


def case_id(case) -> str:
    value = next(iter(case[1].values()))
    huge = isinstance(value, int) and value.bit_length() > 64  # too long to read (or even to print)
    shown = f"an int of {value.bit_length()} bits" if huge else repr(value)
    return f"{case[0]}={shown}"[:60]


@pytest.mark.parametrize("key, config", CASES, ids=[case_id(c) for c in CASES])
def test_bad_value_stops_the_start_with_one_error_naming_the_key(requests_mock, key, config):
    service = MetaDefender({"base_url": CORE, **config})
    with pytest.raises(ServiceStartError) as caught:
        service.start()
    message = str(caught.value)
    assert message.startswith("Invalid MetaDefender service configuration: ")
    assert key in message
    assert len(message) < 400, "the bad value floods the message"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert requests_mock.request_history == [], "a request reached Core before the config was checked"
    assert service.pool is None, "the service half-started"


@pytest.mark.parametrize("api_key", ["key with spaces", "key\nX-Injected: 1", "clé-non-ascii", "\x00k"])
def test_rejected_api_key_is_not_echoed(requests_mock, api_key):
    with pytest.raises(ServiceStartError, match="api_key") as caught:
        MetaDefender({"base_url": CORE, "api_key": api_key}).start()
    assert api_key not in str(caught.value) and repr(api_key)[1:-1] not in str(caught.value)


@pytest.fixture
def core(requests_mock):
    requests_mock.get(CORE + "stat/engines", json=ENGINES)
    return requests_mock


def start(config: dict) -> MetaDefender:
    service = MetaDefender({"base_url": CORE, **config})
    service.start()
    return service


def test_api_key_pasted_with_spaces_and_newline_is_stripped(core):
    start({"api_key": "  abc-123_KEY \n"})
    assert core.last_request.headers["apikey"] == "abc-123_KEY"


@pytest.mark.parametrize("api_key", ["", "   ", None])
def test_empty_api_key_sends_no_header(core, api_key):
    start({"api_key": api_key})
    assert "apikey" not in core.last_request.headers


@pytest.mark.parametrize("config", [
    {"md_version": 3}, {"md_version": 4.0}, {"md_timeout": MAX_REQUEST_TIMEOUT}, {"md_timeout": 0.5},
    {"max_md_scan_time": 1e6}, {"engine_refresh_seconds": 1e9}, {"stale_definition_days": 0},
    {"av_config": {}}, {"av_config": {"blocklist": []}},
    {"av_config": {"kw_score_revision_map": {}, "sig_score_revision_map": {"X.Y": -MAX_SCORE}}},
    {"av_config": {"kw_score_revision_map": {"adware": MAX_SCORE}}, "unknown_sub_key": 1},
    {"av_config": {"heuristic_name_keys": [], "min_engines_to_score": MAX_MIN_ENGINES}},
    {"av_config": {"heuristic_name_keys": ["HEUR:", "not-a-virus"], "min_engines_to_score": 3.0}},
    {"rule": None}, {"rule": "  multiscan only  "}, {"min_node_time": 60, "max_node_time": "anything"},
    {"base_url": [" http://core-1:8008 "]}, {"verify_certificate": False},
])
def test_edge_values_that_are_fine_start_the_service(core, config):
    service = start(config)
    assert service.pool is not None and core.called


def test_verify_certificate_accepts_a_ca_bundle_path(core, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    service = start({"verify_certificate": f" {bundle} "})
    assert service.settings.verify == str(bundle)
