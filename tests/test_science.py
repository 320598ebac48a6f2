"""Slow science checks (`make test-slow`): what the shipped calibration reproduces through the
mechanism, without fitting any combination arm (docs/calibration.md, "Results").

They guard the validated behaviour against regressions in the model, the engine or the
trial layer; each runs a shipped trial spec with 10-20 replicate trials.
"""

from __future__ import annotations

import numpy as np
import pytest

from chemoio.trial import load_spec
from chemoio.trial.runner import run_trial
from chemoio.trial.summary import primary_calls

pytestmark = pytest.mark.slow


def _p_success(result, experimental: str, control: str, endpoint: str) -> float:
    calls = primary_calls(result)
    row = calls[(calls.comparison == f"{experimental} vs {control}") & (calls.endpoint == endpoint)]
    assert len(row) == 1, calls
    return float(row.p_success.iloc[0])


def _median_hr(result, subgroup: str, endpoint: str) -> float:
    cs = result.comparison_stats
    sel = cs[(cs.subgroup == subgroup) & (cs.endpoint == endpoint)]
    assert len(sel) == result.settings["replicates"]
    return float(np.median(sel.hr))


def test_keynote189_benefit_overall_and_at_tps_below_1_percent():
    res = run_trial(load_spec("keynote189"), replicates=10)
    assert _p_success(res, "pembro_chemo", "chemo", "OS") >= 0.7
    assert _p_success(res, "pembro_chemo", "chemo", "PFS") >= 0.7
    assert _median_hr(res, "ITT", "OS") < 0.75
    assert _median_hr(res, "tps_lt1", "OS") < 0.9          # published 0.59 (0.38-0.92)
    assert _median_hr(res, "tps_ge50", "OS") < _median_hr(res, "tps_lt1", "OS")


def test_keynote361_is_negative_on_both_primary_endpoints():
    # the simulated call is "met" when more than half of the replicates meet the endpoint;
    # OS was once the closer call (P(success) 0.45 with an earlier set; 0.05 for both
    # endpoints in `chemoio validate -R 20` with the shipped set), hence 20 here
    res = run_trial(load_spec("keynote361"), replicates=20)
    assert _p_success(res, "pembro_chemo", "chemo", "PFS") <= 0.5
    assert _p_success(res, "pembro_chemo", "chemo", "OS") <= 0.5


def test_impower130_is_positive_on_both_primary_endpoints():
    res = run_trial(load_spec("impower130"), replicates=10)
    assert _p_success(res, "atezo_chemo", "chemo", "OS") > 0.5
    assert _p_success(res, "atezo_chemo", "chemo", "PFS") > 0.5
