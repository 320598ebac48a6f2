r"""Interaction experiment: does the combination beat independent action of its parts?

Independent drug action (review: Plana, Palmer & Sorger 2022, Cancer Discov 12:606) says a
patient on a combination does as well as on the better of its drugs given alone, and no
better: a combination helps a population by giving each patient more than one chance of
responding, not by making the drugs stronger together. In 13 phase III trials of
checkpoint-inhibitor combinations, progression-free survival on the combination matched that
prediction from the monotherapies (Palmer 2022, Clin Cancer Res, PMC9068233).

The experiment runs the trial's combination arm three times, on the same virtual patients
(the same seed: common random numbers), with

* the combination as designed,
* its checkpoint inhibitor(s) alone (every chemotherapy item removed),
* its chemotherapy alone (every checkpoint-inhibitor item removed),

and the trial's own control arm each time. Per patient, independent action is the better of
the two monotherapies:

.. math::
    T_{IA} = \max(T_{ICI}, T_{chemo}),\qquad R_{IA} = R_{ICI} \lor R_{chemo}

for progression-free time T (an event only when both times are events: a censored time only
bounds the later one from below) and objective response R. Because the two monotherapies are given to the same virtual patients, this is the
independent-action benchmark with the model's own correlation of the two responses; the row
"independent action, uncorrelated" assumes none, as trial analyses must
(:math:`S_{IA}(t) = S_a + S_b - S_a S_b` from the two Kaplan-Meier curves,
:math:`P(R) = 1 - (1-p_a)(1-p_b)`).

A combination far above independent action in the model is within-patient synergy: the
mechanism (debulking raising the kill per T cell, antigen release, Treg depletion) makes the
two drugs stronger together than either alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chemoio.errors import ChemoioInputError
from chemoio.experiments import common as cm

__all__ = ["interaction", "ici_only", "chemo_only", "better_of"]

#: Conditions, in table order: (key, label).
CONDITIONS = (("chemo", "chemotherapy alone"), ("ici", "checkpoint inhibitor alone"),
              ("combination", "combination"))


def ici_only(regimen):
    """``regimen`` without its chemotherapy items (checkpoint inhibitors and placebo kept)."""
    items = [i for i in regimen.items if cm.item_kind(i) != "chemo"]
    if not any(cm.item_kind(i) == "ici" for i in items):
        raise ChemoioInputError("trial", "the combination arm has no checkpoint-inhibitor item")
    return cm.with_items(regimen, items)


def chemo_only(regimen):
    """``regimen`` without its checkpoint-inhibitor items (chemotherapy and placebo kept)."""
    items = [i for i in regimen.items if cm.item_kind(i) != "ici"]
    if not any(cm.item_kind(i) == "chemo" for i in items):
        raise ChemoioInputError("trial", "the combination arm has no chemotherapy item")
    return cm.with_items(regimen, items)


def better_of(t_a: np.ndarray, e_a: np.ndarray, t_b: np.ndarray, e_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per patient, the later of two times to event, max(T_a, T_b): observed at the later of
    the two observed times, and an event only when both times are events. A censored time
    only says that the event comes later, so with either one censored the later of the two
    may lie beyond what was seen, and the result is censored there."""
    t_a, t_b = np.asarray(t_a, dtype=float), np.asarray(t_b, dtype=float)
    e_a, e_b = np.asarray(e_a, dtype=bool), np.asarray(e_b, dtype=bool)
    return np.maximum(t_a, t_b), e_a & e_b


def _landmark(tj: np.ndarray, s: np.ndarray, t_month: float, max_t: float) -> float:
    if max_t < t_month:
        return float("nan")
    return 100.0 * float(cm.km_at(tj, s, np.array([t_month]))[0])


def _rmst(tj: np.ndarray, s: np.ndarray, horizon: float) -> float:
    """Restricted mean event-free time (months) up to ``horizon``: the area under the step
    curve (it needs no proportional hazards, so it reads crossing curves too)."""
    edges = np.concatenate([np.clip(tj, 0.0, horizon), [horizon]])
    return float(np.sum(s * np.diff(edges)))


