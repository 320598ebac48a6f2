"""Command-line commands for large, resumable cohort runs (registered on the main app).

``chemoio run-cohort``   simulate a cohort in chunks into a run folder (local pool or Dask)
``chemoio runs list``    the runs under a folder
``chemoio runs show``    a run's settings, provenance and progress
``chemoio query``        DuckDB SQL over a run's results (view ``results``)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from chemoio.errors import ChemoioInputError
from chemoio.interfaces.cli import app

runs_app = typer.Typer(help="Resumable cohort runs: list and inspect run folders.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


def _consoles():
    from chemoio.interfaces.cli import console, err_console

    return console, err_console


@app.command("run-cohort")
def run_cohort_cmd(
    regimen: Optional[str] = typer.Option(None, "--regimen", "-r", help="Regimen text, a preset name or a YAML file (with --resume: taken from the run)."),
    tumor: Optional[str] = typer.Option(None, "--tumor", "-t", help="Tumour type (default nsclc_nonsquamous)."),
    n: Optional[int] = typer.Option(None, "--n", help="Number of virtual patients (default 1000)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 1); results depend on it, not on workers or chunking."),
    days: Optional[float] = typer.Option(None, "--days", help="Simulated days (default 730)."),
    interval: Optional[float] = typer.Option(None, "--interval", help="Output every this many days, plus the last day (default 42, q6w scans)."),
    observables: Optional[str] = typer.Option(None, "--observables", help="Comma-separated observables (default sld_mm)."),
    parameters: Optional[Path] = typer.Option(None, "--parameters", help="Parameter-set YAML (default: the shipped calibrated set)."),
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance of the ODE solver (default 1e-6)."),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", help="Patients per chunk/shard (default: about 4 chunks per worker, 256-10,000)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Local worker processes (1 = this process); with --dask-local the LocalCluster size."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
    dask_local: bool = typer.Option(False, "--dask-local", help="Run on a Dask LocalCluster of --workers processes."),
    jobqueue: Optional[Path] = typer.Option(None, "--jobqueue", help="Cluster YAML for dask-jobqueue (SLURM/PBS); see docs/scaling.md."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (new, or an existing run with --resume)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out; its settings must match."),
) -> None:
    """Simulate a cohort in chunks into a resumable run folder (Parquet shards + manifest)."""
    from chemoio.execution import RunStore, make_executor, run_cohort
    from chemoio.interfaces.cli import DISCLAIMER, _progress

    console, err_console = _consoles()
    given = {
        "regimen": regimen, "tumor": tumor, "n": n, "seed": seed, "days": days,
        "interval_days": interval, "rtol": rtol, "chunk_size": chunk_size,
        "observables": None if observables is None else [o.strip() for o in observables.split(",") if o.strip()],
    }
    defaults = {"tumor": "nsclc_nonsquamous", "n": 1000, "seed": 1, "days": 730.0,
                "interval_days": 42.0, "rtol": 1e-6, "observables": ["sld_mm"]}
    regimen_arg = regimen
    param_arg = parameters
    if resume:
        spec = RunStore.open(out).spec  # clear error if --out is not a run
        for key in defaults:
            if given[key] is None:
                given[key] = spec[key]
        if given["chunk_size"] is None:
            given["chunk_size"] = spec["chunk_size"]
        if regimen_arg is None:
            defn = spec["regimen_definition"]
            regimen_arg = defn if not spec["arms"] else {a: defn[a] for a in spec["arms"]}
        if param_arg is None:
            param_arg = spec["parameters"]["values"]
    else:
        if regimen_arg is None:
            raise ChemoioInputError("regimen", "give --regimen (or --resume an existing run)")
        for key, value in defaults.items():
            if given[key] is None:
                given[key] = value

    # Connect first: an unreachable scheduler must not leave a half-made run folder behind.
    executor = make_executor(workers, scheduler=scheduler, dask_local=dask_local, jobqueue=jobqueue)
    t0 = time.perf_counter()
    prog = _progress(1, "run-cohort")
    task = prog.add_task("run", total=1, rate="")
    state = {"done0": 0}

    def on_plan(total: int, done: int) -> None:
        # started only once the run folder is checked: errors print without a stray bar
        state["done0"] = done
        prog.update(task, total=total, completed=done)
        prog.start()

    def step(k: int) -> None:
        prog.advance(task, k)
        new = prog.tasks[0].completed - state["done0"]
        prog.update(task, rate=f"{new / max(time.perf_counter() - t0, 1e-9):,.0f} patients/s")

    try:
        run = run_cohort(
            regimen_arg, given["tumor"], given["n"], given["seed"], run_dir=out,
            days=given["days"], interval_days=given["interval_days"],
            observables=tuple(given["observables"]), parameters=param_arg, rtol=given["rtol"],
            chunk_size=given["chunk_size"], executor=executor, resume=resume,
            progress=step, on_plan=on_plan,
        )
    except KeyboardInterrupt:
        prog.stop()
        err_console.print(f"[yellow]interrupted; finished chunks are kept. Continue with: chemoio run-cohort --out {out} --resume")
        raise typer.Exit(130) from None
    finally:
        prog.stop()
        executor.close()
    for chunk, reason in run.repaired:
        err_console.print(f"[yellow]chunk {chunk}: {reason}; recomputed")
    if run.removed_temp:
        err_console.print(f"[yellow]removed {len(run.removed_temp)} half-written temporary file(s)")
    t = Table(title="chemoio run-cohort", show_header=False)
    for k, v in (("run", str(out)), ("run id", run.run_id), ("executor", json.dumps(run.executor)),
                 ("patients", f"{run.n_patients:,}"),
                 ("chunks computed / reused", f"{run.chunks_computed} / {run.chunks_reused}"),
                 ("wall time", f"{run.wall_s:.1f} s"),
                 ("patients/s (this call)", f"{run.patients_per_s:,.0f}" if run.patients_computed else "-")):
        t.add_row(k, v)
    console.print(t)
    console.print(f'query it: chemoio query {out} "SELECT COUNT(DISTINCT ID) FROM results"')
    console.print(f"[dim]{DISCLAIMER}")


@runs_app.command("list")
def runs_list(root: Path = typer.Argument(Path("."), help="Folder holding run folders.")) -> None:
    """List the runs in a folder (and its sub-folders)."""
    from chemoio.execution import list_runs

    console, _ = _consoles()
    df = list_runs(root)
    if not len(df):
        console.print(f"no runs under {root}")
        return
    t = Table(title=f"runs under {root}")
    t.add_column("run", no_wrap=True)
    for col in ("status", "chunks", "n", "tumor", "seed", "MB", "created"):
        t.add_column(col)
    for r in df.itertuples(index=False):
        t.add_row(r.run, str(r.status), r.chunks, f"{r.n:,}", str(r.tumor), str(r.seed), f"{r.mb:g}",
                  str(r.created)[:16].replace("T", " "))
    console.print(t)
    console.print("[dim]regimen and settings of a run: chemoio runs show RUN")


@runs_app.command("show")
def runs_show(run: Path = typer.Argument(..., help="A run folder."),
              as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Settings, provenance and progress of one run."""
    from chemoio.execution import show_run

    console, _ = _consoles()
    info = show_run(run)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    spec = info["spec"]
    t = Table(title=f"run {run}", show_header=False)
    rows = [
        ("run id", info["run_id"]), ("status", str(info["status"])), ("created", info["created"]),
        ("updated", str(info["updated"])), ("chemoio", f"{info['chemoio_version']} (git {info['git_commit'] or 'unknown'})"),
        ("regimen", json.dumps(spec["regimen"]) if not isinstance(spec["regimen"], str) else spec["regimen"]),
        ("tumor", spec["tumor"]), ("n x replicates", f"{spec['n']:,} x {spec['replicates']}"),
        ("seed", str(spec["seed"])), ("days / interval", f"{spec['days']:g} / {spec['interval_days']:g}"),
        ("observables", ", ".join(spec["observables"])), ("chunk size", str(spec["chunk_size"])),
        ("parameters", _parameters_text(spec["parameters"])),
        ("chunks done", f"{info['chunks_done']}/{info['chunks_total']}"),
        ("patients done", f"{info['patients_done']:,}/{info['patients_total']:,}"),
        ("rows / size", f"{info['rows']:,} / {info['bytes'] / 1e6:.1f} MB"),
        ("attempts", str(len(info["attempts"]))),
    ]
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)


