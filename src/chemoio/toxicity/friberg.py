r"""Friberg semi-mechanistic model of chemotherapy-induced neutropenia.

Structure (Friberg LE et al., J Clin Oncol 2002;20:4713-4721, PMID 12488418): a
proliferating compartment of drug-sensitive progenitors, three transit (maturation)
compartments and the circulating neutrophils, all in 10^9 cells/L:

.. math::

    \dot P &= k_{tr} P \,(1 - E(t))\,(\mathrm{Circ}_0/\mathrm{Circ})^{\gamma} - k_{tr} P \\
    \dot T_1 &= k_{tr}(P - T_1), \quad \dot T_2 = k_{tr}(T_1 - T_2), \quad
    \dot T_3 = k_{tr}(T_2 - T_3) \\
    \dot{\mathrm{Circ}} &= k_{tr}(T_3 - \mathrm{Circ}), \qquad k_{tr} = 4/\mathrm{MTT}

All five start at :math:`\mathrm{Circ}_0`, the steady state without drug. The drug effect
is linear and additive over the cytotoxics of a regimen,
:math:`E(t) = \eta_{slope}\sum_d \mathrm{slope}_d\, C_d(t)`, with :math:`C_d` the plasma
concentration of chemoio's own linear PK (the slot CL and V of
:func:`chemoio.model.pkpd.build_slots`, with the patient's covariates and PK random
effects). Additivity (no synergy or antagonism between agents) is an assumption, the usual
one when single-agent slopes are combined.

Numerics
--------
Fixed steps on a grid that starts at day 0: one day, or a quarter day while the drug effect
changes quickly (an infusion running, or more than ``SMALL_STEP_EFFECT`` of effect per day).
Dose times of a regimen are whole days (and delays whole weeks), so every dose falls on a
step boundary. Within a step the PK is integrated exactly (one-compartment amount with bolus
and zero-order infusions; infusion ends split the step), so the drug effect enters through
its exact step mean :math:`\bar E = \sum_d \mathrm{slope}_d \int C_d\,dt / h`. With
:math:`\bar E` and the feedback (taken at the step midpoint, predicted from the chain's first
two derivatives) held over the step, the marrow system is linear and is solved exactly
(:func:`_marrow_step`). This agrees with an adaptive solver that integrates the continuous
concentration (scipy ``solve_ivp``, LSODA, rtol 1e-10) to better than 1 % of the nadir and
0.05 x 10^9/L on the day grid (tested in ``tests/test_toxicity.py``); KEYNOTE-189 with 100
replicates (61,600 patients, pemetrexed until progression over 16.7 months) takes about 2 s.

Sources of every default are in :data:`SYSTEM_PARAMETERS` and in each drug file's
``myelotoxicity`` block (docs/drugs.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from chemoio import _jit_cache  # noqa: F401  (numba cache location)

# ----------------------------------------------------------------------------------------
# System-related parameters (shared by all drugs)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcedValue:
    value: float
    unit: str
    source: str


#: Typical values and between-patient SDs (log-normal) of the system parameters.
SYSTEM_PARAMETERS: dict[str, SourcedValue] = {
    "circ0_1e9_per_L": SourcedValue(
        5.22, "10^9/L",
        "Kloft C et al., Clin Cancer Res 2006;12:5481-5490, PMID 17000683 (docetaxel arm, baseline "
        "ANC 5.22; values as encoded in DDMORE model DDMODEL00000224, Netterberg 2017)"),
    "omega_circ0": SourcedValue(
        0.253, "1", "Kloft 2006, PMID 17000683 (variance 0.064 on the log scale, DDMODEL00000224)"),
    "mtt_h": SourcedValue(
        124.0, "h",
        "Friberg LE et al., J Clin Oncol 2002;20:4713-4721, PMID 12488418 (paclitaxel fit, "
        "DDMORE DDMODEL00000186; that entry is the leukocyte fit). Chosen over Kloft's docetaxel "
        "84 h because chemoio uses one value for all drugs and the platinum/pemetrexed/taxane "
        "regimens of the calibration trials have their neutrophil nadir at day 10-14, which "
        "MTT 124 h reproduces (84 h puts it at day 7, the docetaxel nadir)"),
    "omega_mtt": SourcedValue(
        0.172, "1", "Friberg 2002, PMID 12488418 (variance 0.0296, DDMODEL00000186)"),
    "gamma": SourcedValue(
        0.239, "1", "Friberg 2002, PMID 12488418 (paclitaxel fit, DDMODEL00000186; no "
        "between-patient variability, as there)"),
    "omega_slope": SourcedValue(
        0.42, "1",
        "Friberg 2002, PMID 12488418 (variance 0.176 of the paclitaxel slope, DDMODEL00000186); "
        "applied as one marrow-sensitivity factor shared by all drugs of a patient (assumed)"),
    "anc_min_at_entry_1e9_per_L": SourcedValue(
        1.5, "10^9/L",
        "assumed: usual eligibility criterion (ANC >= 1.5 x 10^9/L); lower sampled baselines "
        "are raised to it"),
}

#: CTCAE v5 'neutrophil count decreased' grade limits (x 10^9/L): grade g if ANC < limit.
#: Grade 1 starts below the lower limit of normal, taken as 2.0 (assumed; laboratories use
#: 1.8-2.0).
CTCAE_ANC_LIMITS = {1: 2.0, 2: 1.5, 3: 1.0, 4: 0.5}

DEFAULT_STEP_DAYS = 1.0
#: Step while drug is in the body (dose days).
DEFAULT_DRUG_STEP_DAYS = 0.25
#: After the last myelotoxic dose the marrow is followed this many days (nadir and recovery).
FOLLOW_AFTER_LAST_DOSE_DAYS = 42.0


def system_value(name: str) -> float:
    return SYSTEM_PARAMETERS[name].value


def ctcae_grade(anc: np.ndarray | float) -> np.ndarray:
    """CTCAE grade (0-4) of 'neutrophil count decreased' for ANC values in 10^9/L."""
    a = np.asarray(anc, dtype=float)
    g = np.zeros(a.shape, dtype=np.int8)
    for grade, limit in CTCAE_ANC_LIMITS.items():
        g[a < limit] = grade
    return g


@dataclass(frozen=True)
class PatientMarrow:
    """Per-patient system parameters: baseline ANC (10^9/L), k_tr (1/day), gamma and the
    multiplicative marrow-sensitivity factor on every drug slope."""

    circ0: np.ndarray
    ktr_per_day: np.ndarray
    gamma: np.ndarray
    slope_factor: np.ndarray

    @classmethod
    def typical(cls, n: int) -> PatientMarrow:
        return cls.from_normals(np.zeros((n, 3)))

    @classmethod
    def from_normals(cls, z: np.ndarray) -> PatientMarrow:
        """From standard normals ``z`` (n, 3): columns baseline, MTT, slope."""
        z = np.asarray(z, dtype=float)
        circ0 = system_value("circ0_1e9_per_L") * np.exp(system_value("omega_circ0") * z[:, 0])
        circ0 = np.maximum(circ0, system_value("anc_min_at_entry_1e9_per_L"))
        mtt_day = system_value("mtt_h") / 24.0 * np.exp(system_value("omega_mtt") * z[:, 1])
        n = z.shape[0]
        return cls(
            circ0=np.ascontiguousarray(circ0),
            ktr_per_day=np.ascontiguousarray(4.0 / mtt_day),
            gamma=np.full(n, system_value("gamma")),
            slope_factor=np.ascontiguousarray(np.exp(system_value("omega_slope") * z[:, 2])),
        )

    def take(self, rows) -> PatientMarrow:
        return PatientMarrow(self.circ0[rows], self.ktr_per_day[rows], self.gamma[rows], self.slope_factor[rows])


#: Tag of the toxicity random-number stream (keeps it apart from the population's blocks).
_STREAM_TAG = 0x70C1C17
_BLOCK = 1024
N_MARROW_NORMALS = 3


def marrow_normals(seed: int, index: np.ndarray) -> np.ndarray:
    """Standard normals (n, 3) for the marrow random effects of patients with global
    indices ``index``. Like the population's draws they depend only on (seed, index): block
    ``b`` of 1024 indices has its own generator ``default_rng([seed, tag, b])``."""
    idx = np.asarray(index, dtype=np.int64)
    out = np.empty((idx.size, N_MARROW_NORMALS))
    if idx.size == 0:
        return out
    blocks = idx // _BLOCK
    for b in np.unique(blocks):
        block = np.random.default_rng([int(seed), _STREAM_TAG, int(b)]).standard_normal((_BLOCK, N_MARROW_NORMALS))
        sel = blocks == b
        out[sel] = block[idx[sel] % _BLOCK]
    return out


# ----------------------------------------------------------------------------------------
# Kernel
# ----------------------------------------------------------------------------------------
# Event kinds
KIND_OTHER = 0  # not myelotoxic (antibody, placebo): only its time may move with a delay
KIND_CYCLE_START = 1  # myelotoxic dose on day 1 of a cycle: the delay rule is applied
KIND_WITHIN_CYCLE = 2  # myelotoxic dose a week or more into a cycle (d8, d15): omitted if ANC low
KIND_CONTINUATION = 3  # myelotoxic dose on the days right after day 1 (d2-d5): follows day 1

# Rule vector layout (float64 array)
R_ENABLED, R_ANC_MIN, R_STEP, R_MAX_DELAY, R_ANC_MIN_WITHIN, R_REDUCE_BELOW, R_REDUCE_FACTOR, \
    R_MAX_REDUCTIONS, R_MOVES_ALL, R_WITHIN_ENABLED = range(10)
N_RULE = 10

# Per-check flags (int8 bit field)
F_DELAYED, F_SKIPPED, F_REDUCED, F_STOPPED = 1, 2, 4, 8

_MAXI = 4  # concurrent infusions per drug slot
SMALL_STEP_EFFECT = 0.1  # use the short step while drug effect x day step exceeds this


@njit(cache=True)
def _marrow_step(y, dt, q, ktr, circ0, gamma, e):
    """Advance (P, T1, T2, T3, Circ) over dt with the drug effect e (step mean) held and the
    feedback taken at the step's midpoint (predicted from the start); q = exp(-ktr dt).

    With the feedback frozen the system is linear: P(t) = P0 exp((mu - ktr) t) with
    mu = ktr (1 - e) fb, and the transit chain (rate ktr) is solved exactly for that input:
    T_k(dt) = q [sum_j T_{k-j}(0) a^j / j! + P0 a^k S_k(x)], a = ktr dt, x = mu dt,
    S_k(x) = sum_m x^m / (k+m)!, computed for k = 4 and then by the stable backward
    recurrence S_{k-1} = x S_k + 1/(k-1)!.
    """
    c = y[4] if y[4] > 1e-12 else 1e-12
    # Circ at the midpoint from its first two derivatives (the chain gives them exactly)
    d1 = ktr * (y[3] - c)
    d2 = ktr * ktr * (y[2] - 2.0 * y[3] + c)
    c_mid = c + 0.5 * dt * d1 + 0.125 * dt * dt * d2
    if c_mid < 0.5 * c:
        c_mid = 0.5 * c
    fb = math.exp(gamma * math.log(circ0 / c_mid))
    a = ktr * dt
    x = a * (1.0 - e) * fb
    ex = math.exp(x)
    if abs(x) > 0.1:
        x2 = x * x
        s4 = (ex - (1.0 + x + 0.5 * x2 + x2 * x / 6.0)) / (x2 * x2)
    else:
        term = 1.0 / 24.0
        s4 = term
        for m in range(1, 8):
            term *= x / (4 + m)
            s4 += term
    s3 = x * s4 + 1.0 / 6.0
    s2 = x * s3 + 0.5
    s1 = x * s2 + 1.0
    p0 = y[0] if y[0] > 0.0 else 0.0
    t1, t2, t3 = y[1], y[2], y[3]
    a2 = a * a / 2.0
    a3 = a2 * a / 3.0
    pa = p0 * a
    y[0] = p0 * q * ex
    y[1] = q * (t1 + pa * s1)
    y[2] = q * (t2 + t1 * a + pa * a * s2)
    y[3] = q * (t3 + t2 * a + t1 * a2 + pa * a * a * s3)
    y[4] = q * (c + t3 * a + t2 * a2 + t1 * a3 + pa * a * a * a * s4)


@njit(cache=True)
def _pk_step(amt, inf_rate, inf_end, kel, t0, t1, out_int, ex_std, dt_std):
    """Advance the drug amounts (mg) over [t0, t1] exactly; out_int[s] = integral of amount.
    ``ex_std[s, j] = exp(-kel[s] dt_std[j])`` saves the exponential for the usual steps."""
    n_s = amt.shape[0]
    dt = t1 - t0
    for s in range(n_s):
        k = kel[s]
        a = amt[s]
        if a == 0.0:
            infusing = False
            for q in range(_MAXI):
                if inf_rate[s, q] > 0.0:
                    infusing = True
            if not infusing:
                out_int[s] = 0.0
                continue
        else:
            infusing = False
            for q in range(_MAXI):
                if inf_rate[s, q] > 0.0:
                    infusing = True
        if not infusing:
            j = -1
            for jj in range(dt_std.shape[0]):
                if dt == dt_std[jj]:
                    j = jj
            ex = ex_std[s, j] if j >= 0 else math.exp(-k * dt)
            out_int[s] = a * (1.0 - ex) / k
            amt[s] = a * ex
            continue
        total = 0.0
        tc = t0
        while tc < t1 - 1e-12:
            tn = t1
            r = 0.0
            for q in range(_MAXI):
                if inf_rate[s, q] > 0.0:
                    r += inf_rate[s, q]
                    if inf_end[s, q] < tn and inf_end[s, q] > tc + 1e-12:
                        tn = inf_end[s, q]
            tau = tn - tc
            ex = math.exp(-k * tau)
            frac = (1.0 - ex) / k
            total += a * frac + r / k * (tau - frac)
            a = a * ex + r * frac
            for q in range(_MAXI):
                if inf_rate[s, q] > 0.0 and inf_end[s, q] <= tn + 1e-12:
                    inf_rate[s, q] = 0.0
            tc = tn
        amt[s] = a
        out_int[s] = total


@njit(cache=True)
def _advance(target, state, y, amt, inf_rate, inf_end, kel, vol, slope, ktr, circ0, gamma, h, h_drug,
             pk_int, grid, grid_out, gi, track, ex_std, dt_std):
    """Integrate from state[0] (time) to ``target``. Steps end on multiples of ``h`` (of
    ``h_drug`` while drug is in the body; dose times are whole days). track[0] = running
    minimum of ANC since the last reset, track[1] its day. Returns the next grid index."""
    t = state[0]
    n_s = amt.shape[0]
    q_h = math.exp(-ktr * h)
    q_d = math.exp(-ktr * h_drug)
    while t < target - 1e-9:
        # small steps only while the drug effect changes quickly (infusion running, or a
        # step's worth of effect above SMALL_STEP_EFFECT); otherwise day steps with exact PK
        any_drug = False
        fast = False
        e_now = 0.0
        for s in range(n_s):
            if amt[s] > 0.0:
                any_drug = True
                e_now += slope[s] * amt[s] / vol[s]
            for q in range(_MAXI):
                if inf_rate[s, q] > 0.0:
                    any_drug = True
                    fast = True
        if e_now * h > SMALL_STEP_EFFECT:
            fast = True
        hh = h_drug if fast else h
        t_next = (math.floor(t / hh + 1e-9) + 1.0) * hh
        if t_next > target:
            t_next = target
        dt = t_next - t
        e = 0.0
        if any_drug:
            _pk_step(amt, inf_rate, inf_end, kel, t, t_next, pk_int, ex_std, dt_std)
            for s in range(n_s):
                e += slope[s] * pk_int[s] / vol[s]
                # drop a residue whose remaining effect (integral of E) is negligible
                if amt[s] * slope[s] / (vol[s] * kel[s]) < 1e-7:
                    amt[s] = 0.0
            e /= dt
        c_prev = y[4]
        if dt == h:
            q = q_h
        elif dt == h_drug:
            q = q_d
        else:
            q = math.exp(-ktr * dt)
        _marrow_step(y, dt, q, ktr, circ0, gamma, e)
        # grid output (linear interpolation inside the step)
        while gi < grid.shape[0] and grid[gi] <= t_next + 1e-9:
            w = (grid[gi] - t) / dt if dt > 0 else 1.0
            if w < 0.0:
                w = 0.0
            grid_out[gi] = c_prev + w * (y[4] - c_prev)
            gi += 1
        t = t_next
        if y[4] < track[0]:
            track[0] = y[4]
            track[1] = t
    state[0] = t
    return gi


# decisions of the dose rule (shared by the kernel and the pure-Python wrappers in delays.py)
GIVE, WAIT, OMIT = 0, 1, 2
KEEP, REDUCE, STOP = 0, 1, 2


@njit(cache=True)
def delay_decision(anc, delay_so_far, anc_min, max_delay):
    """Day 1 of a cycle (or a re-check): GIVE if ANC >= anc_min, else WAIT for the next
    re-check while the postponement is below max_delay, else OMIT the cycle."""
    if anc >= anc_min:
        return GIVE
    if delay_so_far < max_delay - 1e-9:
        return WAIT
    return OMIT


@njit(cache=True)
def reduction_decision(previous_nadir, n_reductions, reduce_below, max_reductions):
    """At day 1 of a cycle: REDUCE the dose if the previous cycle's nadir was below
    reduce_below (grade 4) and reductions are left, STOP the cytotoxics if none are left,
    else KEEP."""
    if previous_nadir < reduce_below:
        if n_reductions < max_reductions:
            return REDUCE
        return STOP
    return KEEP


@njit(cache=True, parallel=True)
def simulate_kernel(ev_time, ev_kind, ev_point, ev_slot, ev_dur, order, amount,
                    kel, vol, slope, circ0, ktr, gamma, rule, h, h_drug, follow_days, end_cap, grid,
                    out_time, out_amount, ck_day, ck_delay, ck_flags, iv_min, iv_min_day, grid_anc):
    """All patients in parallel; each patient's numbers depend only on its own inputs.

    Events (E,) are the regimen's nominal times; ``order`` processes them by nominal time,
    cycle starts first at equal times. ``ev_point[e]`` is the check point (cycle start
    index, 0..K-1) of a myelotoxic event, -1 for others. ``ev_slot[e]`` indexes the
    myelotoxic slots (kel, vol, slope are (n, S)). Outputs per patient: actual event times
    and amounts (n, E); per check point the day it was first checked, the delay given, flags,
    and the minimum ANC (and its day) from that check point to the next one (n, K).
    After the last myelotoxic dose the marrow is followed ``follow_days`` more days, but
    not past ``end_cap`` (n,), and always up to the last ``grid`` day (ANC output grid).
    """
    n = amount.shape[0]
    n_ev = ev_time.shape[0]
    n_s = kel.shape[1]
    for p in prange(n):
        y = np.empty(5)
        for j in range(5):
            y[j] = circ0[p]
        amt = np.zeros(n_s)
        inf_rate = np.zeros((n_s, _MAXI))
        inf_end = np.zeros((n_s, _MAXI))
        pk_int = np.zeros(n_s)
        dt_std = np.empty(2)
        dt_std[0] = h
        dt_std[1] = h_drug
        ex_std = np.empty((n_s, 2))
        for s_ in range(n_s):
            ex_std[s_, 0] = math.exp(-kel[p, s_] * h)
            ex_std[s_, 1] = math.exp(-kel[p, s_] * h_drug)
        state = np.zeros(1)
        track = np.empty(2)
        track[0] = circ0[p]
        track[1] = 0.0
        g_out = grid_anc[p]
        gi = 0
        offset = 0.0
        factor = 1.0
        n_red = 0
        stopped = False
        cur = -1
        skip_point = -1
        last_dose = -1.0
        enabled = rule[R_ENABLED] > 0.5
        moves_all = rule[R_MOVES_ALL] > 0.5
        kel_p = kel[p]
        vol_p = vol[p]
        slope_p = slope[p]
        for i in range(n_ev):
            e_ = order[i]
            kind = ev_kind[e_]
            a = amount[p, e_]
            if kind == KIND_OTHER:
                out_time[p, e_] = ev_time[e_] + (offset if moves_all else 0.0)
                out_amount[p, e_] = a
                continue
            pt = ev_point[e_]
            ta = ev_time[e_] + offset
            if kind == KIND_CYCLE_START and pt != cur:
                gi = _advance(ta, state, y, amt, inf_rate, inf_end, kel_p, vol_p, slope_p, ktr[p],
                              circ0[p], gamma[p], h, h_drug, pk_int, grid, g_out, gi, track, ex_std, dt_std)
                if cur >= 0:
                    iv_min[p, cur] = track[0]
                    iv_min_day[p, cur] = track[1]
                cur = pt
                ck_day[p, pt] = ta
                flags = 0
                # dose reduction after a grade-4 nadir in the previous cycle
                if enabled and pt > 0 and not stopped:
                    r = reduction_decision(iv_min[p, pt - 1], n_red, rule[R_REDUCE_BELOW], rule[R_MAX_REDUCTIONS])
                    if r == REDUCE:
                        n_red += 1
                        factor *= rule[R_REDUCE_FACTOR]
                        flags |= F_REDUCED
                    elif r == STOP:
                        stopped = True
                        flags |= F_STOPPED
                delay = 0.0
                track[0] = y[4]
                track[1] = state[0]
                if enabled and not stopped:
                    d = delay_decision(y[4], delay, rule[R_ANC_MIN], rule[R_MAX_DELAY])
                    while d == WAIT:
                        delay += rule[R_STEP]
                        gi = _advance(ta + delay, state, y, amt, inf_rate, inf_end, kel_p, vol_p, slope_p,
                                      ktr[p], circ0[p], gamma[p], h, h_drug, pk_int, grid, g_out,
                                      gi, track, ex_std, dt_std)
                        d = delay_decision(y[4], delay, rule[R_ANC_MIN], rule[R_MAX_DELAY])
                    if d == OMIT:
                        skip_point = pt  # still too low at the longest delay: cycle omitted
                        flags |= F_SKIPPED
                    else:
                        offset += delay
                        ta += delay
                        if delay > 0.0:
                            flags |= F_DELAYED
                        ck_delay[p, pt] = delay
                ck_flags[p, pt] = flags
            elif kind == KIND_WITHIN_CYCLE or kind == KIND_CONTINUATION:
                if ta > state[0]:
                    gi = _advance(ta, state, y, amt, inf_rate, inf_end, kel_p, vol_p, slope_p, ktr[p],
                                  circ0[p], gamma[p], h, h_drug, pk_int, grid, g_out, gi, track, ex_std, dt_std)
                if (kind == KIND_WITHIN_CYCLE and enabled and rule[R_WITHIN_ENABLED] > 0.5
                        and y[4] < rule[R_ANC_MIN_WITHIN]):
                    a = 0.0
            given = a * factor
            if stopped or pt == skip_point:
                given = 0.0
            out_time[p, e_] = ta
            out_amount[p, e_] = given
            if given > 0.0 and ta >= state[0] - 1e-9:
                last_dose = ta
                s = ev_slot[e_]
                if ev_dur[e_] > 0.0:
                    placed = False
                    for q in range(_MAXI):
                        if inf_rate[s, q] <= 0.0:
                            inf_rate[s, q] = given / ev_dur[e_]
                            inf_end[s, q] = state[0] + ev_dur[e_]
                            placed = True
                            break
                    if not placed:
                        amt[s] += given
                else:
                    amt[s] += given
        # follow the marrow to the end day (nadir and recovery after the last dose)
        target = state[0]
        if last_dose >= 0.0:
            target = last_dose + follow_days
            if target > end_cap[p]:
                target = end_cap[p]
        if grid.shape[0] > 0 and grid[grid.shape[0] - 1] > target:
            target = grid[grid.shape[0] - 1]
        gi = _advance(target, state, y, amt, inf_rate, inf_end, kel_p, vol_p, slope_p, ktr[p], circ0[p],
                      gamma[p], h, h_drug, pk_int, grid, g_out, gi, track, ex_std, dt_std)
        if cur >= 0:
            iv_min[p, cur] = track[0]
            iv_min_day[p, cur] = track[1]
