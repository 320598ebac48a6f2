"""CDISC ADaM-style analysis tables (ADSL, ADTTE, ADRS) as pandas DataFrames.

The tables follow the ADaM conventions a trial statistician expects (variable names,
one record per subject in ADSL, Basic Data Structure with PARAMCD/AVAL/AVALC in ADTTE and
ADRS, ``CNSR = 0`` for an event and ``1`` for censoring) so that simulated trials can be
analysed with the same programs as real ones. Dates are not simulated: relative study
days (``ADY``, ``STARTDY``) stand in for ADT/STARTDT. Low-cardinality text columns are
pandas categoricals, which keeps 10^6-subject tables small and survives Parquet round trips.

These are ADaM-*style* tables, not validated submission datasets (no define.xml, labels
or XPT transport).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from chemoio.analysis.recist import RESPONSE_LABELS, Response
from chemoio.errors import ChemoioInputError

__all__ = [
    "PARAMS_TTE",
    "ADRS_AVAL",
    "make_adsl",
    "make_adtte",
    "stack_adtte",
    "make_adrs",
    "add_adsl_vars",
    "write_adam",
]

#: Known time-to-event parameters: PARAMCD -> (PARAM, event text, censoring text).
PARAMS_TTE: dict[str, tuple[str, str, str]] = {
    "OS": ("Overall Survival", "DEATH", "LAST KNOWN ALIVE"),
    "PFS": (
        "Progression-Free Survival",
        "DISEASE PROGRESSION OR DEATH",
        "LAST ADEQUATE TUMOR ASSESSMENT",
    ),
    "EFS": (
        "Event-Free Survival",
        "PROGRESSION, RECURRENCE OR DEATH",
        "LAST ADEQUATE DISEASE ASSESSMENT",
    ),
    "DOR": (
        "Duration of Response",
        "DISEASE PROGRESSION OR DEATH",
        "LAST ADEQUATE TUMOR ASSESSMENT",
    ),
    "TTR": ("Time to Response", "RESPONSE (CR OR PR)", "LAST ADEQUATE TUMOR ASSESSMENT"),
}

#: Numeric AVAL for response text (admiralonco's convention: CR=1 ... NE=6, MISSING=7);
#: iUPD/iCPD are chemoio extensions.
ADRS_AVAL: dict[str, int] = {
    "CR": 1, "PR": 2, "SD": 3, "NON-CR/NON-PD": 4, "PD": 5, "NE": 6, "MISSING": 7,
    "iUPD": 8, "iCPD": 9,
}

#: Lower-case covariate names accepted for the usual ADSL variables.
_ALIASES: dict[str, str] = {
    "age": "AGE",
    "sex": "SEX",
    "ecog": "ECOGBL",
    "weight": "WEIGHTBL",
    "weight_kg": "WEIGHTBL",
    "bsa": "BSABL",
    "bsa_m2": "BSABL",
    "gfr": "GFRBL",
    "gfr_ml_min": "GFRBL",
    "egfr": "GFRBL",
    "ecog_ps": "ECOGBL",
    "age_years": "AGE",
    "pdl1_tps": "PDL1TPS",
    "pdl1_cps": "PDL1CPS",
    "pdl1_ic": "PDL1IC",
    "tmb": "TMB",
    "replicate": "REPLIC",
}

_ADAM_NAME = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")
_RESERVED_ADSL = {"STUDYID", "USUBJID", "SUBJID", "ARM", "ARMCD", "TRT01P", "ITTFL"}


# ----------------------------------------------------------------------------- helpers


def _ids(subject_ids: ArrayLike) -> np.ndarray:
    ids = np.asarray(subject_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ChemoioInputError("subject_ids", f"must be a non-empty 1-D array, got {ids.shape}")
    return np.asarray([str(i) for i in ids.tolist()], dtype=object)


def _usubjid(study_id: str, ids: np.ndarray) -> np.ndarray:
    if not isinstance(study_id, str) or not study_id.strip():
        raise ChemoioInputError("study_id", "must be a non-empty string")
    prefix = f"{study_id}-"
    return np.asarray([prefix + i for i in ids.tolist()], dtype=object)


def _per_subject(name: str, value: object, n: int) -> np.ndarray:
    """Broadcast a scalar to ``n`` subjects or check an array has length ``n``."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        return np.repeat(arr, n)
    if arr.shape != (n,):
        raise ChemoioInputError(
            name, f"must be a scalar or have {n} entries (one per subject), got {arr.shape}"
        )
    return arr


