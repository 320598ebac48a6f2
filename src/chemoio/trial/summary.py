"""Simulated vs published: the table a trial statistician reads first.

One row per published number: endpoint | simulated median over replicates with its 95 %
interval | published value (CI) | inside?  "Inside" means the simulated median lies in the
published 95 % CI (or, when the publication gives no CI, that the published value lies in
the simulated 95 % interval). For each primary endpoint: the probability that a replicate
trial meets it (HR < 1 and two-sided log-rank p < alpha) and the resulting call.
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


def comparison_table(result: TrialResult) -> pd.DataFrame:
    """Rows: kind, arm/comparison, subgroup, endpoint, simulated (median, 2.5 %, 97.5 %),
    published value and CI, inside."""
    spec = result.spec
    pub = spec.published
    rows = []
    st = result.arm_stats
    if pub is not None:
        for arm, values in (pub.arms or {}).items():
            for key, pv in values.items():
                sel = st[(st.arm == arm) & (st.subgroup == "ITT") & (st.statistic == key)]
                sim = _interval(sel.value.to_numpy(dtype=float))
                ci = tuple(pv.ci) if pv.ci is not None else None
                rows.append({
                    "kind": "arm", "what": arm, "subgroup": "ITT", "endpoint": key,
                    "sim_median": sim[0], "sim_low": sim[1], "sim_high": sim[2],
                    "published": pv.value, "pub_low": ci[0] if ci else np.nan,
                    "pub_high": ci[1] if ci else np.nan, "inside": _inside(sim, pv.value, ci),
                    "source": pv.source,
                })
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
                "published": pv.value, "pub_low": ci[0] if ci else np.nan,
                "pub_high": ci[1] if ci else np.nan, "inside": _inside(sim, pv.value, ci),
                "source": pv.source,
            })
    return pd.DataFrame(rows, columns=[
        "kind", "what", "subgroup", "endpoint", "sim_median", "sim_low", "sim_high",
        "published", "pub_low", "pub_high", "inside", "source"])


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
