"""RECIST 1.1 (and a simplified iRECIST) on simulated sums of longest diameters.

All functions work on whole cohorts at once: arrays are shaped ``(n_patients, n_visits)``
and every step is vectorised over patients with numpy; only the (few) scan visits are
looped over. Nothing here depends on the mechanistic model: the input is a matrix of sums
of longest diameters (SLD, mm) at the scheduled scans, a baseline SLD per patient, the scan
days, and optionally the day a new lesion first exists.

Conventions (see ``docs/endpoints.md`` for the full definitions and sources):

* Day 0 is the baseline scan (usually randomisation); ``visit_day`` lists the on-study
  scans, all > 0 and strictly increasing.
* A missing measurement (``NaN``: no scan because of death, dropout or data cut-off) is
  not evaluable (``NE``).
* Codes are small integers (:class:`Response`) stored as ``int8`` to keep 10^6-patient
  cohorts cheap.

References: Eisenhauer et al., Eur J Cancer 2009;45:228-247 (RECIST 1.1);
Seymour et al., Lancet Oncol 2017;18:e143-e152 (iRECIST);
Yoon et al., Eur J Cancer 2016;53:5-15 (observer variability meta-analysis).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from chemoio.errors import ChemoioInputError

__all__ = [
    "Response",
    "RESPONSE_LABELS",
    "DEFAULT_READER_CV",
    "DEFAULT_READER_SD_MM",
    "labels",
    "add_measurement_noise",
    "classify_visits",
    "classify_visits_irecist",
    "best_overall_response",
    "objective_response",
    "disease_control",
    "progression_day",
    "duration_of_response",
    "best_pct_change",
]

#: Multiplicative reader variability (coefficient of variation) of one SLD reading.
#: Yoon et al. 2016 (meta-analysis of 12 studies) pooled the 95 % limits of agreement of the
#: relative difference between two observers measuring the *sum* of several lesions at
#: about -19 % to +20 %. A difference of two independent readings has SD = sqrt(2) * CV, so
#: CV = 0.195 / 1.96 / sqrt(2) ~= 0.07.
DEFAULT_READER_CV: float = 0.07
#: Additive reading error in mm (calliper / pixel resolution on CT). Assumed.
DEFAULT_READER_SD_MM: float = 1.0


class Response(IntEnum):
    """Per-visit and best overall response codes.

    The integer order is "best first" for CR < PR < SD < PD; NE, iUPD and iCPD come after.
    """

    CR = 0
    PR = 1
    SD = 2
    PD = 3
    NE = 4
    iUPD = 5  # iRECIST unconfirmed progression  # noqa: N815
    iCPD = 6  # iRECIST confirmed progression  # noqa: N815


#: Text code for each :class:`Response` value (index with the integer code).
RESPONSE_LABELS: tuple[str, ...] = tuple(r.name for r in Response)

_CODE_DTYPE = np.int8
_PROGRESSION = (int(Response.PD), int(Response.iCPD))


def labels(codes: ArrayLike) -> NDArray[np.str_]:
    """Map integer response codes to their text codes (``'CR'``, ``'PR'``, ...)."""
    arr = np.asarray(codes)
    if arr.size and (arr.min() < 0 or arr.max() >= len(RESPONSE_LABELS)):
        raise ChemoioInputError("codes", "contains values that are not Response codes")
    return np.asarray(RESPONSE_LABELS)[arr]


# ----------------------------------------------------------------------------- input checks


def _float_array(name: str, x: ArrayLike, ndim: int) -> NDArray[np.float64]:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ChemoioInputError(name, f"must be numeric ({exc})") from None
    if arr.ndim != ndim:
        raise ChemoioInputError(name, f"must be a {ndim}-D array, got shape {arr.shape}")
    return arr


def _check_visit_day(visit_day: ArrayLike, n_visits: int) -> NDArray[np.float64]:
    day = _float_array("visit_day", visit_day, 1)
    if day.shape[0] != n_visits:
        raise ChemoioInputError(
            "visit_day", f"has {day.shape[0]} entries but the SLD matrix has {n_visits} visits"
        )
    if not np.all(np.isfinite(day)) or np.any(day <= 0):
        raise ChemoioInputError("visit_day", "must be finite and > 0 (day 0 is the baseline)")
    if np.any(np.diff(day) <= 0):
        raise ChemoioInputError("visit_day", "must be strictly increasing")
    return day


def _check_codes(codes: ArrayLike, visit_day: ArrayLike) -> tuple[NDArray, NDArray[np.float64]]:
    c = np.asarray(codes)
    if c.ndim != 2:
        raise ChemoioInputError("codes", f"must be a 2-D (patients, visits) array, got {c.shape}")
    if not np.issubdtype(c.dtype, np.integer):
        raise ChemoioInputError("codes", "must hold integer Response codes")
    day = _check_visit_day(visit_day, c.shape[1])
    return c, day


def _per_patient(name: str, x: ArrayLike | None, n: int, default: float) -> NDArray[np.float64]:
    if x is None:
        return np.full(n, default)
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ChemoioInputError(name, f"must have shape ({n},) (one per patient), got {arr.shape}")
    return arr


def _check_sld(
    sld_mm: ArrayLike,
    baseline_mm: ArrayLike,
    visit_day: ArrayLike,
    new_lesion_day: ArrayLike | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    sld = _float_array("sld_mm", sld_mm, 2)
    n, v = sld.shape
    base = _float_array("baseline_mm", baseline_mm, 1)
    if base.shape[0] != n:
        raise ChemoioInputError(
            "baseline_mm", f"has {base.shape[0]} entries but sld_mm has {n} patients"
        )
    if np.any(base[~np.isnan(base)] <= 0):
        raise ChemoioInputError(
            "baseline_mm", "must be > 0 (RECIST needs measurable disease at baseline)"
        )
    if np.any(sld[~np.isnan(sld)] < 0):
        raise ChemoioInputError("sld_mm", "must be >= 0 (or NaN for a missing scan)")
    day = _check_visit_day(visit_day, v)
    nl = _per_patient("new_lesion_day", new_lesion_day, n, np.inf)
    nl = np.where(np.isnan(nl), np.inf, nl)
    if np.any(nl <= 0):
        raise ChemoioInputError(
            "new_lesion_day", "must be > 0; lesions present at day 0 are baseline disease"
        )
    return sld, base, day, nl


# ----------------------------------------------------------------------------- noise


def add_measurement_noise(
    sld_mm: ArrayLike,
    rng: np.random.Generator | int | None,
    cv: float = DEFAULT_READER_CV,
    sd_mm: float = DEFAULT_READER_SD_MM,
) -> NDArray[np.float64]:
    r"""Return a reader's measurement of the true SLD (any shape; NaN stays NaN).

    .. math::

        \text{obs} = \max\bigl(0,\ \text{true}\cdot e^{\sigma z_1 - \sigma^2/2} + s\, z_2\bigr),
        \quad \sigma^2 = \log(1 + \mathrm{cv}^2),\ z_{1,2} \sim N(0, 1)

    The multiplicative part is log-normal with mean 1 and coefficient of variation ``cv``;
    the additive part (SD ``sd_mm``) models calliper resolution and keeps readings of a
    vanished tumour near, not exactly at, zero. Readings are never negative.

    Defaults: ``cv = 0.07`` from the inter-observer limits of agreement for sums of
    lesions in Yoon et al., Eur J Cancer 2016;53:5-15 (about +/-19.5 % for the difference of
    two readers, i.e. 0.195 / 1.96 / sqrt(2) per reading); ``sd_mm = 1.0`` is assumed.
    Apply it to the baseline as well as to the follow-up scans.
    """
    if not np.isfinite(cv) or cv < 0:
        raise ChemoioInputError("cv", f"must be >= 0, got {cv}")
    if not np.isfinite(sd_mm) or sd_mm < 0:
        raise ChemoioInputError("sd_mm", f"must be >= 0, got {sd_mm}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    true = np.asarray(sld_mm, dtype=np.float64)
    sigma = np.sqrt(np.log1p(cv * cv))
    factor = np.exp(sigma * gen.standard_normal(true.shape) - 0.5 * sigma * sigma)
    obs = true * factor + sd_mm * gen.standard_normal(true.shape)
    return np.maximum(obs, 0.0, where=~np.isnan(obs), out=obs)


# ----------------------------------------------------------------------------- RECIST 1.1


def classify_visits(
    sld_mm: ArrayLike,
    baseline_mm: ArrayLike,
    visit_day: ArrayLike,
    new_lesion_day: ArrayLike | None = None,
    cr_mm: float = 5.0,
    pr_change: float = -0.30,
    pd_change: float = 0.20,
    pd_abs_mm: float = 5.0,
) -> NDArray[np.int8]:
    r"""RECIST 1.1 overall response at each scan from target-lesion sums.

    Parameters
    ----------
    sld_mm
        ``(n, v)`` measured SLD at each scan (noise already applied); NaN = no scan.
    baseline_mm
        ``(n,)`` baseline SLD (> 0); a NaN baseline makes every visit NE.
    visit_day
        ``(v,)`` scan days after baseline (day 0), strictly increasing.
    new_lesion_day
        ``(n,)`` day a new lesion first exists (``inf`` or NaN = never).
    cr_mm
        An SLD at or below this is read as "all target lesions gone" (CR). A simulated
        tumour never reaches exactly zero, so a detection limit stands in for
        disappearance; 5 mm is half the 10 mm RECIST minimum measurable size (assumed).

    Rules at visit *j* (in this order, later ones win):

    * SD by default;
    * PR if :math:`(x_j - b)/b \le -30\%` (change vs baseline *b*);
    * CR if :math:`x_j \le` ``cr_mm``;
    * PD if :math:`x_j - m_j \ge 0.2\, m_j` **and** :math:`x_j - m_j \ge 5` mm, where
      :math:`m_j = \min(b, x_1..x_{j-1})` is the nadir (baseline included), or if a new
      lesion exists on or before the visit day;
    * NE if the SLD is NaN;
    * once PD, every later visit is PD (progression is absorbing in RECIST 1.1).

    Non-target lesions are not modelled. Returns ``int8`` codes of shape ``(n, v)``.
    """
    sld, base, day, nl = _check_sld(sld_mm, baseline_mm, visit_day, new_lesion_day)
    n, v = sld.shape
    codes = np.empty((n, v), dtype=_CODE_DTYPE)
    nadir = base.copy()
    progressed = np.zeros(n, dtype=bool)
    no_baseline = np.isnan(base)
    for j in range(v):
        x = sld[:, j]
        codes[:, j] = _classify_one(
            x, base, nadir, nl <= day[j], cr_mm, pr_change, pd_change, pd_abs_mm
        )
        codes[no_baseline, j] = Response.NE
        codes[progressed, j] = Response.PD
        progressed |= codes[:, j] == Response.PD
        nadir = np.fmin(nadir, x)
    return codes


def _classify_one(
    x: NDArray[np.float64],
    base: NDArray[np.float64],
    nadir: NDArray[np.float64],
    new_lesion: NDArray[np.bool_],
    cr_mm: float,
    pr_change: float,
    pd_change: float,
    pd_abs_mm: float,
) -> NDArray[np.int8]:
    """RECIST 1.1 code for one visit of all patients (no memory except the nadir)."""
    missing = np.isnan(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = (x - base) / base
        rise = x - nadir
        pd_target = (rise >= pd_change * nadir) & (rise >= pd_abs_mm)
    code = np.full(x.shape, Response.SD, dtype=_CODE_DTYPE)
    code[change <= pr_change] = Response.PR
    code[x <= cr_mm] = Response.CR
    code[pd_target | new_lesion] = Response.PD
    code[missing] = Response.NE
    return code


def classify_visits_irecist(
    sld_mm: ArrayLike,
    baseline_mm: ArrayLike,
    visit_day: ArrayLike,
    new_lesion_day: ArrayLike | None = None,
    cr_mm: float = 5.0,
    confirm_min_days: float = 28.0,
    confirm_increase_mm: float = 5.0,
    pr_change: float = -0.30,
    pd_change: float = 0.20,
    pd_abs_mm: float = 5.0,
) -> NDArray[np.int8]:
    """Simplified iRECIST: RECIST progression is iUPD until confirmed (iCPD) or reset.

    Each visit is first read with the RECIST 1.1 rules of :func:`classify_visits`. The first
    RECIST PD opens an *iUPD* episode and records the SLD then (``x_u``) and whether a new
    lesion was already there. The episode is decided at the first measured scan at least
    ``confirm_min_days`` (4 weeks) later:

    * **iCPD** if the SLD has grown further by >= ``confirm_increase_mm`` (5 mm) over ``x_u``,
      or a new lesion is present that was not there at the iUPD scan;
    * otherwise, if the scan still meets RECIST PD (vs the nadir), it **stays iUPD** and the
      next measured scan decides again against the same ``x_u``;
    * otherwise the episode **resets**: the scan is read with the RECIST rules (CR/PR/SD
      vs baseline) and a new lesion already counted does not trigger progression again.

    Scans earlier than ``confirm_min_days`` after the iUPD and missed scans keep the
    iUPD status; iCPD is absorbing. iRECIST asks for the confirming scan 4-8 weeks after
    iUPD: schedule scans accordingly; a later first scan is still used.

    Simplifications (documented in ``docs/endpoints.md``): only target-lesion sums and a
    single new-lesion time are simulated, so "new lesion growth >= 5 mm", non-target
    progression and the new-lesion sum are not modelled; after reset the codes are written
    CR/PR/SD rather than iCR/iPR/iSD.
    """
    sld, base, day, nl = _check_sld(sld_mm, baseline_mm, visit_day, new_lesion_day)
    n, v = sld.shape
    codes = np.empty((n, v), dtype=_CODE_DTYPE)
    nadir = base.copy()
    pending = np.zeros(n, dtype=bool)  # inside an iUPD episode
    confirmed = np.zeros(n, dtype=bool)  # iCPD reached
    counted = np.zeros(n, dtype=bool)  # the new lesion has already triggered an iUPD
    x_u = np.full(n, np.nan)
    day_u = np.full(n, np.nan)
    lesion_at_u = np.zeros(n, dtype=bool)
    no_baseline = np.isnan(base)
    for j in range(v):
        x = sld[:, j]
        lesion_now = nl <= day[j]
        measured = ~np.isnan(x)
        # candidate RECIST reading, a counted new lesion does not count again
        recist = _classify_one(
            x, base, nadir, lesion_now & ~counted, cr_mm, pr_change, pd_change, pd_abs_mm
        )
        code = recist.copy()

        # open iUPD episodes decided at this scan
        decide = pending & measured & (day[j] - day_u >= confirm_min_days)
        with np.errstate(invalid="ignore"):
            grew = x - x_u >= confirm_increase_mm
        to_icpd = decide & (grew | (lesion_now & ~lesion_at_u))
        reset = decide & ~to_icpd
        waiting = pending & ~decide
        code[waiting & measured] = Response.iUPD
        code[to_icpd] = Response.iCPD
        confirmed |= to_icpd
        counted |= reset & lesion_now  # the persisting lesion no longer triggers iUPD
        pending &= ~decide

        # a decided scan that still meets RECIST PD stays iUPD, measured against the same
        # iUPD reference (so slow steady growth is confirmed once it adds up to 5 mm);
        # a fresh RECIST PD opens a new episode
        still = reset & (code == Response.PD)
        opens = ~pending & ~confirmed & ~still & (code == Response.PD)
        code[still | opens] = Response.iUPD
        pending |= still | opens
        x_u = np.where(opens, x, x_u)
        day_u = np.where(opens, day[j], day_u)
        lesion_at_u = np.where(opens, lesion_now, lesion_at_u)
        counted |= opens & lesion_now

        code[confirmed & ~to_icpd] = Response.iCPD
        code[no_baseline] = Response.NE
        codes[:, j] = code
        nadir = np.fmin(nadir, x)
    return codes


# ----------------------------------------------------------------------------- per patient


def best_overall_response(
    codes: ArrayLike,
    visit_day: ArrayLike,
    confirm_days: float = 28.0,
    min_sd_days: float = 42.0,
    confirm: bool = True,
) -> tuple[NDArray[np.int8], NDArray[np.bool_]]:
    """Best overall response (BOR) per patient and whether it is a confirmed CR/PR.

    Only scans before the first progression (PD or iCPD) count. With ``confirm=True``:

    * **CR** needs a later CR at least ``confirm_days`` (28) after the first one, with only
      CR or NE scans in between;
    * **PR** needs a later PR or CR at least ``confirm_days`` after a first PR/CR, with only
      CR/PR/NE scans in between (an SD, iUPD or PD scan breaks the sequence);
    * **SD** needs a CR, PR or SD scan at day >= ``min_sd_days`` (42; baseline is day 0).
      Unconfirmed CR/PR therefore count as SD when that scan exists;
    * otherwise **PD** if any progression was recorded (iRECIST codes: iCPD, else iUPD),
      otherwise **NE** (no assessable scan, or only early SD followed by no progression).

    With ``confirm=False`` (randomised trials, where RECIST 1.1 does not require
    confirmation) the best of CR > PR counted before progression is taken as is; SD keeps
    its minimum duration. Returns ``(bor int8 (n,), confirmed bool (n,))`` where
    ``confirmed`` is True when the BOR is a CR or PR that met the confirmation rule.
    """
    c, day = _check_codes(codes, visit_day)
    n, v = c.shape
    cr_conf = _confirmed_runs(c, day, (Response.CR,), confirm_days)
    pr_conf = _confirmed_runs(c, day, (Response.CR, Response.PR), confirm_days)
    before_prog = np.cumsum(np.isin(c, _PROGRESSION), axis=1) == 0
    any_cr = np.any((c == Response.CR) & before_prog, axis=1)
    any_pr = np.any((c == Response.PR) & before_prog, axis=1)
    stable = np.isin(c, (Response.CR, Response.PR, Response.SD)) & before_prog
    sd_ok = np.any(stable & (day[None, :] >= min_sd_days), axis=1)

    bor = np.full(n, Response.NE, dtype=_CODE_DTYPE)
    bor[np.any(c == Response.iUPD, axis=1)] = Response.iUPD
    bor[np.any(c == Response.iCPD, axis=1)] = Response.iCPD
    bor[np.any(c == Response.PD, axis=1)] = Response.PD
    bor[sd_ok] = Response.SD
    if confirm:
        bor[pr_conf] = Response.PR
        bor[cr_conf] = Response.CR
    else:
        bor[any_pr] = Response.PR
        bor[any_cr] = Response.CR
    confirmed = ((bor == Response.CR) & cr_conf) | ((bor == Response.PR) & pr_conf)
    return bor, confirmed


def _confirmed_runs(
    c: NDArray, day: NDArray[np.float64], qualifying: tuple[Response, ...], confirm_days: float
) -> NDArray[np.bool_]:
    """True where some run of qualifying scans (NE skipped) spans >= ``confirm_days``.

    A pair of qualifying scans ``i < j`` with ``day_j - day_i >= confirm_days`` and only
    qualifying or NE scans in between exists exactly when such a run exists, so one pass
    over the visits suffices.
    """
    n, v = c.shape
    start = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    q = np.asarray([int(r) for r in qualifying])
    for j in range(v):
        cj = c[:, j]
        good = np.isin(cj, q)
        start = np.where(good & np.isnan(start), day[j], start)
        start = np.where(~good & (cj != Response.NE), np.nan, start)
        with np.errstate(invalid="ignore"):
            ok |= good & (day[j] - start >= confirm_days)
    return ok


def objective_response(bor: ArrayLike) -> NDArray[np.bool_]:
    """True where the best overall response is CR or PR."""
    return np.isin(np.asarray(bor), (Response.CR, Response.PR))


def disease_control(bor: ArrayLike) -> NDArray[np.bool_]:
    """True where the best overall response is CR, PR or SD (disease control)."""
    return np.isin(np.asarray(bor), (Response.CR, Response.PR, Response.SD))


def progression_day(
    codes: ArrayLike, visit_day: ArrayLike, iupd_date: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Day of radiological progression, or censoring at the last assessable scan.

    Event at the first PD scan. For iRECIST codes the event is the first iCPD and, with
    ``iupd_date=True`` (the iRECIST convention), its date is the start of the iUPD episode it
    confirms. Patients without progression are censored at their last scan that was not NE
    (the "last adequate assessment" of the ADaM PFS convention), or day 0 if there was none.
    Deaths are not seen here: combine with death times for PFS.

    Returns ``(day (n,), event (n,))``.
    """
    c, day = _check_codes(codes, visit_day)
    n, v = c.shape
    out = np.zeros(n)
    event = np.zeros(n, dtype=bool)
    episode_start = np.full(n, np.nan)
    for j in range(v):
        cj = c[:, j]
        new = ~event
        iupd = cj == Response.iUPD
        episode_start = np.where(iupd & np.isnan(episode_start), day[j], episode_start)
        other = ~iupd & (cj != Response.NE) & (cj != Response.iCPD)
        episode_start = np.where(other, np.nan, episode_start)
        hit = new & np.isin(cj, _PROGRESSION)
        when = np.full(n, day[j])
        if iupd_date:
            when = np.where((cj == Response.iCPD) & ~np.isnan(episode_start), episode_start, when)
        out = np.where(hit, when, out)
        event |= hit
        out = np.where(new & ~hit & (cj != Response.NE), day[j], out)
    return out, event


