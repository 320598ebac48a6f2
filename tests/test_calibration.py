"""Calibration recovers a known truth; targets and the validation table are right."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from chemoio.calibration.fit import Calibration, write_parameter_set
from chemoio.calibration.targets import collect_targets, is_combination
from chemoio.calibration.validate import _rows_for, summarize
from chemoio.model.parameters import load_parameter_set
from chemoio.trial import load_spec
from chemoio.trial.runner import finish_trial, simulate_trial


def test_targets_split_fit_and_predicted_arms():
    targets = collect_targets(["keynote189", "imvigor211"])
    kn = {(t.arm, t.key): t.role for t in targets if t.spec == "keynote189" and t.subgroup == "ITT"}
    assert kn[("chemo", "orr_percent")] == "fit"
    assert kn[("pembro_chemo", "orr_percent")] == "predict"
    assert kn[("pembro_chemo vs chemo", "HR OS")] == "predict"
    atezo = [t for t in targets if t.spec == "imvigor211" and t.arm == "atezo"]
    assert atezo and all(t.role == "fit" for t in atezo)  # ICI monotherapy is fitted
    spec = load_spec("checkmate067")
    assert is_combination(spec.arm("nivo_ipi")) and not is_combination(spec.arm("nivo"))


def test_kill_scale_targets_fit_the_response_of_combinations_without_a_monotherapy_arm():
    """With ``fit_combinations`` the tumour-response targets of a combination arm are fitted
    where the tumour type has no ICI-monotherapy arm (non-squamous NSCLC here); its survival
    targets stay predictions, and urothelial combinations (pembrolizumab alone is an arm of
    KEYNOTE-361) stay predictions throughout."""
    targets = collect_targets(["keynote189", "keynote361"], fit_combinations=True)
    kn = {(t.arm, t.key): t.role for t in targets if t.spec == "keynote189" and t.subgroup == "ITT"}
    assert kn[("pembro_chemo", "orr_percent")] == "fit"
    assert kn[("pembro_chemo", "median_pfs_months")] == "fit"
    assert kn[("pembro_chemo vs chemo", "HR PFS")] == "fit"
    assert kn[("pembro_chemo", "os_12mo_percent")] == "predict"
    assert kn[("pembro_chemo vs chemo", "HR OS")] == "predict"
    uc = {(t.arm, t.key): t.role for t in targets if t.spec == "keynote361" and t.subgroup == "ITT"}
    assert uc[("pembro", "orr_percent")] == "fit"
    assert uc[("pembro_chemo", "orr_percent")] == "predict"
    assert uc[("pembro_chemo", "median_pfs_months")] == "predict"


def test_sigma_comes_from_the_published_ci():
    t = next(t for t in collect_targets(["keynote189"]) if t.arm == "chemo" and t.key == "median_pfs_months"
             and t.subgroup == "ITT")
    expected = (math.log(5.5) - math.log(4.7)) / (2 * 1.959964)
    assert t.sigma == pytest.approx(math.sqrt(expected**2 + 0.1**2), rel=1e-6)


def _synthetic_targets(truth: dict[str, float]):
    """Targets whose 'published' values are simulated with known parameters."""
    spec = load_spec("keynote361")
    base = [t for t in collect_targets(["keynote361"]) if t.role == "fit" and t.arm == "chemo"
            and t.key in ("orr_percent", "median_pfs_months", "median_os_months")]
    res = finish_trial(simulate_trial(spec, replicates=1, seed=11, parameters=truth, arms=["chemo"], n_scale=0.6))
    from chemoio.calibration.targets import simulated_values

    out = []
    for t in base:
        v = float(np.median(simulated_values(t, res)))
        out.append(dataclasses.replace(t, value=v, ci=(v * 0.9, v * 1.1)))
    return out


WEAK_IMMUNITY = {"max_tcell_tumour_ratio": 1e-4}  # few T cells at diagnosis: chemotherapy decides


def cal_start_cost(targets) -> float:
    """Stage-A cost at the prior (potency scale 1), the optimiser's starting point."""
    cal = Calibration(targets=targets, seed=11, n_scale=0.6, base=dict(WEAK_IMMUNITY),
                      free_a=["chemo_potency_scale"], free_b=[])
    r = cal.stage_a(np.array([0.0]))
    return 0.5 * float(r @ r)


