"""Survival statistics against lifelines and textbook values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import restricted_mean_survival_time

from chemoio.analysis.survival import (
    DAYS_PER_MONTH,
    cox_hr,
    cox_hr_fast,
    days_to_months,
    kaplan_meier,
    km_summary,
    logrank,
    logrank_fast,
    orr_with_ci,
    probability_of_success,
    proportion_difference_ci,
    rmst,
    rmst_difference,
    summarize_replicates,
)
from chemoio.errors import ChemoioInputError

# Freireich et al. (Blood 1963) 6-MP vs placebo remission data, weeks; event 0 = censored.
MP_T = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
MP_E = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PL_T = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
PL_E = [1] * 21


def freireich():
    t = np.array(MP_T + PL_T, dtype=float)
    e = np.array(MP_E + PL_E)
    g = np.array([1] * 21 + [0] * 21)  # 1 = 6-MP (experimental)
    return t, e, g


def random_trial(seed, n=400, log_hr=-0.4, n_strata=3, rounding=1.0):
    """Exponential times with a stratum effect, uniform censoring, times rounded (ties)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 2, n)
    s = rng.integers(0, n_strata, n)
    rate = 0.05 * np.exp(log_hr * g + 0.5 * s)
    t = rng.exponential(1 / rate)
    c = rng.uniform(5, 40, n)
    e = (t <= c).astype(int)
    time = np.maximum(np.round(np.minimum(t, c) / rounding) * rounding, rounding)
    return time, e, g, s


def lifelines_cox(t, e, g, s=None):
    df = pd.DataFrame({"T": t, "E": e, "g": g})
    kw = {}
    if s is not None:
        df["s"] = s
        kw["strata"] = ["s"]
    cph = CoxPHFitter().fit(
        df, "T", "E", fit_options={"precision": 1e-11, "r_precision": 1e-15}, **kw
    )
    return float(cph.params_["g"]), float(cph.standard_errors_["g"])


# ----------------------------------------------------------------------------- textbook values


def test_freireich_logrank_matches_textbook_and_lifelines():
    t, e, g = freireich()
    p = logrank(t, e, g)
    fast = logrank_fast(t, e, g)
    # published: chi-square 16.79 on 1 df, p = 4.2e-5 (e.g. Kleinbaum & Klein, ch. 2)
    assert fast.chi2 == pytest.approx(16.79, abs=0.01)
    assert p == pytest.approx(4.17e-5, rel=0.01)
    assert fast.p == pytest.approx(p, rel=1e-10)
    assert fast.observed == 9 and fast.expected == pytest.approx(19.25, abs=0.01)
    assert fast.z < 0  # fewer relapses than expected on 6-MP


def test_freireich_cox_hr():
    t, e, g = freireich()
    efron = cox_hr(t, e, g)
    # Efron ties (lifelines, R coxph): coefficient -1.572, HR 0.208 (placebo vs 6-MP 4.82)
    assert efron.log_hr == pytest.approx(-1.572, abs=1e-3)
    assert efron.hr == pytest.approx(0.208, abs=1e-3)
    assert efron.ci_low < efron.hr < efron.ci_high < 1
    # Breslow ties (SAS/Stata default): coefficient -1.509, HR 0.221 (Kleinbaum & Klein)
    breslow = cox_hr_fast(t, e, g, ties="breslow")
    assert breslow.log_hr == pytest.approx(-1.509, abs=1e-3)
    assert breslow.hr == pytest.approx(0.221, abs=1e-3)
    fast = cox_hr_fast(t, e, g)
    assert fast.log_hr == pytest.approx(efron.log_hr, abs=1e-6)
    assert fast.se == pytest.approx(efron.se, abs=1e-6)
    assert fast.p == pytest.approx(efron.p, rel=1e-4)


def test_freireich_km_medians():
    placebo = km_summary(PL_T, PL_E, timepoints=(10, 20, 30))
    assert placebo.median == 8.0
    assert placebo.median_ci == (4.0, 11.0)
    assert placebo.n == 21 and placebo.events == 21
    assert placebo.survival[0] == pytest.approx(8 / 21)  # 8 of 21 still in remission at week 10
    mp = km_summary(MP_T, MP_E, timepoints=(10, 40))
    assert mp.median == 23.0
    assert mp.median_ci[0] == 13.0 and mp.median_ci[1] == np.inf  # upper limit not reached
    assert np.isnan(mp.survival[1])  # week 40 is beyond the last follow-up of a curve > 0
    assert mp.survival[0] == pytest.approx(0.7529, abs=1e-4)


# ----------------------------------------------------------------------------- vs lifelines


