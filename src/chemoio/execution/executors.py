"""Executors: run independent chunks of work serially, in local processes or on Dask.

Every executor has one method that matters::

    for chunk_id, result in executor.map_chunks(fn, [(chunk_id, payload), ...]):
        ...  # results arrive as chunks complete, in any order

``fn`` must be a module-level function (it is pickled to the workers) taking one payload.
At most ``max_in_flight`` chunks are submitted at a time, so a caller that writes each
result as it arrives holds a bounded number of results in memory however many chunks a
job has.

* :class:`SerialExecutor` runs chunks in this process, one after another.
* :class:`ProcessPoolExecutor` is the local default for more than one worker: a
  ``concurrent.futures`` pool of spawned processes; each worker sets numba to one thread and
  loads the compiled kernel once, when it starts.
* :class:`DaskExecutor` connects to a running Dask scheduler (``tcp://host:8786``), starts a
  :class:`distributed.LocalCluster`, or starts a SLURM/PBS cluster through ``dask-jobqueue``
  from a small YAML file (:func:`load_jobqueue_config`).

An unreachable scheduler or a malformed cluster file raises
:class:`~chemoio.errors.ChemoioInputError` naming the field (``scheduler``, ``jobqueue...``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from chemoio.errors import ChemoioInputError, read_yaml_file, suggest

ChunkSpec = tuple[Any, Any]  # (chunk_id, payload)

SCHEDULER_TIMEOUT_S = 5.0
# NUMBA_NUM_THREADS is deliberately absent: numba is already imported when the initializer
# runs, and a compile re-reads the variable; changing it then ("currently have 1, trying to
# set 2") kills the worker. Workers use numba.set_num_threads(1) instead.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ----------------------------------------------------------------------------------------
# Worker start-up
# ----------------------------------------------------------------------------------------
def warm_worker() -> None:
    """Set numba to one thread and load (or compile) the engine kernel in this process.

    Runs once in every worker process; afterwards each chunk pays only for its patients.
    """
    import numba
    import numpy as np

    from chemoio.engine.cohort import CPUBackend
    from chemoio.engine.inputs import build_input
    from chemoio.model.parameters import default_vector
    from chemoio.regimens import Regimen

    numba.set_num_threads(1)
    sim, _ = build_input(
        Regimen.parse("pembrolizumab 200 mg q3w x2; carboplatin AUC5 q3w x1"),
        default_vector()[None, :], np.array([75.0]), np.array([1.8]), np.array([90.0]),
        np.array([0.0, 7.0]), ("sld_mm",),
    )
    CPUBackend().run(sim)


def _pool_initializer() -> None:
    for name in _THREAD_ENV:
        os.environ[name] = "1"
    warm_worker()


# ----------------------------------------------------------------------------------------
# Interface
# ----------------------------------------------------------------------------------------
class Executor(Protocol):
    """Runs ``fn(payload)`` for each ``(chunk_id, payload)`` and yields ``(chunk_id, result)``
    as chunks complete."""

    name: str
    workers: int

    def map_chunks(self, fn: Callable[[Any], Any], chunk_specs: Iterable[ChunkSpec]) -> Iterator[tuple[Any, Any]]:
        ...

    def close(self) -> None:
        ...

    def describe(self) -> dict[str, Any]:
        ...


class _Base:
    name = "base"
    workers = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden where needed
        pass

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers}


class SerialExecutor(_Base):
    """Chunks one after another in this process. ``n_threads`` (None = numba's setting)
    is the number of numba threads each chunk may use."""

    name = "serial"

    def __init__(self, n_threads: int | None = None):
        self.workers = 1
        self.n_threads = n_threads

    def map_chunks(self, fn, chunk_specs):
        with _numba_threads(self.n_threads):
            for chunk_id, payload in chunk_specs:
                yield chunk_id, fn(payload)


@contextlib.contextmanager
def _numba_threads(n: int | None):
    if not n:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _windowed(submit, wait_one, chunk_specs, window):
    """Submit at most ``window`` chunks at a time (an int, or a callable giving the current
    limit); yield results as they complete."""
    pending: dict[Any, Any] = {}
    it = iter(chunk_specs)
    exhausted = False
    limit = window if callable(window) else (lambda: window)
    while True:
        while not exhausted and len(pending) < limit():
            try:
                chunk_id, payload = next(it)
            except StopIteration:
                exhausted = True
                break
            pending[submit(chunk_id, payload)] = chunk_id
        if not pending:
            return
        fut = wait_one(pending)
        chunk_id = pending.pop(fut)
        yield chunk_id, fut.result()


class ProcessPoolExecutor(_Base):
    """``workers`` spawned local processes (numba single-threaded in each)."""

    name = "process-pool"

    def __init__(self, workers: int | None = None, max_in_flight: int | None = None):
        import concurrent.futures as cf
        import multiprocessing as mp

        self.workers = _check_workers(workers if workers is not None else os.cpu_count() or 1)
        self.max_in_flight = max_in_flight or 2 * self.workers
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=mp.get_context("spawn"), initializer=_pool_initializer
        )

    def map_chunks(self, fn, chunk_specs):
        import concurrent.futures as cf

        def wait_one(pending):
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            return next(iter(done))

        try:
            yield from _windowed(lambda cid, p: self._pool.submit(fn, p), wait_one, chunk_specs,
                                 self.max_in_flight)
        except cf.process.BrokenProcessPool as exc:
            raise RuntimeError(
                "a worker process died (killed, or out of memory?); finished chunks are kept - "
                "run again with resume to compute the rest"
            ) from exc

    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (empty before the first chunk is submitted)."""
        return sorted((getattr(self._pool, "_processes", None) or {}).keys())

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------------------
# Dask
# ----------------------------------------------------------------------------------------
_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|inproc|ucx)://[^\s/]+(:\d+)?/?$")