def test_calibration_recovers_a_known_synthetic_truth():
    truth = {**WEAK_IMMUNITY, "chemo_potency_scale": 0.5, "survival.urothelial.weibull_scale_months": 20.0}
    targets = _synthetic_targets(truth)
    cal = Calibration(targets=targets, seed=11, n_scale=0.6, base=dict(WEAK_IMMUNITY),
                      free_a=["chemo_potency_scale"], free_b=["survival.urothelial.weibull_scale_months"])
    res = cal.run(budget_a=25, budget_b=40)
    assert res.parameters["chemo_potency_scale"] == pytest.approx(0.5, rel=0.15)
    assert res.parameters["survival.urothelial.weibull_scale_months"] == pytest.approx(20.0, rel=0.15)
    # the response rate is a count: a potency within a few % of the truth can still move it
    # by a few patients, so the residuals are checked at 2 (synthetic CIs are only +-10 %)
    assert np.all(np.abs(res.residuals.z) < 2.0)
    assert res.stage_a_cost < 0.05 * cal_start_cost(targets)


def test_parameter_set_round_trip(tmp_path):
    from chemoio.calibration.fit import CalibrationResult

    res = CalibrationResult({"chemo_potency_scale": 0.7, "survival.beta_size": 0.9, "growth_scale.urothelial": 1.2},
                            pd.DataFrame(), 1.0, 2.0, 10, 3.0, {"seed": 5, "specs": ["keynote361"]})
    path = write_parameter_set(res, tmp_path / "set.yaml", "chemoio calibrate --seed 5")
    loaded = load_parameter_set(path)
    assert loaded == {"chemo_potency_scale": 0.7, "growth_scale.urothelial": 1.2, "survival.beta_size": 0.9}
    text = path.read_text()
    assert "chemoio calibrate --seed 5" in text and "data_version" in text and "seed: 5" in text


def test_validation_rows_and_summary():
    spec = load_spec("keynote361")
    from chemoio.trial.runner import run_trial

    res = run_trial(spec, replicates=2, n_scale=0.3)
    rows = _rows_for("keynote361", res, collect_targets(["keynote361"]))
    assert {r["endpoint"] for r in rows} >= {"orr_percent", "median_pfs_months", "HR OS"}
    for r in rows:
        if r["inside"] is not None and np.isfinite(r["pub_low"]):
            assert r["inside"] == (r["pub_low"] <= r["sim_median"] <= r["pub_high"])
    import pandas as pd

    s = summarize(pd.DataFrame(rows), pd.DataFrame({"agrees": [True, False, None]}))
    assert s["calls_right"] == "1/2"


def test_non_immune_cell_loss_is_fitted_within_its_histology_range():
    """Spontaneous (non-immune) cell loss decides how much of a tumour's cell loss at
    diagnosis is left to T cells; it is a shared fitted parameter bounded by what
    apoptotic indices allow (0.003-0.15/day around the 0.03/day prior)."""
    cal = Calibration(["keynote590"])
    assert "spontaneous_death_per_day" in cal.free_a
    lo, hi = cal._bounds(["spontaneous_death_per_day"])
    assert np.exp(lo[0]) * 0.03 == pytest.approx(0.003)
    assert np.exp(hi[0]) * 0.03 == pytest.approx(0.15)


