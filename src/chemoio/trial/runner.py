"""Run a virtual clinical trial: patients -> arms -> mechanistic simulation -> endpoints.

For each of ``replicates`` trials of the spec's size (all simulated in one batch):

1. virtual patients of the spec's tumour type (and biomarker selection) are randomised to
   arms in the spec's ratio, with entry times uniform over the accrual period;
2. each patient's chemotherapy schedule is first run through the neutrophil model
   (chemoio.toxicity): cycles are postponed, doses omitted or reduced by the spec's
   ``toxicity`` rules, giving per-patient dose times and amounts. It needs only the
   chemotherapy PK and the marrow, not the tumour;
3. each arm's regimen is simulated with those doses (pass 1). Scans follow the spec's
   schedule with reader noise; each scan happens within the spec's visit window
   (``scan_window_days``, uniform offset per patient and visit); new lesions follow a
   tumour-burden hazard; RECIST 1.1 (or iRECIST, ``response_criteria``) reads the SLD at the
   scheduled days and gives visit responses, best overall response and the progression
   day, which is dated at the actual scan;
4. treatment stops at progression (under iRECIST at confirmed progression) and crossover
   patients start the crossover regimen (pass 2, from progression on; before progression
   both passes are identical and use the same per-patient dose plan);
5. death follows the tumour-linked hazard integrated over the pass-2 SLD; censoring at the
   data cut-off (entry-dependent) and dropout; PFS/OS/ORR (and pCR/EFS when the arm has
   surgery) per patient;
6. per replicate: Kaplan-Meier medians, landmark rates, ORR with its exact (Clopper-
   Pearson) 95 % CI, grade >= 3 neutropenia, Cox HR (Efron) with 95 % CI and log-rank p for
   every comparison and subgroup, stratified by the comparison's ``stratify_by`` factors
   (subgroups, covariates, the investigator's regimen choice), and the ORR difference with
   Newcombe's 95 % CI.

Outcomes come from the mechanism only; the spec gives the trial's design.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from chemoio.analysis import recist
from chemoio.analysis.survival import (
    DAYS_PER_MONTH,
    cox_hr_fast,
    kaplan_meier,
    clopper_pearson_ci,
    logrank_fast,
    newcombe_difference_ci,
)
from chemoio.engine.cohort import run_simulation
from chemoio.engine.inputs import build_from_events
from chemoio.errors import ChemoioInputError
from chemoio.model.parameters import agent_potency, shipped_parameter_set
from chemoio.population import parameter_matrix, sample_patients
from chemoio.regimens import resolve_regimen
from chemoio.toxicity import DosePlan, PatientMarrow, marrow_normals, plan_doses, plan_without_rules
from chemoio.trial.spec import check_scan_window
from chemoio.trial.survival_model import (
    death_hazard_per_day,
    first_event_day,
    new_lesion_hazard_per_day,
    survival_parameters,
)

PCR_THRESHOLD_CELLS = 1.0e5  # assumed: residual viable cells below pathological detection
LANDMARKS_MONTHS = (6, 9, 12, 24, 36, 60)
#: Seed suffix of the visit-window stream: offsets come from ``default_rng([seed, 20261122, 7])``,
#: independent of the trial's main stream, so every other draw is the same for any window.
VISIT_WINDOW_STREAM = 7


@dataclass
class TrialResult:
    """Everything a trial run produced. ``patients`` has one row per virtual patient of
    every replicate; ``arm_stats`` and ``comparison_stats`` one row per replicate and
    statistic (``rate_stats``: ORR differences of the comparisons); ``sld`` holds replicate 0's
    trajectories for plots."""

    spec: object
    patients: pd.DataFrame
    visit_day: np.ndarray
    visit_codes: np.ndarray  # (n_patients, n_visits) RECIST codes
    visit_sld: np.ndarray  # (n_patients, n_visits) measured SLD (NaN = not assessed)
    grid_day: np.ndarray
    sld: np.ndarray  # (n_replicate0, T) true SLD of replicate 0
    sld_rows: np.ndarray  # patient rows of `sld`
    arm_stats: pd.DataFrame
    comparison_stats: pd.DataFrame
    rate_stats: pd.DataFrame = field(default_factory=pd.DataFrame)  # ORR differences per replicate
    visit_actual_day: np.ndarray | None = None  # (n_patients, n_visits) day each scan happened
    wall_s: float = 0.0
    solver_failures: int = 0
    settings: dict = field(default_factory=dict)


def _survival_overrides(parameters: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in parameters.items() if k.startswith("survival.")}


def _choice_label(regimen_name: str, position: int) -> str:
    """Label of one regimen of an arm's mixture, shared across arms: the suffix of a preset
    name (``keynote189_chemo_carbo`` -> ``carbo``), else ``#k`` for the k-th entry (regimen
    texts, e.g. in modified trials, match by position)."""
    name = regimen_name.strip()
    if " " not in name and "_" in name:
        return name.rsplit("_", 1)[-1]
    return f"#{position + 1}"


def subgroup_mask(cov: pd.DataFrame, where: dict[str, float]) -> np.ndarray:
    """Patients matching a biomarker filter; bounds are inclusive, as in population
    selection (so "TPS < 1 %" is written ``pdl1_tps_max: 0.5`` on the integer TPS scale)."""
    columns = {"pdl1_tps": "pdl1_tps", "pdl1_cps": "pdl1_cps", "pdl1_ic": "pdl1_ic",
               "tmb": "tmb_mut_per_mb", "ecog": "ecog", "age": "age"}
    mask = np.ones(len(cov), dtype=bool)
    for key, val in where.items():
        base, _, bound = key.rpartition("_")
        if base not in columns or bound not in ("min", "max"):
            raise ChemoioInputError("subgroups.where", f"unknown biomarker filter {key!r}")
        x = cov[columns[base]].to_numpy(dtype=float)
        mask &= (x >= val) if bound == "min" else (x <= val)
    return mask


def _visit_offsets(seed: int, n: int, visit_day: np.ndarray, window_days: float) -> np.ndarray:
    """Per patient and visit, the actual scan day minus the scheduled one: uniform on
    [-w, +w] from the trial's own visit-window stream (zeros for w = 0)."""
    if window_days == 0 or visit_day.size == 0:
        return np.zeros((n, visit_day.size))
    rng = np.random.default_rng([seed, 20261122, VISIT_WINDOW_STREAM])
    return rng.uniform(-window_days, window_days, size=(n, visit_day.size))


