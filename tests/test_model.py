"""The mechanism behaves as the biology says (issue: model acceptance list)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import chemoio
from chemoio.model import equations as eq
from chemoio.model.parameters import default_vector, index_of, parameter_table
from helpers import run, typical, typical_input

ROOT = Path(__file__).resolve().parents[1]

CHEMO = "pemetrexed 500 mg/m2 q3w x4; carboplatin AUC5 q3w x4"
PEMBRO = "pembrolizumab 200 mg q3w x35"
NO_T_CELLS = {"infiltration": 0.0}


def auc(values: np.ndarray, days: np.ndarray) -> float:
    return float(np.trapezoid(values, days))


def test_every_parameter_has_a_source():
    for p in parameter_table():
        assert p.source and len(p.source) > 3, p.name
        if p.level == "shared":
            assert any(w in p.source.lower() for w in ("pmid", "assumed", "calibrated")), p.name


@pytest.mark.parametrize("n50, f_mem", [(0.0, 0.0), (1.0, 0.0), (0.0, 0.05)])
def test_steady_state_at_diagnosis_is_a_fixed_point_of_the_immune_states(n50, f_mem):
    # also with encounter-limited kill (2.5), whose lesion volume at diagnosis (the geometric
    # volume of section 3) must be the one the ODE sees at t = 0, and with memory T cells
    # (2.4), whose recall is part of the priming that balances the loop
    p = default_vector({"kill_search_half_fraction": n50, "memory_fraction": f_mem})
    y = np.zeros(eq.N_STATES)
    aux = np.zeros(eq.N_AUX)
    eq.initial_state(p, y, aux)
    dy = np.zeros_like(y)
    eq.rhs(y, dy, p, aux, np.zeros(eq.N_DRIVE))
    # tumour grows at the patient's net rate; every immune state is at rest
    c_s, c_r = np.exp(y[eq.Y_LNCS]), np.exp(y[eq.Y_LNCR])
    net = (c_s * dy[eq.Y_LNCS] + c_r * dy[eq.Y_LNCR]) / (c_s + c_r)
    assert net == pytest.approx(p[index_of("growth_per_day")], rel=0.05)
    for k in range(eq.Y_D, eq.N_STATES):
        if k == eq.Y_S:
            continue
        assert abs(dy[k]) <= 1e-6 * max(abs(y[k]), 1.0), eq.STATE_NAMES[k]
    # the stroma fills the rest of the lesion at the packing fraction and keeps pace with growth
    v_cell = (c_s + c_r + y[eq.Y_D]) * p[eq.P_VC] + (y[eq.Y_TE] + y[eq.Y_TX]) * p[eq.P_VT]
    assert v_cell / (v_cell + y[eq.Y_S]) == pytest.approx(p[eq.P_PACK], rel=1e-9)
    assert dy[eq.Y_S] / y[eq.Y_S] == pytest.approx(p[eq.P_GROWTH], rel=0.02)
    assert (y[eq.Y_TM] > 0) == (f_mem > 0)


def test_killing_is_limited_by_target_encounters_when_the_lesion_thins_out():
    # a T cell meets tumour cells in proportion to the share of the lesion they fill (2.5):
    # chemotherapy that halves the viable cells of a lesion whose volume stays (dead cells,
    # stroma) raises the kill per tumour cell by far less than the plain ratio form's 2x
    c0, te, vol = 1e10, 1e8, 1e10 * 2.57e-9 / 0.37  # cells, cells, mL (a packed lesion)

    def kill(n50, cells, v):
        p = default_vector({"kill_search_half_fraction": n50})
        return eq.kill_rate(p, cells, v, te, 0.0, 0.0, 0.0, 0.1, 1.0, 0.0, 0.0)

    assert kill(0.0, c0 / 2, vol) / kill(0.0, c0, vol) == pytest.approx(2.0, rel=0.02)
    rise = kill(1.0, c0 / 2, vol) / kill(1.0, c0, vol)
    assert 1.0 < rise < 1.2
    # the same cells spread through twice the volume are met, and killed, less often
    assert kill(1.0, c0, 2 * vol) < 0.8 * kill(1.0, c0, vol)
    # off (n50 = 0), the lesion volume does not enter
    assert kill(0.0, c0, 2 * vol) == kill(0.0, c0, vol)


def test_chemo_kill_follows_proliferation_only_when_weighted():
    # Norton-Simon option (2.1): with weight w the cytotoxic kill is scaled by the Gompertz
    # proliferation per cell over a reference rate, so it rises as the tumour shrinks; w = 0
    # leaves every drug's kill as the PK/PD drive gives it
    def drug_effect(w, shrink):
        p = default_vector({"chemo_proliferation_weight": w})
        y = np.zeros(eq.N_STATES)
        aux = np.zeros(eq.N_AUX)
        eq.initial_state(p, y, aux)
        y[eq.Y_LNCS] -= np.log(shrink)
        y[eq.Y_LNCR] -= np.log(shrink)
        drive = np.zeros(eq.N_DRIVE)
        base, treated = np.zeros_like(y), np.zeros_like(y)
        eq.rhs(y, base, p, aux, drive)
        drive[eq.DR_E_SENS] = 0.1
        eq.rhs(y, treated, p, aux, drive)
        return base[eq.Y_LNCS] - treated[eq.Y_LNCS], p, aux

    e0, _, _ = drug_effect(0.0, 1.0)
    assert e0 == pytest.approx(0.1, rel=1e-12)
    assert drug_effect(0.0, 100.0)[0] == pytest.approx(0.1, rel=1e-12)
    e1, p, aux = drug_effect(1.0, 1.0)
    lam, lam_ref = aux[eq.AUX_LAMBDA], p[eq.P_LAMREF]
    assert e1 == pytest.approx(0.1 * lam / lam_ref, rel=1e-9)
    e100, _, _ = drug_effect(1.0, 100.0)
    gain = (aux[eq.AUX_LNK_C0] + np.log(100.0)) / aux[eq.AUX_LNK_C0]
    assert e100 == pytest.approx(e1 * gain, rel=1e-9) and gain > 1.5


def test_stroma_of_a_lesion_without_cells_is_remodelled_at_its_rate():
    p = default_vector({"stroma_remodel_per_day": 0.05})
    y = np.zeros(eq.N_STATES)
    aux = np.zeros(eq.N_AUX)
    eq.initial_state(p, y, aux)
    y[eq.Y_LNCS] = y[eq.Y_LNCR] = np.log(1e-2)
    y[eq.Y_D] = y[eq.Y_TE] = y[eq.Y_TX] = 0.0
    dy = np.zeros_like(y)
    eq.rhs(y, dy, p, aux, np.zeros(eq.N_DRIVE))
    assert dy[eq.Y_S] == pytest.approx(-0.05 * y[eq.Y_S], rel=1e-6)


def test_residual_mass_delays_and_caps_shrinkage():
    # the same chemotherapy kills the same cells, but a slowly remodelled stroma keeps the
    # lesion larger: a shallower best SLD change, and fewer cells per mm of SLD
    slow, fast = {"stroma_remodel_per_day": 0.01}, {"stroma_remodel_per_day": 0.3}
    res = typical(CHEMO, [slow, fast], days=126,
                  observables=("sld_mm", "tumor_cells", "stroma_volume_ml", "viable_sld_mm"))
    sld, cells = res["sld_mm"], res["tumor_cells"]
    # (the stroma acts on the cells only through the volume that T-cell entry sees)
    np.testing.assert_allclose(cells[0, :8], cells[1, :8], rtol=0.05)
    best = sld.min(axis=1) / sld[:, 0] - 1.0
    assert best[0] > best[1] + 0.05
    stroma = res["stroma_volume_ml"]
    assert stroma[0, -1] > stroma[1, -1]
    # the viable burden (what the death hazard sees) starts at the SLD and falls below it
    viable = res["viable_sld_mm"]
    np.testing.assert_allclose(viable[:, 0], sld[:, 0], rtol=1e-9)
    np.testing.assert_allclose(viable, sld[:, :1] * np.cbrt(cells / cells[:, :1]), rtol=1e-9)
    assert np.all(viable[0, 1:] < sld[0, 1:])


@pytest.mark.parametrize("f_mem", [0.0, 0.05])
@pytest.mark.parametrize("tumor", ["nsclc_nonsquamous", "urothelial", "melanoma", "tnbc_early"])
def test_every_virtual_patient_starts_growing_at_its_own_net_rate(tumor, f_mem):
    """Across a drawn population (shipped parameter set), not just the typical patient: the
    net untreated growth at diagnosis is the patient's growth_per_day, and the immune loop is
    at rest. (The fixed point once cycled for 20-38 % of patients, whose intrinsic growth then
    disagreed with their immune state by up to 1.8/day: explosive progressors and
    spontaneous regressions.)"""
    from chemoio.model.parameters import shipped_parameter_set
    from chemoio.population import parameter_matrix, sample_patients

    vp = sample_patients(tumor, 600, 3)
    # also with memory T cells on (2.4): a first version, fed by the effectors in the lesion,
    # made the loop self-sustaining for patients with a large psi
    P = parameter_matrix(vp.params, tumor, {**shipped_parameter_set(), "memory_fraction": f_mem})
    net_gap, at_rest = [], []
    for p in P:
        y, aux, dy = np.zeros(eq.N_STATES), np.zeros(eq.N_AUX), np.zeros(eq.N_STATES)
        eq.initial_state(p, y, aux)
        eq.rhs(y, dy, p, aux, np.zeros(eq.N_DRIVE))
        c_s, c_r = np.exp(y[eq.Y_LNCS]), np.exp(y[eq.Y_LNCR])
        net = (c_s * dy[eq.Y_LNCS] + c_r * dy[eq.Y_LNCR]) / (c_s + c_r)
        net_gap.append(abs(net - p[eq.P_GROWTH]))
        at_rest.append(all(abs(dy[k]) <= 1e-4 * max(abs(y[k]), 1.0) for k in (eq.Y_TP, eq.Y_TE, eq.Y_TX, eq.Y_TM)))
    assert max(net_gap) < 1e-9
    assert np.mean(at_rest) >= 0.95


def test_non_immune_cell_loss_resists_chemotherapy_shrinkage():
    """docs/model.md 2.1: the diagnosed net growth g is what is left of proliferation after
    T-cell kill and non-immune loss delta0, so lambda = g + k_kill,0 + delta0. A tumour that
    loses more of its cells to non-immune death proliferates faster, and its Gompertz
    proliferation rebuilds faster as chemotherapy shrinks it: without T cells, the same
    cisplatin-5-FU course shrinks it less and it regrows sooner (best SLD 0.54 of baseline
    with delta0 = 1e-4/day, 0.80 with 0.1/day)."""
    chemo = "cisplatin 80 mg/m2 q3w x6; 5-fluorouracil 800 mg/m2/day d1-5 q3w x6"
    rows = [{**NO_T_CELLS, "spontaneous_death_per_day": d} for d in (1e-4, 0.1)]
    res = typical(chemo, rows, days=252, observables=("sld_mm",))
    rel = res["sld_mm"] / res["sld_mm"][:, :1]
    best = rel.min(axis=1)
    assert best[1] > best[0] + 0.15
    assert rel[1, -1] / best[1] > rel[0, -1] / best[0]  # more regrowth from the nadir


def diagnose(rows):
    """State at diagnosis of each parameter row (a projected copy): the rows after the
    plausibility bounds, CD8 T cells per viable tumour cell, intrinsic proliferation."""
    rows = rows.copy()
    ratio, lam = np.empty(len(rows)), np.empty(len(rows))
    for i, p in enumerate(rows):
        y, aux = np.zeros(eq.N_STATES), np.zeros(eq.N_AUX)
        eq.initial_state(p, y, aux)
        ratio[i] = (y[eq.Y_TE] + y[eq.Y_TX]) / aux[eq.AUX_C0]
        lam[i] = aux[eq.AUX_LAMBDA]
    return rows, ratio, lam


def test_plausibility_bound_lowers_killing_capacity_only_where_proliferation_would_exceed_it():
    """The intrinsic proliferation lambda = g + k_kill,0 + delta0 of a virtual patient may not
    exceed ``max_proliferation_per_day``. An immune-hot patient that would need more gets a
    lower killing capacity k_CT (and keeps its diagnosed net growth); every other patient is
    untouched; the projection is idempotent, and the engine never changes its input matrix."""
    from chemoio.model.parameters import shipped_parameter_set
    from chemoio.population import parameter_matrix, sample_patients

    vp = sample_patients("melanoma", 600, 3)
    P = parameter_matrix(vp.params, "melanoma", shipped_parameter_set())
    P[:, eq.P_TCMAX] = 1e6  # the T-cell bound (next test) off: this one alone
    P[:, eq.P_CD8RATIO0] = 0.0  # drawn psi kept (no CD8 matching): the bound's own path
    P[:, eq.P_NSRCH] = 0.0  # plain ratio kill: immune-hot enough for the bound to bind
    bound = P[0, eq.P_LAMMAX]
    assert bound == pytest.approx(0.35)

    loose = P.copy()
    loose[:, eq.P_LAMMAX] = 10.0
    _, _, lam_free = diagnose(loose)
    projected, _, lam = diagnose(P)
    hot = lam_free > bound
    assert 0.02 < hot.mean() < 0.5  # the bound binds for some patients, not most
    assert lam.max() <= bound + 1e-12
    assert np.all(lam[hot] > bound - 0.01)  # lowered to the bound, not far below it
    np.testing.assert_array_equal(lam[~hot], lam_free[~hot])
    np.testing.assert_array_equal(projected[~hot], P[~hot])
    assert np.all(projected[hot, eq.P_KCT] < P[hot, eq.P_KCT])
    again, _, lam_again = diagnose(projected)
    np.testing.assert_array_equal(again, projected)
    np.testing.assert_array_equal(lam_again, lam)
    # the compiled engine copies each row before projecting it
    sim = typical_input(CHEMO, days=28)
    sim.params[:] = P[np.flatnonzero(hot)[:1]]
    before = sim.params.copy()
    run(sim)
    np.testing.assert_array_equal(sim.params, before)


def test_tcell_bound_lowers_infiltration_only_where_cd8_would_outnumber_its_bound():
    """At diagnosis the CD8 T cells in the tumour, (T_E + T_X)/C0, may not exceed
    ``max_tcell_tumour_ratio``. A patient whose sampled immune state would put more there gets
    a lower infiltration propensity psi; every other patient is untouched, the projection is
    idempotent, and lowering the bound lowers the intrinsic proliferation the immune-hot
    patients need (docs/model.md 3)."""
    from chemoio.model.parameters import shipped_parameter_set
    from chemoio.population import parameter_matrix, sample_patients

    vp = sample_patients("nsclc_nonsquamous", 400, 5)
    P = parameter_matrix(vp.params, "nsclc_nonsquamous", shipped_parameter_set())
    assert P[0, eq.P_TCMAX] == pytest.approx(1.0)

    P[:, eq.P_LAMMAX] = 10.0  # the proliferation bound (previous test) off: this one alone
    P[:, eq.P_CD8RATIO0] = 0.0  # drawn psi kept (no CD8 matching): the bound's own path
    P[:, eq.P_NSRCH] = 0.0  # plain ratio kill: immune-hot enough for the bound to bind
    loose = P.copy()
    loose[:, eq.P_TCMAX] = 1e6
    _, ratio_free, lam_free = diagnose(loose)
    projected, ratio, lam = diagnose(P)
    hot = ratio_free > 1.0
    assert 0.05 < hot.mean() < 0.95  # it binds for some patients, not for all
    assert ratio.max() <= 1.0 + 1e-12
    assert np.all(ratio[hot] > 0.99)  # lowered to the bound, not far below it
    np.testing.assert_array_equal(ratio[~hot], ratio_free[~hot])
    assert np.all(projected[hot, eq.P_PSI] < P[hot, eq.P_PSI])
    np.testing.assert_array_equal(projected[~hot, eq.P_PSI], P[~hot, eq.P_PSI])
    again, ratio_again, _ = diagnose(projected)
    np.testing.assert_array_equal(again, projected)
    np.testing.assert_array_equal(ratio_again, ratio)
    # fewer T cells at diagnosis: the hot patients need less intrinsic proliferation
    assert np.median(lam[hot]) < np.median(lam_free[hot]) - 0.02
    # with both bounds on (shipped), the joint projection keeps the ratio and is idempotent
    both = parameter_matrix(vp.params, "nsclc_nonsquamous", shipped_parameter_set())
    both[:, eq.P_CD8RATIO0] = 0.0
    both[:, eq.P_NSRCH] = 0.0
    once, ratio_both, _ = diagnose(both)
    twice, ratio_twice, _ = diagnose(once)
    assert ratio_both.max() <= 1.0 + 1e-12
    np.testing.assert_array_equal(twice, once)
    np.testing.assert_array_equal(ratio_twice, ratio_both)


def test_state_at_diagnosis_matches_the_drawn_cd8_cells_through_psi():
    """Each patient's tumour-reactive T cells per tumour cell at diagnosis equal its drawn
    CD8 cells per tumour cell times its antigenicity (capped at the ceiling), by solving for
    psi; the drawn psi only starts the search, the input row is not changed, and 0 turns the
    matching off (docs/model.md 3)."""
    from chemoio.model.parameters import shipped_parameter_set
    from chemoio.population import parameter_matrix, sample_patients

    vp = sample_patients("urothelial", 300, 9)
    P = parameter_matrix(vp.params, "urothelial", shipped_parameter_set())
    before = P.copy()
    solved, ratio, _ = diagnose(P)
    np.testing.assert_array_equal(P, before)
    target = np.minimum(P[:, eq.P_CD8RATIO0], P[:, eq.P_TCMAX]) * P[:, eq.P_ANTIGEN]
    err = np.abs(np.log(ratio / target))
    assert np.median(err) < 1e-4 and np.mean(err < 1e-3) > 0.95
    assert np.all(solved[:, eq.P_PSI] != P[:, eq.P_PSI])
    # the drawn psi does not decide the result: a patient started from another psi ends where
    # its CD8 cells put it (unless its target lies in the jump between the cold and the hot
    # branch of its immune loop: then it ends on either side of the jump)
    moved = P.copy()
    moved[:, eq.P_PSI] *= 3.0
    solved3, ratio3, _ = diagnose(moved)
    hit = err < 1e-3
    np.testing.assert_allclose(ratio3[hit], ratio[hit], rtol=1e-3)
    np.testing.assert_allclose(solved3[hit, eq.P_PSI], solved[hit, eq.P_PSI], rtol=1e-3)
    # one patient, three CD8 densities and two antigenicities: reactive cells follow both
    row = P[np.argmin(np.abs(np.log(P[:, eq.P_CD8RATIO0] / 0.04)))]
    grid = np.repeat(row[None], 4, axis=0)
    grid[:, eq.P_CD8RATIO0] = [0.01, 0.1, 0.5, 0.1]
    grid[:, eq.P_ANTIGEN] = [0.5, 0.5, 0.5, 0.2]
    _, r, _ = diagnose(grid)
    np.testing.assert_allclose(r, [0.005, 0.05, 0.25, 0.02], rtol=1e-3)
    # 0 keeps the drawn psi (only the ceiling can lower it)
    off = P.copy()
    off[:, eq.P_CD8RATIO0] = 0.0
    kept, _, _ = diagnose(off)
    assert np.all(kept[:, eq.P_PSI] <= P[:, eq.P_PSI])


def test_projected_rows_give_the_same_state_bit_for_bit_and_stay_projected():
    """A trial solves each patient's state at diagnosis once (``project_batch``) and reuses the
    projected rows for pass 1 and pass 2: the state of a projected row is the state of the raw
    row, bit for bit, on every path of section 3 (CD8 matching, the k_CT rescale and
    bisection, the T-cell ceiling with the matching off), and projecting again changes
    nothing."""
    from chemoio.engine.kernel import project_batch
    from chemoio.model.parameters import shipped_parameter_set
    from chemoio.population import parameter_matrix, sample_patients

    blocks = []
    for k, tumor in enumerate(("nsclc_nonsquamous", "urothelial", "melanoma", "tnbc_early")):
        vp = sample_patients(tumor, 120, 40 + k)
        blocks.append(parameter_matrix(vp.params, tumor, shipped_parameter_set()))
    P = np.ascontiguousarray(np.concatenate(blocks))
    # force the other paths: a proliferation bound that bites (k_CT rescale and bisection),
    # and the matching off with a psi far above the T-cell ceiling
    P[:40, eq.P_LAMMAX] = P[:40, eq.P_GROWTH] + P[:40, eq.P_DELTA0] + 0.005
    P[40:80, eq.P_CD8RATIO0] = 0.0
    P[40:80, eq.P_PSI] *= 1e4
    P[:80, eq.P_NSRCH] = 0.0  # plain ratio kill in the forced rows (hot enough to bind)
    raw = P.copy()
    Q = project_batch(P)
    np.testing.assert_array_equal(P, raw)  # the input is not modified
    flags = [eq.P_CD8RATIO0, eq.P_TCMAX, eq.P_LAMMAX]
    assert np.all(Q[:, eq.P_CD8RATIO0] == 0.0) and np.all(np.isinf(Q[:, [eq.P_TCMAX, eq.P_LAMMAX]]))
    changed_kct = changed_psi = 0
    for p_raw, q in zip(raw, Q):
        p1, y1, a1 = p_raw.copy(), np.zeros(eq.N_STATES), np.zeros(eq.N_AUX)
        q2, y2, a2 = q.copy(), np.zeros(eq.N_STATES), np.zeros(eq.N_AUX)
        eq.initial_state(p1, y1, a1)
        eq.initial_state(q2, y2, a2)
        np.testing.assert_array_equal(y2, y1)
        np.testing.assert_array_equal(a2, a1)
        np.testing.assert_array_equal(q2, q)  # a projected row stays as it is
        keep = np.ones(q.size, dtype=bool)
        keep[flags] = False
        np.testing.assert_array_equal(q[keep], p1[keep])
        changed_kct += q[eq.P_KCT] != p_raw[eq.P_KCT]
        changed_psi += q[eq.P_PSI] != p_raw[eq.P_PSI]
    assert changed_kct >= 10 and changed_psi >= 80  # the forced paths were taken (hot rows only lower k_CT)
    np.testing.assert_array_equal(project_batch(Q), Q)


def test_untreated_tumour_grows_at_its_net_rate():
    res = typical("", days=182)
    sld = res["sld_mm"][0]
    assert np.all(np.diff(sld) > 0)
    g = default_vector()[index_of("growth_per_day")]
    # early growth: SLD ~ S0 exp(g t / 3)
    assert sld[4] / sld[0] == pytest.approx(np.exp(g * 28 / 3), rel=0.02)


def test_chemotherapy_alone_shrinks_even_without_t_cells():
    untreated = typical("", NO_T_CELLS, days=126)["sld_mm"][0]
    chemo = typical(CHEMO, NO_T_CELLS, days=126)["sld_mm"][0]
    assert chemo.min() < 0.9 * chemo[0]
    assert np.all(chemo[1:] < untreated[1:])


def test_resistant_clone_sensitivity_scale_sets_how_far_chemo_selects_it():
    # rho_d = min(scale * library rho_d, 1): at the library's 0.05 chemotherapy enriches the
    # resistant clone; at a scale that takes rho_d to 1 both clones fall alike (the share
    # moves only by mutation, as without treatment), and a scale between lies between
    rows = [{**NO_T_CELLS, "resistant_sensitivity_scale": s} for s in (1.0, 6.0, 50.0)]
    res = typical(CHEMO, rows, days=84, observables=("resistant_fraction", "tumor_cells"))
    untreated = typical("", NO_T_CELLS, days=84, observables=("resistant_fraction",))
    share = res["resistant_fraction"]
    gain = share[:, -1] / share[:, 0]
    drift = untreated["resistant_fraction"][0, -1] / untreated["resistant_fraction"][0, 0]
    assert gain[0] > 5.0
    assert drift < gain[1] < gain[0]
    assert gain[2] == pytest.approx(drift, rel=0.01)
    cells = res["tumor_cells"]
    assert cells[2].min() < cells[1].min() < cells[0].min()


def test_ici_alone_needs_t_cells_and_pdl1():
    inflamed = {"infiltration": 2.0, "pdl1_tumour0": 0.8}
    cold = {"infiltration": 0.0, "pdl1_tumour0": 0.8}
    no_pdl1 = {"infiltration": 2.0, "pdl1_tumour0": 0.0, "immune_pdl1_engagement": 0.0,
               "pdl2_engagement": 0.0}
    rows = [inflamed, cold, no_pdl1]
    treated = typical(PEMBRO, rows, days=182)["sld_mm"]
    untreated = typical("", rows, days=182)["sld_mm"]
    ratio = treated[:, -1] / untreated[:, -1]
    assert ratio[0] < 0.7  # inflamed, PD-L1 high: clear benefit
    assert ratio[1] == pytest.approx(1.0, abs=1e-6)  # no T cells: no effect
    assert ratio[2] == pytest.approx(1.0, abs=0.02)  # no PD-1 ligand: nothing to block


def test_higher_icd_fraction_raises_priming():
    sim = typical_input(CHEMO, days=84, observables=("primed_t", "mature_dc", "sld_mm"))
    base = run(sim)
    sim.slot_params[:, :, eq.S_ICD] = np.where(sim.slot_kinds == eq.KIND_CHEMO, 0.9, 0.0)
    high = run(sim)
    days = sim.times_day
    assert auc(high["primed_t"][0], days) > 1.2 * auc(base["primed_t"][0], days)
    assert high["mature_dc"][0, 1] > base["mature_dc"][0, 1]


def test_higher_tmb_raises_the_immune_response():
    low, high = {"antigenicity": 0.2}, {"antigenicity": 0.8}
    res = typical(PEMBRO, [low, high], days=182)
    # at diagnosis: the same CD8 cells per tumour cell, four times the tumour-reactive share
    # (section 3)
    assert res["effector_t"][1, 0] > 3 * res["effector_t"][0, 0]
    # and a smaller tumour burden under anti-PD-1 (time-averaged: with the immune refuge the
    # controlled tumour oscillates around an equilibrium, so one time point can mislead)
    assert res["sld_mm"][1].mean() < 0.9 * res["sld_mm"][0].mean()


def test_fewer_tregs_and_mdscs_raise_killing():
    res = typical("", [{}, {"treg0": 0.1}, {"mdsc0": 0.1}], days=7)
    kill = res["tcell_kill_per_day"][:, 0]
    assert kill[1] > kill[0] and kill[2] > kill[0]


def test_chemo_treg_and_mdsc_depletion_raise_killing():
    sim = typical_input(CHEMO, days=42, step=1.0, observables=("treg", "mdsc", "tcell_kill_per_day"))
    base = run(sim)
    chemo = sim.slot_kinds == eq.KIND_CHEMO
    sim.slot_params[:, :, eq.S_TREG] = np.where(chemo, 1.0, 0.0)
    sim.slot_params[:, :, eq.S_MDSC] = np.where(chemo, 1.0, 0.0)
    dep = run(sim)
    assert dep["treg"][0, 5] < 0.8 * base["treg"][0, 5]
    # MDSC depletion is mild per cycle (docs/model.md 2.7) but accumulates, MDSCs turning over slowly
    assert dep["mdsc"][0, 6] < 0.9 * base["mdsc"][0, 6]
    assert dep["mdsc"][0, 27] / base["mdsc"][0, 27] < 0.95 * dep["mdsc"][0, 6] / base["mdsc"][0, 6]
    assert dep["tcell_kill_per_day"][0, 5] > base["tcell_kill_per_day"][0, 5]


def test_chemo_mdsc_depletion_stays_within_what_patients_show():
    # docs/model.md 2.7: patients' MDSCs do not fall consistently on chemotherapy; a regimen with
    # the strongest MDSC depleter (5-FU) lowers the index modestly, not to a fraction of baseline
    times = np.array([0.0, 7.0, 42.0])
    res = chemoio.simulate("cisplatin 80 mg/m2 q3w x6; 5-fluorouracil 800 mg/m2/day d1-5 q3w x6",
                           tumor="esophageal", n=60, seed=3, times=times, observables=("mdsc",))
    ratio = np.median(res["mdsc"] / res["mdsc"][:, :1], axis=0)
    assert 0.6 < ratio[1] < 0.95  # first week: a dent, not a wipe-out (0.16, and 0.07 at week 6, with the old 0.8/day)
    assert ratio[2] > 0.4  # after two cycles (the index also follows the tumour burden)


def test_lymphotoxic_chemo_lowers_lymphocytes_and_primed_cells():
    sim = typical_input("gemcitabine 1000 mg/m2 d1,8 q3w x4", days=42, step=1.0,
                        observables=("lymphocytes", "primed_t"))
    base = run(sim)
    sim.slot_params[:, :, eq.S_LYMPHO] = 0.0
    none = run(sim)
    assert base["lymphocytes"][0].min() < 0.95
    assert none["lymphocytes"][0].min() == pytest.approx(1.0, abs=1e-6)


def test_pdl1_is_induced_by_pemetrexed_and_by_ifn():
    res = typical("pemetrexed 500 mg/m2 q3w x1", days=14, step=1.0, observables=("pdl1",))
    assert res["pdl1"][0, 1] > res["pdl1"][0, 0] * 1.2
    # anti-PD-1 reinvigorates effectors: IFN-gamma and with it PD-L1 rise in the first weeks
    ici = typical(PEMBRO, {"infiltration": 2.0}, days=42, observables=("pdl1", "ifn_signal"))
    assert ici["ifn_signal"][0, 1:].max() > ici["ifn_signal"][0, 0]
    assert ici["pdl1"][0, 1:].max() > ici["pdl1"][0, 0]


def test_ctla4_blockade_raises_priming_and_depletes_tregs():
    res = typical("ipilimumab 3 mg/kg q3w x4", days=84, observables=("primed_t", "treg", "ro_ctla4"))
    assert res["ro_ctla4"][0, 1] > 0.5
    assert res["primed_t"][0, -1] > 1.2 * res["primed_t"][0, 0]
    assert res["treg"][0, 6] < res["treg"][0, 0]


def test_states_stay_non_negative_under_extreme_treatment():
    strong = {"chemo_sensitivity": 50.0, "infiltration": 5.0, "kill_per_day": 5.0}
    res = typical(CHEMO + "; " + PEMBRO, [strong, NO_T_CELLS], days=364)
    assert np.all(res.status == 0)
    assert np.all(np.isfinite(res.values))
    assert np.all(res.values >= 0.0)


def test_memory_off_reproduces_the_model_without_the_memory_state():
    """With memory off (f_M = 0) the twelfth state is identically zero and is left out of the
    solver's error norm, so trajectories are those of the eleven-state model. The numbers are
    that model's (commit a7526f7), with the step-13 parameter set; a norm over all twelve
    states moved them by about 1e-5."""
    r = chemoio.simulate("pembrolizumab 200 mg q3w x35; carboplatin AUC5 q3w x4; gemcitabine 1000 mg/m2 d1,8 q3w x4",
                         "urothelial", parameters=ROOT / "docs" / "results" / "dor_cr" / "encounter.yaml",
                         n=12, seed=11, days=365, observables=("sld_mm", "effector_t", "memory_t"))
    eleven_state_sld_day_365 = [float.fromhex(h) for h in (
        "0x1.bbe8592eaf0a5p+0", "0x1.a4bf9517a5107p+7", "0x1.4292db61ad92fp+6", "0x1.d4741abf0ba39p+2",
        "0x1.b3006e06ae9abp+2", "0x1.47b77ec410128p+2", "0x1.16f1c0b69b10cp+3", "0x1.163fff6cf8f22p+3",
        "0x1.5b43ca3b37957p+6", "0x1.77fe592e21050p+5", "0x1.440dd6246794bp+5", "0x1.d515b5928d764p+0")]
    assert np.all(r["memory_t"] == 0.0)
    np.testing.assert_allclose(r["sld_mm"][:, -1], eleven_state_sld_day_365, rtol=1e-10, atol=0)
    np.testing.assert_allclose(np.abs(r["sld_mm"]).sum(), float.fromhex("0x1.7d6a29e9e2f8ep+14"), rtol=1e-10)
    np.testing.assert_allclose(np.abs(r["effector_t"]).sum(), float.fromhex("0x1.59fe218fa59cep+35"), rtol=1e-10)


def test_memory_t_cells_make_checkpoint_responses_last():
    """Memory CD8 T cells (2.4): off by default (the state stays 0); switched on, they are
    formed from the primed cells of a pembrolizumab response and recalled when the lesion
    regrows, so fewer responders progress within two years and complete responses are more
    frequent. The recall is driven by the tumour cells, so a patient without tumour has none."""
    from chemoio.model.parameters import shipped_parameter_set

    base = shipped_parameter_set()
    runs = {}
    for f_mem in (0.0, 0.05):
        r = chemoio.simulate("pembrolizumab 200 mg q3w x35", "urothelial", n=400, seed=3, days=730,
                             observables=("sld_mm", "memory_t"),
                             parameters={**base, "memory_fraction": f_mem,
                                         "memory_recall_half_max_cells": 1e7})
        sld = r["sld_mm"]
        nadir = sld.min(axis=1)
        responder = nadir <= 0.7 * sld[:, 0]
        after = np.arange(sld.shape[1]) > sld.argmin(axis=1)[:, None]
        regrown = ((sld >= 1.2 * nadir[:, None]) & (sld - nadir[:, None] >= 5) & after).any(axis=1)
        runs[f_mem] = (responder, regrown, nadir < 1.0, r["memory_t"])
    assert np.all(runs[0.0][3] == 0.0)
    assert np.median(runs[0.05][3][runs[0.05][0], -1]) > 1e5
    (resp0, prog0, cr0, _), (resp1, prog1, cr1, _) = runs[0.0], runs[0.05]
    assert resp0.sum() > 50 and resp1.sum() > 50
    assert prog1[resp1].mean() < prog0[resp0].mean() - 0.02
    assert cr1.mean() > cr0.mean()
    p = default_vector({"memory_fraction": 0.05})
    assert eq._memory_recall_per_day(p, 0.0) == 0.0
    assert eq._memory_recall_per_day(p, p[eq.P_CMEM50]) == pytest.approx(0.5 * p[eq.P_RMEM])


@pytest.mark.parametrize("bad, field", [
    ({"memory_fraction": 0.2, "memory_expansion": 10.0}, "memory_expansion"),  # f_M e_M = 2
    ({"memory_fraction": 0.1, "memory_expansion": 10.0}, "memory_expansion"),  # f_M e_M = 1
    ({"memory_fraction": 0.05, "memory_expansion": -1.0}, "memory_expansion"),
    ({"memory_fraction": -0.5}, "memory_fraction"),
    ({"memory_fraction": 0.05, "memory_death_per_day": -0.001}, "memory_death_per_day"),
    ({"memory_fraction": 0.05, "memory_recall_per_day": 0.0}, "memory_recall_per_day"),
    ({"memory_fraction": 0.05, "memory_recall_half_max_cells": -1e7}, "memory_recall_half_max_cells"),
])
def test_an_impossible_memory_compartment_is_refused_naming_the_field(bad, field):
    """A memory loop that sustains itself (f_M e_M >= 1), a negative share or expansion, and
    recall or loss rates that are not positive (the pool would grow without bound or the
    recall be singular) are refused, each naming its own field."""
    from chemoio.errors import ChemoioInputError
    from chemoio.population import parameter_matrix, sample_patients

    vp = sample_patients("urothelial", 5, 1)
    with pytest.raises(ChemoioInputError) as e:
        parameter_matrix(vp.params, "urothelial", bad)
    assert e.value.field == f"parameters.{field}"
    # with memory off the memory rates are not used, and are not checked
    parameter_matrix(vp.params, "urothelial", {"memory_fraction": 0.0, "memory_recall_per_day": 0.0})