def _cat(values: ArrayLike) -> pd.Categorical:
    """Text categorical of any values (factorised once: fast for 10^6 rows)."""
    codes, uniques = pd.factorize(np.asarray(values), sort=True)
    return pd.Categorical.from_codes(codes, categories=[str(u) for u in uniques])


def _const(value: str, n: int) -> pd.Categorical:
    """The same text on ``n`` rows, as a one-category categorical."""
    return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[value])


def _choose(flag: np.ndarray, if_false: str, if_true: str) -> pd.Categorical:
    """Text chosen per row by a boolean flag, as a categorical."""
    if if_false == if_true:
        return _const(if_true, flag.size)
    return pd.Categorical.from_codes(flag.astype(np.int8), categories=[if_false, if_true])


def _covariate_name(key: str) -> str:
    name = _ALIASES.get(key.lower(), key.upper())
    if not _ADAM_NAME.match(name):
        raise ChemoioInputError(
            f"covariates[{key!r}]",
            f"{name!r} is not an ADaM variable name",
            "use 1-8 upper-case letters/digits starting with a letter, e.g. PDL1TPS",
        )
    if name in _RESERVED_ADSL:
        raise ChemoioInputError(f"covariates[{key!r}]", f"{name} is set by make_adsl itself")
    return name


# ----------------------------------------------------------------------------- ADSL


def make_adsl(
    study_id: str,
    subject_ids: ArrayLike,
    arm: str | ArrayLike,
    arm_code: str | ArrayLike,
    covariates: Mapping[str, ArrayLike] | None = None,
) -> pd.DataFrame:
    """Subject-level table, one row per subject.

    Columns: ``STUDYID, USUBJID (= STUDYID-SUBJID), SUBJID, ARM, ARMCD, TRT01P (= ARM),
    ITTFL ('Y')`` then one column per covariate. Covariate keys are upper-cased; the
    usual lower-case names map to ADaM names (``age -> AGE``, ``ecog -> ECOGBL``,
    ``weight``/``weight_kg -> WEIGHTBL``, ``bsa``/``bsa_m2 -> BSABL``,
    ``gfr``/``gfr_mL_min -> GFRBL``, ``pdl1_tps -> PDL1TPS``,
    ``pdl1_cps -> PDL1CPS``, ``pdl1_ic -> PDL1IC``, ``tmb -> TMB``, ``replicate -> REPLIC``).
    ``AGEU = 'YEARS'`` is added with AGE. Subjects must be unique within a replicate
    (the key is ``USUBJID``, or ``REPLIC`` + ``USUBJID`` when stacked replicates are given).
    """
    ids = _ids(subject_ids)
    n = ids.size
    usubjid = _usubjid(study_id, ids)
    arm_v = _per_subject("arm", arm, n)
    arm_cd = _per_subject("arm_code", arm_code, n)
    df = pd.DataFrame(
        {
            "STUDYID": _const(study_id, n),
            "USUBJID": usubjid,
            "SUBJID": ids,
            "ARM": _cat(arm_v),
            "ARMCD": _cat(arm_cd),
            "TRT01P": _cat(arm_v),
            "ITTFL": _const("Y", n),
        }
    )
    for key, values in (covariates or {}).items():
        name = _covariate_name(key)
        if name in df.columns:
            raise ChemoioInputError(f"covariates[{key!r}]", f"gives {name} twice")
        col = _per_subject(f"covariates[{key!r}]", values, n)
        df[name] = _cat(col) if col.dtype.kind in "USO" else col
        if name == "AGE":
            df["AGEU"] = _const("YEARS", n)
    keys = ["REPLIC", "USUBJID"] if "REPLIC" in df.columns else ["USUBJID"]
    if df.duplicated(keys).any():
        raise ChemoioInputError("subject_ids", f"must be unique per {' + '.join(keys)}")
    return df