def test_melanoma_lines_have_their_own_growth_scale_and_ctla4_terms_are_free():
    """KEYNOTE-002 (ipilimumab-refractory) and CheckMate 067 (untreated) are different
    populations: each tumour type gets its own growth scale; the anti-CTLA-4 priming gain
    and Treg ADCC are free shared parameters (informed by the ipilimumab arm)."""
    cal = Calibration(["checkmate067", "keynote002"])
    assert {"growth_scale.melanoma", "growth_scale.melanoma_2l"} <= set(cal.free_a)
    assert {"ctla4_priming_gain", "treg_adcc_per_day", "stroma_remodel_per_day"} <= set(cal.free_a)
    assert cal.tumors == ["melanoma", "melanoma_2l"]
    # the between-patient spreads are shared (one exponent each, not one per tumour type)
    # and start at the population files' sigmas (exponent 1)
    spreads = [n for n in cal.free_a if n.startswith("spread.")]
    assert spreads == ["spread.growth_per_day", "spread.chemo_sensitivity"]
    x0 = cal._start(cal.free_a)
    assert all(x0[cal.free_a.index(n)] == 0.0 for n in spreads)


def test_survival_scale_is_free_only_where_a_survival_target_informs_it():
    # CheckMate 067 and KEYNOTE-002 publish no fitted OS number in the calibration file:
    # the melanoma survival scales stay at their prior; IMvigor211 (OS targets) frees its own
    cal = Calibration(["checkmate067", "keynote002", "imvigor211"])
    assert not any(t.stage == "survival" for t in cal.targets if t.spec in ("checkmate067", "keynote002"))
    assert "survival.urothelial_2l.weibull_scale_months" in cal.free_b
    assert not any(n.startswith("survival.melanoma") for n in cal.free_b)
    assert "survival.beta_size" in cal.free_b


def test_efs_events_enter_both_stages_and_other_survival_targets_only_stage_b(monkeypatch):
    """An EFS event is a progression before surgery (tumour trajectory) or a recurrence or
    death after it (survival link), so the EFS target is fitted in stage A and in stage B;
    OS targets stay in stage B and response targets in stage A."""
    import numpy as np

    import chemoio.calibration.fit as fit

    cal = Calibration(["keynote522", "imvigor211"])
    efs = [t for t in cal.targets if t.key == "efs_event_percent"]
    assert efs and all(t.in_stage("trajectory") and t.in_stage("survival") for t in efs)
    assert any(t.key == "median_os_months" for t in cal.targets)
    assert any(t.key == "pcr_percent" for t in cal.targets)
    # the residual vector of each stage: which targets it reads (each simulated exactly)
    seen: list[str] = []
    monkeypatch.setattr(fit, "simulated_values", lambda t, _res: seen.append(t.key) or np.array([t.value]))
    by_stage = {}
    for stage in ("trajectory", "survival"):
        seen.clear()
        assert np.allclose(cal._residuals(dict.fromkeys(cal.specs), stage), 0.0)
        by_stage[stage] = set(seen)
    assert "efs_event_percent" in by_stage["trajectory"] & by_stage["survival"]
    assert "pcr_percent" in by_stage["trajectory"] - by_stage["survival"]
    assert "median_os_months" in by_stage["survival"] - by_stage["trajectory"]


def test_split_rows_keep_their_calibration_role_and_are_marked_held_out(monkeypatch):
    """Leave-one-out mechanics, with the (slow) refit replaced by the shipped parameters:
    every row of trial k comes from a run without k, is marked held out and keeps its role."""
    import chemoio.calibration.fit as fit
    import chemoio.calibration.validate as val

    excluded = []

    def fake_run(self, budget_a=0, budget_b=0):
        excluded.append(tuple(sorted(set(self.specs))))
        assert self.replicates == 2  # --fit-replicates reaches every refit
        return fit.CalibrationResult({}, None, 0.0, 0.0, 0, 0.0)

    monkeypatch.setattr(val, "list_specs", lambda: ["imvigor211", "keynote361"])
    monkeypatch.setattr(fit.Calibration, "run", fake_run)
    res = val.validate_split(replicates=1, fit_replicates=2)
    assert len(excluded) == 2
    assert "imvigor211" not in excluded[0] and "keynote361" in excluded[0]
    assert "keynote361" not in excluded[1] and "imvigor211" in excluded[1]
    assert res.table.held_out.all() and set(res.table.role) == {"fit", "predict"}
    assert set(res.table.trial) == {"IMvigor211", "KEYNOTE-361"}
    assert res.summary["inside_fit"] != "0/0"


