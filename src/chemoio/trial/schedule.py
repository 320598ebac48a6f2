"""Tumour-assessment (scan) schedules: ``"q6w to w48 then q9w"`` -> visit days.

Grammar (case-insensitive; whitespace free)::

    schedule := phase ("then" phase)*
    phase    := "q" N UNIT ["to" UNIT N]     repeat every N weeks/days, up to the given time
              | UNIT N                       one scan at that time ("w9", "d63")
    UNIT     := "w" (weeks) | "d" (days)     "q6w", "q42d", "to w48", "to d336"

Times count from randomisation (study day 1 = day 0, as in regimens). The first phase starts at
day 0, so ``q6w`` scans at weeks 6, 12, 18, ...; the first scan is one interval after
randomisation. A repeating phase scans at ``start + k * interval`` (k = 1, 2, ...) while that is
at or before its ``to`` bound; the next phase starts from the last scan of the previous one
(``q6w to w18 then q9w`` -> weeks 6, 12, 18, 27, 36, ...). A phase without ``to`` repeats until
the horizon and must be the last one; a last phase with ``to`` ends the scans there.

>>> ScanSchedule.parse("q6w to w18 then q9w").visit_days(300).tolist()
[42.0, 84.0, 126.0, 189.0, 252.0]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from chemoio.errors import ChemoioInputError

FIELD = "scan_schedule"

_REPEAT = re.compile(r"^q(?P<n>\d+(?:\.\d+)?)(?P<u>[wd])(?:to(?P<tu>[wd])(?P<t>\d+(?:\.\d+)?))?$")
_SINGLE = re.compile(r"^(?P<u>[wd])(?P<n>\d+(?:\.\d+)?)$")
_UNIT_DAYS = {"w": 7.0, "d": 1.0}
_EXAMPLE = "e.g. 'q8w', 'q6w to w48 then q9w' or 'w12 then q6w to w48 then q12w'"


@dataclass(frozen=True)
class ScanPhase:
    """One phase: scans every ``interval_days`` up to ``until_day`` (None = open-ended), or a
    single scan at ``until_day`` when ``interval_days`` is None."""

    interval_days: float | None
    until_day: float | None

    def text(self) -> str:
        if self.interval_days is None:
            return _fmt_time(self.until_day)
        t = _fmt_time(self.interval_days)
        out = f"q{t[1:]}{t[0]}"
        if self.until_day is not None:
            out += " to " + _fmt_time(self.until_day)
        return out


def _fmt_time(days: float | None) -> str:
    assert days is not None
    if days % 7 == 0:
        return f"w{days / 7:g}"
    return f"d{days:g}"


@dataclass(frozen=True)
class ScanSchedule:
    """A parsed scan schedule. Build it with :meth:`parse`."""

    text: str
    phases: tuple[ScanPhase, ...]

    @classmethod
    def parse(cls, text: str) -> ScanSchedule:
        if not isinstance(text, str) or not text.strip():
            raise ChemoioInputError(FIELD, f"expected a schedule text, got {text!r}", _EXAMPLE)
        parts = re.split(r"\bthen\b", text.strip().lower())
        phases: list[ScanPhase] = []
        last_day = 0.0
        for i, raw in enumerate(parts):
            token = re.sub(r"\s+", "", raw).replace(",", "")
            if not token:
                raise ChemoioInputError(FIELD, f"empty phase {i + 1} in {text!r}", _EXAMPLE)
            m = _REPEAT.match(token)
            if m:
                interval = float(m["n"]) * _UNIT_DAYS[m["u"]]
                if interval <= 0:
                    raise ChemoioInputError(FIELD, f"interval must be > 0 in {raw.strip()!r}", _EXAMPLE)
                until = float(m["t"]) * _UNIT_DAYS[m["tu"]] if m["t"] is not None else None
                if until is None and i < len(parts) - 1:
                    raise ChemoioInputError(
                        FIELD,
                        f"phase {raw.strip()!r} repeats without end but is followed by 'then'",
                        "give its end, e.g. 'q6w to w48 then q9w'",
                    )
                if until is not None and until < last_day + interval:
                    raise ChemoioInputError(
                        FIELD,
                        f"phase {raw.strip()!r} has no scan: it ends at day {until:g}, before the first "
                        f"scan at day {last_day + interval:g}",
                    )
                phases.append(ScanPhase(interval, until))
                if until is not None:
                    last_day = last_day + interval * np.floor((until - last_day) / interval + 1e-9)
                continue
            m = _SINGLE.match(token)
            if m:
                day = float(m["n"]) * _UNIT_DAYS[m["u"]]
                if day <= last_day:
                    raise ChemoioInputError(
                        FIELD,
                        f"scan {raw.strip()!r} (day {day:g}) is not after the previous scan (day {last_day:g})",
                    )
                phases.append(ScanPhase(None, day))
                last_day = day
                continue
            raise ChemoioInputError(FIELD, f"cannot read phase {raw.strip()!r} of {text!r}", _EXAMPLE)
        return cls(text=text.strip(), phases=tuple(phases))

    @property
    def first_scan_day(self) -> float:
        """Day of the first scheduled scan."""
        p = self.phases[0]
        return p.until_day if p.interval_days is None else p.interval_days  # type: ignore[return-value]

    def visit_days(self, horizon_days: float) -> np.ndarray:
        """Scan days (float, ascending) at or before ``horizon_days``."""
        if not np.isfinite(horizon_days) or horizon_days < 0:
            raise ChemoioInputError("horizon_days", f"must be a finite number >= 0, got {horizon_days!r}")
        out: list[float] = []
        start = 0.0
        for p in self.phases:
            if p.interval_days is None:
                start = float(p.until_day)  # type: ignore[arg-type]
                out.append(start)
                continue
            stop = horizon_days if p.until_day is None else min(p.until_day, horizon_days)
            k = int(np.floor((stop - start) / p.interval_days + 1e-9))
            if k >= 1:
                days = start + p.interval_days * np.arange(1, k + 1)
                out.extend(days.tolist())
                start = float(days[-1])
            if p.until_day is not None and p.until_day > horizon_days:
                break
        arr = np.asarray(out, dtype=float)
        return arr[arr <= horizon_days + 1e-9]

    def to_text(self) -> str:
        """Canonical text (``then``-joined phases in weeks where whole)."""
        return " then ".join(p.text() for p in self.phases)


def parse_schedule(text: str) -> ScanSchedule:
    """Same as :meth:`ScanSchedule.parse`."""
    return ScanSchedule.parse(text)
