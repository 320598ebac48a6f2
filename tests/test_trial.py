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


def test_duration_of_response_is_measured_in_confirmed_responders(kn189):
    """DoR runs from the first CR/PR scan to progression or death: only confirmed responders
    have one, it ends no later than their PFS (scans happen within the visit window of their
    scheduled day), a DoR event is a PFS event, and each arm's median_dor_months is the
    Kaplan-Meier median of its responders' DoR."""
    from chemoio.analysis.survival import kaplan_meier

    _, res = kn189
    p = res.patients
    assert np.array_equal(np.isfinite(p.dor_day.to_numpy()), p.responder.to_numpy())
    r = p[p.responder]
    assert (r.dor_day >= 0).all()
    assert (r.dor_day <= r.pfs_day + 14).all()
    assert (r.pfs_event[r.dor_event]).all()
    assert not p.dor_event[~p.responder].any()
    st = res.arm_stats
    for (rep, arm), g in r.groupby(["replicate", "arm"]):
        tj, s, _, _ = kaplan_meier(g.dor_day.to_numpy() / DAYS_PER_MONTH, g.dor_event.to_numpy())
        below = np.flatnonzero(s <= 0.5)
        want = tj[below[0]] if below.size else np.nan
        got = st[(st.replicate == rep) & (st.arm == arm) & (st.subgroup == "ITT")
                 & (st.statistic == "median_dor_months")].value.to_numpy()
        np.testing.assert_allclose(got, [want])


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
    pd.testing.assert_frame_equal(a.patients, b.patients)  # neutropenia and delays included
    assert (a.patients.anc_grade >= 3).any()
    assert not a.comparison_stats.hr.equals(c.comparison_stats.hr)


def test_outputs_report_and_adam(kn189, tmp_path):
    spec, res = kn189
    paths = write_trial_outputs(res, tmp_path)
    html = paths["report"].read_text()
    assert "Not medical advice" in html and "data:image/png;base64" in html
    assert "Neutropenia and dose modifications" in html and "Single-trial 95% CI" in html
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


# -- response rates with exact CIs -----------------------------------------------------------


def test_orr_exact_ci_matches_scipy(kn189):
    from scipy.stats import binomtest

    _, res = kn189
    p, st = res.patients, res.arm_stats
    for (rep, arm), g in p.groupby(["replicate", "arm"]):
        k, n = int(g.responder.sum()), len(g)
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        sel = st[(st.replicate == rep) & (st.arm == arm) & (st.subgroup == "ITT")].set_index("statistic").value
        assert sel["orr_percent"] == pytest.approx(100 * k / n)
        assert sel["orr_ci_low_percent"] == pytest.approx(100 * ci.low, abs=1e-9)
        assert sel["orr_ci_high_percent"] == pytest.approx(100 * ci.high, abs=1e-9)


def test_orr_difference_between_arms(kn189):
    from chemoio.analysis.survival import proportion_difference_ci

    _, res = kn189
    p, rs = res.patients, res.rate_stats
    itt = rs[rs.subgroup == "ITT"]
    assert len(itt) == 2 and set(itt.endpoint) == {"ORR"}
    for _, row in itt.iterrows():
        g = p[p.replicate == row.replicate]
        e, c = g[g.arm == "pembro_chemo"].responder, g[g.arm == "chemo"].responder
        diff, lo, hi = proportion_difference_ci(int(e.sum()), len(e), int(c.sum()), len(c))
        assert row.diff_percent == pytest.approx(100 * diff) and row.ci_low_percent == pytest.approx(100 * lo)
        assert row.ci_high_percent == pytest.approx(100 * hi)
    t = comparison_table(res)
    d = t[t.endpoint == "ORR difference (points)"].iloc[0]
    assert d.sim_median == pytest.approx(np.median(itt.diff_percent))
    assert d.published == pytest.approx(47.6 - 18.9)  # from the published arm ORRs
    orr = t[(t.endpoint == "orr_percent") & (t.what == "chemo")].iloc[0]
    assert orr.sim_ci_low < orr.sim_median < orr.sim_ci_high


def test_vectorised_rate_intervals_match_the_scalar_functions():
    from chemoio.analysis.survival import (
        clopper_pearson_ci,
        newcombe_difference_ci,
        orr_with_ci,
        proportion_difference_ci,
    )

    x = np.array([0, 1, 5, 9, 10, 47])
    n = np.array([10, 10, 10, 10, 10, 100])
    lo, hi = clopper_pearson_ci(x, n)
    for i in range(x.size):
        _, l_, h_ = orr_with_ci(int(x[i]), int(n[i]))
        assert lo[i] == pytest.approx(l_, abs=1e-12) and hi[i] == pytest.approx(h_, abs=1e-12)
    d, l2, h2 = newcombe_difference_ci([56, 9], [70, 10], [48, 3], [80, 10])
    assert np.allclose(l2, [0.0524, 0.1705], atol=5e-5) and np.allclose(h2, [0.3339, 0.8090], atol=5e-5)
    ref = proportion_difference_ci(56, 70, 48, 80)
    assert (d[0], l2[0], h2[0]) == pytest.approx(ref, abs=1e-12)


# -- neutropenia and dose rules ----------------------------------------------------------------


