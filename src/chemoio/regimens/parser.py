"""The regimen text grammar: reading a regimen string and writing one back.

A regimen is a list of items separated by ``;``. Each item is one drug on one schedule::

    regimen := item (";" item)*
    item    := DRUG [DOSE] [days] [interval] [cycles] [start] [infusion]

    DOSE     := NUMBER UNIT     UNIT in mg | mg/kg | mg/m2      "200 mg", "500 mg/m2"
              | "AUC" NUMBER    Calvert carboplatin dosing      "AUC5", "AUC 4.5"
    days     := "d" LIST        days within a cycle              "d1", "d1,8,15" (or "d1,d8,d15"), "d1-5"
    interval := "q" N "w" | "qw" | "q" N "d" | "qd" | "once"    cycle length
    cycles   := "x" N           number of cycles; omitted = until the simulation horizon
    start    := "start d" N | "start w" N                       study day of the first cycle
    infusion := "over" NUMBER ("min" | "h" | "d")               infusion duration

The item starts with the drug: its first word, plus any further words before the first
clause (names may contain hyphens and digits, e.g. ``5-fluorouracil``, and spaces, e.g.
``nab paclitaxel``). The clauses after it may come in any order. Matching is case-insensitive.
Only ``placebo`` may omit the dose. An item without an interval is a single cycle (one
administration per listed day).

This module turns text into plain dictionaries of :class:`~chemoio.regimens.regimen.DrugSchedule`
fields (:func:`parse_items`) and renders such fields back to text (:func:`format_item`).
Checks that need the drug library (known drug, allowed unit) happen in the model.
"""

from __future__ import annotations

import re
from typing import Any

from chemoio.errors import ChemoioInputError, suggest

PLACEBO = "placebo"

#: Dose units a regimen may use; "AUC" is carboplatin's target exposure in mg·min/mL.
UNITS: tuple[str, ...] = ("mg", "mg/kg", "mg/m2", "AUC")
_UNIT_SPELLINGS: dict[str, str] = {
    "mg": "mg",
    "mg/kg": "mg/kg",
    "mg/m2": "mg/m2",
    "mg/m^2": "mg/m2",
    "mg/m²": "mg/m2",
    # a dose "per day" is the dose of each listed day ("1000 mg/m2/day d1-4")
    "mg/day": "mg",
    "mg/d": "mg",
    "mg/kg/day": "mg/kg",
    "mg/kg/d": "mg/kg",
    "mg/m2/day": "mg/m2",
    "mg/m2/d": "mg/m2",
    "auc": "AUC",
}

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_NUM_RE = re.compile(rf"^{_NUM}$")
_NUM_UNIT_RE = re.compile(rf"^(?P<num>{_NUM})(?P<unit>[a-z/^²µ][^\s]*)$")
_AUC_RE = re.compile(r"^auc=?(?P<num>.*)$")
_DAYS_RE = re.compile(r"^d(?P<list>\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*)$")
_DAYS_LIKE_RE = re.compile(r"^d[\d,\-]+$")
_INTERVAL_RE = re.compile(r"^q(?:(?P<n>\d+)(?P<u>[dw])|(?P<bare>[dw]))$")
_INTERVAL_LIKE_RE = re.compile(r"^q[\w.]*$")
_CYCLES_RE = re.compile(r"^x(?P<n>.*)$")
_START_RE = re.compile(r"^(?P<u>d|day|w|week)(?P<n>[+-]?\d+)$")
_DURATION_RE = re.compile(
    rf"^(?P<num>{_NUM})(?P<u>min|mins|minutes?|h|hr|hrs|hours?|d|days?)$"
)
_HOURS_PER_UNIT = {"min": 1 / 60, "h": 1.0, "d": 24.0}

INTERVAL_HELP = "use q3w, q2w, qw, q4w, q6w, q21d, q14d, qd or once"


def _unit_of(token: str) -> str | None:
    return _UNIT_SPELLINGS.get(token.lower())


def _duration_unit(u: str) -> str:
    if u.startswith("m"):
        return "min"
    if u.startswith("h"):
        return "h"
    return "d"


