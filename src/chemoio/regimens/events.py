"""Dose events: the :class:`DoseTable` the engine consumes, and NONMEM-style event tables.

A :class:`DoseTable` holds one shared time grid of dose events (time, drug slot, infusion
duration) and a matrix of per-patient amounts in mg. :func:`to_events` writes it as a
NONMEM-style data set (one row per dose, or per run of equal doses with ``II``/``ADDL``) and
:func:`from_events` reads such a data set back. Time is in days throughout.

Columns written: ``ID TIME EVID AMT CMT RATE II ADDL DUR DRUG``. ``RATE`` is mg/day (0 for
a bolus); ``DUR`` is the infusion duration in days (an extra data item, as in rxode2, kept so
that zero-amount infusions and durations survive a round trip exactly); ``DRUG`` names the
compartment. NONMEM or mrgsolve read ``RATE`` and ignore the two extra columns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chemoio.errors import ChemoioInputError

EVENT_COLUMNS: tuple[str, ...] = ("ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "ADDL", "DUR", "DRUG")
REQUIRED_COLUMNS: tuple[str, ...] = ("ID", "TIME", "EVID", "AMT", "CMT")


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclasses.dataclass(frozen=True, eq=False)
class DoseTable:
    """Per-patient dose amounts on a time grid shared by all patients.

    The constructor puts events in a canonical order (time, then slot, then duration; exact
    ties keep their given order), checks shapes and signs, and stores read-only copies.

    Attributes:
        drugs: drug names, one slot per drug in order of first appearance.
        time_day: (n_events,) dose start times in days (study day 1 = 0), ascending.
        slot: (n_events,) index into ``drugs``.
        duration_day: (n_events,) infusion duration in days, 0 for a bolus.
        amount_mg: (n_patients, n_events) dose of each patient in mg (0 = dose not given).
    """

    drugs: tuple[str, ...]
    time_day: np.ndarray
    slot: np.ndarray
    duration_day: np.ndarray
    amount_mg: np.ndarray

    def __post_init__(self) -> None:
        time = np.asarray(self.time_day, dtype=np.float64).reshape(-1)
        slot = np.asarray(self.slot, dtype=np.int32).reshape(-1)
        dur = np.asarray(self.duration_day, dtype=np.float64).reshape(-1)
        amt = np.asarray(self.amount_mg, dtype=np.float64)
        n = time.shape[0]
        if amt.ndim != 2 or amt.shape[1] != n or slot.shape[0] != n or dur.shape[0] != n:
            raise ValueError(
                f"DoseTable shapes disagree: time {time.shape}, slot {slot.shape}, "
                f"duration {dur.shape}, amount {amt.shape} (expected (n_patients, {n}))"
            )
        if not np.all(np.isfinite(time)):
            raise ValueError("DoseTable times must be finite")
        # canonical order: time, then drug slot, then duration (stable for exact ties)
        order = np.lexsort((dur, slot, time))
        if np.any(order != np.arange(n)):
            time, slot, dur, amt = time[order], slot[order], dur[order], amt[:, order]
        if n and (slot.min() < 0 or slot.max() >= len(self.drugs)):
            raise ValueError("DoseTable slot out of range of drugs")
        if np.any(dur < 0) or np.any(amt < 0) or not np.all(np.isfinite(amt)):
            raise ValueError("DoseTable durations and amounts must be finite and non-negative")
        object.__setattr__(self, "drugs", tuple(str(d) for d in self.drugs))
        object.__setattr__(self, "time_day", _frozen(time))
        object.__setattr__(self, "slot", _frozen(slot))
        object.__setattr__(self, "duration_day", _frozen(dur))
        object.__setattr__(self, "amount_mg", _frozen(amt))

    @property
    def n_patients(self) -> int:
        return int(self.amount_mg.shape[0])

    @property
    def n_events(self) -> int:
        return int(self.time_day.shape[0])

    @property
    def n_drugs(self) -> int:
        return len(self.drugs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DoseTable):
            return NotImplemented
        return (
            self.drugs == other.drugs
            and np.array_equal(self.time_day, other.time_day)
            and np.array_equal(self.slot, other.slot)
            and np.array_equal(self.duration_day, other.duration_day)
            and np.array_equal(self.amount_mg, other.amount_mg)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"DoseTable(drugs={self.drugs}, n_patients={self.n_patients}, n_events={self.n_events})"
        )

    def total_mg(self) -> np.ndarray:
        """(n_patients, n_drugs) cumulative dose of each drug."""
        out = np.zeros((self.n_patients, self.n_drugs))
        for s in range(self.n_drugs):
            out[:, s] = self.amount_mg[:, self.slot == s].sum(axis=1)
        return out

    def stop_after(self, stop_day: np.ndarray | float) -> DoseTable:
        """A copy with each patient's doses of a drug set to 0 from that patient's stop time on.

        ``stop_day`` has shape (n_patients, n_drugs) (anything that broadcasts to it, e.g. a
        (n_patients, 1) column, works); a dose at time t is dropped when t >= stop_day. Use
        ``np.inf`` for no stop. Used for discontinuation at progression or toxicity.
        """
        shape = (self.n_patients, self.n_drugs)
        try:
            stop = np.broadcast_to(np.asarray(stop_day, dtype=np.float64), shape)
        except (ValueError, TypeError):
            raise ChemoioInputError(
                "stop_day",
                f"expected an array of shape {shape} (patients x drugs), "
                f"got shape {np.shape(stop_day)}",
            ) from None
        if np.any(np.isnan(stop)):
            raise ChemoioInputError("stop_day", "contains NaN (use np.inf for no stop)")
        keep = self.time_day[None, :] < stop[:, self.slot]
        return dataclasses.replace(self, amount_mg=np.where(keep, self.amount_mg, 0.0))


# -- NONMEM-style tables ------------------------------------------------------------------------


def expand_times(time: float, ii: float, addl: int) -> np.ndarray:
    """Times of a dose and its ADDL repeats: TIME + k*II for k = 0..ADDL."""
    return np.float64(time) + np.arange(int(addl) + 1, dtype=np.float64) * np.float64(ii)


def _grid_run_lengths(times: np.ndarray, durs: np.ndarray, single: np.ndarray) -> np.ndarray:
    """For one drug's events: the longest run that could start at each event, judging by the
    time grid alone (equal duration, constant interval that :func:`expand_times` reproduces
    exactly, no event flagged ``single``)."""
    m = len(times)
    longest = np.ones(m, dtype=np.int64)
    for i in range(m - 1):
        if single[i] or single[i + 1] or durs[i + 1] != durs[i]:
            continue
        step = times[i + 1] - times[i]
        if step <= 0:
            continue
        j = i + 1
        while j < m and not single[j] and durs[j] == durs[i] and expand_times(times[i], step, j - i)[-1] == times[j]:
            j += 1
        longest[i] = j - i
    return longest


def _patient_runs(amounts: np.ndarray, longest: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy runs of one drug for every patient at once.

    ``amounts`` is (n_patients, m); returns (patient, start event, run length) per row.
    A run starting at event k extends over equal amounts, at most ``longest[k]`` events.
    """
    n, m = amounts.shape
    same = np.ones((n, m), dtype=np.int64)  # equal-amount stretch starting at each event
    for k in range(m - 2, -1, -1):
        same[:, k] = np.where(amounts[:, k + 1] == amounts[:, k], same[:, k + 1] + 1, 1)
    next_start = np.zeros(n, dtype=np.int64)
    pats, starts, lengths = [], [], []
    for k in range(m):
        here = np.flatnonzero(next_start == k)
        if len(here) == 0:
            continue
        length = np.minimum(same[here, k], longest[k])
        pats.append(here)
        starts.append(np.full(len(here), k))
        lengths.append(length)
        next_start[here] = k + length
    return np.concatenate(pats), np.concatenate(starts), np.concatenate(lengths)