def _import_distributed(field: str):
    try:
        import distributed
    except ImportError:
        raise ChemoioInputError(
            field, "Dask is not installed", "install it with: pip install 'chemoio[dask]'"
        ) from None
    return distributed


def _warm_plugin_class():
    from distributed.diagnostics.plugin import WorkerPlugin

    class ChemoioWarmup(WorkerPlugin):
        """Set numba to one thread and load the kernel when a Dask worker starts."""

        name = "chemoio-warmup"

        def setup(self, worker) -> None:
            warm_worker()

    return ChemoioWarmup


@contextlib.contextmanager
def _quiet(names=("distributed", "tornado", "asyncio"), level=logging.CRITICAL):
    loggers = [logging.getLogger(n) for n in names]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, old):
            lg.setLevel(lv)


class DaskExecutor(_Base):
    """Chunks as Dask tasks.

    ``scheduler``: the address of a running scheduler (``tcp://host:8786``; workers need
    chemoio installed), or None to start a ``LocalCluster`` of ``workers`` single-threaded
    processes on this machine. ``cluster`` (advanced) is an already created cluster object,
    e.g. from :func:`jobqueue_cluster`; it is closed with the executor.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, *,
                 timeout: float = SCHEDULER_TIMEOUT_S, max_in_flight: int | None = None,
                 cluster: Any = None, warm: bool = True):
        distributed = _import_distributed("scheduler")
        self._cluster = None
        self.scheduler = scheduler
        if scheduler is not None:
            if not isinstance(scheduler, str) or not _ADDRESS.match(scheduler.strip()):
                raise ChemoioInputError(
                    "scheduler", f"not a scheduler address: {scheduler!r}", "give e.g. tcp://host:8786"
                )
            address = scheduler.strip()
            try:
                with _quiet():
                    self.client = distributed.Client(address, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ChemoioInputError("scheduler", f"cannot reach {address}: {_reason(exc)}") from None
            self.workers = max(1, self._count_workers())
            self.kind = "dask-scheduler"
            self._check_worker_versions()
        else:
            if cluster is None:
                n = _check_workers(workers if workers is not None else os.cpu_count() or 1)
                with _quiet(level=logging.ERROR):
                    cluster = distributed.LocalCluster(
                        n_workers=n, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.ERROR,
                    )
                self.kind = "dask-local"
            else:
                self.kind = "dask-cluster"
            self._cluster = cluster
            self.client = distributed.Client(cluster, set_as_default=False)
            self.workers = workers or max(1, self._count_workers())
        self.max_in_flight = max_in_flight
        self._seen = (0.0, self.workers)
        if warm:
            self.client.register_plugin(_warm_plugin_class()())

    def _count_workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def _window(self) -> int:
        """2 chunks per worker; the worker count is re-read every few seconds, since a
        cluster may grow (batch jobs starting) while the job runs."""
        if self.max_in_flight:
            return self.max_in_flight
        import time

        checked, n = self._seen
        if time.monotonic() - checked > 5.0:
            with contextlib.suppress(Exception):
                n = max(self.workers, self._count_workers())
            self._seen = (time.monotonic(), n)
        return 2 * n

    def _check_worker_versions(self) -> None:
        import chemoio

        try:
            versions = self.client.run(_chemoio_version)
        except Exception as exc:  # noqa: BLE001 - e.g. chemoio not installed on the workers
            self.close()
            raise ChemoioInputError("scheduler", f"the workers of {self.scheduler} cannot run chemoio: {_reason(exc)}",
                                    "install the same chemoio version on every worker") from None
        other = sorted({v for v in versions.values() if v != chemoio.__version__})
        if other:
            self.close()
            raise ChemoioInputError(
                "scheduler", f"workers run chemoio {', '.join(other)}, this process {chemoio.__version__}",
                "results are only reproducible with one version everywhere",
            )

    def map_chunks(self, fn, chunk_specs):
        from distributed import as_completed

        ac = as_completed(loop=self.client.loop)

        def submit(chunk_id, payload):
            fut = self.client.submit(fn, payload, pure=False)
            ac.add(fut)
            return fut

        def wait_one(pending):
            return next(ac)

        yield from _windowed(submit, wait_one, chunk_specs, self._window)

    def describe(self) -> dict[str, Any]:
        out = {"executor": self.kind, "workers": self.workers}
        if self.scheduler:
            out["scheduler"] = self.scheduler
        return out

    def close(self) -> None:
        try:
            with _quiet():
                self.client.close()
                if self._cluster is not None:
                    self._cluster.close()
        except Exception:  # noqa: BLE001 - closing must never mask the job's own outcome
            pass


def _chemoio_version() -> str:
    import chemoio

    return chemoio.__version__


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _check_workers(workers) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ChemoioInputError("workers", f"number of workers must be a positive integer, got {workers!r}")
    return workers


# ----------------------------------------------------------------------------------------
# dask-jobqueue clusters from YAML
# ----------------------------------------------------------------------------------------
JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}
# Keyword arguments of dask_jobqueue's SLURMCluster / PBSCluster accepted from the file.
JOBQUEUE_COMMON = {
    "cores": int, "processes": int, "memory": str, "walltime": str, "queue": str,
    "account": str, "name": str, "interface": str, "local_directory": str,
    "log_directory": str, "shebang": str, "python": str, "job_name": str,
    "job_extra_directives": list, "job_script_prologue": list, "job_directives_skip": list,
    "worker_extra_args": list, "death_timeout": (int, float), "nanny": bool,
}
JOBQUEUE_ONLY = {"slurm": {"job_cpu": int, "job_mem": str}, "pbs": {"resource_spec": str}}
JOBQUEUE_TOP = ("kind", "jobs", "cluster")


def load_jobqueue_config(source: str | Path | dict) -> dict[str, Any]:
    """Read and validate a cluster file::

        kind: slurm            # or pbs
        jobs: 4                # batch jobs to request (each runs `processes` workers)
        cluster:               # keyword arguments of SLURMCluster / PBSCluster
          cores: 32
          processes: 32        # one single-threaded worker per core
          memory: 64GB
          walltime: "04:00:00"
          queue: normal

    Returns ``{"kind", "jobs", "cluster"}``; raises ChemoioInputError naming the field.
    """
    if isinstance(source, dict):
        raw = source
    else:
        raw = read_yaml_file(source, "jobqueue")
    if not isinstance(raw, dict):
        raise ChemoioInputError("jobqueue", "the cluster file must hold a mapping (kind, jobs, cluster)")
    for key in raw:
        if key not in JOBQUEUE_TOP:
            raise ChemoioInputError(f"jobqueue.{key}", "unknown key", suggest(str(key), JOBQUEUE_TOP))
    kind = str(raw.get("kind", "")).lower()
    if kind not in JOBQUEUE_KINDS:
        raise ChemoioInputError("jobqueue.kind", f"must be one of {sorted(JOBQUEUE_KINDS)}, got {raw.get('kind')!r}")
    jobs = raw.get("jobs", 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ChemoioInputError("jobqueue.jobs", f"must be a positive integer, got {jobs!r}")
    cluster = raw.get("cluster")
    if not isinstance(cluster, dict):
        raise ChemoioInputError("jobqueue.cluster", "a mapping of SLURMCluster/PBSCluster arguments is required")
    allowed = {**JOBQUEUE_COMMON, **JOBQUEUE_ONLY[kind]}
    for key, value in cluster.items():
        field = f"jobqueue.cluster.{key}"
        if key not in allowed:
            raise ChemoioInputError(field, f"not a {JOBQUEUE_KINDS[kind]} argument chemoio accepts",
                                    suggest(str(key), allowed))
        typ = allowed[key]
        if typ is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ChemoioInputError(field, f"must be a positive integer, got {value!r}")
        if typ is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ChemoioInputError(field, f"must be a list of strings, got {value!r}")
        if typ is str and not isinstance(value, str):
            raise ChemoioInputError(field, f"must be a string, got {value!r}")
        if typ is bool and not isinstance(value, bool):
            raise ChemoioInputError(field, f"must be true or false, got {value!r}")
        if typ == (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ChemoioInputError(field, f"must be a number, got {value!r}")
    for key in ("cores", "memory"):
        if key not in cluster:
            raise ChemoioInputError(f"jobqueue.cluster.{key}", "is required")
    if cluster.get("processes", 1) > cluster["cores"]:
        raise ChemoioInputError("jobqueue.cluster.processes", "cannot exceed cores (workers are single-threaded)")
    if "memory" in cluster and not re.match(r"^\d+(\.\d+)?\s*[KMGT]i?B$", cluster["memory"], re.I):
        raise ChemoioInputError("jobqueue.cluster.memory", f"expected e.g. '64GB', got {cluster['memory']!r}")
    return {"kind": kind, "jobs": jobs, "cluster": dict(cluster)}


def jobqueue_cluster(config: dict[str, Any]):
    """Start the SLURM/PBS cluster of a validated config and request its jobs."""
    try:
        import dask_jobqueue
    except ImportError:
        raise ChemoioInputError(
            "jobqueue", "dask-jobqueue is not installed", "pip install dask-jobqueue"
        ) from None
    cls = getattr(dask_jobqueue, JOBQUEUE_KINDS[config["kind"]])
    kwargs = dict(config["cluster"])
    # one thread per worker process: the engine parallelises over processes
    kwargs.setdefault("processes", kwargs["cores"])
    cluster = cls(**kwargs)
    cluster.scale(jobs=config["jobs"])
    return cluster, config["jobs"] * kwargs["processes"]


# ----------------------------------------------------------------------------------------
# Factory
# ----------------------------------------------------------------------------------------
def make_executor(workers: int | None = None, *, scheduler: str | None = None,
                  dask_local: bool = False, jobqueue: str | Path | dict | None = None,
                  timeout: float = SCHEDULER_TIMEOUT_S) -> _Base:
    """The executor for command-line style options.

    ``scheduler`` (an address) or ``jobqueue`` (a cluster file) or ``dask_local`` select Dask;
    otherwise ``workers`` > 1 gives a local process pool and 1 runs in this process.
    """
    chosen = [name for name, on in (("scheduler", scheduler), ("dask_local", dask_local),
                                    ("jobqueue", jobqueue)) if on]
    if len(chosen) > 1:
        raise ChemoioInputError(chosen[1], f"give only one of {', '.join(chosen)}")
    if scheduler:
        return DaskExecutor(scheduler, timeout=timeout)
    if jobqueue:
        cluster, n = jobqueue_cluster(load_jobqueue_config(jobqueue))
        return DaskExecutor(None, n, cluster=cluster)
    if dask_local:
        return DaskExecutor(None, workers)
    n = _check_workers(workers if workers is not None else 1)
    return SerialExecutor() if n == 1 else ProcessPoolExecutor(n)
