r"""The chemo-immunotherapy model: every equation, in one place (mirrors docs/model.md).

Time is in days. Cell numbers are in cells. Each block below names the section of
docs/model.md it implements.

Split of the model
------------------
* **Linear drug subsystem** (section 1): every drug "slot" is a linear 2-state system
  :math:`\dot x = A x + (u, 0)^T` — an antibody's central/peripheral amounts (mg) or a
  cytotoxic's plasma amount (mg) and effect-site concentration (mg/L). It has an exact
  solution, so the engine never integrates it numerically (:func:`lin2_at`).
  For a cytotoxic the second state is a K-PD effect site loaded by each dose (section 1.2).
* **Drive** (section 1.3): the drug quantities that act on the biology at time t —
  chemotherapy kill rates, immunomodulation exposures, receptor occupancies
  (:func:`drug_drive`).
* **Tumour-immune ODE** (sections 2.1-2.8), 12 states (:func:`rhs`); its initial value is
  the quasi-steady state at diagnosis (:func:`initial_state`, section 3).

The functions are numba-compiled; their pure-Python versions (``rhs.py_func``) give the
same numbers and are what the scipy reference solver uses.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from chemoio import _jit_cache  # noqa: F401  (cache keyed by this file's source)


# ----------------------------------------------------------------------------------------
# Parameter order. The engine receives a (n_patients, N_PARAMS) matrix in this order.
# (Kept here, beside the code that reads it, so a compiled cache can never disagree.)
# ----------------------------------------------------------------------------------------
PATIENT_ORDER = (
    "sld0_mm", "growth_per_day", "resistant_fraction0", "chemo_sensitivity",
    "infiltration", "antigenicity", "pdl1_tumour0", "mdsc0", "treg0", "kill_per_day",
    "cd8_per_tumour_cell0",
)
SHARED_ORDER = (
    "carrying_capacity_cells", "cell_volume_mL", "tcell_volume_mL", "cell_packing_fraction",
    "n_target_lesions", "spontaneous_death_per_day", "dead_cell_clearance_per_day",
    "resistance_mutation_per_day", "antigen_decay_per_day", "icd_fraction_tcell_kill",
    "icd_fraction_spontaneous", "antigen_half_max_cells_per_day", "dc_maturation_per_day",
    "dc_death_per_day", "priming_rate_cells_per_day", "ctla4_priming_gain",
    "primed_death_per_day", "infiltration_per_day", "infiltration_half_volume_mL",
    "mdsc_infiltration_block", "effector_death_per_day", "exhaustion_per_day",
    "exhaustion_half_max_cells", "reinvigoration_per_day", "exhausted_death_per_day",
    "kill_saturation_ratio", "mhc1_half_max", "pd1_engagement_half_max", "pdl2_engagement",
    "immune_pdl1_engagement", "ifn_half_max_cells", "pdl1_ifn_induction",
    "pdl1_turnover_per_day", "pdl1_chemo_induction_max", "mhc1_turnover_per_day",
    "mhc1_ifn_induction", "mhc1_chemo_induction_max", "treg_adcc_per_day",
    "treg_turnover_per_day", "mdsc_turnover_per_day", "suppressor_half_max_cells",
    "treg_depletion_max_per_day", "mdsc_depletion_max_per_day",
    "lymphotox_primed_max_per_day", "lymphotox_tumour_max_per_day",
    "lymphotox_precursor_max", "lymphocyte_transit_per_day", "lymphocyte_feedback",
    "chemo_potency_scale", "immune_refuge_cells", "stroma_remodel_per_day",
    "max_proliferation_per_day", "max_tcell_tumour_ratio", "kill_search_half_fraction",
    "chemo_proliferation_weight", "chemo_reference_proliferation_per_day",
    "resistant_sensitivity_scale", "chemo_icd_scale", "memory_fraction", "memory_death_per_day",
    "memory_recall_per_day", "memory_expansion", "memory_recall_half_max_cells",
)
PARAM_ORDER = PATIENT_ORDER + SHARED_ORDER

(
    P_SLD0, P_GROWTH, P_RESFRAC, P_CHEMOSENS, P_PSI, P_ANTIGEN, P_PDL1_0, P_MDSC0, P_TREG0,
    P_KCT, P_CD8RATIO0,
    P_K, P_VC, P_VT, P_PACK, P_NLES, P_DELTA0, P_KCLR, P_MURES, P_KG, P_FT, P_F0, P_G50,
    P_KMAT, P_KDCD, P_KPR, P_EPS4, P_DP, P_KINF, P_V50, P_AM, P_DE, P_KEX, P_KEXC, P_KRV,
    P_DX, P_KET, P_KH, P_B50, P_THL2, P_THIC, P_KI, P_RI, P_KP, P_PIMAX, P_KHT, P_HI,
    P_ETAMAX, P_KADCC, P_DR, P_DM, P_KSUP, P_KDEPR, P_KDEPM, P_LAMT, P_LAMLOC, P_LAML, P_KL,
    P_GAML, P_CHEMOSCALE, P_REFUGE, P_KSTR, P_LAMMAX, P_TCMAX, P_NSRCH,
    P_WNS, P_LAMREF, P_RHOSCALE, P_ICDSCALE, P_FMEM, P_DMEM, P_RMEM, P_EMEM, P_CMEM50,
) = range(len(PARAM_ORDER))

# ----------------------------------------------------------------------------------------
# State vector (section 2)
# ----------------------------------------------------------------------------------------
STATE_NAMES = (
    "ln_sensitive_cells", "ln_resistant_cells", "dead_cells", "primed_t", "effector_t",
    "exhausted_t", "treg", "mdsc", "lymphoid_precursors", "lymphocytes", "stroma_mL", "memory_t",
)
N_STATES = len(STATE_NAMES)
(Y_LNCS, Y_LNCR, Y_D, Y_TP, Y_TE, Y_TX, Y_R, Y_M, Y_LP, Y_L, Y_S, Y_TM) = range(N_STATES)

# ----------------------------------------------------------------------------------------
# Drug slots (section 1). Slot parameters: a (n_patients, n_slots, SLOT_WIDTH) array.
# ----------------------------------------------------------------------------------------
KIND_CHEMO, KIND_PD1, KIND_PDL1, KIND_CTLA4 = 0, 1, 2, 3
SLOT_WIDTH = 17
# common: 2x2 system matrix, its eigenvalues, and the share of each dose entering state b
S_A11, S_A12, S_A21, S_A22, S_L1, S_L2, S_BIN = 0, 1, 2, 3, 4, 5, 16
# chemotherapy
S_V, S_EMAX, S_EC50, S_RHO, S_ICD, S_TREG, S_MDSC, S_LYMPHO, S_PDL1, S_MHC1 = range(6, 16)
# antibody (S_V is V1)
S_MW, S_KD, S_PHIT, S_ADCC = 7, 8, 9, 10

# Drive vector (section 1.3)
N_DRIVE = 13
(
    DR_E_SENS, DR_E_RES, DR_ICD_SENS, DR_ICD_RES, DR_Y_TREG, DR_Y_MDSC, DR_Y_LYMPHO,
    DR_Y_PDL1, DR_Y_MHC1, DR_RO_PD1, DR_RO_PDL1, DR_RO_CTLA4, DR_ADCC_CTLA4,
) = range(N_DRIVE)

# Per-patient constants fixed at diagnosis (section 3)
N_AUX = 9
AUX_C0, AUX_LAMBDA, AUX_LNK, AUX_LNK_C0, AUX_V0, AUX_PHI_I0, AUX_CSUP0, AUX_S0, AUX_VGEO = range(
    N_AUX
)

# Observables the engine can return
OBSERVABLES = (
    "sld_mm", "tumor_cells", "resistant_fraction", "dead_cells", "antigen_signal",
    "mature_dc", "primed_t", "effector_t", "exhausted_t", "treg", "mdsc", "pdl1", "mhc1",
    "lymphocytes", "tcell_kill_per_day", "h_pd1", "ro_pd1", "ro_pdl1", "ro_ctla4",
    "chemo_kill_per_day", "ifn_signal", "tumor_volume_ml", "stroma_volume_ml", "viable_sld_mm",
    "kill_capacity_per_day", "infiltration_propensity", "memory_t",
)
N_OBS = len(OBSERVABLES)
OBS_CONC_BASE = 100  # observable id 100 + s = plasma concentration (mg/L) of slot s

# Drug amounts below this are exactly 0 (keeps every value out of the subnormal range).
TINY = 1e-200

# Extinction floor (section 2.1): below 0.1 cells a clone's decline is braked smoothly so
# that its log cell number levels off at 0.01 cells (eradication is absorbing). The brake is
# continuous with a continuous derivative, so the adaptive solver does not stall on it.
LN_EXTINCT = math.log(1e-2)

# Fixed-point iterations of the state at diagnosis (section 3). The iteration is monotone; with
# the shipped parameter set the effector T cells start at rest (|dT_E/dt| <= 1e-6 T_E per day)
# in 98.7-99.7 % of the patients of every tumour type (docs/model.md 3). The loop stops early once
# an iterate repeats bit for bit (the result is then the same as after all 200), so it runs at
# most this many iterations.
INIT_ITERATIONS = 200
# Bisection steps on a patient's infiltration propensity or killing capacity when a
# plausibility bound binds (section 3): each is found to 2^-30 of its sampled value.
PLAUSIBLE_BISECTIONS = 30
# Matching the drawn CD8 T cells per tumour cell at diagnosis (section 3): psi is bracketed by
# unit steps in ln(psi) from e^-6 times its drawn value (at most 14 down or 28 up), then found
# by bisection to 2^-20 = 1e-6 in ln(psi).
PSI_SEARCH_START = -6.0
PSI_SEARCH_STEPS = 14
PSI_BISECTIONS = 20
LN_EXTINCT_WIDTH = math.log(10.0)


# ========================================================================================
# 1. Linear drug subsystem (exact solution)
# ========================================================================================
@njit(cache=True, inline="always", error_model="numpy")
def lin2_at(sp, xa, xb, u, dt):
    r"""State of the linear 2-state drug system after ``dt`` days.

    .. math:: x(t_0+\Delta) = x_{ss} + e^{A\Delta}(x(t_0) - x_{ss}),\quad
              x_{ss} = -A^{-1}(u, w u)^T

    with :math:`e^{A\Delta} = [e^{\lambda_1\Delta}(A-\lambda_2 I) -
    e^{\lambda_2\Delta}(A-\lambda_1 I)]/(\lambda_1-\lambda_2)` (Sylvester), or
    :math:`e^{\lambda\Delta}(I + \Delta(A-\lambda I))` for equal eigenvalues.
    ``u`` is the zero-order input rate (mg/day) into the first state; a share
    ``w = sp[S_BIN]`` of it also enters the second (the K-PD effect site of a cytotoxic).
    """
    a11 = sp[S_A11]
    a12 = sp[S_A12]
    a21 = sp[S_A21]
    a22 = sp[S_A22]
    l1 = sp[S_L1]
    l2 = sp[S_L2]
    if u != 0.0:
        w = sp[S_BIN]
        det = a11 * a22 - a12 * a21
        ssa = -(a22 - a12 * w) * u / det
        ssb = (a21 - a11 * w) * u / det
    else:
        ssa = 0.0
        ssb = 0.0
    da = xa - ssa
    db = xb - ssb
    # exponents are clamped and negligible amounts flushed to exactly 0 so that no value ever
    # becomes subnormal: results then do not depend on a process's flush-to-zero setting
    e1 = math.exp(max(l1 * dt, -700.0))
    if abs(l1 - l2) > 1e-9 * (abs(l1) + abs(l2)):
        e2 = math.exp(max(l2 * dt, -700.0))
        c = 1.0 / (l1 - l2)
        m11 = c * (e1 * (a11 - l2) - e2 * (a11 - l1))
        m12 = c * (e1 - e2) * a12
        m21 = c * (e1 - e2) * a21
        m22 = c * (e1 * (a22 - l2) - e2 * (a22 - l1))
    else:
        m11 = e1 * (1.0 + dt * (a11 - l1))
        m12 = e1 * dt * a12
        m21 = e1 * dt * a21
        m22 = e1 * (1.0 + dt * (a22 - l1))
    ra = ssa + m11 * da + m12 * db
    rb = ssb + m21 * da + m22 * db
    if abs(ra) < TINY:
        ra = 0.0
    if abs(rb) < TINY:
        rb = 0.0
    return ra, rb


@njit(cache=True, error_model="numpy")
def pk_rhs(sp, xa, xb, u):
    """Right-hand side of the same linear drug system (used by reference solvers/tests)."""
    return (
        sp[S_A11] * xa + sp[S_A12] * xb + u,
        sp[S_A21] * xa + sp[S_A22] * xb + sp[S_BIN] * u,
    )


# ========================================================================================
# 1.3 Drive: what the drugs do to the biology at one instant
# ========================================================================================
@njit(cache=True, error_model="numpy")
def drug_drive(p, slot_kind, sp, xa, xb, drive):
    r"""Fill ``drive`` from the drug states ``xa, xb`` (one entry per slot).

    Cytotoxics (effect-site concentration :math:`C_e`, mg/L):
    :math:`Y_d = C_e/(C_e + EC_{50,d})`, kill rate :math:`E_d = s_{chemo} s_{pot} E_{max,d} Y_d`
    on sensitive cells and :math:`\rho_d E_d` on resistant cells, with
    :math:`\rho_d = \min(s_\rho\,\rho_{d,lib}, 1)` (``resistant_sensitivity_scale``); ICD input
    :math:`s_{ICD} f_{ICD,d} E_d` (:math:`s_{ICD}` = ``chemo_icd_scale``, 1 keeps the library's
    fractions); immunomodulation exposures :math:`\sum_d \delta_d Y_d`.

    Antibodies (central amount :math:`A_c`, mg): plasma nM
    :math:`C_p = 10^3 A_c/(V_1 \cdot MW_{kDa})`, tumour :math:`C_T = \phi_T C_p`,
    occupancy :math:`RO = C_T/(C_T + K_D)`; several antibodies on one target combine as
    :math:`1-\prod(1-RO_i)`.
    """
    for k in range(N_DRIVE):
        drive[k] = 0.0
    free_pd1 = 1.0
    free_pdl1 = 1.0
    free_ctla4 = 1.0
    sens = p[P_CHEMOSENS] * p[P_CHEMOSCALE]
    icd_scale = p[P_ICDSCALE]
    for s in range(slot_kind.size):
        q = sp[s]
        kind = slot_kind[s]
        if kind == KIND_CHEMO:
            ce = xb[s]
            if ce <= 0.0:
                continue
            y = ce / (ce + q[S_EC50])
            e = sens * q[S_EMAX] * y
            rho = min(q[S_RHO] * p[P_RHOSCALE], 1.0)
            drive[DR_E_SENS] += e
            drive[DR_E_RES] += rho * e
            drive[DR_ICD_SENS] += icd_scale * q[S_ICD] * e
            drive[DR_ICD_RES] += icd_scale * q[S_ICD] * rho * e
            drive[DR_Y_TREG] += q[S_TREG] * y
            drive[DR_Y_MDSC] += q[S_MDSC] * y
            drive[DR_Y_LYMPHO] += q[S_LYMPHO] * y
            drive[DR_Y_PDL1] += q[S_PDL1] * y
            drive[DR_Y_MHC1] += q[S_MHC1] * y
        else:
            a = xa[s]
            if a <= 0.0:
                continue
            c_t = q[S_PHIT] * 1.0e3 * a / (q[S_V] * q[S_MW])
            ro = c_t / (c_t + q[S_KD])
            if kind == KIND_PD1:
                free_pd1 *= 1.0 - ro
            elif kind == KIND_PDL1:
                free_pdl1 *= 1.0 - ro
            else:
                free_ctla4 *= 1.0 - ro
                drive[DR_ADCC_CTLA4] += q[S_ADCC] * ro
    drive[DR_RO_PD1] = 1.0 - free_pd1
    drive[DR_RO_PDL1] = 1.0 - free_pdl1
    drive[DR_RO_CTLA4] = 1.0 - free_ctla4


# ========================================================================================
# 2. Tumour-immune ODE
# ========================================================================================
@njit(cache=True, inline="always", error_model="numpy")
def _h_pd1(p, pdl1, phi_i, ro_pd1, ro_pdl1):
    r"""PD-1 engagement (section 2.6):
    :math:`B = (P + \theta_{IC}\phi_I)(1-RO_{L})(1-RO_{1}) + \theta_{L2}(1-RO_{1})`,
    :math:`H_{PD1} = B^2/(B^2 + B_{50}^2)`."""
    b = (pdl1 + p[P_THIC] * phi_i) * (1.0 - ro_pdl1) * (1.0 - ro_pd1) + p[P_THL2] * (
        1.0 - ro_pd1
    )
    b50 = p[P_B50]
    return b * b / (b * b + b50 * b50)


@njit(cache=True, inline="always", error_model="numpy")
def _phi_ifn(p, te, tx):
    """IFN-gamma signal, quasi-steady (section 2.6): phi_I = T/(T + K_I), T = T_E + 0.3 T_X."""
    t = te + 0.3 * tx
    return t / (t + p[P_KI])


@njit(cache=True, inline="always", error_model="numpy")
def _mhc_factor(p, h):
    """MHC-I factor m(H) = H (1 + K_H)/(H + K_H); equals 1 at baseline H = 1."""
    return h * (1.0 + p[P_KH]) / (h + p[P_KH])


@njit(cache=True, inline="always", error_model="numpy")
def _cellular_volume_mL(p, cells, dead, te, tx):
    """Volume of the cells in a lesion, V_cell = (C + D) v_c + (T_E + T_X) v_T (section 2.2)."""
    return (cells + dead) * p[P_VC] + (te + tx) * p[P_VT]


@njit(cache=True, inline="always", error_model="numpy")
def _stroma_target_mL(p, v_cell):
    """Stroma volume that fills the rest of a lesion at the packing fraction:
    S* = V_cell (1 - packing)/packing (section 2.2)."""
    return v_cell * (1.0 - p[P_PACK]) / p[P_PACK]


@njit(cache=True, inline="always", error_model="numpy")
def _proliferation_per_day(aux, c):
    r"""Gompertz proliferation per cell at C cells (1/day, section 2.1):
    :math:`\lambda\ln(K/C)/\ln(K/C_0)`."""
    return aux[AUX_LAMBDA] * max(aux[AUX_LNK] - math.log(c), 0.0) / aux[AUX_LNK_C0]


@njit(cache=True, inline="always", error_model="numpy")
def _chemo_cycle_factor(p, prolif):
    r"""Factor on every cytotoxic's kill (section 2.1, Norton-Simon): kill follows the
    tumour's proliferation, :math:`1 + w(\text{prolif}/\lambda_{ref} - 1)`; 1 when w = 0."""
    return 1.0 + p[P_WNS] * (prolif / p[P_LAMREF] - 1.0)


