"""ADaM-style tables: columns, conventions, row counts and file round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chemoio.analysis.adam import (
    ADRS_AVAL,
    add_adsl_vars,
    make_adrs,
    make_adsl,
    make_adtte,
    stack_adtte,
    write_adam,
)
from chemoio.analysis.recist import (
    Response,
    best_overall_response,
    classify_visits,
    progression_day,
)
from chemoio.errors import ChemoioInputError

R = Response
NAN = np.nan


def small_adsl():
    return make_adsl(
        "CIO-001",
        np.array([1, 2, 3, 4]),
        arm=np.array(["Chemo + anti-PD-1", "Chemo + anti-PD-1", "Chemo", "Chemo"]),
        arm_code=np.array(["CIO", "CIO", "C", "C"]),
        covariates={
            "age": np.array([55.0, 61, 70, 48]),
            "sex": np.array(["F", "F", "M", "F"]),
            "ecog": np.array([0, 1, 1, 0]),
            "pdl1_cps": np.array([12.0, 1, 25, 0]),
            "TMB": np.array([3.2, 10.5, 7.0, 1.1]),
        },
    )


def test_adsl_columns_and_conventions():
    adsl = small_adsl()
    assert len(adsl) == 4
    first = ["STUDYID", "USUBJID", "SUBJID", "ARM", "ARMCD", "TRT01P", "ITTFL"]
    assert list(adsl.columns[:7]) == first
    for col in ("AGE", "AGEU", "SEX", "ECOGBL", "PDL1CPS", "TMB"):
        assert col in adsl.columns
    assert adsl["USUBJID"].tolist() == ["CIO-001-1", "CIO-001-2", "CIO-001-3", "CIO-001-4"]
    assert (adsl["ITTFL"] == "Y").all() and (adsl["AGEU"] == "YEARS").all()
    assert (adsl["TRT01P"].astype(str) == adsl["ARM"].astype(str)).all()
    assert adsl["ECOGBL"].tolist() == [0, 1, 1, 0]


def test_adsl_scalar_arm_and_replicates():
    cov = {"replicate": [0, 0, 1, 1], "gfr_mL_min": [90.0] * 4, "weight_kg": [70.0] * 4}
    adsl = make_adsl("S", [1, 2, 1, 2], "Chemo", "C", cov)
    assert adsl["REPLIC"].tolist() == [0, 0, 1, 1]
    assert {"GFRBL", "WEIGHTBL"} <= set(adsl.columns)
    assert (adsl["ARMCD"] == "C").all()
    with pytest.raises(ChemoioInputError) as err:
        make_adsl("S", [1, 1], "Chemo", "C")
    assert err.value.field == "subject_ids"


def test_adsl_input_errors_name_the_argument():
    with pytest.raises(ChemoioInputError) as err:
        make_adsl("S", [1, 2, 3], ["A", "B"], "C")
    assert err.value.field == "arm"
    with pytest.raises(ChemoioInputError) as err:
        make_adsl("S", [1, 2, 3], "A", "C", {"age": [50, 60]})
    assert err.value.field == "covariates['age']"
    with pytest.raises(ChemoioInputError) as err:
        make_adsl("S", [1, 2], "A", "C", {"baseline weight": [50, 60]})
    assert "covariates" in err.value.field
    with pytest.raises(ChemoioInputError) as err:
        make_adsl("S", [1, 2], "A", "C", {"arm": ["x", "y"]})
    assert "covariates" in err.value.field


def test_adtte_cnsr_convention_and_columns():
    os_ = make_adtte("CIO-001", [1, 2, 3], "OS", [300.0, 120.5, 800.0], [True, False, True])
    assert list(os_.columns) == [
        "STUDYID", "USUBJID", "PARAMCD", "PARAM", "AVAL", "AVALU", "CNSR",
        "STARTDY", "ADY", "EVNTDESC", "CNSDTDSC",
    ]
    assert os_["CNSR"].tolist() == [0, 1, 0]  # 0 = event, 1 = censored
    assert os_["PARAM"].iloc[0] == "Overall Survival"
    assert (os_["AVALU"] == "DAYS").all()
    assert os_["EVNTDESC"].tolist() == ["DEATH", "", "DEATH"]
    assert os_["CNSDTDSC"].tolist() == ["", "LAST KNOWN ALIVE", ""]
    assert os_["ADY"].tolist() == [300.0, 120.5, 800.0]


def test_adtte_dor_start_day_and_missing_rows():
    start = [42.0, NAN, 84.0]
    dor = make_adtte("S", [1, 2, 3], "dor", [84.0, NAN, 40.0], [1, 0, 0], start_day=start)
    assert len(dor) == 2  # subject 2 is not a responder
    assert dor["USUBJID"].tolist() == ["S-1", "S-3"]
    assert dor["PARAMCD"].iloc[0] == "DOR"
    assert dor["ADY"].tolist() == [126.0, 124.0]
    assert dor["CNSR"].tolist() == [0, 1]


def test_adtte_errors():
    with pytest.raises(ChemoioInputError) as err:
        make_adtte("S", [1, 2], "OS", [1.0], [1, 1])
    assert err.value.field == "time_days"
    with pytest.raises(ChemoioInputError) as err:
        make_adtte("S", [1, 2], "OS", [1.0, 2.0], [1, 1, 0])
    assert err.value.field == "event"
    with pytest.raises(ChemoioInputError) as err:
        make_adtte("S", [1, 2], "XYZ", [1.0, 2.0], [1, 1])
    assert err.value.field == "paramcd"
    custom = make_adtte("S", [1, 2], "TTNT", [1.0, 2.0], [1, 0], param="Time to Next Treatment")
    assert custom["PARAM"].iloc[0] == "Time to Next Treatment"


def test_stack_adtte_and_join_adsl():
    adsl = small_adsl()
    ids = [1, 2, 3, 4]
    os_ = make_adtte("CIO-001", ids, "OS", [300.0, 200, 100, 50], [1, 0, 1, 1])
    pfs = make_adtte("CIO-001", ids, "PFS", [100.0, 150, 60, 40], [1, 1, 1, 0])
    adtte = stack_adtte([os_, pfs])
    assert len(adtte) == 8
    assert adtte[["USUBJID", "PARAMCD"]].drop_duplicates().shape[0] == 8
    assert adtte["PARAMCD"].tolist()[:2] == ["OS", "PFS"]
    with pytest.raises(ChemoioInputError):
        stack_adtte([os_, os_])
    joined = add_adsl_vars(adtte, adsl)
    assert len(joined) == 8
    arm3 = joined.loc[joined["USUBJID"] == "CIO-001-3", "ARMCD"].astype(str)
    assert arm3.unique().tolist() == ["C"]


def adrs_inputs():
    days = np.array([42.0, 84.0, 126.0, 168.0])
    sld = np.array(
        [
            [60, 60, 60, 60],  # confirmed PR, 4 scans
            [90, 130, 50, 50],  # SD then PD at week 12 -> 2 scans kept
            [NAN, NAN, NAN, NAN],  # died before first scan: no OVR rows
            [60, NAN, NAN, NAN],  # unconfirmed PR
        ]
    )
    codes = classify_visits(sld, np.full(4, 100.0), days)
    return days, codes


def test_adrs_rows_and_values():
    days, codes = adrs_inputs()
    bor, _ = best_overall_response(codes, days, confirm=False)
    cbor, _ = best_overall_response(codes, days)
    adrs = make_adrs("CIO-001", [1, 2, 3, 4], days, codes, bor, cbor=cbor)
    ovr = adrs[adrs["PARAMCD"] == "OVR"]
    assert len(ovr) == 4 + 2 + 0 + 1
    assert len(adrs[adrs["PARAMCD"] == "BOR"]) == 4 and len(adrs[adrs["PARAMCD"] == "CBOR"]) == 4
    assert ovr["AVISIT"].astype(str).tolist()[:4] == ["WEEK 6", "WEEK 12", "WEEK 18", "WEEK 24"]
    s2 = ovr[ovr["USUBJID"] == "CIO-001-2"]
    assert s2["AVALC"].astype(str).tolist() == ["SD", "PD"] and s2["ADY"].tolist() == [42.0, 84.0]
    b = adrs[adrs["PARAMCD"] == "BOR"].set_index("USUBJID")
    cb = adrs[adrs["PARAMCD"] == "CBOR"].set_index("USUBJID")
    assert b["AVALC"].astype(str).tolist() == ["PR", "SD", "NE", "PR"]
    assert cb["AVALC"].astype(str).tolist() == ["PR", "SD", "NE", "SD"]
    assert b.loc["CIO-001-1", "ADY"] == 42.0 and np.isnan(b.loc["CIO-001-3", "ADY"])
    assert cb.loc["CIO-001-4", "ADY"] == 42.0  # SD from an unconfirmed PR, dated at the PR scan
    assert b.loc["CIO-001-2", "ADY"] == 42.0
    assert (adrs["AVAL"] == adrs["AVALC"].astype(str).map(ADRS_AVAL)).all()
    ids = [1, 2, 3, 4]
    everything = make_adrs("CIO-001", ids, days, codes, bor, keep_ne=True, keep_after_pd=True)
    assert len(everything[everything["PARAMCD"] == "OVR"]) == 16


def test_adrs_replicates_and_order():
    days, codes = adrs_inputs()
    bor, _ = best_overall_response(codes, days)
    two = np.concatenate([codes, codes])
    adrs = make_adrs("S", [1, 2, 3, 4] * 2, days, two, np.r_[bor, bor], replicate=[0] * 4 + [1] * 4)
    assert adrs.columns[1] == "REPLIC"
    assert len(adrs) == 2 * (7 + 4)
    first = adrs[(adrs["REPLIC"] == 1) & (adrs["USUBJID"] == "S-1")]
    assert first["PARAMCD"].astype(str).tolist() == ["OVR"] * 4 + ["BOR"]
    assert first["ADY"].tolist()[:4] == [42.0, 84.0, 126.0, 168.0]


def test_adrs_errors():
    days, codes = adrs_inputs()
    bor, _ = best_overall_response(codes, days)
    with pytest.raises(ChemoioInputError) as err:
        make_adrs("S", [1, 2, 3], days, codes, bor)
    assert err.value.field == "codes"
    with pytest.raises(ChemoioInputError) as err:
        make_adrs("S", [1, 2, 3, 4], days[:3], codes, bor)
    assert err.value.field == "visit_day"
    with pytest.raises(ChemoioInputError) as err:
        make_adrs("S", [1, 2, 3, 4], days, codes, bor[:3])
    assert err.value.field == "bor"


def test_write_adam_round_trip(tmp_path):
    days, codes = adrs_inputs()
    bor, _ = best_overall_response(codes, days)
    pday, pev = progression_day(codes, days)
    tables = {
        "adsl": small_adsl(),
        "adtte": make_adtte("CIO-001", [1, 2, 3, 4], "PFS", pday, pev),
        "adrs": make_adrs("CIO-001", [1, 2, 3, 4], days, codes, bor),
    }
    written = write_adam(tables, tmp_path / "out")
    assert sorted(p.name for ps in written.values() for p in ps) == [
        "adrs.csv", "adrs.parquet", "adsl.csv", "adsl.parquet", "adtte.csv", "adtte.parquet",
    ]
    for name, df in tables.items():
        back = pd.read_parquet(tmp_path / "out" / f"{name}.parquet")
        pd.testing.assert_frame_equal(back, df)
        csv = pd.read_csv(tmp_path / "out" / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert list(csv.columns) == list(df.columns) and len(csv) == len(df)
    csv = pd.read_csv(tmp_path / "out" / "adtte.csv")
    assert csv["CNSR"].tolist() == tables["adtte"]["CNSR"].tolist()
    with pytest.raises(ChemoioInputError) as err:
        write_adam(tables, tmp_path, formats=("xpt",))
    assert err.value.field == "formats"
