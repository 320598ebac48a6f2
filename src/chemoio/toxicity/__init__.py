"""Chemotherapy myelotoxicity: the Friberg neutrophil model and protocol dose rules.

* :mod:`chemoio.toxicity.friberg` - the semi-mechanistic model (proliferating, three
  transit and circulating compartments with feedback), its sourced system parameters,
  per-patient random effects and a compiled fixed-step integrator driven by chemoio's
  exact linear PK.
* :mod:`chemoio.toxicity.delays` - dose delays (ANC < 1.5 x 10^9/L on day 1), omissions and
  reductions after grade-4 nadirs, giving each patient their own dose times and amounts
  (:func:`plan_doses`), and per-patient outcomes (nadir, CTCAE grade, delays).

>>> from chemoio.toxicity import typical_nadir
>>> nadir, day = typical_nadir("docetaxel")   # doctest: +SKIP
"""

from chemoio.toxicity.delays import (
    DELAY_MOVES,
    NO_RULES,
    DosePlan,
    DoseRules,
    classify_events,
    delay_for_anc_series,
    dose_factors_for_nadirs,
    myelotoxic_slope,
    plan_doses,
    plan_without_rules,
    slope_for_nadir,
    typical_nadir,
)
from chemoio.toxicity.friberg import (
    CTCAE_ANC_LIMITS,
    SYSTEM_PARAMETERS,
    PatientMarrow,
    ctcae_grade,
    marrow_normals,
)

__all__ = [
    "CTCAE_ANC_LIMITS",
    "DELAY_MOVES",
    "NO_RULES",
    "SYSTEM_PARAMETERS",
    "DosePlan",
    "DoseRules",
    "PatientMarrow",
    "classify_events",
    "ctcae_grade",
    "delay_for_anc_series",
    "dose_factors_for_nadirs",
    "marrow_normals",
    "myelotoxic_slope",
    "plan_doses",
    "plan_without_rules",
    "slope_for_nadir",
    "typical_nadir",
]
