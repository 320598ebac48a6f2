"""Mechanism experiments (chemoio.experiments and `chemoio experiment ...`): small runs that
check what each experiment changes and what it reports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from chemoio import experiments as ex
from chemoio.errors import ChemoioInputError
from chemoio.regimens import Regimen

TINY = dict(replicates=1, n_scale=0.1, seed=3)


def _first_dose_day(regimen: Regimen, drugs: set[str]) -> float:
    table = regimen.dose_table(weight_kg=75, bsa_m2=1.8, gfr_mL_min=90, horizon_days=400)
    mask = np.isin(np.array(table.drugs)[table.slot], list(drugs))
    return float(table.time_day[mask].min())


# ----------------------------------------------------------------------------- icd


def test_icd_one_row_per_agent_and_icd_raises_antigen_at_equal_kill():
    from chemoio.drugs import get_drug

    res = ex.icd("keynote189", agents="etoposide,doxorubicin", equal_kill=True, n_mechanism=40, **TINY)
    t = res.table
    assert list(t.agent) == ["doxorubicin", "etoposide"]  # sorted by ICD fraction, highest first
    for _, r in t.iterrows():
        assert r.icd_fraction == get_drug(r.agent).immunomodulation.icd_fraction.value
        assert np.isfinite(r.hr_os) and np.isfinite(r.hr_pfs) and np.isfinite(r.orr_diff)
        assert "pembrolizumab" in r.combo_regimen and "pembrolizumab" not in r.chemo_regimen
        assert r.agent in r.combo_regimen and r.agent in r.chemo_regimen
    dox, eto = t.iloc[0], t.iloc[1]
    # equal kill: the doses were scaled so the chemotherapy log-kill matches ...
    assert dox.chemo_logkill == pytest.approx(eto.chemo_logkill, rel=0.08)
    # ... and the high-ICD backbone releases more antigen for the same kill: its extra antigen
    # over the untreated baseline (fold - 1) is well above the low-ICD backbone's
    assert dox.antigen_fold_chemo - 1.0 > 1.5 * (eto.antigen_fold_chemo - 1.0)
    assert dox.antigen_per_kill > 1.5 * eto.antigen_per_kill


def test_backbone_swap_keeps_the_checkpoint_inhibitor_and_replaces_all_chemo():
    reg = Regimen.parse("pembrolizumab 200 mg q3w x35; pemetrexed 500 mg/m2 q3w; carboplatin AUC5 q3w x4")
    new = ex.swap_backbone(reg, ex.backbone_regimen("oxaliplatin", cycles=4))
    assert new.to_text() == "pembrolizumab 200 mg q3w x35; oxaliplatin 130 mg/m2 q3w x4"
    for agent, entry in ex.list_backbones().items():
        assert entry["source"], agent  # every dose carries a source
        assert ex.backbone_regimen(agent, cycles=2).drugs == [agent]


# ----------------------------------------------------------------------------- sequencing


def test_sequencing_rows_per_offset_and_offsets_move_the_doses():
    res = ex.sequencing("keynote189", offsets="-14,0,21", n_mechanism=20, **TINY)
    t = res.table
    assert list(t.offset_days) == [-14, 0, 21]
    assert list(t.order) == ["chemo first", "together", "ICI first"]
    assert list(t.chemo_start_day) == [1, 1, 22] and list(t.ici_start_day) == [15, 1, 1]
    chemo, ici = {"pemetrexed", "carboplatin", "cisplatin"}, {"pembrolizumab"}
    for label, (want_chemo, want_ici) in {"-14": (0.0, 14.0), "0": (0.0, 0.0), "+21": (21.0, 0.0)}.items():
        spec = res.specs[label]
        for _, reg in spec.arm("pembro_chemo").mixture():
            assert _first_dose_day(reg, chemo) == want_chemo
            assert _first_dose_day(reg, ici) == want_ici
        # the control arm stays the trial's chemotherapy as designed
        for _, reg in spec.arm("chemo").mixture():
            assert _first_dose_day(reg, chemo) == 0.0
    assert np.isfinite(t.hr_os).all() and np.isfinite(t.hr_pfs).all()


def test_shift_regimen_moves_later_phases_too():
    reg = Regimen.parse("pembrolizumab 200 mg q3w x8; paclitaxel 80 mg/m2 qw x12; "
                        "doxorubicin 60 mg/m2 q3w x4 start w13; pembrolizumab 200 mg q3w x9 start w29")
    s = ex.shift_regimen(reg, 7)
    assert [i.start_day for i in s.items] == [1, 8, 92, 197]
    s = ex.shift_regimen(reg, -7)
    assert [i.start_day for i in s.items] == [8, 1, 85, 204]


# ----------------------------------------------------------------------------- biomarker


def test_biomarker_rows_per_category_and_counts_add_up():
    res = ex.biomarker("keynote189", tmb="tertiles", replicates=2, n_scale=0.25, seed=3)
    t = res.table
    assert list(t.biomarker) == ["all", "PD-L1", "PD-L1", "PD-L1", "TMB", "TMB", "TMB"]
    assert list(t.category[1:4]) == ["PD-L1 TPS <1", "PD-L1 TPS 1-49", "PD-L1 TPS >=50"]
    from chemoio.trial import load_spec

    sizes = load_spec("keynote189").arm_sizes()  # two replicate trials of the scaled arms
    total = t.n_combo[0] + t.n_chemo[0]
    assert total == 2 * sum(round(n * 0.25) for n in sizes.values())
    for fam in ("PD-L1", "TMB"):
        sub = t[t.biomarker == fam]
        assert (sub.n_combo + sub.n_chemo).sum() == total
        assert sub.share_percent.sum() == pytest.approx(100.0)
    assert t.n_per_trial[0] == total / 2


# ----------------------------------------------------------------------------- dose


def test_dose_higher_chemo_dose_shrinks_tumours_more_in_the_chemo_arm():
    res = ex.dose("keynote189", dose_pct="50,150", cycles=[4], n_mechanism=20, replicates=1, n_scale=0.25, seed=3)
    t = res.table.set_index("dose_pct")
    assert t.loc[150.0, "best_change_chemo"] < t.loc[50.0, "best_change_chemo"] - 5.0
    assert t.loc[150.0, "chemo_logkill"] > t.loc[50.0, "chemo_logkill"]
    assert "carboplatin AUC7.5" in t.loc[150.0, "chemo_regimen"] and "pemetrexed 250 mg/m2" in t.loc[50.0, "chemo_regimen"]


def test_scale_chemo_scales_capped_items_and_keeps_antibodies_and_maintenance():
    reg = Regimen.parse("pembrolizumab 200 mg q3w x35; pemetrexed 500 mg/m2 q3w; "
                        "paclitaxel 80 mg/m2 qw x12; carboplatin AUC5 q3w x4; 5-fluorouracil 800 mg/m2 d1-5 q3w x35")
    s = ex.scale_chemo(reg, 0.5, cycles=2, reference_cycles=4)
    assert s.to_text() == ("pembrolizumab 200 mg q3w x35; pemetrexed 250 mg/m2 q3w; "
                           "paclitaxel 40 mg/m2 qw x6; carboplatin AUC2.5 q3w x2; 5-fluorouracil 400 mg/m2 d1-5 q3w x35")


# ----------------------------------------------------------------------------- interaction


def test_better_of_takes_the_later_time_and_its_event():
    from chemoio.experiments.exp_interaction import better_of

    t, e = better_of([3.0, 5.0, 4.0, 4.0, 3.0], [True, True, False, True, False],
                     [6.0, 2.0, 4.0, 4.0, 5.0], [False, True, True, True, True])
    assert list(t) == [6.0, 5.0, 4.0, 4.0, 5.0]
    # an event only when both are: a censored time (the last one: censored at 3, the other
    # drug's event at 5) may hide a later event, so the better of the two is censored
    assert list(e) == [False, True, False, True, False]


def test_monotherapy_transforms_remove_one_part_only():
    from chemoio.experiments.exp_interaction import chemo_only, ici_only
    from chemoio.regimens import get_preset

    combo = get_preset("keynote189_pembro_chemo_carbo")
    ici = ici_only(combo)
    chemo = chemo_only(combo)
    assert sorted(i.drug for i in ici.items) == ["pembrolizumab"]
    assert sorted(i.drug for i in chemo.items) == ["carboplatin", "pemetrexed"]
    with pytest.raises(ChemoioInputError) as e:
        ici_only(chemo)
    assert e.value.field == "trial"


def test_interaction_compares_the_combination_with_its_parts_in_the_same_patients():
    """The three conditions run the same virtual patients (the experiment checks it), so the
    better-of-two benchmark can only beat each part: its response rate lies between the larger
    monotherapy rate and their sum, and its Kaplan-Meier curve is never below either part's.
    The combination row is the trial as designed."""
    from chemoio.experiments import common as cm
    from chemoio.trial import load_spec

    res = ex.interaction("keynote189", **TINY)
    t = res.table.set_index("condition")
    assert list(t.index) == ["control", "chemo", "ici", "ia", "ia_uncorrelated", "combination"]
    assert max(t.at["chemo", "orr"], t.at["ici", "orr"]) <= t.at["ia", "orr"] <= t.at["chemo", "orr"] + t.at["ici", "orr"]
    assert t.at["ia", "median_pfs"] >= max(t.at["chemo", "median_pfs"], t.at["ici", "median_pfs"])
    grid = np.linspace(0, 12, 49)
    curves = res.data["curves"]

    def at(key):
        tj, s = curves[key]
        return s[np.searchsorted(tj, grid, side="right") - 1]

    assert np.all(at("ia") >= np.maximum(at("chemo"), at("ici")) - 1e-12)
    spec = load_spec("keynote189")
    original = cm.run_condition(spec, replicates=1, seed=3, n_scale=0.1)
    exp = original.patients[original.patients.arm == "pembro_chemo"]
    assert t.at["combination", "orr"] == pytest.approx(100 * exp.responder.mean())
    assert np.isfinite(t.at["combination", "hr_vs_independent_action"])
    assert any("independent action" in h for h in res.headline)
    assert any("Published combination arm" in h for h in res.headline)


def test_interaction_refuses_conditions_that_ran_different_patients(monkeypatch):
    """Independent action per patient needs the same patients in every condition: should a
    condition run others (here: another seed for the checkpoint inhibitor alone), it stops."""
    from chemoio.experiments import common as cm

    real = cm.run_condition

    def other_seed_for_ici(spec, **kw):
        if spec.name.endswith("interaction_ici"):
            kw["seed"] += 1
        return real(spec, **kw)

    monkeypatch.setattr(cm, "run_condition", other_seed_for_ici)
    with pytest.raises(RuntimeError, match="same patients"):
        ex.interaction("keynote189", **TINY)


def test_interaction_of_a_neoadjuvant_trial_reads_pcr_and_efs(tmp_path):
    from chemoio.model.parameters import shipped_parameter_set_path

    res = ex.interaction("keynote522", parameters=shipped_parameter_set_path(), **TINY)
    assert res.settings["parameter set"] == str(shipped_parameter_set_path())
    assert {"median_efs", "pcr", "hr_efs"} <= set(res.table.columns)
    paths = res.write(tmp_path)
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- mechanisms


def test_mechanisms_zeroes_each_effect_in_turn_on_the_same_patients(monkeypatch):
    """Each row runs the trial's two arms with its effect's parameters at 0 and every other
    parameter as set, then all of them at 0; the virtual patients (covariates, biomarkers,
    censoring) are the same in every row, and switching chemotherapy's ICD off lowers the
    chemotherapy arm's response rate (its antigen release is what primes T cells there)."""
    from chemoio.experiments import common as cm
    from chemoio.model.parameters import shipped_parameter_set

    real = cm.run_condition
    seen: list[tuple[dict, pd.DataFrame]] = []

    def record(spec, **kw):
        res = real(spec, **kw)
        seen.append((kw["parameters"], res.patients))
        return res

    monkeypatch.setattr(cm, "run_condition", record)
    res = ex.mechanisms("keynote189", knockouts="icd,lymphotoxicity", replicates=1, n_scale=0.3, seed=3)
    t = res.table.set_index("knockout")
    assert list(t.index) == ["none", "icd", "lymphotoxicity", "all"]
    shipped = shipped_parameter_set()
    lympho = set(ex.KNOCKOUTS["lymphotoxicity"][1])
    zeroed = {"none": set(), "icd": {"chemo_icd_scale"}, "lymphotoxicity": lympho, "all": lympho | {"chemo_icd_scale"}}
    for (params, _), key in zip(seen, t.index, strict=True):
        assert {k for k in zeroed[key]} <= {k for k, v in params.items() if v == 0.0}, key
        assert all(params[k] == v for k, v in shipped.items() if k not in zeroed[key]), key
    same = ["replicate", "arm", "patient_index", "pdl1_tps", "tmb_mut_per_mb", "censor_day"]
    for _, patients in seen[1:]:
        assert patients[same].equals(seen[0][1][same])
    assert t.at["icd", "orr_chemo"] < t.at["none", "orr_chemo"]
    assert t.at["icd", "orr_chemo_kept"] == pytest.approx(t.at["icd", "orr_chemo"] / t.at["none", "orr_chemo"])
    assert t.at["none", "hr_pfs_change"] == 0.0
    assert res.settings["knock-outs"] == "icd, lymphotoxicity"


