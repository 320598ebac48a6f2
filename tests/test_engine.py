"""The engine: exact PK, dosing, accuracy against scipy, determinism, failure reporting."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from chemoio.drugs import get_drug
from chemoio.engine.cohort import CPUBackend, run_simulation
from chemoio.engine.reference import simulate_patient
from chemoio.errors import ChemoioInputError
from chemoio.model import equations as eq
from chemoio.model.pkpd import build_slots, chemo_potency
from helpers import run, typical, typical_input

KN189 = "pembrolizumab 200 mg q3w x35; pemetrexed 500 mg/m2 q3w; carboplatin AUC5 q3w x4"


@pytest.mark.parametrize("drug", ["pembrolizumab", "atezolizumab", "ipilimumab", "pemetrexed", "doxorubicin"])
@pytest.mark.parametrize("rate", [0.0, 2000.0])
def test_analytic_pk_matches_numerical_solution(drug, rate):
    _, sp = build_slots([get_drug(drug)], np.array([70.0]), np.array([1.9]), np.array([80.0]))
    q = sp[0, 0]
    x0 = (150.0, 7.0)

    def f(t, x):
        return eq.pk_rhs.py_func(q, x[0], x[1], rate)

    ts = np.array([0.01, 0.3, 1.0, 5.0, 21.0, 60.0])
    num = solve_ivp(f, (0, 60), x0, t_eval=ts, rtol=1e-11, atol=1e-12, method="Radau")
    for j, t in enumerate(ts):
        a, b = eq.lin2_at.py_func(q, x0[0], x0[1], rate, t)
        assert a == pytest.approx(num.y[0, j], rel=1e-7, abs=1e-9)
        assert b == pytest.approx(num.y[1, j], rel=1e-7, abs=1e-9)


def test_chemo_potency_reproduces_the_log_kill_of_a_reference_dose():
    drug = get_drug("gemcitabine")
    pot = chemo_potency(drug)
    ce0 = 1000 * 1.8 * pot.ke0_per_day / (pot.k_e_per_day * pot.v_L)
    t = np.linspace(0, 80, 200_001)
    ce = ce0 * np.exp(-pot.ke0_per_day * t)
    log_kill = np.trapezoid(pot.emax_per_day * ce / (ce + pot.ec50_mg_per_L), t)
    assert log_kill == pytest.approx(drug.chemo_pd.log_kill_per_reference_dose.value, rel=1e-4)


def test_doses_land_on_the_right_days():
    hour = 1.0 / 24.0
    res = typical("pembrolizumab 200 mg q3w x3; gemcitabine 1000 mg/m2 d1,8 q3w x2",
                  days=60, step=hour, observables=("conc:0", "conc:1"))
    days = res.times_day
    pembro, gem = res["conc:0"][0], res["conc:1"][0]
    v1 = get_drug("pembrolizumab").antibody_pk.v1_L.value

    def at(x, d):
        return x[int(round(d / hour))]

    # each 200 mg infusion (30 min) raises the plasma level by ~200 mg / V1 within the hour
    for d in (0.0, 21.0, 42.0):
        assert at(pembro, d + hour) - at(pembro, max(d - hour, 0.0)) == pytest.approx(200 / v1, rel=0.1)
    # and nothing happens on other days
    assert np.sum(np.diff(pembro) > 1.0) == 3
    # gemcitabine (t1/2 < 1 h) is present only on its dosing days 1, 8, 22, 29
    dosing_days = sorted({int(d) for d in days[gem > 1e-3 * gem.max()]})
    assert dosing_days == [0, 7, 21, 28]


def test_engine_agrees_with_scipy_reference():
    rows = [{}, {"infiltration": 3.0, "pdl1_tumour0": 0.9}, {"infiltration": 0.0},
            {"chemo_sensitivity": 3.0, "growth_per_day": 0.02},
            {"memory_fraction": 0.05, "memory_recall_half_max_cells": 1e8}]
    sim = typical_input(KN189, rows, days=182, observables=("sld_mm", "effector_t", "treg", "memory_t"))
    fast = run(sim)
    for i in range(len(rows)):
        ref = simulate_patient(sim, i, method="DOP853", rtol=1e-10, atol=1e-12)
        assert np.allclose(fast.values[i], ref, rtol=1e-4, atol=0), i


def test_results_do_not_depend_on_thread_count_or_chunking():
    rows = [{"infiltration": f, "pdl1_tumour0": p} for f in (0.3, 1.0, 3.0) for p in (0.05, 0.5)]
    sim = typical_input(KN189, rows * 3, days=182, observables=("sld_mm",))
    one = run_simulation(sim, CPUBackend(1), observables=("sld_mm",))
    two = run_simulation(sim, CPUBackend(2), observables=("sld_mm",), chunk_size=5)
    assert np.array_equal(one.values, two.values)


def test_a_failing_patient_is_reported_and_does_not_stop_the_cohort():
    sim = typical_input(KN189, [{}, {}, {}], days=84, observables=("sld_mm",))
    sim.params[1, :] = np.nan
    res = run(sim)
    assert res.status[1] != 0 and np.all(res.status[[0, 2]] == 0)
    assert np.all(np.isnan(res.values[1])) and np.all(np.isfinite(res.values[[0, 2]]))
    fails = res.failures()
    assert fails["ID"].tolist() == [2] and fails["reason"].iloc[0]


def test_output_times_do_not_change_the_solution():
    weekly = typical(KN189, days=364, step=7.0, observables=("sld_mm",))
    odd = typical(KN189, days=364, step=3.5, observables=("sld_mm",))
    assert np.allclose(weekly["sld_mm"][0], odd["sld_mm"][0, ::2], rtol=2e-5)


def test_bad_observable_and_times_are_named():
    with pytest.raises(ChemoioInputError, match="observables"):
        typical_input(KN189, observables=("sld_mm", "tumour_size"))
    with pytest.raises(ChemoioInputError, match="observables"):
        typical_input(KN189, observables=("conc:nivolumab",))


def test_washed_out_drug_is_dropped_until_its_next_dose():
    # gemcitabine on days 1 and 71: its K-PD effect site decays over weeks; once plasma and
    # effect site are below 1e-10 of EC50 the slot is dropped (its kill rate exactly 0) until
    # the next dose brings it back
    text = "gemcitabine 1000 mg/m2 q10w x2"
    res = typical(text, days=140, step=0.25, observables=("chemo_kill_per_day",))
    kill, days = res["chemo_kill_per_day"][0], res.times_day
    assert kill[days == 30.0][0] > 0.0
    assert kill[days == 65.0][0] == 0.0
    assert kill[days == 70.25][0] > 0.0
    assert kill[days == 139.0][0] == 0.0
    # dropping it changes nothing the biology can see: same SLD as the reference solver
    sim = typical_input(text, days=140, step=7.0, observables=("sld_mm",))
    ref = simulate_patient(sim, 0, method="DOP853", rtol=1e-10, atol=1e-12)
    assert np.allclose(run(sim).values[0], ref, rtol=1e-4, atol=0)


def test_extinction_brake_is_smooth_and_stops_at_the_floor():
    brake = eq._extinction_brake.py_func
    ln01, ln001 = np.log(0.1), np.log(0.01)
    assert brake(ln01 + 1.0) == 1.0 and brake(ln01) == 1.0
    assert brake(ln001) == 0.0 and brake(ln001 - 1.0) == 0.0
    x = np.linspace(ln001, ln01, 201)
    b = np.array([brake(v) for v in x])
    assert np.all(np.diff(b) > 0)                     # monotone between floor and 0.1 cells
    slope = np.diff(b) / np.diff(x)
    assert slope[0] < 0.02 and slope[-1] < 0.02       # flat at both ends: no kink
    # a tumour eradicated by strong chemotherapy levels off at the floor, never below it
    res = typical("docetaxel 75 mg/m2 q3w x6", {"chemo_sensitivity": 20.0,
                  "resistant_fraction0": 1e-6, "growth_per_day": 0.001,
                  "immune_refuge_cells": 0.0},  # no refuge: the T cells finish what chemo leaves
                  days=364, step=7.0, observables=("tumor_cells",))
    cells = res["tumor_cells"][0]
    assert cells.min() >= 0.02 - 1e-12 and cells[-1] < 1.0


def test_engine_and_reference_agree_for_a_patient_the_plausibility_bound_projects():
    """An immune-hot patient that both plausibility bounds project: both solvers lower its
    infiltration (observable infiltration_propensity) and its killing capacity
    (kill_capacity_per_day) the same way and agree on its trajectory; the input row keeps
    the drawn values."""
    hot = {"infiltration": 5.0, "pdl1_tumour0": 0.05, "kill_per_day": 20.0,
           "cd8_per_tumour_cell0": 0.0}  # drawn psi kept: the bounds' own path
    obs = ("sld_mm", "effector_t", "kill_capacity_per_day", "infiltration_propensity")
    sim = typical_input(KN189, [hot, {}], days=182, observables=obs)
    fast = run(sim)
    capacity = fast["kill_capacity_per_day"]
    assert capacity[0, 0] < 0.95 * 20.0 and np.all(capacity[0] == capacity[0, 0])
    assert np.all(capacity[1] == 0.9)  # the typical patient is not projected
    psi = fast["infiltration_propensity"]  # the T-cell bound lowers psi first
    assert psi[0, 0] < 5.0 and np.all(psi[0] == psi[0, 0])
    # the typical patient's psi is solved to match its CD8 T cells (section 3), once
    assert psi[1, 0] != 1.0 and np.all(psi[1] == psi[1, 0])
    assert sim.params[0, eq.P_KCT] == 20.0 and sim.params[0, eq.P_PSI] == 5.0
    for i in range(2):
        ref = simulate_patient(sim, i, method="DOP853", rtol=1e-10, atol=1e-12)
        assert np.allclose(fast.values[i], ref, rtol=1e-4, atol=0), i


def test_projected_rows_simulate_the_same_trajectories():
    """The engine integrates a projected parameter row (state at diagnosis solved once,
    ``project_batch``) to the same numbers as the raw row, under treatment."""
    import dataclasses

    from chemoio.engine.kernel import project_batch

    sim = typical_input(
        "pembrolizumab 200 mg q3w; carboplatin AUC5 q3w x4; pemetrexed 500 mg/m2 q3w",
        [{}, {"cd8_per_tumour_cell0": 0.4}, {"cd8_per_tumour_cell0": 0.0, "infiltration": 50.0},
         {"max_proliferation_per_day": 0.12, "cd8_per_tumour_cell0": 0.3}],
    )
    projected = dataclasses.replace(sim, params=project_batch(np.ascontiguousarray(sim.params)))
    a, b = run(sim), run(projected)
    assert np.all(a.status == 0)
    np.testing.assert_array_equal(b.values, a.values)
    assert not np.array_equal(projected.params, sim.params)