def test_km_summary_matches_lifelines():
    t, e, _, _ = random_trial(11)
    summ = km_summary(t, e, timepoints=(6, 12, 24), at_risk_times=(0, 12, 24))
    kmf = KaplanMeierFitter().fit(t, e)
    assert summ.median == kmf.median_survival_time_
    for tp, s in zip(summ.timepoints, summ.survival, strict=True):
        assert s == pytest.approx(float(kmf.survival_function_at_times(tp).iloc[0]))
    assert summ.at_risk == tuple(int((t >= x).sum()) for x in (0, 12, 24))
    # pointwise CI brackets the estimate
    for s, (lo, hi) in zip(summ.survival, summ.survival_ci, strict=True):
        assert lo < s < hi
    # numpy KM agrees with lifelines at the event times
    tj, sj, _, _ = kaplan_meier(t, e)
    assert np.allclose(sj, kmf.survival_function_at_times(tj).to_numpy())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("stratified", [False, True])
def test_fast_cox_equals_lifelines(seed, stratified):
    t, e, g, s = random_trial(seed)
    assert len(np.unique(t)) < len(t) / 2  # plenty of ties
    strata = s if stratified else None
    b_ref, se_ref = lifelines_cox(t, e, g, strata)
    fast = cox_hr_fast(t, e, g, strata)
    assert fast.converged
    assert abs(fast.log_hr - b_ref) <= 1e-6
    assert abs(fast.se - se_ref) <= 1e-6
    wrapped = cox_hr(t, e, g, strata)
    assert abs(wrapped.log_hr - b_ref) <= 1e-6


def test_cox_result_fields_are_wald():
    t, e, g, _ = random_trial(5)
    r = cox_hr(t, e, g)
    assert r.ci_low == pytest.approx(np.exp(r.log_hr - 1.959964 * r.se), rel=1e-6)
    assert r.ci_high == pytest.approx(np.exp(r.log_hr + 1.959964 * r.se), rel=1e-6)
    assert r.hr < 1  # simulated with log HR -0.4


def test_fast_cox_monotone_likelihood_is_flagged():
    t = np.arange(1.0, 11.0)
    e = np.ones(10)
    g = np.array([0] * 5 + [1] * 5)
    e[g == 1] = 0  # no events on the experimental arm
    r = cox_hr_fast(t, e, g)
    assert not r.converged and r.hr < 1e-6


