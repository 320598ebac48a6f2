"""Trial specifications: the design of a (virtual) randomised trial, read from YAML.

A :class:`TrialSpec` holds only the design of a trial -- population and biomarker selection,
arms and their regimens, sample size and allocation ratio, accrual and data cut-off, scan
schedule, endpoints, comparisons and subgroups -- plus the published results it can be compared
with. It holds no model parameters: the same mechanistic model runs every trial.

Every mistake in a spec raises :class:`~chemoio.errors.ChemoioInputError` whose ``field`` is
the dotted location of the mistake (``arms[1].regimen``, ``population.selection.pdl1_tsp_min``),
with a "did you mean" hint for misspelt names. See ``docs/trials.md``.

>>> spec = load_spec("keynote189")
>>> spec.arm_sizes()
{'pembro_chemo': 410, 'chemo': 206}
"""

from __future__ import annotations

import copy
import functools
import math
import re
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chemoio.errors import ChemoioInputError, read_yaml_file, suggest
from chemoio.regimens import Regimen, resolve_regimen
from chemoio.trial.schedule import ScanSchedule

__all__ = [
    "DAYS_PER_MONTH",
    "DEFAULT_SCAN_WINDOW_DAYS",
    "ENDPOINTS",
    "SELECTION_KEYS",
    "STRATIFY_COVARIATES",
    "SUBGROUP_KEYS",
    "ArmSpec",
    "ComparisonSpec",
    "CrossoverSpec",
    "FollowUpSpec",
    "PopulationSpec",
    "PublishedComparison",
    "PublishedSpec",
    "PublishedValue",
    "SubgroupSpec",
    "ToxicitySpec",
    "TrialSpec",
    "check_scan_window",
    "list_specs",
    "load_spec",
    "parse_ratio",
    "spec_from_dict",
    "spec_json_schema",
    "spec_path",
]

#: Mean length of a month in days (365.25 / 12), as in the analysis layer.
DAYS_PER_MONTH = 365.25 / 12.0

Endpoint = Literal["OS", "PFS", "ORR", "pCR", "EFS"]
ENDPOINTS: tuple[str, ...] = typing.get_args(Endpoint)

ResponseCriteria = Literal["recist11", "irecist"]
#: Response criteria a spec may choose (``response_criteria``).
RESPONSE_CRITERIA: tuple[str, ...] = typing.get_args(ResponseCriteria)

#: Keys of ``population.selection`` (eligibility) when chemoio.population cannot be imported;
#: otherwise its ``SELECTION_KEYS`` are used. Bounds are inclusive (``*_min``: value >= min,
#: ``*_max``: value <= max). TPS and CPS are whole numbers (percent of cells, score capped at
#: 100), IC is the SP142 category 0-3, ECOG 0-4, TMB in mutations/Mb.
SELECTION_KEYS: tuple[str, ...] = (
    "pdl1_tps_min", "pdl1_tps_max", "pdl1_cps_min", "pdl1_ic_min", "tmb_min", "ecog_max",
)
#: Keys of ``subgroups[].where`` (as the selection keys; TPS/CPS are whole numbers, so the shipped
#: specs write maxima as half-integers, which read the same as inclusive or exclusive bounds).
SUBGROUP_KEYS: tuple[str, ...] = (
    "pdl1_tps_min", "pdl1_tps_max", "pdl1_cps_min", "pdl1_cps_max", "pdl1_ic_min", "pdl1_ic_max",
    "tmb_min", "tmb_max", "ecog_max",
)
#: Names besides subgroup names that ``comparisons[].stratify_by`` accepts.
STRATIFY_COVARIATES: tuple[str, ...] = ("ecog", "pdl1_ic", "liver_mets", "regimen_choice")

# value ranges of the biomarker keys: (low, high, integer?)
_KEY_RANGE: dict[str, tuple[float, float, bool]] = {
    "pdl1_tps": (0.0, 100.0, False),
    "pdl1_cps": (0.0, 100.0, False),
    "pdl1_ic": (0.0, 3.0, True),
    "tmb": (0.0, math.inf, False),
    "ecog": (0.0, 4.0, True),
}

_TUMOR_TYPES_FALLBACK: tuple[str, ...] = (
    "nsclc_nonsquamous", "nsclc_squamous", "urothelial", "urothelial_2l", "tnbc", "tnbc_early",
    "hnscc", "esophageal", "melanoma", "melanoma_2l",
)

#: Endpoint keys of ``published.arms`` (others must match the landmark pattern
#: ``<os|pfs|efs>_<N>mo_percent``).
PUBLISHED_KEYS: tuple[str, ...] = (
    "median_os_months", "median_pfs_months", "median_efs_months", "median_dor_months",
    "orr_percent", "pcr_percent", "cr_percent",
    "os_12mo_percent", "os_24mo_percent", "os_60mo_percent",
    "pfs_6mo_percent", "pfs_9mo_percent", "pfs_12mo_percent",
    "efs_36mo_percent", "efs_event_percent", "grade3plus_ae_percent",
    "neutropenia_g3plus_percent", "n",
)
_LANDMARK = re.compile(r"^(os|pfs|efs)_\d+mo_percent$")

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
_IDENT_RE = re.compile(_IDENT)


def _tumor_types() -> list[str]:
    try:
        from chemoio.population import list_tumor_types  # type: ignore[attr-defined]
    except ImportError:
        return list(_TUMOR_TYPES_FALLBACK)
    return list(list_tumor_types())


