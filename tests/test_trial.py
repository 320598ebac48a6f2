"""Virtual trials: censoring, crossover, biomarker selection, determinism, outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chemoio.analysis.survival import DAYS_PER_MONTH
from chemoio.report.trial_report import adam_tables, write_trial_outputs
from chemoio.trial import load_spec
from chemoio.trial.runner import run_trial, subgroup_mask
from chemoio.trial.summary import comparison_table, primary_calls


@pytest.fixture(scope="module")
def kn189():
    spec = load_spec("keynote189")
    return spec, run_trial(spec, replicates=2, n_scale=0.5)


def test_every_patient_has_consistent_endpoints(kn189):
    _, res = kn189
    p = res.patients
    assert len(p) == 2 * res.settings["n_per_trial"]
    # censoring happens at the data cut-off (or earlier dropout), never after it
    assert np.all(p.os_day <= p.censor_day + 1e-9)
    assert np.all(p.censor_day <= 16.65 * DAYS_PER_MONTH + 1e-6)
    cens = ~p.os_event
    assert np.allclose(p.os_day[cens], p.censor_day[cens])
    # PFS never exceeds OS; an OS event without progression is a PFS event at death
    assert np.all(p.pfs_day <= p.os_day + 1e-9)
    no_prog = p.progression_day.isna() & p.os_event
    assert np.all(p.pfs_event[no_prog]) and np.allclose(p.pfs_day[no_prog], p.os_day[no_prog])
    assert set(p.bor) <= {"CR", "PR", "SD", "PD", "NE"}


def test_later_cutoff_means_more_events():
    spec = load_spec("keynote189")
    later = spec.model_copy(update={"follow_up": spec.follow_up.model_copy(
        update={"data_cutoff_months": spec.follow_up.data_cutoff_months + 24})})
    a = run_trial(spec, replicates=1, n_scale=0.3, arms=["chemo"])
    b = run_trial(later, replicates=1, n_scale=0.3, arms=["chemo"])
    assert b.patients.os_event.sum() > a.patients.os_event.sum()


def test_crossover_changes_os_but_not_pfs():
    spec = load_spec("keynote189")
    arms = [a.model_copy(update={"crossover": None}) if a.crossover else a for a in spec.arms]
    no_x = spec.model_copy(update={"arms": arms})
    with_x = run_trial(spec, replicates=1, n_scale=0.5, arms=["chemo"])
    without = run_trial(no_x, replicates=1, n_scale=0.5, arms=["chemo"])
    assert with_x.patients.crossover.any() and not without.patients.crossover.any()
    assert np.array_equal(with_x.patients.pfs_day, without.patients.pfs_day)
    assert np.array_equal(with_x.patients.pfs_event, without.patients.pfs_event)
    crossed = with_x.patients.crossover.to_numpy()
    assert not np.allclose(with_x.patients.os_day[crossed], without.patients.os_day[crossed])


def test_pdl1_selected_population_differs_from_all_comers():
    spec = load_spec("keynote189")
    sel = spec.model_copy(update={"population": spec.population.model_copy(
        update={"selection": {"pdl1_tps_min": 50}})})
    allc = run_trial(spec, replicates=1, n_scale=0.3, arms=["pembro_chemo"])
    high = run_trial(sel, replicates=1, n_scale=0.3, arms=["pembro_chemo"])
    assert high.patients.pdl1_tps.min() >= 50
    assert allc.patients.pdl1_tps.min() < 50
    assert high.patients.responder.mean() != allc.patients.responder.mean()


def test_subgroup_bounds_are_inclusive():
    cov = pd.DataFrame({"pdl1_tps": [0, 1, 49, 50], "pdl1_cps": [0, 1, 49, 50], "pdl1_ic": [0, 1, 2, 3],
                        "tmb_mut_per_mb": [1, 5, 10, 20], "ecog": [0, 1, 0, 1]})
    assert subgroup_mask(cov, {"pdl1_tps_max": 0.5}).tolist() == [True, False, False, False]
    assert subgroup_mask(cov, {"pdl1_tps_min": 1, "pdl1_tps_max": 49.5}).tolist() == [False, True, True, False]
    assert subgroup_mask(cov, {"pdl1_ic_min": 2}).tolist() == [False, False, True, True]


def test_same_seed_same_numbers_and_another_seed_differs():
    spec = load_spec("imvigor211")
    a = run_trial(spec, replicates=2, n_scale=0.2)
    b = run_trial(spec, replicates=2, n_scale=0.2)
    c = run_trial(spec, replicates=2, n_scale=0.2, seed=99)
    pd.testing.assert_frame_equal(a.comparison_stats, b.comparison_stats)
    pd.testing.assert_frame_equal(comparison_table(a), comparison_table(b))
    assert not a.comparison_stats.hr.equals(c.comparison_stats.hr)


def test_outputs_report_and_adam(kn189, tmp_path):
    spec, res = kn189
    paths = write_trial_outputs(res, tmp_path)
    html = paths["report"].read_text()
    assert "Not medical advice" in html and "data:image/png;base64" in html
    t = pd.read_csv(tmp_path / "comparison.csv")
    assert {"HR OS", "HR PFS", "orr_percent"} <= set(t.endpoint)
    tables = adam_tables(res)
    adtte = tables["adtte"]
    assert set(adtte.PARAMCD) == {"OS", "PFS"}
    assert len(adtte) == 2 * len(res.patients)
    os_rows = adtte[adtte.PARAMCD == "OS"]
    assert (os_rows.CNSR == 0).sum() == res.patients.os_event.sum()
    assert (tmp_path / "adam" / "adsl.parquet").exists() and (tmp_path / "adam" / "adrs.csv").exists()
    calls = primary_calls(res)
    assert set(calls.endpoint) == {"OS", "PFS"}


def test_comparisons_are_stratified_as_the_spec_says(kn189):
    from chemoio.trial.runner import _strata_codes

    spec, res = kn189
    comp = spec.comparisons[0]
    assert list(comp.stratify_by) == ["tps_ge1", "regimen_choice"]
    codes = _strata_codes(spec, res.patients, comp.stratify_by)
    assert set(np.unique(codes)) == {0, 1, 2, 3}  # TPS >=1 yes/no x carboplatin/cisplatin
    tps_ge1 = (res.patients.pdl1_tps >= 1).to_numpy()
    # a stratum never mixes TPS categories or platinum choices
    for c in np.unique(codes):
        m = codes == c
        assert len(set(tps_ge1[m])) == 1 and res.patients.regimen_choice[m].nunique() == 1
