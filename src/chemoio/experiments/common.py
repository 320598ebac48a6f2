"""Shared machinery of the mechanism experiments.

An experiment takes a shipped (or user) trial spec, keeps its chemo-immunotherapy vs
chemotherapy comparison, changes **only the design** of the two arms (which chemotherapy,
when, how much, how many cycles) and runs the unchanged mechanistic model through
:func:`chemoio.trial.runner.run_trial`. Every condition of an experiment uses the same seed,
so the same virtual patients, randomisation and random event draws (common random numbers):
differences between rows come from the design change, not from sampling.

Statistics are pooled over the replicate trials of a condition: one Cox model (Efron ties)
stratified by replicate, Kaplan-Meier medians over all patients of an arm, response rates
over all patients. ``p_success_*`` is the share of replicate trials that meet the endpoint
(HR < 1 and two-sided log-rank p < alpha), i.e. the power of a trial of the spec's size.

Research software: outputs describe a model, not any patient; not medical advice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from chemoio.errors import ChemoioInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chemoio.regimens import Regimen
    from chemoio.trial.runner import TrialResult
    from chemoio.trial.spec import ArmSpec, ComparisonSpec, TrialSpec

DISCLAIMER = ("Research output of chemoio, an in-silico model: it describes virtual patients, "
              "not any real patient. Not medical advice; it must not inform anyone's care.")

#: Time-to-event endpoints an experiment reports hazard ratios for, in this order.
TTE_ENDPOINTS = ("OS", "PFS", "EFS")
#: Response endpoints an experiment reports rates for (patients-table column).
RESPONSE_ENDPOINTS = {"ORR": "responder", "pCR": "pcr"}

#: Model observables of the mechanism read-outs (a small cohort per condition).
READOUT_OBSERVABLES = ("tumor_cells", "chemo_kill_per_day", "antigen_signal", "mature_dc",
                       "effector_t", "treg", "mdsc", "lymphocytes")

Progress = Callable[[int, int], None]  # (advance, total)


# ----------------------------------------------------------------------------- input parsing


def parse_number_list(text: str | Sequence[float] | None, option: str, *, integer: bool = False,
                      minimum: float | None = None, strictly_above: float | None = None) -> list[float]:
    """``"-21,-7,0,7"`` (or a sequence) -> numbers; errors name ``option``."""
    if text is None:
        raise ChemoioInputError(option, "is required")
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(p == "" for p in parts):
            raise ChemoioInputError(option, f"cannot read {text!r}", "write numbers separated by commas, e.g. '-21,0,21'")
        values: list[float] = []
        for p in parts:
            try:
                values.append(float(p))
            except ValueError:
                raise ChemoioInputError(option, f"{p!r} is not a number",
                                        "write numbers separated by commas, e.g. '-21,0,21'") from None
    else:
        try:
            values = [float(v) for v in text]
        except (TypeError, ValueError):
            raise ChemoioInputError(option, f"expected numbers, got {text!r}") from None
        if not values:
            raise ChemoioInputError(option, "needs at least one value")
    for v in values:
        if not math.isfinite(v):
            raise ChemoioInputError(option, f"{v!r} is not a finite number")
        if integer and v != int(v):
            raise ChemoioInputError(option, f"expected whole numbers, got {v:g}")
        if minimum is not None and v < minimum:
            raise ChemoioInputError(option, f"must be >= {minimum:g}, got {v:g}")
        if strictly_above is not None and v <= strictly_above:
            raise ChemoioInputError(option, f"must be > {strictly_above:g}, got {v:g}")
    if len(set(values)) != len(values):
        raise ChemoioInputError(option, f"lists a value twice: {text!r}")
    return [int(v) for v in values] if integer else values


def check_run_settings(replicates: int, n_scale: float, seed: int) -> None:
    """Common settings; errors name the option."""
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
        raise ChemoioInputError("replicates", f"must be a whole number >= 1, got {replicates!r}")
    if not isinstance(n_scale, (int, float)) or not math.isfinite(n_scale) or n_scale <= 0:
        raise ChemoioInputError("n_scale", f"must be a number > 0, got {n_scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ChemoioInputError("seed", f"must be a whole number, got {seed!r}")


def check_n_mechanism(n_mechanism: int) -> None:
    """Patients in an experiment's mechanism read-out; errors name ``n_mechanism``."""
    if isinstance(n_mechanism, bool) or not isinstance(n_mechanism, (int, np.integer)) or n_mechanism < 1:
        raise ChemoioInputError("n_mechanism", f"must be a whole number >= 1, got {n_mechanism!r}")