def _selection_keys() -> tuple[str, ...]:
    try:
        from chemoio.population import SELECTION_KEYS as keys  # type: ignore[attr-defined]
    except ImportError:
        return SELECTION_KEYS
    return tuple(keys)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _ctx_base_dir(info: ValidationInfo | None) -> Path | None:
    ctx = getattr(info, "context", None)
    if isinstance(ctx, Mapping) and ctx.get("base_dir"):
        return Path(ctx["base_dir"])
    return None


def _resolve(text: str, field: str, info: ValidationInfo | None) -> Regimen:
    """resolve_regimen with the arm's field prefixed to any error; YAML paths are taken relative
    to the spec file's folder when the spec was loaded from a file."""
    target = text
    base = _ctx_base_dir(info)
    stripped = text.strip()
    if base is not None and stripped.lower().endswith((".yaml", ".yml")) and not Path(stripped).is_absolute():
        candidate = base / stripped
        if candidate.is_file():
            target = str(candidate)
    try:
        return resolve_regimen(target)
    except ChemoioInputError as e:
        sub = e.field
        if sub in ("regimen", "preset"):
            new = field
        elif sub.startswith("regimen"):
            new = field + sub[len("regimen"):]
        else:
            new = f"{field}.{sub}"
        raise ChemoioInputError(new, e.message, e.hint) from None
    except (ValueError, OSError) as e:  # anything else the regimen layer may raise
        raise ChemoioInputError(field, str(e)) from None


