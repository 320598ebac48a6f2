"""Simulated vs published: the table a trial statistician reads first.

One row per published number: endpoint | simulated median over replicates with its 95 %
interval | published value (CI) | inside?  "Inside" means the simulated median lies in the
published 95 % CI (or, when the publication gives no CI, that the published value lies in
the simulated 95 % interval). For each primary endpoint: the probability that a replicate
trial meets it (HR < 1 and two-sided log-rank p < alpha) and the resulting call.

Rates also carry the 95 % CI one trial would report (``sim_ci_low``/``sim_ci_high``, the
median over replicates of each replicate's interval): the exact Clopper-Pearson interval for
an arm's ORR, Newcombe's hybrid score interval for the ORR difference between two arms.
Besides the published numbers the table always has, per arm, the simulated incidence of
grade >= 3 neutropenia (when the spec's toxicity model is on) and, per comparison with ORR
among its endpoints, the ORR difference in percentage points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chemoio.trial.runner import TrialResult


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return np.nan, np.nan, np.nan
    return float(np.median(v)), float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))


def _inside(sim: tuple[float, float, float], value: float, ci) -> bool | None:
    med, lo, hi = sim
    if not np.isfinite(med):
        return None
    if ci is not None and ci[0] is not None and ci[1] is not None:
        return bool(ci[0] <= med <= ci[1])
    return bool(lo <= value <= hi)


def _alpha(spec, endpoint: str) -> float:
    by = getattr(spec, "alpha_by_endpoint", None) or {}
    return float(by.get(endpoint, spec.alpha))


def success_probability(result: TrialResult, experimental: str, control: str, endpoint: str,
                        subgroup: str = "ITT") -> float:
    """Share of replicate trials in which the comparison is significant in favour of the
    experimental arm (HR < 1, two-sided log-rank p < alpha)."""
    cs = result.comparison_stats
    m = (cs.experimental == experimental) & (cs.control == control) & (cs.endpoint == endpoint) & (
        cs.subgroup == subgroup)
    rows = cs[m]
    if rows.empty:
        return np.nan
    alpha = _alpha(result.spec, endpoint)
    return float(np.mean((rows.hr < 1.0) & (rows.p < alpha)))


#: Arm statistics whose per-replicate 95 % CI is in ``arm_stats`` (exact Clopper-Pearson).
_RATE_CI = {"orr_percent": ("orr_ci_low_percent", "orr_ci_high_percent")}


def _median_of(st: pd.DataFrame, arm: str, key: str) -> float:
    v = st[(st.arm == arm) & (st.subgroup == "ITT") & (st.statistic == key)].value.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else np.nan


def comparison_table(result: TrialResult) -> pd.DataFrame:
    """Rows: kind, arm/comparison, subgroup, endpoint, simulated (median, 2.5 %, 97.5 % over
    replicates), single-trial 95 % CI (rates), published value and CI, inside."""
    spec = result.spec
    pub = spec.published
    rows = []
    st = result.arm_stats

    def arm_row(arm: str, key: str, pv) -> dict:
        sel = st[(st.arm == arm) & (st.subgroup == "ITT") & (st.statistic == key)]
        sim = _interval(sel.value.to_numpy(dtype=float))
        ci = tuple(pv.ci) if pv is not None and pv.ci is not None else None
        lo_key, hi_key = _RATE_CI.get(key, (None, None))
        return {
            "kind": "arm", "what": arm, "subgroup": "ITT", "endpoint": key,
            "sim_median": sim[0], "sim_low": sim[1], "sim_high": sim[2],
            "sim_ci_low": _median_of(st, arm, lo_key) if lo_key else np.nan,
            "sim_ci_high": _median_of(st, arm, hi_key) if hi_key else np.nan,
            "published": pv.value if pv is not None else np.nan,
            "pub_low": ci[0] if ci else np.nan, "pub_high": ci[1] if ci else np.nan,
            "inside": _inside(sim, pv.value, ci) if pv is not None else None,
            "source": pv.source if pv is not None else "simulated only",
        }

    published_arms = (pub.arms or {}) if pub is not None else {}
    if pub is not None:
        for arm, values in published_arms.items():
            for key, pv in values.items():
                rows.append(arm_row(arm, key, pv))
        cs = result.comparison_stats
        for comp in pub.comparisons or []:
            sub = comp.subgroup or "ITT"
            sel = cs[(cs.experimental == comp.experimental) & (cs.control == comp.control)
                     & (cs.endpoint == comp.endpoint) & (cs.subgroup == sub)]
            sim = _interval(sel.hr.to_numpy(dtype=float))
            pv = comp.hr
            ci = tuple(pv.ci) if pv.ci is not None else None
            rows.append({
                "kind": "hazard ratio", "what": f"{comp.experimental} vs {comp.control}",
                "subgroup": sub, "endpoint": f"HR {comp.endpoint}",
                "sim_median": sim[0], "sim_low": sim[1], "sim_high": sim[2],
                "sim_ci_low": np.nan, "sim_ci_high": np.nan,
                "published": pv.value, "pub_low": ci[0] if ci else np.nan,
                "pub_high": ci[1] if ci else np.nan, "inside": _inside(sim, pv.value, ci),
                "source": pv.source,
            })
    # simulated neutropenia per arm (the published value where the spec gives one)
    if "neutropenia_g3plus_percent" in set(st.statistic):
        for arm in spec.arm_names:
            if "neutropenia_g3plus_percent" not in published_arms.get(arm, {}):
                rows.append(arm_row(arm, "neutropenia_g3plus_percent", None))
    # ORR difference (experimental minus control, percentage points) of each comparison
    rs = getattr(result, "rate_stats", None)
    for comp in spec.comparisons:
        if "ORR" not in comp.endpoints or rs is None or rs.empty:
            continue
        sel = rs[(rs.experimental == comp.experimental) & (rs.control == comp.control)
                 & (rs.subgroup == "ITT") & (rs.endpoint == "ORR")]
        sim = _interval(sel.diff_percent.to_numpy(dtype=float))
        pe = published_arms.get(comp.experimental, {}).get("orr_percent")
        pc = published_arms.get(comp.control, {}).get("orr_percent")
        diff = pe.value - pc.value if pe is not None and pc is not None else np.nan
        rows.append({
            "kind": "rate difference", "what": f"{comp.experimental} vs {comp.control}",
            "subgroup": "ITT", "endpoint": "ORR difference (points)",
            "sim_median": sim[0], "sim_low": sim[1], "sim_high": sim[2],
            "sim_ci_low": _nanmedian(sel.ci_low_percent), "sim_ci_high": _nanmedian(sel.ci_high_percent),
            "published": diff, "pub_low": np.nan, "pub_high": np.nan,
            "inside": _inside(sim, diff, None) if np.isfinite(diff) else None,
            "source": "difference of the published arm ORRs" if np.isfinite(diff) else "simulated only",
        })
    return pd.DataFrame(rows, columns=[
        "kind", "what", "subgroup", "endpoint", "sim_median", "sim_low", "sim_high",
        "sim_ci_low", "sim_ci_high", "published", "pub_low", "pub_high", "inside", "source"])


def _nanmedian(values) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else np.nan


def primary_calls(result: TrialResult) -> pd.DataFrame:
    """For every comparison and primary endpoint: P(success) and the simulated call,
    beside the published call when the spec records it."""
    spec = result.spec
    pub = spec.published
    published_met = {}
    if pub is not None:
        for comp in pub.comparisons or []:
            if comp.primary_endpoint_met is not None:
                published_met.setdefault((comp.experimental, comp.control, comp.endpoint),
                                         comp.primary_endpoint_met)
    rows = []
    primaries = set(spec.primary_endpoints or [])
    for comp in spec.comparisons:
        for ep in comp.endpoints:
            if ep not in ("OS", "PFS", "EFS") or (primaries and ep not in primaries):
                continue
            sub = getattr(comp, "primary_subgroup", None) or "ITT"
            p = success_probability(result, comp.experimental, comp.control, ep, sub)
            met = published_met.get((comp.experimental, comp.control, ep))
            rows.append({
                "comparison": f"{comp.experimental} vs {comp.control}", "endpoint": ep, "subgroup": sub,
                "p_success": p, "simulated_call": bool(p > 0.5) if np.isfinite(p) else None,
                "published_call": met,
                "agrees": (bool(p > 0.5) == bool(met)) if (met is not None and np.isfinite(p)) else None,
            })
    return pd.DataFrame(rows, columns=["comparison", "endpoint", "subgroup", "p_success", "simulated_call",
                                       "published_call", "agrees"])