@njit(cache=True, inline="always", error_model="numpy")
def _search_cells(p, vol_mL):
    r"""Encounter-limited target scale (section 2.5): the number of viable tumour cells the
    lesion would hold at the half-maximal target fraction, :math:`C_{srch} = n_{50}V/v_c`
    (cells; V lesion volume in mL, v_c cell volume in mL)."""
    return p[P_NSRCH] * vol_mL / p[P_VC]


@njit(cache=True, inline="always", error_model="numpy")
def _kill(p, cells, vol_mL, te, treg, hpd1, hm, mh):
    """The kill rate of :func:`kill_rate` from its factors: PD-1 engagement ``hpd1``, MDSC
    suppression ``hm`` and the MHC-I factor ``mh`` (1/day)."""
    return (
        p[P_KCT] * te / (p[P_KET] * (cells + _search_cells(p, vol_mL)) + te + 1e-30)
        * cells / (cells + p[P_REFUGE]) / (1.0 + treg) * (1.0 - hpd1) * (1.0 - hm) * mh
    )


@njit(cache=True, error_model="numpy")
def kill_rate(p, cells, vol_mL, te, tx, treg, mdsc, pdl1, mhc1, ro_pd1, ro_pdl1):
    r"""CD8 kill rate per tumour cell (1/day), section 2.5:

    .. math:: k_{kill} = k_{CT}\,\frac{T_E}{K_{ET}(C + C_{srch}) + T_E}\,\frac{1}{1+R}\,
              (1-H_{PD1})(1-H_M)\,m(H),\qquad H_M = M/(1+M),\ C_{srch} = n_{50}V/v_c
    """
    phi_i = _phi_ifn(p, te, tx)
    hpd1 = _h_pd1(p, pdl1, phi_i, ro_pd1, ro_pdl1)
    return _kill(p, cells, vol_mL, te, treg, hpd1, mdsc / (1.0 + mdsc), _mhc_factor(p, mhc1))


