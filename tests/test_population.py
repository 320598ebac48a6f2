"""Tests of the virtual population: shipped tumour types, marginals, correlations, assay
mappings, determinism, biomarker selection, covariate formulas and speed."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import spearmanr

from chemoio.errors import ChemoioInputError
from chemoio.model.equations import PATIENT_ORDER
from chemoio.population import (
    BLOCK_SIZE,
    VirtualPatients,
    ckd_epi_2021_egfr,
    cockcroft_gault_crcl,
    concat_patients,
    get_tumor_type,
    list_tumor_types,
    load_tumor_file,
    mosteller_bsa,
    sample_patients,
)

TYPES = [
    "nsclc_nonsquamous", "nsclc_squamous", "urothelial", "urothelial_2l", "tnbc", "tnbc_early",
    "hnscc", "esophageal", "melanoma", "melanoma_2l",
]
COL = {name: i for i, name in enumerate(PATIENT_ORDER)}
N_BIG = 20_000


@pytest.fixture(scope="module")
def big() -> dict[str, VirtualPatients]:
    return {t: sample_patients(t, N_BIG, 11) for t in TYPES}


# ----------------------------------------------------------------------------------------
# Shipped files
# ----------------------------------------------------------------------------------------
def test_all_required_tumour_types_ship():
    assert set(TYPES) <= set(list_tumor_types())


@pytest.mark.parametrize("tumor", TYPES)
def test_every_distribution_is_sourced(tumor):
    tt = get_tumor_type(tumor)
    table = tt.table()
    assert set(PATIENT_ORDER) <= set(table["name"])
    for src in table["source"]:
        assert isinstance(src, str) and src.strip()
        low = src.lower()
        if low.startswith(("assumed", "calibrated")):
            assert len(src) > len("calibrated: ") + 10, f"{tumor}: '{src}' gives no reason"
    for name, d in tt.parameters.items():
        assert d.unit, f"{tumor}.{name} has no unit"


def test_unknown_tumour_names_the_field_and_suggests():
    with pytest.raises(ChemoioInputError) as e:
        get_tumor_type("nsclc_nonsquamos")
    assert e.value.field == "tumor"
    assert "nsclc_nonsquamous" in str(e.value)
    with pytest.raises(ChemoioInputError) as e:
        sample_patients("melanomaa", 10, 1)
    assert e.value.field == "tumor" and "melanoma" in str(e.value)
    assert get_tumor_type("NSCLC-Nonsquamous").name == "nsclc_nonsquamous"


# ----------------------------------------------------------------------------------------
# Basic properties of every type
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tumor", TYPES)
def test_samples_are_positive_finite_and_shaped(tumor, big):
    vp = big[tumor]
    n = N_BIG
    assert vp.tumor == tumor
    assert vp.params.shape == (n, len(PATIENT_ORDER)) and vp.params.dtype == np.float64
    assert vp.index.dtype == np.int64 and np.array_equal(vp.index, np.arange(n))
    assert vp.pk_eta.shape == (n, 8, 2)
    assert np.isfinite(vp.params).all() and (vp.params > 0).all()
    assert (vp.param("antigenicity") < 1).all() and (vp.param("pdl1_tumour0") <= 1).all()
    c = vp.covariates
    assert len(c) == n
    for column in ("weight_kg", "bsa_m2", "gfr_mL_min", "age", "sex", "ecog", "pdl1_tps",
                   "pdl1_cps", "pdl1_ic", "tmb_mut_per_mb", "inflamed_z", "n_met_sites",
                   "liver_mets", "albumin_g_dL"):
        assert column in c.columns
    num = c.drop(columns=["sex"]).to_numpy(dtype=float)
    assert np.isfinite(num).all()
    assert c["pdl1_tps"].between(0, 100).all() and c["pdl1_cps"].between(0, 100).all()
    assert set(np.unique(c["pdl1_ic"])) <= {0, 1, 2, 3}
    assert c["bsa_m2"].between(1.1, 3.0).all()
    assert c["gfr_mL_min"].between(10, 150).all()
    assert c["age"].between(18, 90).all()
    assert abs(vp.pk_eta.mean()) < 0.01 and abs(vp.pk_eta.std() - 1) < 0.01


@pytest.mark.parametrize("tumor", TYPES)
def test_marginal_medians_match_the_yaml(tumor, big):
    tt = get_tumor_type(tumor)
    vp = big[tumor]
    for name, d in tt.parameters.items():
        x = vp.param(name)
        if d.kind == "lognormal":
            target = d.params["median"]
            se = 1.2533 * d.params["sigma"] / math.sqrt(N_BIG)
        else:
            target = math.sqrt(d.params["low"] * d.params["high"])
            se = 1.2533 * math.log(d.params["high"] / d.params["low"]) / math.sqrt(12 * N_BIG)
        assert abs(math.log(np.median(x) / target)) < 5 * se + 1e-12, name
    tmb = vp.covariates["tmb_mut_per_mb"]
    assert abs(math.log(tmb.median() / tt.tmb.params["median"])) < 5 * 1.2533 * tt.tmb.params["sigma"] / math.sqrt(N_BIG)


@pytest.mark.parametrize("tumor", TYPES)
def test_pdl1_assay_shares_match_the_yaml(tumor, big):
    tt = get_tumor_type(tumor)
    c = big[tumor].covariates
    for sm, column in ((tt.tps, "pdl1_tps"), (tt.cps, "pdl1_cps")):
        for cut, share in sm.knots:
            got = float((c[column] < cut).mean())
            assert abs(got - share) < 0.03, f"{column} < {cut}: {got:.3f} vs {share:.3f}"
    for k, share in enumerate(tt.ic_shares):
        got = float((c["pdl1_ic"] == k).mean())
        assert abs(got - share) < 0.025, f"IC{k}: {got:.3f} vs {share:.3f}"


def test_keynote189_tps_categories(big):
    c = big["nsclc_nonsquamous"].covariates
    tps = c["pdl1_tps"]
    shares = [(tps < 1).mean(), ((tps >= 1) & (tps <= 49)).mean(), (tps >= 50).mean()]
    # KEYNOTE-189 over the evaluable patients: 32.9 %, 32.2 %, 34.9 %
    for got, want in zip(shares, (0.329, 0.322, 0.349)):
        assert abs(got - want) < 0.03


def test_imvigor211_ic23_share(big):
    c = big["urothelial_2l"].covariates
    assert abs((c["pdl1_ic"] >= 2).mean() - 234 / 931) < 0.02


@pytest.mark.parametrize("tumor", TYPES)
def test_categorical_covariate_shares(tumor, big):
    tt = get_tumor_type(tumor)
    c = big[tumor].covariates
    assert abs((c["sex"] == "M").mean() - tt.covariates["male_share"]["value"]) < 0.015
    for k, share in enumerate(tt.covariates["ecog_shares"]["value"]):
        assert abs((c["ecog"] == k).mean() - share) < 0.015
    if tt.metastatic:
        assert abs(c["liver_mets"].mean() - tt.covariates["liver_mets"]["value"]) < 0.015
        assert (c["n_met_sites"] >= 1).all()
        assert abs(c["n_met_sites"].mean() - 1 - tt.covariates["met_sites"]["mean_extra"]) < 0.05
        assert (c.loc[c["liver_mets"], "n_met_sites"].mean() > c.loc[~c["liver_mets"], "n_met_sites"].mean())
    else:
        assert (c["n_met_sites"] == 0).all() and not c["liver_mets"].any()


# ----------------------------------------------------------------------------------------
# Correlations and assay consistency
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tumor", TYPES)
def test_inflamed_factor_correlations(tumor, big):
    vp = big[tumor]
    c = vp.covariates
    psi = vp.param("infiltration")
    assert spearmanr(c["pdl1_latent"], psi)[0] > 0.2
    assert spearmanr(c["pdl1_latent"], psi)[0] == pytest.approx(0.48, abs=0.05)
    assert spearmanr(psi, vp.param("mdsc0"))[0] == pytest.approx(-0.29, abs=0.05)
    assert spearmanr(psi, vp.param("treg0"))[0] < -0.2
    assert spearmanr(c["inflamed_z"], c["tmb_mut_per_mb"])[0] == pytest.approx(0.19, abs=0.05)
    assert abs(spearmanr(psi, vp.param("growth_per_day"))[0]) < 0.05
    # the measured CD8 cells per tumour cell take psi's normal score: same order, same correlations
    assert spearmanr(psi, vp.param("cd8_per_tumour_cell0"))[0] == pytest.approx(1.0)


@pytest.mark.parametrize("tumor", TYPES)
def test_tps_cps_ic_consistent_for_each_patient(tumor, big):
    c = big[tumor].covariates
    assert (c["pdl1_cps"] >= c["pdl1_tps"]).all()
    # IC read-out is monotone in the latent on average (assay noise allowed)
    means = [c.loc[c["pdl1_ic"] == k, "pdl1_latent"].mean() for k in range(4)]
    assert all(b > a for a, b in zip(means, means[1:])), means
    assert spearmanr(c["pdl1_latent"], c["pdl1_ic"])[0] > 0.7
    # TPS and CPS are the same latent read through two monotone maps
    order = np.argsort(c["pdl1_latent"].to_numpy())
    assert (np.diff(c["pdl1_tps"].to_numpy()[order]) >= 0).all()
    assert (np.diff(c["pdl1_cps"].to_numpy()[order]) >= 0).all()


@pytest.mark.parametrize("tumor", TYPES)
def test_cps_map_lies_above_tps_map(tumor):
    """The YAML knots themselves keep CPS >= TPS, so the CPS marginal is the published one."""
    tt = get_tumor_type(tumor)
    q = np.linspace(0, 1, 2001)
    assert (tt.cps.quantile(q) >= tt.tps.quantile(q) - 1e-9).all()


@pytest.mark.parametrize("tumor", TYPES)
def test_derived_parameters_follow_their_formulas(tumor, big):
    tt = get_tumor_type(tumor)
    vp = big[tumor]
    tmb = vp.covariates["tmb_mut_per_mb"].to_numpy()
    half = tt.constant("antigenicity", "tmb_half_mut_per_mb")
    np.testing.assert_allclose(vp.param("antigenicity"), tmb / (tmb + half), rtol=1e-12)
    p_min = tt.constant("pdl1", "p_min")
    low = p_min + (1 - p_min) * vp.covariates["pdl1_tps"].to_numpy() / 100
    p0 = vp.param("pdl1_tumour0")
    assert (p0 >= low - 1e-12).all() and (p0 < low + (1 - p_min) / 100 + 1e-12).all()
    assert p0.min() >= p_min


def test_tmb_ordering_across_types(big):
    med = {t: big[t].covariates["tmb_mut_per_mb"].median() for t in TYPES}
    assert med["melanoma"] > med["nsclc_squamous"] > med["nsclc_nonsquamous"] > med["tnbc"]
    assert med["urothelial"] > med["hnscc"] > med["tnbc"]
    assert 10 <= med["melanoma"] <= 15 and 1.5 <= med["tnbc"] <= 2.1
    anti = {t: np.median(big[t].param("antigenicity")) for t in TYPES}
    assert anti["melanoma"] > anti["nsclc_nonsquamous"] > anti["tnbc"]


def test_setting_specific_types(big):
    early = big["tnbc_early"]
    sld = early.param("sld0_mm")
    assert 0.8 < ((sld >= 20) & (sld <= 50)).mean() < 0.95
    assert np.median(sld) < 0.6 * np.median(big["tnbc"].param("sld0_mm"))
    assert np.median(early.param("chemo_sensitivity")) > np.median(big["tnbc"].param("chemo_sensitivity"))
    assert get_tumor_type("tnbc_early").shared_overrides == {"n_target_lesions": 1.0}
    assert (early.covariates["sex"] == "F").all()
    u1, u2 = big["urothelial"], big["urothelial_2l"]
    assert np.median(u2.param("growth_per_day")) > np.median(u1.param("growth_per_day"))
    assert np.median(u2.param("resistant_fraction0")) > np.median(u1.param("resistant_fraction0"))
    assert u2.covariates["liver_mets"].mean() > u1.covariates["liver_mets"].mean()


# ----------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------
def _same(a: VirtualPatients, b: VirtualPatients) -> None:
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.pk_eta, b.pk_eta)
    assert a.covariates.reset_index(drop=True).equals(b.covariates.reset_index(drop=True))


@pytest.mark.parametrize("tumor", ["nsclc_nonsquamous", "tnbc_early", "melanoma"])
def test_rows_depend_only_on_seed_and_global_index(tumor):
    whole = sample_patients(tumor, 1000, 7)
    part = sample_patients(tumor, 100, 7, start_index=300)
    _same(whole.take(np.arange(300, 400)), part)
    np.testing.assert_array_equal(part.index, np.arange(300, 400))


def test_chunking_never_changes_a_patient():
    n = 3 * BLOCK_SIZE + 57
    whole = sample_patients("urothelial", n, 3)
    cuts = [0, 1, 1000, 1023, 1024, 1025, 2500, 3000, n]
    parts = [sample_patients("urothelial", b - a, 3, start_index=a) for a, b in zip(cuts, cuts[1:])]
    _same(whole, concat_patients(parts))
    far = sample_patients("urothelial", 5, 3, start_index=10**9)
    assert far.index[0] == 10**9 and np.isfinite(far.params).all()


def test_seeds_give_different_patients():
    a = sample_patients("hnscc", 200, 1)
    b = sample_patients("hnscc", 200, 2)
    assert not np.allclose(a.params, b.params)
    _same(a, sample_patients("hnscc", 200, 1))


# ----------------------------------------------------------------------------------------
# Selection
# ----------------------------------------------------------------------------------------
def test_selection_keeps_original_indices():
    sel = sample_patients("nsclc_nonsquamous", 500, 7, selection={"pdl1_tps_min": 50})
    assert len(sel) == 500 and (sel.covariates["pdl1_tps"] >= 50).all()
    assert (np.diff(sel.index) > 0).all() and sel.index[-1] > 500
    full = sample_patients("nsclc_nonsquamous", int(sel.index[-1]) + 1, 7)
    _same(sel, full.take(sel.index))
    # exactly the passing patients of the unselected range, in order
    passing = np.flatnonzero(full.covariates["pdl1_tps"].to_numpy() >= 50)
    np.testing.assert_array_equal(sel.index, passing[:500])
    # a shorter request returns a prefix
    _same(sample_patients("nsclc_nonsquamous", 120, 7, selection={"pdl1_tps_min": 50}), sel.take(slice(0, 120)))
    assert sel.selection == {"pdl1_tps_min": 50}


def test_selection_ranges_and_other_keys():
    mid = sample_patients("nsclc_squamous", 300, 5, selection={"pdl1_tps_min": 1, "pdl1_tps_max": 49})
    assert mid.covariates["pdl1_tps"].between(1, 49).all()
    ic = sample_patients("urothelial_2l", 300, 5, selection={"pdl1_ic_min": 2, "ecog_max": 0})
    assert (ic.covariates["pdl1_ic"] >= 2).all() and (ic.covariates["ecog"] == 0).all()
    cps = sample_patients("hnscc", 200, 5, selection={"pdl1_cps_min": 20, "tmb_min": 5, "liver_mets": False})
    c = cps.covariates
    assert (c["pdl1_cps"] >= 20).all() and (c["tmb_mut_per_mb"] >= 5).all() and not c["liver_mets"].any()
    assert len(sample_patients("melanoma", 0, 1, selection={"pdl1_tps_min": 5})) == 0


def test_selection_errors_name_the_key():
    with pytest.raises(ChemoioInputError) as e:
        sample_patients("nsclc_nonsquamous", 10, 1, selection={"pdl1_tps_mn": 50})
    assert e.value.field == "selection.pdl1_tps_mn" and "pdl1_tps_min" in str(e.value)
    with pytest.raises(ChemoioInputError) as e:
        sample_patients("nsclc_nonsquamous", 10, 1, selection={"pdl1_tps_min": "high"})
    assert e.value.field == "selection.pdl1_tps_min"
    with pytest.raises(ChemoioInputError) as e:
        sample_patients("nsclc_nonsquamous", 10, 1, selection={"pdl1_tps_min": 60, "pdl1_tps_max": 40})
    assert "pdl1_tps" in e.value.field
    with pytest.raises(ChemoioInputError) as e:
        sample_patients("tnbc", 10, 1, selection={"tmb_min": 1e6})
    assert e.value.field == "selection" and "no tnbc patient passes" in str(e.value)


def test_bad_counts_and_seeds():
    for kwargs, field in (({"n": -1, "seed": 1}, "n"), ({"n": 5, "seed": -2}, "seed"),
                          ({"n": 2.5, "seed": 1}, "n")):
        with pytest.raises(ChemoioInputError) as e:
            sample_patients("tnbc", **kwargs)
        assert e.value.field == field
    with pytest.raises(ChemoioInputError) as e:
        sample_patients("tnbc", 5, 1, start_index=-3)
    assert e.value.field == "start_index"


# ----------------------------------------------------------------------------------------
# Covariate formulas on hand values
# ----------------------------------------------------------------------------------------
def test_mosteller_bsa_hand_values():
    assert mosteller_bsa(160, 90) == pytest.approx(2.0)
    assert mosteller_bsa(180, 81) == pytest.approx(math.sqrt(180 * 81 / 3600))
    assert mosteller_bsa(170, 70) == pytest.approx(1.8181, abs=1e-4)


def test_gfr_hand_values():
    # Cockcroft-Gault: (140 - 60) * 72 / (72 * 1.0) = 80 mL/min; x 0.85 for a woman
    assert cockcroft_gault_crcl(60, 72, 1.0, False) == pytest.approx(80.0)
    assert cockcroft_gault_crcl(60, 72, 1.0, True) == pytest.approx(68.0)
    assert cockcroft_gault_crcl(40, 90, 1.25, False) == pytest.approx(100.0)
    # CKD-EPI 2021: woman 50 y, Scr 0.7 -> 142 * 0.9938**50 * 1.012
    assert ckd_epi_2021_egfr(50, 0.7, True) == pytest.approx(142 * 0.9938**50 * 1.012)
    assert ckd_epi_2021_egfr(50, 0.7, True) == pytest.approx(105.3, abs=0.1)
    # man 60 y, Scr 1.0 -> 142 * (1/0.9)**-1.2 * 0.9938**60
    assert ckd_epi_2021_egfr(60, 1.0, False) == pytest.approx(86.2, abs=0.1)
    # low creatinine branch: man 40 y, Scr 0.6 -> exponent -0.302
    want = 142 * (0.6 / 0.9) ** -0.302 * 0.9938**40
    assert ckd_epi_2021_egfr(40, 0.6, False) == pytest.approx(want)


def test_sampled_covariates_use_the_formulas(big):
    c = big["nsclc_nonsquamous"].covariates
    np.testing.assert_allclose(c["bsa_m2"], mosteller_bsa(c["height_cm"], c["weight_kg"]))
    female = (c["sex"] == "F").to_numpy()
    cg = np.clip(cockcroft_gault_crcl(c["age"], c["weight_kg"], c["creatinine_mg_dL"], female), 10, 150)
    np.testing.assert_allclose(c["gfr_mL_min"], cg)
    assert spearmanr(c["weight_kg"], c["bsa_m2"])[0] > 0.85
    assert c.loc[~female, "weight_kg"].median() > c.loc[female, "weight_kg"].median()
    assert c.groupby("ecog")["albumin_g_dL"].mean().is_monotonic_decreasing


# ----------------------------------------------------------------------------------------
# API details
# ----------------------------------------------------------------------------------------
def test_take_and_frame():
    vp = sample_patients("esophageal", 50, 9)
    mask = vp.covariates["pdl1_cps"].to_numpy() >= 10
    sub = vp.take(mask)
    assert len(sub) == mask.sum() and (sub.covariates["pdl1_cps"] >= 10).all()
    np.testing.assert_array_equal(sub.index, vp.index[mask])
    np.testing.assert_array_equal(vp.take(slice(10, 20)).index, np.arange(10, 20))
    frame = vp.to_frame()
    assert list(frame.columns[: len(PATIENT_ORDER)]) == list(PATIENT_ORDER) and len(frame) == 50
    with pytest.raises(ChemoioInputError):
        vp.param("infiltraton")


def test_with_parameter_changes_only_that_distribution():
    tt = get_tumor_type("nsclc_nonsquamous")
    fast = tt.with_parameter("growth_per_day", median=0.014)
    a = sample_patients(tt, 500, 4)
    b = sample_patients(fast, 500, 4)
    np.testing.assert_allclose(b.param("growth_per_day"), np.clip(2 * a.param("growth_per_day"), None, 0.08))
    other = [i for i, n in enumerate(PATIENT_ORDER) if n != "growth_per_day"]
    np.testing.assert_array_equal(a.params[:, other], b.params[:, other])
    with pytest.raises(ChemoioInputError) as e:
        tt.with_parameter("growth_per_day", mean=1.0)
    assert e.value.field == "growth_per_day.mean"
    with pytest.raises(ChemoioInputError):
        tt.with_parameter("growth", median=0.01)


def test_user_tumour_file_round_trip(tmp_path: Path):
    from importlib import resources

    text = resources.files("chemoio.population").joinpath("data/melanoma.yaml").read_text()
    raw = yaml.safe_load(text)
    raw["name"] = "melanoma_custom"
    raw["tmb"]["median"] = 20.0
    path = tmp_path / "melanoma_custom.yaml"
    path.write_text(yaml.safe_dump(raw))
    tt = load_tumor_file(path)
    vp = sample_patients(tt, 4000, 2)
    assert vp.tumor == "melanoma_custom"
    assert abs(math.log(vp.covariates["tmb_mut_per_mb"].median() / 20.0)) < 0.08
    del raw["parameters"]["kill_per_day"]["source"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ChemoioInputError) as e:
        load_tumor_file(path)
    assert "kill_per_day" in e.value.field
    raw["parameters"]["kill_per_day"]["source"] = "assumed: test"
    raw["pdl1"]["tps"]["knots"] = [[50, 0.6], [1, 0.3]]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ChemoioInputError) as e:
        load_tumor_file(path)
    assert e.value.field.endswith("pdl1.tps.knots")


def test_speed_1e5_patients():
    sample_patients("nsclc_nonsquamous", 1000, 0)  # warm caches
    t0 = time.perf_counter()
    vp = sample_patients("nsclc_nonsquamous", 100_000, 0)
    assert time.perf_counter() - t0 < 2.0
    assert len(vp) == 100_000


def test_score_map_share_below_inverts_quantile():
    tt = get_tumor_type("hnscc")
    for cut, share in tt.cps.knots:
        assert tt.cps.share_below(cut) == pytest.approx(share)
    q = np.array([0.05, 0.3, 0.5, 0.7, 0.95])
    back = [tt.cps.share_below(v) for v in tt.cps.quantile(q)]
    np.testing.assert_allclose(back, q, atol=1e-9)


def test_spread_exponent_scales_the_log_sd_around_the_median_for_the_same_patients():
    """``spread.<name>`` = k keeps each patient's z-score and the median and multiplies the
    log-SD by k; the other patient columns are untouched; a bad key or value names the field."""
    from chemoio.model.parameters import index_of
    from chemoio.population import parameter_matrix

    vp = sample_patients("urothelial", 4000, 5)
    base = parameter_matrix(vp.params, "urothelial", {})
    half = parameter_matrix(vp.params, "urothelial", {"spread.growth_per_day": 0.5,
                                                     "spread.chemo_sensitivity": 0.25})
    g, s = index_of("growth_per_day"), index_of("chemo_sensitivity")
    med_g = get_tumor_type("urothelial").parameters["growth_per_day"].params["median"]
    np.testing.assert_allclose(np.log(half[:, g] / med_g), 0.5 * np.log(base[:, g] / med_g), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.log(half[:, s]), 0.25 * np.log(base[:, s]), rtol=1e-12, atol=1e-15)
    assert np.std(np.log(half[:, s])) == pytest.approx(0.25 * np.std(np.log(base[:, s])))
    others = [j for j in range(base.shape[1]) if j not in (g, s)]
    np.testing.assert_array_equal(half[:, others], base[:, others])
    # the spread applies before the growth scale: the median moves by the scale alone
    both = parameter_matrix(vp.params, "urothelial", {"spread.growth_per_day": 0.5, "growth_scale.urothelial": 2.0})
    np.testing.assert_allclose(both[:, g], 2.0 * half[:, g])
    # a scaled growth rate stays inside the distribution's clip
    lo, hi = get_tumor_type("urothelial").parameters["growth_per_day"].clip
    fast = parameter_matrix(vp.params, "urothelial", {"growth_scale.urothelial": 5.0})
    assert fast[:, g].max() == hi and (fast[:, g] == hi).any()
    np.testing.assert_allclose(fast[:, g], np.minimum(5.0 * base[:, g], hi))
    for bad in ({"spread.kill_per_day": 0.5}, {"spread.growth_per_day": -1.0},
                {"spread.growth_per_day": float("nan")}):
        with pytest.raises(ChemoioInputError, match="parameters.spread"):
            parameter_matrix(vp.params, "urothelial", bad)


def test_chemo_sensitivity_scale_multiplies_one_tumour_types_sensitivities():
    """``chemo_sensitivity_scale.<tumor>`` moves that tumour type's chemo sensitivities (after
    the spread exponent), leaves other columns and other tumour types alone, and a bad value
    names the field."""
    from chemoio.model.parameters import index_of
    from chemoio.population import parameter_matrix

    vp = sample_patients("urothelial", 2000, 5)
    s = index_of("chemo_sensitivity")
    base = parameter_matrix(vp.params, "urothelial", {"spread.chemo_sensitivity": 0.5})
    scaled = parameter_matrix(vp.params, "urothelial", {"spread.chemo_sensitivity": 0.5,
                                                       "chemo_sensitivity_scale.urothelial": 0.4})
    np.testing.assert_allclose(scaled[:, s], 0.4 * base[:, s])
    others = [j for j in range(base.shape[1]) if j != s]
    np.testing.assert_array_equal(scaled[:, others], base[:, others])
    other_type = parameter_matrix(vp.params, "urothelial", {"chemo_sensitivity_scale.nsclc_nonsquamous": 0.4})
    np.testing.assert_array_equal(other_type, parameter_matrix(vp.params, "urothelial", {}))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ChemoioInputError, match="parameters.chemo_sensitivity_scale.urothelial"):
            parameter_matrix(vp.params, "urothelial", {"chemo_sensitivity_scale.urothelial": bad})
        # the growth scale is checked the same way (a negative one used to be clipped silently)
        with pytest.raises(ChemoioInputError, match="parameters.growth_scale.urothelial"):
            parameter_matrix(vp.params, "urothelial", {"growth_scale.urothelial": bad})


def test_kill_scale_multiplies_one_tumour_types_killing_capacity():
    """``kill_scale.<tumor>`` multiplies that tumour type's CD8 killing capacity k_CT and
    nothing else; other tumour types are untouched and a bad value names the field."""
    from chemoio.model.parameters import index_of
    from chemoio.population import parameter_matrix

    vp = sample_patients("esophageal", 500, 3)
    k = index_of("kill_per_day")
    base = parameter_matrix(vp.params, "esophageal", {})
    scaled = parameter_matrix(vp.params, "esophageal", {"kill_scale.esophageal": 0.3})
    np.testing.assert_allclose(scaled[:, k], 0.3 * base[:, k])
    others = [j for j in range(base.shape[1]) if j != k]
    np.testing.assert_array_equal(scaled[:, others], base[:, others])
    np.testing.assert_array_equal(parameter_matrix(vp.params, "esophageal", {"kill_scale.hnscc": 0.3}), base)
    for bad in (0.0, -2.0, float("inf"), "x"):
        with pytest.raises(ChemoioInputError, match="parameters.kill_scale.esophageal"):
            parameter_matrix(vp.params, "esophageal", {"kill_scale.esophageal": bad})


def test_a_lower_kill_scale_weakens_the_checkpoint_inhibitor():
    """The kill scale moves what T cells do: at a third of k_CT fewer non-squamous NSCLC
    patients shrink by 30 % on pembrolizumab alone (the same 200 patients, 18 weeks; 57 % and
    31 % with the step-12 set), and the combination with carboplatin-pemetrexed shrinks them
    less on average."""
    import chemoio
    from chemoio.model.parameters import shipped_parameter_set

    shipped = shipped_parameter_set()

    def best_ratio(regimen, scale):
        res = chemoio.simulate(regimen, "nsclc_nonsquamous", 200, 11, days=126, observables=("sld_mm",),
                               parameters={**shipped, "kill_scale.nsclc_nonsquamous": scale})
        sld = res["sld_mm"]
        return sld.min(axis=1) / sld[:, 0]

    pembro = {s: best_ratio("pembrolizumab 200 mg q3w x6", s) for s in (1.0, 0.3)}
    assert np.mean(pembro[0.3] <= 0.7) < 0.7 * np.mean(pembro[1.0] <= 0.7)
    combo = {s: best_ratio("keynote189_pembro_chemo_carbo", s) for s in (1.0, 0.3)}
    assert np.mean(combo[0.3]) > np.mean(combo[1.0]) + 0.05


def test_impossible_plausibility_bounds_are_refused_naming_the_field():
    """``max_proliferation_per_day`` must leave room for every patient's growth and
    spontaneous death, or the plausibility projection at diagnosis could not meet it; a
    negative ``max_tcell_tumour_ratio`` bounds nothing a tumour can hold."""
    from chemoio.population import parameter_matrix

    vp = sample_patients("urothelial", 200, 5)
    assert parameter_matrix(vp.params, "urothelial", {"max_proliferation_per_day": 0.35}).shape[0] == 200
    with pytest.raises(ChemoioInputError, match="parameters.max_proliferation_per_day"):
        parameter_matrix(vp.params, "urothelial", {"max_proliferation_per_day": 0.001})
    with pytest.raises(ChemoioInputError, match="parameters.max_tcell_tumour_ratio"):
        parameter_matrix(vp.params, "urothelial", {"max_tcell_tumour_ratio": -1.0})