def test_chemo_icd_scale_multiplies_the_immunogenic_share_only():
    """docs/model.md 1.3: the ICD input is s_ICD f_ICD,d E_d; the kill itself does not change."""
    from chemoio.model import equations as eq
    from chemoio.model.parameters import default_vector

    sp = np.zeros((1, eq.SLOT_WIDTH))
    sp[0, eq.S_EMAX], sp[0, eq.S_EC50], sp[0, eq.S_ICD], sp[0, eq.S_RHO] = 2.0, 1.0, 0.3, 0.05
    kinds = np.array([eq.KIND_CHEMO], dtype=np.int64)
    out = {}
    for scale in (1.0, 0.5, 0.0):
        drive = np.zeros(eq.N_DRIVE)
        eq.drug_drive(default_vector({"chemo_icd_scale": scale}), kinds, sp, np.zeros(1), np.ones(1), drive)
        out[scale] = drive.copy()
    e = out[1.0][eq.DR_E_SENS]
    assert e > 0 and out[0.0][eq.DR_E_SENS] == e
    assert out[1.0][eq.DR_ICD_SENS] == pytest.approx(0.3 * e)
    assert out[0.5][eq.DR_ICD_SENS] == pytest.approx(0.15 * e)
    assert out[0.0][eq.DR_ICD_SENS] == 0.0 and out[0.0][eq.DR_ICD_RES] == 0.0


