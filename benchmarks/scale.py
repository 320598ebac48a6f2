"""Scale-out benchmark: a large cohort through the chunked, resumable run store.

Scenario: KEYNOTE-189 experimental arm (preset ``keynote189_pembro_chemo``: pembrolizumab
200 mg q3w x35 + pemetrexed 500 mg/m2 q3w + carboplatin AUC5 q3w x4), virtual
non-squamous NSCLC patients, 730 days, SLD at day 0, every 6 weeks and day 730.

(a) main run: ``--n`` patients (default 10^6) on a local process pool of ``--workers``
    (default: all cores): patients/s, wall time, bytes written, peak RSS of this process
    and of each worker (Linux VmHWM, read while the workers live) and the
    ``resource.getrusage`` peaks of this process and of its children.
(b) scaling: ``--n-scaling`` patients on a pool of 1 and of ``--workers`` processes, same
    chunk size: patients/s and their ratio.
(c) Dask: the same ``--n-scaling`` patients on a Dask LocalCluster of ``--workers``
    single-threaded processes: wall time relative to (b)'s pool (overhead ratio).
(d) DuckDB: time of two queries over the main run's shards.

Wall times include starting the workers (spawn, imports, loading the compiled kernel):
what a user waits for. Other load on the machine slows every figure; the load average
before and after is reported.

Usage: python benchmarks/scale.py [--n N] [--workers W] [--n-scaling M] [--chunk-size K]
                                  [--no-dask] [--keep DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from chemoio.execution import DaskExecutor, ProcessPoolExecutor, query, run_cohort

REGIMEN = "keynote189_pembro_chemo"
TUMOR = "nsclc_nonsquamous"
DAYS = 730.0
INTERVAL = 42.0
SEED = 2024


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def peak_rss_mb() -> dict[str, float]:
    """Peak resident set size (MB) from getrusage: this process, and the largest of its
    finished children. On Linux a spawned child's figure includes the parent's image it was
    forked from before exec, so the per-worker VmHWM figures of each run are the better
    measure of a worker's own memory."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024  # KB on Linux, bytes on macOS
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"self_mb": round(own, 1), "largest_child_mb": round(kids, 1)}


def vmhwm_mb(pid: int | str = "self") -> float | None:
    """Peak RSS of one live process since its exec (Linux /proc VmHWM), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _own_vmhwm() -> float | None:
    return vmhwm_mb("self")


def worker_peaks(executor) -> list[float | None]:
    """Peak RSS of each worker process, read while the workers are alive."""
    if hasattr(executor, "worker_pids"):
        return [vmhwm_mb(pid) for pid in executor.worker_pids()]
    if hasattr(executor, "client"):
        return sorted(executor.client.run(_own_vmhwm).values())
    return []


def timed_run(run_dir: Path, n: int, executor, chunk_size: int | None) -> dict:
    t0 = time.perf_counter()
    run = run_cohort(REGIMEN, TUMOR, n, SEED, run_dir=run_dir, days=DAYS, interval_days=INTERVAL,
                     observables=("sld_mm",), chunk_size=chunk_size, executor=executor)
    wall = time.perf_counter() - t0
    bytes_ = sum(p.stat().st_size for p in (run_dir / "shards").rglob("part.parquet"))
    return {"n": n, "wall_s": round(wall, 2), "patients_per_s": round(n / wall, 1),
            "chunks": run.chunks_total, "chunk_size": json.loads((run_dir / "manifest.json").read_text())["spec"]["chunk_size"],
            "shard_mb": round(bytes_ / 1e6, 2), "executor": run.executor,
            "worker_peak_rss_mb": worker_peaks(executor), "parent_peak_rss_mb": vmhwm_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="patients in the main run")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes")
    ap.add_argument("--n-scaling", type=int, default=20_000, help="patients for the 1-vs-W and Dask runs")
    ap.add_argument("--chunk-size", type=int, default=None, help="patients per chunk of the main run (default: auto)")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster comparison")
    ap.add_argument("--keep", default=None, help="write the runs into this folder and keep them")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="chemoio-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    w = args.workers
    out: dict = {"scenario": f"{REGIMEN}, {TUMOR}, {DAYS:g} days, SLD q6w", "workers": w,
                 "cpu_count": os.cpu_count(), "platform": platform.platform(),
                 "python": platform.python_version(), "loadavg_start": loadavg()}
    try:
        # (a) main run
        with ProcessPoolExecutor(w) as ex:
            main_run = timed_run(base / "main", args.n, ex, args.chunk_size)
        out["main"] = main_run
        print(f"main: {args.n:,} patients, {w} workers: {main_run['wall_s']:.1f} s, "
              f"{main_run['patients_per_s']:,.0f} patients/s, {main_run['shard_mb']} MB", flush=True)

        # (d) DuckDB over the main run
        t0 = time.perf_counter()
        ids = int(query(base / "main", "SELECT COUNT(DISTINCT ID) AS n FROM results")["n"].item())
        t_count = time.perf_counter() - t0
        t0 = time.perf_counter()
        med = query(base / "main", "SELECT TIME, median(sld_mm) AS med FROM results GROUP BY TIME ORDER BY TIME")
        t_median = time.perf_counter() - t0
        assert ids == args.n, (ids, args.n)
        out["duckdb"] = {"count_distinct_id_s": round(t_count, 3), "median_by_time_s": round(t_median, 3),
                         "median_sld_day730_mm": round(float(med["med"].iloc[-1]), 2)}
        print(f"duckdb: COUNT(DISTINCT ID) {t_count:.2f} s, median SLD by visit {t_median:.2f} s", flush=True)

        # (b) 1 vs W workers, same chunk size
        m = min(args.n_scaling, args.n)
        cs = max(256, m // (4 * w))
        with ProcessPoolExecutor(1) as ex:
            one = timed_run(base / "scale-1", m, ex, cs)
        with ProcessPoolExecutor(w) as ex:
            many = timed_run(base / f"scale-{w}", m, ex, cs)
        out["scaling"] = {"n": m, "chunk_size": cs, "pool_1": one, f"pool_{w}": many,
                          "speedup": round(many["patients_per_s"] / one["patients_per_s"], 2)}
        print(f"scaling: {m:,} patients: 1 worker {one['patients_per_s']:,.0f}/s, {w} workers "
              f"{many['patients_per_s']:,.0f}/s (x{out['scaling']['speedup']})", flush=True)

        # (c) Dask LocalCluster vs the pool
        if not args.no_dask:
            t0 = time.perf_counter()
            with DaskExecutor(None, w) as ex:
                start = time.perf_counter() - t0
                dask = timed_run(base / "dask", m, ex, cs)
            dask["cluster_start_s"] = round(start, 2)
            dask["wall_with_start_s"] = round(dask["wall_s"] + start, 2)
            out["dask"] = {**dask, "overhead_ratio": round(dask["wall_with_start_s"] / many["wall_s"], 2)}
            print(f"dask LocalCluster: {dask['wall_with_start_s']:.1f} s incl. {start:.1f} s start-up vs pool "
                  f"{many['wall_s']:.1f} s (ratio {out['dask']['overhead_ratio']})", flush=True)
        out["peak_rss"] = peak_rss_mb()
        out["loadavg_end"] = loadavg()
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
