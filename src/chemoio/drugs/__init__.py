"""Drug library: the schema of a drug file and the loader / lookup functions.

>>> from chemoio.drugs import get_drug
>>> get_drug("Keytruda").name
'pembrolizumab'
"""

from chemoio.drugs.library import (
    add_drug_file,
    antibody_terminal_half_life_days,
    chemo_half_life_h,
    clear_user_drugs,
    drug_names,
    drug_source,
    get_drug,
    list_drugs,
    load_drug_file,
    reload,
)
from chemoio.drugs.schema import (
    AntibodyPD,
    AntibodyPK,
    ChemoPD,
    ChemoPK,
    Drug,
    Immunomodulation,
    Sourced,
)

__all__ = [
    "AntibodyPD",
    "AntibodyPK",
    "ChemoPD",
    "ChemoPK",
    "Drug",
    "Immunomodulation",
    "Sourced",
    "add_drug_file",
    "antibody_terminal_half_life_days",
    "chemo_half_life_h",
    "clear_user_drugs",
    "drug_names",
    "drug_source",
    "get_drug",
    "list_drugs",
    "load_drug_file",
    "reload",
]