def test_fast_cox_diverging_stratified_estimate_is_flagged_not_nan():
    # a small stratified set whose likelihood is monotone: the Newton steps run off to a
    # huge log HR where risk-set weights underflow; the estimate stays finite, is flagged
    # as not converged, and no numpy warning leaks out
    import warnings

    t = np.array([5.0, 3.0, 4.0, 6.0, 1.0, 2.0, 7.0, 1.0, 6.0, 3.0, 2.0])
    e = np.array([0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0])
    g = np.array([1, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0])
    s = np.array([0, 1, 2, 1, 2, 2, 1, 2, 2, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = cox_hr_fast(t, e, g, strata=s)
    assert np.isfinite(r.log_hr) and r.log_hr > 10 and not r.converged


def test_logrank_fast_equals_lifelines_unstratified():
    for seed in range(4):
        t, e, g, _ = random_trial(seed)
        ref = logrank_test(t[g == 1], t[g == 0], e[g == 1], e[g == 0])
        fast = logrank_fast(t, e, g)
        assert fast.chi2 == pytest.approx(ref.test_statistic, rel=1e-10)
        assert logrank(t, e, g) == pytest.approx(ref.p_value, rel=1e-10)


def test_stratified_logrank():
    t, e, g, s = random_trial(21, n=600)
    # one stratum only: identical to the unstratified test
    assert logrank_fast(t, e, g, np.zeros_like(s)).chi2 == pytest.approx(logrank_fast(t, e, g).chi2)
    # the stratified statistic sums per-stratum O-E and V; each stratum alone matches lifelines
    parts = [logrank_fast(t[s == k], e[s == k], g[s == k]) for k in range(3)]
    for k, part in enumerate(parts):
        m = s == k
        ref = logrank_test(t[m & (g == 1)], t[m & (g == 0)], e[m & (g == 1)], e[m & (g == 0)])
        assert part.chi2 == pytest.approx(ref.test_statistic, rel=1e-10)
    strat = logrank_fast(t, e, g, s)
    u = sum(p.observed - p.expected for p in parts)
    v = sum(p.variance for p in parts)
    assert strat.chi2 == pytest.approx(u * u / v, rel=1e-12)
    assert logrank(t, e, g, strata=s) == strat.p
    # string labels work as strata
    assert logrank_fast(t, e, g, np.array(["a", "b", "c"])[s]).chi2 == pytest.approx(strat.chi2)


def test_stratification_removes_confounding():
    # arm 1 is enrolled mostly in the poor-prognosis stratum; no true treatment effect
    rng = np.random.default_rng(4)
    n = 2000
    s = rng.integers(0, 2, n)
    g = (rng.random(n) < np.where(s == 1, 0.8, 0.2)).astype(int)
    t = rng.exponential(np.where(s == 1, 3.0, 12.0))
    e = np.ones(n)
    assert logrank(t, e, g) < 1e-6  # spurious difference
    assert logrank(t, e, g, strata=s) > 0.01
    assert abs(cox_hr_fast(t, e, g, s).log_hr) < 0.15


def test_rmst_matches_lifelines_and_variance_is_plugin_without_censoring():
    t, e, g, _ = random_trial(8)
    kmf = KaplanMeierFitter().fit(t, e)
    assert rmst(t, e, 20.0) == pytest.approx(restricted_mean_survival_time(kmf, t=20.0), rel=1e-9)
    # without censoring RMST is the mean of min(T, tau) and its variance the plug-in variance
    rng = np.random.default_rng(2)
    x = rng.exponential(5, 80)
    y = rng.exponential(8, 60)
    time = np.r_[x, y]
    grp = np.r_[np.ones(80), np.zeros(60)]
    diff, lo, hi = rmst_difference(time, np.ones(140), grp, tau=6.0)
    mx, my = np.minimum(x, 6.0), np.minimum(y, 6.0)
    assert diff == pytest.approx(mx.mean() - my.mean())
    se = np.sqrt(mx.var() / 80 + my.var() / 60)
    assert hi - lo == pytest.approx(2 * 1.959964 * se, rel=1e-6)


# ----------------------------------------------------------------------------- proportions


def test_clopper_pearson_known_values():
    rate, lo, hi = orr_with_ci(0, 10)
    assert (rate, lo) == (0.0, 0.0) and hi == pytest.approx(0.3085, abs=1e-4)
    rate, lo, hi = orr_with_ci(5, 10)
    assert rate == 0.5
    assert lo == pytest.approx(0.1871, abs=1e-4) and hi == pytest.approx(0.8129, abs=1e-4)
    rate, lo, hi = orr_with_ci(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.6915, abs=1e-4)
    assert orr_with_ci(np.array([True, False] * 5)) == orr_with_ci(5, 10)
    with pytest.raises(ChemoioInputError) as err:
        orr_with_ci(11, 10)
    assert err.value.field == "responders"


def test_newcombe_difference_matches_published_examples():
    # Newcombe, Stat Med 1998;17:873-890, Table II, method 10
    d, lo, hi = proportion_difference_ci(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert lo == pytest.approx(0.0524, abs=1e-4) and hi == pytest.approx(0.3339, abs=1e-4)
    d, lo, hi = proportion_difference_ci(9, 10, 3, 10)
    assert lo == pytest.approx(0.1705, abs=1e-4) and hi == pytest.approx(0.8090, abs=1e-4)
    d, lo, hi = proportion_difference_ci(56, 70, 48, 80, method="wald")
    assert lo == pytest.approx(0.2 - 1.959964 * np.sqrt(0.8 * 0.2 / 70 + 0.6 * 0.4 / 80), abs=1e-6)


# ----------------------------------------------------------------------------- replicates


def test_summarize_replicates_and_probability_of_success():
    vals = np.arange(1.0, 1002.0)  # 1..1001
    med, lo, hi = summarize_replicates(np.r_[vals, np.nan])
    assert med == 501.0 and lo == pytest.approx(26.0) and hi == pytest.approx(976.0)
    p = np.array([0.001, 0.04, 0.2, np.nan])
    assert probability_of_success(p, alpha=0.05) == 0.5
    hr = np.array([0.7, 1.2, 0.8, 0.9])
    assert probability_of_success(p, alpha=0.05, estimate=hr) == 0.25
    upper = np.array([0.9, 1.1, 0.99, np.nan])
    assert probability_of_success(upper, kind="bound", direction="lower", threshold=1.0) == 0.5
    low = np.array([0.01, -0.02, 0.05])
    pos = probability_of_success(low, kind="bound", direction="higher", threshold=0.0)
    assert pos == pytest.approx(2 / 3)


def test_days_to_months():
    assert DAYS_PER_MONTH == 30.4375
    assert days_to_months(365.25) == pytest.approx(12.0)


def test_input_errors_name_the_argument():
    with pytest.raises(ChemoioInputError) as err:
        cox_hr_fast([1.0, 2, 3], [1, 0], [0, 1, 1])
    assert err.value.field == "event"
    with pytest.raises(ChemoioInputError) as err:
        logrank_fast([1.0, 2, 3], [1, 0, 1], [0, 1])
    assert err.value.field == "group"
    with pytest.raises(ChemoioInputError) as err:
        logrank_fast([1.0, 2, 3], [1, 0, 1], [1, 1, 1])
    assert err.value.field == "group"
    with pytest.raises(ChemoioInputError) as err:
        km_summary([1.0, -2.0], [1, 1])
    assert err.value.field == "time"
    with pytest.raises(ChemoioInputError) as err:
        cox_hr_fast([1.0, 2, 3, 4], [1, 0, 1, 1], [0, 1, 1, 0], strata=[0, 1])
    assert err.value.field == "strata"