# ----------------------------------------------------------------------------- trial and arms


def load_trial(trial: "str | Path | TrialSpec") -> "TrialSpec":
    """A TrialSpec from a shipped name, a YAML path or a TrialSpec; errors name ``trial``."""
    from chemoio.trial.spec import TrialSpec, load_spec

    if isinstance(trial, TrialSpec):
        return trial
    try:
        return load_spec(trial)
    except ChemoioInputError as e:
        if e.field == "spec":
            raise ChemoioInputError("trial", e.message, e.hint) from None
        raise ChemoioInputError("trial", f"{e.field}: {e.message}", e.hint) from None


def item_kind(item) -> str:
    """``"placebo"``, ``"ici"`` (an antibody) or ``"chemo"``."""
    from chemoio.drugs import get_drug

    if item.is_placebo:
        return "placebo"
    return "ici" if get_drug(item.drug).is_antibody else "chemo"


def _kinds(regimen: "Regimen") -> set[str]:
    return {item_kind(i) for i in regimen.items}


@dataclass(frozen=True)
class Contrast:
    """The chemo-immunotherapy (``experimental``) vs chemotherapy (``control``) comparison of
    a trial spec, which every experiment modifies."""

    spec: "TrialSpec"
    experimental: str
    control: str
    comparison: "ComparisonSpec"

    @property
    def exp_arm(self) -> "ArmSpec":
        return self.spec.arm(self.experimental)

    @property
    def ctl_arm(self) -> "ArmSpec":
        return self.spec.arm(self.control)

    @property
    def tte_endpoints(self) -> list[str]:
        return [e for e in TTE_ENDPOINTS if e in self.comparison.endpoints]

    @property
    def response_endpoints(self) -> list[str]:
        return [e for e in RESPONSE_ENDPOINTS if e in self.comparison.endpoints]


def find_contrast(spec: "TrialSpec") -> Contrast:
    """The first comparison of ``spec`` whose experimental arm gives a checkpoint inhibitor
    with chemotherapy and whose control arm gives chemotherapy without one."""
    for comp in spec.comparisons:
        exp, ctl = spec.arm(comp.experimental), spec.arm(comp.control)
        exp_ok = all({"ici", "chemo"} <= _kinds(r) for _, r in exp.mixture())
        ctl_ok = all("chemo" in _kinds(r) and "ici" not in _kinds(r) for _, r in ctl.mixture())
        if exp_ok and ctl_ok:
            return Contrast(spec, comp.experimental, comp.control, comp)
    raise ChemoioInputError(
        "trial", f"{spec.name} has no comparison of chemotherapy + checkpoint inhibitor vs chemotherapy",
        "e.g. keynote189, impower130, imvigor130, keynote361, keynote048, keynote590, keynote522",
    )


def arm_mixture_keys(arm: "ArmSpec") -> dict[str, float]:
    """The arm's regimens as written in the spec: {preset name or text: share}."""
    if arm.regimens is not None:
        return dict(arm.regimens)
    assert arm.regimen is not None
    return {arm.regimen: 1.0}


def transform_arm(arm: "ArmSpec", fn: Callable[["Regimen"], "Regimen"]) -> dict[str, float]:
    """Apply a regimen transform to every regimen of an arm's mixture: {regimen text: share}
    (regimens that become identical are merged, their shares added)."""
    out: dict[str, float] = {}
    for share, reg in arm.mixture():
        text = fn(reg).to_text()
        out[text] = out.get(text, 0.0) + share
    return out


