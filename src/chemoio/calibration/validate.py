"""`chemoio validate`: every shipped trial, every published number, simulated vs published.

One row per published number: trial | arm or comparison | subgroup | endpoint | role
(fit = used by calibration; predict = never fitted) | published (95 % CI) | simulated median
and 95 % interval over replicate trials | inside?  Inside: the simulated median lies in the
published 95 % CI, or, without a published CI, the published value lies in the simulated
interval. Primary-endpoint calls: a replicate trial "meets" an endpoint when HR < 1 and the
two-sided log-rank p < alpha; the simulated call is "met" when most replicates meet it.

``--split`` (leave-one-trial-out): for each trial k, calibrate without trial k's targets,
then simulate trial k; the honest measure of prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chemoio.calibration.targets import collect_targets, simulated_values
from chemoio.trial import list_specs, load_spec
from chemoio.trial.runner import run_trial
from chemoio.trial.summary import primary_calls


@dataclass
class ValidationResult:
    table: pd.DataFrame
    calls: pd.DataFrame
    summary: dict


def _rows_for(spec_name: str, result, targets) -> list[dict]:
    rows = []
    for t in targets:
        if t.spec != spec_name:
            continue
        v = simulated_values(t, result)
        v = v[np.isfinite(v)]
        if v.size:
            med, lo, hi = float(np.median(v)), float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))
        else:
            med = lo = hi = float("nan")
        if not np.isfinite(med):
            inside = None
        elif t.ci is not None:
            inside = bool(t.ci[0] <= med <= t.ci[1])
        else:
            inside = bool(lo <= t.value <= hi)
        rows.append({
            "trial": t.trial_id, "arm": t.arm, "subgroup": t.subgroup, "endpoint": t.key,
            "role": t.role, "published": t.value,
            "pub_low": t.ci[0] if t.ci else np.nan, "pub_high": t.ci[1] if t.ci else np.nan,
            "sim_median": med, "sim_low": lo, "sim_high": hi, "inside": inside,
        })
    return rows


def _calls_for(spec_name: str, result) -> pd.DataFrame:
    calls = primary_calls(result)
    calls.insert(0, "trial", load_spec(spec_name).trial_id)
    return calls


def summarize(table: pd.DataFrame, calls: pd.DataFrame) -> dict:
    def share(mask) -> str:
        sub = table[mask & table.inside.notna()]
        return f"{int(sub.inside.sum())}/{len(sub)}" if len(sub) else "0/0"

    known = calls[calls.agrees.notna()] if len(calls) else calls
    return {
        "inside_all": share(np.ones(len(table), dtype=bool)),
        "inside_fit": share(table.role == "fit"),
        "inside_predict": share(table.role == "predict"),
        "hr_inside": share(table.endpoint.str.startswith("HR")),
        "calls_right": f"{int(known.agrees.sum())}/{len(known)}" if len(known) else "0/0",
    }


def validate(parameters: dict[str, float] | None = None, *, replicates: int = 20,
             specs: list[str] | None = None, log: Callable[[str], None] | None = None,
             combination_survival: bool = False, lymphotoxicity: bool = False) -> ValidationResult:
    """Run every (or the given) shipped spec with all arms and compare with published.

    A parameter set with ``kill_scale.<tumor>`` entries was made by the kill-scale
    calibration (``chemoio calibrate --kill-scales``), which fits some combination arms'
    tumour-response targets (and, with ``combination_survival``, their survival targets);
    ``lymphotoxicity``: the set was made by ``chemoio calibrate --lymphotoxicity``, which fits
    every chemotherapy + ICI arm's tumour-response targets. The table labels those ``fit``."""
    log = log or (lambda m: None)
    names = specs or list_specs()
    if parameters is None:
        from chemoio.model.parameters import shipped_parameter_set

        used = shipped_parameter_set()
    else:
        used = parameters
    kill = any(str(k).startswith("kill_scale.") for k in used)
    targets = collect_targets(names, fit_combinations=kill, combination_survival=kill and combination_survival,
                              fit_chemo_ici=lymphotoxicity)
    rows, calls = [], []
    for name in names:
        res = run_trial(load_spec(name), replicates=replicates, parameters=parameters)
        rows.extend(_rows_for(name, res, targets))
        calls.append(_calls_for(name, res))
        log(f"{name}: {res.wall_s:.1f} s")
    table = pd.DataFrame(rows)
    calls_df = pd.concat(calls, ignore_index=True) if calls else pd.DataFrame()
    return ValidationResult(table, calls_df, summarize(table, calls_df))


def validate_split(*, replicates: int = 10, budget_a: int = 40, budget_b: int = 120, seed: int = 2026,
                   fit_replicates: int = 1, kill_scales: bool = False, combination_survival: bool = False,
                   lymphotoxicity: bool = False, encounter_kill: bool = False, memory: bool = False,
                   log: Callable[[str], None] | None = None) -> ValidationResult:
    """Leave-one-trial-out: calibrate without trial k (``fit_replicates`` trials per spec and
    evaluation, from the priors; ``kill_scales``, ``combination_survival``: the kill-scale
    calibration; ``lymphotoxicity``: the lymphotoxicity calibration; ``encounter_kill``: with
    the encounter limit of CD8 killing free; ``memory``: with memory CD8 T cells on and their
    recall threshold free), then predict
    every number of k (``replicates`` trials)."""
    from chemoio.calibration.fit import Calibration

    log = log or (lambda m: None)
    names = list_specs()
    targets = collect_targets(names, fit_combinations=kill_scales,
                              combination_survival=kill_scales and combination_survival,
                              fit_chemo_ici=lymphotoxicity)
    rows, calls = [], []
    for name in names:
        cal = Calibration(exclude=(name,), seed=seed, replicates=fit_replicates, log=log,
                          kill_scales=kill_scales, combination_survival=combination_survival,
                          lymphotoxicity=lymphotoxicity, encounter_kill=encounter_kill, memory=memory)
        fit = cal.run(budget_a=budget_a, budget_b=budget_b)
        res = run_trial(load_spec(name), replicates=replicates, parameters=fit.parameters)
        held_out = [t for t in targets if t.spec == name]
        for r in _rows_for(name, res, held_out):
            r["held_out"] = True  # ``role`` stays the number's role in the full calibration
            rows.append(r)
        calls.append(_calls_for(name, res))
        log(f"left out {name}: calibrated in {fit.wall_s:.0f} s")
    table = pd.DataFrame(rows)
    calls_df = pd.concat(calls, ignore_index=True) if calls else pd.DataFrame()
    return ValidationResult(table, calls_df, summarize(table, calls_df))
