"""Large cohorts in chunks: any executor, results in a resumable run directory.

>>> from chemoio.execution import run_cohort, query
>>> run = run_cohort("keynote189_pembro_chemo", "nsclc_nonsquamous", n=100_000, seed=1,
...                  workers=2, run_dir="runs/kn189")
>>> query("runs/kn189", "SELECT COUNT(DISTINCT ID) FROM results")

Determinism: the patients with global indices ``start .. stop-1`` are drawn by
``sample_patients(tumor, stop - start, seed, start_index=start)``, whose draws depend on
``(seed, index)`` only, and the engine integrates every patient on its own. A chunk's rows
are therefore the same whichever executor, number of workers or chunk size computed them,
and equal to ``chemoio.simulate(...)`` for the same seed and output times.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chemoio.errors import ChemoioInputError
from chemoio.execution.executors import make_executor
from chemoio.execution.store import RunStore, chunk_entry, git_commit, json_hash, now_iso

DEFAULT_JOB_OBSERVABLES = ("sld_mm",)
DEFAULT_INTERVAL_DAYS = 42.0  # q6w scan visits
MAX_AUTO_CHUNK = 10_000
MIN_AUTO_CHUNK = 256
# Spec fields compared on resume, in the order they are reported.
SPEC_FIELDS = ("regimen", "tumor", "n", "seed", "days", "interval_days", "times", "observables",
               "rtol", "chunk_size", "replicates", "parameters")


# ----------------------------------------------------------------------------------------
# The per-chunk work (runs in a worker)
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs for one chunk (small: pickled to the worker)."""

    regimen: Any  # chemoio.regimens.Regimen
    tumor: str
    seed: int
    start: int  # first global patient index
    count: int
    times: tuple[float, ...]
    observables: tuple[str, ...]
    parameters: dict[str, float]
    rtol: float


def warm_up_kernel() -> None:
    """Compile (or load) the engine kernel in this process before any worker starts, through
    the same code path the workers use, so that workers load the cached binary instead of
    all compiling it at once."""
    from chemoio.interfaces.api import simulate

    simulate("pembrolizumab 200 mg q3w; carboplatin AUC5 q3w", "nsclc_nonsquamous", n=2, seed=0,
             days=14.0, observables=("sld_mm",))


def simulate_chunk(task: ChunkTask) -> dict[str, np.ndarray]:
    """Sample the chunk's patients and simulate them; return the long table as columns:
    ID (global index + 1), TIME (days), one column per observable, status (0 = solved)."""
    from chemoio.engine.cohort import CPUBackend
    from chemoio.engine.inputs import build_input
    from chemoio.model.parameters import agent_potency
    from chemoio.population import parameter_matrix
    from chemoio.population import sample_patients

    vp = sample_patients(task.tumor, task.count, task.seed, start_index=task.start)
    cov = vp.covariates
    times = np.asarray(task.times, dtype=np.float64)
    sim, _ = build_input(
        task.regimen, parameter_matrix(vp.params, task.tumor, task.parameters),
        cov["weight_kg"].to_numpy(), cov["bsa_m2"].to_numpy(), cov["gfr_mL_min"].to_numpy(),
        times, task.observables, pk_eta=vp.pk_eta, rtol=task.rtol,
        potency=agent_potency(task.parameters),
    )
    values, status, _steps = CPUBackend().run(sim)
    n, _, t = values.shape
    cols: dict[str, np.ndarray] = {
        "ID": np.repeat(vp.index.astype(np.int64) + 1, t),
        "TIME": np.tile(times, n),
    }
    for k, name in enumerate(task.observables):
        cols[name] = np.ascontiguousarray(values[:, k, :]).ravel()
    cols["status"] = np.repeat(status.astype(np.int8), t)
    return cols


def _to_table(cols: dict[str, np.ndarray]):
    import pyarrow as pa

    return pa.table(cols)


# ----------------------------------------------------------------------------------------
# Spec
# ----------------------------------------------------------------------------------------
def output_times(days: float, interval_days: float) -> np.ndarray:
    """Day 0, every ``interval_days``, and ``days`` itself."""
    if not (isinstance(days, (int, float)) and math.isfinite(days) and days > 0):
        raise ChemoioInputError("days", f"simulation length must be > 0 days, got {days!r}")
    if not (isinstance(interval_days, (int, float)) and math.isfinite(interval_days) and interval_days > 0):
        raise ChemoioInputError("interval_days", f"output interval must be > 0 days, got {interval_days!r}")
    t = np.arange(0.0, float(days), float(interval_days))
    if t.size == 0 or t[-1] < days:
        t = np.append(t, float(days))
    return t


