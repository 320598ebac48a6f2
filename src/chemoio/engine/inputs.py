"""Assemble a :class:`~chemoio.engine.cohort.SimulationInput` from a regimen and patients."""

from __future__ import annotations

import numpy as np

from chemoio.drugs import get_drug
from chemoio.engine.cohort import SimulationInput, check_times, observable_ids
from chemoio.errors import ChemoioInputError
from chemoio.model import equations as eq
from chemoio.model.pkpd import build_slots
from chemoio.regimens import Regimen
from chemoio.regimens.events import DoseTable

MAX_PK_SLOTS = 8


def build_input(
    regimen: Regimen,
    params: np.ndarray,
    weight_kg: np.ndarray,
    bsa_m2: np.ndarray,
    gfr_mL_min: np.ndarray,
    times_day,
    observables: tuple[str, ...],
    *,
    pk_eta: np.ndarray | None = None,
    rtol: float = 1e-6,
    dose_table: DoseTable | None = None,
    potency: dict[str, float] | None = None,
) -> tuple[SimulationInput, DoseTable]:
    """Per-patient doses, drug slots and parameters for the engine.

    ``params`` is the full (n, N_PARAMS) matrix; ``pk_eta`` (n, >=S, 2) standard-normal
    PK random effects (None = typical PK). A precomputed ``dose_table`` (e.g. with doses
    stopped at progression) replaces the regimen's own schedule. ``potency`` maps drug
    names to E_max multipliers (a parameter set's ``chemo_potency.<drug>`` keys, see
    :func:`chemoio.model.parameters.agent_potency`).
    """
    params = np.ascontiguousarray(params, dtype=np.float64)
    n = params.shape[0]
    if params.ndim != 2 or params.shape[1] != len(eq.PARAM_ORDER):
        raise ChemoioInputError("params", f"expected shape (n, {len(eq.PARAM_ORDER)}), got {params.shape}")
    if not (0 < rtol < 1):
        raise ChemoioInputError("rtol", f"relative tolerance must be in (0, 1), got {rtol}")
    times = check_times(times_day)
    table = dose_table if dose_table is not None else regimen.dose_table(
        weight_kg, bsa_m2, gfr_mL_min, horizon_days=float(times[-1]) + 1e-9, n_patients=n
    )
    if table.amount_mg.shape[0] != n:
        raise ChemoioInputError("dose_table", f"has {table.amount_mg.shape[0]} patients, params {n}")
    n_ev = table.time_day.size
    sim = build_from_events(
        table.drugs, params, weight_kg, bsa_m2, gfr_mL_min, times, observables,
        ev_time=np.broadcast_to(table.time_day, (n, n_ev)),
        ev_slot=np.asarray(table.slot, dtype=np.int64),
        ev_duration=np.broadcast_to(table.duration_day, (n, n_ev)),
        ev_amount=np.asarray(table.amount_mg),
        pk_eta=pk_eta, rtol=rtol, potency=potency,
    )
    return sim, table


def build_from_events(
    drug_names,
    params: np.ndarray,
    weight_kg: np.ndarray,
    bsa_m2: np.ndarray,
    gfr_mL_min: np.ndarray,
    times_day,
    observables: tuple[str, ...],
    *,
    ev_time: np.ndarray,
    ev_slot: np.ndarray,
    ev_duration: np.ndarray,
    ev_amount: np.ndarray,
    pk_eta: np.ndarray | None = None,
    rtol: float = 1e-6,
    potency: dict[str, float] | None = None,
) -> SimulationInput:
    """SimulationInput from explicit per-patient dose events (n, E): each patient may have
    its own dose times (e.g. a crossover regimen starting at that patient's progression).
    Events need not be sorted; an amount of 0 means the dose is not given. ``potency``
    multiplies each named cytotoxic's E_max (missing names: 1)."""
    params = np.ascontiguousarray(params, dtype=np.float64)
    n = params.shape[0]
    drugs = [get_drug(d) for d in drug_names]
    if len(drugs) > MAX_PK_SLOTS:
        raise ChemoioInputError("regimen", f"at most {MAX_PK_SLOTS} different drugs per regimen")
    eta = None if pk_eta is None else np.asarray(pk_eta, dtype=np.float64)[:, : len(drugs), :]
    kinds, sp = build_slots(drugs, weight_kg, bsa_m2, gfr_mL_min, eta=eta)
    for s, drug in enumerate(drugs):
        if potency and drug.name in potency and not drug.is_antibody:
            sp[:, s, eq.S_EMAX] *= float(potency[drug.name])
    return SimulationInput(
        params=params,
        slot_kinds=kinds,
        slot_params=sp,
        dose_time_day=np.asarray(ev_time, dtype=np.float64).reshape(n, -1),
        dose_slot=np.asarray(ev_slot, dtype=np.int64),
        dose_duration_day=np.asarray(ev_duration, dtype=np.float64).reshape(n, -1),
        dose_amount_mg=np.asarray(ev_amount, dtype=np.float64).reshape(n, -1),
        times_day=check_times(times_day),
        observable_ids=observable_ids(tuple(observables), tuple(drug_names)),
        rtol=rtol,
    )