def test_mechanisms_on_a_three_arm_trial_runs_and_counts_the_compared_arms_only(monkeypatch):
    """KEYNOTE-361 has a pembrolizumab-alone arm besides the two compared: it is not run, and
    the settings and the progress total count only the two arms' patients."""
    from chemoio.experiments import common as cm

    real = cm.run_condition
    sizes, totals = [], []

    def record(spec, **kw):
        res = real(spec, **kw)
        sizes.append(len(res.patients))
        assert set(res.patients.arm) == {"pembro_chemo", "chemo"}
        return res

    monkeypatch.setattr(cm, "run_condition", record)
    res = ex.mechanisms("keynote361", knockouts="icd", progress=lambda k, total: totals.append(total), **TINY)
    assert res.settings["patients per trial"] == sizes[0]
    assert set(totals) == {2 * 2 * sizes[0]}  # two conditions, two passes each


def test_mechanisms_reads_a_control_arm_without_responses(monkeypatch):
    """A control arm with no response as set leaves every kept share undefined (nan), and the
    experiment still reports its hazard ratios instead of failing on the headline."""
    from chemoio.experiments import common as cm

    real = cm.contrast_stats

    def no_control_responses(result, contrast, *a, **k):
        out = real(result, contrast, *a, **k)
        out["orr_chemo"] = 0.0
        return out

    monkeypatch.setattr(cm, "contrast_stats", no_control_responses)
    res = ex.mechanisms("keynote189", knockouts="icd", **TINY)
    assert res.table["orr_chemo_kept"].isna().all()
    assert not any(h.startswith("Chemotherapy arm ORR") for h in res.headline)
    assert any(h.startswith("HR OS") for h in res.headline)


