r"""`chemoio calibrate`: fit population-level parameters to the calibration targets.

Procedure (docs/calibration.md):

1. **Targets**: the published numbers of the shipped specs' control and ICI-monotherapy
   arms and the comparisons between such arms (:mod:`chemoio.calibration.targets`).
   Combination arms are predicted by the mechanism; only the opt-in ``kill_scales``
   calibration fits the tumour-response targets of the combination arms of a tumour type
   that has no ICI-monotherapy arm, and the opt-in ``lymphotoxicity`` calibration those of
   every chemotherapy + ICI arm.
2. **Stage A - tumour response** (ORR, complete responses, duration of response, median
   PFS, pCR, PFS HRs, and EFS events, which progression before surgery decides in part).
   Free: the shared immune parameters (PD-1
   engagement half-maximum, reinvigoration rate, the two anti-CTLA-4 terms), the stroma
   remodelling rate, the non-immune cell loss, one shared chemotherapy potency scale
   with one multiplier per drug class (prior-penalised), two shared spread exponents
   (between-patient log-SD of growth and of chemo sensitivity), a growth-rate scale per
   tumour type and a chemo-sensitivity scale per tumour type with a fitted chemotherapy arm
   (prior-penalised); with ``kill_scales``, also a CD8 kill scale per tumour type with a
   fitted combination arm (prior-penalised); with ``lymphotoxicity``, also chemotherapy's
   kill of CD8 effectors in the tumour (shared, prior-penalised); with ``encounter_kill``,
   also the encounter limit of CD8 killing (shared, prior-penalised). Every evaluation
   re-simulates the fit arms with the same seed (common random numbers), ``replicates``
   trials per spec, and fits the median over replicates;
   survival-link parameters stay at the start set's values during stage A.
3. **Stage B - survival link** (median OS, OS landmarks, OS HRs, EFS). Free: the Weibull
   scale per tumour type, the shared tumour-size coefficient and the post-surgery
   recurrence rate. Tumour trajectories from stage A are reused (only the hazard changes).

Both stages minimise :math:`\sum_i r_i^2` with
:math:`r_i = (T(\text{sim}_i) - T(\text{pub}_i))/\sigma_i` (T = log or logit; sigma from the
published 95 % CI plus a 0.1 model-discrepancy floor) by ``scipy.optimize.least_squares``
(trust-region reflective, forward differences of 0.2 in log-parameter space, bounds).
The result is a parameter-set YAML that records the command, data version and seed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares

from chemoio.calibration.targets import Target, collect_targets, simulated_values
from chemoio.errors import ChemoioInputError
from chemoio.model.parameters import default_vector, index_of
from chemoio.trial import load_spec
from chemoio.trial.runner import finish_trial, simulate_trial
from chemoio.trial.survival_model import survival_parameters

SHARED_FREE = {
    # name: (lower, upper) as multiples of the prior. (The priming rate is not free: with each
    # patient's CD8 T cells at diagnosis matched by solving for psi, only psi times the priming
    # rate enters the model, so the fit cannot see it; docs/model.md 3.)
    "pd1_engagement_half_max": (0.1, 10.0),
    "reinvigoration_per_day": (0.05, 10.0),
    "chemo_potency_scale": (0.05, 5.0),
    "ctla4_priming_gain": (0.05, 3.0),
    "treg_adcc_per_day": (0.05, 5.0),
    "stroma_remodel_per_day": (0.1, 10.0),
    # non-immune cell loss: how much of a tumour's cell loss at diagnosis is not T-cell kill
    "spontaneous_death_per_day": (0.1, 5.0),
}
# Between-patient spread exponents (population layer, shared by every tumour type): the
# log-SD of a patient parameter is the population file's sigma times ``spread.<name>``.
SPREAD_FREE = {
    "spread.growth_per_day": (0.3, 1.5),
    "spread.chemo_sensitivity": (0.3, 1.5),
}
# Per-agent cytotoxic potency, tied within a drug class: one free multiplier per class
# (``chemo_class.<class>``) sets ``chemo_potency.<drug>`` of every agent in it. Several agents
# appear in one calibration trial only, so classes (not agents) are fitted, each with a
# log-normal prior penalty around 1 (relative to the shared ``chemo_potency_scale``).
CHEMO_CLASSES = {
    "platinum": ("cisplatin", "carboplatin", "oxaliplatin"),
    "taxane": ("paclitaxel", "nab-paclitaxel", "docetaxel"),
    "antimetabolite": ("pemetrexed", "gemcitabine", "5-fluorouracil", "capecitabine"),
    "anthracycline": ("doxorubicin", "epirubicin"),
    "alkylator": ("cyclophosphamide", "dacarbazine"),
    "other": ("vinflunine", "etoposide"),
}
CLASS_BOUNDS = (0.1, 10.0)
CLASS_PRIOR_SD = 0.7  # SD of ln(multiplier) in the prior penalty (about a factor 2)
GROWTH_BOUNDS = (0.2, 5.0)
# Per-tumour-type chemo sensitivity (``chemo_sensitivity_scale.<tumor>``): multiplies the
# population's chemo sensitivities (every agent's E_max in that tumour type), free only for a
# tumour type with a chemotherapy arm that has a tumour-response target, with a log-normal
# prior penalty around 1 like the class multipliers (MAP: histologies differ in
# chemosensitivity, but a tumour type's sensitivity and its growth both shape one arm).
SENSITIVITY_BOUNDS = (0.2, 5.0)
SENSITIVITY_PRIOR_SD = 0.7
# Per-tumour-type CD8 killing capacity (``kill_scale.<tumor>``; opt-in, ``kill_scales=True``):
# multiplies the population's k_CT. Free only for a tumour type whose checkpoint-inhibitor arms
# in the calibration set are all combinations with chemotherapy (non-squamous NSCLC, early
# TNBC, oesophageal): the shared immune parameters are informed by other tumour types'
# ICI-monotherapy arms, and nothing else says how such a tumour type's T cells kill, so its
# combination arms' tumour-response targets are fitted (chemoio.calibration.targets).
# Log-normal prior penalty around 1 (SD 1). Not used by the shipped set (docs/calibration.md).
KILL_SCALE_BOUNDS = (0.05, 5.0)
KILL_SCALE_PRIOR_SD = 1.0
# Chemotherapy's kill of the CD8 effectors in the tumour (``lymphotox_tumour_max_per_day``;
# opt-in, ``lymphotoxicity=True``): shared by every tumour type, bounds × prior (0.3/day, assumed)
# and a log-normal prior penalty (SD 1). It acts only while chemotherapy is given, so a
# chemotherapy arm alone cannot tell it from potency; the tumour-response targets of the
# chemotherapy + ICI arms are fitted with it (chemoio.calibration.targets, docs/calibration.md).
LYMPHOTOX_FREE = "lymphotox_tumour_max_per_day"
LYMPHOTOX_BOUNDS = (0.1, 100.0)
LYMPHOTOX_PRIOR_SD = 1.0
# Encounter-limited CD8 killing (``kill_search_half_fraction``, n_50; opt-in,
# ``encounter_kill=True``): shared, off (0) in the model's defaults, so it gets its own prior
# here, 0.003 (assumed: the kill per tumour cell stops rising as 1/C only once viable cells
# fill less than ~0.3 % of the lesion, i.e. after > 99 % of them are gone while stroma and dead
# cells keep the volume), bounds x 0.1-10 and a log-normal prior penalty (SD 1). It decides
# whether T cells clear the cells that chemotherapy leaves, which the complete-response and
# duration-of-response targets of the chemotherapy arms inform (docs/calibration.md, step 13).
ENCOUNTER_FREE = "kill_search_half_fraction"
ENCOUNTER_PRIOR = 0.003
ENCOUNTER_BOUNDS = (0.1, 10.0)
ENCOUNTER_PRIOR_SD = 1.0
# Memory CD8 T cells (docs/model.md 2.4; opt-in, ``memory=True``): off (memory_fraction 0) in
# the model's defaults. The calibration switches the compartment on at the literature share
# MEMORY_FRACTION (Kaech & Cui 2012, PMID 23080391) and fits the tumour size at half-maximal
# recall (shared; prior 1e7 cells, assumed; bounds x 0.01-100, log-normal penalty SD 1.5). It
# decides how long a response held by T cells lasts, which the duration-of-response and
# complete-response targets of the ICI arms inform (docs/calibration.md, step 14).
MEMORY_FREE = "memory_recall_half_max_cells"
MEMORY_FRACTION = 0.05
MEMORY_PRIOR = 1.0e7
MEMORY_BOUNDS = (0.01, 100.0)
MEMORY_PRIOR_SD = 1.5
# finite-difference step in log-parameter space: 20 %, coarse enough that the discrete
# trial statistics (response counts, Kaplan-Meier medians) change between the two points
DIFF_STEP = 0.2
SURVIVAL_SHARED = {"survival.beta_size": (0.2, 3.0)}
SURVIVAL_SCALE_BOUNDS = (0.1, 10.0)
RECURRENCE_BOUNDS = (0.05, 20.0)


class _Budget(Exception):
    pass


class _Tracked:
    """Residual function wrapper: counts evaluations, remembers the best point, and stops
    the optimiser when the evaluation budget is spent (finite-difference evaluations
    included, which scipy's ``max_nfev`` does not count)."""

    def __init__(self, fn, budget: int):
        self.fn, self.budget, self.n = fn, budget, 0
        self.best_x, self.best_cost = None, math.inf
        self._last: tuple[np.ndarray, np.ndarray] | None = None
        self.bounds = None

    def __call__(self, x):
        x = np.asarray(x, dtype=float)
        if self._last is not None and np.array_equal(self._last[0], x):
            return self._last[1]
        if self.n >= self.budget:
            raise _Budget
        self.n += 1
        r = self.fn(x)
        self._last = (x.copy(), r)
        cost = 0.5 * float(r @ r)
        if cost < self.best_cost:
            self.best_cost, self.best_x = cost, x.copy()
        return r

    def jacobian(self, x):
        """Forward differences with an absolute step of DIFF_STEP in log-parameter space
        (backward where the forward point would leave the bounds)."""
        x = np.asarray(x, dtype=float)
        r0 = self(x)
        lo, hi = self.bounds
        jac = np.empty((r0.size, x.size))
        for i in range(x.size):
            h = DIFF_STEP if x[i] + DIFF_STEP <= hi[i] else -DIFF_STEP
            xi = x.copy()
            xi[i] += h
            jac[:, i] = (self(xi) - r0) / h
        return jac

    def minimise(self, x0, bounds):
        self.bounds = bounds
        try:
            least_squares(self, x0, jac=self.jacobian, bounds=bounds, x_scale=1.0)
        except _Budget:
            pass
        return self.best_x, self.best_cost


@dataclass
class CalibrationResult:
    parameters: dict[str, float]
    residuals: pd.DataFrame
    stage_a_cost: float
    stage_b_cost: float
    n_evaluations: int
    wall_s: float
    settings: dict = field(default_factory=dict)


def _fitted_classes(informed_drugs: dict[str, set[str]]) -> list[str]:
    """Drug classes with an agent in an arm that has a tumour-response (stage-A) target;
    a class seen only through survival targets cannot be informed by stage A."""
    used = set().union(*informed_drugs.values())
    return [c for c, agents in CHEMO_CLASSES.items() if used & set(agents)]


def _chemo_tumors(informed_drugs: dict[str, set[str]]) -> list[str]:
    """Tumour types with a chemotherapy agent in an arm that has a tumour-response target."""
    chemo = {a for agents in CHEMO_CLASSES.values() for a in agents}
    return sorted(t for t, drugs in informed_drugs.items() if drugs & chemo)


def _prior(name: str, tumors: list[str]) -> float:
    if name.startswith(("growth_scale.", "chemo_sensitivity_scale.", "kill_scale.", "chemo_class.", "spread.")):
        return 1.0
    if name == ENCOUNTER_FREE:
        return ENCOUNTER_PRIOR
    if name == MEMORY_FREE:
        return MEMORY_PRIOR
    if name.startswith("survival."):
        parts = name.split(".")
        sp = survival_parameters(parts[1] if len(parts) == 3 else tumors[0])
        return float(getattr(sp, parts[-1]))
    return float(default_vector()[index_of(name)])


def data_version(specs: list[str]) -> str:
    """Hash of the published blocks the targets come from."""
    h = hashlib.sha1()
    for name in sorted(specs):
        pub = load_spec(name).published
        h.update(name.encode())
        h.update(json.dumps(pub.model_dump(mode="json") if pub else None, sort_keys=True).encode())
    return h.hexdigest()[:12]


class Calibration:
    """Two-stage least-squares calibration over the fit targets of some specs."""

    def __init__(self, specs: list[str] | None = None, *, exclude: tuple[str, ...] = (), seed: int = 2026,
                 n_scale: float = 1.0, replicates: int = 1, base: dict[str, float] | None = None,
                 log: Callable[[str], None] | None = None, targets: list[Target] | None = None,
                 free_a: list[str] | None = None, free_b: list[str] | None = None,
                 kill_scales: bool = False, combination_survival: bool = False,
                 lymphotoxicity: bool = False, encounter_kill: bool = False, memory: bool = False):
        all_targets = targets if targets is not None else collect_targets(
            specs, fit_combinations=kill_scales, combination_survival=kill_scales and combination_survival,
            fit_chemo_ici=lymphotoxicity)
        self.targets = [t for t in all_targets if t.role == "fit" and t.spec not in exclude]
        self._target_specs = specs  # the specs the targets were collected from (None = all shipped)
        self.specs = sorted({t.spec for t in self.targets})
        self.seed, self.n_scale, self.replicates = seed, n_scale, replicates
        self.kill_scales = kill_scales
        self.combination_survival = kill_scales and combination_survival
        self.lymphotoxicity = lymphotoxicity
        self.encounter_kill = encounter_kill
        self.memory = memory
        self.log = log or (lambda msg: None)
        self.base = dict(base or {})
        if memory and not self.base.get("memory_fraction", 0.0) > 0.0:
            self.base["memory_fraction"] = MEMORY_FRACTION  # the compartment on, at its literature share
        # each spec is parsed once (the YAML was ~7 % of an evaluation)
        self._spec_cache = {s: load_spec(s) for s in self.specs}
        self.tumors = sorted({self._spec_cache[s].population.tumor for s in self.specs})
        self.arms = {}
        for s in self.specs:
            names = set()
            for t in self.targets:
                if t.spec == s:
                    names.update(t.arm.split(" vs ") if t.kind == "hr" else [t.arm])
            self.arms[s] = sorted(names)
        drugs = self._informed_drugs()
        self.free_a = (list(SHARED_FREE) + list(SPREAD_FREE) + [f"growth_scale.{t}" for t in self.tumors]
                       + [f"chemo_sensitivity_scale.{t}" for t in _chemo_tumors(drugs)]
                       + ([f"kill_scale.{t}" for t in self._combination_fit_tumors()] if kill_scales else [])
                       + ([LYMPHOTOX_FREE] if lymphotoxicity else [])
                       + ([ENCOUNTER_FREE] if encounter_kill else [])
                       + ([MEMORY_FREE] if memory else [])
                       + [f"chemo_class.{c}" for c in _fitted_classes(drugs)])
        # a tumour type's survival scale is free only where a survival target informs it (an
        # unidentified scale would drift with the optimiser's steps and mean nothing)
        informed_b = sorted({self._spec_cache[t.spec].population.tumor for t in self.targets
                             if t.in_stage("survival")})
        self.free_b = [f"survival.{t}.weibull_scale_months" for t in informed_b] + list(SURVIVAL_SHARED)
        if any(t.key == "efs_event_percent" for t in self.targets):
            self.free_b.append("survival.recurrence_per_month_at_1e6_cells")
        if free_a is not None:
            self.free_a = list(free_a)
        if free_b is not None:
            self.free_b = list(free_b)
        self.n_eval = 0
        self.states: dict[str, dict] = {}

    def _combination_fit_tumors(self) -> list[str]:
        """Tumour types with a fitted tumour-response target on a combination arm whose only
        checkpoint-inhibitor arms are combinations (chemoio.calibration.targets)."""
        from chemoio.calibration.targets import is_combination, tumors_without_ici_monotherapy

        no_mono = set(tumors_without_ici_monotherapy(self._target_specs))
        out = set()
        for t in self.targets:
            if not t.in_stage("trajectory"):
                continue
            spec = self._spec_cache[t.spec]
            combo = {a.name for a in spec.arms if is_combination(a)}
            if combo & set(t.arm.split(" vs ") if t.kind == "hr" else [t.arm]) and spec.population.tumor in no_mono:
                out.add(spec.population.tumor)
        return sorted(out)

    def _informed_drugs(self) -> dict[str, set[str]]:
        """Agents of the arms with a tumour-response (stage-A) target, per tumour type."""
        from chemoio.regimens import resolve_regimen

        informed = {(t.spec, a) for t in self.targets if t.in_stage("trajectory")
                    for a in (t.arm.split(" vs ") if t.kind == "hr" else [t.arm])}
        used: dict[str, set[str]] = {}
        for s in self.specs:
            spec = self._spec_cache[s]
            for arm in spec.arms:
                if (s, arm.name) in informed:
                    for reg in (arm.regimens or {arm.regimen: 1.0}):
                        used.setdefault(spec.population.tumor, set()).update(resolve_regimen(reg).drugs)
        return used

    # ----- parameter encoding: x = ln(theta / prior) ------------------------------------
    def _decode(self, names: list[str], x: np.ndarray) -> dict[str, float]:
        """Parameter-set entries of a point x; a class multiplier becomes the
        ``chemo_potency.<drug>`` entry of each agent of the class."""
        out: dict[str, float] = {}
        for n, v in zip(names, x):
            value = _prior(n, self.tumors) * math.exp(v)
            if n.startswith("chemo_class."):
                for agent in CHEMO_CLASSES[n.split(".", 1)[1]]:
                    out[f"chemo_potency.{agent}"] = value
            else:
                out[n] = value
        return out

    def _penalty(self, names: list[str], x: np.ndarray) -> np.ndarray:
        """Prior residuals ln(m)/SD of the class multipliers and of the tumour types' chemo
        sensitivity and kill scales (MAP estimate)."""
        sd = {"chemo_class.": CLASS_PRIOR_SD, "chemo_sensitivity_scale.": SENSITIVITY_PRIOR_SD,
              "kill_scale.": KILL_SCALE_PRIOR_SD}
        out = [v / sd[n.split(".", 1)[0] + "."] for n, v in zip(names, x) if n.startswith(tuple(sd))]
        out += [v / LYMPHOTOX_PRIOR_SD for n, v in zip(names, x) if n == LYMPHOTOX_FREE]
        out += [v / ENCOUNTER_PRIOR_SD for n, v in zip(names, x) if n == ENCOUNTER_FREE]
        out += [v / MEMORY_PRIOR_SD for n, v in zip(names, x) if n == MEMORY_FREE]
        return np.array(out)

    def _bounds(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = [], []
        for n in names:
            if n in SHARED_FREE:
                b = SHARED_FREE[n]
            elif n in SPREAD_FREE:
                b = SPREAD_FREE[n]
            elif n.startswith("chemo_class."):
                b = CLASS_BOUNDS
            elif n.startswith("growth_scale."):
                b = GROWTH_BOUNDS
            elif n.startswith("chemo_sensitivity_scale."):
                b = SENSITIVITY_BOUNDS
            elif n.startswith("kill_scale."):
                b = KILL_SCALE_BOUNDS
            elif n == LYMPHOTOX_FREE:
                b = LYMPHOTOX_BOUNDS
            elif n == ENCOUNTER_FREE:
                b = ENCOUNTER_BOUNDS
            elif n == MEMORY_FREE:
                b = MEMORY_BOUNDS
            elif n in SURVIVAL_SHARED:
                b = SURVIVAL_SHARED[n]
            elif n.endswith("recurrence_per_month_at_1e6_cells"):
                b = RECURRENCE_BOUNDS
            else:
                b = SURVIVAL_SCALE_BOUNDS
            lo.append(math.log(b[0]))
            hi.append(math.log(b[1]))
        return np.array(lo), np.array(hi)

    def _start(self, names: list[str]) -> np.ndarray:
        x = []
        for n in names:
            if n.startswith("chemo_class."):
                v = self.base.get(f"chemo_potency.{CHEMO_CLASSES[n.split('.', 1)[1]][0]}")
            else:
                v = self.base.get(n)
            if v is not None and v <= 0.0:
                if n != ENCOUNTER_FREE:
                    raise ChemoioInputError("--start", f"{n} = {v:g} in the start set; a fitted parameter must be > 0")
                v = None  # n_50 = 0 is the model's "off": the fit starts from its own prior
            x.append(0.0 if v is None else math.log(v / _prior(n, self.tumors)))
        lo, hi = self._bounds(names)
        return np.clip(np.array(x), lo + 1e-6, hi - 1e-6)

    # ----- residuals ----------------------------------------------------------------------
    def _residuals(self, results: dict, stage: str) -> np.ndarray:
        r = []
        for t in self.targets:
            if not t.in_stage(stage):
                continue
            v = simulated_values(t, results[t.spec])
            v = v[np.isfinite(v)]
            sim = float(np.median(v)) if v.size else (1e3 if t.transform == "log" else 99.5)
            r.append((t.t(sim) - t.t(t.value)) / t.sigma)
        return np.array(r)

    def simulate(self, params: dict[str, float]) -> dict:
        results = {}
        for s in self.specs:
            state = simulate_trial(self._spec_cache[s], replicates=self.replicates, seed=self.seed,
                                   parameters=params, arms=self.arms[s], n_scale=self.n_scale)
            self.states[s] = state
            results[s] = finish_trial(state)
        self.n_eval += 1
        return results

    def stage_a(self, x: np.ndarray) -> np.ndarray:
        params = {**self.base, **self._decode(self.free_a, x)}
        r = np.concatenate([self._residuals(self.simulate(params), "trajectory"),
                            self._penalty(self.free_a, x)])
        self.log(f"A eval {self.n_eval}: cost {0.5 * float(r @ r):.2f}")
        return r

    def stage_b(self, y: np.ndarray) -> np.ndarray:
        surv = self._decode(self.free_b, y)
        results = {s: finish_trial(st, survival=surv) for s, st in self.states.items()}
        self.n_eval += 1
        return self._residuals(results, "survival")

    def run(self, budget_a: int = 80, budget_b: int = 200) -> CalibrationResult:
        """Stage A then stage B, each within an evaluation budget (stage A evaluations
        re-simulate the fit arms; stage B evaluations only recompute survival)."""
        t0 = time.perf_counter()
        opt_a = _Tracked(self.stage_a, budget_a)
        x_a, cost_a = opt_a.minimise(self._start(self.free_a), self._bounds(self.free_a))
        params = {**self.base, **self._decode(self.free_a, x_a)}
        self.simulate(params)  # states at the stage-A optimum
        self.base = params
        opt_b = _Tracked(self.stage_b, budget_b)
        x_b, cost_b = opt_b.minimise(self._start(self.free_b), self._bounds(self.free_b))
        params.update(self._decode(self.free_b, x_b))
        final = {s: finish_trial(st, survival={k: v for k, v in params.items() if k.startswith("survival.")})
                 for s, st in self.states.items()}
        table = residual_table(self.targets, final)
        return CalibrationResult(
            parameters=params, residuals=table, stage_a_cost=float(cost_a),
            stage_b_cost=float(cost_b), n_evaluations=self.n_eval, wall_s=time.perf_counter() - t0,
            settings={"seed": self.seed, "n_scale": self.n_scale, "replicates": self.replicates,
                      **({"kill_scales": True} if self.kill_scales else {}),
                      **({"combination_survival": True} if self.combination_survival else {}),
                      **({"lymphotoxicity": True} if self.lymphotoxicity else {}),
                      **({"encounter_kill": True} if self.encounter_kill else {}),
                      **({"memory": True} if self.memory else {}),
                      "specs": self.specs, "free_stage_a": self.free_a, "free_stage_b": self.free_b},
        )


def residual_table(targets: list[Target], results: dict) -> pd.DataFrame:
    rows = []
    for t in targets:
        if t.spec not in results:
            continue
        v = simulated_values(t, results[t.spec])
        v = v[np.isfinite(v)]
        sim = float(np.median(v)) if v.size else float("nan")
        rows.append({"trial": t.trial_id, "arm": t.arm, "subgroup": t.subgroup, "endpoint": t.key,
                     "published": t.value, "simulated": sim,
                     "z": (t.t(sim) - t.t(t.value)) / t.sigma if np.isfinite(sim) else float("nan")})
    return pd.DataFrame(rows)


def write_parameter_set(result: CalibrationResult, path: str | Path, command: str) -> Path:
    """Write a calibrated parameter set that trial runs use (``--parameters`` or shipped)."""
    from chemoio import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": 1,
        "description": "Calibrated parameter set written by `chemoio calibrate`. Research use only.",
        "command": command,
        "chemoio_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data_version": data_version(result.settings["specs"]),
        "seed": result.settings["seed"],
        "settings": {k: v for k, v in result.settings.items() if k != "seed"},
        "objective": {"stage_a_cost": round(result.stage_a_cost, 4),
                      "stage_b_cost": round(result.stage_b_cost, 4),
                      "evaluations": result.n_evaluations, "wall_s": round(result.wall_s, 1)},
        "parameters": {k: float(f"{v:.6g}") for k, v in sorted(result.parameters.items())},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=100))
    return path
