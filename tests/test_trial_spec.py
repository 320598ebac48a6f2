"""Trial specifications: shipped specs, validation errors naming the field, JSON Schema,
scan-schedule parser, YAML round trip."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from chemoio.errors import ChemoioInputError
from helpers import error_of
from helpers import raw_spec as raw
from chemoio.regimens import list_presets
from chemoio.trial import (
    DAYS_PER_MONTH,
    ScanSchedule,
    TrialSpec,
    list_specs,
    load_spec,
    parse_ratio,
    spec_from_dict,
    spec_json_schema,
    spec_path,
)

SHIPPED = [
    "keynote189", "impower130", "imvigor130", "keynote361", "imvigor211",
    "keynote522", "keynote048", "keynote590", "checkmate067", "keynote002",
]




def minimal() -> dict:
    return {
        "name": "mini",
        "title": "a two-arm trial",
        "trial_id": "MINI-1",
        "population": {"tumor": "nsclc_nonsquamous"},
        "arms": [
            {"name": "exp", "label": "pembrolizumab", "role": "experimental", "regimen": "pembrolizumab 200 mg q3w x35"},
            {"name": "ctl", "label": "chemotherapy", "role": "control", "regimen": "keynote189_chemo"},
        ],
        "n_total": 300,
        "randomization": "2:1",
        "follow_up": {"accrual_months": 12, "data_cutoff_months": 24},
        "scan_schedule": "q6w",
        "endpoints": ["OS", "PFS", "ORR"],
        "primary_endpoints": ["OS"],
        "comparisons": [{"experimental": "exp", "control": "ctl", "endpoints": ["OS", "PFS"]}],
    }


# -- shipped specs -------------------------------------------------------------------------------


def test_list_specs_has_every_calibration_trial() -> None:
    assert sorted(list_specs()) == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_spec_loads_and_sizes_fit_ratio(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name
    sizes = spec.arm_sizes()
    assert list(sizes) == spec.arm_names
    assert sum(sizes.values()) == spec.n_total
    ratio = spec.ratio
    assert len(ratio) == len(spec.arms)
    for n, r in zip(sizes.values(), ratio, strict=True):
        assert abs(n / spec.n_total - r / sum(ratio)) <= 0.05
    # every arm's regimen(s) resolved, mixtures sum to 1
    for arm in spec.arms:
        mix = arm.mixture()
        assert mix and abs(sum(s for s, _ in mix) - 1.0) < 1e-12
        for key in arm.regimens or {}:
            assert key in list_presets()
    # follow-up and scans
    visits = spec.visit_days()
    assert visits.size >= 1 and np.all(np.diff(visits) > 0) and visits[-1] <= spec.horizon_days()
    assert spec.horizon_days() == pytest.approx(spec.follow_up.data_cutoff_months * DAYS_PER_MONTH)
    # published block refers to arms of the spec and carries sources
    assert spec.published is not None
    for path, value in spec.published.values():
        assert value.source, path
        assert value.analysis == spec.published.analysis or value.analysis, path
    assert spec.primary_endpoints and set(spec.primary_endpoints) <= set(spec.endpoints)


def test_shipped_spec_design_details() -> None:
    kn189 = load_spec("keynote189")
    assert kn189.arm_sizes() == {"pembro_chemo": 410, "chemo": 206}
    assert kn189.arm("chemo").crossover.share == pytest.approx(0.408)
    assert kn189.arm("chemo").crossover.resolved_regimen().drugs == ["pembrolizumab"]
    assert [s.name for s in kn189.subgroups] == ["tps_lt1", "tps_1_49", "tps_ge50", "tps_ge1"]
    os_hr = [c for c in kn189.published.comparisons if c.endpoint == "OS" and c.subgroup is None][0]
    assert (os_hr.hr.value, os_hr.hr.ci) == (0.49, (0.38, 0.64))
    assert (kn189.scan().visit_days(200) / 7).tolist() == [6, 12, 18, 27]

    imv211 = load_spec("imvigor211")
    assert imv211.population.tumor == "urothelial_2l"
    assert imv211.comparisons[0].primary_subgroup == "ic2_3"
    assert imv211.subgroup("ic2_3").where == {"pdl1_ic_min": 2}
    assert load_spec("keynote522").population.tumor == "tnbc_early"
    assert load_spec("keynote002").population.tumor == "melanoma_2l"  # ipilimumab-refractory
    kn522 = load_spec("keynote522")
    assert [a.surgery_day for a in kn522.arms] == [176.0, 176.0]  # from the presets
    cm067 = load_spec("checkmate067")
    assert cm067.alpha_for("PFS") == 0.005 and cm067.alpha_for("OS") == 0.05
    assert cm067.published.comparisons[0].hr.ci_level == 0.995


def test_load_by_loose_name_and_path(tmp_path: Path) -> None:
    assert load_spec("KEYNOTE-189").name == "keynote189"
    p = tmp_path / "kn.yaml"
    p.write_text(spec_path("keynote361").read_text())
    assert load_spec(p).name == "keynote361"
    assert load_spec(str(p)).name == "keynote361"


def test_unknown_spec_name_suggests() -> None:
    err = error_of(load_spec, "keynote18")
    assert err.field == "spec" and "keynote189" in (err.hint or "")


# -- JSON Schema and round trip ------------------------------------------------------------------


def test_json_schema_validates_shipped_specs() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = spec_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for name in SHIPPED:
        errors = list(validator.iter_errors(raw(name)))
        assert not errors, (name, [e.message for e in errors[:3]])
    bad = raw()
    bad["n_totl"] = 5
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize("name", SHIPPED)
def test_round_trip(name: str) -> None:
    spec = load_spec(name)
    dump = yaml.safe_dump(spec.model_dump(mode="json"))
    again = TrialSpec.model_validate(yaml.safe_load(dump))
    assert again == spec
    assert TrialSpec.model_validate(yaml.safe_load(spec.to_yaml())) == spec


# -- scan schedules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "horizon", "weeks"),
    [
        ("q8w", 400, [8, 16, 24, 32, 40, 48, 56]),
        ("q6w to w18 then q9w", 300, [6, 12, 18, 27, 36]),
        ("q6w to w48 then q9w", 60 * 7, [6, 12, 18, 24, 30, 36, 42, 48, 57]),
        ("q6w to w54 then q9w to w102 then q12w", 130 * 7, [6, 12, 18, 24, 30, 36, 42, 48, 54, 63, 72, 81, 90, 99, 111, 123]),
        ("w9 then q6w to w52 then q9w", 70 * 7, [9, 15, 21, 27, 33, 39, 45, 51, 60, 69]),
        ("Q6W  TO W12  THEN  q12w to w36", 1000, [6, 12, 24, 36]),
        ("q6w to w20 then q9w", 40 * 7, [6, 12, 18, 27, 36]),
    ],
)
def test_scan_schedule_examples(text: str, horizon: float, weeks: list[int]) -> None:
    days = ScanSchedule.parse(text).visit_days(horizon)
    assert days.tolist() == [7.0 * w for w in weeks]


def test_scan_schedule_days_and_canonical_text() -> None:
    s = ScanSchedule.parse("q42d to d126 then q63d")
    assert s.visit_days(260).tolist() == [42.0, 84.0, 126.0, 189.0, 252.0]
    assert s.to_text() == "q6w to w18 then q9w"
    assert s.first_scan_day == 42.0
    assert ScanSchedule.parse("q8w").visit_days(56).tolist() == [56.0]
    assert ScanSchedule.parse("q8w").visit_days(55).size == 0


@pytest.mark.parametrize("text", ["", "q6", "every 6 weeks", "q6w then q9w", "q12w to w6", "w9 then w6", "q0w"])
def test_scan_schedule_errors_name_the_field(text: str) -> None:
    assert error_of(ScanSchedule.parse, text).field == "scan_schedule"


# -- bad specs: errors name the field ------------------------------------------------------------


def test_minimal_spec_validates() -> None:
    spec = spec_from_dict(minimal())
    assert spec.arm_sizes() == {"exp": 200, "ctl": 100}
    assert spec.n_per_arm is None


def test_arm_sizes_largest_remainder() -> None:
    d = minimal()
    d["n_total"] = 616
    assert spec_from_dict(d).arm_sizes() == {"exp": 411, "ctl": 205}
    d["arms"].append({"name": "mono", "label": "x", "role": "experimental_monotherapy", "regimen": "keynote361_pembro"})
    d["randomization"] = "1:1:1"
    d["n_total"] = 100
    assert spec_from_dict(d).arm_sizes() == {"exp": 34, "ctl": 33, "mono": 33}


def test_unknown_regimen_names_the_arm() -> None:
    d = minimal()
    d["arms"][0]["regimen"] = "keynote189_pembo_chemo"
    err = error_of(spec_from_dict, d)
    assert err.field == "arms[0].regimen"
    assert "keynote189_pembro_chemo" in (err.hint or "")


def test_unknown_drug_in_regimen_text_names_the_arm_item() -> None:
    d = minimal()
    d["arms"][1]["regimen"] = "pembrolizumabb 200 mg q3w"
    err = error_of(spec_from_dict, d)
    assert err.field == "arms[1].regimen[0].drug"
    assert "pembrolizumab" in (err.hint or "")


def test_regimen_yaml_relative_to_spec_file(tmp_path: Path) -> None:
    (tmp_path / "my_regimen.yaml").write_text("name: mine\ntext: pembrolizumab 200 mg q3w x35\n")
    d = minimal()
    d["arms"][0]["regimen"] = "my_regimen.yaml"
    (tmp_path / "trial.yaml").write_text(yaml.safe_dump(d))
    spec = load_spec(tmp_path / "trial.yaml")
    assert spec.arms[0].mixture()[0][1].drugs == ["pembrolizumab"]


def test_negative_n_total() -> None:
    d = minimal()
    d["n_total"] = -5
    assert error_of(spec_from_dict, d).field == "n_total"


@pytest.mark.parametrize("ratio", ["2:x", "2:1:1", "2", "2:0", "2-1"])
def test_bad_ratio(ratio: str) -> None:
    d = minimal()
    d["randomization"] = ratio
    assert error_of(spec_from_dict, d).field == "randomization"


def test_parse_ratio() -> None:
    assert parse_ratio("1:1:1") == (1, 1, 1)
    assert parse_ratio(" 2 : 1 ") == (2, 1)


def test_scan_schedule_beyond_follow_up() -> None:
    d = minimal()
    d["scan_schedule"] = "w200 then q12w"
    err = error_of(spec_from_dict, d)
    assert err.field == "scan_schedule" and "cut-off" in err.message


def test_unparseable_scan_schedule() -> None:
    d = minimal()
    d["scan_schedule"] = "every six weeks"
    assert error_of(spec_from_dict, d).field == "scan_schedule"


def test_unknown_biomarker_key_in_selection_suggests() -> None:
    d = minimal()
    d["population"]["selection"] = {"pdl1_tsp_min": 50}
    err = error_of(spec_from_dict, d)
    assert err.field == "population.selection.pdl1_tsp_min"
    assert "pdl1_tps_min" in (err.hint or "")


def test_unknown_biomarker_key_in_subgroup_suggests() -> None:
    d = minimal()
    d["subgroups"] = [{"name": "high", "where": {"pdl1_tps_min": 50}}, {"name": "cps", "where": {"pdl1_cpsmin": 10}}]
    err = error_of(spec_from_dict, d)
    assert err.field == "subgroups[1].where.pdl1_cpsmin"
    assert "pdl1_cps_min" in (err.hint or "")


def test_biomarker_value_checks() -> None:
    d = minimal()
    d["subgroups"] = [{"name": "ic", "where": {"pdl1_ic_min": 2.5}}]
    assert error_of(spec_from_dict, d).field == "subgroups[0].where.pdl1_ic_min"
    d["subgroups"] = [{"name": "tps", "where": {"pdl1_tps_min": 50, "pdl1_tps_max": 10}}]
    assert error_of(spec_from_dict, d).field == "subgroups[0].where.pdl1_tps_max"
    d["subgroups"] = [{"name": "tps", "where": {"pdl1_tps_min": 150}}]
    assert error_of(spec_from_dict, d).field == "subgroups[0].where.pdl1_tps_min"


def test_unknown_tumor_suggests() -> None:
    d = minimal()
    d["population"]["tumor"] = "nsclc_nonsquamos"
    err = error_of(spec_from_dict, d)
    assert err.field == "population.tumor" and "nsclc_nonsquamous" in (err.hint or "")


def test_unknown_arm_in_comparison() -> None:
    d = minimal()
    d["comparisons"][0]["control"] = "ctrl"
    err = error_of(spec_from_dict, d)
    assert err.field == "comparisons[0].control" and "ctl" in (err.hint or "")


def test_unknown_subgroup_and_stratum_in_comparison() -> None:
    d = minimal()
    d["comparisons"][0]["primary_subgroup"] = "tps_ge50"
    assert error_of(spec_from_dict, d).field == "comparisons[0].primary_subgroup"
    d = minimal()
    d["comparisons"].append(dict(d["comparisons"][0]))
    assert error_of(spec_from_dict, d).field == "comparisons[1]"
    d = minimal()
    d["comparisons"][0]["stratify_by"] = ["ecgo"]
    err = error_of(spec_from_dict, d)
    assert err.field == "comparisons[0].stratify_by[0]" and "ecog" in (err.hint or "")


def test_misspelt_field_suggests() -> None:
    d = minimal()
    d["follow_up"]["dropout_per_yr"] = 0.1
    err = error_of(spec_from_dict, d)
    assert err.field == "follow_up.dropout_per_yr" and "dropout_per_year" in (err.hint or "")
    d = minimal()
    d["arms"][1]["regimn"] = "x"
    err = error_of(spec_from_dict, d)
    assert err.field == "arms[1].regimn" and "regimen" in (err.hint or "")


def test_mixture_checks() -> None:
    d = minimal()
    d["arms"][1]["regimen"] = None
    d["arms"][1]["regimens"] = {"keynote189_chemo_carbo": 0.6, "keynote189_chemo_cis": 0.3}
    err = error_of(spec_from_dict, d)
    assert err.field == "arms[1].regimens" and "sum to 1" in err.message
    d["arms"][1]["regimens"] = {"keynote189_chemo_carbo": 0.7, "keynote189_chemo_sis": 0.3}
    assert error_of(spec_from_dict, d).field == "arms[1].regimens.keynote189_chemo_sis"
    d["arms"][1]["regimen"] = "keynote189_chemo"
    d["arms"][1]["regimens"] = {"keynote189_chemo_carbo": 1.0}
    assert error_of(spec_from_dict, d).field == "arms[1].regimen"
    del d["arms"][1]["regimens"]
    d["arms"][1]["regimen"] = None
    assert error_of(spec_from_dict, d).field == "arms[1].regimen"


def test_crossover_regimen_error_names_field() -> None:
    d = minimal()
    d["arms"][1]["crossover"] = {"share": 0.4, "regimen": "nivolumabb 240 mg q2w"}
    assert error_of(spec_from_dict, d).field == "arms[1].crossover.regimen[0].drug"
    d["arms"][1]["crossover"] = {"share": 1.4, "regimen": "nivolumab 240 mg q2w"}
    assert error_of(spec_from_dict, d).field == "arms[1].crossover.share"


def test_other_cross_field_checks() -> None:
    d = minimal()
    d["arms"][1]["name"] = "exp"
    assert error_of(spec_from_dict, d).field == "arms[1].name"
    d = minimal()
    d["primary_endpoints"] = ["EFS"]
    assert error_of(spec_from_dict, d).field == "primary_endpoints[0]"
    d = minimal()
    d["endpoints"] = ["OS", "pCR"]
    d["comparisons"][0]["endpoints"] = ["OS"]
    assert error_of(spec_from_dict, d).field == "arms[0].surgery_day"
    d = minimal()
    d["follow_up"]["data_cutoff_months"] = 6
    assert error_of(spec_from_dict, d).field == "follow_up.data_cutoff_months"
    d = minimal()
    d["n_per_arm"] = {"exp": 150, "ctl": 150}
    assert error_of(spec_from_dict, d).field == "n_per_arm.exp"  # sums to 300 but breaks 2:1
    d["n_per_arm"] = {"exp": 200, "ctrl": 100}
    assert error_of(spec_from_dict, d).field == "n_per_arm.ctrl"
    d = minimal()
    d["alpha_by_endpoint"] = {"OS": 1.5}
    assert error_of(spec_from_dict, d).field == "alpha_by_endpoint.OS"


def test_published_checks() -> None:
    d = raw()
    d["published"]["arms"]["chemo"]["median_os_monhts"] = 11.3
    err = error_of(spec_from_dict, d)
    assert err.field == "published.arms.chemo.median_os_monhts" and "median_os_months" in (err.hint or "")
    d = raw()
    d["published"]["arms"]["placebo"] = {"orr_percent": 18.9}
    assert error_of(spec_from_dict, d).field == "published.arms.placebo"
    d = raw()
    d["published"]["comparisons"][0]["hr"] = [0.49, 0.64, 0.38]
    assert error_of(spec_from_dict, d).field == "published.comparisons[0].hr.ci"
    d = raw()
    d["published"]["comparisons"][0]["hr"] = [0.99, 0.38, 0.64]
    assert error_of(spec_from_dict, d).field == "published.comparisons[0].hr.value"
    d = raw()
    d["published"]["comparisons"][0]["subgroup"] = "tps_ge5"
    err = error_of(spec_from_dict, d)
    assert err.field == "published.comparisons[0].subgroup" and "tps_ge50" in (err.hint or "")
    d = raw()
    del d["published"]["comparisons"][0]["hr"]
    assert error_of(spec_from_dict, d).field == "published.comparisons[0].hr"


def test_malformed_yaml(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\narms: [\n  - {name: a\n")
    err = error_of(load_spec, p)
    assert err.field == "spec" and "YAML" in err.message
    p.write_text("- just\n- a list\n")
    assert error_of(load_spec, p).field == "spec"
    assert error_of(load_spec, tmp_path / "missing.yaml").field == "spec"


def test_several_errors_are_listed_in_the_hint() -> None:
    d = minimal()
    d["n_total"] = 0
    d["replicates"] = 0
    err = error_of(spec_from_dict, d)
    assert err.field == "n_total" and "replicates" in (err.hint or "")


def test_model_dump_does_not_share_state() -> None:
    spec = load_spec("keynote189")
    d = copy.deepcopy(spec.model_dump(mode="json"))
    d["arms"][0]["name"] = "other"
    d["n_per_arm"] = {"other": 410, "chemo": 206}
    for c in d["comparisons"]:
        c["experimental"] = "other"
    for c in d["published"]["comparisons"]:
        c["experimental"] = "other"
    d["published"]["arms"]["other"] = d["published"]["arms"].pop("pembro_chemo")
    d["published"]["subgroups"]["tps_ge50"]["other"] = d["published"]["subgroups"]["tps_ge50"].pop("pembro_chemo")
    other = spec_from_dict(d)
    assert other.arm_names == ["other", "chemo"] and spec.arm_names == ["pembro_chemo", "chemo"]


# -- toxicity and response criteria ----------------------------------------------------------------


def test_toxicity_section_defaults_and_rules() -> None:
    spec = spec_from_dict(minimal())
    tox = spec.toxicity
    assert tox.enabled and tox.dose_delays and tox.anc_min == 1.5 and tox.max_delay_days == 21
    rules = tox.rules()
    assert rules.anc_min == 1.5 and rules.delay_moves == "whole_schedule"
    # omissions within a cycle and dose reductions are off unless asked for
    assert rules.within_cycle_anc_min is None and rules.reduce_below_anc is None
    d = minimal()
    d["toxicity"] = {"within_cycle_anc_min": 1.0, "dose_reduction": 0.75}
    rules = spec_from_dict(d).toxicity.rules()
    assert rules.within_cycle_anc_min == 1.0 and rules.reduce_below_anc == 0.5 and rules.reduction_factor == 0.75
    assert spec.response_criteria == "recist11"
    d = minimal()
    d["toxicity"] = {"dose_delays": False, "dose_reduction": None, "delay_moves": "chemotherapy"}
    d["response_criteria"] = "irecist"
    spec = spec_from_dict(d)
    rules = spec.toxicity.rules()
    assert rules.anc_min == 0.0 and rules.reduce_below_anc is None and rules.delay_moves == "chemotherapy"
    assert spec.response_criteria == "irecist"
    assert spec_from_dict(yaml.safe_load(spec.to_yaml())) == spec
    d["toxicity"] = {"enabled": False}
    assert spec_from_dict(d).toxicity.rules() is None


@pytest.mark.parametrize("section,field", [
    ({"anc_min": -1}, "toxicity.anc_min"),
    ({"anc_min": "high"}, "toxicity.anc_min"),
    ({"max_delay_days": 20}, "toxicity.max_delay_days"),
    ({"recheck_days": 0}, "toxicity.recheck_days"),
    ({"dose_reduction": 1.5}, "toxicity.dose_reduction"),
    ({"reduce_below_anc": 2.0, "dose_reduction": 0.75}, "toxicity.reduce_below_anc"),
    ({"delay_moves": "antibody"}, "toxicity.delay_moves"),
    ({"max_reductions": -1}, "toxicity.max_reductions"),
])
def test_toxicity_errors_name_the_field(section, field) -> None:
    d = minimal()
    d["toxicity"] = section
    assert error_of(spec_from_dict, d).field == field


def test_toxicity_and_response_criteria_typos() -> None:
    d = minimal()
    d["toxicity"] = {"anc_mn": 1.0}
    err = error_of(spec_from_dict, d)
    assert err.field == "toxicity.anc_mn" and "anc_min" in (err.hint or "")
    d = minimal()
    d["response_criteria"] = "irecst"
    err = error_of(spec_from_dict, d)
    assert err.field == "response_criteria" and "irecist" in err.message
    d = minimal()
    d["toxicty"] = {}
    err = error_of(spec_from_dict, d)
    assert err.field == "toxicty" and "toxicity" in (err.hint or "")
