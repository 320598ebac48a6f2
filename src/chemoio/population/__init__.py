"""Virtual patients per tumour type.

>>> from chemoio.population import sample_patients
>>> vp = sample_patients("nsclc_nonsquamous", 1000, seed=7)
>>> vp.params.shape            # (1000, len(PATIENT_ORDER))
>>> vp.covariates["pdl1_tps"]  # 0-100 %, consistent with pdl1_cps and pdl1_ic

Distributions, correlations, assay mappings and their sources: docs/population.md and
``chemoio/population/data/*.yaml``.
"""

from chemoio.population.sampling import (
    BLOCK_SIZE,
    SELECTION_KEYS,
    VirtualPatients,
    ckd_epi_2021_egfr,
    cockcroft_gault_crcl,
    concat_patients,
    mosteller_bsa,
    sample_patients,
    standard_normals,
)
from chemoio.population.tumor_types import (
    Dist,
    ScoreMap,
    TumorType,
    get_tumor_type,
    list_tumor_types,
    load_tumor_file,
)

__all__ = [
    "BLOCK_SIZE",
    "SELECTION_KEYS",
    "Dist",
    "ScoreMap",
    "TumorType",
    "VirtualPatients",
    "ckd_epi_2021_egfr",
    "cockcroft_gault_crcl",
    "concat_patients",
    "get_tumor_type",
    "list_tumor_types",
    "load_tumor_file",
    "mosteller_bsa",
    "sample_patients",
    "standard_normals",
]

from chemoio.population.parameters import parameter_matrix  # noqa: E402

__all__ = [*__all__, "parameter_matrix"]