def _key_field(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if _IDENT_RE.match(key) else f"{prefix}[{key!r}]"


def _check_biomarker_dict(where: Mapping[str, Any], allowed: tuple[str, ...], field: str, what: str) -> None:
    for key, value in where.items():
        if key not in allowed:
            raise ChemoioInputError(
                f"{field}.{key}",
                f"unknown {what} key {key!r}",
                suggest(key, allowed) or "allowed: " + ", ".join(allowed),
            )
        if key == "liver_mets":
            if not isinstance(value, bool):
                raise ChemoioInputError(f"{field}.{key}", f"expected true or false, got {value!r}")
            continue
        if key == "sex":
            if value not in ("M", "F"):
                raise ChemoioInputError(f"{field}.{key}", f"expected 'M' or 'F', got {value!r}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ChemoioInputError(f"{field}.{key}", f"expected a finite number, got {value!r}")
        base = key.rsplit("_", 1)[0]
        lo, hi, integer = _KEY_RANGE.get(base, (0.0, math.inf, False))
        if not (lo <= value <= hi):
            raise ChemoioInputError(f"{field}.{key}", f"must be between {lo:g} and {hi:g}, got {value:g}")
        if integer and value != int(value):
            raise ChemoioInputError(f"{field}.{key}", f"is a category (an integer), got {value:g}")
    for base in (*_KEY_RANGE, "age"):
        lo_v, hi_v = where.get(f"{base}_min"), where.get(f"{base}_max")
        if lo_v is not None and hi_v is not None and lo_v > hi_v:
            raise ChemoioInputError(
                f"{field}.{base}_max", f"{base}_min ({lo_v:g}) is above {base}_max ({hi_v:g}): nobody can pass"
            )


# ----------------------------------------------------------------------------- design models


class CrossoverSpec(_Model):
    """Switch to another regimen at progression (e.g. control -> the experimental drug)."""

    share: float = Field(ge=0.0, le=1.0, description="probability that a patient of this arm who "
                         "progresses on study crosses over")
    regimen: str = Field(description="regimen after crossover: preset name, regimen text or YAML path")
    delay_days: float = Field(21.0, ge=0.0, description="days from progression to the first crossover dose")

    _regimen: Regimen | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _resolve_regimen(self, info: ValidationInfo) -> CrossoverSpec:
        self._regimen = _resolve(self.regimen, "regimen", info)
        return self

    def resolved_regimen(self) -> Regimen:
        assert self._regimen is not None
        return self._regimen


class ArmSpec(_Model):
    """One arm: a regimen, or a mixture of regimens (investigator's choice)."""

    name: str = Field(pattern=_IDENT, description="identifier used in comparisons and outputs")
    label: str = Field(description="readable arm label")
    role: Literal["experimental", "control", "experimental_monotherapy"]
    regimen: str | None = Field(None, description="preset name, regimen text or YAML path")
    regimens: dict[str, float] | None = Field(
        None, description="investigator's choice: {preset name or regimen text: share}; shares sum to 1"
    )
    crossover: CrossoverSpec | None = None
    surgery_day: float | None = Field(
        None, gt=0, description="study day of surgery (neoadjuvant); defaults to the preset's surgery_day"
    )

    _resolved: dict[str, Regimen] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _resolve_regimens(self, info: ValidationInfo) -> ArmSpec:
        if (self.regimen is None) == (self.regimens is None):
            raise ChemoioInputError(
                "regimen",
                "give exactly one of 'regimen' (one regimen) or 'regimens' (a mixture with shares)",
            )
        resolved: dict[str, Regimen] = {}
        if self.regimen is not None:
            resolved[self.regimen] = _resolve(self.regimen, "regimen", info)
        else:
            assert self.regimens is not None
            if not self.regimens:
                raise ChemoioInputError("regimens", "the mixture is empty")
            for key, share in self.regimens.items():
                if not (0.0 < share <= 1.0):
                    raise ChemoioInputError(_key_field("regimens", key), f"share must be in (0, 1], got {share:g}")
            total = sum(self.regimens.values())
            if abs(total - 1.0) > 1e-3:
                raise ChemoioInputError("regimens", f"shares must sum to 1, got {total:g}")
            for key in self.regimens:
                resolved[key] = _resolve(key, _key_field("regimens", key), info)
        days = {r.surgery_day for r in resolved.values() if r.surgery_day is not None}
        if self.surgery_day is None and days:
            if len(days) > 1:
                raise ChemoioInputError(
                    "surgery_day", f"the mixture's regimens have different surgery days {sorted(days)}; give one"
                )
            self.surgery_day = float(days.pop())
        self._resolved = resolved
        return self

    def resolved_regimens(self) -> dict[str, Regimen]:
        """{regimen key: Regimen}; one entry for a single regimen."""
        return dict(self._resolved)

    def mixture(self) -> list[tuple[float, Regimen]]:
        """[(share, Regimen)], shares normalised to sum exactly to 1."""
        if self.regimens is None:
            return [(1.0, next(iter(self._resolved.values())))]
        total = sum(self.regimens.values())
        return [(share / total, self._resolved[key]) for key, share in self.regimens.items()]


class PopulationSpec(_Model):
    """Who is enrolled: a tumour type of chemoio.population and a biomarker selection."""

    tumor: str = Field(description="tumour type, one of chemoio.population.list_tumor_types()")
    selection: dict[str, float | bool | str] = Field(
        default_factory=dict,
        description="eligibility, e.g. {pdl1_tps_min: 50} (keys of chemoio.population.SELECTION_KEYS; bounds inclusive)",
    )

    @model_validator(mode="after")
    def _check(self) -> PopulationSpec:
        types_ = _tumor_types()
        if self.tumor not in types_:
            raise ChemoioInputError(
                "tumor", f"unknown tumour type {self.tumor!r}", suggest(self.tumor, types_) or "one of " + ", ".join(types_)
            )
        _check_biomarker_dict(self.selection, _selection_keys(), "selection", "selection")
        return self


class FollowUpSpec(_Model):
    """Accrual, data cut-off and loss to follow-up."""

    accrual_months: float = Field(gt=0, description="randomisation is uniform over this period")
    data_cutoff_months: float = Field(
        gt=0, description="time from the first randomisation to the analysis cut-off (must exceed accrual)"
    )
    dropout_per_year: float = Field(0.02, ge=0.0, lt=1.0, description="yearly probability of loss to follow-up")

    @model_validator(mode="after")
    def _check(self) -> FollowUpSpec:
        if self.data_cutoff_months <= self.accrual_months:
            raise ChemoioInputError(
                "data_cutoff_months",
                f"the cut-off ({self.data_cutoff_months:g} months) must come after the end of accrual "
                f"({self.accrual_months:g} months)",
            )
        return self

    def median_followup_months(self) -> float:
        """Median time from randomisation to cut-off under uniform accrual, ignoring dropout:
        ``data_cutoff - accrual / 2``."""
        return self.data_cutoff_months - self.accrual_months / 2.0


class SubgroupSpec(_Model):
    """A biomarker-defined subgroup for subgroup analyses (all conditions must hold)."""

    name: str = Field(pattern=_IDENT)
    label: str | None = None
    where: dict[str, float] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SubgroupSpec:
        _check_biomarker_dict(self.where, SUBGROUP_KEYS, "where", "subgroup")
        return self


class ComparisonSpec(_Model):
    """A comparison to analyse: experimental arm vs control arm on some endpoints, in all
    randomised patients and in every subgroup of the spec."""

    experimental: str
    control: str
    endpoints: list[Endpoint] = Field(min_length=1)
    primary_subgroup: str | None = Field(
        None, description="subgroup in which the primary-endpoint call is made (None = all randomised)"
    )
    stratify_by: list[str] = Field(
        default_factory=list, description="strata for log-rank/Cox: subgroup names or " + ", ".join(STRATIFY_COVARIATES)
    )


class ToxicitySpec(_Model):
    """Neutropenia (Friberg model, chemoio.toxicity) and the protocol's dose rules.

    Defaults: a cycle starts only with ANC >= 1.5 x 10^9/L, else it is postponed by a week
    and re-checked, up to 3 weeks, then that cycle's chemotherapy is omitted; a delay moves
    the whole remaining schedule, antibody included (``delay_moves``). Two further rules of
    typical protocols are available but off by default, because they lower the dose
    intensity the shipped parameter set was calibrated with: omitting day-8/15 doses when
    ANC < 1.0 (``within_cycle_anc_min: 1.0``) and reducing the cytotoxics to 75 % after a
    grade-4 nadir, at most twice, then stopping them (``dose_reduction: 0.75``, the
    pemetrexed label's rule)."""

    enabled: bool = Field(True, description="simulate neutrophils and apply the dose rules; false = every "
                          "dose on its planned day and no neutropenia outputs")
    dose_delays: bool = Field(True, description="postpone a cycle while ANC < anc_min (false: cycles start on time)")
    anc_min: float = Field(1.5, gt=0.0, description="ANC (10^9/L) needed on day 1 of a cycle")
    recheck_days: int = Field(7, ge=1, description="days between re-checks of a postponed cycle")
    max_delay_days: int = Field(21, ge=0, description="longest postponement of a cycle; a cycle that "
                                "still cannot start is omitted")
    within_cycle_anc_min: float | None = Field(
        None, ge=0.0, description="ANC (10^9/L) needed for a dose a week or more into a cycle (d8, d15), "
        "else it is omitted; null = never omitted")
    dose_reduction: float | None = Field(
        None, gt=0.0, le=1.0, description="dose factor after a grade-4 nadir, e.g. 0.75 (pemetrexed label); "
        "null (default) = no reductions")
    reduce_below_anc: float = Field(0.5, gt=0.0, description="nadir ANC (10^9/L) that triggers a reduction")
    max_reductions: int = Field(2, ge=0, description="reductions allowed; a further grade-4 nadir stops the cytotoxics")
    delay_moves: Literal["whole_schedule", "chemotherapy"] = Field(
        "whole_schedule", description="whole_schedule: a delay moves every later dose of the patient, antibody "
        "included; chemotherapy: only the cytotoxics move")

    @model_validator(mode="after")
    def _check(self) -> ToxicitySpec:
        if self.max_delay_days % self.recheck_days:
            raise ChemoioInputError(
                "max_delay_days", f"{self.max_delay_days} is not a multiple of recheck_days ({self.recheck_days})")
        if self.dose_reduction is not None and self.reduce_below_anc >= self.anc_min:
            raise ChemoioInputError(
                "reduce_below_anc", f"{self.reduce_below_anc:g} must be below anc_min ({self.anc_min:g})")
        return self

    def rules(self):
        """The :class:`chemoio.toxicity.DoseRules` of this section (None when disabled)."""
        from chemoio.toxicity import DoseRules

        if not self.enabled:
            return None
        return DoseRules(
            anc_min=self.anc_min if self.dose_delays else 0.0,
            recheck_days=float(self.recheck_days),
            max_delay_days=float(self.max_delay_days),
            within_cycle_anc_min=self.within_cycle_anc_min,
            reduce_below_anc=self.reduce_below_anc if self.dose_reduction is not None else None,
            reduction_factor=self.dose_reduction if self.dose_reduction is not None else 1.0,
            max_reductions=self.max_reductions,
            delay_moves=self.delay_moves,
        )


# ----------------------------------------------------------------------------- published results


def _as_value(x: Any) -> Any:
    """Shorthand: a number, or a [value, ci_low, ci_high] triplet as in calibration.yaml."""
    if isinstance(x, bool):
        return x
    if isinstance(x, (int, float)):
        return {"value": x}
    if isinstance(x, (list, tuple)):
        if len(x) == 3:
            return {"value": x[0], "ci": [x[1], x[2]]}
        return {"value": x}  # let validation report it
    return x


class PublishedValue(_Model):
    """A published number with its CI and provenance. In YAML also a number or a
    ``[value, ci_low, ci_high]`` triplet; ``source``/``analysis`` default to the
    ``published`` block's."""

    value: float
    ci: tuple[float, float] | None = Field(None, description="confidence interval [low, high]")
    ci_level: float = Field(0.95, gt=0.0, lt=1.0)
    analysis: str | None = None
    source: str | None = Field(None, description="PMID or journal/year, and how it was read (read_via)")
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _as_value(data)

    @model_validator(mode="after")
    def _check(self) -> PublishedValue:
        if self.ci is not None:
            lo, hi = self.ci
            if lo > hi:
                raise ChemoioInputError("ci", f"lower limit {lo:g} is above upper limit {hi:g}")
            if not lo <= self.value <= hi:
                raise ChemoioInputError("value", f"{self.value:g} lies outside its CI {list(self.ci)}")
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        obj = handler(core_schema)
        return {
            "anyOf": [
                {"type": "number"},
                {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
                obj,
            ],
            "description": cls.__doc__.split("\n\n")[0].replace("\n", " ") if cls.__doc__ else "",
        }


class PublishedComparison(_Model):
    """A published hazard ratio (experimental vs control) and the call made on it."""

    experimental: str
    control: str
    population: str = Field("ITT", description="the analysis population as published")
    subgroup: str | None = Field(None, description="name of the spec's subgroup this population corresponds to")
    endpoint: Literal["OS", "PFS", "EFS"]
    hr: PublishedValue
    p_value: str | None = Field(None, description="as published, e.g. '<0.001' or 'one-sided 0.007'")
    primary_endpoint_met: bool | None = None
    note: str | None = None


_ArmValues = dict[str, dict[str, PublishedValue]]


class PublishedSpec(_Model):
    """Published results of the analysis the spec simulates."""

    analysis: str = Field(description="which analysis (e.g. 'primary analysis'); default of every value")
    source: str = Field(description="citation and read_via; default of every value")
    median_followup_months: float | None = Field(None, gt=0)
    population: str = Field("ITT", description="population of the arm-level values")
    arms: _ArmValues = Field(default_factory=dict, description="{arm name: {endpoint key: value}}")
    subgroups: dict[str, _ArmValues] = Field(
        default_factory=dict, description="{subgroup name: {arm name: {endpoint key: value}}}"
    )
    comparisons: list[PublishedComparison] = Field(default_factory=list)
    primary: dict[str, bool | str] = Field(
        default_factory=dict, description="primary endpoint -> met? (true/false or the published wording)"
    )
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = copy.deepcopy(dict(data))
        defaults = {k: data[k] for k in ("source", "analysis") if isinstance(data.get(k), str)}

        def fill(v: Any) -> Any:
            v = _as_value(v)
            if isinstance(v, dict):
                v = dict(v)
                for k, d in defaults.items():
                    v.setdefault(k, d)
            return v

        def fill_arms(arms: Any) -> Any:
            if not isinstance(arms, Mapping):
                return arms
            return {a: ({k: fill(v) for k, v in vals.items()} if isinstance(vals, Mapping) else vals)
                    for a, vals in arms.items()}

        if "arms" in data:
            data["arms"] = fill_arms(data["arms"])
        if isinstance(data.get("subgroups"), Mapping):
            data["subgroups"] = {g: fill_arms(a) for g, a in data["subgroups"].items()}
        if isinstance(data.get("comparisons"), list):
            comps = []
            for c in data["comparisons"]:
                if isinstance(c, Mapping):
                    c = dict(c)
                    if c.get("hr") is not None:
                        c["hr"] = fill(c["hr"])
                comps.append(c)
            data["comparisons"] = comps
        return data

    @model_validator(mode="after")
    def _check(self) -> PublishedSpec:
        def check_keys(arms: _ArmValues, prefix: str) -> None:
            for arm, vals in arms.items():
                for key in vals:
                    if key not in PUBLISHED_KEYS and not _LANDMARK.match(key):
                        raise ChemoioInputError(
                            f"{prefix}.{arm}.{key}",
                            f"unknown published endpoint key {key!r}",
                            suggest(key, PUBLISHED_KEYS) or "e.g. median_os_months, orr_percent, os_24mo_percent",
                        )

        check_keys(self.arms, "arms")
        for g, arms in self.subgroups.items():
            check_keys(arms, f"subgroups.{g}")
        return self

    def values(self) -> list[tuple[str, PublishedValue]]:
        """Every published value with a dotted path (``arms.chemo.median_os_months``, ...)."""
        out: list[tuple[str, PublishedValue]] = []
        for arm, vals in self.arms.items():
            out += [(f"arms.{arm}.{k}", v) for k, v in vals.items()]
        for g, arms in self.subgroups.items():
            for arm, vals in arms.items():
                out += [(f"subgroups.{g}.{arm}.{k}", v) for k, v in vals.items()]
        for i, c in enumerate(self.comparisons):
            out.append((f"comparisons[{i}].hr", c.hr))
        return out


# ----------------------------------------------------------------------------- the trial


#: Default ``scan_window_days``: assumed, the +/-7 days typical of protocols' assessment windows.
DEFAULT_SCAN_WINDOW_DAYS = 7.0


def check_scan_window(window_days: Any, visit_days: np.ndarray | None = None, schedule: str | None = None) -> None:
    """Raise :class:`ChemoioInputError` (field ``scan_window_days``) unless the visit window
    is a finite number of days >= 0 that cannot reorder the scheduled scans of ``visit_days``
    (2 x window below the smallest gap between consecutive scans) nor move the first scan to
    or before randomisation (window below the first scan day)."""
    field = "scan_window_days"
    if isinstance(window_days, bool) or not isinstance(window_days, (int, float, np.integer, np.floating)):
        raise ChemoioInputError(field, f"expected a number of days, got {window_days!r}")
    w = float(window_days)
    if not math.isfinite(w) or w < 0:
        raise ChemoioInputError(
            field, f"must be a finite number of days >= 0, got {window_days!r}",
            "0 = every scan on its scheduled day; 7 = the usual +/-7-day protocol window",
        )
    if visit_days is None or w == 0:
        return
    days = np.asarray(visit_days, dtype=float)
    where = f" of scan_schedule {schedule!r}" if schedule else ""
    if days.size and w >= days[0]:
        raise ChemoioInputError(
            field,
            f"a +/-{w:g}-day window could move the first scan{where} (day {days[0]:g}) to or before "
            "randomisation (day 0)",
            f"use a window below {days[0]:g} days",
        )
    if days.size >= 2:
        gaps = np.diff(days)
        k = int(np.argmin(gaps))
        gap = float(gaps[k])
        if 2.0 * w >= gap:
            raise ChemoioInputError(
                field,
                f"a +/-{w:g}-day window is impossible with scans{where} on days {days[k]:g} and "
                f"{days[k + 1]:g}, only {gap:g} days apart: visits could swap order "
                "(2 x window must be below the smallest gap between scheduled scans)",
                f"use a window below {gap / 2:g} days",
            )


def parse_ratio(text: str) -> tuple[int, ...]:
    """``"2:1"`` -> (2, 1). Errors name the field ``randomization``."""
    if not isinstance(text, str):
        raise ChemoioInputError("randomization", f"expected a ratio such as '2:1', got {text!r}")
    parts = [p.strip() for p in text.split(":")]
    if len(parts) < 1 or any(not re.fullmatch(r"\d+", p) for p in parts):
        raise ChemoioInputError(
            "randomization", f"cannot read ratio {text!r}", "write positive integers separated by ':', e.g. '2:1' or '1:1:1'"
        )
    ratio = tuple(int(p) for p in parts)
    if any(r <= 0 for r in ratio):
        raise ChemoioInputError("randomization", f"every part of {text!r} must be > 0")
    return ratio


class TrialSpec(_Model):
    """The design of a randomised trial and its published results. See docs/trials.md."""

    name: str = Field(pattern=_IDENT, description="identifier, e.g. keynote189")
    title: str
    trial_id: str = Field(description="trial id as in trials/calibration.yaml, e.g. KEYNOTE-189")
    population: PopulationSpec
    arms: list[ArmSpec] = Field(min_length=1)
    n_total: int | None = Field(None, gt=0, description="patients randomised (or give n_per_arm)")
    n_per_arm: dict[str, int] | None = Field(None, description="patients per arm, e.g. the published arm sizes")
    randomization: str = Field(description="allocation ratio in arm order, e.g. '2:1' or '1:1:1'")
    follow_up: FollowUpSpec
    scan_schedule: str = Field(description="e.g. 'q6w to w18 then q9w' (see chemoio.trial.schedule)")
    scan_window_days: float = Field(
        DEFAULT_SCAN_WINDOW_DAYS, description="visit window: each scan happens up to this many days "
        "before or after its scheduled day (uniform per patient and visit); progression and censoring "
        "are dated at the actual scan. 0 = every scan on its scheduled day")
    discontinue_on_progression: bool = True
    endpoints: list[Endpoint] = Field(min_length=1)
    primary_endpoints: list[Endpoint] = Field(min_length=1)
    comparisons: list[ComparisonSpec] = Field(default_factory=list)
    subgroups: list[SubgroupSpec] = Field(default_factory=list)
    replicates: int = Field(100, ge=1, description="simulated replicates of the whole trial")
    seed: int = 1
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="two-sided level for 'meets its primary endpoint'")
    alpha_by_endpoint: dict[Endpoint, float] = Field(default_factory=dict, description="per-endpoint override of alpha")
    response_criteria: ResponseCriteria = Field(
        "recist11", description="recist11: RECIST 1.1 progression; irecist: a RECIST progression is iUPD, "
        "treatment continues and progression counts only when confirmed (iCPD)")
    toxicity: ToxicitySpec = Field(default_factory=ToxicitySpec, description="neutropenia and dose rules")
    published: PublishedSpec | None = None
    notes: list[str] = Field(default_factory=list)

    _scan: ScanSchedule | None = PrivateAttr(default=None)

    @field_validator("randomization")
    @classmethod
    def _ratio_syntax(cls, v: str) -> str:
        parse_ratio(v)
        return v

    @field_validator("scan_schedule")
    @classmethod
    def _schedule_syntax(cls, v: str) -> str:
        ScanSchedule.parse(v)
        return v

    @field_validator("scan_window_days")
    @classmethod
    def _window_range(cls, v: float) -> float:
        check_scan_window(v)
        return v

    @field_validator("alpha_by_endpoint")
    @classmethod
    def _alpha_range(cls, v: dict[str, float]) -> dict[str, float]:
        for k, a in v.items():
            if not 0.0 < a < 1.0:
                raise ChemoioInputError(k, f"alpha must be in (0, 1), got {a:g}")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> TrialSpec:
        names = [a.name for a in self.arms]
        seen: set[str] = set()
        for i, n in enumerate(names):
            if n in seen:
                raise ChemoioInputError(f"arms[{i}].name", f"duplicate arm name {n!r}")
            seen.add(n)

        def arm_ref(name: str, field: str) -> None:
            if name not in names:
                raise ChemoioInputError(field, f"unknown arm {name!r}", suggest(name, names) or "arms: " + ", ".join(names))

        ratio = parse_ratio(self.randomization)
        if len(ratio) != len(self.arms):
            raise ChemoioInputError(
                "randomization",
                f"{self.randomization!r} has {len(ratio)} parts but the trial has {len(self.arms)} arms",
            )

        if self.n_total is None and self.n_per_arm is None:
            raise ChemoioInputError("n_total", "give n_total or n_per_arm")
        if self.n_per_arm is not None:
            for k, n in self.n_per_arm.items():
                arm_ref(k, f"n_per_arm.{k}")
                if n <= 0:
                    raise ChemoioInputError(f"n_per_arm.{k}", f"must be > 0, got {n}")
            missing = [n for n in names if n not in self.n_per_arm]
            if missing:
                raise ChemoioInputError("n_per_arm", f"no size for arm(s) {', '.join(missing)}")
            total = sum(self.n_per_arm.values())
            if self.n_total is None:
                self.n_total = total
            elif self.n_total != total:
                raise ChemoioInputError("n_per_arm", f"arm sizes sum to {total}, but n_total is {self.n_total}")
            rsum = sum(ratio)
            for n, r in zip(names, ratio, strict=True):
                share, want = self.n_per_arm[n] / total, r / rsum
                if abs(share - want) > 0.05:
                    raise ChemoioInputError(
                        f"n_per_arm.{n}",
                        f"{self.n_per_arm[n]} of {total} ({share:.1%}) does not fit randomization "
                        f"{self.randomization} ({want:.1%})",
                    )

        for i, ep in enumerate(self.primary_endpoints):
            if ep not in self.endpoints:
                raise ChemoioInputError(f"primary_endpoints[{i}]", f"{ep} is not in endpoints {self.endpoints}")
        for ep in self.alpha_by_endpoint:
            if ep not in self.endpoints:
                raise ChemoioInputError(f"alpha_by_endpoint.{ep}", f"{ep} is not in endpoints {self.endpoints}")

        sub_names = [s.name for s in self.subgroups]
        seen = set()
        for i, s in enumerate(self.subgroups):
            if s.name in seen:
                raise ChemoioInputError(f"subgroups[{i}].name", f"duplicate subgroup name {s.name!r}")
            if s.name in names:
                raise ChemoioInputError(f"subgroups[{i}].name", f"{s.name!r} is also an arm name")
            seen.add(s.name)

        def subgroup_ref(name: str, field: str) -> None:
            if name not in sub_names:
                raise ChemoioInputError(
                    field, f"unknown subgroup {name!r}", suggest(name, sub_names) or "subgroups: " + (", ".join(sub_names) or "none")
                )

        pairs: set[tuple[str, str]] = set()
        for i, c in enumerate(self.comparisons):
            if (c.experimental, c.control) in pairs:
                raise ChemoioInputError(
                    f"comparisons[{i}]",
                    f"{c.experimental} vs {c.control} is listed twice",
                    "list each pair once; it is analysed in all patients and in every subgroup",
                )
            pairs.add((c.experimental, c.control))
            arm_ref(c.experimental, f"comparisons[{i}].experimental")
            arm_ref(c.control, f"comparisons[{i}].control")
            if c.experimental == c.control:
                raise ChemoioInputError(f"comparisons[{i}].control", "an arm cannot be compared with itself")
            for j, ep in enumerate(c.endpoints):
                if ep not in self.endpoints:
                    raise ChemoioInputError(f"comparisons[{i}].endpoints[{j}]", f"{ep} is not in endpoints {self.endpoints}")
            if c.primary_subgroup is not None:
                subgroup_ref(c.primary_subgroup, f"comparisons[{i}].primary_subgroup")
            for j, s in enumerate(c.stratify_by):
                if s not in sub_names and s not in STRATIFY_COVARIATES:
                    allowed = [*sub_names, *STRATIFY_COVARIATES]
                    raise ChemoioInputError(
                        f"comparisons[{i}].stratify_by[{j}]",
                        f"unknown stratification factor {s!r}",
                        suggest(s, allowed) or "subgroup names or " + ", ".join(STRATIFY_COVARIATES),
                    )

        if "pCR" in self.endpoints:
            for i, a in enumerate(self.arms):
                if a.surgery_day is None:
                    raise ChemoioInputError(
                        f"arms[{i}].surgery_day", "pCR needs a surgery day (neoadjuvant regimen or surgery_day)"
                    )

        scan = ScanSchedule.parse(self.scan_schedule)
        horizon = self.horizon_days()
        if scan.first_scan_day > horizon:
            raise ChemoioInputError(
                "scan_schedule",
                f"the first scan (day {scan.first_scan_day:g}) is after the data cut-off (day {horizon:.0f})",
            )
        self._scan = scan
        check_scan_window(self.scan_window_days, scan.visit_days(horizon), self.scan_schedule)

        if self.published is not None:
            p = self.published
            for arm in p.arms:
                arm_ref(arm, f"published.arms.{arm}")
            for g, arms in p.subgroups.items():
                subgroup_ref(g, f"published.subgroups.{g}")
                for arm in arms:
                    arm_ref(arm, f"published.subgroups.{g}.{arm}")
            for i, c in enumerate(p.comparisons):
                arm_ref(c.experimental, f"published.comparisons[{i}].experimental")
                arm_ref(c.control, f"published.comparisons[{i}].control")
                if c.subgroup is not None:
                    subgroup_ref(c.subgroup, f"published.comparisons[{i}].subgroup")
            for path, v in p.values():
                if not v.source:
                    raise ChemoioInputError(f"published.{path}.source", "every published value needs a source")
        return self

    # -- derived quantities -----------------------------------------------------------------

    @property
    def ratio(self) -> tuple[int, ...]:
        return parse_ratio(self.randomization)

    @property
    def arm_names(self) -> list[str]:
        return [a.name for a in self.arms]

    def arm(self, name: str) -> ArmSpec:
        for a in self.arms:
            if a.name == name:
                return a
        raise ChemoioInputError("arm", f"unknown arm {name!r}", suggest(name, self.arm_names))

    def subgroup(self, name: str) -> SubgroupSpec:
        for s in self.subgroups:
            if s.name == name:
                return s
        raise ChemoioInputError("subgroup", f"unknown subgroup {name!r}", suggest(name, [s.name for s in self.subgroups]))

    def arm_sizes(self) -> dict[str, int]:
        """Patients per arm: ``n_per_arm`` when given, else ``n_total`` split by the ratio
        (largest remainder; ties go to the earlier arm). Sums to ``n_total``."""
        if self.n_per_arm is not None:
            return {n: int(self.n_per_arm[n]) for n in self.arm_names}
        assert self.n_total is not None
        ratio = self.ratio
        exact = [self.n_total * r / sum(ratio) for r in ratio]
        sizes = [math.floor(x) for x in exact]
        left = self.n_total - sum(sizes)
        order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - sizes[i]), i))
        for i in order[:left]:
            sizes[i] += 1
        return dict(zip(self.arm_names, sizes, strict=True))

    def horizon_days(self) -> float:
        """Days from the first randomisation to the data cut-off."""
        return self.follow_up.data_cutoff_months * DAYS_PER_MONTH

    def scan(self) -> ScanSchedule:
        if self._scan is None:
            self._scan = ScanSchedule.parse(self.scan_schedule)
        return self._scan

    def visit_days(self, horizon_days: float | None = None) -> np.ndarray:
        """Scheduled scan days (from randomisation) up to the cut-off (or ``horizon_days``)."""
        return self.scan().visit_days(self.horizon_days() if horizon_days is None else horizon_days)

    def alpha_for(self, endpoint: str) -> float:
        return float(self.alpha_by_endpoint.get(endpoint, self.alpha))  # type: ignore[call-overload]

    def to_yaml(self) -> str:
        """YAML text that loads back to an equal spec."""
        data = self.model_dump(mode="json", exclude_none=True)
        # a null in the toxicity section switches a rule off: keep it
        data["toxicity"] = self.toxicity.model_dump(mode="json")
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# ----------------------------------------------------------------------------- loading

