"""RECIST 1.1 / iRECIST rules on hand-made SLD series."""

from __future__ import annotations

import numpy as np
import pytest

from chemoio.analysis.recist import (
    Response,
    add_measurement_noise,
    best_overall_response,
    best_pct_change,
    classify_visits,
    classify_visits_irecist,
    disease_control,
    duration_of_response,
    labels,
    objective_response,
    progression_day,
)
from chemoio.errors import ChemoioInputError

R = Response
NAN = np.nan
Q6W = np.array([42.0, 84.0, 126.0, 168.0])  # scans every 6 weeks


def classify_one(series, baseline=100.0, days=Q6W, **kw):
    codes = classify_visits(np.array([series], dtype=float), np.array([baseline]), days, **kw)
    return codes[0]


def bor_one(series, baseline=100.0, days=Q6W, **kw):
    codes = classify_visits(np.array([series], dtype=float), np.array([baseline]), days)
    bor, conf = best_overall_response(codes, days, **kw)
    return R(int(bor[0])), bool(conf[0])


# ----------------------------------------------------------------------------- visit rules


def test_visit_codes_basic_thresholds():
    # -30 % exactly is PR, -29 % is SD; +19.9 % over the nadir is SD, +20 % is PD
    assert list(classify_one([70, 71, 60, 60])) == [R.PR, R.SD, R.PR, R.PR]
    assert list(classify_one([100, 110, 119, 119.9])) == [R.SD, R.SD, R.SD, R.SD]
    assert list(classify_one([100, 110, 120, 90])) == [R.SD, R.SD, R.PD, R.PD]


def test_nadir_rule_needs_both_relative_and_absolute_rise():
    # baseline 20 mm: 24 mm is +20 % but only +4 mm -> not PD; 25 mm is +5 mm -> PD
    assert list(classify_one([24, 24, 24, 24], baseline=20.0)) == [R.SD] * 4
    assert list(classify_one([25, 20, 20, 20], baseline=20.0)) == [R.PD] * 4


def test_progression_is_measured_from_the_nadir_not_baseline():
    # shrink to 40 (PR), then 48 mm: +20 % and +8 mm over the nadir -> PD although -52 % vs baseline
    codes = classify_one([40, 48, 30, 30])
    assert list(codes) == [R.PR, R.PD, R.PD, R.PD]  # PD is absorbing
    # 47 mm is only +17.5 % over the nadir -> still PR
    assert list(classify_one([40, 47, 47, 47])) == [R.PR] * 4


def test_new_lesion_is_pd_on_or_after_its_day():
    codes = classify_one([60, 50, 40, 30], new_lesion_day=np.array([84.0]))
    assert list(codes) == [R.PR, R.PD, R.PD, R.PD]
    # a lesion appearing between scans is seen at the next scan
    codes = classify_one([60, 50, 40, 30], new_lesion_day=np.array([85.0]))
    assert list(codes) == [R.PR, R.PR, R.PD, R.PD]


def test_missing_scan_is_ne_and_censors_progression():
    codes = classify_one([90, NAN, NAN, NAN])
    assert list(codes) == [R.SD, R.NE, R.NE, R.NE]
    day, event = progression_day(codes[None, :], Q6W)
    assert day[0] == 42.0 and not event[0]


def test_cr_threshold():
    assert classify_one([5.0, 5.0, 5.0, 5.0])[0] == R.CR
    assert classify_one([5.1, 5.1, 5.1, 5.1])[0] == R.PR
    assert classify_one([8.0, 8, 8, 8], cr_mm=10.0)[0] == R.CR


def test_nan_baseline_gives_ne_everywhere():
    codes = classify_visits(np.array([[50.0, 50, 50, 50]]), np.array([NAN]), Q6W)
    assert np.all(codes == R.NE)


# ----------------------------------------------------------------------------- BOR


def test_pr_confirmed_at_week_12():
    assert bor_one([60, 60, 60, 60]) == (R.PR, True)
    # PR confirmed by a later CR
    assert bor_one([60, 4, NAN, NAN]) == (R.PR, True)


def test_pr_unconfirmed_when_next_scan_is_too_early():
    days = np.array([42.0, 63.0, 105.0, 147.0])  # second scan only 21 days later
    assert bor_one([60, 60, NAN, NAN], days=days) == (R.SD, False)
    # a later PR >= 28 days after the first still confirms
    assert bor_one([60, 60, 60, NAN], days=days) == (R.PR, True)


def test_pr_unconfirmed_when_next_scan_is_pd():
    # PR at week 6 then PD: SD (the week-6 scan meets the 42-day SD minimum)
    assert bor_one([60, 200, NAN, NAN]) == (R.SD, False)
    # same with an earlier first scan (day 35): SD minimum not met -> PD
    days = np.array([35.0, 77.0, 119.0, 161.0])
    assert bor_one([60, 200, NAN, NAN], days=days) == (R.PD, False)


def test_intervening_sd_breaks_confirmation():
    assert bor_one([60, 80, 60, NAN]) == (R.SD, False)