def test_chemo_sensitivity_scale_is_free_and_penalised_only_where_a_chemo_arm_has_a_response_target():
    """CheckMate 067 has no chemotherapy arm, so melanoma keeps its population's chemo
    sensitivity; KEYNOTE-002 (chemotherapy control with ORR and PFS targets) frees the
    melanoma_2l scale, which starts at 1 and carries a log-normal prior penalty like the
    drug-class multipliers."""
    from chemoio.calibration.fit import CLASS_PRIOR_SD, SENSITIVITY_PRIOR_SD

    cal = Calibration(["checkmate067", "keynote002"])
    sens = [n for n in cal.free_a if n.startswith("chemo_sensitivity_scale.")]
    assert sens == ["chemo_sensitivity_scale.melanoma_2l"]
    x = cal._start(cal.free_a)
    assert x[cal.free_a.index(sens[0])] == 0.0
    # a start set's scale is read back (x = ln(scale / prior 1))
    started = Calibration(["keynote002"], base={"chemo_sensitivity_scale.melanoma_2l": 0.5})
    assert started._start(started.free_a)[started.free_a.index(sens[0])] == pytest.approx(np.log(0.5))
    x[cal.free_a.index(sens[0])] = np.log(2.0)
    classes = [n for n in cal.free_a if n.startswith("chemo_class.")]
    assert classes  # dacarbazine / carboplatin-paclitaxel in the KEYNOTE-002 control arm
    x[cal.free_a.index(classes[0])] = np.log(0.5)
    pen = cal._penalty(cal.free_a, x)
    assert pen.size == len(classes) + 1
    assert sorted(np.round(pen, 12)) == sorted(np.round([np.log(0.5) / CLASS_PRIOR_SD,
                                                          np.log(2.0) / SENSITIVITY_PRIOR_SD]
                                                         + [0.0] * (len(classes) - 1), 12))
    # the decoded point is a parameter-set entry the population layer reads
    assert cal._decode(cal.free_a, x)["chemo_sensitivity_scale.melanoma_2l"] == pytest.approx(2.0)


def test_tumour_types_without_ici_monotherapy_get_a_penalised_kill_scale():
    """Of the shipped calibration trials, non-squamous NSCLC, early TNBC and oesophageal
    cancer have checkpoint inhibitors only in combination with chemotherapy (KEYNOTE-048's
    pembrolizumab arm counts for head and neck through its subgroups and comparisons), so the
    opt-in kill-scale calibration frees ``kill_scale.<tumor>`` for them only, with a
    log-normal prior penalty of SD 1; the default calibration has none."""
    from chemoio.calibration.fit import KILL_SCALE_PRIOR_SD
    from chemoio.calibration.targets import tumors_without_ici_monotherapy

    assert tumors_without_ici_monotherapy() == ["esophageal", "nsclc_nonsquamous", "tnbc_early"]
    # a tumour type is judged within the specs given: KEYNOTE-361 alone has pembrolizumab alone
    assert tumors_without_ici_monotherapy(["keynote361", "keynote590"]) == ["esophageal"]
    default = Calibration(["keynote590", "keynote361"])
    assert not [n for n in default.free_a if n.startswith("kill_scale.")]
    assert not any(t.spec == "keynote590" and "pembro_chemo" in t.arm for t in default.targets)
    cal = Calibration(["keynote590", "keynote361"], kill_scales=True)
    kill = [n for n in cal.free_a if n.startswith("kill_scale.")]
    assert kill == ["kill_scale.esophageal"]
    x = cal._start(cal.free_a)
    assert x[cal.free_a.index(kill[0])] == 0.0
    x[cal.free_a.index(kill[0])] = np.log(0.25)
    pen = cal._penalty(cal.free_a, x)
    assert np.log(0.25) / KILL_SCALE_PRIOR_SD in list(pen)
    assert cal._decode(cal.free_a, x)["kill_scale.esophageal"] == pytest.approx(0.25)
    lo, hi = cal._bounds(cal.free_a)
    j = cal.free_a.index(kill[0])
    assert (math.exp(lo[j]), math.exp(hi[j])) == pytest.approx((0.05, 5.0))
    # the fitted combination targets of KEYNOTE-590 are its tumour-response ones only
    fitted = {(t.arm, t.key) for t in cal.targets if t.spec == "keynote590"}
    assert ("pembro_chemo", "orr_percent") in fitted and ("pembro_chemo", "median_os_months") not in fitted
    assert not any(t.spec == "keynote361" and "pembro_chemo" in t.arm for t in cal.targets)


