"""Model parameters: names, units, defaults and sources.

A simulation uses one parameter *matrix* of shape ``(n_patients, N_PARAMS)``: the first
columns are patient-level parameters (drawn by :mod:`chemoio.population`), the rest are
shared population-level parameters (read from ``data/parameters.yaml`` or from a calibrated
parameter set). Any column may vary between patients, which is what sensitivity analyses
need; the engine does not distinguish them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from chemoio.errors import ChemoioInputError, read_yaml_file, suggest
from chemoio.model.equations import PARAM_ORDER, PATIENT_ORDER, SHARED_ORDER


@dataclass(frozen=True)
class ParameterInfo:
    name: str
    value: float
    unit: str
    source: str
    level: str  # "patient" or "shared"


# Patient-level parameters with the value of a typical patient. Their distributions per
# tumour type, with sources, live in chemoio/population/data/*.yaml.
PATIENT_PARAMETERS: dict[str, tuple[float, str, str]] = {
    "sld0_mm": (86.0, "mm", "baseline sum of longest diameters; pembrolizumab popPK median 86 mm"),
    "growth_per_day": (0.008, "1/day", "net untreated tumour growth rate at diagnosis"),
    "resistant_fraction0": (0.01, "1", "chemo-resistant share of viable cells at diagnosis"),
    "chemo_sensitivity": (1.0, "1", "multiplier on every agent's cytotoxic E_max"),
    "infiltration": (1.0, "1", "T-cell infiltration propensity psi (Kosinsky 2018 random effect); solved at diagnosis to match cd8_per_tumour_cell0 (docs/model.md 3), the drawn value starts the search"),
    "antigenicity": (0.5, "1", "n_neo/(n_neo+n_50) from TMB"),
    "pdl1_tumour0": (0.3, "1", "baseline tumour PD-L1 (1 = high expression, TPS~100%)"),
    "mdsc0": (0.5, "1", "baseline MDSC suppression index (H_M = M/(1+M))"),
    "treg0": (0.5, "1", "baseline Treg suppression index (factor 1/(1+R))"),
    "kill_per_day": (0.9, "1/day", "maximal CD8 kill rate k_CT (lowered for a patient by the plausibility bound, docs/model.md 3); Robertson-Tessi 2012 via QSP-IO"),
    "cd8_per_tumour_cell0": (0.05, "CD8 T cells per viable tumour cell", "all CD8 T cells (tumour-reactive and bystander) per tumour cell at diagnosis; the reactive share (antigenicity) is matched by solving for psi (docs/model.md 3; 0 keeps the drawn psi); typical value: median CD8 density 81-328 cells/mm2 by cancer type (Blessin 2020 Cell Oncol, PMC7214387) at an assumed 3,000 tumour cells/mm2"),
}


@lru_cache(maxsize=None)
def _shared_defaults() -> dict[str, ParameterInfo]:
    text = resources.files("chemoio.model").joinpath("data/parameters.yaml").read_text()
    raw = yaml.safe_load(text)["parameters"]
    return {
        name: ParameterInfo(name, float(e["value"]), str(e["unit"]), str(e["source"]), "shared")
        for name, e in raw.items()
    }


SHARED_NAMES: tuple[str, ...] = SHARED_ORDER
PATIENT_NAMES: tuple[str, ...] = PATIENT_ORDER
PARAM_NAMES: tuple[str, ...] = PARAM_ORDER
if set(_shared_defaults()) != set(SHARED_ORDER) or set(PATIENT_PARAMETERS) != set(PATIENT_ORDER):
    raise RuntimeError("model/data/parameters.yaml and model/equations.py disagree on names")
N_PARAMS = len(PARAM_NAMES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(PARAM_NAMES)}


def parameter_table() -> list[ParameterInfo]:
    """Every parameter with its default, unit and source (patient-level first)."""
    shared = _shared_defaults()
    out = [ParameterInfo(n, *PATIENT_PARAMETERS[n], "patient") for n in PATIENT_ORDER]
    out.extend(shared[n] for n in SHARED_ORDER)
    return out


def default_vector(overrides: dict[str, float] | None = None) -> np.ndarray:
    """The parameter vector of a typical patient, with optional overrides by name."""
    vec = np.array([p.value for p in parameter_table()], dtype=np.float64)
    for name, value in (overrides or {}).items():
        vec[index_of(name)] = float(value)
    return vec


def index_of(name: str) -> int:
    try:
        return INDEX[name]
    except KeyError:
        raise ChemoioInputError(
            "parameter", f"unknown model parameter {name!r}", suggest(name, PARAM_NAMES)
        ) from None


# Parameter-set keys that are not model parameters: the survival link
# (``survival.<name>`` or ``survival.<tumor>.<name>``), tumour-type growth
# (``growth_scale.<tumor>``), chemo sensitivity (``chemo_sensitivity_scale.<tumor>``) and
# CD8 killing capacity (``kill_scale.<tumor>``), used by the population layer, and per-agent cytotoxic potency
# (``chemo_potency.<drug>``: a multiplier on that agent's E_max, read when drug slots are built),
# and between-patient spread exponents (``spread.<patient parameter>``, population layer).
EXTRA_PREFIXES = ("survival.", "growth_scale.", "chemo_sensitivity_scale.", "kill_scale.", "chemo_potency.",
                  "spread.")
AGENT_POTENCY_PREFIX = "chemo_potency."


def agent_potency(parameters: dict[str, float] | None) -> dict[str, float]:
    """Per-agent E_max multipliers of a parameter set: ``{drug name: multiplier}``.

    A key ``chemo_potency.<drug>`` must name a cytotoxic of the drug library and hold a
    positive number; agents without a key keep multiplier 1."""
    from chemoio.drugs import get_drug

    out: dict[str, float] = {}
    for key, value in (parameters or {}).items():
        if not str(key).startswith(AGENT_POTENCY_PREFIX):
            continue
        name = str(key)[len(AGENT_POTENCY_PREFIX):]
        drug = get_drug(name)  # raises a clear error naming the field for an unknown drug
        if drug.kind != "chemotherapy":
            raise ChemoioInputError(f"parameters.{key}", f"{drug.name} is not a cytotoxic")
        v = float(value)
        if not (v > 0 and np.isfinite(v)):
            raise ChemoioInputError(f"parameters.{key}", f"must be a positive number, got {value!r}")
        out[drug.name] = v
    return out


def load_parameter_set(path: str | Path) -> dict[str, float]:
    """Read a parameter-set YAML (``parameters: {name: value or {value: ...}}``).

    Used for calibrated sets; every name must be a model parameter or start with one of
    ``EXTRA_PREFIXES``.
    """
    p = Path(path)
    raw = read_yaml_file(p, "parameter_set")
    if not isinstance(raw, dict) or not isinstance(raw.get("parameters"), dict):
        raise ChemoioInputError("parameter_set", f"{p.name} needs a 'parameters:' mapping")
    out: dict[str, float] = {}
    for name, entry in raw["parameters"].items():
        if not str(name).startswith(EXTRA_PREFIXES):
            index_of(name)
        value = entry.get("value") if isinstance(entry, dict) else entry
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            raise ChemoioInputError(f"parameters.{name}", f"not a number: {value!r}") from None
    agent_potency(out)  # validates chemo_potency.<drug> keys
    return out


def assemble_params(patient_params: np.ndarray, shared: dict[str, float] | None = None) -> np.ndarray:
    """Full (n, N_PARAMS) matrix: patient-level columns (n, len(PATIENT_NAMES)) followed by
    shared defaults, with ``shared`` overrides by name (any parameter, e.g. a calibrated set)."""
    pp = np.atleast_2d(np.asarray(patient_params, dtype=np.float64))
    if pp.shape[1] != len(PATIENT_NAMES):
        raise ChemoioInputError(
            "patient_params", f"expected {len(PATIENT_NAMES)} columns ({', '.join(PATIENT_NAMES)})"
        )
    out = np.tile(default_vector(), (pp.shape[0], 1))
    out[:, : len(PATIENT_NAMES)] = pp
    for name, value in (shared or {}).items():
        if str(name).startswith(EXTRA_PREFIXES):
            continue
        out[:, index_of(name)] = float(value)
    return out


def shipped_parameter_set_path() -> Path | None:
    """The calibrated parameter set shipped with chemoio (written by `chemoio calibrate`),
    or None while none has been produced."""
    ref = resources.files("chemoio.model").joinpath("data/calibrated.yaml")
    return Path(str(ref)) if ref.is_file() else None


def shipped_parameter_set() -> dict[str, float]:
    path = shipped_parameter_set_path()
    return load_parameter_set(path) if path is not None else {}
