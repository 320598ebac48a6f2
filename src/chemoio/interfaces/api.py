"""Python API: simulate a cohort of virtual patients under a regimen.

>>> import chemoio
>>> res = chemoio.simulate("pembrolizumab 200 mg q3w x35; pemetrexed 500 mg/m2 q3w; "
...                        "carboplatin AUC5 q3w x4", tumor="nsclc_nonsquamous", n=100, seed=1)
>>> res["sld_mm"].shape
(100, 105)

Research software: outputs describe a model, not any patient.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from chemoio.engine.cohort import DEFAULT_OBSERVABLES, CohortResult, run_simulation
from chemoio.engine.inputs import build_input
from chemoio.errors import ChemoioInputError
from chemoio.model.parameters import agent_potency, load_parameter_set, shipped_parameter_set
from chemoio.regimens import Regimen, resolve_regimen

if TYPE_CHECKING:
    from chemoio.population import VirtualPatients


def resolve_parameters(parameters: dict[str, float] | str | Path | None) -> dict[str, float]:
    """Shared-parameter overrides: a dict, a parameter-set YAML path, or None for the
    shipped (calibrated) set."""
    if parameters is None:
        return shipped_parameter_set()
    if isinstance(parameters, dict):
        return {str(k): float(v) for k, v in parameters.items()}
    return load_parameter_set(parameters)


def simulate(
    regimen: str | Regimen,
    tumor: str = "nsclc_nonsquamous",
    n: int = 1000,
    seed: int = 1,
    *,
    days: float = 730.0,
    times: np.ndarray | None = None,
    observables: tuple[str, ...] | list[str] = DEFAULT_OBSERVABLES,
    parameters: dict[str, float] | str | Path | None = None,
    patients: "VirtualPatients | None" = None,
    selection: dict | None = None,
    rtol: float = 1e-6,
    backend: str = "cpu",
    chunk_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> CohortResult:
    """Simulate ``n`` virtual patients of ``tumor`` on ``regimen``.

    ``regimen`` is regimen text, a preset name, a YAML path or a :class:`Regimen`.
    Observables are returned at ``times`` (days; default weekly from 0 to ``days``).
    The same ``seed`` gives the same numbers on any machine and any number of threads.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ChemoioInputError("n", f"number of patients must be a positive integer, got {n!r}")
    if times is None:
        if not (days > 0):
            raise ChemoioInputError("days", f"simulation length must be > 0 days, got {days}")
        times = np.arange(0.0, float(days) + 1e-9, 7.0)
    from chemoio.population import sample_patients

    reg = regimen if isinstance(regimen, Regimen) else resolve_regimen(str(regimen))
    vp = patients if patients is not None else sample_patients(tumor, int(n), int(seed), selection=selection)
    from chemoio.population import parameter_matrix

    param_set = resolve_parameters(parameters)
    params = parameter_matrix(vp.params, vp.tumor, param_set)
    cov = vp.covariates
    sim, table = build_input(
        reg,
        params,
        cov["weight_kg"].to_numpy(),
        cov["bsa_m2"].to_numpy(),
        cov["gfr_mL_min"].to_numpy(),
        times,
        tuple(observables),
        pk_eta=vp.pk_eta,
        rtol=rtol,
        potency=agent_potency(param_set),
    )
    return run_simulation(
        sim,
        backend,
        observables=tuple(observables),
        patient_id=vp.index + 1,
        covariates=cov,
        drugs=tuple(table.drugs),
        chunk_size=chunk_size,
        progress=progress,
    )
