"""What analysts see for a handful of samples, compared with the results kept in tests/results/ by Assemblyline's
TestHelper, as CCCS services test theirs (the samples and how to write their results anew: result_samples.py)."""

import pytest
from result_samples import SAMPLES, emulated_core, folder_of, results_helper


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    with emulated_core() as url:
        yield results_helper(url, tmp_path_factory.mktemp("samples"))


@pytest.mark.parametrize("name", SAMPLES)
def test_result_is_the_one_kept(helper, name):
    helper.run_test_comparison(folder_of(name), test_extra=True)


def test_every_result_kept_is_of_a_sample(helper):
    assert sorted(helper.result_list()) == sorted(folder_of(name) for name in SAMPLES)