def test_cr_confirmation():
    assert bor_one([3, 2, 2, 2]) == (R.CR, True)
    # CR then PR (7 mm is only +2 mm over the nadir): the CR is not confirmed, the PR is
    assert bor_one([5, 7, NAN, NAN]) == (R.PR, True)
    # regrowth after CR is PD (nadir ~ 0): CR, PD -> SD when the CR scan meets the SD minimum
    assert bor_one([3, 60, NAN, NAN]) == (R.SD, False)
    # CR only once -> SD
    assert bor_one([3, NAN, NAN, NAN]) == (R.SD, False)


def test_min_sd_duration():
    days = np.array([35.0, 77.0, 119.0, 161.0])
    assert bor_one([90, NAN, NAN, NAN], days=days) == (R.NE, False)  # early SD, then nothing
    assert bor_one([90, 200, NAN, NAN], days=days) == (R.PD, False)  # early SD, then PD
    assert bor_one([90, NAN, NAN, NAN]) == (R.SD, False)  # SD at day 42 counts
    assert bor_one([90, NAN, NAN, NAN], min_sd_days=56.0) == (R.NE, False)


def test_first_assessment_pd_and_no_assessment_ne():
    assert bor_one([150, NAN, NAN, NAN]) == (R.PD, False)
    assert bor_one([NAN, NAN, NAN, NAN]) == (R.NE, False)


def test_unconfirmed_mode_counts_single_response():
    assert bor_one([60, NAN, NAN, NAN], confirm=False) == (R.PR, False)
    assert bor_one([3, NAN, NAN, NAN], confirm=False) == (R.CR, False)


def _bor_reference(row, day, confirm_days=28.0, min_sd_days=42.0):
    """Direct pairwise statement of the confirmation rule, one patient at a time."""
    prog = [i for i, c in enumerate(row) if c in (R.PD, R.iCPD)]
    stop = prog[0] if prog else len(row)

    def confirmed(ok):
        for i in range(stop):
            if row[i] not in ok:
                continue
            for j in range(i + 1, stop):
                if row[j] not in ok and row[j] != R.NE:
                    break
                if row[j] in ok and day[j] - day[i] >= confirm_days:
                    return True
        return False

    if confirmed({R.CR}):
        return R.CR
    if confirmed({R.CR, R.PR}):
        return R.PR
    if any(row[i] in (R.CR, R.PR, R.SD) and day[i] >= min_sd_days for i in range(stop)):
        return R.SD
    return R.PD if prog else R.NE


def test_vectorised_bor_matches_pairwise_reference():
    rng = np.random.default_rng(7)
    day = np.array([21.0, 42, 63, 84, 105, 147, 189])
    pool = np.array([R.CR, R.PR, R.SD, R.NE, R.PD], dtype=np.int8)
    codes = rng.choice(pool, size=(3000, day.size), p=[0.15, 0.3, 0.3, 0.15, 0.1])
    # make PD absorbing as classify_visits does
    after = np.cumsum(codes == R.PD, axis=1) > 0
    codes[after] = R.PD
    bor, _ = best_overall_response(codes, day)
    ref = np.array([_bor_reference(list(map(R, row)), day) for row in codes])
    assert np.array_equal(bor, ref)


def test_batch_equals_one_patient_at_a_time():
    rng = np.random.default_rng(3)
    n = 200
    base = rng.uniform(20, 120, n)
    sld = base[:, None] * np.exp(np.cumsum(rng.normal(-0.05, 0.2, (n, 4)), axis=1))
    sld[rng.random((n, 4)) < 0.1] = np.nan
    nl = np.where(rng.random(n) < 0.2, rng.uniform(1, 200, n), np.inf)
    batch = classify_visits(sld, base, Q6W, nl)
    for i in range(n):
        single = classify_visits(sld[i : i + 1], base[i : i + 1], Q6W, nl[i : i + 1])
        assert np.array_equal(batch[i], single[0])


# ----------------------------------------------------------------------------- derived endpoints


def test_progression_day_and_duration_of_response():
    sld = np.array([[60, 60, 90, NAN], [60, 60, 60, 60], [90, 90, 90, 90]], dtype=float)
    codes = classify_visits(sld, np.full(3, 100.0), Q6W)
    day, event = progression_day(codes, Q6W)
    assert list(day) == [126.0, 168.0, 168.0]
    assert list(event) == [True, False, False]
    bor, _ = best_overall_response(codes, Q6W)
    resp = objective_response(bor)
    assert list(resp) == [True, True, False]
    assert list(disease_control(bor)) == [True, True, True]
    death = [np.inf, 150.0, 10.0]
    start, dor, ev = duration_of_response(codes, Q6W, responder=resp, death_day=death)
    assert list(start[:2]) == [42.0, 42.0] and np.isnan(start[2])
    assert list(dor[:2]) == [84.0, 108.0]  # PD at 126; death at 150 before any PD
    assert list(ev) == [True, True, False]