@pytest.mark.parametrize("bad", ["icdd", "icd,icd", " , ", ["treg", "tregs"]])
def test_mechanisms_bad_knockout_names_the_argument(bad):
    with pytest.raises(ChemoioInputError) as e:
        ex.mechanisms(knockouts=bad, replicates=1)
    assert e.value.field == "knockouts"


# ----------------------------------------------------------------------------- CLI and errors


def test_cli_writes_table_plot_and_summary(tmp_path):
    from typer.testing import CliRunner

    from chemoio.interfaces.cli import app

    out = tmp_path / "bio"
    res = CliRunner().invoke(app, ["experiment", "biomarker", "--trial", "keynote189", "-R", "1",
                                   "--n-scale", "0.1", "--seed", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "table.csv")
    assert {"category", "hr_os", "hr_pfs", "orr_diff", "n_per_trial"} <= set(table.columns)
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.md").read_text()
    assert "not medical advice" in summary.lower() and "chemoio experiment biomarker" in summary
    assert "HR OS" in res.output


@pytest.mark.parametrize("args, option", [
    (["icd", "--agents", "doxorubicn"], "--agents"),
    (["icd", "--agents", "pembrolizumab"], "--agents"),
    (["icd", "--trial", "keynote18"], "--trial"),
    (["icd", "--trial", "checkmate067"], "--trial"),
    (["sequencing", "--offsets", "0,7,x"], "--offsets"),
    (["sequencing", "--offsets", "0,,7"], "--offsets"),
    (["dose", "--doses=-50,100"], "--doses"),
    (["dose", "--cycles", "0,4"], "--cycles"),
    (["biomarker", "--pdl1", "tsp"], "--pdl1"),
    (["biomarker", "--tmb", "ten"], "--tmb"),
    (["dose", "--n-scale", "0"], "--n-scale"),
    (["interaction", "--trial", "checkmate067"], "--trial"),
    (["interaction", "--seed=-1"], "--seed"),
    (["interaction", "--parameters", "no-such-set.yaml"], "--parameters"),
    (["mechanisms", "--knockouts", "tregs"], "--knockouts"),
    (["mechanisms", "--trial", "checkmate067"], "--trial"),
])
def test_cli_bad_input_names_the_option(args, option, tmp_path):
    from typer.testing import CliRunner

    from chemoio.interfaces.cli import app

    res = CliRunner().invoke(app, ["experiment", *args, "-R", "1", "--out", str(tmp_path)])
    assert isinstance(res.exception, ChemoioInputError), res.output
    assert res.exception.field == option


def test_cli_error_is_one_line_with_exit_status_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "chemoio.interfaces.cli", "experiment", "dose", "--doses=-50,100",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "--doses" in r.stderr and "must be > 0" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_api_errors_name_the_argument():
    with pytest.raises(ChemoioInputError) as e:
        ex.icd(agents=["doxorubicin", "doxorubicin"])
    assert e.value.field == "agents"
    with pytest.raises(ChemoioInputError) as e:
        ex.sequencing(offsets=[0, 400])
    assert e.value.field == "offsets"
    with pytest.raises(ChemoioInputError) as e:
        ex.dose(dose_pct=[100], replicates=0)
    assert e.value.field == "replicates"
    for bad in ("no-such-set.yaml", 3):
        with pytest.raises(ChemoioInputError) as e:
            ex.interaction(parameters=bad)
        assert e.value.field == "parameters"
    for run_experiment in (ex.icd, ex.sequencing, ex.dose):
        for bad in (0, 2.5, True):
            with pytest.raises(ChemoioInputError) as e:
                run_experiment(n_mechanism=bad)
            assert e.value.field == "n_mechanism", (run_experiment.__name__, bad)
