"""Mechanism experiments: what decides the success of chemo-immunotherapy in the model.

Each experiment takes a trial spec (default KEYNOTE-189), keeps its chemo-immunotherapy vs
chemotherapy comparison, changes only the design of the arms and reruns the virtual trial:

``icd(trial, agents=...)``            chemotherapy backbone swapped across agents of different
                                      immunogenic-cell-death potency
``sequencing(trial, offsets=...)``    chemotherapy before, with or after the checkpoint inhibitor
``biomarker(trial, pdl1=..., tmb=...)`` benefit by PD-L1 category and TMB
``dose(trial, dose_pct=..., cycles=...)`` chemotherapy dose and number of cycles
``interaction(trial)``                the combination against independent action of its parts
                                      (the better of each drug alone, in the same patients)
``mechanisms(trial, knockouts=...)``  chemotherapy's immune effects (ICD, Treg/MDSC depletion,
                                      MHC-I/PD-L1 induction, lymphotoxicity) switched off in turn

Each returns an :class:`ExperimentResult` with ``.table`` (pandas), ``.plot(path)`` and
``.write(folder)`` (table.csv, plot.png, summary.md). See docs/experiments.md.

>>> from chemoio import experiments
>>> res = experiments.icd("keynote189", agents="doxorubicin,cisplatin", replicates=2)  # doctest: +SKIP
>>> res.table[["agent", "icd_fraction", "hr_os"]]                                     # doctest: +SKIP

Research software: outputs describe a model, not any patient; not medical advice.
"""

from chemoio.experiments.common import ExperimentResult
from chemoio.experiments.exp_biomarker import biomarker
from chemoio.experiments.exp_dose import dose, scale_chemo
from chemoio.experiments.exp_icd import backbone_regimen, icd, list_backbones, swap_backbone
from chemoio.experiments.exp_interaction import interaction
from chemoio.experiments.exp_mechanisms import KNOCKOUTS, mechanisms
from chemoio.experiments.exp_sequencing import sequencing, shift_regimen

__all__ = [
    "ExperimentResult",
    "KNOCKOUTS",
    "backbone_regimen",
    "biomarker",
    "dose",
    "icd",
    "interaction",
    "list_backbones",
    "mechanisms",
    "scale_chemo",
    "sequencing",
    "shift_regimen",
    "swap_backbone",
]