def _regimens(regimen) -> dict[str | None, Any]:
    from chemoio.regimens import Regimen, resolve_regimen

    def one(r, field):
        if isinstance(r, Regimen):
            return r
        if isinstance(r, Mapping):
            return Regimen.from_dict(r)
        return resolve_regimen(r)

    if isinstance(regimen, Mapping) and "items" not in regimen and "text" not in regimen:
        if not regimen:
            raise ChemoioInputError("regimen", "give at least one arm")
        return {str(arm): one(r, f"regimen.{arm}") for arm, r in regimen.items()}
    return {None: one(regimen, "regimen")}


def _check_int(value, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ChemoioInputError(field, f"must be an integer >= {minimum}, got {value!r}")
    return int(value)


def auto_chunk_size(n: int, workers: int) -> int:
    """About four chunks per worker, between 256 and 10,000 patients."""
    return int(min(MAX_AUTO_CHUNK, max(MIN_AUTO_CHUNK, math.ceil(n / (4 * max(1, workers))))))


def _parameter_record(parameters, tumor: str) -> tuple[dict[str, float], dict[str, Any]]:
    """The parameter set's values and its manifest record. ``sha256`` identifies the set;
    ``effective_sha256`` also covers the tumour type's shared overrides and the model's
    default parameter values (what the engine actually uses: a new or changed default, such
    as a plausibility bound, makes an old run store incompatible), and is what a resume
    compares."""
    from chemoio.interfaces.api import resolve_parameters
    from chemoio.model.parameters import PARAM_NAMES, default_vector
    from chemoio.population import get_tumor_type

    if parameters is None:
        source = "shipped"
    elif isinstance(parameters, Mapping):
        source = "custom"
    else:
        source = Path(parameters).name
    values = resolve_parameters(dict(parameters) if isinstance(parameters, Mapping) else parameters)
    tumor_overrides = {str(k): float(v) for k, v in get_tumor_type(tumor).shared_overrides.items()}
    return values, {"source": source, "sha256": json_hash(values), "values": values,
                    "tumor_overrides": tumor_overrides,
                    "effective_sha256": json_hash({"set": values, "tumor": tumor_overrides,
                                                   "defaults": dict(zip(PARAM_NAMES, default_vector().tolist()))})}


def build_spec(regimens: dict, tumor: str, n: int, seed: int, days: float, interval_days: float,
               observables: tuple[str, ...], rtol: float, chunk_size: int, replicates: int,
               param_record: dict[str, Any]) -> dict[str, Any]:
    arms = [a for a in regimens if a is not None]
    spec = {
        "regimen": regimens[None].to_text() if not arms else {a: r.to_text() for a, r in regimens.items()},
        "regimen_definition": (regimens[None].to_dict() if not arms
                               else {a: r.to_dict() for a, r in regimens.items()}),
        "tumor": tumor,
        "n": n,
        "seed": seed,
        "days": float(days),
        "interval_days": float(interval_days),
        "times": output_times(days, interval_days).tolist(),
        "observables": list(observables),
        "rtol": float(rtol),
        "chunk_size": chunk_size,
        "replicates": replicates,
        "arms": arms,
        "parameters": param_record,
    }
    return json.loads(json.dumps(spec))  # JSON-normal (lists, floats) so it compares with a loaded one


def _regimen_key(spec: dict[str, Any]) -> Any:
    """What makes two regimens the same for a run: their dose items (not names or notes)."""
    keep = ("items", "surgery_day")
    defn = spec.get("regimen_definition") or {}
    if spec.get("arms"):
        return {arm: {k: v for k, v in defn.get(arm, {}).items() if k in keep} for arm in spec["arms"]}
    return {k: v for k, v in defn.items() if k in keep}


def _same(field: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    if field == "parameters":
        a, b = old.get(field) or {}, new.get(field) or {}
        return a.get("effective_sha256", a.get("sha256")) == b.get("effective_sha256", b.get("sha256"))
    if field == "regimen":
        return old.get("arms") == new.get("arms") and _regimen_key(old) == _regimen_key(new)
    return old.get(field) == new.get(field)


def check_same_spec(stored: dict[str, Any], new: dict[str, Any], run_dir: Path) -> None:
    """ChemoioInputError naming the first field where a resumed run's settings differ."""
    for key in SPEC_FIELDS:
        if not _same(key, stored, new):
            old, given = stored.get(key), new.get(key)
            if key == "parameters":
                old = f"set {old.get('effective_sha256', old.get('sha256', ''))[:12]}"
                given = f"set {given.get('effective_sha256', given.get('sha256', ''))[:12]}"
            raise ChemoioInputError(
                key,
                f"run {run_dir.name} was made with {key}={old!r}, not {given!r}; nothing was changed",
                "resume with the run's own settings (omit the option), or write to a new --out folder",
            )


# ----------------------------------------------------------------------------------------
# The job
# ----------------------------------------------------------------------------------------
@dataclass
class CohortRun:
    """What a (possibly resumed) run did."""

    run_dir: Path
    run_id: str
    n_patients: int
    chunks_total: int
    chunks_computed: int
    chunks_reused: int
    repaired: list[tuple[str, str]] = field(default_factory=list)
    removed_temp: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    executor: dict[str, Any] = field(default_factory=dict)
    patients_computed: int = 0

    @property
    def patients_per_s(self) -> float:
        """Patients computed in this call per second of its wall time (start-up included)."""
        return self.patients_computed / self.wall_s if self.wall_s > 0 else float("nan")

    def query(self, sql: str):
        from chemoio.execution.store import query

        return query(self.run_dir, sql)


def _plan(spec: dict[str, Any]) -> list[dict[str, Any]]:
    arms = spec["arms"] or [None]
    n, cs, reps = spec["n"], spec["chunk_size"], spec["replicates"]
    n_times = len(spec["times"])
    chunks = []
    for arm in arms:
        for rep in range(reps):
            for k, start in enumerate(range(0, n, cs)):
                count = min(cs, n - start)
                part: dict[str, Any] = {}
                if arm is not None:
                    part["arm"] = arm
                if reps > 1:
                    part["replicate"] = rep
                part["chunk"] = k
                chunks.append(chunk_entry(part, start=rep * n + start, count=count,
                                          expected_rows=count * n_times))
    return chunks


def run_cohort(
    regimen,
    tumor: str = "nsclc_nonsquamous",
    n: int = 1000,
    seed: int = 1,
    *,
    run_dir: str | Path,
    days: float = 730.0,
    interval_days: float = DEFAULT_INTERVAL_DAYS,
    observables: tuple[str, ...] | list[str] = DEFAULT_JOB_OBSERVABLES,
    parameters: Mapping[str, float] | str | Path | None = None,
    rtol: float = 1e-6,
    chunk_size: int | None = None,
    replicates: int = 1,
    workers: int | None = None,
    executor=None,
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> CohortRun:
    """Simulate ``n`` patients of ``tumor`` on ``regimen`` in chunks, into ``run_dir``.

    ``regimen``: text, a preset name, a YAML file, a Regimen, or a mapping ``{arm: regimen}``
    (every arm gets the same virtual patients; shards are partitioned by ``arm=``).
    ``replicates`` > 1 adds independent cohorts (replicate r = global indices r*n ... r*n+n-1,
    partition ``replicate=``). Outputs: ``observables`` at day 0, every ``interval_days`` and
    ``days``. ``executor`` (see :mod:`chemoio.execution.executors`) or ``workers`` (1 = this
    process, more = a local process pool). ``resume=True`` continues an interrupted run in
    ``run_dir``: its settings must match (ChemoioInputError naming the field otherwise);
    finished chunks whose shards verify are kept, the rest recomputed.
    ``progress(k)`` is called with the number of patients of each finished chunk;
    ``on_plan(total, already_done)`` once, before computing.
    """
    from chemoio.population import get_tumor_type

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    regimens = _regimens(regimen)
    if not isinstance(tumor, str):
        raise ChemoioInputError("tumor", f"expected a tumour type name, got {tumor!r}")
    get_tumor_type(tumor)  # validates the name (with a suggestion)
    n = _check_int(n, "n", 1)
    seed = _check_int(seed, "seed", 0)
    replicates = _check_int(replicates, "replicates", 1)
    observables = tuple(observables)
    if not observables:
        raise ChemoioInputError("observables", "give at least one observable")
    if not (0 < rtol < 1):
        raise ChemoioInputError("rtol", f"relative tolerance must be in (0, 1), got {rtol}")
    param_values, param_record = _parameter_record(parameters, tumor)

    store = None
    if resume:
        store = RunStore.open(run_dir)
        if chunk_size is None:
            chunk_size = store.spec.get("chunk_size")
    n_workers_hint = getattr(executor, "workers", None) or workers or 1
    chunk_size = auto_chunk_size(n, n_workers_hint) if chunk_size is None else _check_int(chunk_size, "chunk_size", 1)
    spec = build_spec(regimens, tumor, n, seed, days, interval_days, observables, rtol,
                      chunk_size, replicates, param_record)
    _validate_observables(regimens, observables)

    if resume:
        check_same_spec(store.spec, spec, run_dir)
        _check_same_version(store, run_dir)
        store.lock()
        removed = store.remove_stray_temp_files()
        repaired = store.verify()
        store.save()
    else:
        store = RunStore.create(run_dir, spec, _plan(spec))
        removed, repaired = [], []

    own_executor = executor is None
    pending = store.pending_ids()
    total_patients = sum(c["count"] for c in store.chunks.values())
    done_patients = total_patients - sum(store.chunks[k]["count"] for k in pending)
    if on_plan is not None:
        on_plan(total_patients, done_patients)
    attempt = {"started": now_iso(), "git_commit": git_commit(), "chunks_to_compute": len(pending),
               "repaired": repaired, "removed_temp": removed}
    store.manifest["attempts"].append(attempt)
    computed = 0
    computed_patients = 0
    try:
        if pending and own_executor:
            executor = make_executor(workers if workers is not None else 1)
        desc = executor.describe() if (executor is not None and pending) else {"executor": "none", "workers": 0}
        attempt.update(desc)
        store.save()
        if pending:
            warm_up_kernel()
            tasks = ((cid, _task(store.chunks[cid], regimens, spec, param_values)) for cid in pending)
            for chunk_id, cols in executor.map_chunks(simulate_chunk, tasks):
                store.write_shard(chunk_id, _to_table(cols))
                del cols
                computed += 1
                k = store.chunks[chunk_id]["count"]
                computed_patients += k
                if progress is not None:
                    progress(k)
        if not store.pending_ids():
            store.manifest["status"] = "complete"
        attempt["outcome"] = "complete" if not store.pending_ids() else "partial"
    except BaseException as exc:
        attempt["outcome"] = f"interrupted ({type(exc).__name__})"
        raise
    finally:
        attempt["finished"] = now_iso()
        attempt["chunks_computed"] = computed
        attempt["wall_s"] = round(time.perf_counter() - t0, 3)
        with contextlib.suppress(Exception):
            store.save()
        if own_executor and executor is not None:
            executor.close()
        store.unlock()
    out = CohortRun(
        run_dir=run_dir, run_id=store.manifest["run_id"], n_patients=total_patients,
        chunks_total=len(store.chunks), chunks_computed=computed,
        chunks_reused=len(store.chunks) - len(pending), repaired=repaired, removed_temp=removed,
        wall_s=time.perf_counter() - t0, executor=desc, patients_computed=computed_patients,
    )
    return out


def _check_same_version(store: RunStore, run_dir: Path) -> None:
    """A run is finished by the chemoio version that started it (the model may differ
    between versions); a different git commit of the same version is only recorded."""
    import chemoio

    made = store.manifest.get("chemoio_version")
    if made != chemoio.__version__:
        raise ChemoioInputError(
            "chemoio_version", f"run {run_dir.name} was made with chemoio {made}, this is {chemoio.__version__}; nothing was changed",
            "finish it with the version that started it, or start a new run",
        )


def _validate_observables(regimens: dict, observables: tuple[str, ...]) -> None:
    from chemoio.engine.cohort import observable_ids

    for reg in regimens.values():
        observable_ids(observables, tuple(reg.drugs))


def _task(entry: dict[str, Any], regimens: dict, spec: dict[str, Any], param_values) -> ChunkTask:
    arm = entry["partition"].get("arm")
    return ChunkTask(
        regimen=regimens[arm], tumor=spec["tumor"], seed=spec["seed"], start=entry["start"],
        count=entry["count"], times=tuple(spec["times"]), observables=tuple(spec["observables"]),
        parameters=param_values, rtol=spec["rtol"],
    )


def resume_run(run_dir: str | Path, *, workers: int | None = None, executor=None,
               progress: Callable[[int], None] | None = None,
               on_plan: Callable[[int, int], None] | None = None) -> CohortRun:
    """Continue the run in ``run_dir`` with its own stored settings."""
    spec = RunStore.open(run_dir).spec
    defn = spec["regimen_definition"]
    regimen = defn if not spec["arms"] else {a: defn[a] for a in spec["arms"]}
    return run_cohort(
        regimen, spec["tumor"], spec["n"], spec["seed"], run_dir=run_dir, days=spec["days"],
        interval_days=spec["interval_days"], observables=tuple(spec["observables"]),
        parameters=spec["parameters"]["values"], rtol=spec["rtol"], chunk_size=spec["chunk_size"],
        replicates=spec["replicates"], workers=workers, executor=executor, resume=True,
        progress=progress, on_plan=on_plan,
    )