@njit(cache=True, inline="always", error_model="numpy")
def _pdl1(p, aux, phi_i, drive):
    r"""Tumour PD-L1, quasi-steady (turnover 1/day, section 2.6):
    :math:`P = P_0\frac{1+r_I\phi_I}{1+r_I\phi_{I,0}} + \pi_{max}Y_{pdl1}`."""
    return p[P_PDL1_0] * (1.0 + p[P_RI] * phi_i) / (1.0 + p[P_RI] * aux[AUX_PHI_I0]) + p[
        P_PIMAX
    ] * drive[DR_Y_PDL1]


@njit(cache=True, inline="always", error_model="numpy")
def _antigen(p, cs, cr, kill, drive, fcyc):
    r"""Antigen/DAMP signal G, quasi-steady (decay 2/day, section 2.3), cells/day-equivalents:
    :math:`G = [\sum_d f_{ICD,d}E_d(C_s+\rho_dC_r) + (f_T k_{kill} + f_0\delta_0)C]/k_G`
    (E_d including the proliferation factor ``fcyc``)."""
    return (
        fcyc * drive[DR_ICD_SENS] * cs
        + fcyc * drive[DR_ICD_RES] * cr
        + (p[P_FT] * kill + p[P_F0] * p[P_DELTA0]) * (cs + cr)
    ) / p[P_KG]