def test_neutropenia_outputs(kn189, tmp_path):
    _, res = kn189
    p = res.patients
    for col in ("anc_baseline", "anc_nadir", "anc_grade", "n_dose_delays", "dose_delay_days",
                "n_cycles_omitted", "n_dose_reductions"):
        assert col in p
    assert set(p.anc_grade.unique()) <= {0, 1, 2, 3, 4} and (p.anc_grade >= 3).any()
    assert np.all(p.anc_nadir <= p.anc_baseline + 1e-12) and np.all(p.anc_baseline >= 1.5)
    # grade follows the nadir (CTCAE: grade 3 < 1.0, grade 4 < 0.5 x 10^9/L)
    assert np.all((p.anc_nadir < 1.0) == (p.anc_grade >= 3))
    st = res.arm_stats
    sel = st[(st.statistic == "neutropenia_g3plus_percent") & (st.subgroup == "ITT")]
    for _, row in sel.iterrows():
        g = p[(p.replicate == row.replicate) & (p.arm == row.arm)]
        assert row.value == pytest.approx(100 * (g.anc_grade >= 3).mean())
    t = comparison_table(res)
    assert set(t[t.endpoint == "neutropenia_g3plus_percent"].what) == {"pembro_chemo", "chemo"}
    adsl = adam_tables(res)["adsl"]
    assert {"ANCNADIR", "NEUTGR", "NDLY", "DLYDUR", "NDRED"} <= set(adsl.columns)
    assert (adsl.NEUTGR.to_numpy() == p.anc_grade.to_numpy()).all()


def test_antibody_only_arm_has_no_neutropenia():
    res = run_trial(load_spec("keynote361"), replicates=1, n_scale=0.1, arms=["pembro"])
    assert (res.patients.anc_grade == 0).all() and (res.patients.n_dose_delays == 0).all()


def test_both_passes_use_the_delayed_dose_plan():
    """With a strict rule most cycles are postponed. Pass 2 (treatment stopped at
    progression) must reproduce pass 1 before progression, which it does only if it uses
    the same per-patient (delayed) dose times."""
    from chemoio.trial.runner import simulate_trial

    spec = load_spec("keynote189")
    arms = [a.model_copy(update={"crossover": None}) for a in spec.arms]
    strict = spec.model_copy(update={"arms": arms, "toxicity": spec.toxicity.model_copy(update={"anc_min": 4.5})})
    stop = simulate_trial(strict, replicates=1, n_scale=0.3)
    cont = simulate_trial(strict.model_copy(update={"discontinue_on_progression": False}), replicates=1, n_scale=0.3)
    np.testing.assert_array_equal(stop["pd_day"], cont["pd_day"])
    changed = np.concatenate([(plan.summary()["n_dose_delays"] + plan.summary()["n_cycles_omitted"]) > 0
                              for _, plan, _ in stop["tables"]])
    assert changed.mean() > 0.3  # many patients had cycles postponed or omitted
    prog = np.flatnonzero(np.isfinite(stop["pd_day"]))
    assert prog.size > 20
    before = stop["grid"][None, :] < stop["pd_day"][prog, None]
    np.testing.assert_allclose(stop["sld"][prog][before], cont["sld"][prog][before], rtol=1e-4)
    assert not np.allclose(stop["sld"][prog], cont["sld"][prog], rtol=1e-4)


def test_toxicity_switches():
    spec = load_spec("keynote189")
    off = spec.model_copy(update={"toxicity": spec.toxicity.model_copy(update={"enabled": False})})
    no_delay = spec.model_copy(update={"toxicity": spec.toxicity.model_copy(update={"dose_delays": False})})
    r_off = run_trial(off, replicates=1, n_scale=0.2, arms=["chemo"])
    r_nd = run_trial(no_delay, replicates=1, n_scale=0.2, arms=["chemo"])
    assert "anc_grade" not in r_off.patients
    assert "neutropenia_g3plus_percent" not in set(r_off.arm_stats.statistic)
    assert (r_nd.patients.n_dose_delays == 0).all() and (r_nd.patients.anc_grade >= 3).any()


# -- iRECIST -------------------------------------------------------------------------------------


def test_irecist_needs_confirmation_of_progression():
    from chemoio.analysis.recist import Response
    from chemoio.trial.runner import finish_trial, simulate_trial

    spec = load_spec("keynote189")
    irec = spec.model_copy(update={"response_criteria": "irecist"})
    a = simulate_trial(spec, replicates=1, n_scale=0.5)
    b = simulate_trial(irec, replicates=1, n_scale=0.5)
    ca, cb = a["codes"], b["codes"]
    assert np.isin(cb, [Response.iUPD, Response.iCPD]).any() and not np.isin(cb, [Response.PD]).any()
    rec_pd = (ca == Response.PD).any(axis=1)
    conf = (cb == Response.iCPD).any(axis=1)
    # every confirmed iRECIST progression was a RECIST progression, never earlier
    assert np.all(rec_pd[conf])
    first_pd = np.argmax(ca == Response.PD, axis=1)
    first_upd = np.argmax(cb == Response.iUPD, axis=1)
    assert np.all(first_upd[conf] >= first_pd[conf])
    # pseudo-progression: RECIST PD that iRECIST does not confirm
    assert (rec_pd & ~conf).sum() > 0
    # treatment stops later (at confirmation) or never
    assert np.all(b["pd_day"][rec_pd] >= a["pd_day"][rec_pd])
    ra, rb = finish_trial(a), finish_trial(b)
    assert rb.patients.progression_day.notna().sum() < ra.patients.progression_day.notna().sum()
    assert rb.settings["response_criteria"] == "irecist"
    assert set(rb.patients.bor) <= {"CR", "PR", "SD", "PD", "NE", "iUPD", "iCPD"}