_TAG = re.compile(r"^(str|int|float|bool|none|list\[.*\]|dict\[.*\]|tuple\[.*\]|function-\w+\[.*\]|literal\[.*\]|nullable\[.*\])$")


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    tp: Any = TrialSpec
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if isinstance(part, str) and part in tp.model_fields:
                tp = tp.model_fields[part].annotation
                continue
            return None
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (list, tuple) and args:
            tp = args[0]
        elif origin is dict and len(args) == 2:
            tp = args[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def _join(loc: tuple[Any, ...], inner: str) -> str:
    if not inner:
        return _fmt_loc(loc)
    if loc and isinstance(loc[-1], str) and (inner == loc[-1] or inner.startswith((loc[-1] + ".", loc[-1] + "["))):
        loc = loc[:-1]
    prefix = _fmt_loc(loc)
    if not prefix:
        return inner
    return prefix + inner if inner.startswith("[") else f"{prefix}.{inner}"


def _convert(err: ValidationError) -> ChemoioInputError:
    out: list[tuple[str, str, str | None]] = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and _TAG.match(p)))
        exc = (e.get("ctx") or {}).get("error")
        if isinstance(exc, ChemoioInputError):
            out.append((_join(loc, exc.field), exc.message, exc.hint))
            continue
        kind = e["type"]
        if kind == "extra_forbidden" and loc:
            key = str(loc[-1])
            model = _model_at(loc[:-1])
            fields = list(model.model_fields) if model else []
            hint = suggest(key, fields) if fields else None
            if hint is None and fields:
                hint = "allowed: " + ", ".join(fields)
            out.append((_fmt_loc(loc), f"unknown field {key!r}", hint))
            continue
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if kind == "missing":
            msg = "required field is missing"
        out.append((_fmt_loc(loc) or "spec", msg, None))
    # one message: the first problem, the others named in the hint
    seen: list[tuple[str, str, str | None]] = []
    for item in out:
        if item[0] not in [s[0] for s in seen]:
            seen.append(item)
    field, message, hint = seen[0]
    if len(seen) > 1:
        more = "also wrong: " + ", ".join(s[0] for s in seen[1:6]) + (" ..." if len(seen) > 6 else "")
        hint = f"{hint}; {more}" if hint else more
    return ChemoioInputError(field, message, hint)