def test_combination_survival_targets_enter_both_stages_only_when_asked():
    """``--combination-survival`` (with ``--kill-scales``) fits the survival targets of the
    combination arms of a tumour type without an ICI-monotherapy arm, in stage A as well as
    stage B; without it they stay predictions, and other tumour types' combinations stay
    predictions either way."""
    plain = collect_targets(["keynote189", "keynote361"], fit_combinations=True)
    both = collect_targets(["keynote189", "keynote361"], fit_combinations=True, combination_survival=True)
    key = ("pembro_chemo vs chemo", "ITT", "HR OS")

    def pick(targets, spec):
        return {(t.arm, t.subgroup, t.key): t for t in targets if t.spec == spec}

    assert pick(plain, "keynote189")[key].role == "predict"
    hr_os = pick(both, "keynote189")[key]
    assert hr_os.role == "fit" and hr_os.in_stage("trajectory") and hr_os.in_stage("survival")
    orr = pick(both, "keynote189")[("pembro_chemo", "ITT", "orr_percent")]
    assert orr.in_stage("trajectory") and not orr.in_stage("survival")
    control_os = pick(both, "keynote189")[("chemo", "ITT", "median_os_months")]
    assert control_os.role == "fit" and not control_os.in_stage("trajectory")
    assert pick(both, "keynote361")[key].role == "predict"
    # the calibration passes the switch on only together with the kill scales
    assert not any(t.both_stages for t in Calibration(["keynote189"], combination_survival=True).targets)
    assert any(t.both_stages for t in Calibration(["keynote189"], kill_scales=True, combination_survival=True).targets)


