"""Biomarker experiment: who benefits from adding the checkpoint inhibitor to chemotherapy.

The trial is run as designed (its two arms: chemo-immunotherapy and chemotherapy), and the
benefit is read by PD-L1 category and by tumour mutational burden (TMB): hazard ratios
(combination vs chemotherapy; Cox over all replicates, stratified by replicate) and response
difference in each category. The PD-L1 score and cut-offs default to the ones used for the
tumour type's approvals and trials:

=====================  =====  =========================  ==========================================
tumour type            score  categories                 used in
=====================  =====  =========================  ==========================================
nsclc_(non)squamous    TPS    <1, 1-49, >=50 %           KEYNOTE-189 / -407 strata
hnscc                  CPS    <1, 1-19, >=20             KEYNOTE-048
esophageal             CPS    <10, >=10                  KEYNOTE-590
urothelial             CPS    <10, >=10                  KEYNOTE-361
urothelial_2l          IC     IC0-1, IC2-3               IMvigor211 (SP142)
tnbc, tnbc_early       CPS    <1, 1-9, >=10              KEYNOTE-355 / -522 PD-L1 subgroups
melanoma               TPS    <1, 1-4, >=5 %             CheckMate 067
=====================  =====  =========================  ==========================================

TMB: cut-points in mut/Mb (default 10, the tissue TMB-high threshold of the pembrolizumab
label) or ``"tertiles"`` of the trial population.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from chemoio.errors import ChemoioInputError, suggest
from chemoio.experiments import common as cm

__all__ = ["biomarker", "PDL1_DEFAULTS", "categories"]

#: tumour type -> (score, cut-points); a category is [cut_k, cut_{k+1}) on the score's scale.
PDL1_DEFAULTS: dict[str, tuple[str, tuple[float, ...]]] = {
    "nsclc_nonsquamous": ("tps", (1, 50)),
    "nsclc_squamous": ("tps", (1, 50)),
    "hnscc": ("cps", (1, 20)),
    "esophageal": ("cps", (10,)),
    "urothelial": ("cps", (10,)),
    "urothelial_2l": ("ic", (2,)),
    "tnbc": ("cps", (1, 10)),
    "tnbc_early": ("cps", (1, 10)),
    "melanoma": ("tps", (1, 5)),
}
SCORES = {"tps": "pdl1_tps", "cps": "pdl1_cps", "ic": "pdl1_ic"}
SCORE_LABEL = {"tps": "PD-L1 TPS", "cps": "PD-L1 CPS", "ic": "PD-L1 IC"}


def _fmt(x: float) -> str:
    return f"{x:g}" if float(x) == int(x) else f"{x:.1f}"


def categories(values: np.ndarray, cuts: Sequence[float], name: str, integer: bool) -> list[tuple[str, np.ndarray]]:
    """[(label, mask)] for the intervals (-inf, c1), [c1, c2), ..., [ck, inf). On an integer
    scale (TPS, CPS, IC) "[1, 50)" is written "1-49"."""
    v = np.asarray(values, dtype=float)
    edges = [-np.inf, *[float(c) for c in cuts], np.inf]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (v >= lo) & (v < hi)
        if name == "PD-L1 IC":
            lo_i = 0 if not np.isfinite(lo) else int(lo)
            hi_i = 3 if not np.isfinite(hi) else int(hi) - 1
            label = f"IC{lo_i}" if lo_i == hi_i else f"IC{lo_i}-{hi_i}"
        elif not np.isfinite(lo):
            label = f"<{_fmt(hi)}"
        elif not np.isfinite(hi):
            label = f">={_fmt(lo)}"
        elif integer:
            label = f"{_fmt(lo)}-{_fmt(hi - 1)}" if hi - 1 > lo else _fmt(lo)
        else:
            label = f"{_fmt(lo)}-<{_fmt(hi)}"
        out.append((f"{name} {label}", mask))
    return out


def _parse_cuts(text: str | Sequence[float], option: str) -> list[float]:
    cuts = cm.parse_number_list(text, option, minimum=0.0)
    if sorted(cuts) != list(cuts):
        raise ChemoioInputError(option, f"cut-points must increase, got {text!r}")
    return cuts


def biomarker(
    trial: Any = "keynote189",
    *,
    pdl1: str | None = None,
    pdl1_cuts: str | Sequence[float] | None = None,
    tmb: str | Sequence[float] = "10",
    replicates: int = 10,
    seed: int = 1,
    n_scale: float = 1.0,
    progress: cm.Progress | None = None,
) -> cm.ExperimentResult:
    """Benefit of the combination over chemotherapy by PD-L1 category and by TMB.

    ``pdl1``: ``"tps"``, ``"cps"`` or ``"ic"`` (default: the tumour type's usual score);
    ``pdl1_cuts``: cut-points on that score (default: the tumour type's); ``tmb``: cut-points
    in mut/Mb (``"10"``, ``"5,10"``) or ``"tertiles"``."""
    cm.check_run_settings(replicates, n_scale, seed)
    spec = cm.load_trial(trial)
    contrast = cm.find_contrast(spec)
    tumor = spec.population.tumor
    score_default, cuts_default = PDL1_DEFAULTS.get(tumor, ("tps", (1.0, 50.0)))
    score = (pdl1 or score_default).strip().lower()
    if score not in SCORES:
        raise ChemoioInputError("pdl1", f"unknown PD-L1 score {pdl1!r}", suggest(score, SCORES) or "tps, cps or ic")
    if pdl1_cuts is not None:
        cuts = _parse_cuts(pdl1_cuts, "pdl1_cuts")
    elif pdl1 is None or score == score_default:
        cuts = list(cuts_default)
    else:
        cuts = list({"tps": (1, 50), "cps": (1, 10), "ic": (2,)}[score])
    if score == "ic" and any(c > 3 or c != int(c) for c in cuts):
        raise ChemoioInputError("pdl1_cuts", f"IC categories are 0-3; cut-points must be whole numbers 1-3, got {cuts}")
    tertiles = isinstance(tmb, str) and tmb.strip().lower() in ("tertiles", "tertile", "t3")
    tmb_cuts = None if tertiles else _parse_cuts(tmb, "tmb")

    work = cm.Work(progress, 2 * cm.patients_per_run(spec, replicates, n_scale))
    exp_mix = cm.arm_mixture_keys(contrast.exp_arm)
    ctl_mix = cm.arm_mixture_keys(contrast.ctl_arm)
    d = cm.derive_spec(contrast, exp_mix, ctl_mix, tag="biomarker", note="design unchanged (two arms)")
    res = cm.run_condition(d, replicates=replicates, seed=seed, n_scale=n_scale, work=work)
    c2 = cm.Contrast(d, contrast.experimental, contrast.control, d.comparisons[0])
    p = res.patients
    arm = p["arm"].to_numpy()
    in_contrast = (arm == contrast.experimental) | (arm == contrast.control)

    if tertiles:
        tmb_cuts = [float(np.round(q, 1)) for q in np.quantile(p["tmb_mut_per_mb"].to_numpy(dtype=float), [1 / 3, 2 / 3])]
        if tmb_cuts[0] >= tmb_cuts[1]:
            tmb_cuts = tmb_cuts[:1]
    groups: list[tuple[str, str, np.ndarray]] = [("all", "all patients", in_contrast)]
    for label, mask in categories(p[SCORES[score]].to_numpy(dtype=float), cuts, SCORE_LABEL[score], integer=True):
        groups.append(("PD-L1", label, mask & in_contrast))
    assert tmb_cuts is not None
    for label, mask in categories(p["tmb_mut_per_mb"].to_numpy(dtype=float), tmb_cuts, "TMB", integer=False):
        groups.append(("TMB", label, mask & in_contrast))

    rows = []
    for family, label, mask in groups:
        row: dict[str, Any] = {"biomarker": family, "category": label}
        row.update(cm.contrast_stats(res, c2, mask=None if family == "all" else mask, power=family == "all"))
        row["n_per_trial"] = (row["n_combo"] + row["n_chemo"]) / replicates
        row["share_percent"] = 100.0 * mask.sum() / max(in_contrast.sum(), 1)
        rows.append(row)
    table = pd.DataFrame(rows)
    table = table[[c for c in table.columns if not c.startswith("p_success")] +
                  [c for c in table.columns if c.startswith("p_success")]]

    tte = [e.lower() for e in contrast.tte_endpoints]
    resp = [e.lower() for e in contrast.response_endpoints]
    headline = []
    for ep in tte:
        parts = [f"{r.category}: {r[f'hr_{ep}']:.2f}" for _, r in table.iterrows() if r.biomarker != "all"]
        headline.append(f"HR {ep.upper()} by category - " + "; ".join(parts) + ".")
    display = ["biomarker", "category", "n_per_trial"]
    display += cm.hr_columns(tte)
    display += [f"{ep}_combo" for ep in resp] + [f"{ep}_chemo" for ep in resp]
    settings = {
        "title": "benefit of the combination by PD-L1 and TMB",
        **cm.trial_settings(spec, contrast),
        "PD-L1 score": f"{SCORE_LABEL[score]}, cut-points {', '.join(_fmt(c) for c in cuts)}",
        "TMB cut-points (mut/Mb)": ", ".join(_fmt(c) for c in tmb_cuts) + (" (tertiles)" if tertiles else ""),
        **cm.run_settings(d, replicates=replicates, seed=seed, n_scale=n_scale),
    }
    notes = [
        "The trial runs as designed; categories are read from the randomised patients, as an unstratified "
        "post-hoc subgroup analysis (no multiplicity control). n_per_trial = patients per replicate trial.",
        "HRs: Cox model over all replicate trials, stratified by replicate (95 % Wald CI); small categories "
        "give wide intervals.",
        "Mechanism: in the model PD-L1 sets the PD-1 brake on killing (what blockade releases) and TMB sets "
        "antigenicity (how well chemotherapy-released antigen primes T cells).",
        cm.DISCLAIMER,
    ]
    from chemoio.experiments.plots import biomarker_figure

    return cm.ExperimentResult("biomarker", spec.name, table, settings, headline, notes, {"design": d}, display,
                               biomarker_figure)