# ----------------------------------------------------------------------------- ADTTE


def make_adtte(
    study_id: str,
    subject_ids: ArrayLike,
    paramcd: str,
    time_days: ArrayLike,
    event: ArrayLike,
    start_day: float | ArrayLike = 0.0,
    param: str | None = None,
    event_desc: str | None = None,
    censor_desc: str | None = None,
    replicate: ArrayLike | None = None,
) -> pd.DataFrame:
    """Time-to-event table (BDS), one row per subject for parameter ``paramcd``.

    ``time_days`` is the duration from the origin ``start_day`` (study day; 0 =
    randomisation, the first response day for DOR) to the event or censoring. Columns:
    ``STUDYID, USUBJID, PARAMCD, PARAM, AVAL (days), AVALU ('DAYS'), CNSR, STARTDY, ADY
    (= STARTDY + AVAL), EVNTDESC, CNSDTDSC`` (and ``REPLIC`` when given).
    ``CNSR = 0`` for an event and ``1`` for a censored time (ADaM convention). Subjects
    whose time is NaN (outside the analysis population, e.g. non-responders for DOR) get no
    row. PARAM and the descriptions default from :data:`PARAMS_TTE`.
    """
    ids = _ids(subject_ids)
    n = ids.size
    code = str(paramcd).upper()
    if not _ADAM_NAME.match(code):
        raise ChemoioInputError(
            "paramcd", f"{paramcd!r} is not a valid PARAMCD (1-8 letters/digits)"
        )
    known = PARAMS_TTE.get(code)
    if known is None and param is None:
        raise ChemoioInputError(
            "paramcd", f"unknown parameter {paramcd!r}",
            f"give param= for a custom one, or use one of {sorted(PARAMS_TTE)}",
        )
    long_name, ev_txt, cn_txt = known if known else (param, "EVENT", "CENSORED")
    aval = np.asarray(time_days, dtype=np.float64)
    if aval.shape != (n,):
        raise ChemoioInputError(
            "time_days", f"must have {n} entries (one per subject), got {aval.shape}"
        )
    if np.any(aval[~np.isnan(aval)] < 0):
        raise ChemoioInputError("time_days", "must be >= 0")
    ev = _per_subject("event", event, n).astype(bool)
    start = _per_subject("start_day", start_day, n).astype(np.float64)
    cnsr = np.where(ev, 0, 1).astype(np.int8)
    df = pd.DataFrame(
        {
            "STUDYID": _const(study_id, n),
            "USUBJID": _usubjid(study_id, ids),
            "PARAMCD": _const(code, n),
            "PARAM": _const(param or long_name, n),
            "AVAL": aval,
            "AVALU": _const("DAYS", n),
            "CNSR": cnsr,
            "STARTDY": start,
            "ADY": start + aval,
            "EVNTDESC": _choose(ev, "", event_desc or ev_txt),
            "CNSDTDSC": _choose(ev, censor_desc or cn_txt, ""),
        }
    )
    if replicate is not None:
        df.insert(1, "REPLIC", _per_subject("replicate", replicate, n))
    return df.loc[~np.isnan(aval)].reset_index(drop=True)