def test_validation_labels_follow_how_the_set_was_calibrated(tmp_path):
    """A parameter set with kill scales was fitted to its tumour types' combination responses,
    so ``validate`` labels those numbers ``fit``; the settings block of a set written with
    ``--combination-survival`` makes the CLI label their survival numbers ``fit`` too."""
    from chemoio.calibration.fit import CalibrationResult
    from chemoio.calibration.validate import validate
    from chemoio.interfaces.cli import _parameter_set_settings
    from chemoio.model.parameters import shipped_parameter_set

    shipped = shipped_parameter_set()
    plain = validate(shipped, replicates=1, specs=["keynote590"]).table
    scaled = validate({**shipped, "kill_scale.esophageal": 0.5}, replicates=1, specs=["keynote590"]).table

    def role(table, arm, endpoint):
        return table[(table.arm == arm) & (table.endpoint == endpoint) & (table.subgroup == "ITT")].role.item()

    assert role(plain, "pembro_chemo", "orr_percent") == "predict"
    assert role(scaled, "pembro_chemo", "orr_percent") == "fit"
    assert role(scaled, "pembro_chemo", "median_os_months") == "predict"
    res = CalibrationResult({"kill_scale.esophageal": 0.5}, pd.DataFrame(), 1.0, 2.0, 10, 3.0,
                            {"seed": 5, "specs": ["keynote590"], "kill_scales": True,
                             "combination_survival": True})
    path = write_parameter_set(res, tmp_path / "set.yaml", "chemoio calibrate --kill-scales --combination-survival")
    assert _parameter_set_settings(path)["combination_survival"] is True
    assert _parameter_set_settings(tmp_path / "missing.yaml") == {}
    both = validate({**shipped, "kill_scale.esophageal": 0.5}, replicates=1, specs=["keynote590"],
                    combination_survival=True).table
    assert role(both, "pembro_chemo", "median_os_months") == "fit"
    # a set written by ``--lymphotoxicity`` says so, and its combination responses are fitted
    res = dataclasses.replace(res, settings={"seed": 5, "specs": ["keynote590"], "lymphotoxicity": True})
    path = write_parameter_set(res, tmp_path / "lympho.yaml", "chemoio calibrate --lymphotoxicity")
    assert _parameter_set_settings(path)["lymphotoxicity"] is True
    lympho = validate(shipped, replicates=1, specs=["keynote590"], lymphotoxicity=True).table
    assert role(lympho, "pembro_chemo", "orr_percent") == "fit"
    assert role(lympho, "pembro_chemo", "median_os_months") == "predict"


def test_lymphotoxicity_calibration_fits_every_chemo_ici_arms_response():
    """``fit_chemo_ici`` (``chemoio calibrate --lymphotoxicity``) fits the tumour-response
    targets of every chemotherapy + ICI arm, whatever the tumour type, and keeps their survival
    targets and every two-ICI arm (CheckMate 067 nivolumab + ipilimumab) predictions."""
    from chemoio.calibration.targets import is_chemo_ici

    targets = collect_targets(["keynote361", "checkmate067"], fit_chemo_ici=True)
    uc = {(t.arm, t.key): t.role for t in targets if t.spec == "keynote361" and t.subgroup == "ITT"}
    assert uc[("pembro_chemo", "orr_percent")] == "fit"
    assert uc[("pembro_chemo", "median_pfs_months")] == "fit"
    assert uc[("pembro_chemo vs chemo", "HR PFS")] == "fit"
    assert uc[("pembro_chemo", "median_os_months")] == "predict"
    assert uc[("pembro_chemo vs chemo", "HR OS")] == "predict"
    mel = [t for t in targets if t.spec == "checkmate067" and "nivo_ipi" in t.arm]
    assert mel and all(t.role == "predict" for t in mel)
    spec = load_spec("checkmate067")
    assert not is_chemo_ici(spec.arm("nivo_ipi")) and is_combination(spec.arm("nivo_ipi"))
    assert is_chemo_ici(load_spec("keynote361").arm("pembro_chemo"))
    plain = collect_targets(["keynote361"])
    assert all(t.role == "predict" for t in plain if "pembro_chemo" in t.arm)


def test_lymphotoxicity_is_free_and_penalised_only_when_asked():
    """The opt-in frees the shared intratumoural lymphotoxicity (bounds 0.1-100 x its prior,
    log-normal penalty of SD 1), fits the combination arms' response with it, and the set
    records the setting; kill scales stay reserved for tumour types without an
    ICI-monotherapy arm even when both options are on."""
    from chemoio.calibration.fit import LYMPHOTOX_FREE, LYMPHOTOX_PRIOR_SD
    from chemoio.model.parameters import default_vector, index_of

    default = Calibration(["keynote361"])
    assert LYMPHOTOX_FREE not in default.free_a
    cal = Calibration(["keynote361"], lymphotoxicity=True)
    assert LYMPHOTOX_FREE in cal.free_a
    assert any(t.arm == "pembro_chemo" and t.key == "orr_percent" for t in cal.targets)
    j = cal.free_a.index(LYMPHOTOX_FREE)
    prior = float(default_vector()[index_of(LYMPHOTOX_FREE)])
    lo, hi = cal._bounds(cal.free_a)
    assert (math.exp(lo[j]), math.exp(hi[j])) == pytest.approx((0.1, 100.0))
    x = cal._start(cal.free_a)
    assert x[j] == 0.0
    x[j] = np.log(10.0)
    assert np.log(10.0) / LYMPHOTOX_PRIOR_SD in list(cal._penalty(cal.free_a, x))
    assert cal._decode(cal.free_a, x)[LYMPHOTOX_FREE] == pytest.approx(10 * prior)
    started = Calibration(["keynote361"], lymphotoxicity=True, base={LYMPHOTOX_FREE: 3 * prior})
    assert started._start(started.free_a)[j] == pytest.approx(np.log(3.0))
    both = Calibration(["keynote361", "keynote590"], lymphotoxicity=True, kill_scales=True)
    assert [n for n in both.free_a if n.startswith("kill_scale.")] == ["kill_scale.esophageal"]