def to_events(table: DoseTable, ids: Sequence[int] | np.ndarray | None = None, compress: bool = True) -> pd.DataFrame:
    """Write a dose table as a NONMEM-style event table (one block of rows per patient).

    With ``compress=True`` consecutive doses of one drug with equal amount, equal duration and
    a constant interval become one row with ``II`` (days) and ``ADDL`` (number of additional
    doses; total doses = ADDL + 1). Zero-amount doses (e.g. after discontinuation) are kept so
    that the shared time grid survives the round trip. Rows are sorted by ID, TIME, CMT.
    """
    n_pat = table.n_patients
    if table.n_events == 0 or n_pat == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "DRUG" else float) for c in EVENT_COLUMNS})
    id_arr = _patient_ids(ids, n_pat)

    key = np.stack([table.time_day, table.slot.astype(np.float64), table.duration_day], axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    single = counts[inverse.reshape(-1)] > 1  # same time, drug and duration: never compressed

    pat_l, ev_l, len_l = [], [], []
    for s in range(table.n_drugs):
        idx = np.flatnonzero(table.slot == s)
        if len(idx) == 0:
            continue
        if compress:
            longest = _grid_run_lengths(table.time_day[idx], table.duration_day[idx], single[idx])
            p, k, length = _patient_runs(table.amount_mg[:, idx], longest)
        else:
            p = np.repeat(np.arange(n_pat), len(idx))
            k = np.tile(np.arange(len(idx)), n_pat)
            length = np.ones(len(p), dtype=np.int64)
        pat_l.append(p)
        ev_l.append(idx[k])
        # interval to the next dose of this drug (only used when the run has more than one dose)
        nxt = idx[np.minimum(k + 1, len(idx) - 1)]
        len_l.append((length, np.where(length > 1, table.time_day[nxt] - table.time_day[idx[k]], 0.0)))
    pat = np.concatenate(pat_l)
    ev = np.concatenate(ev_l)
    addl = np.concatenate([x[0] for x in len_l]) - 1
    ii = np.concatenate([x[1] for x in len_l])
    # events are in canonical (time, slot, duration) order, so sorting by (ID, event) gives
    # ID, TIME, CMT order and keeps identical events in table order
    order = np.lexsort((ev, id_arr[pat]))
    pat, ev, addl, ii = pat[order], ev[order], addl[order], ii[order]
    amt = table.amount_mg[pat, ev]
    dur = table.duration_day[ev]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(dur > 0, amt / np.where(dur > 0, dur, 1.0), 0.0)
    return pd.DataFrame(
        {
            "ID": id_arr[pat],
            "TIME": table.time_day[ev],
            "EVID": np.ones(len(ev), dtype=np.int64),
            "AMT": amt,
            "CMT": table.slot[ev].astype(np.int64) + 1,
            "RATE": rate,
            "II": ii,
            "ADDL": addl.astype(np.int64),
            "DUR": dur,
            "DRUG": np.array(table.drugs, dtype=object)[table.slot[ev]],
        }
    )


def _patient_ids(ids: Sequence[int] | np.ndarray | None, n_pat: int) -> np.ndarray:
    if ids is None:
        return np.arange(1, n_pat + 1, dtype=np.int64)
    raw = np.asarray(ids)
    if raw.shape != (n_pat,):
        raise ChemoioInputError("ids", f"expected {n_pat} patient ids, got shape {raw.shape}")
    if not np.issubdtype(raw.dtype, np.integer):
        if not np.issubdtype(raw.dtype, np.floating) or not np.all(raw == np.round(raw)):
            raise ChemoioInputError("ids", "patient ids must be integers")
    id_arr = raw.astype(np.int64)
    if len(np.unique(id_arr)) != n_pat:
        raise ChemoioInputError("ids", "patient ids must be unique")
    return id_arr


def _numeric(
    df: pd.DataFrame, col: str, rows: np.ndarray, *, integer: bool = False, default: float | None = None
) -> np.ndarray:
    """One column as floats, with an error naming the column and the first bad row.

    ``rows`` are the original row numbers of ``df``'s rows (for messages). Blank cells of an
    optional column (one with a ``default``) take the default; text is always an error.
    """
    if col not in df.columns:
        assert default is not None
        return np.full(len(df), default, dtype=np.float64)
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if default is not None:
        values = np.where(df[col].isna().to_numpy(), default, values)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ChemoioInputError(f"{col}[row {int(rows[i])}]", f"not a finite number: {df[col].iloc[i]!r}")
    if integer:
        frac = values != np.round(values)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise ChemoioInputError(f"{col}[row {int(rows[i])}]", f"must be a whole number, got {values[i]!r}")
    return values


def _check(values: np.ndarray, ok: np.ndarray, col: str, rows: np.ndarray, what: str) -> None:
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ChemoioInputError(f"{col}[row {int(rows[i])}]", f"{what}, got {values[i]!r}")


def from_events(df: pd.DataFrame, drugs: Sequence[str] | None = None) -> DoseTable:
    """Read a NONMEM-style event table back into a :class:`DoseTable`.

    Required columns: ID, TIME, EVID, AMT, CMT (names are case-insensitive); optional RATE,
    II, ADDL (default 0), DUR (infusion days; else AMT/RATE) and DRUG (names of the CMTs; else
    ``drugs`` or ``cmt1``, ``cmt2``...). Rows with EVID 0 are ignored; ADDL is expanded.
    Patients are ordered by ascending ID. An event one patient has and another lacks gets
    amount 0 for the other. A drug with no dose rows at all cannot be seen in the table; pass
    all names in ``drugs`` to keep its slot. Row numbers in errors count data rows from 0.
    """
    if not isinstance(df, pd.DataFrame):
        raise ChemoioInputError("events", f"expected a pandas DataFrame, got {type(df).__name__}")
    df = df.rename(columns={c: str(c).upper() for c in df.columns}).reset_index(drop=True)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ChemoioInputError("events", f"missing required column(s) {', '.join(missing)}")

    all_rows = np.arange(len(df))
    evid = _numeric(df, "EVID", all_rows, integer=True)
    _check(evid, np.isin(evid, (0, 1)), "EVID", all_rows, "only 1 (dose) and 0 (ignored) are supported")
    rows = np.flatnonzero(evid == 1)
    if len(rows) == 0:
        raise ChemoioInputError("events", "no dose rows (EVID 1)")
    d = df.iloc[rows].reset_index(drop=True)

    ids = _numeric(d, "ID", rows, integer=True)
    time = _numeric(d, "TIME", rows)
    amt = _numeric(d, "AMT", rows)
    cmt = _numeric(d, "CMT", rows, integer=True)
    rate = _numeric(d, "RATE", rows, default=0.0)
    ii = _numeric(d, "II", rows, default=0.0)
    addl = _numeric(d, "ADDL", rows, integer=True, default=0.0)
    _check(amt, amt >= 0, "AMT", rows, "must be >= 0")
    _check(rate, rate >= 0, "RATE", rows, "must be >= 0 (modelled rates -1/-2 are not supported)")
    _check(cmt, cmt >= 1, "CMT", rows, "must be a compartment number >= 1")
    _check(addl, addl >= 0, "ADDL", rows, "must be >= 0")
    _check(ii, ii >= 0, "II", rows, "must be >= 0")
    _check(ii, (addl == 0) | (ii > 0), "II", rows, "must be > 0 when ADDL > 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        duration = np.where(rate > 0, amt / np.where(rate > 0, rate, 1.0), 0.0)
    if "DUR" in d.columns:
        given = d["DUR"].notna().to_numpy()
        if given.any():
            dur = _numeric(d[given], "DUR", rows[given])
            _check(dur, dur >= 0, "DUR", rows[given], "must be >= 0")
            duration[given] = dur

    n_slots = int(cmt.max())
    names = _drug_names(d, rows, cmt, n_slots, drugs)

    # expand ADDL; the expanded order (row order) breaks ties between identical events
    counts = addl.astype(np.int64) + 1
    rep = np.repeat(np.arange(len(d)), counts)
    k = (np.arange(len(rep)) - np.repeat(np.cumsum(counts) - counts, counts)).astype(np.float64)
    ev_time = time[rep] + k * ii[rep]
    ev_slot = cmt[rep] - 1
    ev_dur = duration[rep]
    ev_amt = amt[rep]
    patients, ev_pat = np.unique(ids[rep].astype(np.int64), return_inverse=True)
    ev_pat = ev_pat.reshape(-1)

    # number repeated (time, drug, duration) events of a patient 0, 1, ... in row order
    order = np.lexsort((np.arange(len(rep)), ev_dur, ev_slot, ev_time, ev_pat))
    p, t, sl, du = ev_pat[order], ev_time[order], ev_slot[order], ev_dur[order]
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = (p[1:] != p[:-1]) | (t[1:] != t[:-1]) | (sl[1:] != sl[:-1]) | (du[1:] != du[:-1])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    occ = (np.arange(len(order)) - group_start).astype(np.float64)

    # the shared grid: every distinct (time, drug, duration, repeat number), sorted
    o2 = np.lexsort((occ, du, sl, t))
    first = np.ones(len(o2), dtype=bool)
    first[1:] = (t[o2][1:] != t[o2][:-1]) | (sl[o2][1:] != sl[o2][:-1]) | (du[o2][1:] != du[o2][:-1]) | (
        occ[o2][1:] != occ[o2][:-1]
    )
    event = np.empty(len(o2), dtype=np.int64)
    event[o2] = np.cumsum(first) - 1
    grid = o2[first]
    amount = np.zeros((len(patients), len(grid)))
    amount[p, event] = ev_amt[order]
    return DoseTable(
        drugs=tuple(names),
        time_day=t[grid],
        slot=sl[grid].astype(np.int32),
        duration_day=du[grid],
        amount_mg=amount,
    )


def _drug_names(
    d: pd.DataFrame, rows: np.ndarray, cmt: np.ndarray, n_slots: int, drugs: Sequence[str] | None
) -> list[str]:
    """Names of the CMTs, from the DRUG column, else ``drugs``, else cmt1, cmt2, ..."""
    names = [f"cmt{i + 1}" for i in range(n_slots)]
    if drugs is not None:
        if len(drugs) < n_slots:
            raise ChemoioInputError("drugs", f"{len(drugs)} names given but CMT goes up to {n_slots}")
        names = [str(d) for d in drugs]
    if "DRUG" in d.columns:
        pairs = pd.DataFrame({"cmt": cmt.astype(np.int64), "name": d["DRUG"].to_numpy(), "row": rows})
        pairs = pairs[pairs["name"].notna()].drop_duplicates(["cmt", "name"])
        pairs["name"] = pairs["name"].astype(str)
        pairs = pairs.drop_duplicates(["cmt", "name"])
        clash = pairs.duplicated("cmt")
        if clash.any():
            bad = pairs[clash].iloc[0]
            other = pairs[(pairs["cmt"] == bad["cmt"]) & ~clash].iloc[0]["name"]
            raise ChemoioInputError(
                f"DRUG[row {int(bad['row'])}]", f"CMT {int(bad['cmt'])} is named both {other!r} and {bad['name']!r}"
            )
        if drugs is None:
            for c, name in zip(pairs["cmt"], pairs["name"]):
                names[int(c) - 1] = name
    return names


def write_events(df: pd.DataFrame, path: str | Path) -> Path:
    """Write an event table to ``.csv`` or ``.parquet`` (chosen by the file suffix)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        df.to_csv(p, index=False)
    elif suffix in (".parquet", ".pq"):
        df.to_parquet(p, index=False)
    else:
        raise ChemoioInputError("path", f"unknown event-table format {p.suffix!r}", "use .csv or .parquet")
    return p


def read_events(path: str | Path) -> pd.DataFrame:
    """Read an event table written by :func:`write_events` (or any NONMEM-style CSV/Parquet)."""
    p = Path(path)
    if not p.is_file():
        raise ChemoioInputError("path", f"no such file: {str(p)!r}")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(p, float_precision="round_trip")
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(p)
    raise ChemoioInputError("path", f"unknown event-table format {p.suffix!r}", "use .csv or .parquet")
