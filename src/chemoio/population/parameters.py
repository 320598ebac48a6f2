"""The full model-parameter matrix of a set of virtual patients."""

from __future__ import annotations

import numpy as np

from chemoio.model.parameters import assemble_params, index_of
from chemoio.population.tumor_types import get_tumor_type


def parameter_matrix(patient_params: np.ndarray, tumor: str, parameters: dict[str, float]) -> np.ndarray:
    """(n, N_PARAMS): patient-level columns, then the tumour type's shared overrides, then the
    parameter set (a calibrated set wins), then the set's ``growth_scale.<tumor>`` factor on
    the untreated growth rates. Every simulation path (API, trials, chunked runs) uses this."""
    params = assemble_params(patient_params, {**get_tumor_type(tumor).shared_overrides, **parameters})
    scale = parameters.get(f"growth_scale.{tumor}")
    if scale is not None:
        params[:, index_of("growth_per_day")] *= float(scale)
    return params
