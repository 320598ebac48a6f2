r"""Drug slots: turn library drugs and patient covariates into the engine's slot arrays.

Every drug of a regimen occupies one *slot* (docs/model.md section 1): a linear 2-state
system plus the drug's pharmacodynamic constants.

* Antibody: two-compartment PK, states (central mg, peripheral mg);
  CL and V scale with body weight (allometry, reference 75 kg) and carry log-normal
  between-patient variability.
* Cytotoxic: states (plasma amount mg, effect-site exposure mg/L). Plasma follows
  one-compartment PK (reported as a concentration). The effect site is a K-PD link
  (Jacobs 2008): each dose D loads it by :math:`D\,k_{e0}/CL` and it decays at
  :math:`k_{e0}`, so its integral equals the plasma AUC (D/CL) whatever the plasma
  half-life, without the hours-long plasma transient that would limit the solver's step
  (docs/model.md section 1.2). CL scales with BSA (reference 1.8 m2) or with GFR
  (carboplatin, Calvert: CL = GFR + 25 mL/min) and varies log-normally.

Potency is stored in the library in readable form (natural-log kill of sensitive cells by
one reference dose :math:`L_{ref}`); :func:`chemo_potency` turns it into
:math:`EC_{50} = D_{ref}k_{e0}/CL_{ref}` (the effect-site peak of the reference dose in
the reference patient) and :math:`E_{max} = L_{ref}k_{e0}/\ln 2`, because
:math:`\int_0^\infty \frac{e^{-k_{e0}t}}{1+e^{-k_{e0}t}}dt = \ln 2/k_{e0}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chemoio.drugs.schema import Drug
from chemoio.model import equations as eq

REFERENCE_WEIGHT_KG = 75.0
REFERENCE_BSA_M2 = 1.8
REFERENCE_GFR_ML_MIN = 100.0
CALVERT_GFR_CAP_ML_MIN = 125.0

KIND_CODE = {
    "chemotherapy": eq.KIND_CHEMO,
    "anti-pd-1": eq.KIND_PD1,
    "anti-pd-l1": eq.KIND_PDL1,
    "anti-ctla-4": eq.KIND_CTLA4,
}


def calvert_dose_mg(auc_mg_min_per_mL: np.ndarray | float, gfr_mL_min: np.ndarray | float):
    """Carboplatin dose (mg) = AUC x (GFR + 25), GFR capped at 125 mL/min (Calvert 1989)."""
    return np.asarray(auc_mg_min_per_mL) * (
        np.minimum(np.asarray(gfr_mL_min, dtype=float), CALVERT_GFR_CAP_ML_MIN) + 25.0
    )


def reference_dose_mg(drug: Drug) -> float:
    """The library's reference dose of a cytotoxic, in mg, for the reference patient."""
    ref = drug.chemo_pd.reference_dose
    unit = ref.unit.replace(" ", "")
    if unit in ("mg/m2", "mg/m^2"):
        return ref.value * REFERENCE_BSA_M2
    if unit == "mg/kg":
        return ref.value * REFERENCE_WEIGHT_KG
    if unit.upper().startswith("AUC") or unit in ("mg*min/mL", "mg.min/mL", "mg/mL*min"):
        return float(calvert_dose_mg(ref.value, REFERENCE_GFR_ML_MIN))
    return ref.value


@dataclass(frozen=True)
class ChemoPotency:
    k_e_per_day: float
    v_L: float
    ke0_per_day: float
    emax_per_day: float
    ec50_mg_per_L: float


def chemo_potency(drug: Drug) -> ChemoPotency:
    """Typical PK and the derived E_max (1/day) and EC50 (mg/L) of a cytotoxic."""
    pk, pd = drug.chemo_pk, drug.chemo_pd
    v = pk.v_L.value
    cl_day = pk.cl_L_per_h.value * 24.0
    ke0 = pd.k_effect_per_day.value
    ec50 = reference_dose_mg(drug) * ke0 / cl_day
    emax = pd.log_kill_per_reference_dose.value * ke0 / math.log(2.0)
    return ChemoPotency(cl_day / v, v, ke0, emax, ec50)


