"""Per-agent cytotoxic potency (``chemo_potency.<drug>``) and its calibration by drug class."""

from __future__ import annotations

import numpy as np
import pytest

from chemoio.calibration.fit import CHEMO_CLASSES, Calibration
from chemoio.errors import ChemoioInputError
from chemoio.model import equations as eq
from chemoio.model.parameters import agent_potency, load_parameter_set
from helpers import typical, typical_input


def test_agent_potency_reads_and_validates_keys():
    got = agent_potency({"chemo_potency.docetaxel": 2.0, "chemo_potency_scale": 0.5, "growth_scale.x": 1.0})
    assert got == {"docetaxel": 2.0}
    with pytest.raises(ChemoioInputError, match="chemo_potency.pembrolizumab"):
        agent_potency({"chemo_potency.pembrolizumab": 1.0})
    with pytest.raises(ChemoioInputError, match="chemo_potency.docetaxel"):
        agent_potency({"chemo_potency.docetaxel": -1.0})
    with pytest.raises(ChemoioInputError):
        agent_potency({"chemo_potency.docetaxl": 1.0})  # misspelled agent


def test_parameter_set_rejects_a_bad_agent(tmp_path):
    p = tmp_path / "set.yaml"
    p.write_text("parameters:\n  chemo_potency.cisplatin: 0\n")
    with pytest.raises(ChemoioInputError, match="chemo_potency.cisplatin"):
        load_parameter_set(p)


def test_potency_multiplies_only_the_named_agent():
    from chemoio.engine.inputs import build_input
    from chemoio.model.parameters import default_vector
    from chemoio.regimens import Regimen

    reg = Regimen.parse("docetaxel 75 mg/m2 q3w x2; pembrolizumab 200 mg q3w x2")
    args = (reg, default_vector()[None, :], np.array([75.0]), np.array([1.8]), np.array([90.0]),
            np.array([0.0, 7.0]), ("sld_mm",))
    base, _ = build_input(*args)
    scaled, _ = build_input(*args, potency={"docetaxel": 2.0, "pembrolizumab": 5.0})
    i = reg.drugs.index("docetaxel")
    assert scaled.slot_params[0, i, eq.S_EMAX] == pytest.approx(2.0 * base.slot_params[0, i, eq.S_EMAX])
    j = reg.drugs.index("pembrolizumab")
    np.testing.assert_array_equal(scaled.slot_params[0, j], base.slot_params[0, j])  # antibodies untouched


def test_a_more_potent_agent_shrinks_the_tumour_more():
    from helpers import run

    weak_immunity = {"max_tcell_tumour_ratio": 1e-4}  # few T cells at diagnosis
    weak = typical("docetaxel 75 mg/m2 q3w x4", weak_immunity, days=84)
    strong_sim = typical_input("docetaxel 75 mg/m2 q3w x4", weak_immunity, days=84)
    strong_sim.slot_params[:, 0, eq.S_EMAX] *= 2.0  # what chemo_potency.docetaxel: 2 does
    strong = run(strong_sim)
    assert strong["sld_mm"][0, -1] < 0.9 * weak["sld_mm"][0, -1]


def test_calibration_fits_one_multiplier_per_class_with_a_prior_penalty():
    cal = Calibration(["keynote189"])
    classes = [n for n in cal.free_a if n.startswith("chemo_class.")]
    # the KEYNOTE-189 control arm: pemetrexed with cisplatin or carboplatin
    assert classes == ["chemo_class.platinum", "chemo_class.antimetabolite"]
    x = np.zeros(len(cal.free_a))
    x[cal.free_a.index("chemo_class.platinum")] = np.log(2.0)
    decoded = cal._decode(cal.free_a, x)
    for agent in CHEMO_CLASSES["platinum"]:
        assert decoded[f"chemo_potency.{agent}"] == pytest.approx(2.0)
    assert decoded["chemo_potency.pemetrexed"] == pytest.approx(1.0)
    pen = cal._penalty(cal.free_a, x)
    # one prior residual per class and one for the tumour type's chemo-sensitivity scale
    assert "chemo_sensitivity_scale.nsclc_nonsquamous" in cal.free_a
    assert pen.size == 3 and pen.max() == pytest.approx(np.log(2.0) / 0.7)


def test_the_trial_runner_applies_a_parameter_sets_agent_potency():
    from chemoio.trial import load_spec
    from chemoio.trial.runner import run_trial

    spec = load_spec("keynote189")
    base = {"max_tcell_tumour_ratio": 1e-4}  # weak immunity: chemotherapy drives response
    kw = dict(replicates=1, seed=3, arms=["chemo"], n_scale=0.3)
    plain = run_trial(spec, parameters=base, **kw).patients
    strong = run_trial(spec, parameters={**base, "chemo_potency.pemetrexed": 4.0,
                                         "chemo_potency.cisplatin": 4.0, "chemo_potency.carboplatin": 4.0},
                       **kw).patients
    assert strong.best_pct_change.median() < plain.best_pct_change.median() - 10.0


def test_every_cytotoxic_of_the_library_is_in_exactly_one_drug_class():
    # a cytotoxic outside every class would silently keep potency 1 in calibration
    from chemoio.drugs import list_drugs

    cytotoxics = sorted(d.name for d in list_drugs() if d.kind == "chemotherapy")
    members = sorted(a for agents in CHEMO_CLASSES.values() for a in agents)
    assert members == cytotoxics
