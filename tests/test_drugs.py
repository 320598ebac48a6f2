"""Tests of the drug library: shipped files, lookup, user drugs, error messages, priors."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from chemoio.drugs import (
    Drug,
    Sourced,
    add_drug_file,
    antibody_terminal_half_life_days,
    chemo_half_life_h,
    clear_user_drugs,
    drug_names,
    drug_source,
    get_drug,
    list_drugs,
    load_drug_file,
)
from chemoio.drugs.library import DATA_DIR, ENV_VAR, EXPECTED_UNITS
from chemoio.errors import ChemoioInputError

ANTIBODIES = {
    "pembrolizumab": "anti-pd-1",
    "nivolumab": "anti-pd-1",
    "cemiplimab": "anti-pd-1",
    "atezolizumab": "anti-pd-l1",
    "durvalumab": "anti-pd-l1",
    "ipilimumab": "anti-ctla-4",
    "tremelimumab": "anti-ctla-4",
}
CHEMO = [
    "carboplatin", "cisplatin", "oxaliplatin", "pemetrexed", "paclitaxel", "nab-paclitaxel",
    "docetaxel", "gemcitabine", "5-fluorouracil", "capecitabine", "etoposide", "doxorubicin",
    "epirubicin", "cyclophosphamide", "dacarbazine", "vinflunine",
]
SHIPPED_FILES = sorted(DATA_DIR.glob("*.yaml"))

# A complete, valid user drug (the same example as in docs/drugs.md).
MINIMAL_USER_DRUG = """
name: mydrug
aliases: [my-drug, md-1]
kind: chemotherapy
drug_class: example alkylator
dose_units: [mg/m2, mg]
default_infusion_h: 1.0
chemo_pk:
  cl_L_per_h: {value: 20.0, unit: L/h, source: assumed (illustration)}
  v_L: {value: 40.0, unit: L, source: assumed (illustration)}
  omega_cl: {value: 0.3, unit: "1", source: assumed (illustration)}
  cl_scales_with: bsa
  mw_g_per_mol: {value: 300.0, unit: g/mol, source: assumed (illustration)}
chemo_pd:
  reference_dose: {value: 100.0, unit: mg/m2, source: assumed (illustration)}
  log_kill_per_reference_dose: {value: 0.2, unit: "1", source: assumed (illustration)}
  k_effect_per_day: {value: 0.5, unit: 1/day, source: assumed (illustration)}
  resistant_sensitivity: {value: 0.05, unit: "1", source: assumed (illustration)}
immunomodulation:
  icd_fraction: {value: 0.1, unit: "1", source: assumed (illustration)}
  treg_depletion: {value: 0.1, unit: "1", source: assumed (illustration)}
  mdsc_depletion: {value: 0.1, unit: "1", source: assumed (illustration)}
  lymphotoxicity: {value: 0.3, unit: "1", source: assumed (illustration)}
  pdl1_induction: {value: 0.1, unit: "1", source: assumed (illustration)}
  mhc1_induction: {value: 0.1, unit: "1", source: assumed (illustration)}
typical_regimens: ["mydrug 100 mg/m2 q3w x4"]
"""


@pytest.fixture(autouse=True)
def _isolated_library(monkeypatch: pytest.MonkeyPatch):
    """Each test sees only the shipped library unless it adds user drugs itself."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    clear_user_drugs()
    yield
    clear_user_drugs()


def _shipped_yaml(name: str) -> dict:
    return yaml.safe_load((DATA_DIR / f"{name}.yaml").read_text())


def _write(path: Path, data: dict | str) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _sourced_fields(drug: Drug) -> list[tuple[str, Sourced]]:
    out = []
    for block in ("antibody_pk", "antibody_pd", "chemo_pk", "chemo_pd", "immunomodulation"):
        model = getattr(drug, block)
        if model is None:
            continue
        for fname in type(model).model_fields:
            value = getattr(model, fname)
            if isinstance(value, Sourced):
                out.append((f"{block}.{fname}", value))
    return out


