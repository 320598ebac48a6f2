"""Typed regimens: :class:`DrugSchedule` (one drug on one schedule) and :class:`Regimen`.

Time is in days and study day 1 is time 0.0. Dose *k* (a day within the cycle) of cycle *c*
of an item whose first cycle starts on study day *s* is given at::

    time = (s - 1) + (c - 1) * cycle_days + (k - 1)

Amounts per patient (:meth:`Regimen.dose_table`): ``mg`` as written; ``mg/kg`` times body
weight; ``mg/m2`` times body-surface area; ``AUC`` (target carboplatin exposure in
mg·min/mL) by the Calvert formula, dose [mg] = AUC × (GFR + 25) with GFR in mL/min capped at
125 mL/min (Calvert AH et al., J Clin Oncol 1989;7:1748-1756; the cap is common practice,
recommended by the US FDA in 2010, to avoid overdosing from an overestimated GFR).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chemoio.drugs import get_drug
from chemoio.errors import ChemoioInputError, read_yaml_file, suggest
from chemoio.regimens import parser
from chemoio.regimens.events import DoseTable
from chemoio.regimens.parser import PLACEBO, UNITS

Unit = Literal["mg", "mg/kg", "mg/m2", "AUC"]

#: Highest GFR used in the Calvert formula (mL/min).
CALVERT_GFR_CAP_ML_MIN = 125.0
#: Non-renal carboplatin clearance term of the Calvert formula (mL/min).
CALVERT_NONRENAL_ML_MIN = 25.0


def calvert_dose_mg(auc: float | np.ndarray, gfr_mL_min: float | np.ndarray) -> np.ndarray:
    """Carboplatin dose in mg for a target AUC (mg·min/mL): AUC × (min(GFR, 125) + 25)."""
    gfr = np.minimum(np.asarray(gfr_mL_min, dtype=np.float64), CALVERT_GFR_CAP_ML_MIN)
    return np.asarray(auc, dtype=np.float64) * (gfr + CALVERT_NONRENAL_ML_MIN)


def _input_error(exc: ValidationError, item_level: bool = False) -> ChemoioInputError:
    """Turn the first pydantic error into a ChemoioInputError named like ``regimen[2].dose``.

    ``item_level`` is True when a DrugSchedule was built on its own (fields then have no
    ``regimen[i].`` prefix).
    """
    err = exc.errors()[0]
    loc = [str(x) for x in err["loc"]]
    in_item = item_level
    if loc[:1] == ["items"]:
        if len(loc) == 1:
            if err["type"] == "too_short":
                return ChemoioInputError("regimen", "the regimen is empty", "add at least one drug item")
            field = "regimen"
        else:
            field = f"regimen[{loc[1]}]" + "".join(f".{x}" for x in loc[2:3])
            in_item = True
    else:
        field = loc[0] if loc else ""
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, ChemoioInputError):
        # a check of ours: its own field names the attribute, ours the place
        if field.rsplit(".", 1)[-1] != inner.field:
            field = f"{field}.{inner.field}" if field else inner.field
        return ChemoioInputError(field, inner.message, inner.hint)
    field = field or "regimen"
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        if in_item:
            known = list(DrugSchedule.model_fields) + ["interval"]
        else:
            known = list(Regimen.model_fields) + ["text"]
        hint = suggest(loc[-1], known) or f"known fields: {', '.join(known)}"
        return ChemoioInputError(field, "unknown field", hint)
    if err["type"] == "missing":
        return ChemoioInputError(field, "is required")
    hint = None
    if err["type"] == "literal_error" and field.endswith("unit"):
        hint = suggest(str(value), UNITS) or f"use one of {', '.join(UNITS)}"
    msg = err["msg"].removeprefix("Value error, ")
    return ChemoioInputError(field, f"{msg} (got {value!r})", hint)


class DrugSchedule(BaseModel):
    """One drug on one repeating schedule (an item of a regimen).

    ``drug`` is the library's canonical name (or ``placebo``, which gives no doses);
    ``days`` are days within a cycle (1-based); ``cycles=None`` repeats until the simulation
    horizon; ``start_day`` is the study day of the first cycle; ``infusion_h=None`` means the
    drug's default infusion time.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    drug: str
    dose: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    unit: Unit | None = None
    days: list[int] = Field(default_factory=lambda: [1], min_length=1)
    cycle_days: int = Field(gt=0)
    cycles: int | None = Field(default=None, ge=1)
    start_day: int = Field(default=1, ge=1)
    infusion_h: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _input_error(exc, item_level=True) from None

    @field_validator("drug", mode="before")
    @classmethod
    def _canonical_drug(cls, v: Any) -> str:
        if not isinstance(v, str) or not v.strip():
            raise ChemoioInputError("drug", f"expected a drug name, got {v!r}")
        name = v.strip().lower()
        if name == PLACEBO:
            return PLACEBO
        return str(get_drug(name).name)

    @field_validator("unit", mode="before")
    @classmethod
    def _unit_spelling(cls, v: Any) -> Any:
        if isinstance(v, str):
            return parser._UNIT_SPELLINGS.get(v.strip().lower(), v)
        return v

    @field_validator("days")
    @classmethod
    def _days_increasing(cls, v: list[int]) -> list[int]:
        if any(d < 1 for d in v):
            raise ChemoioInputError("days", f"days within a cycle start at 1, got {v}")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ChemoioInputError("days", f"days must be strictly increasing, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "DrugSchedule":
        if max(self.days) > self.cycle_days:
            raise ChemoioInputError(
                "days", f"day {max(self.days)} lies beyond the {self.cycle_days}-day cycle"
            )
        if self.drug == PLACEBO:
            if (self.dose is None) != (self.unit is None):
                raise ChemoioInputError("dose", "give both a dose and a unit, or neither, for placebo")
            return self
        if self.dose is None:
            raise ChemoioInputError("dose", "missing dose")
        if self.unit is None:
            raise ChemoioInputError("unit", "missing dose unit", f"use one of {', '.join(UNITS)}")
        allowed = list(get_drug(self.drug).dose_units)
        if self.unit not in allowed:
            raise ChemoioInputError(
                "unit", f"{self.drug} is not dosed in {self.unit}", f"allowed: {', '.join(allowed)}"
            )
        return self

    # -- derived -------------------------------------------------------------------------------
    @property
    def is_placebo(self) -> bool:
        return self.drug == PLACEBO

    @property
    def infusion_hours(self) -> float:
        """Infusion time in hours (the drug's default when not given; 0 for placebo)."""
        if self.infusion_h is not None:
            return self.infusion_h
        if self.is_placebo:
            return 0.0
        return float(get_drug(self.drug).default_infusion_h)

    def dose_times(self, horizon_days: float | None = None) -> np.ndarray:
        """Dose times in days (study day 1 = 0) before ``horizon_days`` (all, if finite)."""
        if self.cycles is None and horizon_days is None:
            raise ChemoioInputError(
                "horizon_days", f"{self.drug} repeats until the horizon, so a horizon is needed"
            )
        first = self.start_day - 1
        if self.cycles is not None:
            n_cycles = self.cycles
        else:
            assert horizon_days is not None
            n_cycles = max(0, int(np.ceil((horizon_days - first) / self.cycle_days)) + 1)
        cyc = np.arange(n_cycles, dtype=np.float64)[:, None] * self.cycle_days
        times = (first + cyc + (np.asarray(self.days, dtype=np.float64)[None, :] - 1)).reshape(-1)
        if horizon_days is not None:
            times = times[times < horizon_days]
        return times

    def text(self) -> str:
        """This item in the regimen grammar."""
        return parser.format_item(
            self.drug, self.dose, self.unit, list(self.days), self.cycle_days, self.cycles,
            self.start_day, self.infusion_h,
        )


class Regimen(BaseModel):
    """A treatment regimen: a list of drug schedules, plus optional descriptive fields.

    Presets also fill ``trial``, ``arm``, ``sources`` and (peri-operative regimens)
    ``surgery_day``, the study day of surgery.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    items: list[DrugSchedule] = Field(min_length=1)
    description: str | None = None
    note: str | None = None
    trial: str | None = None
    arm: str | None = None
    sources: list[str] = Field(default_factory=list)
    surgery_day: int | None = Field(default=None, ge=1)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _input_error(exc) from None

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, name: str | None = None, **fields: Any) -> "Regimen":
        """Read regimen text (see :mod:`chemoio.regimens.parser` for the grammar)."""
        return cls(name=name, items=parser.parse_items(text), **fields)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Regimen":
        """Build from a mapping with ``items:`` (schedule mappings or item strings) or ``text:``."""
        if not isinstance(data, Mapping):
            raise ChemoioInputError("regimen", f"expected a mapping, got {type(data).__name__}")
        data = dict(data)
        text = data.pop("text", None)
        if text is not None:
            if "items" in data:
                raise ChemoioInputError("text", "give either 'text' or 'items', not both")
            return cls.parse(text, **data)
        raw_items = data.pop("items", None)
        if raw_items is None:
            raise ChemoioInputError("items", "a regimen needs 'items' (a list) or 'text'")
        if not isinstance(raw_items, list):
            raise ChemoioInputError("items", f"expected a list, got {type(raw_items).__name__}")
        items = [_item_from_mapping(i, it) for i, it in enumerate(raw_items)]
        return cls(items=items, **data)

    @classmethod
    def from_yaml(cls, source: str | Path | Mapping[str, Any]) -> "Regimen":
        """Load from a YAML file path (or an already-loaded mapping)."""
        if isinstance(source, Mapping):
            return cls.from_dict(source)
        path = Path(source)
        if not path.is_file():
            raise ChemoioInputError("regimen", f"no such regimen file: {str(path)!r}")
        data = read_yaml_file(path, "regimen")
        if not isinstance(data, Mapping):
            raise ChemoioInputError("regimen", f"{path.name} should hold a mapping with 'items' or 'text'")
        return cls.from_dict(data)

    # -- output --------------------------------------------------------------------------------
    def to_text(self) -> str:
        """The items in the regimen grammar, joined by '; '."""
        return "; ".join(item.text() for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (YAML-ready) that :meth:`from_dict` reads back to an equal regimen."""
        out = self.model_dump(exclude_none=True, exclude_defaults=True, exclude={"items"})
        out["items"] = [item.model_dump(exclude_none=True) for item in self.items]
        return out

    def __str__(self) -> str:
        return self.to_text()

    @property
    def drugs(self) -> list[str]:
        """Canonical drug names in order of first appearance (placebo excluded)."""
        seen: list[str] = []
        for item in self.items:
            if not item.is_placebo and item.drug not in seen:
                seen.append(item.drug)
        return seen

    # -- dosing --------------------------------------------------------------------------------
    def dose_table(
        self,
        weight_kg: float | np.ndarray | None = None,
        bsa_m2: float | np.ndarray | None = None,
        gfr_mL_min: float | np.ndarray | None = None,
        horizon_days: float | None = None,
        n_patients: int | None = None,
    ) -> DoseTable:
        """Doses of every patient before ``horizon_days``.

        Covariates are scalars or arrays of one value per patient (scalars broadcast); a
        covariate is needed only when a unit uses it (mg/kg: weight, mg/m2: BSA, AUC: GFR).
        The number of patients comes from the arrays, else ``n_patients``, else 1.
        ``horizon_days`` may be left out only when every item has a fixed number of cycles.
        """
        if horizon_days is not None:
            try:
                horizon_ok = float(horizon_days) > 0 and not np.isnan(float(horizon_days))
            except (TypeError, ValueError):
                horizon_ok = False
            if not horizon_ok:
                raise ChemoioInputError("horizon_days", f"must be a positive number of days, got {horizon_days!r}")
            horizon_days = float(horizon_days)
        covs, n = _covariates(
            {"weight_kg": weight_kg, "bsa_m2": bsa_m2, "gfr_mL_min": gfr_mL_min}, n_patients
        )
        needs = {"mg/kg": "weight_kg", "mg/m2": "bsa_m2", "AUC": "gfr_mL_min"}
        drugs = self.drugs
        times, slots, durs, order, amounts = [], [], [], [], []
        for i, item in enumerate(self.items):
            if item.is_placebo:
                continue
            t = item.dose_times(horizon_days)
            if item.unit in needs and covs[needs[item.unit]] is None:
                raise ChemoioInputError(
                    needs[item.unit],
                    f"regimen[{i}] ({item.drug} {item.dose:g} {item.unit}) needs {needs[item.unit]}",
                )
            per_patient = _amount_mg(item, covs, n)  # (n,)
            times.append(t)
            slots.append(np.full(t.shape, drugs.index(item.drug), dtype=np.int32))
            durs.append(np.full(t.shape, item.infusion_hours / 24.0))
            order.append(np.full(t.shape, i))
            amounts.append(np.repeat(per_patient[:, None], len(t), axis=1))
        if not times:
            return DoseTable(tuple(drugs), np.zeros(0), np.zeros(0, np.int32), np.zeros(0), np.zeros((n, 0)))
        time = np.concatenate(times)
        slot = np.concatenate(slots)
        dur = np.concatenate(durs)
        item_order = np.concatenate(order)
        amt = np.concatenate(amounts, axis=1)
        idx = np.lexsort((item_order, dur, slot, time))
        return DoseTable(tuple(drugs), time[idx], slot[idx], dur[idx], amt[:, idx])


def _item_from_mapping(index: int, raw: Any) -> DrugSchedule | dict[str, Any]:
    """One YAML item: a mapping of DrugSchedule fields (``interval``/``days`` may be words)
    or a string in the item grammar."""
    if isinstance(raw, str):
        return parser.parse_item(index, raw)
    if not isinstance(raw, Mapping):
        raise ChemoioInputError(f"regimen[{index}]", f"expected a mapping or a string, got {type(raw).__name__}")
    item = dict(raw)
    if isinstance(item.get("days"), (str, int)):
        try:
            item["days"] = parser.days_from_text(str(item["days"]))
        except ValueError as exc:
            raise ChemoioInputError(f"regimen[{index}].days", str(exc)) from None
    if "interval" in item:
        if "cycle_days" in item:
            raise ChemoioInputError(f"regimen[{index}].interval", "give either 'interval' or 'cycle_days'")
        cycle_days, once = parser.parse_interval(item.pop("interval"), f"regimen[{index}].interval")
        if once:
            if item.get("cycles", 1) != 1:
                raise ChemoioInputError(f"regimen[{index}].cycles", "'once' means a single cycle")
            days = item.get("days", [1])
            item["cycle_days"] = max(days) if isinstance(days, list) and days else 1
            item["cycles"] = 1
        else:
            item["cycle_days"] = cycle_days
    elif "cycle_days" not in item:
        if item.get("cycles", 1) != 1:
            raise ChemoioInputError(f"regimen[{index}].cycles", "repeated cycles need an interval or cycle_days")
        days = item.get("days", [1])
        item["cycle_days"] = max(days) if isinstance(days, list) and days and all(isinstance(d, int) for d in days) else 1
        item["cycles"] = 1
    return item


def _covariates(
    values: dict[str, Any], n_patients: int | None
) -> tuple[dict[str, np.ndarray | None], int]:
    """Check covariates (positive, finite, equal lengths) and broadcast them to n patients."""
    arrays: dict[str, np.ndarray | None] = {}
    n: int | None = None
    first: str | None = None
    for name, v in values.items():
        if v is None:
            arrays[name] = None
            continue
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ChemoioInputError(name, f"expected numbers, got {v!r}") from None
        if a.ndim > 1:
            raise ChemoioInputError(name, f"expected a scalar or a 1-D array, got shape {a.shape}")
        flat = a.reshape(-1)
        bad = ~(np.isfinite(flat) & (flat > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            where = f" (patient {i})" if a.ndim == 1 else ""
            raise ChemoioInputError(name, f"values must be positive and finite, got {flat[i]!r}{where}")
        if a.ndim == 1:
            if len(a) == 0:
                raise ChemoioInputError(name, "is an empty array")
            if n is not None and len(a) != n:
                raise ChemoioInputError(name, f"has {len(a)} values but {first} has {n}")
            n, first = len(a), name
        arrays[name] = a
    if n_patients is not None:
        if isinstance(n_patients, bool) or not isinstance(n_patients, (int, np.integer)) or n_patients < 1:
            raise ChemoioInputError("n_patients", f"must be a positive whole number, got {n_patients!r}")
        if n is not None and n != n_patients:
            raise ChemoioInputError("n_patients", f"is {n_patients} but {first} has {n} values")
        n = int(n_patients)
    n = 1 if n is None else n
    return {k: (None if a is None else np.broadcast_to(a, (n,))) for k, a in arrays.items()}, n


def _amount_mg(item: DrugSchedule, covs: dict[str, np.ndarray | None], n: int) -> np.ndarray:
    """Dose in mg of each of the n patients for one item."""
    assert item.dose is not None
    if item.unit == "mg":
        return np.full(n, item.dose)
    if item.unit == "mg/kg":
        return item.dose * np.asarray(covs["weight_kg"], dtype=np.float64)
    if item.unit == "mg/m2":
        return item.dose * np.asarray(covs["bsa_m2"], dtype=np.float64)
    return calvert_dose_mg(item.dose, covs["gfr_mL_min"])
