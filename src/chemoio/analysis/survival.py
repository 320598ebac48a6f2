"""Survival and response statistics that a trial statistician expects.

Times are in **months** unless a docstring says otherwise (``DAYS_PER_MONTH`` converts
simulated days). Two families of functions live here:

* reporting functions built on lifelines (:func:`km_summary`, :func:`cox_hr`,
  :func:`logrank`), the reference implementation users know;
* fast numpy/scipy versions (:func:`cox_hr_fast`, :func:`logrank_fast`) for loops over
  hundreds of replicate trials. They are tested against lifelines.

Group coding everywhere: ``group == 1`` is the experimental arm, ``0`` the control, so a
hazard ratio below 1 favours the experimental arm. lifelines is imported lazily so that
``import chemoio.analysis`` stays cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from chemoio.errors import ChemoioInputError

__all__ = [
    "DAYS_PER_MONTH",
    "KMSummary",
    "HRResult",
    "LogrankResult",
    "days_to_months",
    "km_summary",
    "kaplan_meier",
    "number_at_risk",
    "cox_hr",
    "cox_hr_fast",
    "logrank",
    "logrank_fast",
    "orr_with_ci",
    "clopper_pearson_ci",
    "wilson_ci",
    "proportion_difference_ci",
    "newcombe_difference_ci",
    "rmst",
    "rmst_difference",
    "summarize_replicates",
    "probability_of_success",
]

#: Average days per month (365.25 / 12), the usual convention in oncology reporting.
DAYS_PER_MONTH: float = 30.4375


def days_to_months(days: ArrayLike) -> NDArray[np.float64]:
    """Convert days to months with :data:`DAYS_PER_MONTH`."""
    return np.asarray(days, dtype=np.float64) / DAYS_PER_MONTH


# ----------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class KMSummary:
    """Kaplan-Meier summary of one arm.

    ``median`` is ``inf`` when the curve never falls to 0.5 (median not reached); the same
    holds for the CI limits. Landmark values are NaN beyond the last follow-up time.
    """

    n: int
    events: int
    median: float
    median_ci: tuple[float, float]
    timepoints: tuple[float, ...]
    survival: tuple[float, ...]
    survival_ci: tuple[tuple[float, float], ...]
    at_risk_times: tuple[float, ...]
    at_risk: tuple[int, ...]
    alpha: float = 0.05

    def as_dict(self) -> dict:
        """Plain-Python dictionary (for JSON reports)."""
        return asdict(self)


@dataclass(frozen=True)
class HRResult:
    """Hazard ratio (experimental vs control) with Wald confidence interval and p-value."""

    hr: float
    ci_low: float
    ci_high: float
    p: float
    log_hr: float
    se: float
    converged: bool = True


@dataclass(frozen=True)
class LogrankResult:
    """Two-group (optionally stratified) log-rank test.

    ``observed``/``expected`` are events in the experimental group (group 1), ``z`` is
    ``(O - E) / sqrt(V)`` (negative favours the experimental arm), ``chi2 = z**2``.
    """

    z: float
    chi2: float
    p: float
    observed: float
    expected: float
    variance: float


# ----------------------------------------------------------------------------- input checks


def _check_tte(
    time: ArrayLike, event: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = np.asarray(time, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ChemoioInputError("time", f"must be a non-empty 1-D array, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ChemoioInputError("time", "must be finite and >= 0")
    e = np.asarray(event)
    if e.shape != t.shape:
        raise ChemoioInputError("event", f"has shape {e.shape}, time has {t.shape}")
    e = e.astype(np.float64)
    if not np.all((e == 0) | (e == 1)):
        raise ChemoioInputError("event", "must be 0/1 or boolean (1 = event observed)")
    return t, e


def _check_group(group: ArrayLike, n: int) -> NDArray[np.float64]:
    g = np.asarray(group)
    if g.shape != (n,):
        raise ChemoioInputError("group", f"must have shape ({n},), got {g.shape}")
    g = g.astype(np.float64)
    if not np.all((g == 0) | (g == 1)):
        raise ChemoioInputError("group", "must be 0 (control) or 1 (experimental)")
    if g.min() == g.max():
        raise ChemoioInputError("group", "both groups (0 and 1) must be present")
    return g


def _strata_codes(strata: ArrayLike | None, n: int) -> NDArray[np.int64]:
    if strata is None:
        return np.zeros(n, dtype=np.int64)
    s = np.asarray(strata)
    if s.shape != (n,):
        raise ChemoioInputError("strata", f"must have shape ({n},), got {s.shape}")
    codes, _ = pd.factorize(pd.Series(s), sort=True)
    if np.any(codes < 0):
        raise ChemoioInputError("strata", "must not contain missing values")
    return codes.astype(np.int64)


# ----------------------------------------------------------------------------- Kaplan-Meier


def kaplan_meier(
    time: ArrayLike, event: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    r"""Kaplan-Meier estimate at the distinct event times (numpy, no lifelines).

    :math:`\hat S(t) = \prod_{t_j \le t} (1 - d_j / n_j)`. Returns
    ``(t_j, S(t_j), n_j at risk, d_j events)``.
    """
    t, e = _check_tte(time, event)
    order = np.argsort(t, kind="stable")
    ts, es = t[order], e[order]
    uniq, start = np.unique(ts, return_index=True)
    d = np.add.reduceat(es, start)
    n_at_risk = (ts.size - start).astype(np.float64)
    keep = d > 0
    tj, dj, nj = uniq[keep], d[keep], n_at_risk[keep]
    return tj, np.cumprod(1.0 - dj / nj), nj, dj


def number_at_risk(time: ArrayLike, times: ArrayLike) -> NDArray[np.int64]:
    """Number of patients still at risk (follow-up >= t) at each of ``times``."""
    t = np.sort(np.asarray(time, dtype=np.float64))
    q = np.asarray(times, dtype=np.float64)
    return (t.size - np.searchsorted(t, q, side="left")).astype(np.int64)


def _nice_grid(t_max: float) -> NDArray[np.float64]:
    """0, step, 2*step, ... <= t_max with a step from 1, 2, 3, 6, 12, 24 months (<= 11 ticks)."""
    for step in (1.0, 2.0, 3.0, 6.0, 12.0, 24.0, 48.0):
        if t_max / step <= 10:
            break
    return np.arange(0.0, t_max + 1e-9, step)


def km_summary(
    time: ArrayLike,
    event: ArrayLike,
    timepoints: ArrayLike = (12, 24, 60),
    at_risk_times: ArrayLike | None = None,
    alpha: float = 0.05,
) -> KMSummary:
    """Median with CI, landmark survival with CI and numbers at risk (lifelines KM).

    The CI of the median is where the lower and upper pointwise confidence bands cross 0.5
    (lifelines ``median_survival_times`` of ``confidence_interval_``; the bands use the
    log(-log) transform, as SAS PROC LIFETEST does by default). Landmark survival at ``t`` is
    the KM step value at ``t`` with its pointwise CI; NaN when ``t`` lies beyond the last
    observed time of a curve that has not reached 0. ``at_risk_times`` defaults to a
    regular grid (steps of 1, 2, 3, 6, 12 or 24 months) up to the longest follow-up.
    """
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    _check_alpha(alpha)
    t, e = _check_tte(time, event)
    kmf = KaplanMeierFitter(alpha=alpha).fit(t, e)
    ci = kmf.confidence_interval_
    med_ci = median_survival_times(ci)
    low_col = [c for c in ci.columns if "lower" in c][0]
    high_col = [c for c in ci.columns if "upper" in c][0]
    tp = np.atleast_1d(np.asarray(timepoints, dtype=np.float64))

    timeline = kmf.survival_function_.index.to_numpy(dtype=np.float64)
    sf = kmf.survival_function_.to_numpy()[:, 0]
    ci_sf = kmf.confidence_interval_survival_function_
    lo = ci_sf[low_col].to_numpy()
    hi = ci_sf[high_col].to_numpy()
    idx = np.searchsorted(timeline, tp, side="right") - 1
    idx = np.clip(idx, 0, timeline.size - 1)
    beyond = (tp > t.max()) & (sf[-1] > 0)
    s_at = np.where(beyond, np.nan, sf[idx])
    lo_at = np.where(beyond, np.nan, lo[idx])
    hi_at = np.where(beyond, np.nan, hi[idx])

    ar_t = _nice_grid(float(t.max())) if at_risk_times is None else np.atleast_1d(
        np.asarray(at_risk_times, dtype=np.float64)
    )
    return KMSummary(
        n=int(t.size),
        events=int(e.sum()),
        median=float(kmf.median_survival_time_),
        median_ci=(float(med_ci[low_col].iloc[0]), float(med_ci[high_col].iloc[0])),
        timepoints=tuple(float(x) for x in tp),
        survival=tuple(float(x) for x in s_at),
        survival_ci=tuple((float(a), float(b)) for a, b in zip(lo_at, hi_at, strict=True)),
        at_risk_times=tuple(float(x) for x in ar_t),
        at_risk=tuple(int(x) for x in number_at_risk(t, ar_t)),
        alpha=alpha,
    )


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ChemoioInputError("alpha", f"must lie in (0, 1), got {alpha}")


# ----------------------------------------------------------------------------- lifelines Cox


def cox_hr(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    strata: ArrayLike | None = None,
    alpha: float = 0.05,
) -> HRResult:
    """Cox hazard ratio of group 1 vs group 0 with lifelines ``CoxPHFitter``.

    Efron's handling of tied times (lifelines' method); with ``strata`` each stratum has its
    own baseline hazard. CI and p-value are Wald: ``exp(b +/- z_{1-alpha/2} se)``.
    Convergence tolerances are tightened from the lifelines defaults.
    """
    from lifelines import CoxPHFitter

    _check_alpha(alpha)
    t, e = _check_tte(time, event)
    g = _check_group(group, t.size)
    df = pd.DataFrame({"T": t, "E": e, "group": g})
    kwargs: dict = {}
    if strata is not None:
        df["stratum"] = _strata_codes(strata, t.size)
        kwargs["strata"] = ["stratum"]
    cph = CoxPHFitter()
    cph.fit(
        df,
        duration_col="T",
        event_col="E",
        fit_options={"precision": 1e-10, "r_precision": 1e-15, "max_steps": 500},
        **kwargs,
    )
    b = float(cph.params_["group"])
    se = float(cph.standard_errors_["group"])
    return _wald(b, se, alpha, converged=True)


def _wald(b: float, se: float, alpha: float, converged: bool) -> HRResult:
    z = stats.norm.ppf(1 - alpha / 2)
    p = float(2 * stats.norm.sf(abs(b / se))) if se > 0 and np.isfinite(se) else float("nan")
    with np.errstate(over="ignore"):  # a near-empty arm gives an infinite upper bound
        lo, hi, hr = np.exp(b - z * se), np.exp(b + z * se), np.exp(b)
    return HRResult(
        hr=float(hr),
        ci_low=float(lo),
        ci_high=float(hi),
        p=p,
        log_hr=b,
        se=se,
        converged=converged,
    )


def logrank(
    time: ArrayLike, event: ArrayLike, group: ArrayLike, strata: ArrayLike | None = None
) -> float:
    """Two-sided log-rank p-value, group 1 vs 0.

    Unstratified: lifelines ``logrank_test``. Stratified: lifelines has no stratified test,
    so :func:`logrank_fast` sums O - E and the variance over strata.
    """
    t, e = _check_tte(time, event)
    g = _check_group(group, t.size)
    if strata is not None:
        return logrank_fast(t, e, g, strata).p
    from lifelines.statistics import logrank_test

    one = g == 1
    res = logrank_test(t[one], t[~one], event_observed_A=e[one], event_observed_B=e[~one])
    return float(res.p_value)


# ----------------------------------------------------------------------------- fast numpy versions


@dataclass(frozen=True)
class _RiskSets:
    """Data sorted by (stratum, time) with one entry per distinct (stratum, time) with events.

    For key ``k`` the risk set is ``sorted[start[k]:end[k]]`` (same stratum, time >= t_k)
    and the tied events are the event rows within ``sorted[start[k]:start[k] + count[k]]``.
    """

    x: NDArray[np.float64]  # covariate, sorted
    e: NDArray[np.float64]  # event indicator, sorted
    start: NDArray[np.int64]
    end: NDArray[np.int64]
    d: NDArray[np.float64]  # tied events per key
    x_events: NDArray[np.float64]  # sum of x over the tied events per key
    rep: NDArray[np.int64]  # key index of each event (length = number of events)
    frac: NDArray[np.float64]  # Efron fraction l / d_k of each event within its key


def _risk_sets(t: NDArray, e: NDArray, x: NDArray, s: NDArray[np.int64]) -> _RiskSets:
    order = np.lexsort((t, s))
    ts, es, xs, ss = t[order], e[order], x[order], s[order]
    n = ts.size
    new_key = np.ones(n, dtype=bool)
    new_key[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
    start = np.flatnonzero(new_key)
    bounds = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    stratum_end = np.r_[bounds[1:], n]
    end = stratum_end[ss[start]]
    d = np.add.reduceat(es, start)
    xd = np.add.reduceat(es * xs, start)
    keep = d > 0
    d_int = d[keep].astype(np.int64)
    rep = np.repeat(np.arange(d_int.size), d_int)
    offset = np.repeat(np.cumsum(d_int) - d_int, d_int)
    frac = (np.arange(rep.size) - offset) / d_int[rep]
    return _RiskSets(xs, es, start[keep], end[keep], d[keep], xd[keep], rep, frac)


def logrank_fast(
    time: ArrayLike, event: ArrayLike, group: ArrayLike, strata: ArrayLike | None = None
) -> LogrankResult:
    r"""Two-group log-rank test in numpy, optionally stratified.

    At each distinct event time of a stratum, with :math:`n` at risk (:math:`n_1` in
    group 1), :math:`d` events (:math:`d_1` in group 1):

    .. math::

        O - E = \sum (d_1 - d\,n_1/n), \qquad
        V = \sum d\,\frac{n_1}{n}\Bigl(1 - \frac{n_1}{n}\Bigr)\frac{n - d}{n - 1}

    summed over times and strata (the stratified test adds per-stratum O - E and V),
    :math:`\chi^2 = (O - E)^2 / V` on 1 degree of freedom.
    """
    t, e = _check_tte(time, event)
    g = _check_group(group, t.size)
    rs = _risk_sets(t, e, g, _strata_codes(strata, t.size))
    c1 = np.r_[0.0, np.cumsum(rs.x)]
    n = (rs.end - rs.start).astype(np.float64)
    n1 = c1[rs.end] - c1[rs.start]
    frac = n1 / n
    expected = float(np.sum(rs.d * frac))
    with np.errstate(invalid="ignore", divide="ignore"):
        ties = np.where(n > 1, (n - rs.d) / (n - 1), 0.0)
    var = float(np.sum(rs.d * frac * (1 - frac) * ties))
    observed = float(np.sum(rs.x_events))
    u = observed - expected
    z = u / np.sqrt(var) if var > 0 else float("nan")
    chi2 = z * z
    return LogrankResult(
        z=float(z), chi2=float(chi2), p=float(stats.chi2.sf(chi2, 1)),
        observed=observed, expected=expected, variance=var,
    )


def _efron_terms(beta: float, rs: _RiskSets) -> tuple[float, float, float]:
    r"""Efron log partial likelihood, score and information for one covariate.

    For event time :math:`k` with :math:`d_k` tied events :math:`D_k`, risk-set sums
    :math:`S_r = \sum_{R_k} w x^r`, tied sums :math:`T_r = \sum_{D_k} w x^r`
    (:math:`w = e^{\beta x}`) and :math:`f = l/d_k,\ l = 0..d_k-1`:

    .. math::

        \ell = \sum_k \Bigl[\beta \sum_{D_k} x - \sum_l \log(S_0 - f T_0)\Bigr],\quad
        U = \sum_k \Bigl[\sum_{D_k} x - \sum_l \frac{S_1 - f T_1}{S_0 - f T_0}\Bigr],

    .. math::

        I = \sum_k \sum_l \Bigl[\frac{S_2 - f T_2}{S_0 - f T_0}
            - \Bigl(\frac{S_1 - f T_1}{S_0 - f T_0}\Bigr)^2\Bigr].
    """
    x = rs.x
    w = np.exp(beta * x)
    sums = []
    for r in range(3):
        wx = w * x**r
        suffix = np.r_[np.cumsum(wx[::-1])[::-1], 0.0]
        risk = suffix[rs.start] - suffix[rs.end]
        # rows between one event key and the next are censored-only keys (e = 0), so
        # reduceat over the kept starts sums exactly the tied events of each key
        tied = np.add.reduceat(wx * rs.e, rs.start)
        sums.append((risk, tied))
    rep, f = rs.rep, rs.frac
    den = [sums[r][0][rep] - f * sums[r][1][rep] for r in range(3)]
    # far from the optimum (a diverging estimate) a risk-set weight can underflow to 0: the
    # terms are then not finite and the caller rejects the step
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m1 = den[1] / den[0]
        ll = beta * float(rs.x_events.sum()) - float(np.sum(np.log(den[0])))
        score = float(rs.x_events.sum() - np.sum(m1))
        info = float(np.sum(den[2] / den[0] - m1 * m1))
    return ll, score, info


def cox_hr_fast(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    strata: ArrayLike | None = None,
    alpha: float = 0.05,
    ties: Literal["efron", "breslow"] = "efron",
    tol: float = 1e-10,
    max_iter: int = 100,
) -> HRResult:
    """Cox hazard ratio (group 1 vs 0) by Newton-Raphson on the Efron partial likelihood.

    Same model and tie handling as :func:`cox_hr` (lifelines), but a single covariate in
    pure numpy: O(n log n) to sort once, O(n) per iteration, typically 4-6 iterations.
    ``ties="breslow"`` uses Breslow's approximation instead (all Efron fractions 0; the
    default of SAS PHREG and Stata), for comparison with published tables.
    The covariate is centred (this leaves the likelihood unchanged and avoids overflow);
    steps are halved if the likelihood would fall. ``converged`` is False when the
    likelihood is monotone (e.g. no events in one arm) and the estimate diverges.
    """
    _check_alpha(alpha)
    t, e = _check_tte(time, event)
    g = _check_group(group, t.size)
    x = g - g.mean()
    rs = _risk_sets(t, e, x, _strata_codes(strata, t.size))
    if ties == "breslow":
        rs = replace(rs, frac=np.zeros_like(rs.frac))
    elif ties != "efron":
        raise ChemoioInputError("ties", f"unknown method {ties!r}", "use 'efron' or 'breslow'")
    if rs.d.size == 0:
        return HRResult(1.0, 0.0, float("inf"), float("nan"), 0.0, float("inf"), False)
    beta = 0.0
    ll, score, info = _efron_terms(beta, rs)
    info0 = info
    converged = False
    for _ in range(max_iter):
        if info <= 0:
            break
        step = score / info
        for _halving in range(40):
            new_ll, new_score, new_info = _efron_terms(beta + step, rs)
            if np.isfinite(new_ll) and np.isfinite(new_info) and new_ll >= ll - 1e-12 * abs(ll):
                break
            step /= 2
        else:
            break  # no step improves a finite likelihood: stop, not converged
        beta += step
        ll, score, info = new_ll, new_score, new_info
        if abs(step) < tol:
            converged = True
            break
        if abs(beta) > 50:
            break
    # a monotone likelihood (e.g. no events in one arm) can also stop on a tiny step: the
    # information has then vanished as the estimate runs off to infinity, so it is flagged
    if converged and not (info > 1e-6 * info0 and abs(beta) <= 20):
        converged = False
    se = 1.0 / np.sqrt(info) if info > 0 else float("inf")
    return _wald(float(beta), float(se), alpha, converged)


# ----------------------------------------------------------------------------- proportions


def orr_with_ci(
    responders: int | ArrayLike, n: int | None = None, alpha: float = 0.05
) -> tuple[float, float, float]:
    r"""Response rate with the exact Clopper-Pearson interval.

    ``responders`` is a count (then ``n`` is required) or a boolean array per patient.
    Limits: :math:`B(\alpha/2; x, n-x+1)` and :math:`B(1-\alpha/2; x+1, n-x)` (beta
    quantiles), 0 when ``x = 0`` and 1 when ``x = n``.
    """
    _check_alpha(alpha)
    x, n = _count(responders, n)
    rate = x / n
    low, high = clopper_pearson_ci(x, n, alpha)
    return float(rate), float(low), float(high)


def clopper_pearson_ci(x: ArrayLike, n: ArrayLike, alpha: float = 0.05) -> tuple[NDArray, NDArray]:
    """Exact Clopper-Pearson limits for counts ``x`` of ``n`` (arrays broadcast): the
    formula of :func:`orr_with_ci`, vectorised for many arms or replicates at once."""
    _check_alpha(alpha)
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(n <= 0) or np.any(x < 0) or np.any(x > n):
        raise ChemoioInputError("x", "counts must satisfy 0 <= x <= n with n > 0")
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(x == 0, 0.0, stats.beta.ppf(alpha / 2, np.maximum(x, 1e-300), n - x + 1))
        high = np.where(x == n, 1.0, stats.beta.ppf(1 - alpha / 2, x + 1, np.maximum(n - x, 1e-300)))
    return low, high


def _count(responders: int | ArrayLike, n: int | None) -> tuple[int, int]:
    arr = np.asarray(responders)
    if arr.ndim == 1:
        if n is not None and n != arr.size:
            raise ChemoioInputError("n", f"is {n} but responders has {arr.size} entries")
        x, n = int(arr.astype(bool).sum()), int(arr.size)
    elif arr.ndim == 0:
        if n is None:
            raise ChemoioInputError("n", "is required when responders is a count")
        x = int(arr)
    else:
        raise ChemoioInputError("responders", "must be a count or a 1-D boolean array")
    if n <= 0:
        raise ChemoioInputError("n", f"must be > 0, got {n}")
    if not 0 <= x <= n:
        raise ChemoioInputError("responders", f"must lie between 0 and n = {n}, got {x}")
    return x, int(n)


def wilson_ci(x: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    r"""Wilson score interval for a proportion: roots of :math:`|p - \hat p| = z\sqrt{p(1-p)/n}`."""
    _check_alpha(alpha)
    x, n = _count(x, n)
    z = stats.norm.ppf(1 - alpha / 2)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def newcombe_difference_ci(x1: ArrayLike, n1: ArrayLike, x2: ArrayLike, n2: ArrayLike,
                           alpha: float = 0.05) -> tuple[NDArray, NDArray, NDArray]:
    """Newcombe's hybrid score interval of :func:`proportion_difference_ci`, vectorised:
    counts ``x1`` of ``n1`` (experimental) and ``x2`` of ``n2`` (control), arrays broadcast.
    Returns (difference, low, high) as proportions."""
    _check_alpha(alpha)
    x1, n1, x2, n2 = (np.asarray(v, dtype=np.float64) for v in (x1, n1, x2, n2))
    if np.any(n1 <= 0) or np.any(n2 <= 0) or np.any((x1 < 0) | (x1 > n1) | (x2 < 0) | (x2 > n2)):
        raise ChemoioInputError("x1", "counts must satisfy 0 <= x <= n with n > 0")
    z = stats.norm.ppf(1 - alpha / 2)

    def wilson(x, n):
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return p, centre - half, centre + half

    p1, l1, u1 = wilson(x1, n1)
    p2, l2, u2 = wilson(x2, n2)
    diff = p1 - p2
    return diff, diff - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), diff + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def proportion_difference_ci(
    x1: int,
    n1: int,
    x2: int,
    n2: int,
    alpha: float = 0.05,
    method: Literal["newcombe", "wald"] = "newcombe",
) -> tuple[float, float, float]:
    r"""Difference of two proportions ``x1/n1 - x2/n2`` (experimental minus control) with CI.

    ``newcombe`` (default): Newcombe's hybrid score interval (method 10 in Newcombe,
    Stat Med 1998;17:873-890) from the Wilson limits :math:`(l_i, u_i)`:

    .. math::

        \bigl[\,\delta - \sqrt{(p_1-l_1)^2 + (u_2-p_2)^2},\;
               \delta + \sqrt{(u_1-p_1)^2 + (p_2-l_2)^2}\,\bigr]

    ``wald``: :math:`\delta \pm z\sqrt{p_1(1-p_1)/n_1 + p_2(1-p_2)/n_2}` (poor for small n
    or rates near 0 or 1; given for comparison). Typical use: difference in pCR rate.
    """
    _check_alpha(alpha)
    x1, n1 = _count(x1, n1)
    x2, n2 = _count(x2, n2)
    p1, p2 = x1 / n1, x2 / n2
    diff = p1 - p2
    if method == "newcombe":
        l1, u1 = wilson_ci(x1, n1, alpha)
        l2, u2 = wilson_ci(x2, n2, alpha)
        low = diff - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        high = diff + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    elif method == "wald":
        z = stats.norm.ppf(1 - alpha / 2)
        half = z * np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        low, high = diff - half, diff + half
    else:
        raise ChemoioInputError("method", f"unknown method {method!r}", "use 'newcombe' or 'wald'")
    return float(diff), float(low), float(high)


# ----------------------------------------------------------------------------- RMST


def _rmst_parts(
    t: NDArray[np.float64], e: NDArray[np.float64], tau: float
) -> tuple[float, float]:
    """RMST up to ``tau`` and its variance (Klein & Moeschberger, sec. 4.5)."""
    tj, sj, nj, dj = kaplan_meier(t, e)
    inside = tj <= tau
    tj, sj, nj, dj = tj[inside], sj[inside], nj[inside], dj[inside]
    knots = np.r_[0.0, tj, tau]
    level = np.r_[1.0, sj]
    pieces = level * np.diff(knots)
    value = float(pieces.sum())
    # A_j = integral of S from t_j to tau
    area_after = np.cumsum(pieces[::-1])[::-1][1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(nj > dj, area_after**2 * dj / (nj * (nj - dj)), 0.0)
    return value, float(terms.sum())


def rmst(time: ArrayLike, event: ArrayLike, tau: float) -> float:
    r"""Restricted mean survival time :math:`\int_0^\tau \hat S(u)\,du` under the KM curve."""
    t, e = _check_tte(time, event)
    if not np.isfinite(tau) or tau <= 0:
        raise ChemoioInputError("tau", f"must be finite and > 0, got {tau}")
    return _rmst_parts(t, e, float(tau))[0]


def rmst_difference(
    time: ArrayLike, event: ArrayLike, group: ArrayLike, tau: float, alpha: float = 0.05
) -> tuple[float, float, float]:
    r"""RMST(group 1) - RMST(group 0) up to ``tau`` with a normal-approximation CI.

    Variance per arm :math:`\sum_{t_j \le \tau} A_j^2\, d_j / (n_j (n_j - d_j))` with
    :math:`A_j = \int_{t_j}^{\tau} \hat S(u) du` (Klein & Moeschberger 2003, sec. 4.5);
    arms are independent so variances add.
    """
    _check_alpha(alpha)
    t, e = _check_tte(time, event)
    g = _check_group(group, t.size)
    if not np.isfinite(tau) or tau <= 0:
        raise ChemoioInputError("tau", f"must be finite and > 0, got {tau}")
    r1, v1 = _rmst_parts(t[g == 1], e[g == 1], float(tau))
    r0, v0 = _rmst_parts(t[g == 0], e[g == 0], float(tau))
    z = stats.norm.ppf(1 - alpha / 2)
    half = z * np.sqrt(v1 + v0)
    return r1 - r0, float(r1 - r0 - half), float(r1 - r0 + half)


# ----------------------------------------------------------------------------- replicate trials


def summarize_replicates(values: ArrayLike, level: float = 0.95) -> tuple[float, float, float]:
    """Median and central ``level`` interval (default 2.5 % / 97.5 %) over replicate trials.

    NaN replicates (e.g. a median not reached) are ignored; all-NaN gives NaNs.
    """
    if not 0 < level < 1:
        raise ChemoioInputError("level", f"must lie in (0, 1), got {level}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    q = np.quantile(v, [0.5, (1 - level) / 2, (1 + level) / 2])
    return float(q[0]), float(q[1]), float(q[2])


def probability_of_success(
    values: ArrayLike,
    alpha: float = 0.05,
    direction: Literal["lower", "higher"] = "lower",
    kind: Literal["p", "bound"] = "p",
    estimate: ArrayLike | None = None,
    threshold: float = 1.0,
) -> float:
    """Fraction of replicate trials that succeed (NaN replicates count as failures).

    * ``kind="p"``: success when the two-sided p-value is below ``alpha``; with
      ``estimate`` (e.g. the HR per replicate) the effect must also lie on the right side of
      ``threshold`` (``direction="lower"``: estimate < threshold, e.g. HR < 1).
    * ``kind="bound"``: ``values`` are confidence limits; success when they exclude
      ``threshold`` in the wanted direction: upper HR limit < 1 (``"lower"``) or lower limit
      of a rate difference > 0 (``"higher"``, ``threshold=0``). ``alpha`` is not used (it is
      set when the limits are computed).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ChemoioInputError("values", "is empty")
    if direction not in ("lower", "higher"):
        raise ChemoioInputError("direction", f"unknown {direction!r}", "use 'lower' or 'higher'")
    with np.errstate(invalid="ignore"):
        if kind == "p":
            _check_alpha(alpha)
            ok = v < alpha
            if estimate is not None:
                est = np.asarray(estimate, dtype=np.float64).ravel()
                if est.shape != v.shape:
                    raise ChemoioInputError("estimate", f"must have {v.size} entries like values")
                ok &= est < threshold if direction == "lower" else est > threshold
        elif kind == "bound":
            ok = v < threshold if direction == "lower" else v > threshold
        else:
            raise ChemoioInputError("kind", f"unknown {kind!r}", "use 'p' or 'bound'")
    return float(np.mean(ok))