def mixture_text(mixture: dict[str, float]) -> str:
    """One readable line for a regimen mixture (preset names are expanded to their text)."""
    from chemoio.regimens import resolve_regimen

    if len(mixture) == 1:
        return resolve_regimen(next(iter(mixture))).to_text()
    return " | ".join(f"{100 * s:.0f}%: {resolve_regimen(k).to_text()}" for k, s in mixture.items())


def first_regimen(mixture: dict[str, float]) -> "Regimen":
    """The regimen with the largest share (the first on ties)."""
    from chemoio.regimens import resolve_regimen

    key = max(mixture, key=lambda k: mixture[k])
    return resolve_regimen(key)


def _ident(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    return s if s and not s[0].isdigit() else f"x_{s}"


def _choice_labels(mixture: dict[str, float]) -> set[str]:
    """The runner's regimen_choice labels of a mixture (see chemoio.trial.runner)."""
    from chemoio.trial.runner import _choice_label

    if len(mixture) == 1:
        return {"single"}
    return {_choice_label(k, j) for j, k in enumerate(mixture)}


def derive_spec(contrast: Contrast, exp_regimens: dict[str, float], ctl_regimens: dict[str, float],
                tag: str, note: str) -> "TrialSpec":
    """A two-arm copy of the trial in which only the arms' regimens differ from the original.

    Everything else (population, arm sizes and ratio, accrual, cut-off, scans, crossover,
    discontinuation, endpoints, strata, subgroups) is the trial's own design. The published
    results are dropped: the modified trial was never run."""
    from chemoio.trial.spec import spec_from_dict

    spec = contrast.spec
    data: dict[str, Any] = spec.model_dump(mode="json", exclude_none=True)
    arms = {a["name"]: a for a in data["arms"]}
    new_arms = []
    for name, mix in ((contrast.experimental, exp_regimens), (contrast.control, ctl_regimens)):
        a = dict(arms[name])
        a.pop("regimen", None)
        a.pop("regimens", None)
        if len(mix) == 1:
            a["regimen"] = next(iter(mix))
        else:
            a["regimens"] = dict(mix)
        new_arms.append(a)
    sizes = spec.arm_sizes()
    ratio = dict(zip(spec.arm_names, spec.ratio, strict=True))
    data["arms"] = new_arms
    data["n_per_arm"] = {contrast.experimental: sizes[contrast.experimental],
                         contrast.control: sizes[contrast.control]}
    data["n_total"] = sizes[contrast.experimental] + sizes[contrast.control]
    data["randomization"] = f"{ratio[contrast.experimental]}:{ratio[contrast.control]}"
    data["comparisons"] = [dict(c) for c in data.get("comparisons", [])
                           if c["experimental"] == contrast.experimental and c["control"] == contrast.control]
    # The runner labels a patient's investigator's choice by a preset key's suffix
    # ("..._carbo") or a regimen text's position in the mixture; should the two arms end up
    # with different labels, a stratum would hold one arm only. Stratify by the choice only
    # when both arms carry the same labels.
    if _choice_labels(exp_regimens) != _choice_labels(ctl_regimens):
        for c in data["comparisons"]:
            c["stratify_by"] = [s for s in c.get("stratify_by", []) if s != "regimen_choice"]
    data.pop("published", None)
    data["name"] = _ident(f"{spec.name}_{tag}")
    data["title"] = f"{spec.title} [experiment: {note}]"
    data["notes"] = [f"Derived by chemoio.experiments from {spec.name}: {note}. Only the arms' "
                     "regimens differ from the shipped design."]
    try:
        return spec_from_dict(data)
    except ChemoioInputError as e:  # a transform produced an impossible regimen
        raise ChemoioInputError(e.field, f"{e.message} (experiment condition: {note})", e.hint) from None


# ----------------------------------------------------------------------------- regimen transforms


def rebuild(item, **changes):
    """A DrugSchedule with some fields changed (validated again)."""
    from chemoio.regimens import DrugSchedule

    data = item.model_dump()
    data.update(changes)
    return DrugSchedule(**data)


def with_items(regimen: "Regimen", items: list) -> "Regimen":
    from chemoio.regimens import Regimen

    return Regimen(items=items, surgery_day=regimen.surgery_day)


def chemo_items(regimen: "Regimen") -> list:
    return [i for i in regimen.items if item_kind(i) == "chemo"]


def induction_cycles(contrast: Contrast) -> int:
    """The trial's chemotherapy induction length in 3-week cycles: the shortest chemotherapy
    item with a fixed number of cycles in the experimental arm's main regimen (maintenance
    given until progression does not count). 4 when no item is capped."""
    reg = first_regimen(arm_mixture_keys(contrast.exp_arm))
    lengths = [i.cycles * i.cycle_days for i in chemo_items(reg) if i.cycles is not None]
    if not lengths:
        return 4
    return max(1, int(round(min(lengths) / 21.0)))


def chemo_start_day(contrast: Contrast) -> int:
    """Study day of the first chemotherapy dose in the experimental arm's main regimen."""
    reg = first_regimen(arm_mixture_keys(contrast.exp_arm))
    return min(i.start_day for i in chemo_items(reg))


# ----------------------------------------------------------------------------- running


def patients_per_run(spec: "TrialSpec", replicates: int, n_scale: float) -> int:
    return int(sum(max(1, int(round(n * n_scale))) for n in spec.arm_sizes().values())) * replicates


class Work:
    """Progress bookkeeping: the planned patient-simulations of an experiment."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, int(total), 0

    def step(self, k: int) -> None:
        self.done += int(k)
        if self.progress is not None:
            self.progress(int(k), self.total)

    def finish_block(self, planned: int, start: int) -> None:
        """Top a block up to its planned size (the trial runner's pass 2 only re-simulates
        patients who progressed, so it reports fewer than planned)."""
        missing = start + planned - self.done
        if missing > 0:
            self.step(missing)


def run_condition(spec: "TrialSpec", *, replicates: int, seed: int, n_scale: float,
                  work: Work | None = None, parameters: dict[str, float] | None = None) -> "TrialResult":
    """Run one condition (a derived spec) with the experiment's settings (``parameters``: a
    parameter set; default the shipped one)."""
    from chemoio.trial.runner import run_trial

    planned = 2 * patients_per_run(spec, replicates, n_scale)
    start = work.done if work else 0
    res = run_trial(spec, replicates=replicates, seed=seed, n_scale=n_scale, parameters=parameters,
                    progress=work.step if work else None)
    if work:
        work.finish_block(planned, start)
    return res


def parameter_set_arg(parameters) -> tuple[dict[str, float] | None, str]:
    """An experiment's ``parameters`` argument: (the parameter set to run, how the settings name
    it). None = the shipped set; a dict of parameter values; or a parameter-set YAML path.
    Errors name ``parameters``."""
    from chemoio.model.parameters import load_parameter_set

    if parameters is None:
        return None, "shipped"
    if isinstance(parameters, dict):
        return {str(k): float(v) for k, v in parameters.items()}, f"given ({len(parameters)} entries)"
    if isinstance(parameters, (str, Path)):
        try:
            return load_parameter_set(parameters), str(parameters)
        except ChemoioInputError as e:
            raise ChemoioInputError("parameters", e.message, e.hint) from None
    raise ChemoioInputError("parameters", f"expected a dict or a parameter-set YAML path, got {type(parameters).__name__}")


#: Landmark of the KM rates in the tables (months).
LANDMARK_MONTHS = 12


def km_curve(t_day: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier step curve in months, starting at (0, 1): survival ``s[k]`` from
    ``tj[k]`` on (patients with a non-finite time are left out)."""
    from chemoio.analysis.survival import DAYS_PER_MONTH, kaplan_meier

    ok = np.isfinite(t_day)
    if not ok.any():
        return np.array([0.0]), np.array([1.0])
    tj, s, _, _ = kaplan_meier(t_day[ok] / DAYS_PER_MONTH, e[ok])
    return np.concatenate([[0.0], tj]), np.concatenate([[1.0], s])


