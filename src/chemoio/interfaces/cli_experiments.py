"""``chemoio experiment ...``: the mechanism experiments (registered on the main app).

``chemoio experiment icd``         chemotherapy backbone swapped across agents of different ICD potency
``chemoio experiment sequencing``  chemotherapy before, with or after the checkpoint inhibitor
``chemoio experiment biomarker``   benefit by PD-L1 category and TMB
``chemoio experiment dose``        chemotherapy dose and number of cycles
``chemoio experiment interaction`` the combination against independent action of its parts
``chemoio experiment mechanisms``  chemotherapy's immune effects switched off one at a time

Each writes table.csv, plot.png and summary.md to ``--out`` and prints the table.
Mistakes in options print one line naming the option (exit status 2).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from chemoio.errors import ChemoioInputError

# Registered on the main app in cli.py (``app.add_typer(experiment_app, name="experiment")``);
# this module imports cli.py only inside functions, so it works under ``python -m`` too.
experiment_app = typer.Typer(
    help="Mechanism experiments: what decides the success of chemo-immunotherapy in the model "
    "(ICD of the backbone, sequencing, biomarkers, dose, interaction, mechanism knock-outs). Research output, not medical advice.",
    no_args_is_help=True,
)

#: API argument -> CLI option, so that errors name what the user typed.
_OPTION = {
    "trial": "--trial", "agents": "--agents", "cycles": "--cycles", "offsets": "--offsets",
    "dose_pct": "--doses", "replicates": "--replicates", "n_scale": "--n-scale", "seed": "--seed",
    "n_mechanism": "--n-mech", "pdl1": "--pdl1", "pdl1_cuts": "--pdl1-cuts", "tmb": "--tmb",
    "parameters": "--parameters", "knockouts": "--knockouts",
}

_TRIAL = typer.Option("keynote189", "--trial", "-t", help="Shipped trial spec (see `chemoio trial list`) or a spec YAML; it needs a chemo + checkpoint-inhibitor vs chemo comparison.")
_REPS = typer.Option(10, "--replicates", "-R", help="Replicate trials per condition.")
_SEED = typer.Option(1, "--seed", help="Random seed; every condition uses it (same virtual patients).")
_NSCALE = typer.Option(1.0, "--n-scale", help="Multiply the trial's arm sizes (e.g. 0.25 for a quick look).")
_NMECH = typer.Option(200, "--n-mech", help="Patients of the mechanism read-out cohort per condition.")


def _out(out: Optional[Path], name: str) -> Path:
    return out if out is not None else Path("out") / "experiments" / name


def _command(name: str, args: dict[str, Any]) -> str:
    words = ["chemoio", "experiment", name]
    for opt, val in args.items():
        if val is None or val is False:
            continue
        if val is True:
            words.append(opt)
        elif str(val).startswith("-"):
            words.append(f"{opt}={val}")
        else:
            words += [opt, str(val)]
    return " ".join(shlex.quote(w) for w in words)


def _run(name: str, fn: Callable[..., Any], kwargs: dict[str, Any], out: Path, command: str) -> None:
    from chemoio.interfaces.cli import DISCLAIMER, _progress, console

    t0 = time.perf_counter()
    prog = _progress(1, f"experiment {name}")
    task = prog.add_task(name, total=1, rate="")  # the experiment reports its total
    started = False

    def step(k: int, total: int) -> None:
        nonlocal started
        if not started:  # shown once work starts, so that a bad option prints one line only
            prog.start()
            started = True
        prog.update(task, total=total)
        prog.advance(task, k)
        done = prog.tasks[0].completed
        prog.update(task, rate=f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} patient-sims/s")

    try:
        res = fn(progress=step, **kwargs)
        prog.update(task, completed=prog.tasks[0].total)
    except ChemoioInputError as e:
        if e.field in _OPTION:
            raise ChemoioInputError(_OPTION[e.field], e.message, e.hint) from None
        raise
    finally:
        if started:
            prog.stop()
    paths = res.write(out, command)
    t = Table(title=f"chemoio experiment {name} - {res.trial} ({res.settings.get('replicates')} replicates per condition)")
    frame = res.display_frame()
    for col in frame.columns:
        t.add_column(col, overflow="fold")
    for row in frame.itertuples(index=False):
        t.add_row(*row)
    console.print(t)
    for line in res.headline:
        console.print(f"- {line}")
    console.print(f"wrote {out}/ ({paths['table'].name}, {paths['plot'].name}, {paths['summary'].name}; "
                  f"{time.perf_counter() - t0:.1f} s)")
    console.print(f"[dim]{DISCLAIMER}")


@experiment_app.command("icd")
def icd_cmd(
    trial: str = _TRIAL,
    agents: Optional[str] = typer.Option(None, "--agents", "-a", help="Comma-separated chemotherapy agents (default: 12 agents from anthracyclines to etoposide; see docs/experiments.md)."),
    cycles: Optional[int] = typer.Option(None, "--cycles", help="Backbone cycles (default: the trial's induction length in 3-week cycles)."),
    equal_kill: bool = typer.Option(False, "--equal-kill", help="Scale each backbone's dose to a common chemotherapy log-kill (a model contrast; doses may leave the label)."),
    fixed_control: bool = typer.Option(False, "--fixed-control", help="Swap the backbone in the combination arm only; the control stays the trial's chemotherapy."),
    replicates: int = _REPS,
    seed: int = _SEED,
    n_scale: float = _NSCALE,
    n_mech: int = _NMECH,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default out/experiments/icd)."),
) -> None:
    """Swap the chemotherapy backbone across agents of different ICD potency; HR and ORR
    difference per agent against its ICD fraction."""
    from chemoio.experiments import icd

    folder = _out(out, "icd")
    cmd = _command("icd", {"--trial": trial, "--agents": agents, "--cycles": cycles, "--equal-kill": equal_kill,
                           "--fixed-control": fixed_control, "-R": replicates, "--seed": seed, "--n-scale": n_scale, "--n-mech": n_mech, "--out": folder})
    _run("icd", icd, dict(trial=trial, agents=agents, cycles=cycles, equal_kill=equal_kill, fixed_control=fixed_control,
                          replicates=replicates,
                          seed=seed, n_scale=n_scale, n_mechanism=n_mech), folder, cmd)


@experiment_app.command("sequencing")
def sequencing_cmd(
    trial: str = _TRIAL,
    offsets: str = typer.Option("-21,-7,0,7,21,42", "--offsets", help="Chemotherapy start minus checkpoint-inhibitor start, in days (negative = chemotherapy first)."),
    shift_control: bool = typer.Option(False, "--shift-control", help="Shift the control arm's chemotherapy the same way (default: control as designed)."),
    replicates: int = _REPS,
    seed: int = _SEED,
    n_scale: float = _NSCALE,
    n_mech: int = _NMECH,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default out/experiments/sequencing)."),
) -> None:
    """Chemotherapy before, with or after the checkpoint inhibitor; HR against the offset."""
    from chemoio.experiments import sequencing

    folder = _out(out, "sequencing")
    cmd = _command("sequencing", {"--trial": trial, "--offsets": offsets, "--shift-control": shift_control,
                                  "-R": replicates, "--seed": seed, "--n-scale": n_scale, "--n-mech": n_mech,
                                  "--out": folder})
    _run("sequencing", sequencing, dict(trial=trial, offsets=offsets, shift_control=shift_control,
                                        replicates=replicates, seed=seed, n_scale=n_scale, n_mechanism=n_mech),
         folder, cmd)


@experiment_app.command("biomarker")
def biomarker_cmd(
    trial: str = _TRIAL,
    pdl1: Optional[str] = typer.Option(None, "--pdl1", help="PD-L1 score: tps, cps or ic (default: the tumour type's usual one)."),
    pdl1_cuts: Optional[str] = typer.Option(None, "--pdl1-cuts", help="Cut-points on that score, e.g. '1,50' (default: the tumour type's)."),
    tmb: str = typer.Option("10", "--tmb", help="TMB cut-points in mut/Mb ('10', '5,10') or 'tertiles'."),
    replicates: int = _REPS,
    seed: int = _SEED,
    n_scale: float = _NSCALE,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default out/experiments/biomarker)."),
) -> None:
    """Benefit of the combination over chemotherapy by PD-L1 category and TMB (forest plot)."""
    from chemoio.experiments import biomarker

    folder = _out(out, "biomarker")
    cmd = _command("biomarker", {"--trial": trial, "--pdl1": pdl1, "--pdl1-cuts": pdl1_cuts, "--tmb": tmb,
                                 "-R": replicates, "--seed": seed, "--n-scale": n_scale, "--out": folder})
    _run("biomarker", biomarker, dict(trial=trial, pdl1=pdl1, pdl1_cuts=pdl1_cuts, tmb=tmb, replicates=replicates,
                                      seed=seed, n_scale=n_scale), folder, cmd)


@experiment_app.command("dose")
def dose_cmd(
    trial: str = _TRIAL,
    doses: str = typer.Option("50,75,100,125", "--doses", help="Chemotherapy dose in % of the trial's dose (> 0, at most 300)."),
    cycles: str = typer.Option("2,4,6", "--cycles", help="Induction cycles (3-week cycles; capped items are scaled in proportion)."),
    replicates: int = _REPS,
    seed: int = _SEED,
    n_scale: float = _NSCALE,
    n_mech: int = _NMECH,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default out/experiments/dose)."),
) -> None:
    """Chemotherapy dose x number of cycles; HR and ORR grid (heatmaps and lines)."""
    from chemoio.experiments import dose

    folder = _out(out, "dose")
    cmd = _command("dose", {"--trial": trial, "--doses": doses, "--cycles": cycles, "-R": replicates,
                            "--seed": seed, "--n-scale": n_scale, "--n-mech": n_mech, "--out": folder})
    _run("dose", dose, dict(trial=trial, dose_pct=doses, cycles=cycles, replicates=replicates, seed=seed,
                            n_scale=n_scale, n_mechanism=n_mech), folder, cmd)


@experiment_app.command("interaction")
def interaction_cmd(
    trial: str = _TRIAL,
    replicates: int = _REPS,
    seed: int = _SEED,
    n_scale: float = _NSCALE,
    parameters: Optional[Path] = typer.Option(None, "--parameters", help="Parameter set (default: shipped)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default out/experiments/interaction)."),
) -> None:
    """The combination against independent action of its parts: each drug alone and the
    combination in the same virtual patients; PFS curves and response rates."""
    from chemoio.experiments import interaction

    folder = _out(out, "interaction")
    cmd = _command("interaction", {"--trial": trial, "-R": replicates, "--seed": seed, "--n-scale": n_scale,
                                   "--parameters": parameters, "--out": folder})
    _run("interaction", interaction, dict(trial=trial, replicates=replicates, seed=seed, n_scale=n_scale,
                                          parameters=parameters), folder, cmd)


@experiment_app.command("mechanisms")
def mechanisms_cmd(
    trial: str = _TRIAL,
    knockouts: Optional[str] = typer.Option(
        None, "--knockouts", "-k",
        help="Comma-separated immune effects of chemotherapy to switch off in turn: icd, treg, mdsc, mhc1, pdl1, "
        "lymphotoxicity (default: all six, plus a row with all of them off)."),
    replicates: int = _REPS,
    seed: int = _SEED,
    n_scale: float = _NSCALE,
    parameters: Optional[Path] = typer.Option(None, "--parameters", help="Parameter set (default: shipped)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default out/experiments/mechanisms)."),
) -> None:
    """Chemotherapy's immune effects (ICD, Treg and MDSC depletion, MHC-I and PD-L1
    induction, lymphotoxicity) switched off one at a time in both arms; HR and response rates."""
    from chemoio.experiments import mechanisms

    folder = _out(out, "mechanisms")
    cmd = _command("mechanisms", {"--trial": trial, "--knockouts": knockouts, "-R": replicates, "--seed": seed,
                                  "--n-scale": n_scale, "--parameters": parameters, "--out": folder})
    _run("mechanisms", mechanisms, dict(trial=trial, knockouts=knockouts, replicates=replicates, seed=seed,
                                        n_scale=n_scale, parameters=parameters), folder, cmd)
