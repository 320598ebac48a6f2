"""The command line: user errors are one line naming the field; commands exist."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chemoio.model.parameters import parameter_table


def chemoio(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "240"}  # wide enough that rich does not fold headers
    return subprocess.run([sys.executable, "-m", "chemoio.interfaces.cli", *args],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("regimen, field", [
    ("pembrolizumb 200 mg q3w", "regimen[0].drug"),
    ("pembrolizumab -200 mg q3w", "regimen[0].dose"),
    ("pembrolizumab 200 mgg q3w", "regimen[0]"),
    ("gemcitabine 1000 mg/m2 d1,29 q3w", "regimen[0].days"),
    ("pemetrexed AUC5 q3w", "regimen[0].unit"),
])
def test_bad_regimen_is_one_clear_line(regimen, field, tmp_path):
    r = chemoio("simulate", "--regimen", regimen, "--n", "5", "--out", str(tmp_path))
    assert r.returncode == 2
    assert field in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_bad_spec_file_names_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntitle: x\ntrial_id: X\npopulation: {tumor: nsclc_nonsquamous}\n"
                   "arms: [{name: a, label: a, role: control, regimen: keynote189_chemo}]\n"
                   "n_total: -5\nrandomization: '1'\nfollow_up: {accrual_months: 10, data_cutoff_months: 20}\n"
                   "scan_schedule: q6w\nendpoints: [OS]\nprimary_endpoints: [OS]\ncomparisons: []\n")
    r = chemoio("trial", "run", str(bad), "-R", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "n_total" in r.stderr and "Traceback" not in r.stderr
    r = chemoio("trial", "run", "keynote18", "-R", "1")
    assert r.returncode == 2 and "keynote189" in r.stderr


def test_help_lists_the_commands():
    r = chemoio("--help")
    assert r.returncode == 0
    for cmd in ("simulate", "drugs", "trial", "calibrate", "validate"):
        assert cmd in r.stdout
    assert "not medical advice" in r.stdout.lower()


def test_model_docs_list_every_parameter_with_its_default():
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "model.md").read_text()
    for p in parameter_table():
        assert f"`{p.name}`" in doc, p.name
        assert f"| {p.value:.4g} |" in doc, p.name


def test_python_dash_m_has_every_command():
    # `python -m chemoio` and running the cli module as a script see the commands that the
    # submodules register (run-cohort, runs, query, experiment)
    import subprocess
    import sys

    for mod in ("chemoio", "chemoio.interfaces.cli"):
        r = subprocess.run([sys.executable, "-m", mod, "--help"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        for cmd in ("run-cohort", "runs", "query", "experiment", "trial"):
            assert cmd in r.stdout, (mod, cmd)


def test_trial_run_prints_the_comparison_table_and_writes_the_report(tmp_path):
    r = chemoio("trial", "run", "keynote361", "-R", "1", "--out", str(tmp_path / "kn361"))
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    for header in ("single-trial 95% CI", "published (CI)", "inside?"):
        assert header in out
    assert "ORR" in out and "OS" in out
    assert (tmp_path / "kn361" / "report.html").stat().st_size > 10_000
