r"""Compiled CPU kernel: one adaptive Dormand-Prince 5(4) integration per patient.

Why it is fast (docs/model.md section 5):

* the drug subsystems are linear and solved exactly between dosing events
  (:func:`chemoio.model.equations.lin2_at`), so fast chemotherapy kinetics (half-lives of
  minutes) never limit the step size; the remaining 12-state system is non-stiff (the fast antigen/DAMP signal, mature DCs,
  PD-L1 and MHC-I are quasi-steady);
* dosing events are breakpoints (the integrator stops and restarts exactly there);
  observation times are *not*: values between steps come from the method's 4th-order
  continuous extension;
* patients run in parallel threads (``numba.prange``); each patient's numbers depend only
  on its own inputs, so results are identical for any thread count.

Status codes per patient: 0 ok, 1 too many steps, 2 step size underflow, 3 non-finite state.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from chemoio.model import equations as eq


STATUS_OK, STATUS_MAX_STEPS, STATUS_STEP_UNDERFLOW, STATUS_NONFINITE = 0, 1, 2, 3
STATUS_TEXT = {
    STATUS_OK: "ok",
    STATUS_MAX_STEPS: "too many solver steps",
    STATUS_STEP_UNDERFLOW: "step size underflow",
    STATUS_NONFINITE: "non-finite state",
}

# Dormand-Prince 5(4) tableau, error weights and dense-output polynomial (Hairer,
# Norsett & Wanner, Solving ODEs I, 1993); same numbers as scipy's RK45.
_C2, _C3, _C4, _C5 = 0.2, 0.3, 0.8, 8.0 / 9.0
_A21 = 0.2
_A31, _A32 = 3.0 / 40.0, 9.0 / 40.0
_A41, _A42, _A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
_A51, _A52, _A53, _A54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
_A61, _A62, _A63, _A64, _A65 = (
    9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0,
)
_B1, _B3, _B4, _B5, _B6 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0
_E1, _E3, _E4, _E5, _E6, _E7 = (
    -71.0 / 57600.0, 71.0 / 16695.0, -71.0 / 1920.0, 17253.0 / 339200.0, -22.0 / 525.0, 1.0 / 40.0,
)
DENSE_P = np.array(
    [
        [1.0, -8048581381.0 / 2820520608.0, 8663915743.0 / 2820520608.0,
         -12715105075.0 / 11282082432.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 131558114200.0 / 32700410799.0, -68118460800.0 / 10900136933.0,
         87487479700.0 / 32700410799.0],
        [0.0, -1754552775.0 / 470086768.0, 14199869525.0 / 1410260304.0,
         -10690763975.0 / 1880347072.0],
        [0.0, 127303824393.0 / 49829197408.0, -318862633887.0 / 49829197408.0,
         701980252875.0 / 199316789632.0],
        [0.0, -282668133.0 / 205662961.0, 2019193451.0 / 616988883.0,
         -1453857185.0 / 822651844.0],
        [0.0, 40617522.0 / 29380423.0, -110615467.0 / 29380423.0, 69997945.0 / 29380423.0],
    ]
)

# absolute-tolerance floors per state (the relative tolerance multiplies them)
_ATOL_FLOOR = np.array([1.0, 1.0, 1e3, 1e3, 1e3, 1e3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e3])
# weight of |y| in the relative part of the error scale: 0 for the log cell numbers, whose
# error is controlled absolutely (rtol in ln C = rtol relative in C), 1 for the rest
_REL_WEIGHT = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])

# A drug slot with no running infusion whose exposures have all fallen below this fraction
# of their half-maximal level is dropped until its next dose (see _washed_out).
WASHOUT = 1e-10

# PI controller exponents: h_new = h * 0.9 * err^-alpha * err_old^beta
_PI_BETA = 0.04
_PI_ALPHA = 0.2 - 0.75 * _PI_BETA


@njit(cache=True, error_model="numpy", inline="always")
def _drugs_at(t, p, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive):
    """Drug drive at time t from the exact drug solution since breakpoint tb; slots that
    have washed out (``active[s] == 0``) are exactly 0 and cost nothing."""
    for s in range(kinds.size):
        if active[s]:
            a, b = eq.lin2_at(sp[s], xa0[s], xb0[s], u[s], t - tb)
            xa[s] = a
            xb[s] = b
        else:
            xa[s] = 0.0
            xb[s] = 0.0
    eq.drug_drive(p, kinds, sp, xa, xb, drive)


@njit(cache=True, error_model="numpy", inline="always")
def _eval(t, y, dy, p, aux, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive):
    """RHS at time t: drug drive from the exact drug solution, then the biology."""
    _drugs_at(t, p, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive)
    eq.rhs(y, dy, p, aux, drive)


@njit(cache=True, error_model="numpy")
def _washed_out(kind, q, xa, xb):
    r"""True when a slot's drug can no longer act: every exposure it drives is below
    :data:`WASHOUT` of its half-maximal level (chemotherapy: plasma and effect-site
    concentration vs :math:`EC_{50}`; antibody: tumour concentration in both compartments vs
    :math:`K_D`). With no input the amounts only decay from there, so dropping the slot
    changes any rate by less than ``WASHOUT`` relative."""
    if kind == eq.KIND_CHEMO:
        lim = WASHOUT * q[eq.S_EC50]
        return abs(xa) / q[eq.S_V] < lim and abs(xb) < lim
    lim = WASHOUT * q[eq.S_KD] * q[eq.S_V] * q[eq.S_MW] / (1.0e3 * q[eq.S_PHIT])
    return abs(xa) < lim and abs(xb) < lim


@njit(cache=True, error_model="numpy")
def _record(k_out, t, y, p, aux, kinds, sp, xa0, xb0, u, tb, active, obs, out, xa, xb, drive):
    _drugs_at(t, p, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive)
    for j in range(obs.size):
        o = obs[j]
        if o >= eq.OBS_CONC_BASE:
            s = o - eq.OBS_CONC_BASE
            out[j, k_out] = max(xa[s], 0.0) / sp[s, eq.S_V]
        else:
            out[j, k_out] = eq.observable(o, y, p, aux, drive)


@njit(cache=True, error_model="numpy")
def simulate_one(p, kinds, sp, ev_t, ev_slot, ev_dur, ev_amt, out_t, obs, rtol, h_max,
                 max_steps, out):
    """Integrate one patient; fill ``out`` (n_obs, n_times); return (status, n_steps)."""
    n = eq.N_STATES
    n_slots = kinds.size
    y = np.empty(n)
    aux = np.empty(eq.N_AUX)
    p = p.copy()  # the state at diagnosis may project the patient's parameters (model.md 3)
    eq.initial_state(p, y, aux)
    # states counted in the RMS error norm: with memory off (f_M = 0) T_M is identically zero
    # and is left out, so step sizes (and results) are those of the model without the memory
    # state, bit for bit
    n_err = n if p[eq.P_FMEM] > 0.0 else n - 1
    for j in range(out.shape[0]):
        for k in range(out.shape[1]):
            out[j, k] = math.nan

    # --- dosing actions: bolus at t, or infusion start (+rate) and end (-rate)
    n_ev = ev_t.size
    act_t = np.empty(2 * n_ev)
    act_slot = np.empty(2 * n_ev, dtype=np.int64)
    act_bolus = np.zeros(2 * n_ev)
    act_rate = np.zeros(2 * n_ev)
    n_act = 0
    for e in range(n_ev):
        amt = ev_amt[e]
        if amt <= 0.0:
            continue
        if ev_dur[e] > 0.0:
            r = amt / ev_dur[e]
            act_t[n_act] = ev_t[e]
            act_slot[n_act] = ev_slot[e]
            act_rate[n_act] = r
            n_act += 1
            act_t[n_act] = ev_t[e] + ev_dur[e]
            act_slot[n_act] = ev_slot[e]
            act_rate[n_act] = -r
            n_act += 1
        else:
            act_t[n_act] = ev_t[e]
            act_slot[n_act] = ev_slot[e]
            act_bolus[n_act] = amt
            n_act += 1
    order = np.argsort(act_t[:n_act], kind="mergesort")

    xa0 = np.zeros(n_slots)
    xb0 = np.zeros(n_slots)
    xa = np.zeros(n_slots)
    xb = np.zeros(n_slots)
    u = np.zeros(n_slots)
    active = np.zeros(n_slots, dtype=np.bool_)  # slot has drug that can still act
    drop = np.zeros(n_slots, dtype=np.bool_)
    drive = np.zeros(eq.N_DRIVE)
    tb = 0.0

    k1 = np.empty(n)
    k2 = np.empty(n)
    k3 = np.empty(n)
    k4 = np.empty(n)
    k5 = np.empty(n)
    k6 = np.empty(n)
    k7 = np.empty(n)
    ytmp = np.empty(n)
    ynew = np.empty(n)
    ydense = np.empty(n)
    atol = np.empty(n)
    for i in range(n):
        atol[i] = rtol * _ATOL_FLOOR[i]

    n_out = out_t.size
    t_final = out_t[n_out - 1]
    k_out = 0
    t = 0.0
    h = 0.05
    err_old = 1e-4
    rejected = False
    steps = 0
    ia = 0
    while True:
        # apply every action due at time t (drug states jump; biology is continuous)
        while ia < n_act and act_t[order[ia]] <= t:
            a_idx = order[ia]
            s = act_slot[a_idx]
            for q in range(n_slots):
                if active[q]:
                    a, b = eq.lin2_at(sp[q], xa0[q], xb0[q], u[q], t - tb)
                    xa0[q] = a
                    xb0[q] = b
            tb = t
            xa0[s] += act_bolus[a_idx]
            xb0[s] += act_bolus[a_idx] * sp[s, eq.S_BIN]
            u[s] += act_rate[a_idx]
            if abs(u[s]) < 1e-12:
                u[s] = 0.0
            active[s] = True
            ia += 1
        # observations exactly at t
        while k_out < n_out and out_t[k_out] <= t:
            _record(k_out, t, y, p, aux, kinds, sp, xa0, xb0, u, tb, active, obs, out, xa, xb, drive)
            k_out += 1
        if k_out >= n_out:
            return STATUS_OK, steps
        t_end = t_final
        if ia < n_act and act_t[order[ia]] < t_end:
            t_end = act_t[order[ia]]

        # --- adaptive Dormand-Prince steps from t to t_end
        _eval(t, y, k1, p, aux, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive)
        while t < t_end:
            steps += 1
            if steps > max_steps:
                return STATUS_MAX_STEPS, steps
            clipped = False
            if t + h >= t_end:
                h_try = t_end - t
                clipped = True
            else:
                h_try = min(h, h_max)
            for i in range(n):
                ytmp[i] = y[i] + h_try * _A21 * k1[i]
            _eval(t + _C2 * h_try, ytmp, k2, p, aux, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive)
            for i in range(n):
                ytmp[i] = y[i] + h_try * (_A31 * k1[i] + _A32 * k2[i])
            _eval(t + _C3 * h_try, ytmp, k3, p, aux, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive)
            for i in range(n):
                ytmp[i] = y[i] + h_try * (_A41 * k1[i] + _A42 * k2[i] + _A43 * k3[i])
            _eval(t + _C4 * h_try, ytmp, k4, p, aux, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive)
            for i in range(n):
                ytmp[i] = y[i] + h_try * (
                    _A51 * k1[i] + _A52 * k2[i] + _A53 * k3[i] + _A54 * k4[i]
                )
            _eval(t + _C5 * h_try, ytmp, k5, p, aux, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive)
            for i in range(n):
                ytmp[i] = y[i] + h_try * (
                    _A61 * k1[i] + _A62 * k2[i] + _A63 * k3[i] + _A64 * k4[i] + _A65 * k5[i]
                )
            # stages 6 and 7 are both at t + h: one drug evaluation serves both
            _drugs_at(t + h_try, p, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive)
            eq.rhs(ytmp, k6, p, aux, drive)
            for i in range(n):
                ynew[i] = y[i] + h_try * (
                    _B1 * k1[i] + _B3 * k3[i] + _B4 * k4[i] + _B5 * k5[i] + _B6 * k6[i]
                )
            eq.rhs(ynew, k7, p, aux, drive)
            err = 0.0
            for i in range(n):
                sc = atol[i] + rtol * _REL_WEIGHT[i] * max(abs(y[i]), abs(ynew[i]))
                e = h_try * (
                    _E1 * k1[i] + _E3 * k3[i] + _E4 * k4[i] + _E5 * k5[i] + _E6 * k6[i]
                    + _E7 * k7[i]
                ) / sc
                err += e * e
            err = math.sqrt(err / n_err)
            if not math.isfinite(err):
                if h_try < 1e-9:
                    return STATUS_NONFINITE, steps
                h = 0.25 * h_try
                continue
            if err <= 1.0:
                # slots washed out by t + h (xa, xb still hold the stage-7 drug state there);
                # dropped after the dense output, which interpolates inside the step
                n_drop = 0
                for q in range(n_slots):
                    drop[q] = False
                    if active[q] and u[q] == 0.0 and _washed_out(kinds[q], sp[q], xa[q], xb[q]):
                        drop[q] = True
                        n_drop += 1
                # dense output for observation times inside (t, t + h_try)
                t_new = t + h_try
                while k_out < n_out and out_t[k_out] < t_new:
                    th = (out_t[k_out] - t) / h_try
                    th2 = th * th
                    th3 = th2 * th
                    th4 = th3 * th
                    for i in range(n):
                        acc = 0.0
                        acc += k1[i] * (DENSE_P[0, 0] * th + DENSE_P[0, 1] * th2
                                        + DENSE_P[0, 2] * th3 + DENSE_P[0, 3] * th4)
                        acc += k3[i] * (DENSE_P[2, 1] * th2 + DENSE_P[2, 2] * th3
                                        + DENSE_P[2, 3] * th4)
                        acc += k4[i] * (DENSE_P[3, 1] * th2 + DENSE_P[3, 2] * th3
                                        + DENSE_P[3, 3] * th4)
                        acc += k5[i] * (DENSE_P[4, 1] * th2 + DENSE_P[4, 2] * th3
                                        + DENSE_P[4, 3] * th4)
                        acc += k6[i] * (DENSE_P[5, 1] * th2 + DENSE_P[5, 2] * th3
                                        + DENSE_P[5, 3] * th4)
                        acc += k7[i] * (DENSE_P[6, 1] * th2 + DENSE_P[6, 2] * th3
                                        + DENSE_P[6, 3] * th4)
                        ydense[i] = y[i] + h_try * acc
                    _record(k_out, out_t[k_out], ydense, p, aux, kinds, sp, xa0, xb0, u, tb,
                            active, obs, out, xa, xb, drive)
                    k_out += 1
                t = t_new if not clipped else t_end
                if n_drop > 0:
                    for q in range(n_slots):
                        if drop[q]:
                            active[q] = False
                            xa0[q] = 0.0
                            xb0[q] = 0.0
                clamped = False
                for i in range(n):
                    v = ynew[i]
                    if not math.isfinite(v):
                        return STATUS_NONFINITE, steps
                    if i >= 2 and v < 0.0:
                        v = 0.0
                        clamped = True
                    y[i] = v
                if clamped:
                    _eval(t, y, k1, p, aux, kinds, sp, xa0, xb0, u, tb, active, xa, xb, drive)
                else:
                    for i in range(n):
                        k1[i] = k7[i]
                # PI step-size control (Hairer & Wanner's stabilised controller): the
                # previous error damps the step-size oscillation that plain control shows
                # where the step is limited by stability rather than accuracy
                e_acc = max(err, 1e-10)
                fac = min(10.0, max(0.2, 0.9 * e_acc ** -_PI_ALPHA * err_old ** _PI_BETA))
                if rejected:
                    fac = min(fac, 1.0)
                err_old = max(err, 1e-4)
                rejected = False
                if not clipped or fac < 1.0:
                    h = h_try * fac
            else:
                rejected = True
                h = h_try * max(0.2, 0.9 * err ** -_PI_ALPHA)
                if h < 1e-10:
                    return STATUS_STEP_UNDERFLOW, steps


@njit(cache=True, parallel=True, error_model="numpy")
def project_batch(params):
    """Parameter rows (n, P) projected at diagnosis (:func:`chemoio.model.equations.project_to_diagnosis`),
    in parallel; the input is not modified."""
    out = params.copy()
    for i in prange(out.shape[0]):
        eq.project_to_diagnosis(out[i])
    return out


@njit(cache=True, parallel=True, error_model="numpy")
def simulate_batch(params, kinds, sp, ev_t, ev_slot, ev_dur, ev_amt, out_t, obs, rtol, h_max,
                   max_steps):
    """All patients of a batch in parallel. Shapes: params (n, P); sp (n, S, W);
    ev_t, ev_dur, ev_amt (n, E); ev_slot (E,); out_t (T,); obs (K,).
    Returns out (n, K, T), status (n,), steps (n,)."""
    n = params.shape[0]
    out = np.empty((n, obs.size, out_t.size))
    status = np.zeros(n, dtype=np.int64)
    steps = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        st, ns = simulate_one(params[i], kinds, sp[i], ev_t[i], ev_slot, ev_dur[i], ev_amt[i],
                              out_t, obs, rtol, h_max, max_steps, out[i])
        status[i] = st
        steps[i] = ns
    return out, status, steps