@njit(cache=True, inline="always", error_model="numpy")
def _mhc1(p, aux, phi_i, drive):
    r"""MHC-I level relative to diagnosis, quasi-steady (surface turnover of hours;
    section 2.6): :math:`H = \frac{1+h_I\phi_I}{1+h_I\phi_{I,0}} + \eta_{max}Y_{mhc}`."""
    return (1.0 + p[P_HI] * phi_i) / (1.0 + p[P_HI] * aux[AUX_PHI_I0]) + p[P_ETAMAX] * drive[
        DR_Y_MHC1
    ]


@njit(cache=True, inline="always", error_model="numpy")
def _mature_dc(p, g):
    r"""Mature antigen-loaded DC fraction in the draining node, quasi-steady (maturation
    1.5/day and DC turnover 0.3/day are fast against clonal expansion, section 2.3):
    :math:`DC = \frac{k_{mat}\phi_G}{k_{mat}\phi_G + k_{DC}},\ \phi_G = G/(G+G_{50})`."""
    m = p[P_KMAT] * g / (g + p[P_G50])
    return m / (m + p[P_KDCD])


@njit(cache=True, inline="always", error_model="numpy")
def _memory_recall_per_day(p, c):
    r"""Recall rate of a memory CD8 T cell (1/day, section 2.4): memory cells meet the
    antigen on the tumour cells themselves, :math:`r_M\,C/(C + C_{M,50})`; 0 when the
    memory compartment is off (:math:`f_M = 0`)."""
    if p[P_FMEM] <= 0.0:
        return 0.0
    return p[P_RMEM] * c / (c + p[P_CMEM50])


@njit(cache=True, inline="always", error_model="numpy")
def _unpack(y):
    """Biological quantities from the state vector: cell numbers from their logs, other
    states clamped at 0 (lymphocytes at 1e-3, keeping the feedback L^-gamma finite):
    (C_s, C_r, C, D, T_P, T_E, T_X, R, M, L_p, L, S)."""
    cs = math.exp(y[Y_LNCS])
    cr = math.exp(y[Y_LNCR])
    return (cs, cr, cs + cr, max(y[Y_D], 0.0), max(y[Y_TP], 0.0), max(y[Y_TE], 0.0),
            max(y[Y_TX], 0.0), max(y[Y_R], 0.0), max(y[Y_M], 0.0), max(y[Y_LP], 0.0),
            max(y[Y_L], 1e-3), max(y[Y_S], 0.0))


@njit(cache=True, inline="always", error_model="numpy")
def _extinction_brake(ln_c):
    r"""Factor on a clone's falling log cell number (section 2.1):
    :math:`b = x^2(3-2x)`, :math:`x = \mathrm{clip}((\ln C - \ln 0.01)/\ln 10, 0, 1)`;
    1 above 0.1 cells, 0 at 0.01 cells."""
    x = (ln_c - LN_EXTINCT) / LN_EXTINCT_WIDTH
    if x >= 1.0:
        return 1.0
    if x <= 0.0:
        return 0.0
    return x * x * (3.0 - 2.0 * x)


