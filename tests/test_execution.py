"""Scale-out execution: determinism across executors and chunkings, resumable run folders
(kill, corruption, half-written files), DuckDB queries, input errors, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from chemoio.errors import ChemoioInputError
from chemoio.execution import (
    DaskExecutor,
    ProcessPoolExecutor,
    RunStore,
    list_runs,
    load_jobqueue_config,
    output_times,
    query,
    resume_run,
    run_cohort,
    show_run,
)

REG = "keynote189_pembro_chemo"
TUMOR = "nsclc_nonsquamous"
N = 600
SEED = 11
KW = dict(days=365.0, interval_days=28.0)
N_TIMES = len(output_times(365.0, 28.0))


def table(run_dir) -> pd.DataFrame:
    """All rows of a run, sorted, without the partition column."""
    return query(run_dir, "SELECT * EXCLUDE (chunk) FROM results ORDER BY ID, TIME")


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)



@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The cohort computed in one chunk, in this process."""
    d = tmp_path_factory.mktemp("ref") / "run"
    run = run_cohort(REG, TUMOR, N, SEED, run_dir=d, chunk_size=N, workers=1, **KW)
    assert run.chunks_computed == 1
    return table(d)


def test_reference_matches_simulate_api(reference):
    import chemoio

    res = chemoio.simulate(REG, TUMOR, N, SEED, times=output_times(365.0, 28.0), observables=("sld_mm",))
    frame = res.to_frame()
    assert_same(reference[["ID", "TIME", "sld_mm"]], frame)
    assert (reference["status"] == 0).all()
    assert reference["ID"].min() == 1 and reference["ID"].max() == N


def test_tumour_overrides_applied_as_in_simulate(tmp_path):
    import chemoio
    from chemoio.population import get_tumor_type

    tumor = "tnbc_early"  # a tumour type with shared-parameter overrides
    assert get_tumor_type(tumor).shared_overrides
    d = tmp_path / "tumour"
    run_cohort("pembrolizumab 200 mg q3w x8", tumor, 30, 4, run_dir=d, chunk_size=16, workers=1, **KW)
    res = chemoio.simulate("pembrolizumab 200 mg q3w x8", tumor, 30, 4, times=output_times(365.0, 28.0),
                           observables=("sld_mm",))
    assert_same(table(d)[["ID", "TIME", "sld_mm"]], res.to_frame())
    rec = show_run(d)["spec"]["parameters"]
    assert rec["tumor_overrides"] == {k: float(v) for k, v in get_tumor_type(tumor).shared_overrides.items()}


def test_same_results_for_any_workers_and_chunk_size(tmp_path, reference):
    serial = tmp_path / "serial"
    run = run_cohort(REG, TUMOR, N, SEED, run_dir=serial, chunk_size=97, workers=1, **KW)
    assert run.chunks_total == 7 and run.executor["executor"] == "serial"
    assert_same(table(serial), reference)

    pooled = tmp_path / "pool"
    with ProcessPoolExecutor(2) as ex:
        run = run_cohort(REG, TUMOR, N, SEED, run_dir=pooled, chunk_size=128, executor=ex, **KW)
        assert run.chunks_total == 5 and run.executor == {"executor": "process-pool", "workers": 2}
        assert_same(table(pooled), reference)

        # submission is windowed: a job never has more than max_in_flight chunks out
        pulled = []

        def specs():
            for i in range(40):
                pulled.append(i)
                yield i, -i

        first = True
        got = {}
        for cid, res in ex.map_chunks(abs, specs()):
            if first:
                assert len(pulled) <= ex.max_in_flight + 1
                first = False
            got[cid] = res
        assert got == {i: i for i in range(40)}


def test_dask_local_cluster_equals_local_pool(tmp_path, reference):
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    d = tmp_path / "dask"
    with DaskExecutor(None, 2) as ex:
        run = run_cohort(REG, TUMOR, N, SEED, run_dir=d, chunk_size=150, executor=ex, **KW)
        assert run.executor == {"executor": "dask-local", "workers": 2}
        assert run.chunks_computed == 4
        assert_same(table(d), reference)
        # the same cluster reached through its scheduler address (as a remote cluster would be)
        address = ex.client.scheduler.address
        assert address.startswith("tcp://")
        with DaskExecutor(address) as remote:
            d2 = tmp_path / "dask-remote"
            run = run_cohort(REG, TUMOR, N, SEED, run_dir=d2, chunk_size=200, executor=remote, **KW)
            assert run.executor == {"executor": "dask-scheduler", "workers": 2, "scheduler": address}
        assert_same(table(d2), reference)