def test_complete_response_and_response_duration_are_stage_a_targets_with_their_arm_roles():
    """CR and DoR describe the tumour trajectory (stage A); a chemotherapy or ICI-alone arm's
    values are fitted and a combination arm's are predicted, as for ORR."""
    targets = collect_targets(["keynote361", "keynote590", "imvigor211"])
    got = {(t.spec, t.arm, t.subgroup, t.key): t for t in targets if t.key in ("cr_percent", "median_dor_months")}
    for key, role in [(("keynote361", "chemo", "ITT", "median_dor_months"), "fit"),
                      (("keynote361", "pembro", "ITT", "median_dor_months"), "fit"),
                      (("keynote361", "pembro_chemo", "ITT", "median_dor_months"), "predict"),
                      (("keynote361", "chemo", "ITT", "cr_percent"), "fit"),
                      (("keynote590", "chemo", "ITT", "cr_percent"), "fit"),
                      (("keynote590", "pembro_chemo", "ITT", "median_dor_months"), "predict"),
                      (("imvigor211", "atezo", "ic2_3", "median_dor_months"), "fit")]:
        assert got[key].role == role, key
        assert got[key].in_stage("trajectory") and not got[key].in_stage("survival"), key
    assert got[("keynote361", "chemo", "ITT", "median_dor_months")].transform == "log"
    assert got[("keynote361", "chemo", "ITT", "cr_percent")].transform == "logit"


def test_encounter_limited_kill_is_free_with_its_own_prior_only_when_asked(tmp_path):
    """The opt-in frees n_50 (off, 0, in the model's defaults) around its own prior 0.003 with
    bounds 0.1-10 x and a log-normal penalty of SD 1, starts from the start set's value when it
    has one, and the written set records the setting."""
    from chemoio.calibration.fit import ENCOUNTER_FREE, ENCOUNTER_PRIOR, ENCOUNTER_PRIOR_SD

    assert ENCOUNTER_FREE not in Calibration(["keynote361"]).free_a
    cal = Calibration(["keynote361"], encounter_kill=True)
    j = cal.free_a.index(ENCOUNTER_FREE)
    lo, hi = cal._bounds(cal.free_a)
    assert (math.exp(lo[j]), math.exp(hi[j])) == pytest.approx((0.1, 10.0))
    x = cal._start(cal.free_a)
    assert x[j] == 0.0 and cal._decode(cal.free_a, x)[ENCOUNTER_FREE] == pytest.approx(ENCOUNTER_PRIOR)
    x[j] = np.log(4.0)
    assert np.log(4.0) / ENCOUNTER_PRIOR_SD in list(cal._penalty(cal.free_a, x))
    started = Calibration(["keynote361"], encounter_kill=True, base={ENCOUNTER_FREE: 0.006})
    assert started._start(started.free_a)[j] == pytest.approx(np.log(2.0))
    from chemoio.calibration.fit import CalibrationResult
    from chemoio.interfaces.cli import _parameter_set_settings

    res = CalibrationResult({ENCOUNTER_FREE: 0.004}, pd.DataFrame(), 1.0, 2.0, 10, 3.0,
                            {"seed": 5, "specs": ["keynote361"], "encounter_kill": True})
    path = write_parameter_set(res, tmp_path / "set.yaml", "chemoio calibrate --encounter-kill")
    assert load_parameter_set(path)[ENCOUNTER_FREE] == pytest.approx(0.004)

    assert _parameter_set_settings(path)["encounter_kill"] is True


