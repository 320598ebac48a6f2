"""Virtual clinical trials: the trial specification (design + published results) and scan
schedules. Shipped specs reproduce the design of each calibration trial.

>>> from chemoio.trial import load_spec, list_specs
>>> spec = load_spec("keynote189")
>>> sum(spec.arm_sizes().values()) == spec.n_total
True
"""

from chemoio.trial.schedule import ScanPhase, ScanSchedule, parse_schedule
from chemoio.trial.spec import (
    DAYS_PER_MONTH,
    ENDPOINTS,
    SELECTION_KEYS,
    STRATIFY_COVARIATES,
    SUBGROUP_KEYS,
    ArmSpec,
    ComparisonSpec,
    CrossoverSpec,
    FollowUpSpec,
    PopulationSpec,
    PublishedComparison,
    PublishedSpec,
    PublishedValue,
    SubgroupSpec,
    TrialSpec,
    list_specs,
    load_spec,
    parse_ratio,
    spec_from_dict,
    spec_json_schema,
    spec_path,
)

__all__ = [
    "DAYS_PER_MONTH",
    "ENDPOINTS",
    "SELECTION_KEYS",
    "STRATIFY_COVARIATES",
    "SUBGROUP_KEYS",
    "ArmSpec",
    "ComparisonSpec",
    "CrossoverSpec",
    "FollowUpSpec",
    "PopulationSpec",
    "PublishedComparison",
    "PublishedSpec",
    "PublishedValue",
    "ScanPhase",
    "ScanSchedule",
    "SubgroupSpec",
    "TrialSpec",
    "list_specs",
    "load_spec",
    "parse_ratio",
    "parse_schedule",
    "spec_from_dict",
    "spec_json_schema",
    "spec_path",
]