def _no_gaps_or_duplicates(run_dir, n: int) -> None:
    stats = query(run_dir, "SELECT COUNT(*) AS rows, COUNT(DISTINCT ID) AS ids, MIN(ID) AS lo, "
                           "MAX(ID) AS hi FROM results").iloc[0]
    assert (stats.rows, stats.ids, stats.lo, stats.hi) == (n * N_TIMES, n, 1, n)
    dup = query(run_dir, "SELECT ID, TIME, COUNT(*) AS c FROM results GROUP BY ID, TIME HAVING c > 1")
    assert dup.empty


def test_killed_run_resumes_to_the_same_result(tmp_path, reference):
    run_dir = tmp_path / "killed"
    # A real process, SIGKILLed (with its whole process group) once its first shard has
    # landed. Its progress callback sleeps so that the kill surely lands mid-run.
    code = textwrap.dedent(f"""
        import sys, time
        from chemoio.execution import run_cohort
        run_cohort({REG!r}, {TUMOR!r}, {N}, {SEED}, run_dir=sys.argv[1], days=365.0,
                   interval_days=28.0, chunk_size=50, workers=1,
                   progress=lambda k: time.sleep(0.4))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while not list(run_dir.glob("shards/chunk=*/part.parquet")):
            if proc.poll() is not None:
                pytest.fail(f"job exited before writing a shard: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no shard after 60 s")
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    store = RunStore.open(run_dir)
    assert store.pending_ids(), "the kill should have interrupted the run"
    assert store.manifest["status"] == "running"
    done_before = set(store.done_ids())

    run = resume_run(run_dir)
    assert run.chunks_reused == len(done_before)
    assert run.chunks_computed == 12 - len(done_before)
    assert show_run(run_dir)["status"] == "complete"
    _no_gaps_or_duplicates(run_dir, N)
    assert_same(table(run_dir), reference)


def test_corrupted_shards_and_half_written_files_are_redone(tmp_path, reference):
    run_dir = tmp_path / "corrupt"
    run_cohort(REG, TUMOR, N, SEED, run_dir=run_dir, chunk_size=150, workers=1, **KW)
    shards = run_dir / "shards"
    # chunk 0: truncated (half a file)
    p0 = shards / "chunk=0" / "part.parquet"
    data = p0.read_bytes()
    p0.write_bytes(data[: len(data) // 2])
    # chunk 1: a valid Parquet file with other content (checksum and row count are wrong)
    p1 = shards / "chunk=1" / "part.parquet"
    pd.read_parquet(p1).head(10).to_parquet(p1, index=False)
    # chunk 2: the writer died mid-write: a half-written temp file, no shard, chunk pending
    p2 = shards / "chunk=2" / "part.parquet"
    (shards / "chunk=2" / ".part.parquet.dead.tmp").write_bytes(p2.read_bytes()[:1000])
    p2.unlink()
    m = json.loads((run_dir / "manifest.json").read_text())
    m["chunks"]["chunk=2"].update(status="pending", rows=None, sha256=None, bytes=None)
    (run_dir / "manifest.json").write_text(json.dumps(m))
    # chunk 3: shard missing although the manifest says done
    (shards / "chunk=3" / "part.parquet").unlink()

    run = run_cohort(REG, TUMOR, N, SEED, run_dir=run_dir, chunk_size=150, workers=1, resume=True, **KW)
    assert sorted(c for c, _ in run.repaired) == ["chunk=0", "chunk=1", "chunk=3"]
    assert run.removed_temp == ["shards/chunk=2/.part.parquet.dead.tmp"]
    assert run.chunks_computed == 4 and run.chunks_reused == 0
    assert not list(shards.rglob("*.tmp"))
    _no_gaps_or_duplicates(run_dir, N)
    assert_same(table(run_dir), reference)
    # a second resume finds everything intact and computes nothing
    again = resume_run(run_dir)
    assert (again.chunks_computed, again.chunks_reused, again.repaired) == (0, 4, [])


def test_duckdb_queries_arms_and_replicates(tmp_path):
    d = tmp_path / "arms"
    arms = {"pembro": "pembrolizumab 200 mg q3w x35",
            "chemo": "pemetrexed 500 mg/m2 q3w; carboplatin AUC5 q3w x4"}
    run = run_cohort(arms, TUMOR, 40, 3, run_dir=d, chunk_size=25, replicates=2, workers=1,
                     observables=("sld_mm", "effector_t"), **KW)
    assert run.chunks_total == 2 * 2 * 2
    assert (d / "shards" / "arm=pembro" / "replicate=1" / "chunk=1" / "part.parquet").is_file()
    counts = query(d, "SELECT arm, replicate, COUNT(DISTINCT ID) AS ids, COUNT(*) AS rows, "
                      "MIN(ID) AS lo, MAX(ID) AS hi FROM results GROUP BY arm, replicate ORDER BY arm, replicate")
    assert counts["ids"].tolist() == [40] * 4
    assert counts["rows"].tolist() == [40 * N_TIMES] * 4
    assert counts["lo"].tolist() == [1, 41, 1, 41] and counts["hi"].tolist() == [40, 80, 40, 80]
    assert query(d, "SELECT COUNT(DISTINCT ID) AS n FROM results")["n"].item() == 80
    # the same patients in both arms: baseline SLD agrees, on-treatment SLD does not
    base = query(d, "SELECT arm, sld_mm FROM results WHERE TIME = 0 ORDER BY arm, replicate, ID")
    assert np.array_equal(base[base.arm == "pembro"].sld_mm.to_numpy(), base[base.arm == "chemo"].sld_mm.to_numpy())
    info = show_run(d)
    assert info["chunks_done"] == info["chunks_total"] == 8 and info["patients_total"] == 160
    runs = list_runs(tmp_path)
    assert runs["run"].tolist() == ["arms"] and runs["status"].item() == "complete"
    with pytest.raises(ChemoioInputError) as err:
        query(d, "SELECT nope FROM results")
    assert err.value.field == "sql"


def test_input_errors_name_the_field(tmp_path):
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    t0 = time.perf_counter()
    with pytest.raises(ChemoioInputError) as err:
        DaskExecutor("tcp://127.0.0.1:1", timeout=1.0)
    assert err.value.field == "scheduler" and "cannot reach tcp://127.0.0.1:1" in str(err.value)
    assert time.perf_counter() - t0 < 15
    with pytest.raises(ChemoioInputError) as err:
        DaskExecutor("localhost 8786")
    assert err.value.field == "scheduler"

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a run")
    for call in (lambda: resume_run(plain), lambda: query(plain, "SELECT 1"), lambda: show_run(plain),
                 lambda: run_cohort(REG, TUMOR, 10, 1, run_dir=plain, resume=True)):
        with pytest.raises(ChemoioInputError) as err:
            call()
        assert err.value.field == "run"
    with pytest.raises(ChemoioInputError) as err:
        run_cohort(REG, TUMOR, 10, 1, run_dir=plain)
    assert err.value.field == "out"

    run_dir = tmp_path / "small"
    run_cohort(REG, TUMOR, 60, 5, run_dir=run_dir, chunk_size=30, workers=1, **KW)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(ChemoioInputError) as err:
        run_cohort(REG, TUMOR, 60, 6, run_dir=run_dir, chunk_size=30, resume=True, **KW)
    assert err.value.field == "seed"
    with pytest.raises(ChemoioInputError) as err:
        run_cohort("pembrolizumab 200 mg q3w x35", TUMOR, 60, 5, run_dir=run_dir, resume=True, **KW)
    assert err.value.field == "regimen"
    with pytest.raises(ChemoioInputError) as err:
        run_cohort(REG, TUMOR, 60, 5, run_dir=run_dir, resume=True, parameters={"kill_per_day": 1.1}, **KW)
    assert err.value.field == "parameters"
    with pytest.raises(ChemoioInputError) as err:
        run_cohort(REG, TUMOR, 60, 5, run_dir=run_dir, **KW)
    assert err.value.field == "out"
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before  # nothing was overwritten
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "chemoio_version": "0.0.1"}))
    with pytest.raises(ChemoioInputError) as err:
        resume_run(run_dir)
    assert err.value.field == "chemoio_version"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    # the same settings (the preset by its text) resume fine
    text = "pembrolizumab 200 mg q3w x35; pemetrexed 500 mg/m2 q3w; carboplatin AUC5 q3w x4"
    ok = run_cohort(text, TUMOR, 60, 5, run_dir=run_dir, resume=True, **KW)
    assert ok.chunks_computed == 0 and ok.chunks_reused == 2


def test_jobqueue_config_is_validated(tmp_path):
    good = {"kind": "slurm", "jobs": 2,
            "cluster": {"cores": 32, "processes": 32, "memory": "64GB", "walltime": "02:00:00",
                        "queue": "normal", "job_extra_directives": ["--exclusive"]}}
    path = tmp_path / "cluster.yaml"
    import yaml

    path.write_text(yaml.safe_dump(good))
    cfg = load_jobqueue_config(path)
    assert cfg["kind"] == "slurm" and cfg["jobs"] == 2 and cfg["cluster"]["cores"] == 32
    bad_cases = {
        "jobqueue.kind": {**good, "kind": "lsf"},
        "jobqueue.jobs": {**good, "jobs": 0},
        "jobqueue.cluster.memmory": {**good, "cluster": {**good["cluster"], "memmory": "1GB"}},
        "jobqueue.cluster.memory": {**good, "cluster": {"cores": 4}},
        "jobqueue.cluster.processes": {**good, "cluster": {**good["cluster"], "processes": 64}},
        "jobqueue.cluster.resource_spec": {**good, "cluster": {**good["cluster"], "resource_spec": "x"}},
        "jobqueue.nodes": {**good, "nodes": 3},
    }
    for field, cfg in bad_cases.items():
        with pytest.raises(ChemoioInputError) as err:
            load_jobqueue_config(cfg)
        assert err.value.field == field
    with pytest.raises(ChemoioInputError) as err:
        load_jobqueue_config(tmp_path / "missing.yaml")
    assert err.value.field == "jobqueue"


def test_cli_run_list_show_query(tmp_path):
    from typer.testing import CliRunner

    from chemoio.interfaces import cli_runs  # noqa: F401  (registers the commands)
    from chemoio.interfaces.cli import app

    runner = CliRunner()
    out = tmp_path / "cli-run"
    res = runner.invoke(app, ["run-cohort", "--regimen", REG, "--n", "50", "--seed", "2", "--days", "365",
                              "--interval", "28", "--chunk-size", "20", "--workers", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "chunks computed / reused" in res.output
    res = runner.invoke(app, ["query", str(out), "SELECT COUNT(DISTINCT ID) AS n FROM results"])
    assert res.exit_code == 0 and "50" in res.output
    csv = tmp_path / "q.csv"
    res = runner.invoke(app, ["query", str(out), "SELECT ID, sld_mm FROM results WHERE TIME = 0", "--out", str(csv)])
    assert res.exit_code == 0 and len(pd.read_csv(csv)) == 50
    res = runner.invoke(app, ["runs", "list", str(tmp_path)])
    assert res.exit_code == 0 and "cli-run" in res.output
    res = runner.invoke(app, ["runs", "show", str(out), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["chunks_done"] == 3
    res = runner.invoke(app, ["run-cohort", "--out", str(out), "--resume"])
    assert res.exit_code == 0 and "0 / 3" in res.output
    res = runner.invoke(app, ["run-cohort", "--out", str(out), "--resume", "--seed", "3"])
    assert isinstance(res.exception, ChemoioInputError) and res.exception.field == "seed"
    res = runner.invoke(app, ["runs", "show", str(tmp_path)])
    assert isinstance(res.exception, ChemoioInputError) and res.exception.field == "run"


def test_atomic_parquet_write_reports_the_written_file(tmp_path):
    import pyarrow as pa

    from chemoio.execution.store import file_sha256, write_table_atomic

    path = tmp_path / "deep" / "t.parquet"
    rows, sha, size = write_table_atomic(path, pa.table({"a": list(range(1000))}))
    assert rows == 1000 and sha == file_sha256(path) and size == path.stat().st_size
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]  # no temporary left behind


def test_a_changed_model_default_changes_the_hash_a_resume_compares(monkeypatch):
    """A run store records the effective parameters: a new or changed model default (not
    only the parameter set) must stop a resume from mixing old and new chunks."""
    import chemoio.model.parameters as mp
    from chemoio.execution.cohort_job import _parameter_record

    _, before = _parameter_record(None, "nsclc_nonsquamous")
    changed = mp.default_vector().copy()
    changed[mp.index_of("max_proliferation_per_day")] = 0.5
    monkeypatch.setattr(mp, "default_vector", lambda *a, **k: changed)
    _, after = _parameter_record(None, "nsclc_nonsquamous")
    assert after["sha256"] == before["sha256"]  # the same parameter set ...
    assert after["effective_sha256"] != before["effective_sha256"]  # ... but not the same model
