"""ICD experiment: the same trial with the chemotherapy backbone swapped across agents of
different immunogenic-cell-death (ICD) potency.

For each agent, both arms of the trial's chemo-immunotherapy vs chemotherapy comparison get
the agent alone at a standard dose (``data/backbones.yaml``) for the trial's induction length;
the checkpoint inhibitor (and placebo) items of each arm are kept as designed. The table
gives the combination-vs-chemotherapy hazard ratios and response difference per backbone,
the mechanism read-outs, and the agent's ICD fraction from the drug library.

With ``equal_kill=True`` each backbone's dose is scaled so that its chemotherapy log-kill
over the read-out window equals a common target (the median of the agents at their standard
doses): the rows then differ in immunogenicity, not in cytotoxicity. The scaled doses are a
model contrast, not doses anyone should give.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import yaml

from chemoio.errors import ChemoioInputError, suggest
from chemoio.experiments import common as cm

__all__ = ["icd", "list_backbones", "backbone_regimen", "swap_backbone"]


@functools.lru_cache(maxsize=1)
def _backbones() -> dict[str, dict[str, Any]]:
    raw = yaml.safe_load(resources.files("chemoio.experiments").joinpath("data/backbones.yaml").read_text())
    return dict(raw["backbones"])


def list_backbones(default_only: bool = False) -> dict[str, dict[str, Any]]:
    """{agent: {text, source, note, default}} of the shipped single-agent backbones."""
    return {k: dict(v) for k, v in _backbones().items() if v.get("default") or not default_only}


def _resolve_agents(agents: str | Sequence[str] | None) -> list[str]:
    from chemoio.drugs import get_drug, list_drugs

    if agents is None:
        return list(list_backbones(default_only=True))
    names = [a.strip() for a in agents.split(",")] if isinstance(agents, str) else [str(a).strip() for a in agents]
    if not names or any(not a for a in names):
        raise ChemoioInputError("agents", f"cannot read {agents!r}", "write agent names separated by commas")
    known = list(_backbones())
    out: list[str] = []
    for a in names:
        try:
            drug = get_drug(a)
        except ChemoioInputError:
            chemo = [d.name for d in list_drugs() if not d.is_antibody]
            raise ChemoioInputError("agents", f"unknown agent {a!r}", suggest(a, chemo) or "one of " + ", ".join(known)) from None
        if drug.is_antibody:
            raise ChemoioInputError("agents", f"{drug.name} is a checkpoint inhibitor, not a chemotherapy backbone")
        if drug.name not in known:
            raise ChemoioInputError("agents", f"no standard backbone dose for {drug.name!r}",
                                    "add it to chemoio/experiments/data/backbones.yaml")
        if drug.name in out:
            raise ChemoioInputError("agents", f"{drug.name} is listed twice")
        out.append(drug.name)
    return out


def backbone_regimen(agent: str, cycles: int, start_day: int = 1, dose_factor: float = 1.0):
    """The agent's backbone (chemotherapy only) as a Regimen: ``cycles`` cycles from study
    day ``start_day``, doses multiplied by ``dose_factor``."""
    from chemoio.regimens import Regimen

    reg = Regimen.parse(_backbones()[agent]["text"])
    def scaled(d: float | None) -> float | None:
        if d is None or dose_factor == 1.0:
            return d
        return float(f"{float(d) * dose_factor:.3g}")  # 3 significant digits

    items = [cm.rebuild(i, cycles=int(cycles), start_day=int(start_day), dose=scaled(i.dose)) for i in reg.items]
    return Regimen(items=items)


def swap_backbone(regimen, backbone):
    """``regimen`` with every chemotherapy item replaced by the items of ``backbone``
    (checkpoint inhibitors and placebo kept)."""
    keep = [i for i in regimen.items if cm.item_kind(i) != "chemo"]
    return cm.with_items(regimen, keep + list(backbone.items))


def _match_kill(agent: str, cycles: int, start: int, target: float, spec, *, n: int, seed: int,
                window: float, work: cm.Work | None) -> tuple[float, float]:
    """Dose factor whose chemotherapy log-kill equals ``target`` (secant on log-log scale)."""
    def kill(f: float) -> float:
        reg = backbone_regimen(agent, cycles, start, f)
        return cm.chemo_logkill(cm.simulate_readout_cohort(reg, spec, n=n, seed=seed, window_days=window, work=work))

    f0, k0 = 1.0, kill(1.0)
    if not (k0 > 0 and target > 0):
        return 1.0, k0
    f1 = float(np.clip(target / k0, 0.05, 20.0))
    k1 = kill(f1)
    for _ in range(8):
        if abs(k1 / target - 1.0) < 0.02 or not k1 > 0:
            break
        slope = np.log(k1 / k0) / np.log(f1 / f0) if f1 != f0 and k1 != k0 else 1.0
        slope = float(np.clip(slope, 0.05, 2.0))
        f2 = float(np.clip(f1 * (target / k1) ** (1.0 / slope), 0.05, 20.0))
        if f2 == f1:
            break
        f0, k0, f1, k1 = f1, k1, f2, kill(f2)
    return f1, k1


def icd(
    trial: Any = "keynote189",
    *,
    agents: str | Sequence[str] | None = None,
    cycles: int | None = None,
    equal_kill: bool = False,
    fixed_control: bool = False,
    replicates: int = 10,
    seed: int = 1,
    n_scale: float = 1.0,
    n_mechanism: int = 200,
    window_days: float | None = None,
    progress: cm.Progress | None = None,
) -> cm.ExperimentResult:
    """Swap the trial's chemotherapy backbone across agents of different ICD potency.

    ``agents``: names (comma-separated text or a list; default: the default agents of
    ``data/backbones.yaml``); ``cycles``: backbone cycles (default: the trial's induction
    length in 3-week cycles); ``equal_kill``: scale each dose to a common chemotherapy
    log-kill; ``fixed_control``: swap the backbone in the combination arm only and keep the
    trial's own chemotherapy arm as the control (the HR then compares whole regimens with the
    standard of care); ``n_mechanism``: patients of the read-out cohort; ``window_days``: read-out
    window (default: the end of the backbone). Returns one row per agent, sorted by ICD
    fraction (highest first)."""
    from chemoio.drugs import get_drug

    cm.check_run_settings(replicates, n_scale, seed)
    names = _resolve_agents(agents)
    spec = cm.load_trial(trial)
    contrast = cm.find_contrast(spec)
    n_cyc = cm.induction_cycles(contrast) if cycles is None else cycles
    if isinstance(n_cyc, bool) or not isinstance(n_cyc, (int, np.integer)) or n_cyc < 1:
        raise ChemoioInputError("cycles", f"must be a whole number >= 1, got {cycles!r}")
    cm.check_n_mechanism(n_mechanism)
    start = cm.chemo_start_day(contrast)
    window = float(window_days) if window_days is not None else float(start - 1 + 21 * n_cyc)
    if not window > 0:
        raise ChemoioInputError("window_days", f"must be > 0, got {window_days!r}")

    n_cal = min(int(n_mechanism), 60)
    per_run = 2 * cm.patients_per_run(spec, replicates, n_scale)
    total = len(names) * (per_run + 2 * n_mechanism) + (len(names) * 6 * n_cal if equal_kill else 0)
    work = cm.Work(progress, total)

    factors = {a: 1.0 for a in names}
    target = float("nan")
    if equal_kill:
        base = {a: cm.chemo_logkill(cm.simulate_readout_cohort(backbone_regimen(a, n_cyc, start), spec, n=n_cal,
                                                               seed=seed, window_days=window, work=work))
                for a in names}
        target = float(np.median(list(base.values())))
        for a in names:
            factors[a], _ = _match_kill(a, n_cyc, start, target, spec, n=n_cal, seed=seed, window=window, work=work)

    rows, specs = [], {}
    for a in names:
        bb = backbone_regimen(a, n_cyc, start, factors[a])
        exp_mix = cm.transform_arm(contrast.exp_arm, lambda r, bb=bb: swap_backbone(r, bb))
        own_ctl = cm.transform_arm(contrast.ctl_arm, lambda r, bb=bb: swap_backbone(r, bb))
        ctl_mix = cm.arm_mixture_keys(contrast.ctl_arm) if fixed_control else own_ctl
        d = cm.derive_spec(contrast, exp_mix, ctl_mix, tag=f"icd_{a}", note=f"backbone {bb.to_text()}")
        specs[a] = d
        res = cm.run_condition(d, replicates=replicates, seed=seed, n_scale=n_scale, work=work)
        c2 = cm.Contrast(d, contrast.experimental, contrast.control, d.comparisons[0])
        row: dict[str, Any] = {"agent": a, "icd_fraction": float(get_drug(a).immunomodulation.icd_fraction.value),
                               "backbone": bb.to_text()}
        if equal_kill:
            row["dose_factor"] = factors[a]
        # read-outs: the backbone alone (without the inhibitor), also when the trial's control is kept
        row.update(cm.condition_columns(res, c2, exp_mix, ctl_mix, d, chemo=cm.first_regimen(own_ctl),
                                        n=n_mechanism, seed=seed, window_days=window, work=work))
        row["dose_source"] = _backbones()[a]["source"] if not equal_kill else "scaled to equal kill (model contrast)"
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["icd_fraction", "agent"], ascending=[False, True]).reset_index(drop=True)

    tte = [e.lower() for e in contrast.tte_endpoints]
    resp = [e.lower() for e in contrast.response_endpoints]
    headline = []
    for ep in tte:
        rho = cm.spearman(table.icd_fraction, table[f"hr_{ep}"])
        best = table.loc[table[f"hr_{ep}"].idxmin()]
        worst = table.loc[table[f"hr_{ep}"].idxmax()]
        headline.append(f"HR {ep.upper()} (combination vs chemotherapy) ranges from {best[f'hr_{ep}']:.2f} "
                        f"({best.agent}) to {worst[f'hr_{ep}']:.2f} ({worst.agent}); Spearman correlation "
                        f"with the ICD fraction {rho:+.2f} (negative = more ICD, more benefit).")
    for ep in resp:
        rho = cm.spearman(table.icd_fraction, table[f"{ep}_diff"])
        headline.append(f"{ep.upper()} difference: Spearman correlation with the ICD fraction {rho:+.2f}.")
    lm = cm.LANDMARK_MONTHS
    absolute = [f"{resp[0]}_combo"] if resp else []
    absolute += [f"{ep}_{lm}mo_combo" for ep in tte if f"{ep}_{lm}mo_combo" in table]
    if absolute:
        headline.append("Combination arm itself (absolute): Spearman correlation of the ICD fraction with " + ", ".join(
            f"{c.replace('_combo', '').replace('_', ' ').upper()} {cm.spearman(table.icd_fraction, table[c]):+.2f}"
            for c in absolute) + ".")
    rho = cm.spearman(table.icd_fraction, table.antigen_per_kill)
    headline.append(f"Antigen release per unit of chemotherapy kill vs ICD fraction: Spearman {rho:+.2f}.")
    if equal_kill:
        headline.append(f"Doses scaled to a common chemotherapy log-kill over {window:.0f} days (target {target:.2f} in "
                        f"the {n_cal}-patient calibration cohort; {table.chemo_logkill.min():.2f}-"
                        f"{table.chemo_logkill.max():.2f} in the read-out cohort).")

    display = ["agent", "icd_fraction"] + (["dose_factor"] if equal_kill else [])
    display += cm.hr_columns(tte)
    display += [f"{ep}_{k}" for ep in resp for k in ("combo", "chemo")]
    display += ["chemo_logkill", "antigen_fold_chemo", "antigen_per_kill"]
    settings = {
        "title": "chemotherapy backbone swapped across agents of different ICD potency",
        **cm.trial_settings(spec, contrast),
        "cycles": n_cyc, "backbone start day": start, "equal kill": equal_kill,
        "control arm": "the trial's chemotherapy as designed" if fixed_control else "the same backbone without the inhibitor",
        **cm.run_settings(spec, replicates=replicates, seed=seed, n_scale=n_scale,
                          n_mechanism=n_mechanism, window=window),
    }
    notes = [
        "Each row is the same trial (same patients, randomisation and event draws) with the chemotherapy "
        "replaced by the agent alone (both arms, or only the combination arm with --fixed-control); "
        "checkpoint-inhibitor and placebo items are unchanged.",
        "With both arms swapped the HR is the value the inhibitor ADDS to that backbone; a backbone that already "
        "unleashes immunity on its own (ICD, Treg/MDSC depletion) improves the control arm as well, so compare "
        "the absolute combination outcomes (orr_combo, *_12mo_combo) too.",
        "HRs: Cox model over all replicate trials, stratified by replicate (95 % Wald CI); p_success_*: share "
        "of replicate trials meeting the endpoint. Response differences in percentage points.",
        "Backbones differ in cytotoxicity as well as in ICD: read antigen_per_kill (extra antigen per unit of "
        "chemotherapy kill, chemotherapy arm) for immunogenicity alone, or rerun with --equal-kill.",
        "The swap drops the trial's maintenance chemotherapy; the 'pemetrexed' row is pemetrexed for the "
        "induction cycles only, not the KEYNOTE-189 regimen.",
        cm.DISCLAIMER,
    ]
    from chemoio.experiments.plots import icd_figure

    return cm.ExperimentResult("icd", spec.name, table, settings, headline, notes, specs, display, icd_figure)
