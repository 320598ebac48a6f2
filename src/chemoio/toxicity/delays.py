"""Dose delays, omissions and reductions driven by the simulated neutrophil count.

:func:`plan_doses` runs the Friberg model (:mod:`chemoio.toxicity.friberg`) for every
patient along the regimen's schedule and applies a protocol rule at each chemotherapy
dose, so that each patient gets their own dose times and amounts (a :class:`DosePlan`).
The plan depends only on the chemotherapy PK and the marrow, not on the tumour, so it is
made before the tumour simulation and fed to the engine as per-patient events.

The rule (:class:`DoseRules`, defaults of a typical protocol):

* **Day 1 of a cycle** of a myelotoxic agent (a *check point*): if ANC < ``anc_min``
  (1.5 x 10^9/L) the cycle is postponed by ``recheck_days`` (7) and ANC is checked
  again, up to ``max_delay_days`` (21) in total. A cycle that still cannot start is
  omitted: its chemotherapy is not given and the schedule continues with the next cycle at
  its planned time. A delay moves **every later event of the patient** by the delay --
  the checkpoint inhibitor too (``delay_moves="whole_schedule"``, as in trial protocols
  where the whole combination cycle is postponed); with ``"chemotherapy"`` only the
  cytotoxics move and the antibody stays on its own schedule.
* **Later days of a cycle** a week or more after day 1 (d8, d15): the dose is omitted if
  ANC < ``within_cycle_anc_min`` (1.0); nothing moves. Doses on the days right after
  day 1 (d2-d5, e.g. infusional 5-FU or etoposide d1-3) follow day 1.
* **Dose reduction**: if the nadir of the previous cycle was below ``reduce_below_anc``
  (0.5, grade 4), the cytotoxic doses from this cycle on are multiplied by
  ``reduction_factor`` (0.75), at most ``max_reductions`` (2) times; a further grade-4
  nadir stops the cytotoxics (pemetrexed label: 75 % of the previous dose after a nadir
  ANC < 500/mm3, discontinue after two reductions).

:class:`DoseRules` defaults to all three rules; a trial spec's ``toxicity`` section
(docs/trials.md) switches the within-cycle omission and the reductions off unless asked
for, because they lower the dose intensity the shipped parameters were calibrated with.

Agents without a ``myelotoxicity`` block in their drug file (the antibodies) have no
effect on the marrow and are never checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chemoio.drugs import get_drug
from chemoio.errors import ChemoioInputError
from chemoio.model import equations as eq
from chemoio.model.pkpd import build_slots, reference_dose_mg
from chemoio.regimens.events import DoseTable
from chemoio.toxicity import friberg as fr

DELAY_MOVES = ("whole_schedule", "chemotherapy")


@dataclass(frozen=True)
class DoseRules:
    """Protocol rule for dose delays, omissions and reductions (see the module text).

    ``anc_min=0`` turns delays off, ``within_cycle_anc_min=None`` the within-cycle
    omissions and ``reduce_below_anc=None`` the reductions; :data:`NO_RULES` turns all off
    (every dose on its planned day, the neutrophil count is still simulated)."""

    anc_min: float = 1.5
    recheck_days: float = 7.0
    max_delay_days: float = 21.0
    within_cycle_anc_min: float | None = 1.0
    reduce_below_anc: float | None = 0.5
    reduction_factor: float = 0.75
    max_reductions: int = 2
    delay_moves: str = "whole_schedule"
    enabled: bool = True

    def __post_init__(self) -> None:
        checks = {
            "anc_min": self.anc_min >= 0,
            "recheck_days": self.recheck_days > 0,
            "max_delay_days": self.max_delay_days >= 0,
            "reduction_factor": 0 < self.reduction_factor <= 1,
            "max_reductions": self.max_reductions >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ChemoioInputError(name, f"invalid value {getattr(self, name)!r}")
        if self.within_cycle_anc_min is not None and self.within_cycle_anc_min < 0:
            raise ChemoioInputError("within_cycle_anc_min", f"must be >= 0, got {self.within_cycle_anc_min}")
        if self.reduce_below_anc is not None and self.reduce_below_anc < 0:
            raise ChemoioInputError("reduce_below_anc", f"must be >= 0, got {self.reduce_below_anc}")
        if self.delay_moves not in DELAY_MOVES:
            raise ChemoioInputError("delay_moves", f"unknown value {self.delay_moves!r}", "use " + " or ".join(DELAY_MOVES))

    def vector(self) -> np.ndarray:
        v = np.zeros(fr.N_RULE)
        v[fr.R_ENABLED] = 1.0 if self.enabled else 0.0
        v[fr.R_ANC_MIN] = self.anc_min
        v[fr.R_STEP] = self.recheck_days
        v[fr.R_MAX_DELAY] = self.max_delay_days
        v[fr.R_WITHIN_ENABLED] = 0.0 if self.within_cycle_anc_min is None else 1.0
        v[fr.R_ANC_MIN_WITHIN] = self.within_cycle_anc_min or 0.0
        v[fr.R_REDUCE_BELOW] = self.reduce_below_anc if self.reduce_below_anc is not None else -1.0
        v[fr.R_REDUCE_FACTOR] = self.reduction_factor
        v[fr.R_MAX_REDUCTIONS] = float(self.max_reductions)
        v[fr.R_MOVES_ALL] = 1.0 if self.delay_moves == "whole_schedule" else 0.0
        return v


#: Every dose on its planned day (the neutrophil count is still simulated).
NO_RULES = DoseRules(enabled=False)


def delay_for_anc_series(anc_at_checks: Sequence[float], rules: DoseRules | None = None) -> tuple[float, bool]:
    """Apply the day-1 rule to ANC values measured on the planned day and at each re-check
    (``anc_at_checks[j]`` at ``j * recheck_days``): returns (postponement in days, omitted?).
    The kernel makes the same decisions (:func:`chemoio.toxicity.friberg.delay_decision`)."""
    rules = DoseRules() if rules is None else rules
    delay = 0.0
    for anc in anc_at_checks:
        d = fr.delay_decision(float(anc), delay, rules.anc_min, rules.max_delay_days)
        if d == fr.GIVE:
            return delay, False
        if d == fr.OMIT:
            return delay, True
        delay += rules.recheck_days
    raise ChemoioInputError("anc_at_checks", f"no decision after {len(anc_at_checks)} values; give more re-checks")


def dose_factors_for_nadirs(nadirs: Sequence[float], rules: DoseRules | None = None) -> list[float]:
    """Dose factor of each cycle given the nadir of every previous cycle (cycle k uses
    ``nadirs[k-1]``); 0 once the cytotoxics are stopped. Same decisions as the kernel
    (:func:`chemoio.toxicity.friberg.reduction_decision`)."""
    rules = DoseRules() if rules is None else rules
    below = rules.reduce_below_anc if rules.reduce_below_anc is not None else -1.0
    factor, n_red, stopped = 1.0, 0, False
    out = [1.0]
    for nadir in nadirs:
        if not stopped:
            r = fr.reduction_decision(float(nadir), n_red, below, float(rules.max_reductions))
            if r == fr.REDUCE:
                n_red += 1
                factor *= rules.reduction_factor
            elif r == fr.STOP:
                stopped = True
        out.append(0.0 if stopped else factor)
    return out


def myelotoxic_slope(drug_name: str) -> float:
    """Friberg slope (L/mg) of a drug; 0 for agents without a myelotoxicity block."""
    d = get_drug(drug_name)
    block = getattr(d, "myelotoxicity", None)
    if d.is_antibody or block is None:
        return 0.0
    return float(block.slope_L_per_mg.value)


@dataclass
class DosePlan:
    """Per-patient dose events after the rule, and the neutrophil records.

    ``time``/``amount`` are (n, E) in the event order of the regimen's DoseTable; ``slot``
    and ``duration`` (E,). Per check point k (day 1 of a cycle of a myelotoxic agent, K in
    all): ``check_day`` (day the cycle was due, after earlier delays), ``delay_days``,
    ``flags`` (bits :data:`chemoio.toxicity.friberg.F_DELAYED` ...), and the lowest ANC from
    that check point to the next (``nadir``, 10^9/L) with its day (``nadir_day``).
    ``circ0`` is the baseline ANC; ``anc_grid`` the ANC on the requested output grid."""

    drugs: tuple[str, ...]
    time: np.ndarray
    slot: np.ndarray
    duration: np.ndarray
    amount: np.ndarray
    check_day: np.ndarray
    delay_days: np.ndarray
    flags: np.ndarray
    nadir: np.ndarray
    nadir_day: np.ndarray
    circ0: np.ndarray
    anc_grid: np.ndarray | None = None

    @property
    def n_patients(self) -> int:
        return int(self.amount.shape[0])

    def take(self, rows) -> DosePlan:
        sub = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("time", "amount", "check_day", "delay_days", "flags", "nadir", "nadir_day", "circ0"):
            sub[name] = sub[name][rows]
        if self.anc_grid is not None:
            sub["anc_grid"] = self.anc_grid[rows]
        return DosePlan(**sub)

    def summary(self, on_treatment_until=np.inf, observed_until=np.inf) -> dict[str, np.ndarray]:
        """Per-patient outcomes over the observation window.

        A cycle counts when its check day lies before ``on_treatment_until`` (e.g. the day
        treatment stopped at progression) and ``observed_until`` (death, censoring); a
        cycle's nadir counts when it falls before ``observed_until``. Returns ``anc_nadir``
        (10^9/L; the baseline when no cycle counts), ``anc_grade`` (worst CTCAE grade 0-4 of
        the counted nadirs; 0 without myelotoxic treatment), ``n_dose_delays``,
        ``dose_delay_days``, ``n_cycles_omitted``, ``n_dose_reductions``, ``chemo_stopped``.
        """
        n = self.n_patients
        on = np.broadcast_to(np.asarray(on_treatment_until, dtype=float), (n,))
        obs = np.broadcast_to(np.asarray(observed_until, dtype=float), (n,))
        if self.check_day.shape[1] == 0:
            zero = np.zeros(n, dtype=np.int64)
            return {"anc_nadir": self.circ0.astype(float).copy(), "anc_grade": np.zeros(n, dtype=np.int8),
                    "n_dose_delays": zero, "dose_delay_days": np.zeros(n), "n_cycles_omitted": zero.copy(),
                    "n_dose_reductions": zero.copy(), "chemo_stopped": np.zeros(n, dtype=bool)}
        ck = self.check_day.astype(float)
        counted = np.isfinite(ck) & (ck < on[:, None]) & (ck < obs[:, None])
        seen = counted & (self.nadir_day.astype(float) <= obs[:, None])
        nadir = np.where(seen, self.nadir.astype(float), np.inf).min(axis=1)
        nadir = np.minimum(nadir, self.circ0)
        grade = np.where(counted.any(axis=1), fr.ctcae_grade(nadir), 0).astype(np.int8)
        flags = np.where(counted, self.flags, 0)
        return {
            "anc_nadir": nadir,
            "anc_grade": grade,
            "n_dose_delays": ((flags & fr.F_DELAYED) > 0).sum(axis=1),
            "dose_delay_days": np.where(counted, self.delay_days.astype(float), 0.0).sum(axis=1),
            "n_cycles_omitted": ((flags & fr.F_SKIPPED) > 0).sum(axis=1),
            "n_dose_reductions": ((flags & fr.F_REDUCED) > 0).sum(axis=1),
            "chemo_stopped": ((flags & fr.F_STOPPED) > 0).any(axis=1),
        }


def classify_events(regimen, table: DoseTable, slopes: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Kind of every event of ``table`` (friberg.KIND_*) and its check point index.

    Day 1 of a cycle of a regimen item is a check point; days >= 7 into the cycle are
    within-cycle doses, days 2-6 continuations of day 1. ``regimen`` may be None: then every
    myelotoxic dose counts as a day 1 (each dose its own cycle)."""
    n_ev = table.n_events
    kind = np.zeros(n_ev, dtype=np.int64)
    day_kind: dict[tuple[str, float], int] = {}
    if regimen is not None:
        horizon = float(table.time_day.max()) + 1.0 if n_ev else 1.0
        for item in regimen.items:
            if item.is_placebo or slopes.get(item.drug, 0.0) <= 0.0:
                continue
            times = item.dose_times(horizon)
            first = item.start_day - 1
            for t in times:
                rel = (t - first) % item.cycle_days
                k = fr.KIND_CYCLE_START if rel < 0.5 else (
                    fr.KIND_WITHIN_CYCLE if rel >= 6.5 else fr.KIND_CONTINUATION)
                key = (item.drug, round(float(t), 6))
                day_kind[key] = min(day_kind.get(key, k), k)
    for e in range(n_ev):
        drug = table.drugs[int(table.slot[e])]
        if slopes.get(drug, 0.0) <= 0.0:
            continue
        kind[e] = day_kind.get((drug, round(float(table.time_day[e]), 6)), fr.KIND_CYCLE_START)
    starts = np.unique(table.time_day[kind == fr.KIND_CYCLE_START])
    point = np.full(n_ev, -1, dtype=np.int64)
    myelo = kind != fr.KIND_OTHER
    point[myelo] = np.searchsorted(starts, table.time_day[myelo], side="right") - 1
    return kind, point