@njit(cache=True, error_model="numpy")
def rhs(y, dy, p, aux, drive):
    r"""Time derivative of the 12 tumour-immune states (sections 2.1-2.8).

    Tumour (log cell numbers; :math:`C = C_s + C_r`; Gompertz normalised so the net
    untreated growth rate at diagnosis equals the patient's ``growth_per_day``):

    .. math::
        \dot{\ln C_s} &= \lambda\frac{\ln(K/C)}{\ln(K/C_0)} - \textstyle\sum_d E_d
                        - k_{kill} - \delta_0 - \mu\\
        \dot{\ln C_r} &= \lambda\frac{\ln(K/C)}{\ln(K/C_0)} - \textstyle\sum_d\rho_d E_d
                        - k_{kill} - \delta_0 + \mu C_s/C_r\\
        \dot D &= \textstyle\sum_d E_d(C_s + \rho_d C_r) + (k_{kill}+\delta_0)C - k_{clr}D

    where every cytotoxic kill :math:`E_d` carries the proliferation factor
    :math:`f_{cyc} = 1 + w(\lambda\ln(K/C)/\ln(K/C_0)/\lambda_{ref} - 1)` (Norton-Simon;
    w = 0 leaves it 1).

    Priming by mature DCs (quasi-steady in the antigen signal G, :func:`_mature_dc`),
    infiltration, exhaustion and reinvigoration:

    .. math::
        \dot T_P &= k_{pr}\bar A\, m(H)\, DC\, L\,\frac{1+\epsilon_4 RO_4}{1+R}
                    + e_M\rho(C)T_M - (k_{inf}+d_P)T_P - \lambda_T Y_{lym} T_P\\
        \dot T_E &= \psi k_{inf}T_P\frac{V}{V+V_{50}}(1-a_M H_M) - d_E T_E - x T_E + v T_X
                    - \lambda_{loc}Y_{lym}T_E\\
        \dot T_X &= x T_E - v T_X - d_X T_X,\quad x = k_{ex}H_{PD1}\frac{C}{C+K_{ex}},\
                    v = k_{rv}(1-H_{PD1})\\
        \dot T_M &= f_M(k_{inf}+d_P)T_P - d_{TM}T_M - \rho(C)T_M,\quad
                    \rho(C) = r_M\frac{C}{C+C_{M50}}\ (0\text{ when } f_M = 0)

    Suppressors and lymphocytes (R, M relative indices):

    .. math::
        \dot R &= d_R(R_0 c(C) - R) - k_{dep,R}Y_{treg}R - k_{ADCC}\,a\,RO_4 R\\
        \dot M &= d_M(M_0 c(C) - M) - k_{dep,M}Y_{mdsc}M,\quad
                  c(C) = \frac{C/(C+K_s)}{C_0/(C_0+K_s)}\\
        \dot L_p &= k_L L_p\Big(\frac{L^{-\gamma}}{1+\lambda_L Y_{lym}} - 1\Big),\quad
        \dot L = k_L(L_p - L)

    Stroma (residual mass, mL), laid down in proportion to the cells and remodelled at
    :math:`k_{str}`; the lesion volume is :math:`V = V_{cell} + S`. Production keeps pace
    with untreated growth (g = ``growth_per_day``), so an untreated lesion keeps the packing
    fraction :math:`\phi`:

    .. math::
        \dot S = (k_{str} + g)\,V_{cell}\frac{1-\phi}{\phi} - k_{str}S,\quad
        V_{cell} = (C + D)v_c + (T_E + T_X)v_T
    """
    cs, cr, c, dead, tp, te, tx, treg, mdsc, lp, lym, stroma = _unpack(y)

    ro_pd1 = drive[DR_RO_PD1]
    ro_pdl1 = drive[DR_RO_PDL1]
    ro_ctla4 = drive[DR_RO_CTLA4]
    y_lym = drive[DR_Y_LYMPHO]

    # 2.1 growth (Gompertz, normalised at diagnosis)
    growth = _proliferation_per_day(aux, c)
    # 2.5/2.6 killing, with quasi-steady IFN-gamma, PD-L1 and MHC-I
    phi_i = _phi_ifn(p, te, tx)
    pdl1 = _pdl1(p, aux, phi_i, drive)
    mhc1 = _mhc1(p, aux, phi_i, drive)
    hpd1 = _h_pd1(p, pdl1, phi_i, ro_pd1, ro_pdl1)
    hm = mdsc / (1.0 + mdsc)
    mh = _mhc_factor(p, mhc1)
    v_cell = _cellular_volume_mL(p, c, dead, te, tx)
    vol = v_cell + stroma  # lesion volume, mL
    kill = _kill(p, c, vol, te, treg, hpd1, hm, mh)
    delta0 = p[P_DELTA0]
    fcyc = _chemo_cycle_factor(p, growth)
    e_s = fcyc * drive[DR_E_SENS]
    e_r = fcyc * drive[DR_E_RES]

    dy[Y_LNCS] = growth - e_s - kill - delta0 - p[P_MURES]
    dy[Y_LNCR] = growth - e_r - kill - delta0 + p[P_MURES] * cs / cr
    if dy[Y_LNCS] < 0.0:
        dy[Y_LNCS] *= _extinction_brake(y[Y_LNCS])
    if dy[Y_LNCR] < 0.0:
        dy[Y_LNCR] *= _extinction_brake(y[Y_LNCR])
    dy[Y_D] = e_s * cs + e_r * cr + (kill + delta0) * c - p[P_KCLR] * dead

    # 2.3 immunogenic cell death -> antigen/DAMP signal -> mature DCs (quasi-steady)
    g = _antigen(p, cs, cr, kill, drive, fcyc)
    dc = _mature_dc(p, g)

    # 2.4 priming, infiltration, exhaustion and reinvigoration
    priming = (
        p[P_KPR] * p[P_ANTIGEN] * mh * dc * lym * (1.0 + p[P_EPS4] * ro_ctla4) / (1.0 + treg)
    )
    # memory CD8 T cells: a share f_M of the cells leaving the primed pool, recalled by the
    # tumour cells into the primed pool with expansion e_M (f_M e_M < 1)
    tm = max(y[Y_TM], 0.0)
    recall = _memory_recall_per_day(p, c) * tm
    dy[Y_TP] = priming + p[P_EMEM] * recall - (p[P_KINF] + p[P_DP]) * tp - p[P_LAMT] * y_lym * tp
    influx = p[P_PSI] * p[P_KINF] * tp * vol / (vol + p[P_V50]) * (1.0 - p[P_AM] * hm)
    x = p[P_KEX] * hpd1 * c / (c + p[P_KEXC])
    v = p[P_KRV] * (1.0 - hpd1)
    dy[Y_TE] = influx - p[P_DE] * te - x * te + v * tx - p[P_LAMLOC] * y_lym * te
    dy[Y_TX] = x * te - v * tx - p[P_DX] * tx
    dy[Y_TM] = p[P_FMEM] * (p[P_KINF] + p[P_DP]) * tp - p[P_DMEM] * tm - recall

    # 2.7 Tregs and MDSCs (relative indices), chemotherapy depletion, anti-CTLA-4 ADCC
    csup = c / (c + p[P_KSUP]) / aux[AUX_CSUP0]
    dy[Y_R] = (
        p[P_DR] * (p[P_TREG0] * csup - treg)
        - p[P_KDEPR] * drive[DR_Y_TREG] * treg
        - p[P_KADCC] * drive[DR_ADCC_CTLA4] * treg
    )
    dy[Y_M] = p[P_DM] * (p[P_MDSC0] * csup - mdsc) - p[P_KDEPM] * drive[DR_Y_MDSC] * mdsc

    # 2.8 circulating lymphocytes (Friberg-type feedback), lymphotoxic chemotherapy
    kl = p[P_KL]
    dy[Y_LP] = kl * lp * (lym ** (-p[P_GAML]) / (1.0 + p[P_LAML] * y_lym) - 1.0)
    dy[Y_L] = kl * (lp - lym)

    # 2.2 stroma / residual mass: laid down with the cells, remodelled at k_str
    dy[Y_S] = (p[P_KSTR] + p[P_GROWTH]) * _stroma_target_mL(p, v_cell) - p[P_KSTR] * stroma