# ------------------------------------------------------------------------- shipped data


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.stem)
def test_every_shipped_file_loads_and_is_named_after_its_file(path: Path):
    drug = load_drug_file(path)
    assert drug.name == path.stem
    assert drug.typical_regimens, "each agent lists at least one typical regimen"
    assert 1 <= len(drug.typical_regimens) <= 3


def test_all_listed_agents_are_present():
    names = set(drug_names())
    assert set(ANTIBODIES) | set(CHEMO) <= names
    for name, kind in ANTIBODIES.items():
        assert get_drug(name).kind == kind
    for name in CHEMO:
        assert get_drug(name).kind == "chemotherapy"


def test_every_sourced_field_uses_its_declared_unit():
    for drug in list_drugs():
        for path, s in _sourced_fields(drug):
            if path == "chemo_pd.reference_dose":
                continue
            assert s.unit == EXPECTED_UNITS[path], f"{drug.name}:{path}"


def test_list_drugs_groups_by_kind_then_name():
    drugs = list_drugs()
    kinds = [d.kind for d in drugs]
    order = ["anti-pd-1", "anti-pd-l1", "anti-ctla-4", "chemotherapy"]
    assert kinds == sorted(kinds, key=order.index)
    for kind in order:
        names = [d.name for d in drugs if d.kind == kind]
        assert names == sorted(names)
    assert drug_names() == sorted(drug_names())


# ------------------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Keytruda", "pembrolizumab"),
        ("  OPDIVO ", "nivolumab"),
        ("libtayo", "cemiplimab"),
        ("Tecentriq", "atezolizumab"),
        ("imfinzi", "durvalumab"),
        ("YERVOY", "ipilimumab"),
        ("imjudo", "tremelimumab"),
        ("Abraxane", "nab-paclitaxel"),
        ("nab-pac", "nab-paclitaxel"),
        ("Nab Paclitaxel", "nab-paclitaxel"),
        ("taxol", "paclitaxel"),
        ("Alimta", "pemetrexed"),
        ("gemzar", "gemcitabine"),
        ("xeloda", "capecitabine"),
        ("5fu", "5-fluorouracil"),
        ("5-FU", "5-fluorouracil"),
        ("5 FU", "5-fluorouracil"),
        ("fluorouracil", "5-fluorouracil"),
        ("adriamycin", "doxorubicin"),
        ("VP-16", "etoposide"),
        ("DTIC", "dacarbazine"),
        ("javlor", "vinflunine"),
        ("Carboplatin", "carboplatin"),
        ("carbo platin", "carboplatin"),
        ("nabpaclitaxel", "nab-paclitaxel"),
    ],
)
def test_names_and_aliases_resolve(query: str, expected: str):
    assert get_drug(query).name == expected


def test_aliases_are_unique_across_the_shipped_library():
    seen: dict[str, str] = {}
    for drug in list_drugs():
        for label in {re.sub(r"[^0-9a-z]+", "", x.lower()) for x in [drug.name, *drug.aliases]}:
            assert label not in seen, f"{label!r} used by {seen.get(label)} and {drug.name}"
            seen[label] = drug.name


def test_unknown_drug_names_the_field_and_suggests():
    with pytest.raises(ChemoioInputError) as info:
        get_drug("pembrolizumb")
    err = info.value
    assert err.field == "drug"
    assert "pembrolizumb" in err.message
    assert err.hint is not None and "pembrolizumab" in err.hint
    assert "did you mean" in str(err)


def test_empty_drug_name_is_an_input_error():
    with pytest.raises(ChemoioInputError) as info:
        get_drug("  ")
    assert info.value.field == "drug"


# ------------------------------------------------------------------------- file errors


def test_malformed_yaml_names_the_file(tmp_path: Path):
    bad = _write(tmp_path / "broken.yaml", "name: [unclosed\nkind: chemotherapy\n")
    with pytest.raises(ChemoioInputError) as info:
        load_drug_file(bad)
    assert info.value.field.startswith("broken.yaml")
    assert "YAML" in info.value.message and "line" in info.value.message


