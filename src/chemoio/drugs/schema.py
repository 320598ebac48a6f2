"""Schema of a drug file (one YAML file per agent in ``chemoio/drugs/data``).

Every numeric field is a :class:`Sourced` value: the number, its unit, and where it comes
from (a PMID / paper, or the words ``calibrated`` or ``assumed``). Units are fixed per field
and written in the field name; the loader rejects files whose ``unit`` disagrees.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Sourced(BaseModel):
    """A parameter value with its unit and provenance."""

    model_config = ConfigDict(extra="forbid")
    value: float
    unit: str
    source: str = Field(min_length=3, description="PMID / paper, or 'calibrated' / 'assumed'")
    note: str | None = None


class AntibodyPK(BaseModel):
    """Linear two-compartment population PK of a monoclonal antibody (typical adult)."""

    model_config = ConfigDict(extra="forbid")
    cl_L_per_day: Sourced
    v1_L: Sourced
    q_L_per_day: Sourced
    v2_L: Sourced
    mw_kDa: Sourced
    # between-subject variability, as standard deviations of log-normal random effects
    omega_cl: Sourced
    omega_v1: Sourced
    # body-weight exponent on CL and V1 (allometric, reference weight 75 kg); 0 = none
    wt_exponent_cl: Sourced
    wt_exponent_v: Sourced


class AntibodyPD(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kd_nM: Sourced  # binding affinity to the target
    tumour_to_plasma: Sourced  # interstitial/plasma exposure ratio (phi_T)
    adcc: Sourced  # 0-1 Fc effector (ADCC/ADCP) strength, used for Treg depletion by anti-CTLA-4


class ChemoPK(BaseModel):
    """One-compartment exposure model. For carboplatin, CL follows GFR (Calvert)."""

    model_config = ConfigDict(extra="forbid")
    cl_L_per_h: Sourced  # typical clearance (for BSA 1.8 m2 / GFR 100 mL/min when scaled)
    v_L: Sourced  # volume of distribution
    omega_cl: Sourced
    cl_scales_with: Literal["none", "bsa", "gfr"] = "none"
    mw_g_per_mol: Sourced


class ChemoPD(BaseModel):
    """Cytotoxic potency through an effect compartment (Sheiner link model).

    The loader derives E_max and EC50 (effect-site) from the interpretable pair
    ``reference_dose`` / ``log_kill_per_reference_dose``: EC50 is the peak effect-site
    concentration after the reference dose, and E_max is set so that one reference dose
    kills ``log_kill_per_reference_dose`` natural-log units of sensitive cells.
    """

    model_config = ConfigDict(extra="forbid")
    reference_dose: Sourced  # in the drug's usual dose unit (mg/m2, mg, or AUC mg/mL*min)
    log_kill_per_reference_dose: Sourced  # natural-log kill of sensitive cells per reference dose
    k_effect_per_day: Sourced  # effect-compartment rate (delay between exposure and cell death)
    resistant_sensitivity: Sourced  # rho: potency on the resistant clone relative to sensitive


class Immunomodulation(BaseModel):
    """Drug-specific immune effects, each 0-1 (relative strength; the shared model
    parameters turn them into rates). The *ranking* across agents is the literature
    constraint (model brief section 4.3-4.4); the numbers are priors to calibrate."""

    model_config = ConfigDict(extra="forbid")
    icd_fraction: Sourced  # share of chemo-killed cells dying immunogenically
    treg_depletion: Sourced
    mdsc_depletion: Sourced
    lymphotoxicity: Sourced  # on circulating lymphocytes and cycling (primed) T cells
    pdl1_induction: Sourced
    mhc1_induction: Sourced
    steroid_premedication: bool = False


class Myelotoxicity(BaseModel):
    """Drug effect on neutrophil progenitors in the Friberg model (chemoio.toxicity).

    ``slope_L_per_mg``: linear effect E = slope x C on the proliferation of progenitors,
    with C the plasma concentration (mg/L) of chemoio's PK; effects of several agents add.
    ``calibration_nadir_1e9_per_L`` (optional): when the slope was calibrated, the nadir ANC
    of the typical patient after one reference dose that it reproduces. Agents without this
    block (the antibodies) do not act on the marrow.
    """

    model_config = ConfigDict(extra="forbid")
    slope_L_per_mg: Sourced
    calibration_nadir_1e9_per_L: Sourced | None = None

    @field_validator("slope_L_per_mg")
    @classmethod
    def _slope(cls, v: Sourced) -> Sourced:
        if v.unit.strip() != "L/mg":
            raise ValueError(f"unit must be 'L/mg', got {v.unit!r}")
        if not (math.isfinite(v.value) and v.value >= 0.0):
            raise ValueError(f"value must be a finite number >= 0, got {v.value}")
        return v

    @field_validator("calibration_nadir_1e9_per_L")
    @classmethod
    def _nadir(cls, v: Sourced | None) -> Sourced | None:
        if v is None:
            return v
        if v.unit.strip() != "10^9/L":
            raise ValueError(f"unit must be '10^9/L', got {v.unit!r}")
        if not (math.isfinite(v.value) and v.value > 0.0):
            raise ValueError(f"value must be a finite number > 0, got {v.value}")
        return v


class Drug(BaseModel):
    """One agent of the library."""

    model_config = ConfigDict(extra="forbid")
    name: str  # canonical lowercase name, e.g. "pembrolizumab", "nab-paclitaxel"
    aliases: list[str] = []
    kind: Literal["anti-pd-1", "anti-pd-l1", "anti-ctla-4", "chemotherapy"]
    drug_class: str  # e.g. "IgG4 monoclonal antibody", "platinum", "antimetabolite"
    dose_units: list[Literal["mg", "mg/kg", "mg/m2", "AUC"]]  # units a regimen may use
    default_infusion_h: float = Field(ge=0)
    antibody_pk: AntibodyPK | None = None
    antibody_pd: AntibodyPD | None = None
    chemo_pk: ChemoPK | None = None
    chemo_pd: ChemoPD | None = None
    immunomodulation: Immunomodulation | None = None
    myelotoxicity: Myelotoxicity | None = None  # optional: Friberg neutropenia (chemotherapy only)
    typical_regimens: list[str] = []  # regimen text examples, in chemoio's grammar
    references: list[str] = []  # full citations for the PMIDs used above

    @property
    def is_antibody(self) -> bool:
        return self.kind != "chemotherapy"

    @model_validator(mode="after")
    def _blocks_match_kind(self) -> "Drug":
        if self.is_antibody:
            if self.antibody_pk is None or self.antibody_pd is None:
                raise ValueError(f"{self.name}: antibodies need antibody_pk and antibody_pd")
        else:
            if self.chemo_pk is None or self.chemo_pd is None or self.immunomodulation is None:
                raise ValueError(
                    f"{self.name}: chemotherapy needs chemo_pk, chemo_pd and immunomodulation"
                )
        if self.myelotoxicity is not None and self.is_antibody:
            raise ValueError(f"{self.name}: myelotoxicity is only for chemotherapy")
        if "AUC" in self.dose_units and (self.chemo_pk is None or self.chemo_pk.cl_scales_with != "gfr"):
            raise ValueError(f"{self.name}: AUC dosing needs chemo_pk.cl_scales_with: gfr")
        return self