def _eigen(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of a stack of 2x2 matrices (..., 2, 2); real for our PK systems."""
    tr = a[..., 0, 0] + a[..., 1, 1]
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    disc = np.sqrt(np.maximum(tr * tr / 4.0 - det, 0.0))
    return tr / 2.0 + disc, tr / 2.0 - disc


def build_slots(
    drugs: list[Drug],
    weight_kg: np.ndarray,
    bsa_m2: np.ndarray,
    gfr_mL_min: np.ndarray,
    eta: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Slot kinds (n_slots,) and per-patient slot parameters (n, n_slots, SLOT_WIDTH).

    ``eta`` (n, n_slots, 2) holds standard-normal draws for the two PK random effects of
    each slot (CL and V1 for antibodies; CL and unused for cytotoxics); zeros = typical.
    """
    n = len(weight_kg)
    n_slots = len(drugs)
    kinds = np.array([KIND_CODE[d.kind] for d in drugs], dtype=np.int64)
    sp = np.zeros((n, n_slots, eq.SLOT_WIDTH))
    if eta is None:
        eta = np.zeros((n, n_slots, 2))
    w = np.asarray(weight_kg, dtype=float)
    for s, drug in enumerate(drugs):
        a = np.zeros((n, 2, 2))
        if drug.is_antibody:
            pk, pd = drug.antibody_pk, drug.antibody_pd
            wr = w / REFERENCE_WEIGHT_KG
            cl = pk.cl_L_per_day.value * wr ** pk.wt_exponent_cl.value * np.exp(
                pk.omega_cl.value * eta[:, s, 0]
            )
            v1 = pk.v1_L.value * wr ** pk.wt_exponent_v.value * np.exp(
                pk.omega_v1.value * eta[:, s, 1]
            )
            q = np.full(n, pk.q_L_per_day.value)
            v2 = pk.v2_L.value * wr ** pk.wt_exponent_v.value
            a[:, 0, 0] = -(cl + q) / v1
            a[:, 0, 1] = q / v2
            a[:, 1, 0] = q / v1
            a[:, 1, 1] = -q / v2
            sp[:, s, eq.S_V] = v1
            sp[:, s, eq.S_MW] = pk.mw_kDa.value
            sp[:, s, eq.S_KD] = pd.kd_nM.value
            sp[:, s, eq.S_PHIT] = pd.tumour_to_plasma.value
            sp[:, s, eq.S_ADCC] = pd.adcc.value
        else:
            pot = chemo_potency(drug)
            pk, im = drug.chemo_pk, drug.immunomodulation
            if pk.cl_scales_with == "bsa":
                scale = np.asarray(bsa_m2, dtype=float) / REFERENCE_BSA_M2
            elif pk.cl_scales_with == "gfr":
                g = np.minimum(np.asarray(gfr_mL_min, dtype=float), CALVERT_GFR_CAP_ML_MIN)
                scale = (g + 25.0) / (REFERENCE_GFR_ML_MIN + 25.0)
            else:
                scale = np.ones(n)
            cl_day = pot.k_e_per_day * pot.v_L * scale * np.exp(pk.omega_cl.value * eta[:, s, 0])
            a[:, 0, 0] = -cl_day / pot.v_L
            a[:, 1, 1] = -pot.ke0_per_day
            sp[:, s, eq.S_BIN] = pot.ke0_per_day / cl_day
            sp[:, s, eq.S_V] = pot.v_L
            sp[:, s, eq.S_EMAX] = pot.emax_per_day
            sp[:, s, eq.S_EC50] = pot.ec50_mg_per_L
            sp[:, s, eq.S_RHO] = drug.chemo_pd.resistant_sensitivity.value
            sp[:, s, eq.S_ICD] = im.icd_fraction.value
            sp[:, s, eq.S_TREG] = im.treg_depletion.value
            sp[:, s, eq.S_MDSC] = im.mdsc_depletion.value
            sp[:, s, eq.S_LYMPHO] = im.lymphotoxicity.value
            sp[:, s, eq.S_PDL1] = im.pdl1_induction.value
            sp[:, s, eq.S_MHC1] = im.mhc1_induction.value
        sp[:, s, eq.S_A11] = a[:, 0, 0]
        sp[:, s, eq.S_A12] = a[:, 0, 1]
        sp[:, s, eq.S_A21] = a[:, 1, 0]
        sp[:, s, eq.S_A22] = a[:, 1, 1]
        l1, l2 = _eigen(a)
        sp[:, s, eq.S_L1] = l1
        sp[:, s, eq.S_L2] = l2
    return kinds, sp