def _at_actual_visit(day: np.ndarray, visit_day: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Replace scheduled scan days in ``day`` (n,) by the patient's actual scan day of that
    visit; other values (day 0 = no scan, inf, death days) are kept."""
    day = np.asarray(day, dtype=float)
    v = visit_day.size
    if v == 0:
        return day.copy()
    j = np.searchsorted(visit_day, day)
    jc = np.minimum(j, v - 1)
    hit = (j < v) & (visit_day[jc] == day)
    return np.where(hit, actual[np.arange(day.size), jc], day)


def _seen_new_lesion_day(nl_day: np.ndarray, visit_day: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """New-lesion day for classification on the scheduled days: the scheduled day of the
    first visit whose actual scan is on or after the lesion's appearance (inf = never), so a
    lesion is seen at a visit exactly when it exists at that visit's actual scan. Equals the
    classification with ``nl_day`` itself when every scan is on schedule."""
    nl = np.where(np.isnan(nl_day), np.inf, np.asarray(nl_day, dtype=float))
    v = visit_day.size
    if v == 0:
        return nl
    k = np.sum(actual < nl[:, None], axis=1)
    seen = np.where(k < v, visit_day[np.minimum(k, v - 1)], np.inf)
    return np.where(nl > 0, seen, nl)  # day <= 0 stays (classification rejects it)


def _km_median_and_landmarks(t_m: np.ndarray, e: np.ndarray) -> tuple[float, dict[int, float]]:
    if t_m.size == 0:
        return np.nan, {}
    tj, s, _, _ = kaplan_meier(t_m, e)
    below = np.flatnonzero(s <= 0.5)
    median = float(tj[below[0]]) if below.size else np.nan
    marks = {}
    for m in LANDMARKS_MONTHS:
        if t_m.max() < m:
            marks[m] = np.nan
            continue
        k = np.searchsorted(tj, m, side="right") - 1
        marks[m] = 100.0 * (float(s[k]) if k >= 0 else 1.0)
    return median, marks


class _Sim:
    """Simulates the patients of one arm (pass 1 and pass 2) on the trial grid."""

    def __init__(self, params, cov, pk_eta, grid, observables, rtol, backend, chunk, progress, potency=None):
        self.params, self.cov, self.pk_eta, self.grid = params, cov, pk_eta, grid
        self.potency = potency or {}  # per-agent E_max multipliers (chemo_potency.<drug>)
        self.observables, self.rtol, self.backend = observables, rtol, backend
        self.chunk, self.progress = chunk, progress
        self.failures = 0

    def _cov(self, rows):
        c = self.cov.iloc[rows]
        return (c["weight_kg"].to_numpy(), c["bsa_m2"].to_numpy(), c["gfr_mL_min"].to_numpy())

    def pass1(self, plan: DosePlan, rows):
        """Simulate ``rows`` with their per-patient dose plan (times and amounts)."""
        w, b, g = self._cov(rows)
        sim = build_from_events(
            list(plan.drugs), self.params[rows], w, b, g, self.grid, self.observables,
            ev_time=plan.time, ev_slot=plan.slot,
            ev_duration=np.broadcast_to(plan.duration, plan.time.shape), ev_amount=plan.amount,
            pk_eta=self.pk_eta[rows], rtol=self.rtol, potency=self.potency,
        )
        res = run_simulation(sim, self.backend, observables=self.observables,
                             chunk_size=self.chunk, progress=self.progress)
        self.failures += int(np.sum(res.status != 0))
        return res.values

    def pass2(self, plan: DosePlan, rows, which, stop_day, crossover_regimen, crossover_start):
        """Re-simulate ``rows`` (a subset ``which`` of the rows ``plan`` was made for):
        doses stop at ``stop_day``; crossover regimen from ``crossover_start`` (inf = no)."""
        w, b, g = self._cov(rows)
        n = len(rows)
        drugs = list(plan.drugs)
        t_base = plan.time[which]
        amt = np.where(t_base < stop_day[:, None], plan.amount[which], 0.0)
        ev_t, ev_s = [t_base], [np.asarray(plan.slot, dtype=np.int64)]
        ev_d, ev_a = [np.broadcast_to(plan.duration, t_base.shape)], [amt]
        if crossover_regimen is not None and np.any(np.isfinite(crossover_start)):
            start = np.where(np.isfinite(crossover_start), crossover_start, 0.0)
            horizon = float(self.grid[-1])
            xt = crossover_regimen.dose_table(w, b, g, horizon_days=horizon + 1e-9, n_patients=n)
            slots = []
            for d in xt.drugs:
                if d not in drugs:
                    drugs.append(d)
                slots.append(drugs.index(d))
            t_x = start[:, None] + xt.time_day[None, :]
            a_x = np.where(np.isfinite(crossover_start)[:, None] & (t_x < horizon), xt.amount_mg, 0.0)
            ev_t.append(t_x)
            ev_s.append(np.asarray(slots, dtype=np.int64)[xt.slot])
            ev_d.append(np.broadcast_to(xt.duration_day, t_x.shape))
            ev_a.append(a_x)
        sim = build_from_events(
            drugs, self.params[rows], w, b, g, self.grid, self.observables,
            ev_time=np.concatenate(ev_t, axis=1), ev_slot=np.concatenate(ev_s),
            ev_duration=np.concatenate(ev_d, axis=1), ev_amount=np.concatenate(ev_a, axis=1),
            pk_eta=self.pk_eta[rows], rtol=self.rtol, potency=self.potency,
        )
        res = run_simulation(sim, self.backend, observables=self.observables,
                             chunk_size=self.chunk, progress=self.progress)
        self.failures += int(np.sum(res.status != 0))
        return res.values


def run_trial(spec, *, parameters: dict[str, float] | None = None, **kwargs) -> TrialResult:
    """Simulate ``replicates`` copies of the trial described by ``spec`` (a TrialSpec) and
    compute every endpoint. Keyword arguments as :func:`simulate_trial`."""
    state = simulate_trial(spec, parameters=parameters, **kwargs)
    return finish_trial(state)


def simulate_trial(
    spec,
    *,
    replicates: int | None = None,
    seed: int | None = None,
    parameters: dict[str, float] | None = None,
    rtol: float = 1e-5,
    backend: str = "cpu",
    progress: Callable[[int], None] | None = None,
    arms: list[str] | None = None,
    n_scale: float = 1.0,
) -> TrialResult:
    """Simulate ``replicates`` copies of the trial described by ``spec`` (a TrialSpec).

    ``arms`` restricts the run to some arms (e.g. the control and monotherapy arms during
    calibration); ``n_scale`` multiplies the arm sizes (e.g. larger virtual arms).

    Returns the simulated state (trajectories, scans, progression) that
    :func:`finish_trial` turns into endpoints; survival-link parameters act only there."""
    import time

    t_start = time.perf_counter()
    reps = int(replicates if replicates is not None else spec.replicates)
    if reps < 1:
        raise ChemoioInputError("replicates", f"must be >= 1, got {reps}")
    seed = int(spec.seed if seed is None else seed)
    params_all = shipped_parameter_set() if parameters is None else dict(parameters)
    surv_over = _survival_overrides(params_all)
    tumor = spec.population.tumor
    sp = survival_parameters(tumor, surv_over)

    arm_specs = [a for a in spec.arms if arms is None or a.name in arms]
    if not arm_specs:
        raise ChemoioInputError("arms", f"none of {arms} is an arm of {spec.name}")
    sizes = {a.name: max(1, int(round(n * n_scale))) for a, n in
             ((a, spec.arm_sizes()[a.name]) for a in arm_specs)}
    arm_names = [a.name for a in arm_specs]
    n_per = int(sum(sizes.values()))
    total = n_per * reps
    vp = sample_patients(tumor, total, seed, selection=dict(spec.population.selection or {}))
    cov = vp.covariates.reset_index(drop=True)
    # the state at diagnosis (matching the drawn CD8 T cells, plausibility bounds) is solved
    # once per patient here; pass 1 and pass 2 reuse the projected rows (same states, one
    # fixed-point solve per pass instead of the search)
    from chemoio.engine.kernel import project_batch

    params = project_batch(np.ascontiguousarray(parameter_matrix(vp.params, tumor, params_all)))

    rng = np.random.default_rng([seed, 20261122])
    replicate = np.repeat(np.arange(reps), n_per)
    arm_idx = np.empty(total, dtype=np.int64)
    base_assign = np.concatenate([np.full(sizes[a], k) for k, a in enumerate(arm_names)])
    for r in range(reps):
        arm_idx[r * n_per:(r + 1) * n_per] = rng.permutation(base_assign)

    fu = spec.follow_up
    cutoff_day = fu.data_cutoff_months * DAYS_PER_MONTH
    entry_day = rng.uniform(0.0, fu.accrual_months, total) * DAYS_PER_MONTH
    followup_day = np.maximum(cutoff_day - entry_day, 0.0)
    drop_rate = -np.log1p(-fu.dropout_per_year) / 365.25 if fu.dropout_per_year > 0 else 0.0
    dropout_day = rng.exponential(1.0 / drop_rate, total) if drop_rate > 0 else np.full(total, np.inf)
    censor_day = np.minimum(followup_day, dropout_day)
    e_death = rng.exponential(1.0, total)
    e_lesion = rng.exponential(1.0, total)
    u_cross = rng.uniform(size=total)
    u_mix = rng.uniform(size=total)

    visit_day = np.asarray(spec.visit_days(cutoff_day), dtype=float)
    # visit windows: scan j of patient i happens on visit_day[j] + visit_offset[i, j]
    # (the spec checked its window at load; the visits here run to this run's cut-off)
    window = float(spec.scan_window_days)
    check_scan_window(window, visit_day, spec.scan_schedule)
    visit_offset = _visit_offsets(seed, total, visit_day, window)
    visit_actual = visit_day[None, :] + visit_offset
    surgery = {a.name: a.surgery_day for a in arm_specs if getattr(a, "surgery_day", None)}
    grid = np.unique(np.concatenate([np.arange(0.0, cutoff_day, 7.0), visit_day, [0.0, cutoff_day],
                                     np.array(list(surgery.values()), dtype=float)]))
    vidx = np.searchsorted(grid, visit_day)
    # measured size (cells + stroma) for RECIST; the viable burden (cells only, as an SLD)
    # drives the death and new-lesion hazards (docs/model.md 2.2 and section 6)
    observables = ("sld_mm", "viable_sld_mm", "tumor_cells") if surgery else ("sld_mm", "viable_sld_mm")
    sim = _Sim(params, cov, vp.pk_eta, grid, observables, rtol, backend,
               chunk=20_000, progress=progress, potency=agent_potency(params_all))

    sld = np.empty((total, grid.size))
    viable = np.empty((total, grid.size))
    cells = np.empty((total, grid.size)) if surgery else None
    tables: list[tuple] = []  # (rows, dose plan, arm_spec)
    # neutropenia and dose rules: per-patient marrow from its own stream of (seed, index)
    rules = spec.toxicity.rules()
    toxicity_s = 0.0
    marrow = PatientMarrow.from_normals(marrow_normals(seed, vp.index)) if rules is not None else None
    regimen_choice = np.full(total, "", dtype=object)
    for k, arm in enumerate(arm_specs):
        rows_arm = np.flatnonzero(arm_idx == k)
        mixture = arm.regimens or {arm.regimen: 1.0}
        names = list(mixture)
        cum = np.cumsum([mixture[m] for m in names])
        choice = np.searchsorted(cum / cum[-1], u_mix[rows_arm], side="right")
        for j, reg_name in enumerate(names):
            rows = rows_arm[choice == j]
            if rows.size == 0:
                continue
            reg = resolve_regimen(reg_name)
            # the investigator's choice within a mixture (e.g. "carbo"/"cis"), a stratum:
            # a preset's name suffix, or the position in the mixture for regimen texts
            regimen_choice[rows] = _choice_label(reg_name, j) if len(names) > 1 else "single"
            w, b, g = sim._cov(rows)
            table = reg.dose_table(w, b, g, horizon_days=float(grid[-1]) + 1e-9, n_patients=rows.size)
            t_tox = time.perf_counter()
            if rules is None:
                plan = plan_without_rules(table)
            else:
                plan = plan_doses(reg, table, w, b, g, pk_eta=vp.pk_eta[rows], marrow=marrow.take(rows),
                                  rules=rules, end_cap_day=cutoff_day)
            toxicity_s += time.perf_counter() - t_tox
            vals = sim.pass1(plan, rows)
            sld[rows] = vals[:, 0, :]
            viable[rows] = vals[:, 1, :]
            if cells is not None:
                cells[rows] = vals[:, 2, :]
            tables.append((rows, plan, arm))

    # scans: reader noise, new lesions, RECIST 1.1 (or iRECIST) on visits inside follow-up
    true_visit = sld[:, vidx]
    measured = recist.add_measurement_noise(true_visit, rng)
    baseline = recist.add_measurement_noise(sld[:, 0], rng)
    nl_day = first_event_day(grid, new_lesion_hazard_per_day(sp, viable), e_lesion)
    # a scan is done when its actual day is inside follow-up; the SLD is read on the
    # scheduled grid day (a week changes it little), a new lesion counts when it exists on
    # the actual scan day
    assessed = visit_actual <= censor_day[:, None]
    irecist = spec.response_criteria == "irecist"
    classify = recist.classify_visits_irecist if irecist else recist.classify_visits
    codes = classify(np.where(assessed, measured, np.nan), baseline, visit_day,
                     _seen_new_lesion_day(nl_day, visit_day, visit_actual))
    # the day treatment stops: RECIST progression, or under iRECIST the confirming scan
    # (treatment continues through an unconfirmed iUPD), dated at the actual scan
    pd_day, pd_event = recist.progression_day(codes, visit_day, iupd_date=False)
    pd_day = np.where(pd_event, _at_actual_visit(pd_day, visit_day, visit_actual), np.inf)

    # pass 2: stop treatment at progression; crossover from progression + delay
    if spec.discontinue_on_progression or any(a.crossover for a in arm_specs):
        for rows, plan, arm in tables:
            prog = np.isfinite(pd_day[rows])
            if not prog.any():
                continue
            sub = rows[prog]
            stop = pd_day[sub] if spec.discontinue_on_progression else np.full(sub.size, np.inf)
            x_reg, x_start = None, np.full(sub.size, np.inf)
            if arm.crossover is not None:
                x_reg = resolve_regimen(arm.crossover.regimen)
                crosses = u_cross[sub] < arm.crossover.share
                x_start = np.where(crosses, pd_day[sub] + arm.crossover.delay_days, np.inf)
            vals = sim.pass2(plan, sub, prog, stop, x_reg, x_start)
            sld[sub] = vals[:, 0, :]
            viable[sub] = vals[:, 1, :]

    return dict(
        spec=spec, arm_specs=arm_specs, arm_names=arm_names, arm_idx=arm_idx, replicate=replicate,
        reps=reps, n_per=n_per, total=total, cov=cov, tumor=tumor, sp=sp, grid=grid,
        visit_day=visit_day, visit_offset=visit_offset, scan_window_days=window,
        sld=sld, viable=viable, cells=cells, tables=tables, surgery=surgery,
        entry_day=entry_day, censor_day=censor_day, e_death=e_death, e_lesion=e_lesion,
        u_cross=u_cross, measured=measured, baseline=baseline, nl_day=nl_day, codes=codes,
        pd_day=pd_day, seed=seed, rtol=rtol, parameters=parameters, t_start=t_start,
        params_all=params_all, regimen_choice=regimen_choice,
        failures=sim.failures, toxicity=rules is not None, toxicity_s=toxicity_s,
    )


def finish_trial(state: dict, survival: dict[str, float] | None = None) -> TrialResult:
    """Endpoints from a simulated trial: death from the tumour-linked hazard, censoring,
    PFS/OS/ORR/pCR/EFS per patient, and per-replicate statistics. ``survival`` overrides
    survival-link parameters (``survival.*`` keys) without re-simulating the tumours."""
    import time

    st = state
    spec, arm_specs, arm_names, arm_idx = st["spec"], st["arm_specs"], st["arm_names"], st["arm_idx"]
    replicate, reps, n_per, total = st["replicate"], st["reps"], st["n_per"], st["total"]
    cov, grid, visit_day, sld, cells = st["cov"], st["grid"], st["visit_day"], st["sld"], st["cells"]
    tables, surgery, entry_day, censor_day = st["tables"], st["surgery"], st["entry_day"], st["censor_day"]
    e_death, e_lesion, u_cross, measured = st["e_death"], st["e_lesion"], st["u_cross"], st["measured"]
    baseline, nl_day, codes, pd_day = st["baseline"], st["nl_day"], st["codes"], st["pd_day"]
    sp = st["sp"]
    visit_actual = visit_day[None, :] + st["visit_offset"]
    if survival:
        base = dict(st["params_all"])
        base.update(survival)
        sp = survival_parameters(st["tumor"], _survival_overrides(base))
    crossed = np.zeros(total, dtype=bool)
    for rows, _, arm in tables:
        if arm.crossover is not None:
            crossed[rows] = np.isfinite(pd_day[rows]) & (u_cross[rows] < arm.crossover.share) & (
                pd_day[rows] + arm.crossover.delay_days < censor_day[rows])

    hazard = death_hazard_per_day(sp, grid, np.nan_to_num(st["viable"], nan=1e3), cov, pd_day)
    death_day = first_event_day(grid, hazard, e_death)
    os_event = death_day <= censor_day
    os_day = np.minimum(death_day, censor_day)

    # visits after death are not assessed; progression after death is not seen
    alive_at_visit = visit_actual <= np.minimum(censor_day, death_day)[:, None]
    codes = np.where(alive_at_visit, codes, recist.Response.NE).astype(np.int8)
    pd_day2, pd_event2 = recist.progression_day(codes, visit_day)  # iRECIST: dated at iUPD
    # progression and censoring at the last adequate scan are dated at the actual scan
    pd_day2 = _at_actual_visit(pd_day2, visit_day, visit_actual)
    # PFS: progression at a scan before death, else death, else censored at the last scan
    pfs_day = np.where(pd_event2 & (pd_day2 <= os_day), pd_day2, np.where(os_event, os_day, pd_day2))
    pfs_event = (pd_event2 & (pd_day2 <= os_day)) | os_event
    bor, confirmed = recist.best_overall_response(codes, visit_day)
    responder = recist.objective_response(bor) & confirmed
    complete_responder = (bor == recist.Response.CR) & confirmed
    # duration of response of confirmed responders: first CR/PR scan to progression or death
    _, dor_day, dor_event = recist.duration_of_response(codes, visit_day, responder=responder,
                                                        death_day=np.where(os_event, os_day, np.inf))
    best_pct = recist.best_pct_change(np.where(alive_at_visit, measured, np.nan), baseline)

    patients = cov.copy()
    patients.insert(0, "replicate", replicate)
    patients.insert(1, "arm", np.array(arm_names)[arm_idx])
    patients.insert(2, "subject", np.arange(total) % n_per + 1)
    patients["entry_day"] = entry_day
    patients["censor_day"] = censor_day
    patients["os_day"] = os_day
    patients["os_event"] = os_event
    patients["pfs_day"] = pfs_day
    patients["pfs_event"] = pfs_event
    patients["progression_day"] = np.where(pd_event2, pd_day2, np.nan)
    patients["new_lesion_day"] = np.where(np.isfinite(nl_day), nl_day, np.nan)
    patients["bor"] = recist.labels(bor)
    patients["responder"] = responder
    patients["complete_responder"] = complete_responder
    patients["dor_day"] = dor_day
    patients["dor_event"] = dor_event
    patients["best_pct_change"] = best_pct
    patients["crossover"] = crossed
    patients["regimen_choice"] = st["regimen_choice"]
    if st.get("toxicity"):
        _add_toxicity(patients, tables, pd_day if spec.discontinue_on_progression else np.full(total, np.inf),
                      np.minimum(os_day, censor_day))
    if surgery:
        pcr = np.zeros(total, dtype=bool)
        for k, arm in enumerate(arm_specs):
            if arm.name in surgery:
                j = int(np.searchsorted(grid, surgery[arm.name]))
                rows = arm_idx == k
                pcr[rows] = (cells[rows, j] < PCR_THRESHOLD_CELLS) & ~(pd_day[rows] <= surgery[arm.name])
        patients["pcr"] = pcr
        # EFS: progression before surgery, else recurrence from residual disease at surgery
        efs_day = np.full(total, np.nan)
        for k, arm in enumerate(arm_specs):
            if arm.name not in surgery:
                continue
            rows = np.flatnonzero(arm_idx == k)
            s_day = surgery[arm.name]
            j = int(np.searchsorted(grid, s_day))
            residual = np.maximum(cells[rows, j], 1.0)
            rate = sp.recurrence_per_month_at_1e6_cells / DAYS_PER_MONTH * (
                residual / 1e6) ** sp.recurrence_exponent
            recur = s_day + e_lesion[rows] / rate
            early = pd_day[rows] <= s_day
            efs_day[rows] = np.minimum(np.where(early, pd_day[rows], recur), death_day[rows])
        efs_event = np.isfinite(efs_day) & (efs_day <= censor_day)
        patients["efs_day"] = np.where(np.isnan(efs_day), np.nan, np.minimum(efs_day, censor_day))
        patients["efs_event"] = efs_event

    arm_stats, comp_stats, rate_stats = _statistics(spec, patients, arm_names, reps)
    rep0 = np.flatnonzero(replicate == 0)
    return TrialResult(
        spec=spec, patients=patients, visit_day=visit_day, visit_codes=codes,
        visit_sld=np.where(alive_at_visit, measured, np.nan), grid_day=grid, sld=sld[rep0],
        sld_rows=rep0, arm_stats=arm_stats, comparison_stats=comp_stats, rate_stats=rate_stats,
        visit_actual_day=visit_actual,
        wall_s=time.perf_counter() - st["t_start"], solver_failures=st["failures"],
        settings={"replicates": reps, "seed": st["seed"], "rtol": st["rtol"], "n_per_trial": n_per,
                  "parameters": "shipped" if st["parameters"] is None else "user",
                  "response_criteria": spec.response_criteria, "toxicity": bool(st.get("toxicity")),
                  "scan_window_days": float(st.get("scan_window_days", 0.0)),
                  "toxicity_s": round(float(st.get("toxicity_s", 0.0)), 3)},
    )


#: Per-patient toxicity columns of ``TrialResult.patients`` (when the spec's toxicity is on).
TOXICITY_COLUMNS = ("anc_baseline", "anc_nadir", "anc_grade", "n_dose_delays", "dose_delay_days",
                    "n_cycles_omitted", "n_dose_reductions")


def _add_toxicity(patients: pd.DataFrame, tables, stop_day: np.ndarray, end_day: np.ndarray) -> None:
    """Neutropenia and dose-modification columns: cycles that started before treatment
    stopped (progression) and before death or censoring count; nadirs after death do not."""
    n = len(patients)
    out = {c: np.zeros(n) for c in TOXICITY_COLUMNS}
    out["anc_baseline"] = np.full(n, np.nan)
    out["anc_nadir"] = np.full(n, np.nan)
    for rows, plan, _ in tables:
        s = plan.summary(on_treatment_until=stop_day[rows], observed_until=end_day[rows])
        out["anc_baseline"][rows] = plan.circ0
        out["anc_nadir"][rows] = s["anc_nadir"]
        out["anc_grade"][rows] = s["anc_grade"]
        for key in ("n_dose_delays", "dose_delay_days", "n_cycles_omitted", "n_dose_reductions"):
            out[key][rows] = s[key]
    for c in TOXICITY_COLUMNS:
        dtype = int if c in ("anc_grade", "n_dose_delays", "n_cycles_omitted", "n_dose_reductions") else float
        patients[c] = out[c].astype(dtype)


def _strata_codes(spec, patients: pd.DataFrame, factors) -> np.ndarray | None:
    """Integer stratum per patient from a comparison's ``stratify_by`` (subgroup names,
    covariates, or ``regimen_choice``); None when unstratified."""
    if not factors:
        return None
    cols = []
    subgroups = {sg.name: dict(sg.where) for sg in spec.subgroups or []}
    for f in factors:
        if f in subgroups:
            cols.append(subgroup_mask(patients, subgroups[f]).astype(int).astype(str))
        elif f in patients:
            cols.append(patients[f].astype(str).to_numpy())
    if not cols:
        return None
    key = cols[0].astype(object)
    for c in cols[1:]:
        key = key + "|" + c.astype(object)
    return pd.factorize(key)[0]


def _statistics(spec, patients: pd.DataFrame, arm_names, reps):
    """Per-replicate arm statistics and comparisons (ITT and subgroups).

    Patients are stored replicate by replicate, so each replicate is a contiguous slice."""
    arm_rows, comp_rows = [], []
    n_per = len(patients) // reps
    arm_all = patients["arm"].to_numpy()
    cols = {
        "OS": (patients["os_day"].to_numpy() / DAYS_PER_MONTH, patients["os_event"].to_numpy()),
        "PFS": (patients["pfs_day"].to_numpy() / DAYS_PER_MONTH, patients["pfs_event"].to_numpy()),
    }
    if "efs_day" in patients and patients["efs_day"].notna().any():
        cols["EFS"] = (patients["efs_day"].to_numpy() / DAYS_PER_MONTH, patients["efs_event"].to_numpy())
    resp_all = patients["responder"].to_numpy()
    cr_all = patients["complete_responder"].to_numpy() if "complete_responder" in patients else None
    dor_all = ((patients["dor_day"].to_numpy() / DAYS_PER_MONTH, patients["dor_event"].to_numpy())
               if "dor_day" in patients else None)
    pcr_all = patients["pcr"].to_numpy() if "pcr" in patients else None
    grade_all = patients["anc_grade"].to_numpy() if "anc_grade" in patients else None
    delay_all = patients["n_dose_delays"].to_numpy() if "n_dose_delays" in patients else None
    rate_rows, orr_counts, rate_counts = [], [], []
    group_masks = [("ITT", np.ones(len(patients), dtype=bool))]
    for sg in spec.subgroups or []:
        group_masks.append((sg.name, subgroup_mask(patients, dict(sg.where))))
    strata_all = {id(c): _strata_codes(spec, patients, c.stratify_by) for c in spec.comparisons}
    for r in range(reps):
        sl = slice(r * n_per, (r + 1) * n_per)
        arm = arm_all[sl]
        resp = resp_all[sl]
        cr = cr_all[sl] if cr_all is not None else None
        dor = (dor_all[0][sl], dor_all[1][sl]) if dor_all is not None else None
        pcr = pcr_all[sl] if pcr_all is not None else None
        grade = grade_all[sl] if grade_all is not None else None
        delay = delay_all[sl] if delay_all is not None else None
        eps = {ep: (t[sl], e[sl]) for ep, (t, e) in cols.items()}
        for gname, gmask_all in group_masks:
            gmask = gmask_all[sl]
            for a in arm_names:
                m = gmask & (arm == a)
                if not m.any():
                    continue
                stats = {"n": float(m.sum())}
                for ep, (t, e) in eps.items():
                    ok = np.isfinite(t[m])
                    med, marks = _km_median_and_landmarks(t[m][ok], e[m][ok])
                    stats[f"median_{ep.lower()}_months"] = med
                    for mo, v in marks.items():
                        stats[f"{ep.lower()}_{mo}mo_percent"] = v
                k_resp = int(resp[m].sum())
                stats["orr_percent"] = 100.0 * k_resp / float(m.sum())
                orr_counts.append((r, a, gname, k_resp, int(m.sum())))  # exact CI below
                if cr is not None:
                    stats["cr_percent"] = 100.0 * float(cr[m].sum()) / float(m.sum())
                if dor is not None and k_resp:
                    ok = m & np.isfinite(dor[0])  # confirmed responders
                    stats["median_dor_months"] = _km_median_and_landmarks(dor[0][ok], dor[1][ok])[0]
                if grade is not None:
                    stats["neutropenia_g3plus_percent"] = 100.0 * float((grade[m] >= 3).mean())
                    stats["neutropenia_g4_percent"] = 100.0 * float((grade[m] >= 4).mean())
                    stats["dose_delay_percent"] = 100.0 * float((delay[m] > 0).mean())
                if pcr is not None:
                    stats["pcr_percent"] = 100.0 * float(pcr[m].mean())
                if "EFS" in eps:
                    stats["efs_event_percent"] = 100.0 * float(eps["EFS"][1][m].mean())
                for key, v in stats.items():
                    arm_rows.append((r, a, gname, key, v))
            for comp in spec.comparisons:
                me, mc = gmask & (arm == comp.experimental), gmask & (arm == comp.control)
                if me.sum() < 2 or mc.sum() < 2:
                    continue
                if "ORR" in comp.endpoints:
                    rate_counts.append((r, comp.experimental, comp.control, gname,
                                        int(resp[me].sum()), int(me.sum()), int(resp[mc].sum()), int(mc.sum())))
                both = me | mc
                grp = me[both].astype(float)
                for ep in comp.endpoints:
                    if ep not in eps:
                        continue
                    t, e = eps[ep]
                    both = both & np.isfinite(t)
                    grp = me[both].astype(float)
                    if e[both].sum() < 2:
                        continue
                    strata = strata_all[id(comp)]
                    st_b = None if strata is None else strata[sl][both]
                    hr = cox_hr_fast(t[both], e[both], grp, strata=st_b)
                    lr = logrank_fast(t[both], e[both], grp, strata=st_b)
                    comp_rows.append((r, comp.experimental, comp.control, gname, ep, hr.hr,
                                      hr.ci_low, hr.ci_high, lr.p))
    # exact (Clopper-Pearson) 95 % CI of every ORR and Newcombe's CI of every ORR difference,
    # vectorised over replicates, subgroups and arms
    if orr_counts:
        k = np.array([c[3] for c in orr_counts])
        n = np.array([c[4] for c in orr_counts])
        lo, hi = clopper_pearson_ci(k, n)
        for (r, a, gname, _, _), l_, h_ in zip(orr_counts, lo, hi):
            arm_rows.append((r, a, gname, "orr_ci_low_percent", 100.0 * float(l_)))
            arm_rows.append((r, a, gname, "orr_ci_high_percent", 100.0 * float(h_)))
    if rate_counts:
        x1, n1, x2, n2 = (np.array([c[i] for c in rate_counts]) for i in (4, 5, 6, 7))
        diff, lo, hi = newcombe_difference_ci(x1, n1, x2, n2)
        for c, d_, l_, h_ in zip(rate_counts, diff, lo, hi):
            rate_rows.append((c[0], c[1], c[2], c[3], "ORR", 100.0 * float(d_), 100.0 * float(l_), 100.0 * float(h_)))
    arm_stats = pd.DataFrame(arm_rows, columns=["replicate", "arm", "subgroup", "statistic", "value"])
    comp_stats = pd.DataFrame(comp_rows, columns=["replicate", "experimental", "control", "subgroup",
                                                  "endpoint", "hr", "ci_low", "ci_high", "p"])
    rate_stats = pd.DataFrame(rate_rows, columns=["replicate", "experimental", "control", "subgroup", "endpoint",
                                                  "diff_percent", "ci_low_percent", "ci_high_percent"])
    return arm_stats, comp_stats, rate_stats
