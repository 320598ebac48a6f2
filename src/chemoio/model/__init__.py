"""The mechanistic tumour-immune-drug model (equations, parameters, drug slots)."""

from chemoio.model.equations import N_STATES, OBSERVABLES, PARAM_ORDER, STATE_NAMES
from chemoio.model.parameters import (
    ParameterInfo,
    assemble_params,
    default_vector,
    index_of,
    load_parameter_set,
    parameter_table,
)

__all__ = [
    "N_STATES", "OBSERVABLES", "PARAM_ORDER", "STATE_NAMES", "ParameterInfo", "assemble_params",
    "default_vector", "index_of", "load_parameter_set", "parameter_table",
]
