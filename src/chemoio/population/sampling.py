r"""Drawing virtual patients.

Determinism
-----------
The draws of the patient with global index ``i`` depend only on ``(seed, i)``: never on the
cohort size, on ``start_index`` or on how a cohort is split into chunks. Global indices are
grouped in fixed blocks of :data:`BLOCK_SIZE` (1024); block ``b`` draws one
``(N_NORMAL, 1024)`` standard-normal matrix from ``numpy.random.default_rng([seed, b])``
and patient ``i`` takes column ``i % 1024`` of block ``i // 1024``. Every random quantity
of a patient reads a fixed row of that matrix (:data:`COLUMNS`: the name is historical, the
entry is the quantity's slot), and everything after the draw is a vectorised transform, so
10^5 patients take a fraction of a second and 10^6 a few seconds.

Slots are never reused or renumbered: a new random quantity takes a spare slot, so adding
one leaves every existing draw unchanged. Uniform draws are ``Phi(normal)``.

Correlation structure
---------------------
A latent "inflamed" factor ``z ~ N(0, 1)`` drives T-cell infiltration (the drawn CD8 T cells
per tumour cell, and psi with the same score), the PD-L1 latent,
TMB, and (negatively) the MDSC and Treg indices: a quantity with loading ``a`` uses
``a z + sqrt(1 - a^2) e``. PD-L1 assay scores (TPS, CPS, SP142 IC) are read off the PD-L1
latent through each indication's published category shares, so one patient's scores are
consistent with each other (see :class:`chemoio.population.tumor_types.ScoreMap`).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from chemoio.errors import ChemoioInputError, suggest
from chemoio.model.equations import PATIENT_ORDER
from chemoio.population.tumor_types import TumorType, get_tumor_type

BLOCK_SIZE = 1024
N_NORMAL = 48
PK_SLOTS = 8
PK_EFFECTS = 2

# Fixed slot (row of a block's normal matrix) of each random quantity (never renumber).
COLUMNS = {
    "inflamed_z": 0, "sld0_mm": 1, "growth_per_day": 2, "resistant_fraction0": 3,
    "chemo_sensitivity": 4, "infiltration": 5, "pdl1_latent": 6, "tmb": 7, "mdsc0": 8,
    "treg0": 9, "kill_per_day": 10, "pdl1_ic_assay": 11, "sex": 12, "height": 13,
    "weight": 14, "age": 15, "creatinine": 16, "ecog": 17, "albumin": 18, "met_sites": 19,
    "liver_mets": 20,
    # 21-31 spare
}
PK_COLUMN0 = 32  # pk_eta[:, s, k] uses slot PK_COLUMN0 + 2*s + k (32..47)

# Selection keys: covariate column and comparison (all bounds inclusive).
SELECTION_KEYS: dict[str, tuple[str, str]] = {
    "pdl1_tps_min": ("pdl1_tps", ">="),
    "pdl1_tps_max": ("pdl1_tps", "<="),
    "pdl1_cps_min": ("pdl1_cps", ">="),
    "pdl1_cps_max": ("pdl1_cps", "<="),
    "pdl1_ic_min": ("pdl1_ic", ">="),
    "pdl1_ic_max": ("pdl1_ic", "<="),
    "tmb_min": ("tmb_mut_per_mb", ">="),
    "tmb_max": ("tmb_mut_per_mb", "<="),
    "ecog_max": ("ecog", "<="),
    "age_min": ("age", ">="),
    "age_max": ("age", "<="),
    "gfr_min": ("gfr_mL_min", ">="),
    "liver_mets": ("liver_mets", "=="),
    "sex": ("sex", "=="),
}
MAX_CANDIDATES_FLOOR = 2_000_000  # give up after this many candidates (or 1000 per patient)
NOTHING_PASSES_AFTER = 200_000  # declare a selection impossible when none of these passes


# ----------------------------------------------------------------------------------------
# Covariate formulas
# ----------------------------------------------------------------------------------------
def mosteller_bsa(height_cm, weight_kg):
    """Body-surface area (m^2), Mosteller 1987 NEJM 317:1098: sqrt(height x weight / 3600)."""
    return np.sqrt(np.asarray(height_cm, dtype=float) * np.asarray(weight_kg, dtype=float) / 3600.0)


def cockcroft_gault_crcl(age, weight_kg, creatinine_mg_dL, female):
    """Creatinine clearance (mL/min), Cockcroft & Gault 1976 Nephron 16:31.

    ``(140 - age) x weight / (72 x Scr)``, times 0.85 for women; actual body weight.
    """
    age = np.asarray(age, dtype=float)
    crcl = (140.0 - age) * np.asarray(weight_kg, dtype=float) / (72.0 * np.asarray(creatinine_mg_dL, dtype=float))
    return np.where(np.asarray(female, dtype=bool), 0.85 * crcl, crcl)


def ckd_epi_2021_egfr(age, creatinine_mg_dL, female):
    """Race-free CKD-EPI 2021 creatinine eGFR (mL/min/1.73 m^2), Inker 2021 NEJM 385:1737.

    ``142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 [female]`` with
    k = 0.7 (F) / 0.9 (M) and a = -0.241 (F) / -0.302 (M).
    """
    female = np.asarray(female, dtype=bool)
    scr = np.asarray(creatinine_mg_dL, dtype=float)
    kappa = np.where(female, 0.7, 0.9)
    alpha = np.where(female, -0.241, -0.302)
    r = scr / kappa
    egfr = 142.0 * np.minimum(r, 1.0) ** alpha * np.maximum(r, 1.0) ** -1.200
    egfr = egfr * 0.9938 ** np.asarray(age, dtype=float)
    return np.where(female, 1.012 * egfr, egfr)


# ----------------------------------------------------------------------------------------
# Result container
# ----------------------------------------------------------------------------------------
@dataclass
class VirtualPatients:
    """A cohort of virtual patients.

    ``params`` has the patient-level model parameters in ``PATIENT_ORDER`` column order;
    ``covariates`` row ``r`` belongs to ``params`` row ``r`` and to global patient
    ``index[r]``; ``pk_eta`` holds standard-normal PK random effects (n, 8 slots, 2).
    """

    tumor: str
    index: np.ndarray
    params: np.ndarray
    covariates: pd.DataFrame
    pk_eta: np.ndarray
    seed: int | None = None
    selection: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        n = len(self.index)
        if self.params.shape != (n, len(PATIENT_ORDER)):
            raise ValueError(f"params must be ({n}, {len(PATIENT_ORDER)}), got {self.params.shape}")
        if len(self.covariates) != n or self.pk_eta.shape != (n, PK_SLOTS, PK_EFFECTS):
            raise ValueError("index, covariates and pk_eta must have one row per patient")

    def __len__(self) -> int:
        return len(self.index)

    @property
    def n(self) -> int:
        return len(self.index)

    def param(self, name: str) -> np.ndarray:
        """One patient-level parameter column by name."""
        try:
            return self.params[:, PATIENT_ORDER.index(name)]
        except ValueError:
            raise ChemoioInputError("parameter", f"not a patient-level parameter: {name!r}",
                                    suggest(name, PATIENT_ORDER)) from None

    def take(self, rows) -> "VirtualPatients":
        """The patients at ``rows`` (positions, a slice or a boolean mask) in that order."""
        if isinstance(rows, slice):
            pos = np.arange(self.n)[rows]
        else:
            pos = np.asarray(rows)
            if pos.dtype == bool:
                if pos.shape != (self.n,):
                    raise ValueError(f"boolean mask must have length {self.n}")
                pos = np.flatnonzero(pos)
            else:
                pos = pos.astype(np.int64).reshape(-1)
        return VirtualPatients(
            self.tumor, self.index[pos], self.params[pos],
            self.covariates.iloc[pos].reset_index(drop=True), self.pk_eta[pos],
            self.seed, self.selection,
        )

    def to_frame(self) -> pd.DataFrame:
        """Parameters and covariates in one table (one row per patient)."""
        df = pd.DataFrame(self.params, columns=list(PATIENT_ORDER))
        return pd.concat([df, self.covariates.drop(columns=["patient_index"])], axis=1).set_index(
            pd.Index(self.index, name="patient_index")
        )


def concat_patients(parts: list[VirtualPatients]) -> VirtualPatients:
    """Stack cohorts of one tumour type (e.g. chunks sampled separately)."""
    if not parts:
        raise ValueError("nothing to concatenate")
    if len({p.tumor for p in parts}) != 1:
        raise ValueError("cannot concatenate cohorts of different tumour types")
    return VirtualPatients(
        parts[0].tumor,
        np.concatenate([p.index for p in parts]),
        np.concatenate([p.params for p in parts]),
        pd.concat([p.covariates for p in parts], ignore_index=True),
        np.concatenate([p.pk_eta for p in parts]),
        parts[0].seed, parts[0].selection,
    )


# ----------------------------------------------------------------------------------------
# Random numbers
# ----------------------------------------------------------------------------------------
def _fill_blocks(out: np.ndarray, seed: int, start: int, blocks: range) -> None:
    stop = start + out.shape[1]
    for b in blocks:
        lo = max(start, b * BLOCK_SIZE)
        hi = min(stop, (b + 1) * BLOCK_SIZE)
        block = np.random.default_rng([seed, b]).standard_normal((N_NORMAL, BLOCK_SIZE))
        out[:, lo - start:hi - start] = block[:, lo - b * BLOCK_SIZE:hi - b * BLOCK_SIZE]


def standard_normals(seed: int, start: int, n: int) -> np.ndarray:
    """The standard normals of global patients ``start .. start+n-1``, shape ``(N_NORMAL, n)``.

    Column ``j`` is patient ``start + j``; row ``k`` is random quantity ``k`` (:data:`COLUMNS`).

    Large requests are split over threads (numpy's generators release the GIL); the result
    does not depend on the split because every block has its own generator.
    """
    out = np.empty((N_NORMAL, n))
    if n == 0:
        return out
    first, last = start // BLOCK_SIZE, (start + n - 1) // BLOCK_SIZE
    n_blocks = last - first + 1
    workers = min(os.cpu_count() or 1, 8, n_blocks // 64)
    if workers <= 1:
        _fill_blocks(out, seed, start, range(first, last + 1))
        return out
    edges = np.linspace(first, last + 1, workers + 1).astype(int)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_fill_blocks, out, seed, start, range(a, b))
                   for a, b in zip(edges[:-1], edges[1:])]
        for f in futures:
            f.result()
    return out


# ----------------------------------------------------------------------------------------
# Transforms
# ----------------------------------------------------------------------------------------
def _lognormal(d, x: np.ndarray) -> np.ndarray:
    v = d.params["median"] * np.exp(d.params["sigma"] * x)
    return v if d.clip is None else np.clip(v, *d.clip)


def _draw(d, x: np.ndarray) -> np.ndarray:
    if d.kind == "lognormal":
        return _lognormal(d, x)
    if d.kind == "loguniform":
        lo, hi = math.log(d.params["low"]), math.log(d.params["high"])
        v = np.exp(lo + (hi - lo) * ndtr(x))
    elif d.kind == "normal":
        v = d.params["mean"] + d.params["sd"] * x
    else:  # pragma: no cover - derived parameters are not drawn
        raise ValueError(d.kind)
    return v if d.clip is None else np.clip(v, *d.clip)


def _mix(z: np.ndarray, e: np.ndarray, loading: float) -> np.ndarray:
    return loading * z + math.sqrt(max(1.0 - loading * loading, 0.0)) * e


def _poisson_cdf(lam: float, kmax: int) -> np.ndarray:
    k = np.arange(kmax + 1)
    pmf = np.exp(-lam + k * math.log(lam) - np.array([math.lgamma(i + 1) for i in k])) if lam > 0 else (k == 0).astype(float)
    return np.cumsum(pmf)


def _transform(tt: TumorType, Z: np.ndarray, index: np.ndarray, seed: int) -> VirtualPatients:
    n = len(index)
    C = COLUMNS
    z = Z[C["inflamed_z"]]
    load = tt.shared["inflamed_loadings"]
    a = {k: float(v["value"]) for k, v in load.items()}
    P = tt.parameters

    params = np.empty((n, len(PATIENT_ORDER)))
    col = {name: i for i, name in enumerate(PATIENT_ORDER)}
    for name in ("sld0_mm", "growth_per_day", "resistant_fraction0", "chemo_sensitivity",
                 "kill_per_day"):
        params[:, col[name]] = _draw(P[name], Z[C[name]])
    # one normal score places a patient both in psi's distribution and in the measured
    # distribution of CD8 T cells per tumour cell; psi is then solved at diagnosis so that the
    # second holds (docs/model.md 3): the inflamed factor orders both the same way
    x_inf = _mix(z, Z[C["infiltration"]], a["infiltration"])
    params[:, col["infiltration"]] = _draw(P["infiltration"], x_inf)
    params[:, col["cd8_per_tumour_cell0"]] = _draw(P["cd8_per_tumour_cell0"], x_inf)
    params[:, col["mdsc0"]] = _draw(P["mdsc0"], _mix(z, Z[C["mdsc0"]], a["mdsc0"]))
    params[:, col["treg0"]] = _draw(P["treg0"], _mix(z, Z[C["treg0"]], a["treg0"]))

    # TMB -> antigenicity
    tmb = _lognormal(tt.tmb, _mix(z, Z[C["tmb"]], a["tmb"]))
    exome = tt.constant("antigenicity", "exome_mb")
    p_pres = tt.constant("antigenicity", "p_presented")
    n50 = tt.constant("antigenicity", "tmb_half_mut_per_mb") * exome * p_pres
    n_neo = tmb * exome * p_pres
    params[:, col["antigenicity"]] = n_neo / (n_neo + n50)

    # PD-L1: one latent, three assay read-outs
    u = _mix(z, Z[C["pdl1_latent"]], a["pdl1_latent"])
    q = ndtr(u)
    tps_c = tt.tps.quantile(q)
    cps_c = np.maximum(tt.cps.quantile(q), tps_c)
    tau = tt.constant("pdl1", "ic_assay_noise")
    u_ic = _mix(u, Z[C["pdl1_ic_assay"]], math.sqrt(1.0 - tau * tau))
    ic_cut = np.cumsum(tt.ic_shares)[:-1]
    pdl1_ic = np.searchsorted(ic_cut, ndtr(u_ic), side="right").astype(np.int64)
    p_min = tt.constant("pdl1", "p_min")
    params[:, col["pdl1_tumour0"]] = p_min + (1.0 - p_min) * tps_c / 100.0

    # Demographics and body size
    cov = tt.covariates
    male = ndtr(Z[C["sex"]]) < float(cov["male_share"]["value"])
    hc = cov["height_cm"]
    zh = Z[C["height"]]
    height = np.where(male, hc["male"]["mean"] + hc["male"]["sd"] * zh,
                      hc["female"]["mean"] + hc["female"]["sd"] * zh)
    height = np.clip(height, *hc["clip"])
    wc = cov["weight_kg"]
    zw = _mix(zh, Z[C["weight"]], float(wc["rho_height"]))
    weight = np.where(male, wc["male"]["median"] * np.exp(wc["male"]["sigma"] * zw),
                      wc["female"]["median"] * np.exp(wc["female"]["sigma"] * zw))
    weight = np.clip(weight, *wc["clip"])
    ac = cov["age"]
    age = np.clip(ac["mean"] + ac["sd"] * Z[C["age"]], *ac.get("clip", (18, 90)))
    cc = cov["creatinine_mg_dL"]
    zc = Z[C["creatinine"]]
    scr = np.where(male, cc["male"]["median"] * np.exp(cc["male"]["sigma"] * zc),
                   cc["female"]["median"] * np.exp(cc["female"]["sigma"] * zc))
    scr = np.clip(scr, *cc["clip"])
    g = cov["gfr"]
    gfr = np.clip(cockcroft_gault_crcl(age, weight, scr, ~male), g["floor"], g["cap"])
    egfr = ckd_epi_2021_egfr(age, scr, ~male)

    ecog_cut = np.cumsum([float(s) for s in cov["ecog_shares"]["value"]])[:-1]
    ecog = np.searchsorted(ecog_cut, ndtr(Z[C["ecog"]]), side="right").astype(np.int64)
    al = cov["albumin_g_dL"]
    albumin = np.clip(al["mean"] + al["sd"] * Z[C["albumin"]] + al["ecog_shift"] * ecog,
                      *al.get("clip", (1.5, 5.5)))

    if tt.metastatic:
        ms = cov["met_sites"]
        w_sites = _mix(Z[C["sld0_mm"]], Z[C["met_sites"]], float(ms["rho_sld"]))
        cap = int(ms.get("cap", 8))
        cdf = _poisson_cdf(float(ms["mean_extra"]), cap - 1)
        n_sites = 1 + np.minimum(np.searchsorted(cdf, ndtr(w_sites), side="right"), cap - 1)
        lv = cov["liver_mets"]
        prev = float(lv["value"])
        w_liver = _mix(w_sites, Z[C["liver_mets"]], float(lv.get("rho_sites", 0.4)))
        liver = w_liver > ndtri(1.0 - prev) if 0.0 < prev < 1.0 else np.full(n, prev >= 1.0)
    else:
        n_sites = np.zeros(n, dtype=np.int64)
        liver = np.zeros(n, dtype=bool)

    covariates = pd.DataFrame({
        "patient_index": index,
        "weight_kg": weight,
        "height_cm": height,
        "bsa_m2": mosteller_bsa(height, weight),
        "creatinine_mg_dL": scr,
        "gfr_mL_min": gfr,
        "egfr_ckd_epi_mL_min_1_73m2": egfr,
        "age": age,
        "sex": pd.Categorical.from_codes(male.astype(np.int8), categories=["F", "M"]),
        "ecog": ecog,
        "pdl1_latent": u,
        "pdl1_tps": np.floor(tps_c),
        "pdl1_cps": np.minimum(np.floor(cps_c), 100.0),
        "pdl1_ic": pdl1_ic,
        "tmb_mut_per_mb": tmb,
        "inflamed_z": z,
        "n_met_sites": n_sites.astype(np.int64),
        "liver_mets": liver,
        "albumin_g_dL": albumin,
    }, copy=False)
    pk_eta = np.ascontiguousarray(Z[PK_COLUMN0:PK_COLUMN0 + PK_SLOTS * PK_EFFECTS].T).reshape(n, PK_SLOTS, PK_EFFECTS)
    return VirtualPatients(tt.name, np.asarray(index, dtype=np.int64), params, covariates, pk_eta, seed)


# ----------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------
def _check_int(value: Any, field_name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ChemoioInputError(field_name, f"expected an integer, got {value!r}")
    if value < minimum:
        raise ChemoioInputError(field_name, f"must be >= {minimum}, got {value}")
    return int(value)


def _check_selection(selection: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    if not isinstance(selection, dict):
        raise ChemoioInputError("selection", "expected a mapping such as {'pdl1_tps_min': 50}")
    rules = []
    for key, value in selection.items():
        if key not in SELECTION_KEYS:
            raise ChemoioInputError(
                f"selection.{key}", f"unknown selection key {key!r}",
                suggest(str(key), SELECTION_KEYS) or "known: " + ", ".join(SELECTION_KEYS),
            )
        column, op = SELECTION_KEYS[key]
        if key == "liver_mets":
            if not isinstance(value, (bool, np.bool_)):
                raise ChemoioInputError(f"selection.{key}", f"expected true or false, got {value!r}")
            value = bool(value)
        elif key == "sex":
            if value not in ("M", "F"):
                raise ChemoioInputError(f"selection.{key}", f"expected 'M' or 'F', got {value!r}")
        else:
            if isinstance(value, bool):
                raise ChemoioInputError(f"selection.{key}", f"expected a number, got {value!r}")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ChemoioInputError(f"selection.{key}", f"expected a number, got {value!r}") from None
            if not math.isfinite(value):
                raise ChemoioInputError(f"selection.{key}", f"expected a finite number, got {value!r}")
        rules.append((key, column, op, value))
    for stem in ("pdl1_tps", "pdl1_cps", "pdl1_ic", "tmb", "age"):
        lo, hi = selection.get(f"{stem}_min"), selection.get(f"{stem}_max")
        if lo is not None and hi is not None and float(lo) > float(hi):
            raise ChemoioInputError(f"selection.{stem}_min",
                                    f"{stem}_min ({lo}) is above {stem}_max ({hi}): nobody can pass")
    return rules


def _passes(rules, cov: pd.DataFrame) -> np.ndarray:
    ok = np.ones(len(cov), dtype=bool)
    for _key, column, op, value in rules:
        x = cov[column].to_numpy()
        if op == ">=":
            ok &= x >= value
        elif op == "<=":
            ok &= x <= value
        else:
            ok &= x == value
    return ok


def _sample_range(tt: TumorType, seed: int, start: int, n: int) -> VirtualPatients:
    return _transform(tt, standard_normals(seed, start, n), np.arange(start, start + n, dtype=np.int64), seed)


def sample_patients(
    tumor: str | TumorType,
    n: int,
    seed: int,
    *,
    start_index: int = 0,
    selection: dict[str, Any] | None = None,
) -> VirtualPatients:
    """Draw ``n`` virtual patients of a tumour type.

    Without ``selection`` the patients are global indices ``start_index .. start_index+n-1``.
    With ``selection`` (biomarker-selected trials, e.g. ``{"pdl1_tps_min": 50}``) candidates
    are drawn in increasing global index from ``start_index`` and the first ``n`` that pass
    every rule are kept; ``index`` holds their original global indices. Bounds are inclusive.
    """
    tt = get_tumor_type(tumor)
    n = _check_int(n, "n")
    seed = _check_int(seed, "seed")
    start_index = _check_int(start_index, "start_index")
    if not selection:
        return _sample_range(tt, seed, start_index, n)

    rules = _check_selection(selection)
    parts: list[VirtualPatients] = []
    kept = 0
    seen = 0
    cursor = start_index
    chunk = max(4 * BLOCK_SIZE, n)
    max_candidates = max(MAX_CANDIDATES_FLOOR, 1000 * n)
    while kept < n:
        vp = _sample_range(tt, seed, cursor, chunk)
        ok = np.flatnonzero(_passes(rules, vp.covariates))
        need = n - kept
        if len(ok):
            parts.append(vp.take(ok[:need]))
            kept += min(len(ok), need)
        cursor += chunk
        seen += chunk
        if kept >= n:
            break
        if kept == 0 and seen >= NOTHING_PASSES_AFTER:
            raise ChemoioInputError(
                "selection",
                f"no {tt.name} patient passes {selection} among {seen} candidates",
                "the selection excludes (nearly) everyone; check the thresholds against the "
                "tumour type's distributions (get_tumor_type(...).table())",
            )
        if seen >= max_candidates:
            raise ChemoioInputError(
                "selection",
                f"only {kept} of {n} {tt.name} patients pass {selection} among {seen} candidates",
                "the selected subgroup is too rare to sample; loosen the selection or ask for fewer patients",
            )
        rate = kept / seen
        chunk = int(min(max(math.ceil(1.2 * (n - kept) / max(rate, 1e-3)), 4 * BLOCK_SIZE), 1_000_000))
    out = concat_patients(parts) if parts else _sample_range(tt, seed, start_index, 0)
    out.selection = dict(selection)
    return out
