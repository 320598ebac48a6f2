r"""Mechanism knock-out experiment: which of chemotherapy's immune effects carry the benefit?

Chemotherapy acts on the immune system in six ways in the model (docs/model.md 1.3, 2.3-2.8):
a drug-specific share of its kill is immunogenic (ICD), it depletes Tregs and MDSCs, raises
tumour MHC-I and PD-L1, and kills lymphocytes. The experiment reruns the trial's
chemo-immunotherapy vs chemotherapy comparison with one of these switched off at a time, in
both arms, and then with all six off (chemotherapy as a pure cytotoxic). Each knock-out sets
the shared parameter that scales the effect to zero:

========================  ===========================================================
knock-out                 parameters set to 0
========================  ===========================================================
``icd``                   ``chemo_icd_scale`` (every agent's immunogenic share)
``treg``                  ``treg_depletion_max_per_day``
``mdsc``                  ``mdsc_depletion_max_per_day``
``mhc1``                  ``mhc1_chemo_induction_max``
``pdl1``                  ``pdl1_chemo_induction_max``
``lymphotoxicity``        ``lymphotox_primed_max_per_day``, ``lymphotox_tumour_max_per_day``,
                          ``lymphotox_precursor_max``
========================  ===========================================================

None of them acts before the first dose, so every condition starts from the same virtual
patients in the same state at diagnosis (common random numbers: the same seed); the rows
differ only by what chemotherapy does to the immune system. The share of the
chemotherapy arm's responses that is left when a mechanism is off,

.. math:: \text{kept} = \frac{ORR_{chemo}(\text{knock-out})}{ORR_{chemo}(\text{as set})},

measures how far the model makes the control arm's efficacy depend on that mechanism
(pCR for a neoadjuvant trial); the change of the hazard ratio measures how far the
combination's benefit over chemotherapy does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from chemoio.errors import ChemoioInputError, suggest
from chemoio.experiments import common as cm

__all__ = ["mechanisms", "KNOCKOUTS", "knockout_parameters"]

#: Knock-out name -> (what it removes, the shared parameters it sets to 0).
KNOCKOUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "icd": ("immunogenic cell death", ("chemo_icd_scale",)),
    "treg": ("Treg depletion", ("treg_depletion_max_per_day",)),
    "mdsc": ("MDSC depletion", ("mdsc_depletion_max_per_day",)),
    "mhc1": ("MHC-I induction", ("mhc1_chemo_induction_max",)),
    "pdl1": ("PD-L1 induction", ("pdl1_chemo_induction_max",)),
    "lymphotoxicity": ("lymphotoxicity", ("lymphotox_primed_max_per_day", "lymphotox_tumour_max_per_day",
                                          "lymphotox_precursor_max")),
}
#: The row with every knock-out at once.
ALL = "all"


def _parse(knockouts: str | Sequence[str] | None) -> list[str]:
    if knockouts is None:
        return list(KNOCKOUTS)
    names = [k.strip() for k in knockouts.split(",")] if isinstance(knockouts, str) else [str(k).strip() for k in knockouts]
    names = [k for k in names if k]
    if not names:
        raise ChemoioInputError("knockouts", "no knock-out given", f"choose from {', '.join(KNOCKOUTS)}")
    for k in names:
        if k not in KNOCKOUTS:
            raise ChemoioInputError("knockouts", f"unknown knock-out {k!r}",
                                    suggest(k, list(KNOCKOUTS)) or f"choose from {', '.join(KNOCKOUTS)}")
    if len(set(names)) != len(names):
        raise ChemoioInputError("knockouts", "a knock-out is named twice")
    return names


def knockout_parameters(base: dict[str, float], names: Sequence[str]) -> dict[str, float]:
    """``base`` with the parameters of every knock-out in ``names`` set to 0."""
    out = dict(base)
    for name in names:
        for p in KNOCKOUTS[name][1]:
            out[p] = 0.0
    return out


def mechanisms(
    trial: Any = "keynote189",
    *,
    knockouts: str | Sequence[str] | None = None,
    replicates: int = 10,
    seed: int = 1,
    n_scale: float = 1.0,
    parameters: "dict[str, float] | str | Path | None" = None,
    progress: cm.Progress | None = None,
) -> cm.ExperimentResult:
    """Run the trial's combination vs chemotherapy comparison as set, with each of
    chemotherapy's immune effects switched off in turn (``knockouts``: names of
    :data:`KNOCKOUTS`, default all six) and with all of them off together. ``parameters``: a
    parameter set, as a YAML path or a dict (a dict is the whole set: a parameter it leaves
    out takes the model default, not the shipped value); default the shipped set."""
    from chemoio.model.parameters import shipped_parameter_set

    cm.check_run_settings(replicates, n_scale, seed)
    names = _parse(knockouts)
    params, set_label = cm.parameter_set_arg(parameters)
    base = shipped_parameter_set() if params is None else params
    spec = cm.load_trial(trial)
    contrast = cm.find_contrast(spec)
    exp_mix, ctl_mix = cm.arm_mixture_keys(contrast.exp_arm), cm.arm_mixture_keys(contrast.ctl_arm)
    d = cm.derive_spec(contrast, exp_mix, ctl_mix, tag="mechanisms",
                       note="the trial's comparison with chemotherapy's immune effects switched off in turn")
    c2 = cm.Contrast(d, contrast.experimental, contrast.control, d.comparisons[0])
    conditions: list[tuple[str, str, list[str]]] = [("none", "as set (nothing off)", [])]
    conditions += [(k, f"no {KNOCKOUTS[k][0]}", [k]) for k in names]
    if len(names) > 1:
        conditions.append((ALL, "all of them off (cytotoxic only)", names))
    work = cm.Work(progress, len(conditions) * 2 * cm.patients_per_run(d, replicates, n_scale))
    tte = [e.lower() for e in contrast.tte_endpoints]
    resp = [e.lower() for e in contrast.response_endpoints]
    rows: list[dict[str, Any]] = []
    for key, label, off in conditions:
        p = knockout_parameters(base, off)
        res = cm.run_condition(d, replicates=replicates, seed=seed, n_scale=n_scale, work=work, parameters=p)
        row: dict[str, Any] = {"knockout": key, "label": label,
                               "parameters_zeroed": ", ".join(n for k in off for n in KNOCKOUTS[k][1]) or "-"}
        row.update(cm.contrast_stats(res, c2))
        rows.append(row)
    table = pd.DataFrame(rows)
    ref = table.iloc[0]
    for ep in resp:
        table[f"{ep}_chemo_kept"] = table[f"{ep}_chemo"] / ref[f"{ep}_chemo"] if ref[f"{ep}_chemo"] > 0 else float("nan")
    for ep in tte:
        table[f"hr_{ep}_change"] = table[f"hr_{ep}"] - ref[f"hr_{ep}"]

    headline = []
    for ep in resp:
        rate = "pCR" if ep == "pcr" else ep.upper()
        kept = table.iloc[1:][f"{ep}_chemo_kept"]
        if kept.notna().any():  # nan throughout when the control arm has no response as set
            low = table.iloc[1:].loc[kept.idxmin()]
            headline.append(
                f"Chemotherapy arm {rate} {cm.fmt_value(ref[f'{ep}_chemo'])} % as set; with {low.label} "
                f"{cm.fmt_value(low[f'{ep}_chemo'])} % ({cm.fmt_value(100 * low[f'{ep}_chemo_kept'])} % of it kept). "
                f"Combination {cm.fmt_value(ref[f'{ep}_combo'])} % -> {cm.fmt_value(low[f'{ep}_combo'])} %.")
    for ep in tte:
        rest = table.iloc[1:]
        if len(rest) and rest[f"hr_{ep}"].notna().any():
            up = rest.loc[rest[f"hr_{ep}"].idxmax()]
            headline.append(f"HR {ep.upper()} {cm.fmt_value(ref[f'hr_{ep}'])} as set; the knock-out that raises it "
                            f"most is {up.label} ({cm.fmt_value(up[f'hr_{ep}'])}).")
    display = ["label"] + cm.hr_columns(tte)
    for ep in tte:
        display += [f"median_{ep}_combo", f"median_{ep}_chemo"]
    display += [c for ep in resp for c in (f"{ep}_combo", f"{ep}_chemo", f"{ep}_chemo_kept")]
    settings = {
        "title": "chemotherapy's immune effects switched off one at a time",
        **cm.trial_settings(spec, contrast),
        "parameter set": set_label,
        "knock-outs": ", ".join(names),
        **cm.run_settings(d, replicates=replicates, seed=seed, n_scale=n_scale),
    }
    notes = [
        "Each knock-out sets the shared parameters named in `parameters_zeroed` to 0 in both arms; nothing "
        "else changes. None acts before the first dose, so every row runs the same virtual patients from the "
        "same state at diagnosis (same seed).",
        "`<rate>_chemo_kept`: the chemotherapy arm's response rate with the knock-out over the rate as set - "
        "how far the model makes the control arm's efficacy depend on that immune effect.",
        "HRs: combination vs chemotherapy, Cox stratified by replicate (95 % Wald CI); `hr_<ep>_change` is "
        "the knock-out's HR minus the HR as set (positive: the effect was helping the combination).",
        "Effects are not additive: a knock-out's change is measured with every other effect present.",
        cm.DISCLAIMER,
    ]
    from chemoio.experiments.plots import mechanisms_figure

    return cm.ExperimentResult("mechanisms", spec.name, table, settings, headline, notes, {"mechanisms": d},
                               display, mechanisms_figure)