def plan_doses(
    regimen,
    table: DoseTable,
    weight_kg: np.ndarray,
    bsa_m2: np.ndarray,
    gfr_mL_min: np.ndarray,
    *,
    pk_eta: np.ndarray | None = None,
    marrow: fr.PatientMarrow | None = None,
    rules: DoseRules | None = None,
    end_cap_day: float | np.ndarray = np.inf,
    grid_day: Sequence[float] | np.ndarray | None = None,
    step_days: float = fr.DEFAULT_STEP_DAYS,
    drug_step_days: float = fr.DEFAULT_DRUG_STEP_DAYS,
    slope_override: dict[str, float] | None = None,
) -> DosePlan:
    """Simulate neutrophils along ``table`` (the regimen's DoseTable) and apply ``rules``.

    ``pk_eta`` (n, >=S, 2) are the patients' PK random effects in the table's drug order
    (the same the engine uses, so the cytotoxic CL matches the tumour simulation);
    ``marrow`` the per-patient system parameters (typical when None). ``end_cap_day`` stops
    the marrow follow-up (e.g. the data cut-off); ``grid_day`` asks for the ANC on a grid
    (``DosePlan.anc_grid``). ``slope_override`` replaces drug slopes (L/mg), e.g. for
    calibration. ``regimen`` (a Regimen, or None) tells day 1 of a cycle from later days.
    """
    rules = DoseRules() if rules is None else rules
    n = table.n_patients
    w = np.asarray(weight_kg, dtype=float).reshape(-1)
    b = np.asarray(bsa_m2, dtype=float).reshape(-1)
    g = np.asarray(gfr_mL_min, dtype=float).reshape(-1)
    if not (w.size == b.size == g.size == n):
        raise ChemoioInputError("covariates", f"need {n} values of weight, BSA and GFR, got {w.size}, {b.size}, {g.size}")
    for name, v in (("step_days", step_days), ("drug_step_days", drug_step_days)):
        whole = v >= 1 and abs(v - round(v)) < 1e-9
        part = 0 < v < 1 and abs(1.0 / v - round(1.0 / v)) < 1e-9
        if not (whole or part) or (name == "drug_step_days" and v > 1):
            raise ChemoioInputError(name, f"must be whole days or 1/k of a day (2, 1, 0.5, 0.25, ...), got {v}")
    marrow = fr.PatientMarrow.typical(n) if marrow is None else marrow
    if marrow.circ0.shape[0] != n:
        raise ChemoioInputError("marrow", f"has {marrow.circ0.shape[0]} patients, the dose table {n}")

    slopes = {d: myelotoxic_slope(d) for d in table.drugs}
    if slope_override:
        slopes.update({k: float(v) for k, v in slope_override.items()})
    myelo = [d for d in table.drugs if slopes.get(d, 0.0) > 0.0]
    kind, point = classify_events(regimen, table, slopes)
    n_points = int(point.max()) + 1 if (kind == fr.KIND_CYCLE_START).any() else 0
    n_ev = table.n_events
    grid = np.ascontiguousarray(np.asarray([] if grid_day is None else grid_day, dtype=float))

    # PK of the myelotoxic slots: the engine's own slot parameters (CL, V per patient)
    s_idx = np.array([table.drugs.index(d) for d in myelo], dtype=np.int64)
    if myelo:
        eta = None
        if pk_eta is not None:
            eta = np.asarray(pk_eta, dtype=float)[:, : len(table.drugs), :][:, s_idx, :]
        _, sp = build_slots([get_drug(d) for d in myelo], w, b, g, eta=eta)
        kel = np.ascontiguousarray(-sp[:, :, eq.S_A11])
        vol = np.ascontiguousarray(sp[:, :, eq.S_V])
    else:
        kel = np.ones((n, 0))
        vol = np.ones((n, 0))
    slope = np.ascontiguousarray(np.array([slopes[d] for d in myelo], dtype=float)[None, :]
                                 * marrow.slope_factor[:, None])
    ev_slot = np.full(n_ev, -1, dtype=np.int64)
    for j, d in enumerate(myelo):
        ev_slot[np.asarray(table.slot) == table.drugs.index(d)] = j
    rank = np.where(kind == fr.KIND_CYCLE_START, 0, np.where(kind == fr.KIND_OTHER, 2, 1))
    order = np.lexsort((np.arange(n_ev), rank, table.time_day)).astype(np.int64)

    out_time = np.empty((n, n_ev))
    out_amount = np.empty((n, n_ev))
    ck_day = np.full((n, n_points), np.nan)
    ck_delay = np.zeros((n, n_points))
    ck_flags = np.zeros((n, n_points), dtype=np.int8)
    iv_min = np.full((n, n_points), np.inf)
    iv_day = np.full((n, n_points), np.nan)
    grid_anc = np.empty((n, grid.size))
    end_cap = np.ascontiguousarray(np.broadcast_to(np.asarray(end_cap_day, dtype=float), (n,)))
    fr.simulate_kernel(
        np.ascontiguousarray(table.time_day, dtype=float), kind, point, ev_slot,
        np.ascontiguousarray(table.duration_day, dtype=float), order,
        np.ascontiguousarray(table.amount_mg, dtype=float), kel, vol, slope,
        marrow.circ0, marrow.ktr_per_day, marrow.gamma, rules.vector(), float(step_days), float(drug_step_days),
        fr.FOLLOW_AFTER_LAST_DOSE_DAYS, end_cap, grid,
        out_time, out_amount, ck_day, ck_delay, ck_flags, iv_min, iv_day, grid_anc,
    )
    return DosePlan(
        drugs=tuple(table.drugs), time=out_time, slot=np.asarray(table.slot, dtype=np.int64),
        duration=np.asarray(table.duration_day, dtype=float), amount=out_amount,
        check_day=ck_day.astype(np.float32), delay_days=ck_delay.astype(np.float32), flags=ck_flags,
        nadir=iv_min.astype(np.float32), nadir_day=iv_day.astype(np.float32), circ0=marrow.circ0.copy(),
        anc_grid=grid_anc if grid.size else None,
    )


