"""The ``chemoio`` command line.

User mistakes (a misspelled drug, a bad dose, a malformed file) print one line naming the
field and exit with status 2; they never print a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from chemoio.errors import ChemoioInputError

DISCLAIMER = "chemoio is research software: its outputs describe a model, not any patient. Not medical advice."

app = typer.Typer(
    help="chemoio - in-silico chemo-immunotherapy: mechanistic model, drug and regimen "
    "library, virtual patients and virtual trials. " + DISCLAIMER,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _progress(total: int, label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} patients"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal and total < 1,
    )


@app.command()
def simulate(
    regimen: str = typer.Option(..., "--regimen", "-r", help="Regimen text (e.g. 'pembrolizumab 200 mg q3w x35; carboplatin AUC5 q3w x4'), a preset name (see `chemoio regimens`), a YAML file, or placebo (untreated)."),
    tumor: str = typer.Option("nsclc_nonsquamous", "--tumor", "-t", help="Tumour type of the virtual patients (see `chemoio tumors`)."),
    n: int = typer.Option(1000, "--n", help="Number of virtual patients."),
    seed: int = typer.Option(1, "--seed", help="Random seed; the same seed gives the same numbers."),
    days: float = typer.Option(730.0, "--days", help="Simulated time after the first dose (days)."),
    out: Path = typer.Option(Path("out/simulate"), "--out", "-o", help="Output folder."),
    observables: str = typer.Option("sld_mm,effector_t,treg,mdsc,pdl1,antigen_signal", help="Comma-separated observables (see `chemoio observables`)."),
    parameters: Optional[Path] = typer.Option(None, "--parameters", help="Parameter-set YAML (default: the shipped calibrated set)."),
    rtol: float = typer.Option(1e-6, "--rtol", help="Relative tolerance of the ODE solver."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write PNG plots."),
) -> None:
    """Simulate a cohort on a regimen; write observables (Parquet) and plots (PNG)."""
    from chemoio.interfaces.api import simulate as run
    from chemoio.report import band_plot, save_figure, spider_plot

    obs = tuple(o.strip() for o in observables.split(",") if o.strip())
    if "sld_mm" not in obs:
        obs = ("sld_mm",) + obs
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with _progress(n, "simulating") as prog:
        task = prog.add_task("sim", total=n, rate="")

        def step(k: int) -> None:
            prog.advance(task, k)
            done = prog.tasks[0].completed
            prog.update(task, rate=f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} patients/s")

        res = run(regimen, tumor=tumor, n=n, seed=seed, days=days, observables=obs,
                  parameters=parameters, rtol=rtol, chunk_size=max(256, min(20_000, n // 10 or 1)),
                  progress=step)
    wall = time.perf_counter() - t0
    res.to_parquet(out / "observables.parquet")
    cov = res.covariates.copy()
    cov.insert(0, "ID", res.patient_id)
    cov.to_parquet(out / "patients.parquet", index=False)
    fails = res.failures()
    if len(fails):
        fails.to_csv(out / "failures.csv", index=False)
    sld = res["sld_mm"]
    pct = 100.0 * (sld / sld[:, :1] - 1.0)
    best = np.nanmin(pct[:, 1:], axis=1) if pct.shape[1] > 1 else pct[:, 0]
    summary = {
        "regimen": regimen, "tumor": tumor, "n": n, "seed": seed, "days": days,
        "drugs": list(res.drugs), "wall_s": round(wall, 3),
        "patients_per_s": round(n / wall, 1), "solver_failures": int(len(fails)),
        "share_best_change_le_minus30": round(float(np.nanmean(best <= -30.0)), 4),
        "median_pct_change_at_end": round(float(np.nanmedian(pct[:, -1])), 2),
        "disclaimer": DISCLAIMER,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if plots:
        weeks = res.times_day
        save_figure(spider_plot(weeks, pct, title=f"SLD change - {tumor}"), out / "spider.png")
        immune = {o: res[o] for o in obs if o != "sld_mm"}
        if immune:
            save_figure(band_plot(weeks, immune, ylog=True, title="Median and 90% band"), out / "immune_bands.png")
    table = Table(title="chemoio simulate", show_header=False)
    for k in ("regimen", "tumor", "n", "seed", "drugs", "patients_per_s", "solver_failures",
              "share_best_change_le_minus30", "median_pct_change_at_end"):
        table.add_row(k, str(summary[k]))
    console.print(table)
    if len(fails):
        err_console.print(f"[yellow]{len(fails)} patients failed to solve; see {out / 'failures.csv'}")
    console.print(f"wrote {out}/ (observables.parquet, patients.parquet, summary.json{', PNG plots' if plots else ''})")
    console.print(f"[dim]{DISCLAIMER}")


@app.command()
def drugs() -> None:
    """List the drug library (add a drug by adding a YAML file; see docs/drugs.md)."""
    from chemoio.drugs import list_drugs
    from chemoio.model.pkpd import chemo_potency

    t = Table(title="chemoio drug library")
    for col in ("drug", "kind", "class", "dose units", "t1/2", "ICD", "Treg dep.", "MDSC dep.", "lymphotox."):
        t.add_column(col)
    for d in list_drugs():
        if d.is_antibody:
            pk = d.antibody_pk
            cl, v1, q, v2 = pk.cl_L_per_day.value, pk.v1_L.value, pk.q_L_per_day.value, pk.v2_L.value
            a = np.array([[-(cl + q) / v1, q / v2], [q / v1, -q / v2]])
            half = f"{np.log(2) / -np.linalg.eigvals(a).real.max():.1f} d"
            t.add_row(d.name, d.kind, d.drug_class, ", ".join(d.dose_units), half, "", "", "", "")
        else:
            pot = chemo_potency(d)
            im = d.immunomodulation
            t.add_row(d.name, d.kind, d.drug_class, ", ".join(d.dose_units),
                      f"{24 * np.log(2) / pot.k_e_per_day:.1f} h", f"{im.icd_fraction.value:.2f}",
                      f"{im.treg_depletion.value:.2f}", f"{im.mdsc_depletion.value:.2f}",
                      f"{im.lymphotoxicity.value:.2f}")
    console.print(t)


@app.command()
def regimens() -> None:
    """List the preset regimens (one per arm of the calibration trials)."""
    from chemoio.regimens import get_preset, list_presets

    t = Table(title="chemoio regimen presets")
    t.add_column("name")
    t.add_column("regimen")
    for name in list_presets():
        t.add_row(name, get_preset(name).to_text())
    console.print(t)


@app.command()
def tumors() -> None:
    """List the tumour types of the virtual population."""
    from chemoio.population import list_tumor_types

    for name in list_tumor_types():
        console.print(name)


@app.command()
def observables() -> None:
    """List the observables a simulation can return."""
    from chemoio.model.equations import OBSERVABLES

    for name in OBSERVABLES:
        console.print(name)
    console.print("conc:<drug>  (plasma concentration of a regimen drug, mg/L)")


@app.command()
def parameters() -> None:
    """List every model parameter with its default, unit and source."""
    from chemoio.model.parameters import parameter_table

    t = Table(title="chemoio model parameters")
    for col in ("name", "level", "value", "unit", "source"):
        t.add_column(col, overflow="fold")
    for p in parameter_table():
        t.add_row(p.name, p.level, f"{p.value:.4g}", p.unit, p.source)
    console.print(t)


trial_app = typer.Typer(help="Virtual clinical trials: run a shipped or custom trial spec.", no_args_is_help=True)
app.add_typer(trial_app, name="trial")


@trial_app.command("run")
def trial_run(
    spec: str = typer.Argument(..., help="A shipped spec name (see `chemoio trial list`) or a YAML file."),
    replicates: Optional[int] = typer.Option(None, "--replicates", "-R", help="Replicate trials (default: the spec's)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: the spec's)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default out/<spec>)."),
    parameters: Optional[Path] = typer.Option(None, "--parameters", help="Parameter-set YAML (default: the shipped calibrated set)."),
) -> None:
    """Run a virtual trial; print simulated vs published endpoints; write the report."""
    from chemoio.model.parameters import load_parameter_set
    from chemoio.report.trial_report import summary_text_table, write_trial_outputs
    from chemoio.trial import load_spec
    from chemoio.trial.runner import run_trial
    from chemoio.trial.summary import primary_calls

    sp = load_spec(spec)
    params = load_parameter_set(parameters) if parameters is not None else None
    reps = replicates if replicates is not None else sp.replicates
    n_total = sum(sp.arm_sizes().values()) * reps
    t0 = time.perf_counter()
    with _progress(n_total, f"{sp.name}") as prog:
        task = prog.add_task("trial", total=2 * n_total, rate="")

        def step(k: int) -> None:
            prog.advance(task, k)
            done = prog.tasks[0].completed
            prog.update(task, rate=f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} patient-sims/s")

        result = run_trial(sp, replicates=replicates, seed=seed, parameters=params, progress=step)
        prog.update(task, completed=2 * n_total)
    folder = out or Path("out") / sp.name
    paths = write_trial_outputs(result, folder)
    table = Table(title=f"{sp.title} - {result.settings['replicates']} replicate trials of {result.settings['n_per_trial']} patients")
    for col in ("arm / comparison", "subgroup", "endpoint", "simulated (median, 95% interval)",
                "single-trial 95% CI", "published (CI)", "inside?"):
        table.add_column(col, overflow="fold")
    for _, r in summary_text_table(result).iterrows():
        mark = {True: "[green]yes", False: "[red]no", None: "-"}.get(r["inside"], "-")
        table.add_row(r["arm / comparison"], r["subgroup"], r["endpoint"], r["simulated"],
                      r["single-trial 95% CI"], r["published"], mark)
    console.print(table)
    calls = primary_calls(result)
    if len(calls):
        ct = Table(title="Primary endpoints: probability that a replicate trial meets it")
        for col in ("comparison", "endpoint", "P(success)", "simulated call", "published call"):
            ct.add_column(col)
        for _, r in calls.iterrows():
            ct.add_row(r.comparison, r.endpoint, f"{r.p_success:.2f}", str(r.simulated_call), str(r.published_call))
        console.print(ct)
    if result.solver_failures:
        err_console.print(f"[yellow]{result.solver_failures} patient simulations failed to solve (reported, excluded)")
    console.print(f"report: {paths['report']}  (ADaM tables in {folder / 'adam'}; {time.perf_counter() - t0:.1f} s)")
    console.print(f"[dim]{DISCLAIMER}")


@trial_app.command("list")
def trial_list() -> None:
    """List the shipped trial specs."""
    from chemoio.trial import list_specs, load_spec

    t = Table(title="shipped trial specs")
    for col in ("name", "trial", "tumour", "arms", "n"):
        t.add_column(col)
    for name in list_specs():
        sp = load_spec(name)
        t.add_row(name, sp.trial_id, sp.population.tumor, ", ".join(a.name for a in sp.arms),
                  str(sum(sp.arm_sizes().values())))
    console.print(t)


@trial_app.command("schema")
def trial_schema() -> None:
    """Print the JSON Schema of a trial spec."""
    from chemoio.trial import spec_json_schema

    print(json.dumps(spec_json_schema(), indent=2))


def _parameter_set_settings(path: Optional[Path]) -> dict:
    """The ``settings`` block a parameter-set YAML was written with (the shipped set's when
    ``path`` is None; empty when it has none)."""
    from chemoio.model.parameters import shipped_parameter_set_path

    path = path or shipped_parameter_set_path()
    if path is None:
        return {}
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return {}  # load_parameter_set has already reported a bad file by name
    settings = doc.get("settings") if isinstance(doc, dict) else None
    return settings if isinstance(settings, dict) else {}


@app.command()
def calibrate(
    out: Path = typer.Option(Path("src/chemoio/model/data/calibrated.yaml"), "--out", "-o",
                             help="Parameter-set YAML to write (the default is the set shipped with chemoio)."),
    seed: int = typer.Option(2026, "--seed", help="Seed of the virtual trials (common random numbers)."),
    budget_a: int = typer.Option(80, "--budget-a", help="Evaluations for stage A (tumour response; each re-simulates)."),
    budget_b: int = typer.Option(200, "--budget-b", help="Evaluations for stage B (survival link; cheap)."),
    exclude: Optional[str] = typer.Option(None, "--exclude", help="Comma-separated spec names to leave out."),
    start: Optional[Path] = typer.Option(None, "--start", help="Start from this parameter set instead of the priors."),
    replicates: int = typer.Option(1, "--replicates", "-R", min=1,
                                   help="Replicate trials per spec and evaluation (the fit uses their median)."),
    kill_scales: bool = typer.Option(False, "--kill-scales",
                                     help="Also fit a CD8 kill scale per tumour type that has no ICI-monotherapy "
                                          "arm, to its combination arms' tumour-response targets (not used by the "
                                          "shipped set; docs/calibration.md)."),
    combination_survival: bool = typer.Option(False, "--combination-survival",
                                              help="With --kill-scales: fit those combination arms' survival "
                                                   "targets too, in both stages."),
    lymphotoxicity: bool = typer.Option(False, "--lymphotoxicity",
                                        help="Also fit chemotherapy's kill of CD8 effectors in the tumour "
                                             "(shared), to every chemotherapy + ICI arm's tumour-response "
                                             "targets (not used by the shipped set; docs/calibration.md)."),
    encounter_kill: bool = typer.Option(False, "--encounter-kill",
                                        help="Also fit the encounter limit of CD8 killing (shared "
                                             "kill_search_half_fraction, prior 0.003; docs/calibration.md)."),
    memory: bool = typer.Option(False, "--memory",
                                help="Switch on memory CD8 T cells (memory_fraction 0.05) and fit the "
                                     "tumour size at half-maximal recall (shared memory_recall_half_max_cells, "
                                     "prior 1e7 cells; docs/calibration.md)."),
) -> None:
    """Fit population-level parameters to the calibration trials (docs/calibration.md)."""
    from chemoio.calibration.fit import Calibration, write_parameter_set
    from chemoio.model.parameters import load_parameter_set

    excl = tuple(e.strip() for e in exclude.split(",")) if exclude else ()
    base = load_parameter_set(start) if start else None
    if combination_survival and not kill_scales:
        raise ChemoioInputError("--combination-survival", "only with --kill-scales")
    cal = Calibration(exclude=excl, seed=seed, base=base, replicates=replicates, kill_scales=kill_scales,
                      combination_survival=combination_survival, lymphotoxicity=lymphotoxicity,
                      encounter_kill=encounter_kill, memory=memory,
                      log=lambda m: err_console.print(f"[dim]{m}"))
    console.print(f"calibrating {len(cal.free_a)} + {len(cal.free_b)} parameters to {len(cal.targets)} "
                  f"targets of {len(cal.specs)} trials (fitted targets only; docs/calibration.md)")
    res = cal.run(budget_a=budget_a, budget_b=budget_b)
    cmd = "chemoio calibrate " + " ".join(sys.argv[2:])
    path = write_parameter_set(res, out, cmd.strip())
    res.residuals.to_csv(path.with_suffix(".residuals.csv"), index=False)
    t = Table(title="calibrated parameters")
    t.add_column("parameter")
    t.add_column("value")
    for k, v in sorted(res.parameters.items()):
        t.add_row(k, f"{v:.4g}")
    console.print(t)
    console.print(f"stage A cost {res.stage_a_cost:.2f}, stage B cost {res.stage_b_cost:.2f}, "
                  f"{res.n_evaluations} evaluations, {res.wall_s:.0f} s; wrote {path}")


@app.command()
def validate(
    replicates: int = typer.Option(20, "--replicates", "-R", help="Replicate trials per spec."),
    parameters: Optional[Path] = typer.Option(None, "--parameters", help="Parameter set (default: shipped)."),
    split: bool = typer.Option(False, "--split", help="Leave-one-trial-out: recalibrate without each trial, predict it."),
    out: Path = typer.Option(Path("out/validation"), "--out", "-o", help="Output folder."),
    fit_replicates: int = typer.Option(1, "--fit-replicates", min=1,
                                       help="With --split: replicate trials per spec in each calibration."),
    kill_scales: bool = typer.Option(False, "--kill-scales",
                                     help="With --split: calibrate as `chemoio calibrate --kill-scales` does "
                                          "(a parameter set with kill scales is labelled so without --split)."),
    combination_survival: bool = typer.Option(False, "--combination-survival",
                                              help="With --split --kill-scales: as `chemoio calibrate "
                                                   "--kill-scales --combination-survival`."),
    lymphotoxicity: bool = typer.Option(False, "--lymphotoxicity",
                                        help="With --split: calibrate as `chemoio calibrate --lymphotoxicity` "
                                             "does (a set calibrated so is labelled so without --split)."),
    encounter_kill: bool = typer.Option(False, "--encounter-kill",
                                        help="With --split: calibrate as `chemoio calibrate --encounter-kill` does."),
    memory: bool = typer.Option(False, "--memory",
                                help="With --split: calibrate as `chemoio calibrate --memory` does."),
) -> None:
    """Simulated vs published for every calibration trial; with --split, leave-one-trial-out."""
    from chemoio.calibration.validate import validate as run_validate
    from chemoio.calibration.validate import validate_split
    from chemoio.model.parameters import load_parameter_set

    log = lambda m: err_console.print(f"[dim]{m}")  # noqa: E731
    if split:
        res = validate_split(replicates=replicates, fit_replicates=fit_replicates, kill_scales=kill_scales,
                             combination_survival=combination_survival, lymphotoxicity=lymphotoxicity,
                             encounter_kill=encounter_kill, memory=memory, log=log)
    else:
        params = load_parameter_set(parameters) if parameters else None
        # how the set was calibrated decides which numbers the table labels as fitted
        settings = _parameter_set_settings(parameters)
        res = run_validate(params, replicates=replicates, log=log,
                           combination_survival=bool(settings.get("combination_survival")),
                           lymphotoxicity=bool(settings.get("lymphotoxicity")))
    out.mkdir(parents=True, exist_ok=True)
    name = "validation_split" if split else "validation"
    res.table.to_csv(out / f"{name}.csv", index=False)
    res.calls.to_csv(out / f"{name}_calls.csv", index=False)
    t = Table(title="chemoio validate" + (" --split (leave-one-trial-out)" if split else ""))
    for col in ("trial", "arm / comparison", "subgroup", "endpoint", "role", "published (95% CI)",
                "simulated (median, 95% interval)", "inside?"):
        t.add_column(col, overflow="fold")
    for _, r in res.table.iterrows():
        pub = f"{r.published:.2f}" + (f" ({r.pub_low:.2f}-{r.pub_high:.2f})" if np.isfinite(r.pub_low) else "")
        sim = f"{r.sim_median:.2f} ({r.sim_low:.2f}-{r.sim_high:.2f})" if np.isfinite(r.sim_median) else "-"
        mark = {True: "[green]yes", False: "[red]no"}.get(r.inside, "-")
        t.add_row(r.trial, r.arm, r.subgroup, r.endpoint, r.role, pub, sim, mark)
    console.print(t)
    if len(res.calls):
        ct = Table(title="primary-endpoint calls")
        for col in ("trial", "comparison", "endpoint", "subgroup", "P(success)", "simulated", "published"):
            ct.add_column(col)
        for _, r in res.calls.iterrows():
            ct.add_row(r.trial, r.comparison, r.endpoint, r.subgroup, f"{r.p_success:.2f}",
                       "met" if r.simulated_call else "not met",
                       {True: "met", False: "not met"}.get(r.published_call, "-"))
        console.print(ct)
    s = res.summary
    if "held_out" in res.table.columns:  # --split: every number predicted with its trial left out
        console.print(f"summary (each trial held out): published numbers inside: {s['inside_all']} "
                      f"(fitted by the full calibration {s['inside_fit']}, never fitted {s['inside_predict']}); "
                      f"HRs inside: {s['hr_inside']}; primary-endpoint calls right: {s['calls_right']}")
    else:
        console.print(f"summary: published numbers inside: {s['inside_all']} (fit {s['inside_fit']}, "
                      f"predicted {s['inside_predict']}); HRs inside: {s['hr_inside']}; "
                      f"primary-endpoint calls right: {s['calls_right']}")
    (out / f"{name}_summary.json").write_text(json.dumps(s, indent=2))
    console.print(f"[dim]{DISCLAIMER}")


from chemoio.interfaces import cli_runs  # noqa: E402,F401  (run-cohort, runs, query)
from chemoio.interfaces.cli_experiments import experiment_app  # noqa: E402
app.add_typer(experiment_app, name="experiment")  # icd | sequencing | biomarker | dose | interaction | mechanisms


def main() -> None:
    """Entry point: run the app, turning user errors into one clear line (exit status 2)."""
    try:
        app()
    except ChemoioInputError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    # run as a script: use the imported module so that commands registered by the
    # submodules (run-cohort, runs, query) sit on the same app
    from chemoio.interfaces.cli import main as _main

    _main()
