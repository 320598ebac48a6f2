"""Scan visit windows (``scan_window_days``) and the arm statistics added with them
(6- and 9-month landmarks, ``cr_percent``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from chemoio.errors import ChemoioInputError
from helpers import error_of
from helpers import raw_spec as raw
from chemoio.trial import load_spec, spec_from_dict
from chemoio.trial.runner import (
    _at_actual_visit,
    _seen_new_lesion_day,
    finish_trial,
    run_trial,
    simulate_trial,
)
from chemoio.trial.spec import DEFAULT_SCAN_WINDOW_DAYS, check_scan_window

RUN = dict(replicates=2, n_scale=0.4, arms=["chemo"], seed=3)


def with_window(spec, w: float):
    return spec.model_copy(update={"scan_window_days": w})


@pytest.fixture(scope="module")
def kn189():
    return load_spec("keynote189")


@pytest.fixture(scope="module")
def runs(kn189):
    return {w: run_trial(with_window(kn189, w), **RUN) for w in (0.0, 7.0)}




def _nearest_visit_distance(days: np.ndarray, visit_day: np.ndarray) -> np.ndarray:
    return np.min(np.abs(days[:, None] - visit_day[None, :]), axis=1)


# -- the spec field ------------------------------------------------------------------------------


def test_default_window_is_seven_days_and_round_trips(kn189) -> None:
    assert DEFAULT_SCAN_WINDOW_DAYS == 7.0
    assert kn189.scan_window_days == 7.0
    d = raw()
    d["scan_window_days"] = 3.5
    spec = spec_from_dict(d)
    assert spec.scan_window_days == 3.5
    assert spec_from_dict(yaml.safe_load(spec.to_yaml())).scan_window_days == 3.5
    assert "scan_window_days" in spec_from_dict(raw()).model_json_schema()["properties"]


@pytest.mark.parametrize("w", [-1, -0.5, float("nan"), float("inf")])
def test_negative_or_non_finite_window_names_the_field(w: float) -> None:
    d = raw()
    d["scan_window_days"] = w
    err = error_of(spec_from_dict, d)
    assert err.field == "scan_window_days"
    assert ">= 0" in err.message


def test_window_that_could_reorder_visits_is_an_error() -> None:
    d = raw()  # q6w to w18 then q9w: smallest gap 42 days
    d["scan_window_days"] = 21
    err = error_of(spec_from_dict, d)
    assert err.field == "scan_window_days"
    assert "42" in err.message and "swap" in err.message and "21" in (err.hint or "")
    d["scan_window_days"] = 20.9
    assert spec_from_dict(d).scan_window_days == 20.9
    d["scan_schedule"] = "q2w"
    d["scan_window_days"] = 7
    assert error_of(spec_from_dict, d).field == "scan_window_days"
    d["scan_window_days"] = 0  # no window: any schedule
    assert spec_from_dict(d).scan_window_days == 0


def test_window_may_not_reach_randomisation() -> None:
    check_scan_window(6.9, np.array([7.0]))
    err = error_of(check_scan_window, 7.0, np.array([7.0]))
    assert err.field == "scan_window_days" and "randomisation" in err.message


def test_runner_rechecks_an_unvalidated_copy(kn189) -> None:
    bad = with_window(kn189, 30.0)  # model_copy does not validate
    assert error_of(simulate_trial, bad, **RUN).field == "scan_window_days"
    assert error_of(simulate_trial, with_window(kn189, -1.0), **RUN).field == "scan_window_days"


# -- helpers -------------------------------------------------------------------------------------


def test_at_actual_visit_maps_only_scheduled_days() -> None:
    visit = np.array([42.0, 84.0, 126.0])
    actual = visit[None, :] + np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0], [0.5, 0.5, 0.5], [1, 1, 1]])
    day = np.array([84.0, 126.0, 0.0, np.inf])
    out = _at_actual_visit(day, visit, actual)
    assert out.tolist() == [82.0, 120.0, 0.0, np.inf]
    # a non-visit day (e.g. death) is kept
    assert _at_actual_visit(np.array([100.0]), visit, actual[:1]).tolist() == [100.0]


def test_new_lesion_is_seen_at_the_first_actual_scan_after_it() -> None:
    visit = np.array([42.0, 84.0, 126.0])
    actual = np.array([[45.0, 80.0, 130.0], [45.0, 80.0, 130.0], [45.0, 80.0, 130.0], [45.0, 80.0, 130.0]])
    nl = np.array([82.0, 79.0, np.inf, np.nan])
    # lesion at day 82: the week-12 scan happened on day 80, before it -> seen at week 18
    assert _seen_new_lesion_day(nl, visit, actual).tolist() == [126.0, 84.0, np.inf, np.inf]
    # on schedule the classification is unchanged
    on = np.broadcast_to(visit, (4, 3))
    seen = _seen_new_lesion_day(nl, visit, on)
    for j, d in enumerate(visit):
        assert np.array_equal(seen <= d, np.nan_to_num(nl, nan=np.inf) <= d), j


# -- trial runs ----------------------------------------------------------------------------------


def test_window_zero_dates_every_event_on_a_scheduled_scan(runs) -> None:
    res = runs[0.0]
    p = res.patients
    visit = res.visit_day
    assert res.settings["scan_window_days"] == 0.0
    assert np.array_equal(res.visit_actual_day, np.broadcast_to(visit, res.visit_actual_day.shape))
    prog = p.progression_day.notna().to_numpy()
    assert prog.any()
    assert np.isin(p.progression_day[prog], visit).all()
    # PFS: a scheduled scan day (progression or last adequate scan), day 0, or death / OS censoring
    pfs = p.pfs_day.to_numpy()
    ok = np.isin(pfs, visit) | (pfs == 0) | (pfs == p.os_day.to_numpy())
    assert ok.all()


def test_window_moves_event_dates_within_the_window(runs) -> None:
    res, w = runs[7.0], 7.0
    p = res.patients
    visit = res.visit_day
    assert res.settings["scan_window_days"] == w
    off = res.visit_actual_day - visit[None, :]
    assert np.all(np.abs(off) <= w) and off.std() > 1.0
    assert np.all(np.diff(res.visit_actual_day, axis=1) > 0)  # visits keep their order
    prog = p.progression_day.dropna().to_numpy()
    assert prog.size > 10
    assert np.all(_nearest_visit_distance(prog, visit) <= w + 1e-9)
    assert not np.isin(prog, visit).all()
    # progression dates are the patients' own actual scan days
    rows = np.flatnonzero(p.progression_day.notna().to_numpy())
    assert np.all(np.any(np.isclose(res.visit_actual_day[rows], prog[:, None], rtol=0, atol=1e-9), axis=1))
    # PFS events by progression, and censoring at the last scan, lie within the window;
    # PFS never exceeds OS
    pfs = p.pfs_day.to_numpy()
    by_scan = (pfs != p.os_day.to_numpy()) & (pfs > 0)
    assert np.all(_nearest_visit_distance(pfs[by_scan], visit) <= w + 1e-9)
    assert np.all(pfs <= p.os_day.to_numpy() + 1e-9)


def test_window_leaves_the_other_random_draws_alone(runs) -> None:
    a, b = runs[0.0].patients, runs[7.0].patients
    for col in ("arm", "entry_day", "censor_day", "age", "pdl1_tps", "regimen_choice"):
        pd.testing.assert_series_equal(a[col], b[col])
    # the measured sums of diameters are the same scans (read on the scheduled days)
    va, vb = runs[0.0].visit_sld, runs[7.0].visit_sld
    both = np.isfinite(va) & np.isfinite(vb)
    assert both.any() and np.array_equal(va[both], vb[both])


def test_same_seed_same_dates_other_seed_differs(kn189, runs) -> None:
    again = run_trial(with_window(kn189, 7.0), **RUN)
    pd.testing.assert_frame_equal(again.patients, runs[7.0].patients)
    assert np.array_equal(again.visit_actual_day, runs[7.0].visit_actual_day)
    other = run_trial(with_window(kn189, 7.0), **{**RUN, "seed": 4})
    assert not np.allclose(other.visit_actual_day, again.visit_actual_day)


def test_finish_trial_keeps_the_offsets_of_the_state(kn189) -> None:
    state = simulate_trial(with_window(kn189, 5.0), **RUN)
    assert state["visit_offset"].shape == (state["total"], state["visit_day"].size)
    assert np.abs(state["visit_offset"]).max() <= 5.0
    a, b = finish_trial(state), finish_trial(state, survival={})
    pd.testing.assert_frame_equal(a.patients, b.patients)


# -- arm statistics ------------------------------------------------------------------------------


def test_landmarks_and_complete_response_rate(runs) -> None:
    res = runs[7.0]
    st = res.arm_stats
    keys = set(st.statistic)
    for ep in ("pfs", "os"):
        for mo in (6, 9, 12, 24):
            assert f"{ep}_{mo}mo_percent" in keys
    assert "cr_percent" in keys
    p = res.patients
    assert (p.complete_responder == (p.bor == "CR")).all()
    assert not (p.complete_responder & ~p.responder).any()
    for (rep, arm), g in p.groupby(["replicate", "arm"]):
        sel = st[(st.replicate == rep) & (st.arm == arm) & (st.subgroup == "ITT")].set_index("statistic").value
        assert sel["cr_percent"] == pytest.approx(100 * g.complete_responder.mean())
        assert sel["cr_percent"] <= sel["orr_percent"]
        # a landmark survival rate never rises with time
        assert sel["pfs_6mo_percent"] >= sel["pfs_9mo_percent"] >= sel["pfs_12mo_percent"]
