"""Scale-out execution: chunked cohorts on local processes or Dask, results in resumable
Parquet run directories, queried with DuckDB.

>>> from chemoio.execution import run_cohort, query
>>> run_cohort("keynote189_pembro_chemo", "nsclc_nonsquamous", n=100_000, seed=1,
...            workers=2, run_dir="runs/kn189")
>>> query("runs/kn189", "SELECT COUNT(DISTINCT ID) FROM results")

See docs/scaling.md.
"""

from chemoio.execution.cohort_job import (
    ChunkTask,
    CohortRun,
    output_times,
    resume_run,
    run_cohort,
    simulate_chunk,
)
from chemoio.execution.executors import (
    DaskExecutor,
    ProcessPoolExecutor,
    SerialExecutor,
    load_jobqueue_config,
    make_executor,
)
from chemoio.execution.store import RunStore, connect, list_runs, query, show_run

__all__ = [
    "ChunkTask",
    "CohortRun",
    "DaskExecutor",
    "ProcessPoolExecutor",
    "RunStore",
    "SerialExecutor",
    "connect",
    "list_runs",
    "load_jobqueue_config",
    "make_executor",
    "output_times",
    "query",
    "resume_run",
    "run_cohort",
    "show_run",
    "simulate_chunk",
]
