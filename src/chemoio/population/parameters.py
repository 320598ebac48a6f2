"""The full model-parameter matrix of a set of virtual patients."""

from __future__ import annotations

import numpy as np

from chemoio.errors import ChemoioInputError
from chemoio.model.parameters import assemble_params, index_of
from chemoio.population.tumor_types import get_tumor_type


#: Patient-level parameters whose between-patient spread a parameter set may scale
#: (``spread.<name>``, shared by every tumour type; see :func:`parameter_matrix`).
SPREAD_PARAMETERS = ("growth_per_day", "chemo_sensitivity")


def _positive(parameters: dict[str, float], key: str) -> float | None:
    """The parameter set's value of ``key`` as a positive finite float (None when absent);
    anything else is an error naming ``parameters.<key>``."""
    value = parameters.get(key)
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (v > 0 and np.isfinite(v)):
        raise ChemoioInputError(f"parameters.{key}", f"must be a positive number, got {value!r}")
    return v


def parameter_matrix(patient_params: np.ndarray, tumor: str, parameters: dict[str, float]) -> np.ndarray:
    r"""(n, N_PARAMS): patient-level columns, then the tumour type's shared overrides, then the
    parameter set (a calibrated set wins), then the set's spread exponents, then its
    ``chemo_sensitivity_scale.<tumor>`` factor on the chemo sensitivities, then its
    ``kill_scale.<tumor>`` factor on the CD8 killing capacities (k_CT), then its
    ``growth_scale.<tumor>`` factor on the untreated growth rates (clipped again to the
    distribution's range). Every simulation path
    (API, trials, chunked runs) uses this.

    A spread exponent :math:`k` = ``spread.<name>`` maps a log-normal draw
    :math:`\theta_i = m e^{\sigma z_i}` of median :math:`m` to
    :math:`m (\theta_i/m)^k = m e^{k\sigma z_i}`: the same patients (same z, common random
    numbers), with the log-SD multiplied by k."""
    tt = get_tumor_type(tumor)
    params = assemble_params(patient_params, {**tt.shared_overrides, **parameters})
    for key in parameters:
        if str(key).startswith("spread.") and key[len("spread."):] not in SPREAD_PARAMETERS:
            raise ChemoioInputError(f"parameters.{key}", "a spread exponent is a positive number for one of "
                                    + ", ".join(SPREAD_PARAMETERS))
    for name in SPREAD_PARAMETERS:
        k = _positive(parameters, f"spread.{name}")
        if k is not None:
            if tt.parameters[name].kind != "lognormal":
                raise ChemoioInputError(f"parameters.spread.{name}",
                                        f"{tumor}: {name} is not log-normal, so its spread cannot be scaled")
            median = float(tt.parameters[name].params["median"])
            j = index_of(name)
            params[:, j] = median * (params[:, j] / median) ** k
    sens = _positive(parameters, f"chemo_sensitivity_scale.{tumor}")
    if sens is not None:
        params[:, index_of("chemo_sensitivity")] *= sens
    kill = _positive(parameters, f"kill_scale.{tumor}")
    if kill is not None:
        params[:, index_of("kill_per_day")] *= kill
    scale = _positive(parameters, f"growth_scale.{tumor}")
    if scale is not None:
        j = index_of("growth_per_day")
        params[:, j] *= scale
        # the distribution's clip is the plausible range of a growth rate: it bounds the
        # scaled rate too (a scale of 5 once let the top of the range reach 0.4/day)
        clip = tt.parameters["growth_per_day"].clip
        if clip is not None:
            params[:, j] = np.clip(params[:, j], clip[0], clip[1])
    # the plausibility bound on intrinsic proliferation (docs/model.md 3) must leave room for
    # the patient's net growth and spontaneous death, or no killing capacity can meet it
    floor = params[:, index_of("growth_per_day")] + params[:, index_of("spontaneous_death_per_day")]
    bound = params[:, index_of("max_proliferation_per_day")]
    if params.shape[0] and not np.all(bound > floor):
        raise ChemoioInputError("parameters.max_proliferation_per_day",
                                f"must exceed every patient's growth_per_day + spontaneous_death_per_day "
                                f"(up to {float(floor.max()):.4g}/day in {tumor}), got {float(bound.min()):.4g}")
    ratio = params[:, index_of("max_tcell_tumour_ratio")]
    if params.shape[0] and not np.all(ratio >= 0):
        raise ChemoioInputError("parameters.max_tcell_tumour_ratio",
                                f"must be >= 0 CD8 T cells per tumour cell, got {float(ratio.min()):.4g}")
    f_mem = params[:, index_of("memory_fraction")]
    if params.shape[0] and not np.all(f_mem >= 0):
        raise ChemoioInputError("parameters.memory_fraction",
                                f"must be >= 0 (0 = no memory T cells), got {float(f_mem.min()):.4g}")
    if params.shape[0] and np.any(f_mem > 0):
        # with memory on, the recall and the loss of memory cells must be real rates, or the
        # pool grows without bound or the recall is singular (docs/model.md 2.4)
        for key in ("memory_death_per_day", "memory_recall_per_day", "memory_recall_half_max_cells"):
            col = params[:, index_of(key)]
            if not np.all((col > 0) & np.isfinite(col)):
                raise ChemoioInputError(f"parameters.{key}",
                                        f"must be a positive number when memory_fraction > 0, got {float(col.min()):.4g}")
        a_mem = params[:, index_of("memory_expansion")]
        if not np.all(a_mem >= 0):
            raise ChemoioInputError("parameters.memory_expansion",
                                    f"must be >= 0 primed cells per recalled memory cell, got {float(a_mem.min()):.4g}")
        if not np.all(f_mem * a_mem < 1.0):
            raise ChemoioInputError("parameters.memory_expansion",
                                    "memory_fraction x memory_expansion must be below 1 (else T cells recycled "
                                    f"through memory sustain themselves), got {float((f_mem * a_mem).max()):.4g}")
    return params