def test_non_mapping_top_level_is_rejected(tmp_path: Path):
    bad = _write(tmp_path / "list.yaml", "- pembrolizumab\n- nivolumab\n")
    with pytest.raises(ChemoioInputError) as info:
        load_drug_file(bad)
    assert info.value.field == "list.yaml"
    assert "mapping" in info.value.message


def test_wrong_unit_names_file_and_field(tmp_path: Path):
    data = _shipped_yaml("pembrolizumab")
    data["antibody_pk"]["cl_L_per_day"]["unit"] = "L/h"
    bad = _write(tmp_path / "pembro_bad.yaml", data)
    with pytest.raises(ChemoioInputError) as info:
        load_drug_file(bad)
    assert info.value.field == "pembro_bad.yaml:antibody_pk.cl_L_per_day.unit"
    assert "L/day" in info.value.message and "L/h" in info.value.message


def test_reference_dose_unit_must_be_a_dose_unit(tmp_path: Path):
    data = _shipped_yaml("gemcitabine")
    data["chemo_pd"]["reference_dose"]["unit"] = "mg/kg"
    bad = _write(tmp_path / "gem.yaml", data)
    with pytest.raises(ChemoioInputError) as info:
        load_drug_file(bad)
    assert info.value.field == "gem.yaml:chemo_pd.reference_dose.unit"


def test_schema_error_names_the_dotted_field(tmp_path: Path):
    data = _shipped_yaml("cisplatin")
    del data["chemo_pk"]["v_L"]
    bad = _write(tmp_path / "cis.yaml", data)
    with pytest.raises(ChemoioInputError) as info:
        load_drug_file(bad)
    assert info.value.field == "cis.yaml:chemo_pk.v_L"
    assert "missing" in info.value.message


def test_misspelt_key_gets_a_suggestion(tmp_path: Path):
    data = _shipped_yaml("nivolumab")
    data["antibody_pk"]["cl_L_per_dya"] = data["antibody_pk"].pop("cl_L_per_day")
    bad = _write(tmp_path / "nivo.yaml", data)
    with pytest.raises(ChemoioInputError) as info:
        load_drug_file(bad)
    err = info.value
    assert err.field == "nivo.yaml:antibody_pk.cl_L_per_dya"
    assert err.hint is not None and "cl_L_per_day" in err.hint


def test_fraction_out_of_range_is_rejected(tmp_path: Path):
    data = _shipped_yaml("oxaliplatin")
    data["immunomodulation"]["icd_fraction"]["value"] = 1.7
    bad = _write(tmp_path / "ox.yaml", data)
    with pytest.raises(ChemoioInputError) as info:
        load_drug_file(bad)
    assert info.value.field == "ox.yaml:immunomodulation.icd_fraction.value"


def test_missing_file_is_an_input_error(tmp_path: Path):
    with pytest.raises(ChemoioInputError) as info:
        load_drug_file(tmp_path / "nope.yaml")
    assert info.value.field == "nope.yaml"


# ------------------------------------------------------------------------- user drugs


def test_user_drug_from_env_path_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _write(tmp_path / "mydrug.yaml", MINIMAL_USER_DRUG)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    drug = get_drug("MyDrug")
    assert drug.name == "mydrug"
    assert get_drug("md-1") is drug
    assert "mydrug" in drug_names()
    assert drug_source("mydrug") == tmp_path / "mydrug.yaml"
    assert get_drug("pembrolizumab").kind == "anti-pd-1"  # shipped agents still there


def test_user_drug_overrides_shipped_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = _shipped_yaml("cisplatin")
    data["chemo_pd"]["log_kill_per_reference_dose"]["value"] = 0.55
    data["chemo_pd"]["log_kill_per_reference_dose"]["source"] = "calibrated (test)"
    _write(tmp_path / "cisplatin.yaml", data)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert get_drug("cddp").chemo_pd.log_kill_per_reference_dose.value == 0.55
    monkeypatch.delenv(ENV_VAR)
    assert get_drug("cisplatin").chemo_pd.log_kill_per_reference_dose.value != 0.55


