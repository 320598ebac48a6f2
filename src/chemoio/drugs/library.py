"""The drug library: load YAML drug files, check them, and look agents up by name.

Shipped agents live in ``chemoio/drugs/data/<name>.yaml``. Users add their own agents in
two ways:

* list one or more directories in the environment variable ``CHEMOIO_DRUG_PATH``
  (separated by ``os.pathsep``: ``:`` on Linux/macOS, ``;`` on Windows); every ``*.yaml`` /
  ``*.yml`` file there is loaded;
* call :func:`add_drug_file` at run time.

Precedence (highest first): files registered with :func:`add_drug_file` (the latest call
wins), then the ``CHEMOIO_DRUG_PATH`` directories in the order listed (like ``PATH``: the
first directory wins), then the shipped library. A user drug whose ``name`` equals a shipped
one *replaces* it, aliases included.

Every problem in a drug file raises :class:`~chemoio.errors.ChemoioInputError` whose
``field`` is ``"<file name>:<dotted.field.path>"``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import types
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from chemoio.drugs.schema import Drug, Sourced
from chemoio.errors import ChemoioInputError, suggest

DATA_DIR = Path(__file__).with_name("data")
ENV_VAR = "CHEMOIO_DRUG_PATH"

#: Unit every Sourced field must carry, by dotted path inside a drug file. ``"1"`` means
#: dimensionless. ``chemo_pd.reference_dose`` is checked separately (it must be one of the
#: drug's ``dose_units``; AUC may also be written ``mg/mL*min``).
EXPECTED_UNITS: dict[str, str] = {
    "antibody_pk.cl_L_per_day": "L/day",
    "antibody_pk.v1_L": "L",
    "antibody_pk.q_L_per_day": "L/day",
    "antibody_pk.v2_L": "L",
    "antibody_pk.mw_kDa": "kDa",
    "antibody_pk.omega_cl": "1",
    "antibody_pk.omega_v1": "1",
    "antibody_pk.wt_exponent_cl": "1",
    "antibody_pk.wt_exponent_v": "1",
    "antibody_pd.kd_nM": "nM",
    "antibody_pd.tumour_to_plasma": "1",
    "antibody_pd.adcc": "1",
    "chemo_pk.cl_L_per_h": "L/h",
    "chemo_pk.v_L": "L",
    "chemo_pk.omega_cl": "1",
    "chemo_pk.mw_g_per_mol": "g/mol",
    "chemo_pd.log_kill_per_reference_dose": "1",
    "chemo_pd.k_effect_per_day": "1/day",
    "chemo_pd.resistant_sensitivity": "1",
    "immunomodulation.icd_fraction": "1",
    "immunomodulation.treg_depletion": "1",
    "immunomodulation.mdsc_depletion": "1",
    "immunomodulation.lymphotoxicity": "1",
    "immunomodulation.pdl1_induction": "1",
    "immunomodulation.mhc1_induction": "1",
}

#: Other spellings accepted for a canonical unit.
UNIT_ALIASES: dict[str, frozenset[str]] = {
    "1": frozenset({"1", "dimensionless", "-"}),
    "1/day": frozenset({"1/day", "/day", "day^-1", "1/d"}),
    "L/day": frozenset({"L/day", "L/d"}),
    "L/h": frozenset({"L/h", "L/hr"}),
}

#: Fields that are relative strengths or fractions and must lie in [0, 1].
UNIT_INTERVAL_FIELDS: frozenset[str] = frozenset(
    {
        "antibody_pd.tumour_to_plasma",
        "antibody_pd.adcc",
        "chemo_pd.resistant_sensitivity",
        "immunomodulation.icd_fraction",
        "immunomodulation.treg_depletion",
        "immunomodulation.mdsc_depletion",
        "immunomodulation.lymphotoxicity",
        "immunomodulation.pdl1_induction",
        "immunomodulation.mhc1_induction",
    }
)

#: Fields that must be strictly positive (PK sizes, doses, rates).
POSITIVE_FIELDS: frozenset[str] = frozenset(
    {
        "antibody_pk.cl_L_per_day",
        "antibody_pk.v1_L",
        "antibody_pk.q_L_per_day",
        "antibody_pk.v2_L",
        "antibody_pk.mw_kDa",
        "antibody_pd.kd_nM",
        "chemo_pk.cl_L_per_h",
        "chemo_pk.v_L",
        "chemo_pk.mw_g_per_mol",
        "chemo_pd.reference_dose",
        "chemo_pd.log_kill_per_reference_dose",
        "chemo_pd.k_effect_per_day",
    }
)

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KIND_ORDER = {kind: i for i, kind in enumerate(get_args(Drug.model_fields["kind"].annotation))}


# --------------------------------------------------------------------------------------
# loading one file
# --------------------------------------------------------------------------------------


def load_drug_file(path: str | os.PathLike[str]) -> Drug:
    """Read, validate and unit-check one drug YAML file.

    Raises :class:`ChemoioInputError` with ``field="<file>:<dotted.path>"`` for unreadable
    files, malformed YAML, a top level that is not a mapping, schema violations, wrong
    units and out-of-range values.
    """
    p = Path(path)
    fname = p.name
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChemoioInputError(fname, f"cannot read drug file {str(p)!r}: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ChemoioInputError(fname, f"invalid YAML{where}: {problem}") from exc
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ChemoioInputError(
            fname, f"a drug file must be a YAML mapping (name: ..., kind: ...), got {got}"
        )
    try:
        drug = Drug.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(fname, exc) from exc
    _check_units_and_ranges(fname, drug)
    return drug


def _loc_to_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the last key of ``loc`` (for 'did you mean')."""
    model: type[BaseModel] = Drug
    for key in loc[:-1]:
        if not isinstance(key, str) or key not in model.model_fields:
            return None
        ann = model.model_fields[key].annotation
        if get_origin(ann) in (Union, types.UnionType):
            ann = next((a for a in get_args(ann) if a is not type(None)), ann)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def _suggest_case_kept(name: str, choices: Iterable[str]) -> str | None:
    """Like :func:`chemoio.errors.suggest`, but quotes field names in their own case."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"


def _validation_error(fname: str, exc: ValidationError) -> ChemoioInputError:
    errors = exc.errors(include_url=False)
    # an unknown key usually explains the "missing" error next to it: report it first
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(first["loc"])
    path = _loc_to_path(loc)
    field = f"{fname}:{path}" if path else fname
    msg = str(first["msg"])
    hint = None
    if first["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
        owner = _model_at(loc)
        if owner is not None:
            msg = f"unknown field {loc[-1]!r}"
            hint = _suggest_case_kept(loc[-1], owner.model_fields)
    elif first["type"] == "missing":
        msg = "required field is missing"
    elif first["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    if len(errors) > 1:
        others = [f"{_loc_to_path(e['loc']) or '(drug)'}: {e['msg']}" for e in errors[1:4]]
        more = f"; and {len(errors) - 4} more" if len(errors) > 4 else ""
        msg += f" (also: {'; '.join(others)}{more})"
    return ChemoioInputError(field, msg, hint=hint)


def _sourced_at(drug: Drug, path: str) -> Sourced | None:
    obj: Any = drug
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, Sourced) else None


def _unit_ok(unit: str, expected: str) -> bool:
    unit = unit.strip()
    return unit in UNIT_ALIASES.get(expected, frozenset({expected}))


def _check_units_and_ranges(fname: str, drug: Drug) -> None:
    for path, expected in EXPECTED_UNITS.items():
        s = _sourced_at(drug, path)
        if s is None:
            continue
        if not _unit_ok(s.unit, expected):
            raise ChemoioInputError(
                f"{fname}:{path}.unit", f"unit must be {expected!r}, got {s.unit!r}"
            )
    ref = _sourced_at(drug, "chemo_pd.reference_dose")
    if ref is not None:
        allowed = set(drug.dose_units)
        if "AUC" in allowed:
            allowed.add("mg/mL*min")
        if ref.unit.strip() not in allowed:
            raise ChemoioInputError(
                f"{fname}:chemo_pd.reference_dose.unit",
                f"unit must be one of the drug's dose_units {sorted(allowed)}, got {ref.unit!r}",
            )
    for path in sorted(UNIT_INTERVAL_FIELDS | POSITIVE_FIELDS):
        s = _sourced_at(drug, path)
        if s is None:
            continue
        v = s.value
        if not math.isfinite(v):
            raise ChemoioInputError(f"{fname}:{path}.value", f"must be a finite number, got {v}")
        if path in UNIT_INTERVAL_FIELDS and not 0.0 <= v <= 1.0:
            raise ChemoioInputError(f"{fname}:{path}.value", f"must lie in [0, 1], got {v}")
        if path in POSITIVE_FIELDS and v <= 0.0:
            raise ChemoioInputError(f"{fname}:{path}.value", f"must be > 0, got {v}")
    if drug.name != drug.name.strip().lower() or not drug.name:
        raise ChemoioInputError(
            f"{fname}:name", f"the canonical name must be lower case, got {drug.name!r}"
        )


# --------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------


def _key(name: str) -> str:
    """Normalised lookup key: case-insensitive; spaces and underscores count as hyphens."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def _compact(name: str) -> str:
    """Looser key used as a fallback: letters and digits only (``"carbo platin"``)."""
    return re.sub(r"[^0-9a-z]+", "", name.lower())


