"""Tumour types: the distributions virtual patients are drawn from.

One YAML file per tumour type lives in ``chemoio/population/data/<name>.yaml``; constants
common to all types (the inflamed-factor loadings, the PD-L1 and antigenicity mappings, the
adult body-size and renal-function model) live in ``data/_shared.yaml``. Every number there
carries a unit and a source; a source is a paper (with the PMID where it was checked) or a
text starting with ``assumed`` or ``calibrated`` that gives the reason.

This module only reads and checks those files; :mod:`chemoio.population.sampling` turns
them into patients.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from chemoio.errors import ChemoioInputError, suggest
from chemoio.model.equations import PATIENT_ORDER

DATA_PACKAGE = "chemoio.population"
DATA_DIR = "data"
SHARED_FILE = "_shared.yaml"

# Parameters drawn from a distribution of their own; the other two are computed.
DRAWN_PARAMETERS = (
    "sld0_mm", "growth_per_day", "resistant_fraction0", "chemo_sensitivity", "infiltration",
    "mdsc0", "treg0", "kill_per_day", "cd8_per_tumour_cell0",
)
DERIVED_PARAMETERS = ("antigenicity", "pdl1_tumour0")
DIST_KINDS = {
    "lognormal": ("median", "sigma"),
    "loguniform": ("low", "high"),
    "normal": ("mean", "sd"),
    "derived": (),
}
IC_CATEGORIES = 4  # SP142 immune-cell score IC0, IC1, IC2, IC3


@dataclass(frozen=True)
class Dist:
    """One sourced distribution (or a derived quantity, ``kind == "derived"``)."""

    name: str
    kind: str
    params: dict[str, float]
    unit: str
    source: str
    clip: tuple[float, float] | None = None
    note: str = ""

    def summary(self) -> str:
        p = self.params
        if self.kind == "lognormal":
            text = f"log-normal, median {_fmt(p['median'])}, σ {_fmt(p['sigma'])}"
        elif self.kind == "loguniform":
            text = f"log-uniform {_fmt(p['low'])}–{_fmt(p['high'])}"
        elif self.kind == "normal":
            text = f"normal, mean {_fmt(p['mean'])}, SD {_fmt(p['sd'])}"
        else:
            text = "derived"
        if self.clip is not None:
            text += f", clipped to [{_fmt(self.clip[0])}, {_fmt(self.clip[1])}]"
        return text


@dataclass(frozen=True)
class ScoreMap:
    """Quantile function of an assay score: knots ``(value, share of patients below it)``.

    Between knots the score is interpolated linearly in the log of the value (linearly
    in the first segment, which starts at 0); the top segment ends at ``top`` (100 %).
    """

    name: str
    knots: tuple[tuple[float, float], ...]
    source: str
    top: float = 100.0
    note: str = ""

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        values = np.array([0.0] + [k[0] for k in self.knots] + [self.top])
        shares = np.array([0.0] + [k[1] for k in self.knots] + [1.0])
        return shares, values

    def quantile(self, q: np.ndarray) -> np.ndarray:
        """Score of the patients whose PD-L1 latent sits at population quantile ``q``."""
        shares, values = self.arrays()
        q = np.clip(np.asarray(q, dtype=np.float64), 0.0, 1.0)
        k = np.clip(np.searchsorted(shares, q, side="right") - 1, 0, len(shares) - 2)
        t = (q - shares[k]) / (shares[k + 1] - shares[k])
        lo, hi = values[k], values[k + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            logv = np.exp(np.log(np.maximum(lo, 1e-300)) + t * (np.log(hi) - np.log(np.maximum(lo, 1e-300))))
        return np.where(lo <= 0.0, lo + t * (hi - lo), logv)

    def share_below(self, value: float) -> float:
        """Share of patients with a score below ``value`` (inverse of :meth:`quantile`)."""
        shares, values = self.arrays()
        if value <= 0.0:
            return 0.0
        if value >= self.top:
            return 1.0
        k = int(np.searchsorted(values, value, side="right") - 1)
        lo, hi = values[k], values[k + 1]
        if lo <= 0.0:
            t = (value - lo) / (hi - lo)
        else:
            t = (np.log(value) - np.log(lo)) / (np.log(hi) - np.log(lo))
        return float(shares[k] + t * (shares[k + 1] - shares[k]))


@dataclass(frozen=True)
class TumorType:
    """Everything needed to draw virtual patients of one tumour type."""

    name: str
    label: str
    setting: str  # "metastatic" or "early"
    line: int | None
    reference_trials: tuple[str, ...]
    description: str
    parameters: dict[str, Dist]  # the drawn patient-level model parameters
    tmb: Dist
    tps: ScoreMap
    cps: ScoreMap
    ic_shares: tuple[float, float, float, float]
    ic_source: str
    covariates: dict[str, Any]  # indication covariates merged over _shared.yaml defaults
    shared: dict[str, Any]  # the parsed _shared.yaml (loadings, mappings, constants)
    shared_overrides: dict[str, float] = field(default_factory=dict)
    path: str = ""

    @property
    def metastatic(self) -> bool:
        return self.setting == "metastatic"

    def constant(self, *keys: str) -> float:
        """A numeric constant of ``_shared.yaml``, e.g. ``constant("pdl1", "p_min")``."""
        node: Any = self.shared
        for k in keys:
            node = node[k]
        return float(node["value"] if isinstance(node, dict) else node)

    def with_parameter(self, name: str, **fields: float) -> "TumorType":
        """A copy with one distribution changed, e.g. ``with_parameter("growth_per_day",
        median=0.01)`` (calibration, sensitivity analyses). ``name`` may be ``"tmb"``."""
        if name == "tmb":
            old = self.tmb
        elif name in self.parameters:
            old = self.parameters[name]
        else:
            choices = list(self.parameters) + ["tmb"]
            raise ChemoioInputError("parameter", f"no distribution named {name!r}",
                                    suggest(name, choices))
        params = dict(old.params)
        clip = old.clip
        for key, value in fields.items():
            if key == "clip":
                clip = None if value is None else (float(value[0]), float(value[1]))
            elif key in params:
                params[key] = float(value)
            else:
                raise ChemoioInputError(
                    f"{name}.{key}", f"a {old.kind} distribution has no field {key!r}",
                    "fields: " + ", ".join(sorted(params)) + ", clip",
                )
        new = replace(old, params=params, clip=clip, source="user override")
        _check_dist(new, f"{self.name}:{name}")
        if name == "tmb":
            return replace(self, tmb=new)
        return replace(self, parameters={**self.parameters, name: new})

    def table(self) -> pd.DataFrame:
        """Every distribution of this tumour type with its unit and source (for docs)."""
        rows: list[dict[str, str]] = []
        for name in PATIENT_ORDER:
            if name in self.parameters:
                d = self.parameters[name]
                rows.append(dict(group="parameter", name=name, distribution=d.summary(),
                                 unit=d.unit, source=d.source))
            elif name == "antigenicity":
                rows.append(dict(group="parameter", name=name,
                                 distribution="n_neo/(n_neo+n_50), n_neo = TMB·exome Mb·p_pres",
                                 unit="1", source="see _shared.yaml antigenicity"))
            else:
                rows.append(dict(group="parameter", name=name,
                                 distribution="p_min + (1 − p_min)·TPS/100",
                                 unit="1", source="see _shared.yaml pdl1.p_min"))
        rows.append(dict(group="biomarker", name="tmb_mut_per_mb", distribution=self.tmb.summary(),
                         unit=self.tmb.unit, source=self.tmb.source))
        for sm in (self.tps, self.cps):
            knots = "; ".join(f"<{_fmt(v)}: {100 * s:.1f} %" for v, s in sm.knots)
            rows.append(dict(group="biomarker", name=f"pdl1_{sm.name}",
                             distribution=f"share below cut-off — {knots}", unit="%",
                             source=sm.source))
        ic = ", ".join(f"IC{i} {100 * s:.1f} %" for i, s in enumerate(self.ic_shares))
        rows.append(dict(group="biomarker", name="pdl1_ic", distribution=ic, unit="category",
                         source=self.ic_source))
        cov = self.covariates
        keys = ["age", "male_share", "ecog_shares", "albumin_g_dL", "height_cm", "weight_kg",
                "creatinine_mg_dL", "gfr"]
        if self.metastatic:
            keys += ["met_sites", "liver_mets"]
        for key in keys:
            e = cov[key]
            rows.append(dict(group="covariate", name=key, distribution=_describe_cov(key, e),
                             unit=str(e.get("unit", "")), source=str(e.get("source", ""))))
        return pd.DataFrame(rows)


def _fmt(x: float) -> str:
    return f"{x:g}"


def _describe_cov(key: str, e: dict[str, Any]) -> str:
    if key == "age":
        return f"normal, mean {_fmt(e['mean'])}, SD {_fmt(e['sd'])}"
    if key == "male_share":
        return f"{100 * e['value']:.1f} % male"
    if key == "ecog_shares":
        return ", ".join(f"ECOG {i}: {100 * s:.1f} %" for i, s in enumerate(e["value"]))
    if key == "albumin_g_dL":
        return (f"normal, mean {_fmt(e['mean'])} at ECOG 0, SD {_fmt(e['sd'])}, "
                f"{_fmt(e['ecog_shift'])} per ECOG step")
    if key == "met_sites":
        return f"1 + Poisson({_fmt(e['mean_extra'])}), rank-correlated {_fmt(e['rho_sld'])} with SLD"
    if key == "liver_mets":
        return f"prevalence {100 * e['value']:.1f} %"
    if key == "height_cm":
        m, f = e["male"], e["female"]
        return f"normal, men {_fmt(m['mean'])} ± {_fmt(m['sd'])}, women {_fmt(f['mean'])} ± {_fmt(f['sd'])}"
    if key in ("weight_kg", "creatinine_mg_dL"):
        m, f = e["male"], e["female"]
        text = (f"log-normal, men median {_fmt(m['median'])} (σ {_fmt(m['sigma'])}), "
                f"women median {_fmt(f['median'])} (σ {_fmt(f['sigma'])})")
        if "rho_height" in e:
            text += f"; ln(weight) correlates {_fmt(e['rho_height'])} with height"
        return text
    if key == "gfr":
        return (f"Cockcroft-Gault CrCl from age, weight, creatinine, sex; clipped to "
                f"[{_fmt(e['floor'])}, {_fmt(e['cap'])}]")
    return str(e)


# ----------------------------------------------------------------------------------------
# Loading and checking
# ----------------------------------------------------------------------------------------
def _fail(where: str, message: str, hint: str | None = None):
    raise ChemoioInputError(where, message, hint)


def _num(x: Any, where: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        _fail(where, f"not a number: {x!r}")
    if not np.isfinite(v):
        _fail(where, f"not finite: {x!r}")
    return v


def _source(e: dict[str, Any], where: str) -> str:
    s = e.get("source")
    if not isinstance(s, str) or not s.strip():
        _fail(where, "every distribution needs a 'source' (a paper, or 'assumed: ...'/'calibrated: ...')")
    return s.strip()


def _check_dist(d: Dist, where: str) -> None:
    p = d.params
    if d.kind == "lognormal" and (p["median"] <= 0 or p["sigma"] < 0):
        _fail(where, "log-normal needs median > 0 and sigma >= 0")
    if d.kind == "loguniform" and not (0 < p["low"] < p["high"]):
        _fail(where, "log-uniform needs 0 < low < high")
    if d.kind == "normal" and p["sd"] < 0:
        _fail(where, "normal needs sd >= 0")
    if d.clip is not None and not d.clip[0] < d.clip[1]:
        _fail(where, "clip needs [low, high] with low < high")


def _parse_dist(name: str, e: Any, where: str) -> Dist:
    if not isinstance(e, dict):
        _fail(where, "expected a mapping with dist, its parameters, unit and source")
    kind = e.get("dist")
    if kind not in DIST_KINDS:
        _fail(f"{where}.dist", f"unknown distribution {kind!r}",
              suggest(str(kind), DIST_KINDS) or "one of " + ", ".join(DIST_KINDS))
    params = {k: _num(e.get(k), f"{where}.{k}") for k in DIST_KINDS[kind]}
    clip = None
    if e.get("clip") is not None:
        c = e["clip"]
        if not isinstance(c, (list, tuple)) or len(c) != 2:
            _fail(f"{where}.clip", "expected [low, high]")
        clip = (_num(c[0], f"{where}.clip"), _num(c[1], f"{where}.clip"))
    d = Dist(name, kind, params, str(e.get("unit", "")), _source(e, where), clip,
             str(e.get("note", "")))
    _check_dist(d, where)
    return d


def _parse_scoremap(name: str, e: Any, where: str) -> ScoreMap:
    if not isinstance(e, dict) or "knots" not in e:
        _fail(where, "expected {knots: [[cut-off, share below], ...], source: ...}")
    knots = []
    for i, k in enumerate(e["knots"]):
        if not isinstance(k, (list, tuple)) or len(k) != 2:
            _fail(f"{where}.knots[{i}]", "expected [cut-off value, share of patients below it]")
        knots.append((_num(k[0], f"{where}.knots[{i}]"), _num(k[1], f"{where}.knots[{i}]")))
    values = [0.0] + [k[0] for k in knots] + [100.0]
    shares = [0.0] + [k[1] for k in knots] + [1.0]
    if any(b <= a for a, b in zip(values, values[1:])):
        _fail(f"{where}.knots", "cut-offs must increase strictly within (0, 100)")
    if any(b <= a for a, b in zip(shares, shares[1:])):
        _fail(f"{where}.knots", "shares must increase strictly within (0, 1)")
    return ScoreMap(name, tuple(knots), _source(e, where), note=str(e.get("note", "")))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_covariates(cov: dict[str, Any], where: str, metastatic: bool) -> None:
    need = ["age", "male_share", "ecog_shares", "albumin_g_dL", "height_cm", "weight_kg",
            "creatinine_mg_dL", "gfr"]
    if metastatic:
        need += ["met_sites", "liver_mets"]
    for key in need:
        if key not in cov:
            _fail(f"{where}.covariates.{key}", "missing")
        _source(cov[key], f"{where}.covariates.{key}")
    a = cov["age"]
    for k in ("mean", "sd"):
        _num(a.get(k), f"{where}.covariates.age.{k}")
    ms = _num(cov["male_share"].get("value"), f"{where}.covariates.male_share.value")
    if not 0.0 <= ms <= 1.0:
        _fail(f"{where}.covariates.male_share", "must lie in [0, 1]")
    ecog = cov["ecog_shares"].get("value")
    if not isinstance(ecog, list) or not 1 <= len(ecog) <= 5:
        _fail(f"{where}.covariates.ecog_shares", "expected a list of shares for ECOG 0, 1, ...")
    ev = [_num(x, f"{where}.covariates.ecog_shares") for x in ecog]
    if min(ev) < 0 or abs(sum(ev) - 1.0) > 1e-6:
        _fail(f"{where}.covariates.ecog_shares", f"shares must be >= 0 and sum to 1 (sum {sum(ev):.4f})")
    if metastatic:
        liver = _num(cov["liver_mets"].get("value"), f"{where}.covariates.liver_mets.value")
        if not 0.0 <= liver <= 1.0:
            _fail(f"{where}.covariates.liver_mets", "prevalence must lie in [0, 1]")
        _num(cov["met_sites"].get("mean_extra"), f"{where}.covariates.met_sites.mean_extra")
        _num(cov["met_sites"].get("rho_sld"), f"{where}.covariates.met_sites.rho_sld")


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        _fail(where, f"not valid YAML: {exc}")
    if not isinstance(raw, dict):
        _fail(where, "expected a mapping at the top level")
    return raw


@lru_cache(maxsize=None)
def _shared() -> dict[str, Any]:
    text = resources.files(DATA_PACKAGE).joinpath(f"{DATA_DIR}/{SHARED_FILE}").read_text()
    return _read_yaml(text, SHARED_FILE)


def parse_tumor_type(raw: dict[str, Any], where: str = "tumor file") -> TumorType:
    """Build a :class:`TumorType` from the mapping of one tumour YAML file."""
    shared = _shared()
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        _fail(f"{where}.name", "missing")
    where = name
    setting = raw.get("setting", "metastatic")
    if setting not in ("metastatic", "early"):
        _fail(f"{where}.setting", f"must be 'metastatic' or 'early', not {setting!r}")
    params_raw = raw.get("parameters")
    if not isinstance(params_raw, dict):
        _fail(f"{where}.parameters", "missing")
    unknown = set(params_raw) - set(PATIENT_ORDER)
    if unknown:
        bad = sorted(unknown)[0]
        _fail(f"{where}.parameters.{bad}", "not a patient-level model parameter",
              suggest(bad, PATIENT_ORDER))
    params: dict[str, Dist] = {}
    for pname in DRAWN_PARAMETERS:
        if pname not in params_raw:
            _fail(f"{where}.parameters.{pname}", "missing")
        d = _parse_dist(pname, params_raw[pname], f"{where}.parameters.{pname}")
        if d.kind == "derived":
            _fail(f"{where}.parameters.{pname}", "this parameter is drawn, not derived")
        params[pname] = d
    for pname in DERIVED_PARAMETERS:
        e = params_raw.get(pname)
        if not isinstance(e, dict) or e.get("dist") != "derived":
            _fail(f"{where}.parameters.{pname}", "must be present with dist: derived")
    tmb = _parse_dist("tmb_mut_per_mb", raw.get("tmb"), f"{where}.tmb")
    if tmb.kind != "lognormal":
        _fail(f"{where}.tmb", "TMB is log-normal")
    pdl1 = raw.get("pdl1")
    if not isinstance(pdl1, dict):
        _fail(f"{where}.pdl1", "missing")
    tps = _parse_scoremap("tps", pdl1.get("tps"), f"{where}.pdl1.tps")
    cps = _parse_scoremap("cps", pdl1.get("cps"), f"{where}.pdl1.cps")
    ic = pdl1.get("ic")
    if not isinstance(ic, dict) or not isinstance(ic.get("shares"), list) or len(ic["shares"]) != IC_CATEGORIES:
        _fail(f"{where}.pdl1.ic", "expected {shares: [IC0, IC1, IC2, IC3], source: ...}")
    ic_shares = tuple(_num(x, f"{where}.pdl1.ic.shares") for x in ic["shares"])
    if min(ic_shares) < 0 or abs(sum(ic_shares) - 1.0) > 1e-6:
        _fail(f"{where}.pdl1.ic.shares", f"shares must be >= 0 and sum to 1 (sum {sum(ic_shares):.4f})")
    cov = _merge(shared.get("covariates", {}), raw.get("covariates") or {})
    _check_covariates(cov, where, setting == "metastatic")
    overrides = {k: _num(v, f"{where}.shared_overrides.{k}")
                 for k, v in (raw.get("shared_overrides") or {}).items()}
    line = raw.get("line")
    return TumorType(
        name=name,
        label=str(raw.get("label", name)),
        setting=setting,
        line=None if line is None else int(line),
        reference_trials=tuple(raw.get("reference_trials") or ()),
        description=str(raw.get("description", "")).strip(),
        parameters=params,
        tmb=tmb,
        tps=tps,
        cps=cps,
        ic_shares=ic_shares,  # type: ignore[arg-type]
        ic_source=_source(ic, f"{where}.pdl1.ic"),
        covariates=cov,
        shared=shared,
        shared_overrides=overrides,
    )


def load_tumor_file(path: str | Path) -> TumorType:
    """Read a user tumour-type YAML (same schema as the shipped files)."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ChemoioInputError("tumor_file", f"file not found: {p}") from None
    tt = parse_tumor_type(_read_yaml(text, p.name), p.name)
    return replace(tt, path=str(p))


@lru_cache(maxsize=None)
def _builtin() -> dict[str, TumorType]:
    out: dict[str, TumorType] = {}
    folder = resources.files(DATA_PACKAGE).joinpath(DATA_DIR)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml") or entry.name.startswith("_"):
            continue
        tt = parse_tumor_type(_read_yaml(entry.read_text(), entry.name), entry.name)
        if tt.name != entry.name[: -len(".yaml")]:
            raise RuntimeError(f"{entry.name}: name {tt.name!r} differs from the file name")
        out[tt.name] = tt
    return out


def list_tumor_types() -> list[str]:
    """Names of the shipped tumour types."""
    return sorted(_builtin())


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def get_tumor_type(name: str | TumorType) -> TumorType:
    """A shipped tumour type by name (case, '-' and ' ' are forgiven)."""
    if isinstance(name, TumorType):
        return name
    if not isinstance(name, str):
        raise ChemoioInputError("tumor", f"expected a tumour-type name, got {type(name).__name__}")
    types = _builtin()
    key = _normalise(name)
    if key in types:
        return types[key]
    raise ChemoioInputError(
        "tumor", f"unknown tumour type {name!r}",
        suggest(key, types) or "known: " + ", ".join(sorted(types)),
    )