def plan_without_rules(table: DoseTable) -> DosePlan:
    """A plan that keeps the table's schedule and has no neutrophil records (no simulation)."""
    n, n_ev = table.n_patients, table.n_events
    return DosePlan(
        drugs=tuple(table.drugs), time=np.broadcast_to(table.time_day, (n, n_ev)).copy(),
        slot=np.asarray(table.slot, dtype=np.int64), duration=np.asarray(table.duration_day, dtype=float),
        amount=np.array(table.amount_mg, dtype=float), check_day=np.zeros((n, 0), np.float32),
        delay_days=np.zeros((n, 0), np.float32), flags=np.zeros((n, 0), np.int8),
        nadir=np.zeros((n, 0), np.float32), nadir_day=np.zeros((n, 0), np.float32),
        circ0=np.full(n, np.nan),
    )


# ----------------------------------------------------------------------------------------
# single-agent reference (calibration of slopes and checks)
# ----------------------------------------------------------------------------------------


def typical_nadir(drug_name: str, dose_mg: float | None = None, slope: float | None = None,
                  days: float = 42.0) -> tuple[float, float]:
    """(nadir ANC, day of nadir) of the typical patient (typical PK, BSA 1.8 m2, GFR 100,
    typical marrow) after one dose (default: the drug's reference dose) of one agent."""
    drug = get_drug(drug_name)
    dose = reference_dose_mg(drug) if dose_mg is None else float(dose_mg)
    table = DoseTable((drug.name,), np.zeros(1), np.zeros(1, np.int32),
                      np.array([drug.default_infusion_h / 24.0]), np.array([[dose]]))
    grid = np.arange(0.0, days + 1e-9, 0.25)
    over = None if slope is None else {drug.name: slope}
    plan = plan_doses(None, table, [75.0], [1.8], [100.0], rules=NO_RULES, grid_day=grid,
                      slope_override=over)
    anc = plan.anc_grid[0]
    i = int(np.argmin(anc))
    return float(anc[i]), float(grid[i])


def slope_for_nadir(drug_name: str, target_nadir: float, dose_mg: float | None = None) -> float:
    """Slope (L/mg) that gives the typical patient ``target_nadir`` (10^9/L) after one
    reference dose (bisection on log slope)."""
    circ0 = fr.system_value("circ0_1e9_per_L")
    if not 0 < target_nadir < circ0:
        raise ChemoioInputError("target_nadir", f"must lie in (0, {circ0}), got {target_nadir}")
    lo, hi = 1e-6, 1e4
    for _ in range(80):
        mid = np.sqrt(lo * hi)
        nadir, _ = typical_nadir(drug_name, dose_mg, slope=mid)
        if nadir > target_nadir:
            lo = mid
        else:
            hi = mid
    return float(np.sqrt(lo * hi))