@dataclass
class _Registry:
    drugs: dict[str, Drug]  # canonical name -> drug
    lookup: dict[str, str]  # normalised name or alias -> canonical name
    compact: dict[str, str]  # letters-and-digits-only key -> canonical name (unambiguous only)
    origin: dict[str, Path]  # canonical name -> file it came from


_extra_files: list[Path] = []
_cache: tuple[tuple[str, tuple[Path, ...]], _Registry] | None = None


def _load_dir(directory: Path, *, what: str) -> list[tuple[Drug, Path]]:
    if not directory.is_dir():
        raise ChemoioInputError(what, f"drug directory {str(directory)!r} does not exist")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    loaded = [(load_drug_file(f), f) for f in files]
    seen: dict[str, Path] = {}
    for drug, f in loaded:
        if drug.name in seen:
            raise ChemoioInputError(
                f"{f.name}:name",
                f"drug {drug.name!r} is defined twice in {str(directory)!r} "
                f"({seen[drug.name].name} and {f.name})",
            )
        seen[drug.name] = f
    return loaded


def _user_dirs() -> list[Path]:
    raw = os.environ.get(ENV_VAR, "")
    return [Path(part).expanduser() for part in raw.split(os.pathsep) if part.strip()]


def _build() -> _Registry:
    # lowest precedence first; later layers overwrite earlier ones
    layers: list[list[tuple[Drug, Path]]] = [_load_dir(DATA_DIR, what="drug library")]
    for d in reversed(_user_dirs()):
        layers.append(_load_dir(d, what=ENV_VAR))
    layers.append([(load_drug_file(f), f) for f in _extra_files])
    drugs: dict[str, Drug] = {}
    origin: dict[str, Path] = {}
    rank: dict[str, int] = {}
    for i, layer in enumerate(layers):
        for drug, f in layer:
            drugs[drug.name] = drug
            origin[drug.name] = f
            rank[drug.name] = i
    lookup: dict[str, str] = {}
    # aliases first, lower precedence first so that user drugs win alias clashes;
    # canonical names last, so that a name always beats another drug's alias
    for drug in sorted(drugs.values(), key=lambda d: rank[d.name]):
        for alias in drug.aliases:
            lookup[_key(alias)] = drug.name
    for drug in drugs.values():
        lookup[_key(drug.name)] = drug.name
    targets: dict[str, set[str]] = {}
    for key, target in lookup.items():
        targets.setdefault(_compact(key), set()).add(target)
    compact = {k: next(iter(v)) for k, v in targets.items() if len(v) == 1 and k}
    return _Registry(drugs=drugs, lookup=lookup, compact=compact, origin=origin)


