"""Calibration targets: the published numbers of the shipped trial specs.

The specs' ``published`` blocks are transcribed from the project's calibration set (the
calibration trials' file). Each number becomes a :class:`Target` with a transform (log for
medians and hazard ratios, logit for percentages) and an uncertainty on that scale taken
from its 95 % CI (or a default when the publication gives none).

Role of a target:
* ``fit`` - arms whose regimen is chemotherapy alone or a single checkpoint inhibitor,
  and comparisons between such arms;
* ``predict`` - anything involving a combination arm (chemotherapy + ICI, or two ICIs):
  never fitted, predicted by the mechanism.

With ``fit_combinations=True`` (the opt-in kill-scale calibration, ``chemoio calibrate
--kill-scales``) the tumour-response targets (ORR, PFS, pCR, PFS HR, EFS events) of the
chemotherapy + ICI arms of a tumour type with no checkpoint-inhibitor monotherapy arm among
the specs are fitted too: they are the only arms that show how that tumour type's T cells
kill (its ``kill_scale.<tumor>``; docs/calibration.md). Their survival targets stay
predictions.

With ``fit_chemo_ici=True`` (the opt-in lymphotoxicity calibration, ``chemoio calibrate
--lymphotoxicity``) the tumour-response targets of every chemotherapy + ICI arm are fitted:
how much chemotherapy takes away from the T cells that a checkpoint inhibitor frees acts only
when both are given, so only those arms inform it. Their survival targets stay predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chemoio.trial import list_specs, load_spec

ARM_STATISTICS = (
    "orr_percent", "median_pfs_months", "median_os_months", "pcr_percent", "efs_event_percent",
    "os_12mo_percent", "os_24mo_percent", "os_36mo_percent", "os_60mo_percent",
    "pfs_6mo_percent", "pfs_9mo_percent", "pfs_12mo_percent", "cr_percent", "median_dor_months",
)
TRAJECTORY_KEYS = ("orr_percent", "cr_percent", "median_dor_months", "median_pfs_months", "pcr_percent",
                   "pfs_6mo_percent", "pfs_9mo_percent", "pfs_12mo_percent", "HR PFS")
# Survival targets that the tumour trajectories also decide, so both stages fit them: an EFS
# event is a progression before surgery (a trajectory) or a recurrence or death after it (the
# survival link); with the step-11 set 30 % of KEYNOTE-522 control patients progressed before
# surgery, which stage B alone cannot move (docs/calibration.md, step 12).
BOTH_STAGE_KEYS = ("efs_event_percent",)
Z95 = 1.959964
DEFAULT_SIGMA = {"log": 0.15, "logit": 0.25}
DISCREPANCY = 0.10  # model-discrepancy floor added in quadrature on the transformed scale


@dataclass(frozen=True)
class Target:
    spec: str
    trial_id: str
    kind: str  # "arm" or "hr"
    arm: str  # arm name, or "exp vs ctl"
    subgroup: str  # "ITT" or a subgroup name
    key: str  # statistic (arm) or "HR OS"/"HR PFS"/"HR EFS"
    value: float
    ci: tuple[float, float] | None
    role: str  # "fit" or "predict"
    n: int | None = None  # patients behind an ITT arm percentage (binomial uncertainty)
    both_stages: bool = False  # a survival target fitted in stage A as well (see in_stage)

    @property
    def transform(self) -> str:
        return "logit" if self.key.endswith("_percent") else "log"

    @property
    def stage(self) -> str:
        """'trajectory' targets inform tumour-response parameters, 'survival' the OS link."""
        return "trajectory" if self.key in TRAJECTORY_KEYS else "survival"

    def in_stage(self, stage: str) -> bool:
        """Whether the residual of this target enters ``stage`` ('trajectory' = stage A,
        'survival' = stage B): its own stage, and both for :data:`BOTH_STAGE_KEYS` and for a
        target marked ``both_stages``."""
        return self.stage == stage or self.key in BOTH_STAGE_KEYS or self.both_stages

    def t(self, x: float) -> float:
        return _transform(self.transform, x)

    @property
    def sigma(self) -> float:
        if self.ci is not None and self.ci[0] is not None and self.ci[1] is not None:
            lo, hi = self.t(self.ci[0]), self.t(self.ci[1])
            s = abs(hi - lo) / (2 * Z95)
        else:
            s = DEFAULT_SIGMA[self.transform]
            if self.transform == "logit" and self.n:
                # no CI published: at least the binomial standard error on the logit scale
                p = min(max(self.value / 100.0, 0.5 / self.n), 1.0 - 0.5 / self.n)
                s = max(s, 1.0 / math.sqrt(self.n * p * (1.0 - p)))
        return math.sqrt(max(s, 0.02) ** 2 + DISCREPANCY**2)


def _transform(kind: str, x: float) -> float:
    if kind == "log":
        return math.log(max(float(x), 1e-3))
    p = min(max(float(x) / 100.0, 0.005), 0.995)
    return math.log(p / (1.0 - p))


def _regimen_agents(arm) -> list[tuple[set[str], set[str]]]:
    """(cytotoxics, checkpoint inhibitors) of each regimen of an arm."""
    from chemoio.drugs import get_drug
    from chemoio.regimens import resolve_regimen

    out = []
    for name in (arm.regimens or {arm.regimen: 1.0}):
        drugs = set(resolve_regimen(name).drugs)
        chemo = {d for d in drugs if get_drug(d).kind == "chemotherapy"}
        out.append((chemo, drugs - chemo))
    return out


def is_combination(arm) -> bool:
    """True when an arm's regimen(s) combine chemotherapy with an ICI, or two ICIs."""
    return any(len(icis) > 1 or (icis and chemo) for chemo, icis in _regimen_agents(arm))


