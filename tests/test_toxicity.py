"""Neutropenia (Friberg model) and the dose rules of chemoio.toxicity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from chemoio.drugs import get_drug, list_drugs, load_drug_file
from chemoio.errors import ChemoioInputError
from chemoio.model import equations as eq
from chemoio.model.pkpd import build_slots
from chemoio.regimens import resolve_regimen
from chemoio.regimens.events import DoseTable
from chemoio.toxicity import (
    NO_RULES,
    DoseRules,
    PatientMarrow,
    ctcae_grade,
    delay_for_anc_series,
    dose_factors_for_nadirs,
    marrow_normals,
    plan_doses,
    typical_nadir,
)
from chemoio.toxicity import friberg as fr

COV = ([75.0], [1.8], [100.0])


def _plan(text, rules=NO_RULES, horizon=84.0, marrow=None, grid=None, **kw):
    reg = resolve_regimen(text)
    n = 1 if marrow is None else marrow.circ0.size
    w, b, g = (np.full(n, c[0]) for c in COV)
    table = reg.dose_table(w, b, g, horizon_days=horizon, n_patients=n)
    return reg, table, plan_doses(reg, table, w, b, g, rules=rules, marrow=marrow, grid_day=grid, **kw)


def _reference_anc(table, slopes, circ0, ktr, gamma, grid):
    """ANC by scipy solve_ivp (LSODA, rtol 1e-10) with the PK as ODE states, integrated
    piecewise between dose starts and infusion ends."""
    drugs = list(table.drugs)
    my = [d for d in drugs if slopes.get(d, 0.0) > 0]
    _, sp = build_slots([get_drug(d) for d in my], *COV)
    kel, vol = -sp[0, :, eq.S_A11], sp[0, :, eq.S_V]
    sl = np.array([slopes[d] for d in my])
    ev = [(table.time_day[e], my.index(drugs[table.slot[e]]), table.duration_day[e], table.amount_mg[0, e])
          for e in range(table.n_events) if drugs[table.slot[e]] in my]
    t_end = float(grid[-1])
    bps = sorted({0.0, t_end, *[t for t, *_ in ev], *[t + d for t, _, d, _ in ev if d > 0]})
    y = np.concatenate([np.full(5, circ0), np.zeros(len(my))])
    out = np.empty(grid.size)
    for t0, t1 in zip(bps[:-1], bps[1:]):
        for tt, s, d, a in ev:
            if tt == t0 and d == 0:
                y[5 + s] += a
        rate = np.zeros(len(my))
        for tt, s, d, a in ev:
            if d > 0 and tt <= 0.5 * (t0 + t1) < tt + d:
                rate[s] += a / d

        def f(t, z, rate=rate):
            p, t1_, t2_, t3_, c = z[:5]
            e = float(np.sum(sl * z[5:] / vol))
            fb = (circ0 / c) ** gamma
            return np.concatenate([[ktr * p * ((1 - e) * fb - 1), ktr * (p - t1_), ktr * (t1_ - t2_),
                                    ktr * (t2_ - t3_), ktr * (t3_ - c)], rate - kel * z[5:]])

        sol = solve_ivp(f, (t0, t1), y, method="LSODA", rtol=1e-10, atol=1e-12, dense_output=True)
        sel = (grid >= t0) & ((grid < t1) | (t1 == t_end))
        if sel.any():
            out[sel] = sol.sol(grid[sel])[4]
        y = sol.y[:, -1].copy()
    return out


# ----------------------------------------------------------------------------- the model


def test_steady_state_without_drug_stays_at_baseline():
    marrow = PatientMarrow.from_normals(np.random.default_rng(3).standard_normal((5, 3)))
    grid = np.arange(0.0, 60.0, 0.5)
    # a regimen of a myelotoxic drug whose doses are all zero: nothing acts on the marrow
    table = DoseTable(("carboplatin",), np.array([0.0, 21.0]), np.zeros(2, np.int32), np.zeros(2), np.zeros((5, 2)))
    plan = plan_doses(None, table, np.full(5, 75.0), np.full(5, 1.8), np.full(5, 100.0), marrow=marrow, grid_day=grid)
    np.testing.assert_allclose(plan.anc_grid, np.repeat(marrow.circ0[:, None], grid.size, axis=1), rtol=1e-12)
    assert plan.summary()["anc_grade"].max() <= 1  # baseline only (>= 1.5 by eligibility)


def test_taxane_platinum_cycle_nadir_day_and_recovery():
    grid = np.arange(0.0, 42.0 + 1e-9, 0.25)
    _, _, plan = _plan("paclitaxel 200 mg/m2 q3w x1; carboplatin AUC6 q3w x1", grid=grid)
    anc = plan.anc_grid[0]
    base = fr.system_value("circ0_1e9_per_L")
    day = grid[np.argmin(anc)]
    assert 8.0 <= day <= 14.0, day  # literature: nadir around day 10-14 of a q3w cycle
    assert anc.min() < 0.5 * base  # a real nadir
    assert anc[grid == 21.0][0] >= 1.5  # recovered for the next cycle on day 22
    assert abs(anc[-1] / base - 1.0) < 0.25  # back near baseline (after a feedback overshoot)
    assert anc[np.searchsorted(grid, 14.0):np.searchsorted(grid, 28.0)].max() > anc.min() * 2


def test_higher_dose_gives_a_deeper_nadir():
    nadirs = [typical_nadir("docetaxel", dose_mg=d)[0] for d in (60 * 1.8, 75 * 1.8, 100 * 1.8)]
    assert nadirs[0] > nadirs[1] > nadirs[2]
    assert nadirs[2] < 1.0 < nadirs[0]


@pytest.mark.parametrize("text,slopes", [
    ("docetaxel 75 mg/m2 q3w x3", {"docetaxel": 19.3}),
    ("5-fluorouracil 1000 mg/m2 d1-4 q3w x2 over 24h; cisplatin 75 mg/m2 q3w x2", {"5-fluorouracil": 0.5, "cisplatin": 4.0}),
    ("nab-paclitaxel 100 mg/m2 d1,8,15 q3w x2; carboplatin AUC6 q3w x2", {"nab-paclitaxel": 2.8, "carboplatin": 0.34}),
])
def test_fixed_step_integrator_agrees_with_solve_ivp(text, slopes):
    """Stated tolerance: nadir within 1 %, ANC on the day grid within 0.05 x 10^9/L."""
    grid = np.arange(0.0, 63.0 + 1e-9, 1.0)
    reg, table, plan = _plan(text, grid=grid, horizon=63.0, slope_override=slopes)
    ref = _reference_anc(table, slopes, fr.system_value("circ0_1e9_per_L"), 4.0 / (fr.system_value("mtt_h") / 24.0),
                         fr.system_value("gamma"), grid)
    sim = plan.anc_grid[0]
    assert abs(sim.min() / ref.min() - 1.0) < 0.01
    assert np.max(np.abs(sim - ref)) < 0.05


def test_pemetrexed_slope_reproduces_the_published_typical_nadirs():
    # calibrated on 500 mg/m2 -> 2.74 (Latz et al.); 1000 mg/m2 is a check: published 1.34
    assert typical_nadir("pemetrexed")[0] == pytest.approx(2.74, rel=0.01)
    assert typical_nadir("pemetrexed", dose_mg=1000 * 1.8)[0] == pytest.approx(1.34, rel=0.2)


def test_drug_slopes_reproduce_their_documented_calibration_nadir():
    checked = 0
    for drug in list_drugs():
        block = getattr(drug, "myelotoxicity", None)
        if drug.is_antibody:
            assert block is None  # antibodies do not act on the marrow
            continue
        assert block is not None and block.slope_L_per_mg.source
        if block.calibration_nadir_1e9_per_L is not None:
            assert typical_nadir(drug.name)[0] == pytest.approx(block.calibration_nadir_1e9_per_L.value, rel=0.01)
            checked += 1
    assert checked >= 14


def test_ctcae_grades():
    assert ctcae_grade([2.5, 1.9, 1.4, 0.9, 0.49]).tolist() == [0, 1, 2, 3, 4]


def test_myelotoxicity_block_is_validated(tmp_path):
    text = (get_drug("carboplatin").model_dump_json())
    import json

    import yaml

    data = json.loads(text)
    data["myelotoxicity"]["slope_L_per_mg"]["unit"] = "L/umol"
    path = tmp_path / "carbo2.yaml"
    data["name"] = "carbo2"
    data["aliases"] = []
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ChemoioInputError) as err:
        load_drug_file(path)
    assert "myelotoxicity.slope_L_per_mg" in err.value.field and "L/mg" in err.value.message


# ----------------------------------------------------------------------------- the rule


def test_delay_rule_on_a_hand_made_anc_series():
    assert delay_for_anc_series([2.0]) == (0.0, False)
    assert delay_for_anc_series([1.2, 1.4, 1.6]) == (14.0, False)  # two weekly re-checks
    assert delay_for_anc_series([1.0, 1.1, 1.2, 1.3]) == (21.0, True)  # longest delay reached: omitted
    assert delay_for_anc_series([1.0, 1.1, 1.2, 1.5]) == (21.0, False)
    assert delay_for_anc_series([0.9], DoseRules(max_delay_days=0)) == (0.0, True)
    assert delay_for_anc_series([0.9], DoseRules(anc_min=0.0)) == (0.0, False)  # delays off
    # reductions after grade-4 nadirs: 75 %, then 75 % of that, then stop
    assert dose_factors_for_nadirs([0.8, 0.4, 0.3, 0.45, 0.2]) == [1.0, 1.0, 0.75, 0.5625, 0.0, 0.0]
    assert dose_factors_for_nadirs([0.3, 0.3], DoseRules(reduce_below_anc=None)) == [1.0, 1.0, 1.0]


def _sensitive(n=1, slope_sd=3.0):
    """Patients with a low baseline and a very sensitive marrow (slope factor e^(0.42*3))."""
    z = np.zeros((n, 3))
    z[:, 0] = -2.0
    z[:, 2] = slope_sd
    return PatientMarrow.from_normals(z)


def test_delays_shift_the_later_doses_of_that_patient():
    text = "pembrolizumab 200 mg q3w x6; docetaxel 75 mg/m2 q3w x6"
    marrow = PatientMarrow(np.array([5.2, 2.0]), np.full(2, 4 / (124 / 24)), np.full(2, 0.239), np.array([1.0, 6.0]))
    reg, table, plan = _plan(text, rules=DoseRules(reduce_below_anc=None), marrow=marrow, horizon=200.0)
    pem = np.asarray(table.slot) == table.drugs.index("pembrolizumab")
    doc = ~pem
    # the robust patient gets every dose on time
    np.testing.assert_array_equal(plan.time[0], table.time_day)
    # the sensitive one is postponed; each delay moves every later event, antibody included
    assert plan.summary()["n_dose_delays"][1] >= 1
    shift = plan.time[1] - table.time_day
    assert np.all(np.diff(shift[doc]) >= 0) and shift[doc][-1] > 0
    np.testing.assert_array_equal(shift[pem], shift[doc])  # pembrolizumab moves with docetaxel
    assert np.all(shift % 7 == 0)
    assert plan.summary()["dose_delay_days"][1] == shift[doc][-1] or plan.summary()["n_cycles_omitted"][1] > 0
    # with delay_moves="chemotherapy" the antibody keeps its own schedule
    _, _, plan2 = _plan(text, rules=DoseRules(reduce_below_anc=None, delay_moves="chemotherapy"),
                        marrow=marrow, horizon=200.0)
    np.testing.assert_array_equal(plan2.time[1][pem], table.time_day[pem])
    np.testing.assert_array_equal(plan2.time[1][doc], plan.time[1][doc])


def test_grade4_nadir_reduces_the_next_doses_and_omissions_within_cycle():
    marrow = _sensitive(1, 2.0)
    reg, table, plan = _plan("docetaxel 75 mg/m2 q3w x4", rules=DoseRules(anc_min=0.0), marrow=marrow, horizon=120.0)
    s = plan.summary()
    assert s["anc_grade"][0] == 4 and s["n_dose_reductions"][0] >= 1
    full = table.amount_mg[0, 0]
    given = plan.amount[0]
    assert given[0] == full and given[1] == pytest.approx(0.75 * full)
    # gemcitabine d8 is omitted when ANC < 1.0 on day 8; day 1 doses are not
    reg, table, plan = _plan("gemcitabine 1000 mg/m2 d1,8 q3w x2", rules=DoseRules(within_cycle_anc_min=4.5),
                             marrow=PatientMarrow.typical(1), horizon=60.0)
    day8 = np.isin(table.time_day, [7.0, 28.0])
    assert np.all(plan.amount[0][day8] == 0.0) and np.all(plan.amount[0][~day8] > 0.0)


def test_plans_do_not_depend_on_chunking_and_draws_on_patient_index():
    z_all = marrow_normals(7, np.arange(3000))
    np.testing.assert_array_equal(marrow_normals(7, np.array([5, 2047, 2999])), z_all[[5, 2047, 2999]])
    assert not np.array_equal(marrow_normals(8, np.arange(10)), z_all[:10])
    marrow = PatientMarrow.from_normals(z_all[:40] * 2.0)
    reg = resolve_regimen("pembrolizumab 200 mg q3w x8; pemetrexed 500 mg/m2 q3w x8; carboplatin AUC5 q3w x4")
    w, b, g = np.full(40, 70.0), np.full(40, 1.9), np.full(40, 90.0)
    eta = np.random.default_rng(1).standard_normal((40, 8, 2))
    table = reg.dose_table(w, b, g, horizon_days=200.0, n_patients=40)
    whole = plan_doses(reg, table, w, b, g, pk_eta=eta, marrow=marrow)
    for part in (slice(0, 13), slice(13, 40)):
        sub = DoseTable(table.drugs, table.time_day, table.slot, table.duration_day, table.amount_mg[part])
        p = plan_doses(reg, sub, w[part], b[part], g[part], pk_eta=eta[part], marrow=marrow.take(part))
        np.testing.assert_array_equal(p.time, whole.time[part])
        np.testing.assert_array_equal(p.amount, whole.amount[part])
        np.testing.assert_array_equal(p.nadir, whole.nadir[part])
    assert (whole.summary()["anc_grade"] >= 3).any()


def test_rule_inputs_are_checked():
    with pytest.raises(ChemoioInputError) as err:
        DoseRules(delay_moves="everything")
    assert err.value.field == "delay_moves"
    with pytest.raises(ChemoioInputError) as err:
        DoseRules(reduction_factor=1.5)
    assert err.value.field == "reduction_factor"
    with pytest.raises(ChemoioInputError) as err:
        _plan("docetaxel 75 mg/m2 q3w x1", step_days=0.3)
    assert err.value.field == "step_days"