def test_best_pct_change():
    sld = np.array([[80, 50, 70], [NAN, NAN, NAN], [110, 120, NAN]])
    out = best_pct_change(sld, np.array([100.0, 100.0, 100.0]))
    assert out[0] == pytest.approx(-50.0)
    assert np.isnan(out[1])
    assert out[2] == pytest.approx(10.0)


def test_labels():
    expected = ["CR", "PR", "SD", "PD", "NE", "iUPD", "iCPD"]
    assert list(labels(np.array([0, 1, 2, 3, 4, 5, 6]))) == expected


# ----------------------------------------------------------------------------- iRECIST


def test_irecist_confirmation_and_reset():
    sld = np.array(
        [
            [130, 140, 150, 150],  # +10 mm at the next scan -> iCPD
            [130, 131, 90, 90],  # no further growth, then shrinkage -> reset to SD
            [130, 131, 135, 135],  # slow growth: +5 mm over the iUPD value two scans later
            [130, 131, 133, 70],  # a new lesion at the deciding scan confirms
        ],
        dtype=float,
    )
    nl = np.array([np.inf, np.inf, np.inf, 150.0])
    codes = classify_visits_irecist(sld, np.full(4, 100.0), Q6W, nl)
    assert labels(codes).tolist() == [
        ["iUPD", "iCPD", "iCPD", "iCPD"],
        ["iUPD", "iUPD", "SD", "SD"],
        ["iUPD", "iUPD", "iCPD", "iCPD"],
        ["iUPD", "iUPD", "iUPD", "iCPD"],
    ]
    day, event = progression_day(codes, Q6W)
    assert list(day) == [42.0, 168.0, 42.0, 42.0]  # iRECIST dates progression at the iUPD
    assert list(event) == [True, False, True, True]
    day2, _ = progression_day(codes, Q6W, iupd_date=False)
    assert list(day2) == [84.0, 168.0, 126.0, 168.0]
    # RECIST 1.1 on the same data: progression at the first scan for all
    assert np.all(classify_visits(sld, np.full(4, 100.0), Q6W, nl)[:, 0] == R.PD)


def test_irecist_pseudoprogression_then_response():
    codes = classify_visits_irecist(np.array([[130.0, 60, 50, 50]]), np.array([100.0]), Q6W)
    assert labels(codes)[0].tolist() == ["iUPD", "PR", "PR", "PR"]
    bor, conf = best_overall_response(codes, Q6W)
    assert bor[0] == R.PR and conf[0]


def test_irecist_early_scan_does_not_decide():
    days = np.array([42.0, 56.0, 98.0, 140.0])  # second scan 14 days after iUPD
    codes = classify_visits_irecist(np.array([[130.0, 150, 155, 155]]), np.array([100.0]), days)
    assert labels(codes)[0].tolist() == ["iUPD", "iUPD", "iCPD", "iCPD"]


def test_irecist_new_lesion_iupd_resets_when_targets_shrink():
    codes = classify_visits_irecist(
        np.array([[80.0, 60, 60, 60]]), np.array([100.0]), Q6W, np.array([30.0])
    )
    assert labels(codes)[0].tolist() == ["iUPD", "PR", "PR", "PR"]


# ----------------------------------------------------------------------------- noise, inputs


def test_measurement_noise_properties():
    true = np.full((200_000,), 50.0)
    obs = add_measurement_noise(true, np.random.default_rng(1), cv=0.1, sd_mm=0.0)
    assert obs.mean() == pytest.approx(50.0, rel=0.005)
    assert obs.std() / obs.mean() == pytest.approx(0.1, rel=0.02)
    small = add_measurement_noise(np.array([0.0, 1.0, NAN] * 1000), 5)
    assert np.all(small[~np.isnan(small)] >= 0)
    assert np.isnan(small[2::3]).all()
    a = add_measurement_noise(np.arange(10.0), 42)
    b = add_measurement_noise(np.arange(10.0), np.random.default_rng(42))
    assert np.array_equal(a, b)
    with pytest.raises(ChemoioInputError) as err:
        add_measurement_noise(true, 0, cv=-0.1)
    assert err.value.field == "cv"


def test_input_errors_name_the_argument():
    with pytest.raises(ChemoioInputError) as err:
        classify_visits(np.ones((3, 4)), np.ones(2), Q6W)
    assert err.value.field == "baseline_mm"
    with pytest.raises(ChemoioInputError) as err:
        classify_visits(np.ones((3, 4)), np.ones(3), np.array([42.0, 84, 84, 126]))
    assert err.value.field == "visit_day"
    with pytest.raises(ChemoioInputError) as err:
        classify_visits(np.ones((3, 4)), np.ones(3), Q6W[:3])
    assert err.value.field == "visit_day"
    with pytest.raises(ChemoioInputError) as err:
        classify_visits(np.ones((3, 4)), np.ones(3), Q6W, new_lesion_day=np.ones(2))
    assert err.value.field == "new_lesion_day"
    with pytest.raises(ChemoioInputError) as err:
        best_overall_response(np.zeros((2, 4), dtype=np.int8), Q6W[:2])
    assert err.value.field == "visit_day"