def test_first_directory_in_env_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    for d, kill in ((first, 0.11), (second, 0.22)):
        text = MINIMAL_USER_DRUG.replace("value: 0.2, unit", f"value: {kill}, unit")
        _write(d / "mydrug.yaml", text)
    monkeypatch.setenv(ENV_VAR, f"{first}{__import__('os').pathsep}{second}")
    assert get_drug("mydrug").chemo_pd.log_kill_per_reference_dose.value == 0.11


def test_add_drug_file_registers_and_overrides(tmp_path: Path):
    path = _write(tmp_path / "mydrug.yaml", MINIMAL_USER_DRUG)
    with pytest.raises(ChemoioInputError):
        get_drug("mydrug")
    added = add_drug_file(path)
    assert get_drug("mydrug") == added
    clear_user_drugs()
    with pytest.raises(ChemoioInputError):
        get_drug("mydrug")


def test_add_drug_file_reports_errors_immediately(tmp_path: Path):
    bad = _write(tmp_path / "bad.yaml", MINIMAL_USER_DRUG.replace("unit: L/h", "unit: mL/min"))
    with pytest.raises(ChemoioInputError) as info:
        add_drug_file(bad)
    assert info.value.field == "bad.yaml:chemo_pk.cl_L_per_h.unit"


def test_env_path_that_is_not_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(ChemoioInputError) as info:
        get_drug("pembrolizumab")
    assert info.value.field == ENV_VAR


# ------------------------------------------------------------------------- the numbers


def test_icd_ranking_follows_the_literature():
    """anthracyclines ~ oxaliplatin > cyclophosphamide > pemetrexed, taxanes
    > gemcitabine, 5-FU, carboplatin > cisplatin, etoposide (model brief section 4.3)."""
    tiers = [
        ["doxorubicin", "epirubicin", "oxaliplatin"],
        ["cyclophosphamide"],
        ["pemetrexed", "paclitaxel", "nab-paclitaxel", "docetaxel"],
        ["gemcitabine", "5-fluorouracil", "capecitabine", "carboplatin"],
        ["cisplatin", "etoposide"],
    ]
    icd = {n: get_drug(n).immunomodulation.icd_fraction.value for tier in tiers for n in tier}
    for upper, lower in zip(tiers, tiers[1:]):
        assert min(icd[n] for n in upper) > max(icd[n] for n in lower), (upper, lower)
    # "anthracyclines ~ oxaliplatin": same tier, within 0.15
    assert abs(icd["doxorubicin"] - icd["oxaliplatin"]) <= 0.15


def test_immunomodulation_highlights():
    mdsc = {d.name: d.immunomodulation.mdsc_depletion.value for d in list_drugs() if not d.is_antibody}
    assert max(mdsc, key=mdsc.get) in {"gemcitabine", "5-fluorouracil", "capecitabine"}
    treg = {d.name: d.immunomodulation.treg_depletion.value for d in list_drugs() if not d.is_antibody}
    assert max(treg, key=treg.get) == "cyclophosphamide"
    pdl1 = {d.name: d.immunomodulation.pdl1_induction.value for d in list_drugs() if not d.is_antibody}
    assert max(pdl1, key=pdl1.get) == "pemetrexed"
    steroid = {d.name for d in list_drugs() if not d.is_antibody and d.immunomodulation.steroid_premedication}
    assert steroid == {"pemetrexed", "paclitaxel", "docetaxel"}


@pytest.mark.parametrize("name", sorted(ANTIBODIES))
def test_antibody_half_life_is_plausible(name: str):
    t_half = antibody_terminal_half_life_days(get_drug(name))
    assert 14.0 <= t_half <= 30.0