def _registry() -> _Registry:
    global _cache
    key = (os.environ.get(ENV_VAR, ""), tuple(_extra_files))
    if _cache is None or _cache[0] != key:
        _cache = (key, _build())
    return _cache[1]


def reload() -> None:
    """Forget the cached library; the next lookup re-reads every drug file."""
    global _cache
    _cache = None


def add_drug_file(path: str | os.PathLike[str]) -> Drug:
    """Register a user drug file now (it overrides a drug of the same name) and return it."""
    p = Path(path).expanduser().resolve()
    drug = load_drug_file(p)  # fail early, with the file's own error
    if p in _extra_files:
        _extra_files.remove(p)
    _extra_files.append(p)
    return drug


def clear_user_drugs() -> None:
    """Drop every file registered with :func:`add_drug_file` (the environment is untouched)."""
    _extra_files.clear()


# --------------------------------------------------------------------------------------
# public lookup
# --------------------------------------------------------------------------------------


def list_drugs() -> list[Drug]:
    """All agents, antibodies first (anti-PD-1, anti-PD-L1, anti-CTLA-4), then chemotherapy;
    alphabetical within each kind."""
    return sorted(_registry().drugs.values(), key=lambda d: (_KIND_ORDER[d.kind], d.name))


def drug_names() -> list[str]:
    """Canonical names of all agents, alphabetical."""
    return sorted(_registry().drugs)