def _parameters_text(rec: dict) -> str:
    text = f"{rec['source']} (sha256 {rec['sha256'][:12]}"
    if rec.get("tumor_overrides"):
        text += f"; tumour overrides: {', '.join(f'{k}={v:g}' for k, v in rec['tumor_overrides'].items())}"
    return text + ")"


@app.command("query")
def query_cmd(
    run: Path = typer.Argument(..., help="A run folder."),
    sql: str = typer.Argument(..., help="DuckDB SQL over the view 'results', e.g. \"SELECT COUNT(DISTINCT ID) FROM results\"."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the result to a .csv or .parquet file instead of printing it."),
    limit: int = typer.Option(50, "--limit", help="Rows to print."),
) -> None:
    """Run DuckDB SQL over a run's finished shards (columns: ID, TIME, observables, status, chunk)."""
    from chemoio.execution import query, show_run

    console, err_console = _consoles()
    info = show_run(run)
    if info["chunks_done"] < info["chunks_total"]:
        err_console.print(f"[yellow]run is incomplete: {info['chunks_done']}/{info['chunks_total']} chunks finished")
    df = query(run, sql)
    if out is not None:
        if out.suffix.lower() == ".parquet":
            df.to_parquet(out, index=False)
        elif out.suffix.lower() == ".csv":
            df.to_csv(out, index=False)
        else:
            raise ChemoioInputError("out", f"use a .csv or .parquet file name, got {out.name!r}")
        console.print(f"wrote {len(df):,} rows to {out}")
        return
    t = Table(title=f"{len(df):,} row(s)")
    for col in df.columns:
        t.add_column(str(col))
    for row in df.head(limit).itertuples(index=False):
        t.add_row(*[f"{v:.6g}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)
    if len(df) > limit:
        console.print(f"[dim]... {len(df) - limit:,} more rows (use --limit or --out)")
