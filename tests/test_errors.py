"""The shared YAML reader names the field, the file and the line of a syntax error."""

from __future__ import annotations

import pytest

from chemoio.errors import ChemoioInputError, read_yaml_file
from chemoio.model.parameters import load_parameter_set
from chemoio.regimens import Regimen


def test_malformed_yaml_names_field_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("parameters:\n  a: [1, 2\n")
    with pytest.raises(ChemoioInputError) as info:
        read_yaml_file(p, "parameter_set")
    err = info.value
    assert err.field == "parameter_set" and "bad.yaml" in err.message and "line" in err.message


def test_missing_file_names_the_field(tmp_path):
    with pytest.raises(ChemoioInputError, match="^jobqueue: file not found"):
        read_yaml_file(tmp_path / "nope.yaml", "jobqueue")


def test_callers_use_it(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("items: [\n")
    with pytest.raises(ChemoioInputError, match="^regimen: malformed YAML"):
        Regimen.from_yaml(p)
    with pytest.raises(ChemoioInputError, match="^parameter_set: malformed YAML"):
        load_parameter_set(p)