# ========================================================================================
# 3. State at diagnosis
# ========================================================================================
@njit(cache=True, error_model="numpy")
def _diagnosis_fixed_point(p):
    """Immune loop at the diagnosed size, solved by fixed-point iteration (section 3).

    Returns (viable cells, dead cells, primed, effector and exhausted T cells, the T-cell
    kill rate of the returned state in 1/day, lesion geometric volume in mL)."""
    nles = p[P_NLES]
    d_cm = p[P_SLD0] / nles / 10.0
    vgeo = nles * math.pi / 6.0 * d_cm * d_cm * d_cm  # mL
    c0 = vgeo * p[P_PACK] / p[P_VC]
    treg = p[P_TREG0]
    mdsc = p[P_MDSC0]
    hm = mdsc / (1.0 + mdsc)
    te = 0.0
    tx = 0.0
    tp = 0.0
    tm = 0.0
    dead = 0.0
    kill = 0.0
    for _ in range(INIT_ITERATIONS):
        c_prev, te_prev, tx_prev = c0, te, tx
        phi_i = _phi_ifn(p, te, tx)
        kill = kill_rate(p, c0, vgeo, te, tx, treg, mdsc, p[P_PDL1_0], 1.0, 0.0, 0.0)
        hpd1 = _h_pd1(p, p[P_PDL1_0], phi_i, 0.0, 0.0)
        # viable and dead cells share the packed room left by the T cells, with dead cells at
        # their balance (k + delta0) C0 / k_clr: C0 (1 + (k + delta0)/k_clr) = room. Solving the
        # two together keeps the iteration monotone (updating C0 from the previous D made it
        # cycle between an immune-hot and an immune-cold state for a fifth to a third of patients).
        room = max((vgeo * p[P_PACK] - (te + tx) * p[P_VT]) / p[P_VC], 1.0)
        c0 = max(room / (1.0 + (kill + p[P_DELTA0]) / p[P_KCLR]), 1.0)
        dead = (kill + p[P_DELTA0]) * c0 / p[P_KCLR]
        g = c0 * (p[P_FT] * kill + p[P_F0] * p[P_DELTA0]) / p[P_KG]
        dc = _mature_dc(p, g)
        primed_in = p[P_KPR] * p[P_ANTIGEN] * dc / (1.0 + treg)  # naive priming, cells/day
        # memory (2.4): a share f_M of the cells leaving the primed pool, recalled at rho;
        # at rest the recall returns q of the pool's outflow, q = e_M f_M rho/(d_TM + rho) < 1
        rec = _memory_recall_per_day(p, c0)
        q = p[P_EMEM] * p[P_FMEM] * rec / (p[P_DMEM] + rec)
        tp = primed_in / ((p[P_KINF] + p[P_DP]) * (1.0 - q))
        tm = p[P_FMEM] * (p[P_KINF] + p[P_DP]) * tp / (p[P_DMEM] + rec)
        vol = _cellular_volume_mL(p, c0, dead, te, tx) / p[P_PACK]
        influx = p[P_PSI] * p[P_KINF] * tp * vol / (vol + p[P_V50]) * (1.0 - p[P_AM] * hm)
        x = p[P_KEX] * hpd1 * c0 / (c0 + p[P_KEXC])
        v = p[P_KRV] * (1.0 - hpd1)
        te = influx / (p[P_DE] + x - v * x / (v + p[P_DX]))
        tx = x * te / (v + p[P_DX])
        if c0 == c_prev and te == te_prev and tx == tx_prev:
            break  # (C0, T_E, T_X) determine the next iterate: it has stopped changing bit for bit
    # the kill rate of the state actually returned (not of the previous iterate), so that the
    # net untreated growth at diagnosis is growth_per_day whether or not the loop has settled
    room = max((vgeo * p[P_PACK] - (te + tx) * p[P_VT]) / p[P_VC], 1.0)
    kill = kill_rate(p, c0, vgeo, te, tx, treg, mdsc, p[P_PDL1_0], 1.0, 0.0, 0.0)
    c0 = max(room / (1.0 + (kill + p[P_DELTA0]) / p[P_KCLR]), 1.0)
    dead = (kill + p[P_DELTA0]) * c0 / p[P_KCLR]
    kill = kill_rate(p, c0, vgeo, te, tx, treg, mdsc, p[P_PDL1_0], 1.0, 0.0, 0.0)
    return c0, dead, tp, te, tx, kill, vgeo, tm


BOUND_TCELLS, BOUND_PROLIFERATION = 0, 1


