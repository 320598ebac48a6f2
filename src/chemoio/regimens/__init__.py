"""Regimens: a readable text grammar and YAML form, per-patient dose tables, NONMEM-style
event tables, and named presets for the arms of the calibration trials.

>>> from chemoio.regimens import Regimen
>>> r = Regimen.parse("gemcitabine 1000 mg/m2 d1,8 q3w x2")
>>> r.dose_table(bsa_m2=1.8, horizon_days=365).time_day.tolist()
[0.0, 7.0, 21.0, 28.0]
"""

from chemoio.regimens.events import DoseTable, from_events, read_events, to_events, write_events
from chemoio.regimens.presets import (
    Preset,
    get_preset,
    list_presets,
    preset_info,
    presets_for_trial,
    resolve_regimen,
)
from chemoio.regimens.regimen import DrugSchedule, Regimen, calvert_dose_mg

__all__ = [
    "DoseTable",
    "DrugSchedule",
    "Preset",
    "Regimen",
    "calvert_dose_mg",
    "from_events",
    "get_preset",
    "list_presets",
    "preset_info",
    "presets_for_trial",
    "read_events",
    "resolve_regimen",
    "to_events",
    "write_events",
]