def test_antibody_class_properties():
    for name, kind in ANTIBODIES.items():
        drug = get_drug(name)
        assert 140.0 <= drug.antibody_pk.mw_kDa.value <= 150.0
        assert 0.1 <= drug.antibody_pk.cl_L_per_day.value <= 0.4
        assert 0.0 < drug.antibody_pk.omega_cl.value < 1.0
        assert drug.antibody_pd.tumour_to_plasma.value == pytest.approx(0.2)
    for name in ("pembrolizumab", "nivolumab", "cemiplimab", "atezolizumab"):
        assert get_drug(name).antibody_pd.adcc.value == 0.0
    assert get_drug("ipilimumab").antibody_pd.adcc.value == 1.0
    assert 0.0 < get_drug("tremelimumab").antibody_pd.adcc.value < 1.0
    assert get_drug("atezolizumab").antibody_pd.kd_nM.value == pytest.approx(0.4)
    assert get_drug("ipilimumab").antibody_pd.kd_nM.value == pytest.approx(18.2)


@pytest.mark.parametrize("name", CHEMO)
def test_chemo_half_life_is_positive_and_short(name: str):
    t_half = chemo_half_life_h(get_drug(name))
    assert 0.0 < t_half < 72.0


@pytest.mark.parametrize("name", CHEMO)
def test_chemo_pd_priors_are_in_range(name: str):
    pd = get_drug(name).chemo_pd
    assert 0.1 <= pd.log_kill_per_reference_dose.value <= 0.6
    assert pd.log_kill_per_reference_dose.source.startswith("assumed")
    assert 0.01 <= pd.resistant_sensitivity.value <= 0.1


def test_carboplatin_is_auc_dosed_with_calvert_clearance():
    carbo = get_drug("carboplatin")
    assert "AUC" in carbo.dose_units
    assert carbo.chemo_pk.cl_scales_with == "gfr"
    assert carbo.chemo_pk.cl_L_per_h.value == pytest.approx(7.5)  # (100 + 25) mL/min
    assert carbo.chemo_pd.reference_dose.value == pytest.approx(5.0)


def test_reference_doses_match_the_usual_single_dose_with_ici():
    expected = {
        "pemetrexed": 500, "carboplatin": 5, "gemcitabine": 1000, "nab-paclitaxel": 100,
        "paclitaxel": 200, "docetaxel": 75, "cisplatin": 75, "5-fluorouracil": 1000,
        "doxorubicin": 60, "epirubicin": 90, "cyclophosphamide": 600, "etoposide": 100,
        "oxaliplatin": 85, "dacarbazine": 1000, "vinflunine": 320, "capecitabine": 1000,
    }
    for name, dose in expected.items():
        assert get_drug(name).chemo_pd.reference_dose.value == pytest.approx(dose), name


# ------------------------------------------------------------------------- provenance

_PAPER = re.compile(r"^[A-Z][A-Za-z'\-]+ (et al\. )?\d{4}\b")


def test_every_source_is_a_paper_a_label_or_assumed():
    for drug in list_drugs():
        for path, s in _sourced_fields(drug):
            src = s.source
            ok = (
                src.startswith(("assumed", "calibrated", "label ("))
                or "PMID" in src
                or _PAPER.match(src) is not None
            )
            assert ok, f"{drug.name}:{path}: {src!r}"


def test_every_cited_pmid_has_a_full_reference():
    for drug in list_drugs():
        refs = " ".join(drug.references)
        for path, s in _sourced_fields(drug):
            for pmid in re.findall(r"PMID (\d+)", s.source):
                assert f"PMID {pmid}" in refs, f"{drug.name}:{path} cites PMID {pmid}"


def test_typical_regimens_name_their_drug():
    for drug in list_drugs():
        for regimen in drug.typical_regimens:
            assert regimen.split()[0] == drug.name, regimen


def test_shipped_files_round_trip_through_yaml(tmp_path: Path):
    """A shipped file re-serialised by a user still loads (no hidden YAML features)."""
    data = copy.deepcopy(_shipped_yaml("durvalumab"))
    path = _write(tmp_path / "durvalumab.yaml", data)
    assert load_drug_file(path) == get_drug("durvalumab")
