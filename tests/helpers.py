"""Small helpers for tests: typical patients without a population, input errors, raw specs."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from chemoio.engine.cohort import CohortResult, SimulationInput, run_simulation
from chemoio.engine.inputs import build_input
from chemoio.errors import ChemoioInputError
from chemoio.model import equations as eq
from chemoio.model.parameters import default_vector
from chemoio.regimens import Regimen

ALL_OBS = tuple(eq.OBSERVABLES)


def typical_input(
    regimen: str,
    overrides: dict[str, float] | list[dict[str, float]] | None = None,
    days: float = 364.0,
    step: float = 7.0,
    observables: tuple[str, ...] = ALL_OBS,
    rtol: float = 1e-6,
) -> SimulationInput:
    """SimulationInput for one typical patient per overrides dict (75 kg, 1.8 m2, GFR 90)."""
    rows = overrides if isinstance(overrides, list) else [overrides or {}]
    params = np.array([default_vector(o) for o in rows])
    n = len(rows)
    text = regimen if regimen.strip() else "placebo"
    reg = Regimen.parse(text)
    observables = tuple(
        f"conc:{reg.drugs[int(o[5:])]}" if o.startswith("conc:") and o[5:].isdigit() else o
        for o in observables
    )
    sim, _ = build_input(
        reg, params, np.full(n, 75.0), np.full(n, 1.8), np.full(n, 90.0),
        np.arange(0.0, days + 1e-9, step), observables, rtol=rtol,
    )
    return sim


def run(sim: SimulationInput) -> CohortResult:
    obs = tuple(
        eq.OBSERVABLES[i] if i < eq.OBS_CONC_BASE else f"conc:{i - eq.OBS_CONC_BASE}"
        for i in sim.observable_ids
    )
    return run_simulation(sim, observables=obs)


def typical(regimen: str, overrides=None, **kw) -> CohortResult:
    return run(typical_input(regimen, overrides, **kw))


def error_of(fn, *args, **kwargs) -> ChemoioInputError:
    """The ChemoioInputError that ``fn(*args, **kwargs)`` raises."""
    with pytest.raises(ChemoioInputError) as info:
        fn(*args, **kwargs)
    return info.value


def raw_spec(name: str = "keynote189") -> dict:
    """A shipped trial spec as the plain mapping of its YAML file."""
    from chemoio.trial import spec_path

    return yaml.safe_load(spec_path(name).read_text())
