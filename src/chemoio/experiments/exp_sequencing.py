"""Sequencing experiment: chemotherapy before, with or after the checkpoint inhibitor.

The offset is the chemotherapy start minus the checkpoint-inhibitor start, in days:
negative = chemotherapy first (the inhibitor starts ``|offset|`` days after study day 1),
0 = together (the trial as designed), positive = inhibitor first (chemotherapy starts
``offset`` days after study day 1). Every item keeps its own schedule and cycle count; only
its start day moves (items that start later in the design, such as maintenance or
adjuvant phases, move by the same amount).

By default only the combination arm is re-sequenced and the control arm stays the trial's
chemotherapy as designed, so the hazard ratio answers "does this sequence beat standard
chemotherapy"; with ``shift_control=True`` the control arm's chemotherapy (and placebo) move
the same way, so the only difference between the arms is the inhibitor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from chemoio.errors import ChemoioInputError
from chemoio.experiments import common as cm

__all__ = ["sequencing", "shift_regimen", "DEFAULT_OFFSETS"]

DEFAULT_OFFSETS = (-21, -7, 0, 7, 21, 42)
MAX_OFFSET_DAYS = 365


def shift_regimen(regimen, offset_days: int):
    """``regimen`` with chemotherapy starting ``offset_days`` after the checkpoint inhibitor
    (negative: before). Chemotherapy items move by max(offset, 0) days, inhibitor and placebo
    items by max(-offset, 0) days."""
    off = int(offset_days)
    chemo_shift, ici_shift = max(off, 0), max(-off, 0)
    items = []
    for it in regimen.items:
        shift = chemo_shift if cm.item_kind(it) == "chemo" else ici_shift
        items.append(cm.rebuild(it, start_day=it.start_day + shift) if shift else it)
    return cm.with_items(regimen, items)


def _order(off: int) -> str:
    return "chemo first" if off < 0 else "ICI first" if off > 0 else "together"


def sequencing(
    trial: Any = "keynote189",
    *,
    offsets: str | Sequence[float] = DEFAULT_OFFSETS,
    shift_control: bool = False,
    replicates: int = 10,
    seed: int = 1,
    n_scale: float = 1.0,
    n_mechanism: int = 200,
    progress: cm.Progress | None = None,
) -> cm.ExperimentResult:
    """Run the trial with the chemotherapy started ``offset`` days after the checkpoint
    inhibitor, for each offset (whole days; negative = chemotherapy first)."""
    cm.check_run_settings(replicates, n_scale, seed)
    offs = cm.parse_number_list(offsets, "offsets", integer=True)
    for o in offs:
        if abs(o) > MAX_OFFSET_DAYS:
            raise ChemoioInputError("offsets", f"{o} days is beyond +/-{MAX_OFFSET_DAYS} days")
    offs = sorted(int(o) for o in offs)
    cm.check_n_mechanism(n_mechanism)
    spec = cm.load_trial(trial)
    contrast = cm.find_contrast(spec)
    start = cm.chemo_start_day(contrast)
    window = float(start - 1 + 21 * cm.induction_cycles(contrast) + max(0, max(offs)))

    per_run = 2 * cm.patients_per_run(spec, replicates, n_scale)
    work = cm.Work(progress, len(offs) * (per_run + 2 * n_mechanism))
    ctl_keys = cm.arm_mixture_keys(contrast.ctl_arm)
    rows, specs = [], {}
    for off in offs:
        exp_mix = cm.transform_arm(contrast.exp_arm, lambda r, o=off: shift_regimen(r, o))
        if shift_control:
            ctl_mix = cm.transform_arm(contrast.ctl_arm, lambda r, o=off: shift_regimen(r, o))
        else:
            ctl_mix = ctl_keys
        label = f"{off:+d}" if off else "0"
        d = cm.derive_spec(contrast, exp_mix, ctl_mix, tag=f"seq_{'m' if off < 0 else 'p'}{abs(off)}",
                           note=f"chemotherapy starts {off:+d} days relative to the checkpoint inhibitor")
        specs[label] = d
        res = cm.run_condition(d, replicates=replicates, seed=seed, n_scale=n_scale, work=work)
        c2 = cm.Contrast(d, contrast.experimental, contrast.control, d.comparisons[0])
        combo = cm.first_regimen(exp_mix)
        chemo_start = min(i.start_day for i in combo.items if cm.item_kind(i) == "chemo")
        ici_start = min(i.start_day for i in combo.items if cm.item_kind(i) == "ici")
        row: dict[str, Any] = {"offset_days": off, "order": _order(off),
                               "chemo_start_day": chemo_start, "ici_start_day": ici_start}
        row.update(cm.condition_columns(res, c2, exp_mix, ctl_mix, d, combo=combo, n=n_mechanism,
                                        seed=seed, window_days=window, work=work))
        rows.append(row)
    table = pd.DataFrame(rows)

    tte = [e.lower() for e in contrast.tte_endpoints]
    resp = [e.lower() for e in contrast.response_endpoints]
    headline = cm.hr_extremes(table, tte, lambda r: f"offset {int(r.offset_days):+d} days ({r.order})")
    display = ["offset_days", "order"]
    display += cm.hr_columns(tte)
    display += [f"{ep}_combo" for ep in resp] + [f"{ep}_diff" for ep in resp]
    display += ["antigen_fold_combo", "effector_peak_combo"]
    settings = {
        "title": "chemotherapy before, with or after the checkpoint inhibitor",
        **cm.trial_settings(spec, contrast),
        "offsets (days, chemotherapy start minus inhibitor start)": ", ".join(f"{o:+d}" for o in offs),
        "control arm": "shifted the same way" if shift_control else "the trial's chemotherapy as designed",
        **cm.run_settings(spec, replicates=replicates, seed=seed, n_scale=n_scale,
                          n_mechanism=n_mechanism, window=window),
    }
    notes = [
        "Offset = chemotherapy start minus checkpoint-inhibitor start (days); negative = chemotherapy first, "
        "0 = the trial as designed. Items keep their schedules and cycle counts; only start days move.",
        "Scans, progression and survival are counted from randomisation (study day 1) in every row, so a "
        "delayed start of either drug is part of the design being compared.",
        "HRs: Cox model over all replicate trials, stratified by replicate (95 % Wald CI).",
        "Mechanism: chemotherapy given while effector T cells expand can be lymphotoxic to them; ICD antigen "
        "released before PD-1 blockade primes T cells that the inhibitor then releases.",
        cm.DISCLAIMER,
    ]
    from chemoio.experiments.plots import sequencing_figure

    return cm.ExperimentResult("sequencing", spec.name, table, settings, headline, notes, specs, display,
                               sequencing_figure)
