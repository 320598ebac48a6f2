"""chemoio - in-silico chemo-immunotherapy.

A mechanistic tumour-immune-drug model, a drug and regimen library, virtual patients and
virtual clinical trials. Research software: outputs describe a model, never a patient,
and are not medical advice.

Public API
----------
simulate            simulate a cohort of virtual patients on a regimen
Regimen             a regimen (parse text with ``Regimen.parse``); get_preset / list_presets
get_drug, list_drugs  the drug library
sample_patients     virtual patients of a tumour type
experiments         mechanism experiments (ICD backbone, sequencing, biomarkers, dose); lazy
ChemoioInputError   the error raised for bad user input (names the field)
"""

__version__ = "0.1.0"

from chemoio.drugs import get_drug, list_drugs
from chemoio.engine.cohort import CohortResult
from chemoio.errors import ChemoioInputError
from chemoio.interfaces.api import simulate
from chemoio.regimens import Regimen, get_preset, list_presets

__all__ = [
    "__version__", "simulate", "CohortResult", "Regimen", "get_preset", "list_presets",
    "get_drug", "list_drugs", "sample_patients", "ChemoioInputError",
]


def __getattr__(name):  # population and experiments are imported lazily
    if name == "sample_patients":
        from chemoio.population import sample_patients

        return sample_patients
    if name == "experiments":
        import importlib

        return importlib.import_module("chemoio.experiments")
    raise AttributeError(name)

