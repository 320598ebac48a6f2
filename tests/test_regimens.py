"""Regimens: text grammar, YAML, dose tables, NONMEM event tables, presets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from chemoio.drugs import get_drug
from chemoio.errors import ChemoioInputError
from chemoio.regimens import (
    DoseTable,
    DrugSchedule,
    Regimen,
    calvert_dose_mg,
    from_events,
    get_preset,
    list_presets,
    preset_info,
    read_events,
    resolve_regimen,
    to_events,
    write_events,
)

EXAMPLES = [
    "pembrolizumab 200 mg q3w x35; pemetrexed 500 mg/m2 q3w; carboplatin AUC5 q3w x4",
    "gemcitabine 1000 mg/m2 d1,8 q3w x6",
    "nab-paclitaxel 100 mg/m2 d1,8,15 q3w x4",
    "5-fluorouracil 1000 mg/m2 d1-4 q3w x6 over 24h",
    "doxorubicin 60 mg/m2 q3w x4 start w13",
    "ipilimumab 3 mg/kg q3w x4",
    "nivolumab 1 mg/kg q3w x4; nivolumab 3 mg/kg q2w start d64",
    "carboplatin AUC 4.5 q3w x6",
    "paclitaxel 175 mg/m2 q3w over 3h; placebo q3w x4",
    "cisplatin 80 mg/m2 q21d x6 over 2d",
    "pembrolizumab 200 mg q3w x4 over 30min start d22",
]

TYPICAL = dict(weight_kg=75.0, bsa_m2=1.8, gfr_mL_min=90.0)


def times(text: str, horizon: float = 2000.0, **cov: float) -> list[float]:
    cov = {**TYPICAL, **cov}
    return Regimen.parse(text).dose_table(**cov, horizon_days=horizon).time_day.tolist()


def error_of(fn, *args, **kwargs) -> ChemoioInputError:
    with pytest.raises(ChemoioInputError) as info:
        fn(*args, **kwargs)
    return info.value


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", EXAMPLES)
def test_examples_parse_and_round_trip(text: str) -> None:
    r = Regimen.parse(text)
    assert len(r.items) == text.count(";") + 1
    again = Regimen.parse(r.to_text())
    assert again == r
    assert Regimen.from_dict(r.to_dict()) == r


def test_parsed_fields() -> None:
    r = Regimen.parse(EXAMPLES[0])
    pembro, pem, carbo = r.items
    assert (pembro.drug, pembro.dose, pembro.unit, pembro.cycle_days, pembro.cycles) == (
        "pembrolizumab", 200.0, "mg", 21, 35,
    )
    assert (pem.drug, pem.unit, pem.cycles, pem.days, pem.start_day) == ("pemetrexed", "mg/m2", None, [1], 1)
    assert (carbo.drug, carbo.dose, carbo.unit, carbo.cycles) == ("carboplatin", 5.0, "AUC", 4)
    assert r.drugs == ["pembrolizumab", "pemetrexed", "carboplatin"]

    fu = Regimen.parse("5-fluorouracil 1000 mg/m2 d1-4 q3w x6 over 24h").items[0]
    assert fu.days == [1, 2, 3, 4] and fu.infusion_h == 24.0
    assert Regimen.parse("nab-paclitaxel 100 mg/m2 d1,8,15 q3w x4").items[0].days == [1, 8, 15]
    assert Regimen.parse("doxorubicin 60 mg/m2 q3w x4 start w13").items[0].start_day == 85
    assert Regimen.parse("carboplatin AUC 4.5 q3w").items[0].dose == 4.5
    assert Regimen.parse("cisplatin 80 mg/m2 q3w over 2d").items[0].infusion_h == 48.0
    assert Regimen.parse("pembrolizumab 200 mg q3w over 30min").items[0].infusion_h == 0.5
    assert Regimen.parse("paclitaxel 80 mg/m2 qw x12").items[0].cycle_days == 7
    assert Regimen.parse("gemcitabine 1000 mg/m2 d1,8 q21d").items[0].cycle_days == 21
    # each day may carry its own 'd', as protocols often write it
    assert Regimen.parse("gemcitabine 1000 mg/m2 d1, d8 q3w").items[0].days == [1, 8]
    assert Regimen.parse("nab-paclitaxel 100 mg/m2 d1,d8,d15 q4w").items[0].days == [1, 8, 15]
    assert Regimen.parse("5-fluorouracil 1000 mg/m2 d1-d4 q3w").items[0].days == [1, 2, 3, 4]


def test_case_spacing_aliases_and_canonical_names() -> None:
    a = Regimen.parse("PEMBROLIZUMAB 200 MG Q3W X35; Carboplatin auc5 Q3W x4")
    b = Regimen.parse("pembrolizumab 200mg q3w x35 ; carboplatin AUC=5 q3w x4;")
    assert a == b
    assert Regimen.parse("gemcitabine 1000 mg/m2 d1, 8 q3w").items[0].days == [1, 8]
    assert Regimen.parse("nab paclitaxel 100 mg/m2 q3w").items[0].drug == "nab-paclitaxel"
    per_day = Regimen.parse("5-fu 1000 mg/m2/day d1-4 q3w x6 over 24h")
    assert per_day == Regimen.parse("5-fluorouracil 1000 mg/m2 d1-4 q3w x6 over 24h")
    for alias in get_drug("pembrolizumab").aliases[:1]:
        assert Regimen.parse(f"{alias} 200 mg q3w").items[0].drug == "pembrolizumab"


def test_clause_order_is_free() -> None:
    a = Regimen.parse("gemcitabine 1000 mg/m2 d1,8 q3w x6 start d22 over 30min")
    b = Regimen.parse("gemcitabine over 30min start d22 x6 q3w d1,8 1000 mg/m2")
    assert a == b


def test_placebo_gives_no_doses() -> None:
    r = Regimen.parse("placebo q3w x35; pemetrexed 500 mg/m2 q3w x4")
    assert r.items[0].drug == "placebo"
    assert r.drugs == ["pemetrexed"]
    t = r.dose_table(**TYPICAL, horizon_days=365)
    assert t.drugs == ("pemetrexed",)
    assert t.time_day.tolist() == [0.0, 21.0, 42.0, 63.0]
    empty = Regimen.parse("placebo q3w").dose_table(horizon_days=100, n_patients=3)
    assert empty.n_events == 0 and empty.amount_mg.shape == (3, 0)


def test_single_administration_without_interval() -> None:
    r = Regimen.parse("carboplatin AUC5")
    assert r.items[0].cycles == 1
    assert times("carboplatin AUC5") == [0.0]
    assert times("cisplatin 20 mg/m2 d1-5 once") == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert Regimen.parse(r.to_text()) == r


# -- timing ------------------------------------------------------------------------------------


def test_doses_land_on_the_right_days() -> None:
    assert times("gemcitabine 1000 mg/m2 d1,8 q3w x2") == [0.0, 7.0, 21.0, 28.0]
    assert times("doxorubicin 60 mg/m2 q3w x4 start w13")[0] == 84.0
    t = times("pembrolizumab 200 mg q3w x35")
    assert len(t) == 35 and t[-1] == 714.0
    assert times("nab-paclitaxel 100 mg/m2 d1,8,15 q3w x2") == [0.0, 7.0, 14.0, 21.0, 28.0, 35.0]
    assert times("5-fluorouracil 1000 mg/m2 d1-4 q3w x2 over 24h") == [0, 1, 2, 3, 21, 22, 23, 24]
    assert times("pembrolizumab 200 mg q3w x2 start d22") == [21.0, 42.0]
    # day k of cycle c of an item starting on study day s: (s-1) + (c-1)*cycle + (k-1)
    assert times("gemcitabine 1000 mg/m2 d1,8 q4w x3 start d10") == [9, 16, 37, 44, 65, 72]


def test_two_schedules_of_one_drug_share_a_slot() -> None:
    r = Regimen.parse("nivolumab 1 mg/kg q3w x4; nivolumab 3 mg/kg q2w start d64")
    t = r.dose_table(weight_kg=80.0, horizon_days=100)
    assert t.drugs == ("nivolumab",)
    assert np.all(t.slot == 0)
    assert t.time_day.tolist() == [0.0, 21.0, 42.0, 63.0, 63.0, 77.0, 91.0]
    assert t.amount_mg[0].tolist() == [80.0] * 4 + [240.0] * 3


def test_infusion_durations() -> None:
    r = Regimen.parse("5-fluorouracil 1000 mg/m2 d1-4 q3w x1 over 24h; pembrolizumab 200 mg q3w x1")
    t = r.dose_table(bsa_m2=1.8, horizon_days=30)
    fu = t.slot == t.drugs.index("5-fluorouracil")
    assert np.all(t.duration_day[fu] == 1.0)
    pembro_default = get_drug("pembrolizumab").default_infusion_h / 24
    assert np.all(t.duration_day[~fu] == pembro_default)


def test_horizon_truncation() -> None:
    assert times("pemetrexed 500 mg/m2 q3w", horizon=64) == [0.0, 21.0, 42.0, 63.0]
    assert times("pemetrexed 500 mg/m2 q3w", horizon=63) == [0.0, 21.0, 42.0]
    assert times("pembrolizumab 200 mg q3w x35", horizon=100) == [0.0, 21.0, 42.0, 63.0, 84.0]
    assert times("pembrolizumab 200 mg q3w start w13", horizon=84) == []
    # finite regimens need no horizon
    t = Regimen.parse("ipilimumab 3 mg/kg q3w x4").dose_table(weight_kg=70)
    assert t.n_events == 4


# -- amounts -----------------------------------------------------------------------------------


def test_amounts_per_patient() -> None:
    weight = np.array([50.0, 75.0, 100.0])
    bsa = np.array([1.5, 1.8, 2.1])
    gfr = np.array([40.0, 90.0, 150.0])
    r = Regimen.parse(
        "pembrolizumab 200 mg q3w x1; ipilimumab 3 mg/kg q3w x1; pemetrexed 500 mg/m2 q3w x1; "
        "carboplatin AUC5 q3w x1"
    )
    t = r.dose_table(weight_kg=weight, bsa_m2=bsa, gfr_mL_min=gfr, horizon_days=21)
    amt = {d: t.amount_mg[:, t.slot == i][:, 0] for i, d in enumerate(t.drugs)}
    np.testing.assert_array_equal(amt["pembrolizumab"], [200.0, 200.0, 200.0])
    np.testing.assert_array_equal(amt["ipilimumab"], 3 * weight)
    np.testing.assert_array_equal(amt["pemetrexed"], 500 * bsa)
    # Calvert: AUC x (GFR + 25), GFR capped at 125 mL/min
    np.testing.assert_array_equal(amt["carboplatin"], [5 * 65.0, 5 * 115.0, 5 * 150.0])
    assert calvert_dose_mg(6, 200.0) == 6 * 150.0


def test_scalar_covariates_broadcast_and_n_patients() -> None:
    r = Regimen.parse("ipilimumab 3 mg/kg q3w x2; pemetrexed 500 mg/m2 q3w x2")
    t = r.dose_table(weight_kg=70.0, bsa_m2=np.array([1.6, 2.0]), horizon_days=50)
    assert t.amount_mg.shape == (2, 4)
    assert t.amount_mg[:, t.slot == 0].tolist() == [[210.0, 210.0], [210.0, 210.0]]
    flat = Regimen.parse("pembrolizumab 200 mg q3w x2").dose_table(n_patients=4)
    assert flat.amount_mg.shape == (4, 2) and np.all(flat.amount_mg == 200.0)


def test_dose_table_is_frozen_and_validated() -> None:
    t = Regimen.parse("pembrolizumab 200 mg q3w x2").dose_table(horizon_days=50)
    with pytest.raises(ValueError):
        t.amount_mg[0, 0] = 1.0
    assert t.time_day.dtype == np.float64 and t.slot.dtype == np.int32
    with pytest.raises(ValueError):
        DoseTable(("a",), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros((1, 3)))


def test_stop_after() -> None:
    r = Regimen.parse("pembrolizumab 200 mg q3w x4; pemetrexed 500 mg/m2 q3w x4")
    t = r.dose_table(bsa_m2=np.array([2.0, 2.0, 2.0]), horizon_days=100)
    stop = np.array([[np.inf, np.inf], [42.0, np.inf], [0.0, 21.0]])
    s = t.stop_after(stop)
    pem = s.amount_mg[:, s.slot == 1]
    pembro = s.amount_mg[:, s.slot == 0]
    assert pembro.tolist() == [[200.0] * 4, [200.0, 200.0, 0.0, 0.0], [0.0] * 4]
    assert pem.tolist() == [[1000.0] * 4, [1000.0] * 4, [1000.0, 0.0, 0.0, 0.0]]
    assert np.array_equal(s.time_day, t.time_day)
    assert t.amount_mg.min() > 0  # the original is untouched
    err = error_of(t.stop_after, np.zeros((2, 2)))
    assert "stop_day" in str(err)


# -- errors --------------------------------------------------------------------------------------


def _other_unit(drug: str) -> str:
    return next(u for u in ("mg/m2", "mg/kg", "mg", "AUC") if u not in get_drug(drug).dose_units)


@pytest.mark.parametrize(
    "text, field, also",
    [
        ("pembrolizumb 200 mg q3w", "regimen[0].drug", "pembrolizumab"),
        ("pemetrexed 500 mg/m2 q3w; pembrolizumb 200 mg q3w", "regimen[1].drug", "pembrolizumab"),
        ("pembrolizumab -200 mg q3w", "regimen[0].dose", None),
        ("pembrolizumab 0 mg q3w", "regimen[0].dose", None),
        ("pembrolizumab abc mg q3w", "regimen[0].dose", "abc"),
        ("pembrolizumab q3w x35", "regimen[0].dose", None),
        ("carboplatin AUC q3w", "regimen[0].dose", None),
        ("pembrolizumab 200 mcg q3w", "regimen[0].unit", "mcg"),
        ("pembrolizumab 200 q3w", "regimen[0].unit", None),
        ("pemetrexed AUC5 q3w", "regimen[0].unit", None),
        ("pembrolizumab 200 mg q3w banana", "regimen[0]", "banana"),
        ("gemcitabine 1000 mg/m2 d1,22 q3w", "regimen[0].days", None),
        ("gemcitabine 1000 mg/m2 d8,1 q3w", "regimen[0].days", None),
        ("gemcitabine 1000 mg/m2 d1,1 q3w", "regimen[0].days", None),
        ("gemcitabine 1000 mg/m2 d0,8 q3w", "regimen[0].days", None),
        ("gemcitabine 1000 mg/m2 d5-1 q3w", "regimen[0].days", None),
        ("pembrolizumab 200 mg q3w x0", "regimen[0].cycles", None),
        ("pembrolizumab 200 mg q3w x-2", "regimen[0].cycles", None),
        ("pembrolizumab 200 mg q3w x2.5", "regimen[0].cycles", None),
        ("pembrolizumab 200 mg x4", "regimen[0].cycles", None),
        ("pembrolizumab 200 mg q3w start d0", "regimen[0].start_day", None),
        ("pembrolizumab 200 mg q3w start w0", "regimen[0].start_day", None),
        ("pembrolizumab 200 mg q3m", "regimen[0].interval", "q3m"),
        ("pembrolizumab 200 mg q0w", "regimen[0].interval", None),
        ("pembrolizumab 200 mg q3w q2w", "regimen[0]", "twice"),
        ("pembrolizumab 200 mg q3w over 3 fortnights", "regimen[0].infusion_h", None),
        ("", "regimen", "empty"),
        (" ; ", "regimen", "empty"),
    ],
)
def test_text_errors_name_the_field(text: str, field: str, also: str | None) -> None:
    err = error_of(Regimen.parse, text)
    assert err.field == field
    assert field in str(err)
    if also:
        assert also in str(err)


def test_unit_not_allowed_for_the_drug() -> None:
    unit = _other_unit("pembrolizumab")
    dose = "AUC5" if unit == "AUC" else f"2 {unit}"
    err = error_of(Regimen.parse, f"pembrolizumab {dose} q3w")
    assert err.field == "regimen[0].unit" and "regimen[0].unit" in str(err)


def test_dosing_errors_name_the_covariate() -> None:
    carbo = Regimen.parse("carboplatin AUC5 q3w x4")
    assert error_of(carbo.dose_table, 75, 1.8, None, 100).field == "gfr_mL_min"
    ipi = Regimen.parse("ipilimumab 3 mg/kg q3w x4")
    assert error_of(ipi.dose_table, horizon_days=100).field == "weight_kg"
    pem = Regimen.parse("pemetrexed 500 mg/m2 q3w")
    assert error_of(pem.dose_table, horizon_days=100).field == "bsa_m2"
    assert error_of(pem.dose_table, bsa_m2=1.8).field == "horizon_days"  # open-ended needs one
    for bad in (0, -5, float("nan"), "soon"):
        assert error_of(pem.dose_table, bsa_m2=1.8, horizon_days=bad).field == "horizon_days"
    err = error_of(pem.dose_table, weight_kg=[70, 80], bsa_m2=[1.8, 1.9, 2.0], horizon_days=100)
    assert err.field == "bsa_m2" and "bsa_m2" in str(err)
    assert error_of(ipi.dose_table, weight_kg=[70, -1], horizon_days=100).field == "weight_kg"
    assert error_of(pem.dose_table, bsa_m2=[1.8, 0.0], horizon_days=100).field == "bsa_m2"
    assert error_of(carbo.dose_table, gfr_mL_min=[90, np.inf]).field == "gfr_mL_min"
    assert error_of(carbo.dose_table, gfr_mL_min=[[90]]).field == "gfr_mL_min"
    assert error_of(ipi.dose_table, weight_kg=[70, 80], n_patients=3).field == "n_patients"


def test_mapping_errors_name_the_field() -> None:
    base = {"drug": "pembrolizumab", "dose": 200, "unit": "mg", "interval": "q3w"}
    cases = [
        ({**base, "drug": "pembrolizumb"}, "regimen[0].drug"),
        ({**base, "dose": "abc"}, "regimen[0].dose"),
        ({**base, "dose": -1}, "regimen[0].dose"),
        ({**base, "unit": "mcg"}, "regimen[0].unit"),
        ({**base, "days": [1, 30]}, "regimen[0].days"),
        ({**base, "days": "d8,1"}, "regimen[0].days"),
        ({**base, "cycles": 0}, "regimen[0].cycles"),
        ({**base, "start_day": 0}, "regimen[0].start_day"),
        ({**base, "interval": "q3m"}, "regimen[0].interval"),
        ({**base, "infusion_h": -1}, "regimen[0].infusion_h"),
        ({**base, "dos": 200}, "regimen[0].dos"),
    ]
    for item, field in cases:
        err = error_of(Regimen.from_dict, {"items": [item]})
        assert err.field == field, (item, str(err))
        assert field in str(err)
    err = error_of(Regimen.from_dict, {"items": [{**base, "dos": 200}]})
    assert "dose" in (err.hint or "")
    assert error_of(Regimen.from_dict, {"items": []}).field == "regimen"
    assert error_of(Regimen.from_dict, {"name": "x"}).field == "items"
    assert error_of(Regimen.from_dict, {"text": "pembrolizumab 200 mg q3w", "nmae": "x"}).field == "nmae"
    err = error_of(Regimen, items=[{"drug": "pemetrexed", "dose": 5, "unit": "AUC", "cycle_days": 21}])
    assert err.field == "regimen[0].unit"


def test_direct_schedule_errors_are_input_errors() -> None:
    err = error_of(DrugSchedule, drug="gemcitabine", dose=1000, unit="mg/m2", days=[1, 8], cycle_days=7)
    assert err.field == "days"
    assert error_of(DrugSchedule, drug="nope-mab", dose=1, unit="mg", cycle_days=7).field == "drug"


# -- YAML ------------------------------------------------------------------------------------------


def test_yaml_forms(tmp_path) -> None:
    items_form = {
        "name": "gem-carbo",
        "description": "gemcitabine-carboplatin",
        "items": [
            {"drug": "Gemcitabine", "dose": 1000, "unit": "mg/m2", "days": [1, 8], "interval": "q3w", "cycles": 6},
            {"drug": "carboplatin", "dose": 5, "unit": "AUC", "cycle_days": 21, "cycles": 6},
            "pembrolizumab 200 mg q3w x35",
        ],
    }
    path = tmp_path / "gem.yaml"
    path.write_text(yaml.safe_dump(items_form))
    r = Regimen.from_yaml(path)
    assert r.name == "gem-carbo" and r.description == "gemcitabine-carboplatin"
    assert r.to_text() == (
        "gemcitabine 1000 mg/m2 d1,8 q3w x6; carboplatin AUC5 q3w x6; pembrolizumab 200 mg q3w x35"
    )
    text_form = tmp_path / "text.yaml"
    text_form.write_text(yaml.safe_dump({"name": "gem-carbo", "text": r.to_text(), "description": r.description}))
    assert Regimen.from_yaml(text_form) == r
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(yaml.safe_dump(r.to_dict()))
    assert Regimen.from_yaml(dumped) == r
    assert Regimen.from_yaml(r.to_dict()) == r
    assert resolve_regimen(str(path)) == r
    assert resolve_regimen(path) == r
    assert error_of(Regimen.from_yaml, tmp_path / "missing.yaml").field == "regimen"
    bad = tmp_path / "bad.yaml"
    bad.write_text("items: [ {drug: pembrolizumab, dose: 200, unit: mg, interval: q3w, cycles: 0} ]")
    assert error_of(Regimen.from_yaml, bad).field == "regimen[0].cycles"
    bad.write_text("- just a list")
    assert error_of(Regimen.from_yaml, bad).field == "regimen"


# -- round trips ---------------------------------------------------------------------------------


def test_text_round_trip_of_many_forms() -> None:
    texts = [
        "pembrolizumab 200 mg q3w x35 start d22 over 30min",
        "gemcitabine 1000 mg/m2 d1,8 q3w x6 over 20min",
        "cisplatin 20 mg/m2 d1,2 q4w",
        "5-fluorouracil 1000 mg/m2 d1-4,8 q4w x2 over 1.5h",
        "carboplatin AUC1.5 qw x12 start w13",
        "paclitaxel 80 mg/m2 qd x3",
        "pemetrexed 500 mg/m2 q10d x2 start d3 over 0h",
        "doxorubicin 60.25 mg/m2 q3w x4; placebo q2w start w13",
    ]
    for text in texts:
        r = Regimen.parse(text)
        assert Regimen.parse(r.to_text()) == r, text
        assert Regimen.parse(r.to_text()).to_text() == r.to_text()


def _event_table() -> DoseTable:
    r = Regimen.parse(
        "pembrolizumab 200 mg q3w x35; gemcitabine 1000 mg/m2 d1,8 q3w x6; carboplatin AUC5 q3w x6; "
        "5-fluorouracil 1000 mg/m2 d1-4 q3w x3 over 24h; nivolumab 1 mg/kg q3w x4; nivolumab 3 mg/kg q2w start d64"
    )
    rng = np.random.default_rng(7)
    n = 6
    return r.dose_table(
        weight_kg=rng.uniform(50, 110, n), bsa_m2=rng.uniform(1.4, 2.3, n), gfr_mL_min=rng.uniform(30, 160, n),
        horizon_days=800,
    )


@pytest.mark.parametrize("compress", [True, False])
def test_nonmem_round_trip(compress: bool) -> None:
    t = _event_table()
    df = to_events(t, compress=compress)
    assert list(df.columns[:9]) == ["ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "ADDL", "DUR"]
    assert "DRUG" in df.columns
    assert (df["EVID"] == 1).all()
    keys = df[["ID", "TIME", "CMT"]].to_records(index=False).tolist()
    assert keys == sorted(keys)
    back = from_events(df)
    assert back == t
    stopped = t.stop_after(np.where(np.arange(t.n_patients)[:, None] % 2 == 0, 100.0, np.inf) * np.ones((1, t.n_drugs)))
    assert from_events(to_events(stopped, compress=compress)) == stopped
    ids = np.array([101, 7, 55, 3, 20, 9])
    df_ids = to_events(t, ids=ids, compress=compress)
    assert set(df_ids["ID"]) == set(ids.tolist())
    # from_events orders patients by ID
    assert from_events(df_ids).amount_mg.tolist() == t.amount_mg[np.argsort(ids)].tolist()


def test_addl_compression() -> None:
    t = Regimen.parse("pembrolizumab 200 mg q3w x35").dose_table(n_patients=2)
    df = to_events(t)
    assert len(df) == 2
    row = df.iloc[0]
    assert (row.TIME, row.II, row.ADDL, row.AMT, row.CMT, row.DRUG) == (0.0, 21.0, 34, 200.0, 1, "pembrolizumab")
    pembro_h = get_drug("pembrolizumab").default_infusion_h
    if pembro_h > 0:
        assert row.RATE == pytest.approx(200.0 / (pembro_h / 24))
    assert len(to_events(t, compress=False)) == 70

    # a per-patient stop breaks the run for that patient only
    s = t.stop_after(np.array([[np.inf], [100.0]]))
    df = to_events(s)
    assert df[df.ID == 1].ADDL.tolist() == [34]
    p2 = df[df.ID == 2]
    assert p2.AMT.tolist() == [200.0, 0.0] and p2.ADDL.tolist() == [4, 29]
    assert from_events(df) == s

    gem = Regimen.parse("5-fluorouracil 1000 mg/m2 d1-4 q3w x2 over 24h").dose_table(bsa_m2=2.0)
    df = to_events(gem)
    assert df.ADDL.tolist() == [3, 3] and df.II.tolist() == [1.0, 1.0]
    assert df.RATE.tolist() == [2000.0, 2000.0]


def test_from_events_expands_addl_and_ignores_observations() -> None:
    df = pd.DataFrame(
        {
            "ID": [1, 1, 1, 2],
            "TIME": [0.0, 5.0, 0.0, 0.0],
            "EVID": [1, 0, 1, 1],
            "AMT": [100.0, np.nan, 50.0, 80.0],
            "CMT": [1, 1, 2, 1],
            "RATE": [0.0, np.nan, 100.0, 0.0],
            "II": [7.0, np.nan, 0.0, 7.0],
            "ADDL": [2, np.nan, 0, 1],
        }
    )
    t = from_events(df)
    assert t.drugs == ("cmt1", "cmt2")
    assert t.time_day.tolist() == [0.0, 0.0, 7.0, 14.0]
    assert t.slot.tolist() == [0, 1, 0, 0]
    assert t.duration_day.tolist() == [0.0, 0.5, 0.0, 0.0]
    assert t.amount_mg.tolist() == [[100.0, 50.0, 100.0, 100.0], [80.0, 0.0, 80.0, 0.0]]
    named = from_events(df.assign(DRUG=["a", None, "b", "a"]))
    assert named.drugs == ("a", "b")
    lower = from_events(df.rename(columns=str.lower), drugs=["x", "y"])
    assert lower.drugs == ("x", "y")
    # a drug without any dose rows keeps its slot when the names are passed in
    assert from_events(df, drugs=["x", "y", "z"]).drugs == ("x", "y", "z")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"AMT": [100.0, -1.0]}, "AMT[row 1]"),
        ({"RATE": [0.0, -2.0]}, "RATE[row 1]"),
        ({"EVID": [1, 4]}, "EVID[row 1]"),
        ({"ID": [1, 1.5]}, "ID[row 1]"),
        ({"ADDL": [0, 2], "II": [0.0, 0.0]}, "II[row 1]"),
        ({"ADDL": [0, -1]}, "ADDL[row 1]"),
        ({"CMT": [1, 0]}, "CMT[row 1]"),
        ({"TIME": [0.0, "soon"]}, "TIME[row 1]"),
        ({"DRUG": ["a", "b"]}, "DRUG[row 1]"),
    ],
)
def test_from_events_errors_name_column_and_row(change: dict, field: str) -> None:
    base = {"ID": [1, 1], "TIME": [0.0, 21.0], "EVID": [1, 1], "AMT": [100.0, 100.0], "CMT": [1, 1]}
    err = error_of(from_events, pd.DataFrame({**base, **change}))
    assert err.field == field and field in str(err)


def test_from_events_requires_columns() -> None:
    err = error_of(from_events, pd.DataFrame({"ID": [1], "TIME": [0.0], "AMT": [1.0]}))
    assert err.field == "events" and "EVID" in str(err) and "CMT" in str(err)
    err = error_of(from_events, pd.DataFrame({"ID": [1], "TIME": [0.0], "EVID": [0], "AMT": [0.0], "CMT": [1]}))
    assert err.field == "events"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("compress", [True, False])
def test_event_files_round_trip(tmp_path, suffix: str, compress: bool) -> None:
    t = _event_table()
    df = to_events(t, compress=compress)
    path = write_events(df, tmp_path / f"events{suffix}")
    back = read_events(path)
    assert from_events(back) == t
    assert error_of(write_events, df, tmp_path / "events.xlsx").field == "path"
    assert error_of(read_events, tmp_path / "nope.csv").field == "path"


# -- presets ----------------------------------------------------------------------------------


REQUIRED_PRESETS = [
    "keynote189_pembro_chemo", "keynote189_chemo",
    "impower130_atezo_chemo", "impower130_chemo",
    "imvigor130_atezo_chemo", "imvigor130_atezo", "imvigor130_chemo",
    "keynote361_pembro_chemo", "keynote361_pembro", "keynote361_chemo",
    "imvigor211_atezo", "imvigor211_vinflunine", "imvigor211_paclitaxel", "imvigor211_docetaxel",
    "keynote522_pembro_chemo", "keynote522_chemo",
    "keynote048_pembro_chemo", "keynote048_pembro", "keynote048_extreme",
    "keynote590_pembro_chemo", "keynote590_chemo",
    "checkmate067_nivo_ipi", "checkmate067_nivo", "checkmate067_ipi",
    "keynote002_pembro2", "keynote002_pembro10", "keynote002_chemo",
]  # fmt: skip


def test_required_presets_exist() -> None:
    names = list_presets()
    missing = [n for n in REQUIRED_PRESETS if n not in names]
    assert not missing
    for name in names:
        if name.endswith("_cis"):
            assert name[: -len("_cis")] + "_carbo" in names
            assert name[: -len("_cis")] in names


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_parses_and_doses_a_typical_patient(name: str) -> None:
    r = get_preset(name)
    info = preset_info(name)
    assert r.name == name and r.trial == info.trial and r.arm == info.arm
    assert r.note and r.sources
    assert Regimen.parse(r.to_text()).items == r.items
    t = r.dose_table(**TYPICAL, horizon_days=730)
    assert t.n_events > 0 and np.all(t.amount_mg > 0)
    assert t.drugs == tuple(r.drugs)
    assert from_events(to_events(t)) == t


def test_preset_contents() -> None:
    kn189 = get_preset("keynote189_pembro_chemo")
    assert kn189.to_text() == "pembrolizumab 200 mg q3w x35; pemetrexed 500 mg/m2 q3w; carboplatin AUC5 q3w x4"
    assert get_preset("keynote189_chemo").drugs == ["pemetrexed", "carboplatin"]
    assert "cisplatin" in get_preset("keynote189_pembro_chemo_cis").drugs

    kn522 = get_preset("keynote522_pembro_chemo")
    t = kn522.dose_table(**TYPICAL, horizon_days=1000)
    pembro = t.time_day[t.slot == t.drugs.index("pembrolizumab")]
    assert len(pembro) == 17  # 8 neoadjuvant + 9 adjuvant
    neo_last = max(t.time_day[t.slot == t.drugs.index(d)].max() for d in ("doxorubicin", "cyclophosphamide"))
    assert neo_last == 147.0
    surgery_time = kn522.surgery_day - 1
    assert 21 <= surgery_time - neo_last <= 42  # 3-6 weeks after the last neoadjuvant dose
    assert pembro[8] > surgery_time and pembro[7] < surgery_time
    assert len(t.time_day[t.slot == t.drugs.index("paclitaxel")]) == 12
    assert get_preset("keynote522_chemo").surgery_day == kn522.surgery_day

    extreme = preset_info("keynote048_extreme")
    assert "cetuximab" in extreme.note.lower() and "not modelled" in extreme.note
    assert "cetuximab" not in get_preset("keynote048_extreme").drugs

    nivo_ipi = get_preset("checkmate067_nivo_ipi").dose_table(weight_kg=80.0, horizon_days=120)
    assert nivo_ipi.drugs == ("nivolumab", "ipilimumab")
    assert nivo_ipi.amount_mg[0, nivo_ipi.slot == 1].tolist() == [240.0] * 4
    kn002 = get_preset("keynote002_pembro10").dose_table(weight_kg=70.0, horizon_days=30)
    assert kn002.amount_mg.tolist() == [[700.0, 700.0]]


def test_resolve_regimen() -> None:
    assert resolve_regimen("keynote189_chemo") == get_preset("keynote189_chemo")
    assert resolve_regimen("KEYNOTE189-chemo").name == "keynote189_chemo"
    assert resolve_regimen("pembrolizumab 200 mg q3w x35") == Regimen.parse("pembrolizumab 200 mg q3w x35")
    r = get_preset("imvigor211_atezo")
    assert resolve_regimen(r) is r
    err = error_of(resolve_regimen, "keynote189_pembro")
    assert err.field == "preset" and "keynote189_pembro_chemo" in str(err)
    assert error_of(get_preset, "checkmate067_nivo_ipy").field == "preset"
    assert error_of(resolve_regimen, "zzzz").field == "regimen"
    assert error_of(resolve_regimen, "pembrolizumb 200 mg").field == "regimen[0].drug"
    # the one word 'placebo' is the untreated natural history, not an unknown preset
    untreated = resolve_regimen("Placebo")
    assert untreated.drugs == [] and [i.drug for i in untreated.items] == ["placebo"]
