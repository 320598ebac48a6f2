r"""Tumour-linked hazards of death and of new lesions (model brief section 3.3, option A).

Death, per month, for a patient whose simulated *viable* SLD is :math:`S(t) = S_0 (C/C_0)^{1/3}`
(observable ``viable_sld_mm``: the living tumour cells on the SLD scale, without the residual
mass that RECIST still measures, docs/model.md 2.2):

.. math::
    h(t) = h_0(t)\,\exp\big(\beta_S \ln\tfrac{S(t)}{S_{ref}} + \beta_{ECOG}\,ECOG
           + \beta_{liver}\,LIVER + \beta_{alb}(ALB-4) + \beta_{PP}\,1[t > t_{PD}]\big)
           + h_{bg},\qquad h_0(t) = \tfrac{k}{\lambda}\big(\tfrac{t}{\lambda}\big)^{k-1}

New lesions (non-target progression): :math:`\nu(t) = \nu_0 (S(t)/S_0)^{\nu_1}`.

Event times are drawn by inversion of the cumulative hazard on the simulation grid:
the event happens when :math:`\Lambda(t) = \int_0^t h` reaches an Exp(1) draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from chemoio.analysis.survival import DAYS_PER_MONTH
from chemoio.errors import ChemoioInputError, suggest


@dataclass(frozen=True)
class SurvivalParameters:
    weibull_scale_months: float
    weibull_shape: float
    new_lesion_per_month: float
    size_reference_mm: float
    beta_size: float
    beta_ecog: float
    beta_liver: float
    beta_albumin: float
    beta_post_progression: float
    background_mortality_per_year: float
    new_lesion_exponent: float
    recurrence_per_month_at_1e6_cells: float
    recurrence_exponent: float


@lru_cache(maxsize=None)
def _raw() -> dict:
    return yaml.safe_load(resources.files("chemoio.trial").joinpath("data/survival.yaml").read_text())


SURVIVAL_PARAMETER_NAMES = tuple(SurvivalParameters.__dataclass_fields__)


def survival_parameters(tumor: str, overrides: dict[str, float] | None = None) -> SurvivalParameters:
    """Survival parameters of a tumour type; ``overrides`` keys may be a bare name
    (``beta_size``) or tumour-specific (``survival.nsclc_nonsquamous.weibull_scale_months``)."""
    raw = _raw()
    types = raw["tumor_types"]
    if tumor not in types:
        raise ChemoioInputError("tumor", f"no survival model for {tumor!r}", suggest(tumor, types))
    values = {k: float(v["value"]) for k, v in raw["shared"].items()}
    values.update({k: float(v) for k, v in types[tumor].items() if k != "source"})
    for key, val in (overrides or {}).items():
        name = key.split(".")[-1]
        if key.startswith("survival.") and key.count(".") == 2 and key.split(".")[1] != tumor:
            continue
        if name in SURVIVAL_PARAMETER_NAMES and (key == name or key.startswith("survival.")):
            values[name] = float(val)
    return SurvivalParameters(**{k: values[k] for k in SURVIVAL_PARAMETER_NAMES})


def covariate_log_hr(sp: SurvivalParameters, covariates: pd.DataFrame) -> np.ndarray:
    """Baseline prognostic part of the log hazard (n,)."""
    n = len(covariates)

    def col(name: str, default: float) -> np.ndarray:
        return covariates[name].to_numpy(dtype=float) if name in covariates else np.full(n, default)

    return (
        sp.beta_ecog * col("ecog", 0.0)
        + sp.beta_liver * col("liver_mets", 0.0)
        + sp.beta_albumin * (col("albumin_g_dL", 4.0) - 4.0)
    )


def death_hazard_per_day(
    sp: SurvivalParameters,
    grid_day: np.ndarray,
    sld_mm: np.ndarray,
    covariates: pd.DataFrame,
    progression_day: np.ndarray,
) -> np.ndarray:
    """Hazard of death (per day) on the grid, (n, T)."""
    t_m = np.maximum(grid_day / DAYS_PER_MONTH, 1e-6)
    k, lam = sp.weibull_shape, sp.weibull_scale_months
    h0 = (k / lam) * (t_m / lam) ** (k - 1.0)  # per month
    size = np.log(np.maximum(sld_mm, 0.5) / sp.size_reference_mm)
    lin = sp.beta_size * size + covariate_log_hr(sp, covariates)[:, None]
    lin = lin + sp.beta_post_progression * (grid_day[None, :] > progression_day[:, None])
    h = h0[None, :] * np.exp(np.minimum(lin, 30.0)) + sp.background_mortality_per_year / 12.0
    return h / DAYS_PER_MONTH


def new_lesion_hazard_per_day(sp: SurvivalParameters, sld_mm: np.ndarray) -> np.ndarray:
    """Hazard of a new lesion (per day), (n, T), relative to the patient's baseline SLD."""
    rel = np.maximum(sld_mm, 0.0) / np.maximum(sld_mm[:, :1], 1e-6)
    return sp.new_lesion_per_month * rel ** sp.new_lesion_exponent / DAYS_PER_MONTH


def first_event_day(grid_day: np.ndarray, hazard_per_day: np.ndarray, exp_draw: np.ndarray) -> np.ndarray:
    """Time at which the cumulative hazard (trapezoid on the grid) reaches ``exp_draw``;
    ``inf`` when it does not within the grid. Linear interpolation inside a grid step."""
    dt = np.diff(grid_day)
    inc = 0.5 * (hazard_per_day[:, 1:] + hazard_per_day[:, :-1]) * dt[None, :]
    cum = np.concatenate([np.zeros((hazard_per_day.shape[0], 1)), np.cumsum(inc, axis=1)], axis=1)
    hit = cum >= exp_draw[:, None]
    any_hit = hit.any(axis=1)
    k = np.argmax(hit, axis=1)
    out = np.full(hazard_per_day.shape[0], np.inf)
    rows = np.flatnonzero(any_hit & (k > 0))
    kk = k[rows]
    c0, c1 = cum[rows, kk - 1], cum[rows, kk]
    frac = (exp_draw[rows] - c0) / np.maximum(c1 - c0, 1e-300)
    out[rows] = grid_day[kk - 1] + frac * (grid_day[kk] - grid_day[kk - 1])
    out[any_hit & (k == 0)] = grid_day[0]
    return out
