"""Cohort simulation: N patients, each with its own parameters, body size and doses.

The engine is backend-agnostic: :class:`SimulationInput` holds plain arrays, a
:class:`Backend` turns them into observables. :class:`CPUBackend` (numba, threads) is the
default and what the tests use; another backend (e.g. JAX on a GPU) only needs a ``run``
method with the same signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from chemoio.errors import ChemoioInputError, suggest
from chemoio.model import equations as eq

DEFAULT_OBSERVABLES = ("sld_mm", "effector_t", "treg", "mdsc", "pdl1", "antigen_signal")


@dataclass
class SimulationInput:
    """Everything a backend needs, as arrays (n = patients, S = slots, E = dose events)."""

    params: np.ndarray  # (n, N_PARAMS)
    slot_kinds: np.ndarray  # (S,)
    slot_params: np.ndarray  # (n, S, SLOT_WIDTH)
    dose_time_day: np.ndarray  # (n, E)
    dose_slot: np.ndarray  # (E,)
    dose_duration_day: np.ndarray  # (n, E)
    dose_amount_mg: np.ndarray  # (n, E)
    times_day: np.ndarray  # (T,) ascending, >= 0
    observable_ids: np.ndarray  # (K,)
    rtol: float = 1e-6
    max_step_day: float = 30.0
    max_steps: int = 200_000

    @property
    def n_patients(self) -> int:
        return self.params.shape[0]

    def subset(self, rows: slice | np.ndarray) -> "SimulationInput":
        return SimulationInput(
            self.params[rows], self.slot_kinds, self.slot_params[rows],
            self.dose_time_day[rows], self.dose_slot, self.dose_duration_day[rows],
            self.dose_amount_mg[rows], self.times_day, self.observable_ids, self.rtol,
            self.max_step_day, self.max_steps,
        )


class Backend(Protocol):
    name: str

    def run(self, sim: SimulationInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return values (n, K, T), status (n,), solver steps (n,)."""
        ...


@dataclass
class CPUBackend:
    """numba-compiled adaptive Dormand-Prince kernel, patients in parallel threads."""

    n_threads: int | None = None
    name: str = "cpu"

    def run(self, sim: SimulationInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import numba

        from chemoio.engine.kernel import simulate_batch

        previous = numba.get_num_threads()
        if self.n_threads:
            numba.set_num_threads(min(self.n_threads, numba.config.NUMBA_NUM_THREADS))
        try:
            return simulate_batch(
                np.ascontiguousarray(sim.params, dtype=np.float64),
                np.ascontiguousarray(sim.slot_kinds, dtype=np.int64),
                np.ascontiguousarray(sim.slot_params, dtype=np.float64),
                np.ascontiguousarray(sim.dose_time_day, dtype=np.float64),
                np.ascontiguousarray(sim.dose_slot, dtype=np.int64),
                np.ascontiguousarray(sim.dose_duration_day, dtype=np.float64),
                np.ascontiguousarray(sim.dose_amount_mg, dtype=np.float64),
                np.ascontiguousarray(sim.times_day, dtype=np.float64),
                np.ascontiguousarray(sim.observable_ids, dtype=np.int64),
                float(sim.rtol),
                float(sim.max_step_day),
                int(sim.max_steps),
            )
        finally:
            numba.set_num_threads(previous)


BACKENDS: dict[str, type] = {"cpu": CPUBackend}


def get_backend(name: str | Backend) -> Backend:
    if not isinstance(name, str):
        return name
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ChemoioInputError("backend", f"unknown backend {name!r}", suggest(name, BACKENDS)) from None


def observable_ids(names: tuple[str, ...] | list[str], drugs: tuple[str, ...]) -> np.ndarray:
    """Map observable names to kernel ids; ``conc:<drug>`` is a plasma concentration."""
    ids = []
    for name in names:
        if name.startswith("conc:"):
            drug = name[5:]
            if drug not in drugs:
                raise ChemoioInputError(
                    "observables", f"{name!r}: {drug!r} is not in the regimen", suggest(drug, drugs)
                )
            ids.append(eq.OBS_CONC_BASE + drugs.index(drug))
        elif name in eq.OBSERVABLES:
            ids.append(eq.OBSERVABLES.index(name))
        else:
            choices = list(eq.OBSERVABLES) + [f"conc:{d}" for d in drugs]
            raise ChemoioInputError("observables", f"unknown observable {name!r}", suggest(name, choices))
    return np.array(ids, dtype=np.int64)


def check_times(times_day) -> np.ndarray:
    t = np.asarray(times_day, dtype=np.float64).ravel()
    if t.size == 0:
        raise ChemoioInputError("times", "at least one output time is needed")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ChemoioInputError("times", "output times must be finite and >= 0 (days)")
    if np.any(np.diff(t) <= 0):
        raise ChemoioInputError("times", "output times must be strictly increasing")
    return t


@dataclass
class CohortResult:
    """Observables of a simulated cohort: ``values[i, k, j]`` is observable k of patient i
    at ``times_day[j]``. Patients whose solve failed carry NaN and a non-zero status."""

    times_day: np.ndarray
    observables: tuple[str, ...]
    values: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    patient_id: np.ndarray
    covariates: pd.DataFrame = field(default_factory=pd.DataFrame)
    drugs: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.values[:, self.observables.index(name), :]
        except ValueError:
            raise ChemoioInputError(
                "observable", f"{name!r} was not simulated", suggest(name, self.observables)
            ) from None

    @property
    def n_patients(self) -> int:
        return self.values.shape[0]

    @property
    def ok(self) -> np.ndarray:
        return self.status == 0

    def failures(self) -> pd.DataFrame:
        """One row per patient whose solve failed: ID, status code and its meaning."""
        from chemoio.engine.kernel import STATUS_TEXT

        bad = np.flatnonzero(self.status != 0)
        return pd.DataFrame(
            {
                "ID": self.patient_id[bad],
                "status": self.status[bad],
                "reason": [STATUS_TEXT.get(int(s), "unknown") for s in self.status[bad]],
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per patient and time (ID, TIME in days, observables...)."""
        n, _, t = self.values.shape
        data = {
            "ID": np.repeat(self.patient_id, t),
            "TIME": np.tile(self.times_day, n),
        }
        for k, name in enumerate(self.observables):
            data[name] = self.values[:, k, :].ravel()
        return pd.DataFrame(data)

    def to_parquet(self, path) -> None:
        self.to_frame().to_parquet(path, index=False)


def run_simulation(sim: SimulationInput, backend: str | Backend = "cpu", *,
                   observables: tuple[str, ...], patient_id: np.ndarray | None = None,
                   covariates: pd.DataFrame | None = None, drugs: tuple[str, ...] = (),
                   chunk_size: int = 20_000, progress=None) -> CohortResult:
    """Run ``sim`` on a backend in chunks (bounded memory, a progress callback per chunk)."""
    be = get_backend(backend)
    n = sim.n_patients
    vals = np.empty((n, sim.observable_ids.size, sim.times_day.size))
    status = np.empty(n, dtype=np.int64)
    steps = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        v, s, k = be.run(sim.subset(slice(start, stop)))
        vals[start:stop], status[start:stop], steps[start:stop] = v, s, k
        if progress is not None:
            progress(stop - start)
    return CohortResult(
        times_day=sim.times_day,
        observables=tuple(observables),
        values=vals,
        status=status,
        steps=steps,
        patient_id=np.arange(1, n + 1) if patient_id is None else patient_id,
        covariates=covariates if covariates is not None else pd.DataFrame(),
        drugs=drugs,
    )