@njit(cache=True, inline="always", error_model="numpy")
def _breaks_bound(which, p, c0, te, tx, kill):
    r"""Whether a state at diagnosis breaks plausibility bound ``which`` (section 3):
    more than ``max_tcell_tumour_ratio`` CD8 T cells per viable tumour cell, or an intrinsic
    proliferation :math:`g + k_{kill} + \delta_0` above ``max_proliferation_per_day``."""
    if which == BOUND_TCELLS:
        return te + tx > p[P_TCMAX] * c0
    return kill > p[P_LAMMAX] - p[P_GROWTH] - p[P_DELTA0]


@njit(cache=True, error_model="numpy")
def _lower_until_plausible(p, k, which):
    """Lower ``p[k]`` by bisection on a multiplier in [0, 1] (``PLAUSIBLE_BISECTIONS``
    steps) to the largest value whose state at diagnosis meets bound ``which``."""
    base = p[k]
    lo = 0.0
    hi = 1.0
    for _ in range(PLAUSIBLE_BISECTIONS):
        mid = 0.5 * (lo + hi)
        p[k] = base * mid
        c0, dead, tp, te, tx, kill, vgeo, tm = _diagnosis_fixed_point(p)
        if _breaks_bound(which, p, c0, te, tx, kill):
            hi = mid
        else:
            lo = mid
    p[k] = base * lo


@njit(cache=True, error_model="numpy")
def _cd8_ratio_at(p, base, ln_mult):
    """(T_E + T_X)/C_0 at diagnosis with psi = base * exp(ln_mult) (sets ``p[P_PSI]``)."""
    p[P_PSI] = base * math.exp(ln_mult)
    c0, dead, tp, te, tx, kill, vgeo, tm = _diagnosis_fixed_point(p)
    return (te + tx) / c0