def km_at(tj: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The step curve's value at times ``t`` (months)."""
    return s[np.clip(np.searchsorted(tj, t, side="right") - 1, 0, None)]


def km_median(tj: np.ndarray, s: np.ndarray) -> float:
    """First time the curve is at or below 0.5 (inf = not reached)."""
    below = np.flatnonzero(s <= 0.5)
    return float(tj[below[0]]) if below.size else float("inf")


def _km_median_and_landmark(t_day: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """KM median (months; inf = not reached) and the % event-free at LANDMARK_MONTHS
    (nan when nobody is followed that long)."""
    from chemoio.analysis.survival import DAYS_PER_MONTH

    ok = np.isfinite(t_day)
    if not ok.any():
        return float("nan"), float("nan")
    tj, s = km_curve(t_day, e)
    if t_day[ok].max() / DAYS_PER_MONTH < LANDMARK_MONTHS:
        return km_median(tj, s), float("nan")
    return km_median(tj, s), 100.0 * float(km_at(tj, s, np.array([LANDMARK_MONTHS]))[0])


def contrast_stats(result: "TrialResult", contrast: Contrast, mask: np.ndarray | None = None,
                   power: bool = True) -> dict[str, float]:
    """Pooled statistics of the combination vs the chemotherapy arm (in ``mask`` patients).

    ``hr_<ep>`` (+ ``_low``/``_high``): Cox HR stratified by replicate, Wald 95 % CI;
    ``median_<ep>_combo``/``_chemo``: KM medians (months; inf = not reached);
    ``<ep>_12mo_combo``/``_chemo``: KM % event-free at 12 months;
    ``p_success_<ep>``: share of replicate trials meeting the endpoint (ITT only);
    ``<resp>_combo``/``_chemo`` (%) and ``<resp>_diff`` (percentage points);
    ``best_change_combo``/``_chemo``: median best % change of the measured SLD;
    ``n_combo``/``n_chemo``: patients over all replicates."""
    from chemoio.analysis.survival import cox_hr_fast
    from chemoio.trial.summary import success_probability

    p = result.patients
    m = np.ones(len(p), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    arm = p["arm"].to_numpy()
    me, mc = m & (arm == contrast.experimental), m & (arm == contrast.control)
    out: dict[str, float] = {"n_combo": int(me.sum()), "n_chemo": int(mc.sum())}
    strata = p["replicate"].to_numpy()
    for ep in contrast.tte_endpoints:
        col = ep.lower()
        if f"{col}_day" not in p:
            continue
        t = p[f"{col}_day"].to_numpy(dtype=float)
        e = p[f"{col}_event"].to_numpy(dtype=bool)
        sel = (me | mc) & np.isfinite(t)
        hr = lo = hi = float("nan")
        if e[sel].sum() >= 2 and me[sel].any() and mc[sel].any():
            r = cox_hr_fast(t[sel], e[sel], me[sel].astype(float), strata=strata[sel])
            if r.converged:
                hr, lo, hi = r.hr, r.ci_low, r.ci_high
        out[f"hr_{col}"], out[f"hr_{col}_low"], out[f"hr_{col}_high"] = hr, lo, hi
        for key, mm in (("combo", me), ("chemo", mc)):
            med, mark = _km_median_and_landmark(t[mm], e[mm])
            out[f"median_{col}_{key}"] = med
            out[f"{col}_{LANDMARK_MONTHS}mo_{key}"] = mark
        if power and mask is None:
            out[f"p_success_{col}"] = success_probability(result, contrast.experimental, contrast.control, ep)
    for ep, column in RESPONSE_ENDPOINTS.items():
        if ep not in contrast.response_endpoints or column not in p:
            continue
        r = p[column].to_numpy(dtype=bool)
        a = 100.0 * r[me].mean() if me.any() else float("nan")
        b = 100.0 * r[mc].mean() if mc.any() else float("nan")
        out[f"{ep.lower()}_combo"], out[f"{ep.lower()}_chemo"], out[f"{ep.lower()}_diff"] = a, b, a - b
    best = p["best_pct_change"].to_numpy(dtype=float)
    for key, mm in (("combo", me), ("chemo", mc)):
        v = best[mm]
        v = v[np.isfinite(v)]
        out[f"best_change_{key}"] = float(np.median(v)) if v.size else float("nan")
    return out


def simulate_readout_cohort(regimen: "Regimen", spec: "TrialSpec", *, n: int, seed: int,
                            window_days: float, work: Work | None = None) -> dict[str, np.ndarray]:
    """Simulate ``regimen`` in ``n`` virtual patients of the trial's population (tumour type
    and selection; the same patients for every call with the same seed) on a daily grid
    over days 0..``window_days``. Returns {observable: (n_ok, days)} and ``times``."""
    from chemoio.interfaces.api import simulate

    times = np.arange(0.0, float(window_days) + 1e-9, 1.0)
    res = simulate(regimen, tumor=spec.population.tumor, n=int(n), seed=int(seed), times=times,
                   observables=READOUT_OBSERVABLES, selection=dict(spec.population.selection or {}),
                   rtol=1e-5, chunk_size=max(64, int(n)))
    if work:
        work.step(int(n))
    out = {name: np.asarray(res[name], dtype=float)[res.ok] for name in READOUT_OBSERVABLES}
    out["times"] = times
    return out


def _integral(x: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Trapezoid rule over the window, per patient (rows)."""
    return np.sum(0.5 * (x[:, 1:] + x[:, :-1]) * np.diff(times), axis=1)


def _rel(x: np.ndarray) -> np.ndarray:
    base = np.where(x[:, :1] > 0, x[:, :1], np.nan)
    return x / base


def chemo_logkill(cohort: dict[str, np.ndarray]) -> float:
    """Median over patients of the integrated chemotherapy kill rate on sensitive cells over
    the window (natural-log kill)."""
    return float(np.nanmedian(_integral(cohort["chemo_kill_per_day"], cohort["times"])))


def cohort_readouts(cohort: dict[str, np.ndarray]) -> dict[str, float]:
    """Read-outs of one simulated cohort (medians over patients):

    ``chemo_logkill``: integrated chemotherapy kill rate (natural-log kill of sensitive cells);
    ``antigen_fold``: time-averaged antigen (ICD/DAMP) signal *per viable tumour cell*
    relative to diagnosis (per cell, so that shrinking tumours do not hide the release);
    ``dc_fold``: time-averaged mature-DC fraction relative to diagnosis;
    ``effector_peak``: highest number of intratumoural effector CD8 cells in the window
    relative to diagnosis (the expansion; the number later falls with the tumour); ``treg_nadir``, ``mdsc_nadir``: lowest Treg / MDSC index (diagnosis = 1);
    ``lymphocyte_nadir``: lowest circulating lymphocyte level (diagnosis = 1)."""
    t = cohort["times"]
    span = t[-1] - t[0]
    per_cell = cohort["antigen_signal"] / np.maximum(cohort["tumor_cells"], 1e-300)
    return {
        "chemo_logkill": chemo_logkill(cohort),
        "antigen_fold": float(np.nanmedian(_integral(_rel(per_cell), t) / span)),
        "dc_fold": float(np.nanmedian(_integral(_rel(cohort["mature_dc"]), t) / span)),
        "effector_peak": float(np.nanmedian(np.nanmax(_rel(cohort["effector_t"]), axis=1))),
        "treg_nadir": float(np.nanmedian(np.nanmin(_rel(cohort["treg"]), axis=1))),
        "mdsc_nadir": float(np.nanmedian(np.nanmin(_rel(cohort["mdsc"]), axis=1))),
        "lymphocyte_nadir": float(np.nanmedian(np.nanmin(cohort["lymphocytes"], axis=1))),
    }


def condition_columns(result: "TrialResult", contrast: Contrast, exp_mix: dict[str, float],
                      ctl_mix: dict[str, float], spec: "TrialSpec", *, combo: "Regimen | None" = None,
                      chemo: "Regimen | None" = None, n: int, seed: int, window_days: float,
                      work: Work | None = None) -> dict[str, Any]:
    """The columns every experiment row shares: :func:`contrast_stats`, the mechanism
    read-outs of :func:`arm_readouts` (of ``combo``/``chemo``, by default each mixture's first
    regimen) and both arms' regimen texts."""
    row: dict[str, Any] = dict(contrast_stats(result, contrast))
    row.update(arm_readouts(combo or first_regimen(exp_mix), chemo or first_regimen(ctl_mix), spec,
                            n=n, seed=seed, window_days=window_days, work=work))
    row["combo_regimen"] = mixture_text(exp_mix)
    row["chemo_regimen"] = mixture_text(ctl_mix)
    return row


def hr_columns(endpoints: Iterable[str]) -> list[str]:
    """Display columns of each time-to-event endpoint's HR and its 95 % CI."""
    return [f"hr_{ep}{suffix}" for ep in endpoints for suffix in ("", "_low", "_high")]


def trial_settings(spec: "TrialSpec", contrast: Contrast) -> dict[str, Any]:
    """The summary settings that name the trial and its comparison."""
    return {"trial": spec.name, "comparison": f"{contrast.experimental} vs {contrast.control}"}


def run_settings(spec: "TrialSpec", *, replicates: int, seed: int, n_scale: float,
                 n_mechanism: int | None = None, window: float | None = None) -> dict[str, Any]:
    """The summary settings of a run: replicates, seed, size, and the read-out cohort if any."""
    out: dict[str, Any] = {"replicates": replicates, "seed": seed, "n_scale": n_scale,
                           "patients per trial": patients_per_run(spec, 1, n_scale)}
    if n_mechanism is not None:
        out["read-out cohort"] = f"{n_mechanism} patients, days 0-{window:.0f}"
    return out


def hr_extremes(table: pd.DataFrame, endpoints: list[str], where) -> list[str]:
    """One headline per time-to-event endpoint: the lowest and the highest HR of the table
    and the condition each occurs at (``where(row) -> str``)."""
    lines = []
    for ep in endpoints:
        best = table.loc[table[f"hr_{ep}"].idxmin()]
        worst = table.loc[table[f"hr_{ep}"].idxmax()]
        lines.append(f"HR {ep.upper()}: lowest {best[f'hr_{ep}']:.2f} at {where(best)}, "
                     f"highest {worst[f'hr_{ep}']:.2f} at {where(worst)}.")
    return lines


#: Read-out columns of :func:`arm_readouts`, in table order.
READOUT_COLUMNS = ("chemo_logkill", "antigen_fold_chemo", "antigen_per_kill", "antigen_fold_combo",
                   "dc_fold_combo", "effector_peak_combo", "effector_peak_chemo", "treg_nadir",
                   "mdsc_nadir", "lymphocyte_nadir")


def arm_readouts(combo: "Regimen", chemo: "Regimen", spec: "TrialSpec", *, n: int, seed: int,
                 window_days: float, work: Work | None = None) -> dict[str, float]:
    """Mechanism read-outs of both arms' main regimens in the same small cohort.

    From the chemotherapy arm (no checkpoint inhibitor, so the antigen signal is the
    chemotherapy's own): ``chemo_logkill``, ``antigen_fold_chemo``, ``antigen_per_kill`` =
    (antigen_fold_chemo - 1) / chemo_logkill (extra antigen release per unit of chemotherapy
    kill: the agent's immunogenicity separated from its cytotoxicity), ``effector_peak_chemo``
    and the Treg/MDSC/lymphocyte nadirs. From the combination arm: ``antigen_fold_combo``
    (ICD plus the antigen released by CD8 killing), ``dc_fold_combo``, ``effector_peak_combo``."""
    rc = cohort_readouts(simulate_readout_cohort(chemo, spec, n=n, seed=seed, window_days=window_days, work=work))
    rx = cohort_readouts(simulate_readout_cohort(combo, spec, n=n, seed=seed, window_days=window_days, work=work))
    kill = rc["chemo_logkill"]
    out = {
        "chemo_logkill": kill,
        "antigen_fold_chemo": rc["antigen_fold"],
        "antigen_per_kill": (rc["antigen_fold"] - 1.0) / kill if kill > 0 else float("nan"),
        "antigen_fold_combo": rx["antigen_fold"],
        "dc_fold_combo": rx["dc_fold"],
        "effector_peak_combo": rx["effector_peak"],
        "effector_peak_chemo": rc["effector_peak"],
        "treg_nadir": rc["treg_nadir"],
        "mdsc_nadir": rc["mdsc_nadir"],
        "lymphocyte_nadir": rc["lymphocyte_nadir"],
    }
    return {k: out[k] for k in READOUT_COLUMNS}


# ----------------------------------------------------------------------------- result


@dataclass
class ExperimentResult:
    """What an experiment produced.

    ``table``: one row per condition (pandas); ``settings``: what was run; ``notes``: how to
    read it. ``plot(path)`` writes the figure, ``write(folder)`` writes table.csv, plot.png
    and summary.md. ``specs`` maps each condition to the derived TrialSpec that was run;
    ``data`` holds what an experiment's figure needs beyond the table (e.g. survival curves)."""

    name: str
    trial: str
    table: pd.DataFrame
    settings: dict[str, Any]
    headline: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    specs: dict[str, Any] = field(default_factory=dict)
    display_columns: list[str] = field(default_factory=list)
    _figure: Callable[["ExperimentResult"], "Figure"] | None = field(default=None, repr=False)
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    def figure(self) -> "Figure":
        """The experiment's figure (matplotlib Figure, no pyplot)."""
        if self._figure is None:
            raise ChemoioInputError("plot", f"experiment {self.name!r} has no figure")
        return self._figure(self)

    def plot(self, path: str | Path) -> Path:
        """Write the figure (format from the suffix: .png, .pdf, .svg)."""
        from chemoio.report.plots import save_figure

        return save_figure(self.figure(), path)

    def summary_markdown(self, command: str | None = None) -> str:
        lines = [f"# chemoio experiment {self.name}: {self.settings.get('title', '')}".rstrip(": "), "",
                 f"> **{DISCLAIMER}**", ""]
        if command:
            lines += ["Command:", "", "```", command, "```", ""]
        lines += ["## Settings", ""]
        for k, v in self.settings.items():
            if k == "title":
                continue
            lines.append(f"- {k}: {v}")
        if self.headline:
            lines += ["", "## Result", ""] + [f"- {h}" for h in self.headline]
        lines += ["", "## Table", "", markdown_table(self.display_frame()), "",
                  "The full table (every column) is in `table.csv`; the figure in `plot.png`."]
        if self.notes:
            lines += ["", "## How to read it", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def display_frame(self) -> pd.DataFrame:
        """The display columns as text, each hazard ratio with its CI in one cell
        (``HR OS`` = "0.61 (0.35-1.04)")."""
        cols = self.display_columns or list(self.table.columns)
        out: dict[str, list[str]] = {}
        for c in cols:
            if c.endswith(("_low", "_high")) and c.rsplit("_", 1)[0] in cols:
                continue
            if c.startswith("hr_") and f"{c}_low" in self.table and f"{c}_high" in self.table:
                out[f"HR {c[3:].upper()} (95% CI)"] = [
                    f"{fmt_value(h)} ({fmt_value(lo)}-{fmt_value(hi)})" if np.isfinite(h) else "-"
                    for h, lo, hi in zip(self.table[c], self.table[f"{c}_low"], self.table[f"{c}_high"], strict=True)]
            else:
                out[c] = [fmt_value(v) for v in self.table[c]]
        return pd.DataFrame(out)

    def write(self, folder: str | Path, command: str | None = None) -> dict[str, Path]:
        """Write ``table.csv``, ``plot.png`` and ``summary.md`` into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"table": out / "table.csv", "plot": out / "plot.png", "summary": out / "summary.md"}
        self.table.to_csv(paths["table"], index=False)
        self.plot(paths["plot"])
        paths["summary"].write_text(self.summary_markdown(command), encoding="utf-8")
        return paths


def fmt_value(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v)}"
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return "NR" if v > 0 else "-inf"
        a = abs(v)
        return f"{v:.0f}" if a >= 100 else f"{v:.2f}" if a >= 0.01 or a == 0 else f"{v:.2g}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(fmt_value(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *rows])


def spearman(x: Iterable[float], y: Iterable[float]) -> float:
    """Spearman rank correlation (nan when fewer than 3 finite pairs)."""
    xa, ya = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    if ok.sum() < 3:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(xa[ok], ya[ok]).statistic)
