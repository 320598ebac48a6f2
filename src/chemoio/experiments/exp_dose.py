"""Dose experiment: chemotherapy dose intensity and number of cycles.

Both arms get the same change, so each row compares the combination with chemotherapy at
that dose and duration:

* **dose %**: every chemotherapy dose (mg, mg/m2, mg/kg or carboplatin AUC) is multiplied
  by dose% / 100; checkpoint inhibitors are unchanged;
* **cycles**: the trial's induction length (in 3-week cycles, e.g. 4 for KEYNOTE-189) is set
  to N; every induction item (a fixed number of cycles lasting at most twice the induction)
  is scaled in proportion (a weekly 12-dose item becomes 6 doses for half the induction).
  Chemotherapy given until progression, or capped far beyond the induction (maintenance), is
  unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from chemoio.errors import ChemoioInputError
from chemoio.experiments import common as cm

__all__ = ["dose", "scale_chemo", "DEFAULT_DOSE_PCT", "DEFAULT_CYCLES"]

DEFAULT_DOSE_PCT = (50, 75, 100, 125)
DEFAULT_CYCLES = (2, 4, 6)
MAX_DOSE_PCT = 300.0


def scale_chemo(regimen, dose_factor: float, cycles: int | None = None, reference_cycles: int | None = None):
    """``regimen`` with chemotherapy doses times ``dose_factor`` and, when ``cycles`` is
    given, the cycle count of every induction item times cycles / reference_cycles (at
    least 1). Induction items have a fixed number of cycles lasting at most twice the
    reference induction (2 x 21 x reference_cycles days); longer caps (e.g. 5-FU "x35" in
    KEYNOTE-590, i.e. until progression) count as maintenance and keep their cycles."""
    items = []
    for it in regimen.items:
        if cm.item_kind(it) != "chemo":
            items.append(it)
            continue
        changes: dict[str, Any] = {}
        if dose_factor != 1.0 and it.dose is not None:
            changes["dose"] = float(it.dose) * dose_factor
        if (cycles is not None and reference_cycles and it.cycles is not None
                and it.cycles * it.cycle_days <= 2 * 21 * reference_cycles):
            changes["cycles"] = max(1, int(round(it.cycles * cycles / reference_cycles)))
        items.append(cm.rebuild(it, **changes) if changes else it)
    return cm.with_items(regimen, items)


def dose(
    trial: Any = "keynote189",
    *,
    dose_pct: str | Sequence[float] = DEFAULT_DOSE_PCT,
    cycles: str | Sequence[int] = DEFAULT_CYCLES,
    replicates: int = 10,
    seed: int = 1,
    n_scale: float = 1.0,
    n_mechanism: int = 200,
    progress: cm.Progress | None = None,
) -> cm.ExperimentResult:
    """Grid over chemotherapy dose (% of the trial's dose) and induction cycles."""
    cm.check_run_settings(replicates, n_scale, seed)
    doses = cm.parse_number_list(dose_pct, "dose_pct", strictly_above=0.0)
    for v in doses:
        if v > MAX_DOSE_PCT:
            raise ChemoioInputError("dose_pct", f"{v:g} % is above {MAX_DOSE_PCT:g} % of the trial's dose")
    cyc = cm.parse_number_list(cycles, "cycles", integer=True, minimum=1)
    cm.check_n_mechanism(n_mechanism)
    doses, cyc = sorted(doses), sorted(int(c) for c in cyc)
    spec = cm.load_trial(trial)
    contrast = cm.find_contrast(spec)
    ref = cm.induction_cycles(contrast)
    window = float(cm.chemo_start_day(contrast) - 1 + 21 * max(cyc))

    per_run = 2 * cm.patients_per_run(spec, replicates, n_scale)
    work = cm.Work(progress, len(doses) * len(cyc) * (per_run + 2 * n_mechanism))
    rows, specs = [], {}
    for n_c in cyc:
        for pct in doses:
            f = pct / 100.0

            def fn(r, f=f, n_c=n_c):
                return scale_chemo(r, f, n_c, ref)

            exp_mix = cm.transform_arm(contrast.exp_arm, fn)
            ctl_mix = cm.transform_arm(contrast.ctl_arm, fn)
            label = f"{pct:g}%_x{n_c}"
            d = cm.derive_spec(contrast, exp_mix, ctl_mix, tag=f"dose_{pct:g}_x{n_c}",
                               note=f"chemotherapy at {pct:g} % of the trial's dose, {n_c} induction cycles")
            specs[label] = d
            res = cm.run_condition(d, replicates=replicates, seed=seed, n_scale=n_scale, work=work)
            c2 = cm.Contrast(d, contrast.experimental, contrast.control, d.comparisons[0])
            row: dict[str, Any] = {"dose_pct": pct, "cycles": n_c}
            row.update(cm.condition_columns(res, c2, exp_mix, ctl_mix, d, n=n_mechanism, seed=seed,
                                            window_days=window, work=work))
            rows.append(row)
    table = pd.DataFrame(rows)

    tte = [e.lower() for e in contrast.tte_endpoints]
    resp = [e.lower() for e in contrast.response_endpoints]
    headline = cm.hr_extremes(table, tte, lambda r: f"{r.dose_pct:g} % x {int(r.cycles)} cycles")
    lo, hi = table[table.dose_pct == doses[0]], table[table.dose_pct == doses[-1]]
    headline.append(f"Median best SLD change in the chemotherapy arm: {lo.best_change_chemo.mean():+.1f} % at "
                    f"{doses[0]:g} % dose vs {hi.best_change_chemo.mean():+.1f} % at {doses[-1]:g} % (mean over cycles).")
    display = ["dose_pct", "cycles"]
    display += cm.hr_columns(tte)
    display += [f"{ep}_combo" for ep in resp] + [f"{ep}_chemo" for ep in resp]
    display += ["best_change_chemo", "chemo_logkill", "lymphocyte_nadir"]
    settings = {
        "title": "chemotherapy dose and number of cycles",
        **cm.trial_settings(spec, contrast),
        "dose (% of the trial's)": ", ".join(f"{v:g}" for v in doses),
        "induction cycles": ", ".join(str(c) for c in cyc) + f" (trial: {ref})",
        **cm.run_settings(spec, replicates=replicates, seed=seed, n_scale=n_scale,
                          n_mechanism=n_mechanism, window=window),
    }
    notes = [
        "Both arms get the same chemotherapy change; the HR is the added value of the checkpoint inhibitor at "
        "that chemotherapy dose and duration. Absolute outcomes are in median_*_combo / median_*_chemo.",
        "Doses above 100 % exceed the label: read them as a mechanistic contrast, not as a tolerable dose. "
        "Whatever dose rules the trial's design contains apply unchanged in every row.",
        "best_change_*: median best % change of the measured sum of longest diameters (RECIST).",
        cm.DISCLAIMER,
    ]
    from chemoio.experiments.plots import dose_figure

    return cm.ExperimentResult("dose", spec.name, table, settings, headline, notes, specs, display, dose_figure)