@njit(cache=True, error_model="numpy")
def _match_cd8_ratio(p, target):
    r"""Set ``p[P_PSI]`` so that the state at diagnosis holds ``target`` CD8 T cells
    (:math:`T_E + T_X`) per viable tumour cell (section 3).

    The ratio grows with :math:`\psi`, with a jump where the immune loop switches from its
    cold to its hot branch; far above the target, where T cells crowd out the tumour cells,
    the fixed-point iteration fails. The search therefore starts below the drawn value
    (``PSI_SEARCH_START`` in :math:`\ln\psi`), steps down while the ratio is above the
    target, or else up in unit steps until it first passes the target (never beyond it),
    then bisects (``PSI_BISECTIONS`` steps). A target inside the jump ends at the jump; one
    out of reach ends at the end of the range."""
    base = p[P_PSI]
    lo = PSI_SEARCH_START
    hi = PSI_SEARCH_START
    if _cd8_ratio_at(p, base, PSI_SEARCH_START) > target:
        for _ in range(PSI_SEARCH_STEPS):
            lo -= 1.0
            if _cd8_ratio_at(p, base, lo) <= target:
                break
        hi = lo + 1.0
    else:
        for _ in range(2 * PSI_SEARCH_STEPS):
            hi += 1.0
            if _cd8_ratio_at(p, base, hi) > target:
                break
        lo = hi - 1.0
    for _ in range(PSI_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if _cd8_ratio_at(p, base, mid) > target:
            hi = mid
        else:
            lo = mid
    p[P_PSI] = base * math.exp(0.5 * (lo + hi))


@njit(cache=True, error_model="numpy")
def initial_state(p, y, aux):
    r"""Quasi-steady immune state at diagnosis for the patient's tumour size (section 3).

    The baseline SLD maps to a geometric volume of ``n_target_lesions`` equal spheres;
    viable cells fill it net of dead cells and T cells. The immune loop
    (kill -> antigen -> DC -> priming -> effectors -> kill) is solved by fixed-point
    iteration with the tumour held at its diagnosed size. The intrinsic growth rate is
    then set so that the *net* untreated growth at diagnosis equals ``growth_per_day``:
    :math:`\lambda = g + k_{kill,0} + \delta_0`.

    Measured immune contexture and plausibility (section 3), applied in turn by bisection
    on one per-patient parameter each (modified in place):

    1. the tumour-reactive CD8 T cells in the tumour, :math:`r_0 = (T_E + T_X)/C_0`, are
       set to :math:`A\,r_{CD8}`: the patient's drawn CD8 T cells per tumour cell
       ``cd8_per_tumour_cell0`` (all CD8 cells, bystanders included; capped at
       ``max_tcell_tumour_ratio``) times the tumour-reactive share, taken to be the
       antigenicity :math:`A`, by solving for the infiltration propensity :math:`\psi`
       (``p[P_PSI]``). With
       ``cd8_per_tumour_cell0 = 0`` the drawn :math:`\psi` is kept and only lowered where
       :math:`r_0` would exceed ``max_tcell_tumour_ratio``;
    2. :math:`\lambda` may not exceed ``max_proliferation_per_day``: where the immune
       state would need more, the killing capacity :math:`k_{CT}` (``p[P_KCT]``) is lowered
       (with a drawn :math:`r_0`, first in proportion and with :math:`\psi` matched again,
       then by bisection for what is left).

    Every virtual patient keeps its diagnosed net growth. (A proliferation bound below
    :math:`g + \delta_0` cannot be met; :func:`chemoio.population.parameter_matrix`
    refuses one.)
    """
    # measured CD8 T cells count bystanders too; the tumour-reactive share is the patient's
    # antigenicity (section 3)
    target = min(p[P_CD8RATIO0], p[P_TCMAX]) * p[P_ANTIGEN]
    if target > 0.0:
        _match_cd8_ratio(p, target)
        c0, dead, tp, te, tx, kill, vgeo, tm = _diagnosis_fixed_point(p)
        kill_max = p[P_LAMMAX] - p[P_GROWTH] - p[P_DELTA0]
        if kill > kill_max and kill > 0.0:
            # at a given state the kill rate is proportional to k_CT: scale it to the bound,
            # then match the drawn T cells again (the state moves little, the bisection below
            # takes up what is left)
            p[P_KCT] *= kill_max / kill
            _match_cd8_ratio(p, target)
            c0, dead, tp, te, tx, kill, vgeo, tm = _diagnosis_fixed_point(p)
    else:
        c0, dead, tp, te, tx, kill, vgeo, tm = _diagnosis_fixed_point(p)
        if _breaks_bound(BOUND_TCELLS, p, c0, te, tx, kill):
            _lower_until_plausible(p, P_PSI, BOUND_TCELLS)
            c0, dead, tp, te, tx, kill, vgeo, tm = _diagnosis_fixed_point(p)
    if _breaks_bound(BOUND_PROLIFERATION, p, c0, te, tx, kill):
        _lower_until_plausible(p, P_KCT, BOUND_PROLIFERATION)
        c0, dead, tp, te, tx, kill, vgeo, tm = _diagnosis_fixed_point(p)
    treg = p[P_TREG0]
    mdsc = p[P_MDSC0]
    fr = min(max(p[P_RESFRAC], 1e-9), 1.0 - 1e-9)
    y[Y_LNCS] = math.log(c0 * (1.0 - fr))
    y[Y_LNCR] = math.log(c0 * fr)
    y[Y_D] = dead
    y[Y_TP] = tp
    y[Y_TE] = te
    y[Y_TX] = tx
    y[Y_TM] = tm
    y[Y_R] = treg
    y[Y_M] = mdsc
    y[Y_LP] = 1.0
    y[Y_L] = 1.0
    v_cell0 = _cellular_volume_mL(p, c0, dead, te, tx)
    y[Y_S] = _stroma_target_mL(p, v_cell0)
    lnk = math.log(p[P_K])
    aux[AUX_C0] = c0
    aux[AUX_LAMBDA] = p[P_GROWTH] + kill + p[P_DELTA0]
    aux[AUX_LNK] = lnk
    aux[AUX_LNK_C0] = max(lnk - math.log(c0), 1e-3)
    aux[AUX_V0] = v_cell0 + y[Y_S]
    aux[AUX_PHI_I0] = _phi_ifn(p, te, tx)
    aux[AUX_CSUP0] = c0 / (c0 + p[P_KSUP])
    aux[AUX_S0] = p[P_SLD0]
    aux[AUX_VGEO] = vgeo


@njit(cache=True, error_model="numpy")
def project_to_diagnosis(p):
    r"""Apply section 3's matching and plausibility bounds to a parameter row once, in place.

    On return ``p`` holds the solved :math:`\psi` and the (possibly lowered) :math:`k_{CT}`,
    with ``cd8_per_tumour_cell0 = 0`` and both bounds (``max_tcell_tumour_ratio``,
    ``max_proliferation_per_day``) set to infinity: :func:`initial_state` of the returned row
    then solves the fixed point once (instead of the 25-33 solves of the search) and returns
    the state of the original row bit for bit, because its last solve used these same
    :math:`\psi` and :math:`k_{CT}` and the three entries changed are read only by the search
    and the bounds. A trial projects its patients once and reuses the rows for every pass.
    """
    y = np.empty(N_STATES)
    aux = np.empty(N_AUX)
    initial_state(p, y, aux)
    p[P_CD8RATIO0] = 0.0
    p[P_TCMAX] = math.inf
    p[P_LAMMAX] = math.inf


# ========================================================================================
# 4. Observables
# ========================================================================================
@njit(cache=True, error_model="numpy")
def observable(k, y, p, aux, drive):
    """Value of observable ``k`` (index into OBSERVABLES) at state ``y``."""
    cs, cr, c, dead, tp, te, tx, treg, mdsc, lp, lym, stroma = _unpack(y)
    phi_i = _phi_ifn(p, te, tx)
    pdl1 = _pdl1(p, aux, phi_i, drive)
    mhc1 = _mhc1(p, aux, phi_i, drive)
    if k == 24:
        # the patient's killing capacity k_CT after the plausibility bound (section 3)
        return p[P_KCT]
    if k == 25:
        # the patient's infiltration propensity psi after the T-cell bound (section 3)
        return p[P_PSI]
    if k == 22:
        return stroma
    if k == 26:
        return max(y[Y_TM], 0.0)
    if k == 23:
        # viable burden as an SLD: S0 (C/C0)^(1/3), without dead cells and residual mass
        return aux[AUX_S0] * (c / aux[AUX_C0]) ** (1.0 / 3.0)
    if k == 0 or k == 21:
        vol = _cellular_volume_mL(p, c, dead, te, tx) + stroma
        if k == 21:
            return vol
        return aux[AUX_S0] * (vol / aux[AUX_V0]) ** (1.0 / 3.0)
    if k == 1:
        return c
    if k == 2:
        return cr / c
    if k == 3:
        return dead
    vol = _cellular_volume_mL(p, c, dead, te, tx) + stroma
    kill = kill_rate(p, c, vol, te, tx, treg, mdsc, pdl1, mhc1, drive[DR_RO_PD1],
                     drive[DR_RO_PDL1])
    fcyc = _chemo_cycle_factor(p, _proliferation_per_day(aux, c))
    if k == 4:
        return _antigen(p, cs, cr, kill, drive, fcyc)
    if k == 5:
        return _mature_dc(p, _antigen(p, cs, cr, kill, drive, fcyc))
    if k == 6:
        return tp
    if k == 7:
        return te
    if k == 8:
        return tx
    if k == 9:
        return treg
    if k == 10:
        return mdsc
    if k == 11:
        return pdl1
    if k == 12:
        return mhc1
    if k == 13:
        return max(y[Y_L], 0.0)
    if k == 14:
        return kill
    if k == 15:
        return _h_pd1(p, pdl1, phi_i, drive[DR_RO_PD1], drive[DR_RO_PDL1])
    if k == 16:
        return drive[DR_RO_PD1]
    if k == 17:
        return drive[DR_RO_PDL1]
    if k == 18:
        return drive[DR_RO_CTLA4]
    if k == 19:
        return fcyc * drive[DR_E_SENS]
    if k == 20:
        return phi_i
    return math.nan


def slot_matrix_chemo(k_e_per_day: float, ke0_per_day: float) -> np.ndarray:
    """System matrix of a cytotoxic slot: states (plasma amount mg, effect-site exposure
    mg/L); the two are driven by the same doses and otherwise decoupled (K-PD)."""
    return np.array([[-k_e_per_day, 0.0], [0.0, -ke0_per_day]])


def slot_matrix_antibody(cl: float, v1: float, q: float, v2: float) -> np.ndarray:
    """System matrix of an antibody slot: states (central mg, peripheral mg); L, L/day."""
    return np.array([[-(cl + q) / v1, q / v2], [q / v1, -q / v2]])