def get_drug(name: str) -> Drug:
    """Look an agent up by canonical name, brand name or abbreviation.

    Matching ignores case and surrounding spaces; inner spaces and underscores count as
    hyphens (``"Nab Paclitaxel"`` finds ``nab-paclitaxel``); failing that, a name that
    matches on letters and digits alone is accepted when it is unambiguous
    (``"carbo platin"``, ``"5FU"``).
    """
    if not isinstance(name, str) or not name.strip():
        raise ChemoioInputError("drug", f"a drug name is required, got {name!r}")
    reg = _registry()
    key = _key(name)
    if key in reg.lookup:
        return reg.drugs[reg.lookup[key]]
    if _compact(key) in reg.compact:
        return reg.drugs[reg.compact[_compact(key)]]
    raise ChemoioInputError("drug", f"unknown drug {name!r}", hint=suggest(key, reg.lookup))


def drug_source(name: str) -> Path:
    """The file an agent was loaded from (useful to see whether a user file overrode it)."""
    return _registry().origin[get_drug(name).name]


# --------------------------------------------------------------------------------------
# derived quantities
# --------------------------------------------------------------------------------------


def antibody_terminal_half_life_days(drug: Drug) -> float:
    """Terminal (beta-phase) half-life of the typical 2-compartment antibody PK, in days."""
    pk = drug.antibody_pk
    if pk is None:
        raise ChemoioInputError("drug", f"{drug.name} is not an antibody")
    k10 = pk.cl_L_per_day.value / pk.v1_L.value
    k12 = pk.q_L_per_day.value / pk.v1_L.value
    k21 = pk.q_L_per_day.value / pk.v2_L.value
    s = k10 + k12 + k21
    beta = 0.5 * (s - math.sqrt(s * s - 4.0 * k10 * k21))
    return math.log(2.0) / beta


def chemo_half_life_h(drug: Drug) -> float:
    """Half-life of the typical one-compartment chemotherapy exposure model, in hours."""
    pk = drug.chemo_pk
    if pk is None:
        raise ChemoioInputError("drug", f"{drug.name} is not a chemotherapy agent")
    return math.log(2.0) * pk.v_L.value / pk.cl_L_per_h.value