def duration_of_response(
    codes: ArrayLike,
    visit_day: ArrayLike,
    responder: ArrayLike | None = None,
    death_day: ArrayLike | None = None,
    iupd_date: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Duration of response (DoR) from the first CR/PR scan to progression or death.

    ``responder`` (``(n,)`` bool, default: any CR/PR scan before progression) selects the
    patients; pass ``objective_response(bor)`` to restrict DoR to confirmed responders.
    The event is progression (see :func:`progression_day`) or death (``death_day``, NaN/inf
    = alive), whichever is first; otherwise censored at the last assessable scan.

    Returns ``(start_day, duration_days, event)``, NaN/False for non-responders.
    """
    c, day = _check_codes(codes, visit_day)
    n, v = c.shape
    before_prog = np.cumsum(np.isin(c, _PROGRESSION), axis=1) == 0
    resp_scan = np.isin(c, (Response.CR, Response.PR)) & before_prog
    has_resp = resp_scan.any(axis=1)
    first = np.where(has_resp, day[np.argmax(resp_scan, axis=1)], np.nan)
    if responder is not None and np.shape(responder) != (n,):
        raise ChemoioInputError("responder", f"must have shape ({n},), got {np.shape(responder)}")
    sel = has_resp if responder is None else np.asarray(responder, dtype=bool) & has_resp
    prog, prog_event = progression_day(c, day, iupd_date=iupd_date)
    death = _per_patient("death_day", death_day, n, np.inf)
    death = np.where(np.isnan(death), np.inf, death)
    end = np.where(prog_event, prog, np.inf)
    end = np.minimum(end, death)
    event = np.isfinite(end)
    end = np.where(event, end, prog)  # censor at the last adequate assessment
    duration = np.where(sel, end - first, np.nan)
    return np.where(sel, first, np.nan), duration, sel & event


def best_pct_change(sld_mm: ArrayLike, baseline_mm: ArrayLike) -> NDArray[np.float64]:
    r"""Best (most negative) percent change of SLD from baseline, for waterfall plots.

    :math:`100 \cdot \min_j (x_j - b) / b` over measured scans; NaN if none was measured.
    Pass only the scans up to progression if the plot should ignore later growth.
    """
    sld = _float_array("sld_mm", sld_mm, 2)
    base = _float_array("baseline_mm", baseline_mm, 1)
    if base.shape[0] != sld.shape[0]:
        raise ChemoioInputError(
            "baseline_mm", f"has {base.shape[0]} entries but sld_mm has {sld.shape[0]} patients"
        )
    best = np.fmin.reduce(sld, axis=1) if sld.shape[1] else np.full(sld.shape[0], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * (best - base) / base
