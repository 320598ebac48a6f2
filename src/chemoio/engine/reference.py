"""Reference solver: the same model integrated by scipy, written the way a user would.

The drug subsystems are ordinary ODE states here (no analytic solution), doses are state
jumps, infusions are rates, and ``solve_ivp`` restarts at every dosing event. It calls
the pure-Python versions of the model functions, so it shares every equation with the
compiled engine. Used by tests (the engine agrees with it) and by
``benchmarks/engine.py`` as the baseline.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from chemoio.engine.cohort import SimulationInput
from chemoio.model import equations as eq

_rhs = eq.rhs.py_func
_drive = eq.drug_drive.py_func
_init = eq.initial_state.py_func
_observable = eq.observable.py_func


def _full_rhs(t, z, p, aux, kinds, sp, u):
    n = eq.N_STATES
    n_slots = kinds.size
    y = z[:n]
    xa = z[n : n + n_slots]
    xb = z[n + n_slots :]
    drive = np.zeros(eq.N_DRIVE)
    _drive(p, kinds, sp, xa, xb, drive)
    dz = np.empty_like(z)
    try:
        _rhs(y, dz[:n], p, aux, drive)
    except OverflowError:
        # a trial stage far outside the solution (the compiled code gets inf and rejects
        # the step); a huge derivative makes scipy reject it too
        return np.full_like(z, 1e300)
    for s in range(n_slots):
        dz[n + s] = sp[s, eq.S_A11] * xa[s] + sp[s, eq.S_A12] * xb[s] + u[s]
        dz[n + n_slots + s] = (
            sp[s, eq.S_A21] * xa[s] + sp[s, eq.S_A22] * xb[s] + sp[s, eq.S_BIN] * u[s]
        )
    return dz


def simulate_patient(sim: SimulationInput, i: int, method: str = "LSODA",
                     rtol: float | None = None, atol: float = 1e-9) -> np.ndarray:
    """Observables (K, T) of patient ``i`` with scipy ``solve_ivp``."""
    p = sim.params[i].copy()  # initial_state may project the parameters (model.md 3)
    sp = sim.slot_params[i]
    kinds = sim.slot_kinds
    n = eq.N_STATES
    n_slots = kinds.size
    y0 = np.zeros(n)
    aux = np.zeros(eq.N_AUX)
    _init(p, y0, aux)
    z = np.concatenate([y0, np.zeros(2 * n_slots)])
    scale = np.concatenate([np.abs(y0) + 1.0, np.ones(2 * n_slots)])

    # actions: (time, slot, bolus amount, rate change)
    actions = []
    for e in range(sim.dose_slot.size):
        amt = sim.dose_amount_mg[i, e]
        if amt <= 0:
            continue
        t_e, s, dur = sim.dose_time_day[i, e], int(sim.dose_slot[e]), sim.dose_duration_day[i, e]
        if dur > 0:
            actions.append((t_e, s, 0.0, amt / dur))
            actions.append((t_e + dur, s, 0.0, -amt / dur))
        else:
            actions.append((t_e, s, amt, 0.0))
    actions.sort(key=lambda a: a[0])
    times = sim.times_day
    t_final = float(times[-1])
    breaks = sorted({a[0] for a in actions if a[0] < t_final} | {0.0})
    breaks.append(t_final)
    u = np.zeros(n_slots)
    out = np.full((sim.observable_ids.size, times.size), np.nan)
    ia = 0
    tol = sim.rtol if rtol is None else rtol
    for b in range(len(breaks) - 1):
        t0, t1 = breaks[b], breaks[b + 1]
        while ia < len(actions) and actions[ia][0] <= t0:
            _, s, bolus, rate = actions[ia]
            z[n + s] += bolus
            z[n + n_slots + s] += bolus * sp[s, eq.S_BIN]
            u[s] = max(u[s] + rate, 0.0) if abs(u[s] + rate) > 1e-12 else 0.0
            ia += 1
        mask = (times >= t0) & ((times < t1) | ((b == len(breaks) - 2) & (times <= t1)))
        t_eval = np.union1d(times[mask], [t1])
        sol = solve_ivp(_full_rhs, (t0, t1), z, method=method, t_eval=t_eval, rtol=tol,
                        atol=atol * scale, args=(p, aux, kinds, sp, u.copy()))
        if not sol.success:
            raise RuntimeError(f"reference solver failed for patient {i}: {sol.message}")
        for j in np.flatnonzero(mask):
            zj = sol.y[:, int(np.searchsorted(sol.t, times[j]))]
            drive = np.zeros(eq.N_DRIVE)
            _drive(p, kinds, sp, zj[n : n + n_slots], zj[n + n_slots :], drive)
            for k, o in enumerate(sim.observable_ids):
                if o >= eq.OBS_CONC_BASE:
                    s = o - eq.OBS_CONC_BASE
                    out[k, j] = max(zj[n + s], 0.0) / sp[s, eq.S_V]
                else:
                    out[k, j] = _observable(o, zj[:n], p, aux, drive)
        z = sol.y[:, -1].copy()
        z[2:n] = np.maximum(z[2:n], 0.0)
    return out