def _exp_patients(result, arm: str) -> pd.DataFrame:
    p = result.patients
    return p[p["arm"] == arm].sort_values(["replicate", "patient_index"]).reset_index(drop=True)


def interaction(
    trial: Any = "keynote189",
    *,
    replicates: int = 10,
    seed: int = 1,
    n_scale: float = 1.0,
    parameters: "dict[str, float] | str | Path | None" = None,
    progress: cm.Progress | None = None,
) -> cm.ExperimentResult:
    """Compare the trial's combination with independent action of its parts, in the same
    virtual patients (module docstring). One row per condition: the trial's control arm,
    chemotherapy alone, checkpoint inhibitor alone, independent action (same patients; and
    uncorrelated), the combination; PFS (EFS for a neoadjuvant trial), the response rate (pCR
    there), and the HR of each against the control arm. ``parameters``: a parameter set, as
    a dict of every parameter or a parameter-set YAML path (default: the shipped one)."""
    from chemoio.analysis.survival import DAYS_PER_MONTH, cox_hr_fast

    cm.check_run_settings(replicates, n_scale, seed)
    params, set_label = cm.parameter_set_arg(parameters)
    spec = cm.load_trial(trial)
    contrast = cm.find_contrast(spec)
    ep = "efs" if "EFS" in contrast.tte_endpoints else "pfs"
    resp = "pcr" if "pCR" in contrast.response_endpoints else "responder"
    ctl_keys = cm.arm_mixture_keys(contrast.ctl_arm)
    mixes = {
        "combination": cm.arm_mixture_keys(contrast.exp_arm),
        "ici": cm.transform_arm(contrast.exp_arm, ici_only),
        "chemo": cm.transform_arm(contrast.exp_arm, chemo_only),
    }
    notes_for = {"combination": "the combination as designed",
                 "ici": "the combination arm's checkpoint inhibitor alone",
                 "chemo": "the combination arm's chemotherapy alone"}
    specs: dict[str, Any] = {key: cm.derive_spec(contrast, mix, ctl_keys, tag=f"interaction_{key}",
                                                  note=notes_for[key]) for key, mix in mixes.items()}
    work = cm.Work(progress, sum(2 * cm.patients_per_run(d, replicates, n_scale) for d in specs.values()))
    pats: dict[str, pd.DataFrame] = {}
    control: pd.DataFrame | None = None
    for key, d in specs.items():
        res = cm.run_condition(d, replicates=replicates, seed=seed, n_scale=n_scale, work=work,
                               parameters=params)
        pats[key] = _exp_patients(res, contrast.experimental)
        if key == "combination":
            control = _exp_patients(res, contrast.control)
    assert control is not None
    ref = pats["combination"]
    for key, p in pats.items():  # common random numbers: the very same virtual patients
        if not (p[["replicate", "patient_index", "censor_day"]].equals(ref[["replicate", "patient_index", "censor_day"]])):
            raise RuntimeError(f"condition {key!r} did not simulate the same patients as the combination")
    if f"{ep}_day" not in ref or resp not in ref:
        raise ChemoioInputError("trial", f"{spec.name} reports neither PFS nor EFS with a response endpoint")

    def arrays(p: pd.DataFrame):
        return (p[f"{ep}_day"].to_numpy(dtype=float), p[f"{ep}_event"].to_numpy(dtype=bool),
                p[resp].to_numpy(dtype=bool))

    t_c, e_c, r_c = arrays(control)
    strata_ctl = control["replicate"].to_numpy()
    strata_exp = ref["replicate"].to_numpy()
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rows: list[dict[str, Any]] = []
    max_t = float(np.nanmax(np.concatenate([ref[f"{ep}_day"], control[f"{ep}_day"]]))) / DAYS_PER_MONTH

    def cox(t1, e1, s1, t0, e0, s0) -> tuple[float, float, float]:
        """HR (95 % CI) of group 1 against group 0, stratified by replicate."""
        tt, ee = np.concatenate([t1, t0]), np.concatenate([e1, e0])
        x = np.concatenate([np.ones(t1.size), np.zeros(t0.size)])
        ok = np.isfinite(tt)
        r = cox_hr_fast(tt[ok], ee[ok], x[ok], strata=np.concatenate([s1, s0])[ok])
        return (r.hr, r.ci_low, r.ci_high) if r.converged else (float("nan"),) * 3

    def hr_vs_control(t: np.ndarray, e: np.ndarray) -> tuple[float, float, float]:
        return cox(t, e, strata_exp, t_c, e_c, strata_ctl)

    def add(key: str, label: str, regimen: str, tj, s, rate: float, hr=(float("nan"),) * 3) -> None:
        curves[key] = (tj, s)
        rows.append({"condition": key, "label": label,
                     f"median_{ep}": cm.km_median(tj, s),
                     f"{ep}_{cm.LANDMARK_MONTHS}mo": _landmark(tj, s, cm.LANDMARK_MONTHS, max_t),
                     f"rmst_{ep}_{cm.LANDMARK_MONTHS}mo": (_rmst(tj, s, cm.LANDMARK_MONTHS)
                                                           if max_t >= cm.LANDMARK_MONTHS else float("nan")),
                     f"{resp if resp == 'pcr' else 'orr'}": 100.0 * rate,
                     f"hr_{ep}": hr[0], f"hr_{ep}_low": hr[1], f"hr_{ep}_high": hr[2],
                     "regimen": regimen})

    add("control", f"control ({contrast.control})", cm.mixture_text(ctl_keys), *cm.km_curve(t_c, e_c), r_c.mean())
    arr = {k: arrays(p) for k, p in pats.items()}
    for key, label in CONDITIONS[:2]:
        t, e, r = arr[key]
        add(key, label, cm.mixture_text(mixes[key]), *cm.km_curve(t, e), r.mean(), hr_vs_control(t, e))
    (t_i, e_i, r_i), (t_h, e_h, r_h) = arr["ici"], arr["chemo"]
    t_ia, e_ia = better_of(t_i, e_i, t_h, e_h)
    add("ia", "independent action (same patients)", "the better of the two monotherapies, per patient",
        *cm.km_curve(t_ia, e_ia), (r_i | r_h).mean(), hr_vs_control(t_ia, e_ia))
    (tja, sa), (tjb, sb) = curves["ici"], curves["chemo"]
    grid = np.union1d(tja, tjb)
    sa_g, sb_g = cm.km_at(tja, sa, grid), cm.km_at(tjb, sb, grid)
    add("ia_uncorrelated", "independent action (uncorrelated)",
        "from the two monotherapy curves, assuming independent responses", grid, sa_g + sb_g - sa_g * sb_g,
        1.0 - (1.0 - r_i.mean()) * (1.0 - r_h.mean()))
    t, e, r = arr["combination"]
    add("combination", "combination", cm.mixture_text(mixes["combination"]), *cm.km_curve(t, e), r.mean(),
        hr_vs_control(t, e))
    table = pd.DataFrame(rows)

    # the combination against independent action in the same patients (descriptive: the two
    # "arms" are the same patients, so no confidence interval is given)
    hr_vs_ia = cox(t, e, strata_exp, t_ia, e_ia, strata_exp)[0]
    both = np.isfinite(t_i) & np.isfinite(t_h)
    rho = cm.spearman(t_i[both], t_h[both])
    rate = "pCR" if resp == "pcr" else "ORR"
    by = table.set_index("condition")
    med = f"median_{ep}"
    rm = f"rmst_{ep}_{cm.LANDMARK_MONTHS}mo"
    headline = [
        f"{ep.upper()}: combination median {cm.fmt_value(by.at['combination', med])} months against "
        f"{cm.fmt_value(by.at['ia', med])} for independent action in the same patients "
        f"(chemotherapy alone {cm.fmt_value(by.at['chemo', med])}, inhibitor alone {cm.fmt_value(by.at['ici', med])}); "
        f"HR combination vs independent action {cm.fmt_value(hr_vs_ia)} (below 1: within-patient synergy; "
        f"restricted mean to {cm.LANDMARK_MONTHS} months {cm.fmt_value(by.at['combination', rm])} against "
        f"{cm.fmt_value(by.at['ia', rm])} months).",
        f"{rate}: combination {cm.fmt_value(by.at['combination', rate.lower()])} % against "
        f"{cm.fmt_value(by.at['ia', rate.lower()])} % for independent action "
        f"({cm.fmt_value(by.at['ia_uncorrelated', rate.lower()])} % if the two responses were uncorrelated).",
        f"Spearman correlation of a patient's {ep.upper()} on the two monotherapies: {cm.fmt_value(rho)}.",
    ]
    pub = _published(spec, contrast.experimental, ep, rate.lower())
    if pub:
        headline.append("Published combination arm: " + pub + ".")
    display = (["label", med, f"{ep}_{cm.LANDMARK_MONTHS}mo", f"rmst_{ep}_{cm.LANDMARK_MONTHS}mo", rate.lower()]
               + cm.hr_columns([ep]))
    settings = {
        "title": "the combination against independent action of its parts",
        **cm.trial_settings(spec, contrast),
        "parameter set": set_label,
        "combination vs independent action (HR, same patients)": cm.fmt_value(hr_vs_ia),
        f"{ep.upper()} rank correlation on the two monotherapies": cm.fmt_value(rho),
        **cm.run_settings(specs["combination"], replicates=replicates, seed=seed, n_scale=n_scale),
    }
    notes = [
        "Every condition runs the combination arm's virtual patients with the same seed (common random "
        "numbers): the same patients, randomisation, scans and event draws, so the rows differ only by "
        "the drugs given. HRs are against the trial's control arm of the combination condition (Cox, "
        "stratified by replicate, 95 % Wald CI).",
        f"rmst_{ep}_{cm.LANDMARK_MONTHS}mo: restricted mean {ep.upper()} to {cm.LANDMARK_MONTHS} months (area "
        "under the Kaplan-Meier curve), which reads crossing curves where a hazard ratio does not.",
        "Independent action (same patients): per patient the longer of the two monotherapy times "
        f"({ep.upper()}) and a response when either monotherapy responds; it keeps the model's own "
        "correlation between the two. Uncorrelated: S = S_a + S_b - S_a S_b from the two curves, "
        "as trial analyses compute it without patient-level data.",
        "A combination above independent action is within-patient synergy in the model; phase III "
        "checkpoint-inhibitor combinations matched independent action in PFS (Palmer 2022, Clin Cancer "
        "Res, PMC9068233).",
        "The monotherapy conditions are the combination arm's own schedules with one part removed, not "
        "any trial's monotherapy arm.",
        cm.DISCLAIMER,
    ]
    table["hr_vs_independent_action"] = np.where(table.condition == "combination", hr_vs_ia, np.nan)
    from chemoio.experiments.plots import interaction_figure

    return cm.ExperimentResult("interaction", spec.name, table, settings, headline, notes, specs, display,
                               interaction_figure, data={"curves": curves, "endpoint": ep})


def _published(spec, arm: str, ep: str, rate: str) -> str:
    """The published median (PFS/EFS) and response rate of the combination arm, if any."""
    pub = getattr(spec, "published", None)
    values = (pub.arms or {}).get(arm, {}) if pub is not None else {}
    parts = []
    key = {"pfs": "median_pfs_months", "efs": None}[ep]
    if key and values.get(key) is not None and values[key].value is not None:
        parts.append(f"median {ep.upper()} {values[key].value:g} months")
    rkey = "pcr_percent" if rate == "pcr" else "orr_percent"
    if values.get(rkey) is not None and values[rkey].value is not None:
        parts.append(f"{'pCR' if rate == 'pcr' else 'ORR'} {values[rkey].value:g} %")
    return ", ".join(parts)