def spec_from_dict(data: Mapping[str, Any], base_dir: str | Path | None = None) -> TrialSpec:
    """Validate a mapping as a TrialSpec; errors become ChemoioInputError naming the field.
    Relative regimen YAML paths are looked up in ``base_dir`` first."""
    if not isinstance(data, Mapping):
        raise ChemoioInputError("spec", f"expected a mapping of spec fields, got {type(data).__name__}")
    try:
        return TrialSpec.model_validate(dict(data), context={"base_dir": str(base_dir) if base_dir else None})
    except ValidationError as e:
        raise _convert(e) from None


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.strip().lower())


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, str]:
    folder = resources.files("chemoio.trial").joinpath("data/specs")
    names = sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return {n: n for n in names}


def list_specs() -> list[str]:
    """Names of the shipped trial specs (``load_spec(name)`` loads them)."""
    return list(_shipped())


def spec_path(name: str) -> Path:
    """File of a shipped spec."""
    shipped = {_norm(n): n for n in _shipped()}
    key = _norm(name)
    if key not in shipped:
        raise ChemoioInputError(
            "spec", f"unknown trial spec {name!r}", suggest(key, list(_shipped())) or "shipped: " + ", ".join(_shipped())
        )
    return Path(str(resources.files("chemoio.trial").joinpath(f"data/specs/{shipped[key]}.yaml")))


def load_spec(name_or_path: str | Path) -> TrialSpec:
    """A shipped spec by name (``"keynote189"``, ``"KEYNOTE-189"``) or a YAML file path."""
    if isinstance(name_or_path, Path):
        path = name_or_path
    elif not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ChemoioInputError("spec", f"expected a spec name or a YAML path, got {name_or_path!r}")
    else:
        text = name_or_path.strip()
        looks_like_path = text.lower().endswith((".yaml", ".yml")) or "/" in text or "\\" in text
        if looks_like_path or (_norm(text) not in {_norm(n) for n in _shipped()} and Path(text).is_file()):
            path = Path(text)
        else:
            path = spec_path(text)
    if not path.is_file():
        raise ChemoioInputError("spec", f"no such spec file: {str(path)!r}")
    data = read_yaml_file(path, "spec")
    if data is None:
        raise ChemoioInputError("spec", f"{path.name} is empty")
    return spec_from_dict(data, base_dir=path.parent)


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of a trial spec (for editors and other tools)."""
    schema = TrialSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