def test_a_start_set_with_encounter_kill_off_starts_it_at_its_prior_and_other_zeros_are_refused():
    """n_50 = 0 is the model's "off" (the default of every set made without the option): the
    fit then starts from the option's own prior. Any other fitted parameter at or below 0 in
    the start set is an error naming --start, not a math-domain traceback."""
    from chemoio.calibration.fit import ENCOUNTER_FREE
    from chemoio.errors import ChemoioInputError

    cal = Calibration(["keynote361"], encounter_kill=True, base={ENCOUNTER_FREE: 0.0})
    x = cal._start(cal.free_a)
    assert x[cal.free_a.index(ENCOUNTER_FREE)] == 0.0
    bad = Calibration(["keynote361"], base={"chemo_potency_scale": 0.0})
    with pytest.raises(ChemoioInputError) as e:
        bad._start(bad.free_a)
    assert e.value.field == "--start" and "chemo_potency_scale" in e.value.message


@pytest.mark.parametrize("option, key", [("--encounter-kill", "encounter_kill"), ("--memory", "memory")])
def test_validate_split_passes_the_calibration_options_on(monkeypatch, tmp_path, option, key):
    """`chemoio validate --split --encounter-kill` (or `--memory`) calibrates its folds as the
    shipped command does."""
    from typer.testing import CliRunner

    import chemoio.calibration.validate as v
    from chemoio.interfaces.cli import app

    seen = {}

    def fake_split(**kw):
        seen.update(kw)
        return v.ValidationResult(pd.DataFrame(), pd.DataFrame(), {})

    monkeypatch.setattr(v, "validate_split", fake_split)
    CliRunner().invoke(app, ["validate", "--split", option, "-R", "1", "--out", str(tmp_path)])
    assert seen.get(key) is True
    seen.clear()
    CliRunner().invoke(app, ["validate", "--split", "-R", "1", "--out", str(tmp_path)])
    assert seen.get(key) is False


def test_memory_option_switches_the_compartment_on_and_frees_its_recall_threshold():
    """`--memory` sets memory_fraction to its literature share (kept from a start set that
    has one), frees the recall threshold around its prior with bounds 0.01-100 x and a
    log-normal penalty of SD 1.5, and is passed on by `validate --split --memory`."""
    from chemoio.calibration.fit import (MEMORY_FRACTION, MEMORY_FREE, MEMORY_PRIOR,
                                         MEMORY_PRIOR_SD)

    off = Calibration(["keynote361"])
    assert MEMORY_FREE not in off.free_a and "memory_fraction" not in off.base
    cal = Calibration(["keynote361"], memory=True)
    assert cal.base["memory_fraction"] == MEMORY_FRACTION
    j = cal.free_a.index(MEMORY_FREE)
    lo, hi = cal._bounds(cal.free_a)
    assert (math.exp(lo[j]), math.exp(hi[j])) == pytest.approx((0.01, 100.0))
    x = cal._start(cal.free_a)
    assert cal._decode(cal.free_a, x)[MEMORY_FREE] == pytest.approx(MEMORY_PRIOR)
    x[j] = np.log(9.0)
    assert np.log(9.0) / MEMORY_PRIOR_SD in list(cal._penalty(cal.free_a, x))
    kept = Calibration(["keynote361"], memory=True, base={"memory_fraction": 0.08})
    assert kept.base["memory_fraction"] == 0.08