def stack_adtte(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack several single-parameter ADTTE tables into one, sorted by subject and PARAMCD."""
    if not tables:
        raise ChemoioInputError("tables", "needs at least one ADTTE table")
    cols = list(tables[0].columns)
    for i, t in enumerate(tables):
        if list(t.columns) != cols:
            raise ChemoioInputError(f"tables[{i}]", "has different columns from tables[0]")
    out = pd.concat(tables, ignore_index=True)
    for c in cols:
        if isinstance(tables[0][c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(str).astype("category")
    keys = [c for c in ("REPLIC", "USUBJID", "PARAMCD") if c in out.columns]
    if out.duplicated(keys).any():
        raise ChemoioInputError("tables", "contain the same subject and PARAMCD twice")
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- ADRS


def _visit_label(day: float) -> str:
    week = day / 7.0
    return f"WEEK {int(round(week))}" if abs(week - round(week)) < 1e-9 else f"DAY {day:g}"


def make_adrs(
    study_id: str,
    subject_ids: ArrayLike,
    visit_day: ArrayLike,
    codes: ArrayLike,
    bor: ArrayLike,
    cbor: ArrayLike | None = None,
    keep_ne: bool = False,
    keep_after_pd: bool = False,
    replicate: ArrayLike | None = None,
) -> pd.DataFrame:
    """Response table (BDS, long): per-visit ``OVR`` rows plus one ``BOR`` row per subject.

    ``codes`` ``(n, v)`` are per-visit :class:`~chemoio.analysis.recist.Response` codes and
    ``bor`` ``(n,)`` the best overall response; pass ``cbor`` (e.g. the confirmed BOR) to add
    a ``CBOR`` row per subject. Columns: ``STUDYID, USUBJID, PARAMCD, PARAM, AVISIT,
    AVISITN (week), ADY, AVALC (CR/PR/SD/PD/NE/iUPD/iCPD), AVAL`` (:data:`ADRS_AVAL`).
    ``USUBJID`` is categorical here (a long table). ``ADY`` of a BOR row is the day of the first scan with that response or better (for
    CR/PR/SD; an SD from an unconfirmed PR is dated at the PR scan), of the first PD scan for
    PD, and NaN for NE.

    By default NE visits (no scan: death, dropout, cut-off) and visits after the first PD
    or iCPD (scanning stops at progression) are left out, as in a real ADRS where only
    performed assessments appear; ``keep_ne`` / ``keep_after_pd`` keep them. Rows are
    sorted by subject, parameter (OVR, BOR, CBOR) and visit; ``replicate`` adds ``REPLIC``.
    """
    ids = _ids(subject_ids)
    n = ids.size
    day = np.asarray(visit_day, dtype=np.float64)
    c = np.asarray(codes)
    if c.ndim != 2 or c.shape[0] != n:
        raise ChemoioInputError("codes", f"must have shape ({n}, visits), got {c.shape}")
    if day.shape != (c.shape[1],):
        raise ChemoioInputError(
            "visit_day", f"must have {c.shape[1]} entries (one per visit), got {day.shape}"
        )
    b = np.asarray(bor)
    if b.shape != (n,):
        raise ChemoioInputError("bor", f"must have {n} entries (one per subject), got {b.shape}")
    for name, arr in (("codes", c), ("bor", b)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ChemoioInputError(name, "must hold integer Response codes")
        if arr.size and (arr.min() < 0 or arr.max() >= len(RESPONSE_LABELS)):
            raise ChemoioInputError(name, "contains values that are not Response codes")
    usubjid = _usubjid(study_id, ids)

    keep = np.ones(c.shape, dtype=bool)
    if not keep_ne:
        keep &= c != Response.NE
    if not keep_after_pd:
        prog = np.isin(c, (Response.PD, Response.iCPD))
        after = np.cumsum(prog, axis=1) - prog > 0
        keep &= ~after
    rows, cols = np.nonzero(keep)  # row-major: already ordered by subject, then visit
    params = [("OVR", "Overall Response by Visit"), ("BOR", "Best Overall Response")]
    best = [b]
    if cbor is not None:
        cb = np.asarray(cbor)
        if cb.shape != (n,) or not np.issubdtype(cb.dtype, np.integer):
            raise ChemoioInputError(
                "cbor", f"must hold {n} integer Response codes (one per subject), got {cb.shape}"
            )
        best.append(cb)
        params.append(("CBOR", "Best Confirmed Overall Response"))

    # place rows directly in (subject, parameter, visit) order: per subject its OVR rows,
    # then one row per best-response parameter
    n_ovr = keep.sum(axis=1)
    per_subject = n_ovr + len(best)
    offset = np.cumsum(per_subject) - per_subject
    total = int(per_subject.sum())
    rank = np.arange(rows.size) - (np.cumsum(n_ovr) - n_ovr)[rows]
    subj = np.empty(total, dtype=np.int64)
    par = np.empty(total, dtype=np.int8)
    visit = np.empty(total, dtype=np.int64)
    ady = np.empty(total, dtype=np.float64)
    code = np.empty(total, dtype=np.int64)
    pos = offset[rows] + rank
    subj[pos], par[pos], visit[pos], ady[pos], code[pos] = rows, 0, cols, day[cols], c[rows, cols]
    for k, bk in enumerate(best, start=1):
        pos = offset + n_ovr + (k - 1)
        subj[pos], par[pos], visit[pos] = np.arange(n), k, -1
        ady[pos], code[pos] = _first_day(bk, c, day), bk
    visit_labels = [_visit_label(d) for d in day] + ["OVERALL"]
    visit_code = np.where(visit < 0, len(visit_labels) - 1, visit)
    subj_code, subj_uniques = pd.factorize(usubjid)
    out = pd.DataFrame(
        {
            "STUDYID": _const(study_id, subj.size),
            "USUBJID": pd.Categorical.from_codes(subj_code[subj], categories=subj_uniques),
            "PARAMCD": pd.Categorical.from_codes(par, categories=[p[0] for p in params]),
            "PARAM": pd.Categorical.from_codes(par, categories=[p[1] for p in params]),
            "AVISIT": pd.Categorical.from_codes(visit_code, categories=visit_labels),
            "AVISITN": np.where(visit < 0, np.nan, day[np.maximum(visit, 0)] / 7.0)
            if day.size
            else np.full(subj.size, np.nan),
            "ADY": ady,
            "AVALC": pd.Categorical.from_codes(code, categories=list(RESPONSE_LABELS)),
            "AVAL": _AVAL_BY_CODE[code],
        }
    )
    if replicate is not None:
        out.insert(1, "REPLIC", _per_subject("replicate", replicate, n)[subj])
    return out


_AVAL_BY_CODE = np.asarray([ADRS_AVAL[label] for label in RESPONSE_LABELS], dtype=np.int8)


def _first_day(best: np.ndarray, codes: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Day of the scan that dates a best response (NaN for NE or without such a scan).

    CR/PR/SD: first scan at least that good; PD/iUPD/iCPD: first scan with that code.
    """
    n = best.size
    if day.size == 0:
        return np.full(n, np.nan)
    b = best[:, None]
    match = np.where(b <= Response.SD, codes <= b, codes == b) & (b != Response.NE)
    return np.where(match.any(axis=1), day[np.argmax(match, axis=1)], np.nan)


# ----------------------------------------------------------------------------- joins and output


def add_adsl_vars(
    table: pd.DataFrame, adsl: pd.DataFrame, variables: Sequence[str] = ("ARM", "ARMCD", "TRT01P")
) -> pd.DataFrame:
    """Copy subject-level variables from ADSL into a BDS table (join on USUBJID[, REPLIC])."""
    keys = [k for k in ("REPLIC", "USUBJID") if k in table.columns and k in adsl.columns]
    missing = [v for v in variables if v not in adsl.columns]
    if missing:
        raise ChemoioInputError("variables", f"not in ADSL: {missing}")
    extra = adsl[keys + [v for v in variables if v not in keys]]
    out = table.merge(extra, on=keys, how="left", validate="many_to_one")
    return out


def write_adam(
    tables: Mapping[str, pd.DataFrame],
    out_dir: str | Path,
    formats: Sequence[str] = ("parquet", "csv"),
) -> dict[str, list[Path]]:
    """Write each table as ``<name>.parquet`` / ``<name>.csv`` (lower-case name) in ``out_dir``.

    Returns the written paths per table. Parquet keeps dtypes (categoricals, int8 CNSR);
    CSV is plain text without the index.
    """
    allowed = {"parquet", "csv"}
    bad = [f for f in formats if f not in allowed]
    if bad or not formats:
        raise ChemoioInputError(
            "formats", f"unknown or empty formats {bad}", "use 'parquet' and/or 'csv'"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    for name, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            raise ChemoioInputError(f"tables[{name!r}]", "must be a pandas DataFrame")
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", name):
            raise ChemoioInputError(
                f"tables[{name!r}]", "name must be letters, digits or _ (e.g. 'adsl')"
            )
        stem = name.lower()
        paths = []
        for fmt in formats:
            path = out / f"{stem}.{fmt}"
            if fmt == "parquet":
                df.to_parquet(path, index=False)
            else:
                df.to_csv(path, index=False)
            paths.append(path)
        written[name] = paths
    return written