class _ItemReader:
    """Reads the clauses of one item (already split into lower-case tokens)."""

    def __init__(self, index: int, item: str):
        self.index = index
        self.item = item
        self.tokens = item.lower().split()
        self.pos = 1
        self.fields: dict[str, Any] = {"drug": self.tokens[0]}
        self._interval_given = False

    # -- errors ---------------------------------------------------------------------------
    def _field(self, name: str | None = None) -> str:
        base = f"regimen[{self.index}]"
        return f"{base}.{name}" if name else base

    def fail(self, name: str | None, message: str, hint: str | None = None) -> ChemoioInputError:
        return ChemoioInputError(self._field(name), f"{message} in {self.item!r}", hint)

    def _set(self, key: str, value: Any, clause: str) -> None:
        if key in self.fields:
            raise self.fail(None, f"{clause} given twice")
        self.fields[key] = value

    # -- reading ------------------------------------------------------------------------------
    def _next(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str | None:
        tok = self._next()
        self.pos += 1
        return tok

    def _starts_clause(self, tok: str) -> bool:
        return bool(
            _AUC_RE.match(tok)
            or _NUM_RE.match(tok)
            or _NUM_UNIT_RE.match(tok)
            or _DAYS_LIKE_RE.match(tok)
            or _INTERVAL_LIKE_RE.match(tok)
            or re.match(r"^x[+-]?\d", tok)
            or tok in ("once", "start", "over")
            or _unit_of(tok) is not None
        )

    def _read_drug(self) -> None:
        """The drug is the first word plus any further words up to the first clause, so that
        names written with spaces ('nab paclitaxel') read as one name."""
        words = [self.tokens[0]]
        while self.pos < len(self.tokens) and not self._starts_clause(self.tokens[self.pos]):
            tok = self.tokens[self.pos]
            after = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
            if after is not None and _unit_of(after) is not None:
                raise self.fail("dose", f"dose {tok!r} is not a number")
            words.append(tok)
            self.pos += 1
        self.fields["drug"] = " ".join(words)

    def read(self) -> dict[str, Any]:
        self._read_drug()
        while self.pos < len(self.tokens):
            tok = self._take()
            assert tok is not None
            if _AUC_RE.match(tok):
                self._read_auc(tok)
            elif _NUM_RE.match(tok) or _NUM_UNIT_RE.match(tok):
                self._read_dose(tok)
            elif _DAYS_LIKE_RE.match(tok):
                self._read_days(tok)
            elif tok == "once":
                self._set("cycle_days", None, "interval")
            elif _INTERVAL_LIKE_RE.match(tok):
                self._read_interval(tok)
            elif tok.startswith("x") and len(tok) > 1:
                self._read_cycles(tok)
            elif tok == "start":
                self._read_start()
            elif tok == "over":
                self._read_infusion()
            elif _unit_of(tok) is not None:
                raise self.fail("dose", f"unit {tok!r} has no number before it")
            elif self._next() is not None and _unit_of(self._next() or "") is not None:
                raise self.fail("dose", f"dose {tok!r} is not a number")
            else:
                raise self.fail(
                    None,
                    f"unexpected token {tok!r}",
                    "an item reads like 'DRUG DOSE [d1,8] [q3w] [x4] [start d22] [over 30min]'",
                )
        return self._finish()

    def _read_number(self, text: str, field: str, what: str) -> float:
        if not _NUM_RE.match(text):
            raise self.fail(field, f"{what} {text!r} is not a number")
        return float(text)

    def _read_auc(self, tok: str) -> None:
        m = _AUC_RE.match(tok)
        assert m is not None
        num = m.group("num")
        if num == "":
            nxt = self._next()
            if nxt is None or not (_NUM_RE.match(nxt) or nxt.startswith(("-", "+"))):
                raise self.fail("dose", "AUC needs a number, e.g. 'AUC5'")
            num = self._take() or ""
        self._set("dose", self._read_number(num, "dose", "AUC"), "dose")
        self.fields["unit"] = "AUC"

    def _read_dose(self, tok: str) -> None:
        m = _NUM_UNIT_RE.match(tok)
        if m:
            num, unit_tok = m.group("num"), m.group("unit")
        else:
            num = tok
            unit_tok = self._next()
            looks_like_clause = unit_tok is None or bool(
                _DAYS_LIKE_RE.match(unit_tok)
                or _INTERVAL_LIKE_RE.match(unit_tok)
                or unit_tok in ("once", "start", "over")
                or re.match(r"^x\d", unit_tok)
            )
            if looks_like_clause:
                raise self.fail("unit", f"dose {num} has no unit", "write e.g. '200 mg'")
            self.pos += 1
        assert unit_tok is not None
        unit = _unit_of(unit_tok)
        if unit is None or unit == "AUC":
            raise self.fail(
                "unit",
                f"unknown dose unit {unit_tok!r}",
                suggest(unit_tok, ["mg", "mg/kg", "mg/m2"]) or "use mg, mg/kg, mg/m2 or AUC<n>",
            )
        self._set("dose", float(num), "dose")
        self.fields["unit"] = unit

    def _read_days(self, tok: str) -> None:
        try:
            days = days_from_text(tok)
        except ValueError as exc:
            raise self.fail("days", str(exc), "write e.g. d1, d1,8,15 or d1-5") from None
        self._set("days", days, "days")

    def _read_interval(self, tok: str) -> None:
        m = _INTERVAL_RE.match(tok)
        if not m:
            raise self.fail("interval", f"unknown interval {tok!r}", INTERVAL_HELP)
        if m.group("bare"):
            n, u = 1, m.group("bare")
        else:
            n, u = int(m.group("n")), m.group("u")
        if n <= 0:
            raise self.fail("interval", f"interval {tok!r} must be at least one day", INTERVAL_HELP)
        self._set("cycle_days", n * (7 if u == "w" else 1), "interval")
        self._interval_given = True

    def _read_cycles(self, tok: str) -> None:
        m = _CYCLES_RE.match(tok)
        assert m is not None
        text = m.group("n")
        if not re.fullmatch(r"[+-]?\d+", text):
            raise self.fail("cycles", f"number of cycles {tok!r} is not a whole number")
        n = int(text)
        if n < 1:
            raise self.fail("cycles", f"number of cycles must be at least 1, got {n}")
        self._set("cycles", n, "cycles")

    def _read_start(self) -> None:
        tok = self._take()
        if tok in ("day", "week", "d", "w"):
            nxt = self._take()
            tok = f"{tok}{nxt}" if nxt is not None else tok
        m = _START_RE.match(tok or "")
        if not m:
            raise self.fail("start_day", f"cannot read start {tok!r}", "write 'start d22' or 'start w13'")
        n = int(m.group("n"))
        day = n if m.group("u").startswith("d") else 7 * (n - 1) + 1
        if day < 1:
            raise self.fail("start_day", f"start must be on study day 1 or later, got day {day}")
        self._set("start_day", day, "start")

    def _read_infusion(self) -> None:
        tok = self._take()
        if tok is not None and _NUM_RE.match(tok):
            unit = self._take()
            tok = f"{tok}{unit}" if unit is not None else tok
        m = _DURATION_RE.match(tok or "")
        if not m:
            raise self.fail(
                "infusion_h", f"cannot read infusion time {tok!r}", "write 'over 30min', 'over 3h' or 'over 2d'"
            )
        hours = float(m.group("num")) * _HOURS_PER_UNIT[_duration_unit(m.group("u"))]
        if hours < 0:
            raise self.fail("infusion_h", "infusion time must not be negative")
        self._set("infusion_h", hours, "infusion time")

    def _finish(self) -> dict[str, Any]:
        f = self.fields
        is_placebo = f["drug"] == PLACEBO
        if "dose" not in f and not is_placebo:
            raise self.fail("dose", "missing dose", "write e.g. '200 mg', '500 mg/m2' or 'AUC5'")
        days = f.setdefault("days", [1])
        if not self._interval_given:
            # "once" or no interval: a single cycle just long enough for its days
            if f.get("cycles", 1) != 1:
                raise self.fail("cycles", "repeated cycles need an interval", INTERVAL_HELP)
            f["cycle_days"] = max(days) if days else 1
            f["cycles"] = 1
        return f


def split_items(text: str) -> list[str]:
    """Split regimen text into its items (empty items are dropped)."""
    if not isinstance(text, str):
        raise ChemoioInputError("regimen", f"expected regimen text, got {type(text).__name__}")
    items = [part.strip() for part in text.split(";")]
    items = [item for item in items if item]
    if not items:
        raise ChemoioInputError("regimen", "the regimen is empty", "write e.g. 'pembrolizumab 200 mg q3w x35'")
    return items


def _normalise(item: str) -> str:
    """Glue list separators so that 'd1, 8' and 'd1,d8' read like 'd1,8', 'd1-d5' like 'd1-5'
    and 'AUC = 5' like 'AUC5'."""
    item = re.sub(r"\s*,\s*", ",", item)
    item = re.sub(r"(?i)\bd\d+(?:[,\-]d?\d+)+\b",
                  lambda m: re.sub(r"(?i)([,\-])d", r"\1", m.group(0)), item)
    item = re.sub(r"(?i)\bauc\s*=\s*", "auc", item)
    return item


def parse_item(index: int, item: str) -> dict[str, Any]:
    """Read one item into a dictionary of DrugSchedule fields (drug name not yet resolved)."""
    return _ItemReader(index, _normalise(item)).read()


def parse_items(text: str) -> list[dict[str, Any]]:
    """Read regimen text into one dictionary of DrugSchedule fields per item."""
    return [parse_item(i, item) for i, item in enumerate(split_items(text))]


def parse_interval(text: str, field: str) -> tuple[int | None, bool]:
    """Read an interval word ('q3w', 'q21d', 'once'); returns (cycle_days, is_once)."""
    tok = str(text).strip().lower()
    if tok == "once":
        return None, True
    m = _INTERVAL_RE.match(tok)
    if not m:
        raise ChemoioInputError(field, f"unknown interval {text!r}", INTERVAL_HELP)
    n, u = (1, m.group("bare")) if m.group("bare") else (int(m.group("n")), m.group("u"))
    if n <= 0:
        raise ChemoioInputError(field, f"interval {text!r} must be at least one day", INTERVAL_HELP)
    return n * (7 if u == "w" else 1), False


def days_from_text(text: str) -> list[int]:
    """Read a days word ('d1,8', 'd1-5', or plain '1,8') into a list of days.

    Raises ValueError with a short message when the word cannot be read.
    """
    tok = str(text).strip().lower().replace(" ", "")
    if not tok.startswith("d"):
        tok = "d" + tok
    m = _DAYS_RE.match(tok)
    if not m:
        raise ValueError(f"cannot read days {text!r}")
    days: list[int] = []
    for part in m.group("list").split(","):
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-"))
            if hi < lo:
                raise ValueError(f"day range {part!r} runs backwards")
            days.extend(range(lo, hi + 1))
        else:
            days.append(int(part))
    return days


# -- writing ----------------------------------------------------------------------------------


def format_number(x: float) -> str:
    """Shortest text that reads back as exactly the same float ('200', '4.5')."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def format_days(days: list[int]) -> str:
    """Render days as 'd1', 'd1,8,15' or 'd1-5' (runs of three or more become ranges)."""
    parts: list[str] = []
    i = 0
    while i < len(days):
        j = i
        while j + 1 < len(days) and days[j + 1] == days[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{days[i]}-{days[j]}")
        else:
            parts.extend(str(d) for d in days[i : j + 1])
        i = j + 1
    return "d" + ",".join(parts)


def format_interval(cycle_days: int) -> str:
    if cycle_days % 7 == 0:
        weeks = cycle_days // 7
        return "qw" if weeks == 1 else f"q{weeks}w"
    return "qd" if cycle_days == 1 else f"q{cycle_days}d"


def format_duration(hours: float) -> str:
    minutes = hours * 60
    if minutes.is_integer() and minutes / 60 == hours and not hours.is_integer():
        return f"{int(minutes)}min"
    return f"{format_number(hours)}h"


def format_item(
    drug: str,
    dose: float | None,
    unit: str | None,
    days: list[int],
    cycle_days: int,
    cycles: int | None,
    start_day: int,
    infusion_h: float | None,
) -> str:
    """Render one schedule in the grammar; :func:`parse_item` reads it back to the same fields."""
    words = [drug]
    if dose is not None and unit is not None:
        words.append(f"AUC{format_number(dose)}" if unit == "AUC" else f"{format_number(dose)} {unit}")
    if days != [1]:
        words.append(format_days(days))
    if cycles == 1 and days and cycle_days == max(days):
        words.append("once")
    else:
        words.append(format_interval(cycle_days))
        if cycles is not None:
            words.append(f"x{cycles}")
    if start_day != 1:
        if (start_day - 1) % 7 == 0:
            words.append(f"start w{(start_day - 1) // 7 + 1}")
        else:
            words.append(f"start d{start_day}")
    if infusion_h is not None:
        words.append(f"over {format_duration(infusion_h)}")
    return " ".join(words)