def is_chemo_ici(arm) -> bool:
    """True when some regimen of an arm gives chemotherapy together with a checkpoint inhibitor."""
    return any(chemo and icis for chemo, icis in _regimen_agents(arm))


def is_ici_monotherapy(arm) -> bool:
    """True when every regimen of an arm is one checkpoint inhibitor and no chemotherapy."""
    return all(not chemo and len(icis) == 1 for chemo, icis in _regimen_agents(arm))


def tumors_without_ici_monotherapy(specs: list[str] | None = None) -> list[str]:
    """Tumour types of ``specs`` (default: the shipped specs with published numbers) that have
    a combination arm but no checkpoint-inhibitor monotherapy arm with a published number
    (in all patients, in a subgroup or in a comparison)."""
    mono, combo = set(), set()
    for name in specs or list_specs():
        spec = load_spec(name)
        if spec.published is None:
            continue
        pub = spec.published
        published = set(pub.arms or {})
        for arms in (getattr(pub, "subgroups", None) or {}).values():
            published.update(arms)
        for comp in pub.comparisons or []:
            published.update((comp.experimental, comp.control))
        for arm in spec.arms:
            if is_combination(arm):
                combo.add(spec.population.tumor)
            elif arm.name in published and is_ici_monotherapy(arm):
                mono.add(spec.population.tumor)
    return sorted(combo - mono)


def collect_targets(specs: list[str] | None = None, *, fit_combinations: bool = False,
                    combination_survival: bool = False, fit_chemo_ici: bool = False) -> list[Target]:
    """Every usable published number of the shipped specs (or of ``specs``); with
    ``fit_combinations`` the tumour-response targets of the combination arms of tumour types
    without an ICI-monotherapy arm are fitted (module docstring), and with
    ``combination_survival`` as well their survival targets, in both calibration stages; with
    ``fit_chemo_ici`` the tumour-response targets of every chemotherapy + ICI arm."""
    out: list[Target] = []
    names = specs or list_specs()
    # a tumour type whose only ICI arms are combinations: their tumour-response targets are fitted
    no_mono = set(tumors_without_ici_monotherapy(names)) if fit_combinations else set()
    for name in names:
        spec = load_spec(name)
        pub = spec.published
        if pub is None:
            continue
        combo = {a.name for a in spec.arms if is_combination(a)}
        chemo_ici = {a.name for a in spec.arms if is_chemo_ici(a)} if fit_chemo_ici else set()
        sizes = spec.arm_sizes()
        fit_combo = spec.population.tumor in no_mono

        def role(arms: list[str], key: str) -> str:
            if not combo & set(arms):
                return "fit"
            if fit_combo and (combination_survival or key in TRAJECTORY_KEYS or key in BOTH_STAGE_KEYS):
                return "fit"
            if combo & set(arms) <= chemo_ici and (key in TRAJECTORY_KEYS or key in BOTH_STAGE_KEYS):
                return "fit"
            return "predict"

        def both(arms: list[str], key: str) -> bool:
            """A fitted survival target of a combination arm enters stage A too."""
            return bool(fit_combo and combination_survival and combo & set(arms) and key not in TRAJECTORY_KEYS)

        def add_arm(arm: str, subgroup: str, values) -> None:
            for key, pv in (values or {}).items():
                if key not in ARM_STATISTICS or pv is None or pv.value is None:
                    continue
                out.append(Target(name, spec.trial_id, "arm", arm, subgroup, key, float(pv.value),
                                  tuple(pv.ci) if pv.ci is not None else None, role([arm], key),
                                  sizes.get(arm) if subgroup == "ITT" else None, both([arm], key)))

        for arm, values in (pub.arms or {}).items():
            add_arm(arm, "ITT", values)
        for sg, arms in (getattr(pub, "subgroups", None) or {}).items():
            for arm, values in arms.items():
                add_arm(arm, sg, values)
        for comp in pub.comparisons or []:
            if comp.hr is None or comp.hr.value is None or comp.endpoint not in ("OS", "PFS", "EFS"):
                continue
            if comp.hr.ci is not None and getattr(comp.hr, "ci_level", 0.95) not in (None, 0.95):
                ci = None  # a 99.5 % CI is not a 95 % CI: use the default uncertainty
            else:
                ci = tuple(comp.hr.ci) if comp.hr.ci is not None else None
            out.append(Target(name, spec.trial_id, "hr", f"{comp.experimental} vs {comp.control}",
                              comp.subgroup or "ITT", f"HR {comp.endpoint}", float(comp.hr.value), ci,
                              role([comp.experimental, comp.control], f"HR {comp.endpoint}"),
                              both_stages=both([comp.experimental, comp.control], f"HR {comp.endpoint}")))
    return out


def simulated_values(target: Target, result) -> np.ndarray:
    """Per-replicate simulated values of a target from a TrialResult."""
    if target.kind == "arm":
        st = result.arm_stats
        sel = st[(st.arm == target.arm) & (st.subgroup == target.subgroup) & (st.statistic == target.key)]
        vals = sel.value.to_numpy(dtype=float)
        if target.key.startswith("median_") and vals.size:
            # median not reached: use the longest follow-up as a floor (it is at least that)
            cap = result.spec.follow_up.data_cutoff_months
            vals = np.where(np.isfinite(vals), vals, cap)
        return vals
    exp, ctl = target.arm.split(" vs ")
    cs = result.comparison_stats
    sel = cs[(cs.experimental == exp) & (cs.control == ctl) & (cs.subgroup == target.subgroup)
             & (cs.endpoint == target.key.split()[1])]
    return sel.hr.to_numpy(dtype=float)
