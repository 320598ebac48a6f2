"""Run directories: a manifest plus Parquet shards, written so that an interrupted run can
always be resumed.

Layout::

    RUN/
      manifest.json                     spec, provenance, one entry per chunk
      shards/chunk=0/part.parquet       hive-style partitions, one file per chunk
      shards/chunk=1/part.parquet
      ...                               (arm=<name>/replicate=<r>/chunk=<k>/ when a run
                                         has several arms or replicates)

Every file is written atomically: to a temporary file in the same folder, flushed and
fsynced, then moved over the final name with :func:`os.replace` (and the folder fsynced).
A crash therefore leaves either the old file, the new file, or a stray ``*.tmp`` that is
ignored and removed on resume - never a half-written ``part.parquet`` that the manifest
vouches for. A chunk is ``done`` in the manifest only after its shard is in place, with
the shard's row count and SHA-256.

On resume a done chunk is kept only if its shard exists, its SHA-256 matches, it opens as
Parquet and its row count is the expected one; anything else is recomputed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from chemoio.errors import ChemoioInputError

MANIFEST = "manifest.json"
SHARDS = "shards"
FORMAT = "chemoio-run/1"
PART = "part.parquet"
_KEY_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


# ----------------------------------------------------------------------------------------
# Atomic file helpers
# ----------------------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_in(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def _atomic_file(path: Path):
    """Yield an open temporary file beside ``path``; on success it is flushed, synced and
    renamed onto ``path`` (readers see the old or the new file, never a mix), on failure
    removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_in(path.parent, path.name)
    try:
        with open(tmp, "wb") as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix."""
    with _atomic_file(path) as (fh, _):
        fh.write(data)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_table_atomic(path: Path, table) -> tuple[int, str, int]:
    """Write a pyarrow Table as Parquet atomically; return (rows, sha256, bytes)."""
    import pyarrow.parquet as pq

    with _atomic_file(path) as (fh, tmp):
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        sha = file_sha256(tmp)
        size = tmp.stat().st_size
    return table.num_rows, sha, size


# ----------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------
def git_commit() -> str | None:
    """The commit of the chemoio source tree when it is a git checkout, else None."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def json_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ----------------------------------------------------------------------------------------
# Chunks and partitions
# ----------------------------------------------------------------------------------------
def partition_path(partition: dict[str, Any]) -> str:
    """``{"arm": "A", "chunk": 3}`` -> ``arm=A/chunk=3`` (keys in the given order)."""
    parts = []
    for key, value in partition.items():
        text = str(value)
        if not _KEY_RE.match(str(key)) or not _KEY_RE.match(text):
            raise ChemoioInputError(
                f"partition.{key}", f"{text!r}: use letters, digits and _ . + - only (it becomes a folder name)"
            )
        parts.append(f"{key}={text}")
    return "/".join(parts)


def chunk_entry(partition: dict[str, Any], **extra: Any) -> dict[str, Any]:
    key = partition_path(partition)
    return {"id": key, "partition": dict(partition), "path": f"{SHARDS}/{key}/{PART}",
            "status": "pending", "rows": None, "sha256": None, "bytes": None, **extra}


# ----------------------------------------------------------------------------------------
# The run store
# ----------------------------------------------------------------------------------------
class RunStore:
    """A run directory: create, open, verify and write shards, save the manifest."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = Path(root)
        self.manifest = manifest
        self._lock_fh = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, spec: dict[str, Any], chunks: list[dict[str, Any]],
               extra: dict[str, Any] | None = None) -> "RunStore":
        """A new run in ``root`` (which must not exist or be empty)."""
        import chemoio

        root = Path(root)
        if (root / MANIFEST).exists():
            raise ChemoioInputError("out", f"{root} already holds a run", "resume it, or choose another folder")
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ChemoioInputError("out", f"{root} exists and is not an empty folder")
        root.mkdir(parents=True, exist_ok=True)
        ids = [c["id"] for c in chunks]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate chunk partitions")
        manifest = {
            "format": FORMAT,
            "run_id": uuid.uuid4().hex[:12],
            "created": now_iso(),
            "updated": now_iso(),
            "chemoio_version": chemoio.__version__,
            "git_commit": git_commit(),
            "status": "running",
            "spec": spec,
            **(extra or {}),
            "attempts": [],
            "chunks": {c["id"]: c for c in chunks},
        }
        store = cls(root, manifest)
        store.lock()
        store.save()
        return store

    @classmethod
    def open(cls, root: str | Path) -> "RunStore":
        """An existing run; ChemoioInputError("run", ...) if ``root`` is not one."""
        root = Path(root)
        path = root / MANIFEST
        if not root.is_dir():
            raise ChemoioInputError("run", f"{root} is not a folder")
        if not path.is_file():
            raise ChemoioInputError("run", f"{root} is not a chemoio run (no {MANIFEST})")
        try:
            manifest = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ChemoioInputError("run", f"{path} is not readable JSON: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(
            manifest.get("chunks"), dict
        ):
            raise ChemoioInputError("run", f"{path} is not a chemoio run manifest")
        return cls(root, manifest)

    # -- locking: one writer per run (released by the OS if the writer dies) -------------
    def lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return
        fh = open(self.root / ".lock", "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise ChemoioInputError("out", f"another process is writing {self.root}") from None
        self._lock_fh = fh

    def unlock(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    # -- manifest -------------------------------------------------------------------------
    @property
    def spec(self) -> dict[str, Any]:
        return self.manifest["spec"]

    @property
    def chunks(self) -> dict[str, dict[str, Any]]:
        return self.manifest["chunks"]

    def save(self) -> None:
        self.manifest["updated"] = now_iso()
        atomic_write_bytes(self.root / MANIFEST, json.dumps(self.manifest, indent=1).encode())

    def shard_path(self, chunk_id: str) -> Path:
        return self.root / self.chunks[chunk_id]["path"]

    def done_ids(self) -> list[str]:
        return [k for k, c in self.chunks.items() if c["status"] == "done"]

    def pending_ids(self) -> list[str]:
        return [k for k, c in self.chunks.items() if c["status"] != "done"]

    # -- shards ---------------------------------------------------------------------------
    def write_shard(self, chunk_id: str, table) -> dict[str, Any]:
        """Write one chunk's table atomically, then mark the chunk done (manifest saved)."""
        entry = self.chunks[chunk_id]
        rows, sha, size = write_table_atomic(self.shard_path(chunk_id), table)
        expected = entry.get("expected_rows")
        if expected is not None and rows != expected:
            raise RuntimeError(f"chunk {chunk_id}: {rows} rows, expected {expected}")
        entry.update(status="done", rows=rows, sha256=sha, bytes=size, finished=now_iso())
        self.save()
        return entry

    def check_shard(self, chunk_id: str) -> str | None:
        """None if the done chunk's shard verifies, else why not."""
        import pyarrow.parquet as pq

        entry = self.chunks[chunk_id]
        path = self.shard_path(chunk_id)
        if not path.is_file():
            return "shard file missing"
        if entry.get("bytes") is not None and path.stat().st_size != entry["bytes"]:
            return f"size {path.stat().st_size} bytes, manifest says {entry['bytes']}"
        if file_sha256(path) != entry.get("sha256"):
            return "checksum mismatch"
        try:
            rows = pq.read_metadata(path).num_rows
        except Exception as exc:  # noqa: BLE001 - any read failure means a bad shard
            return f"unreadable Parquet ({type(exc).__name__})"
        expected = entry.get("expected_rows", entry.get("rows"))
        if rows != entry.get("rows") or (expected is not None and rows != expected):
            return f"{rows} rows, expected {expected}"
        return None

    def verify(self) -> list[tuple[str, str]]:
        """Check every done chunk; reset the bad ones to pending. Returns [(chunk, reason)]."""
        bad = []
        for chunk_id in self.done_ids():
            reason = self.check_shard(chunk_id)
            if reason is not None:
                bad.append((chunk_id, reason))
                self.chunks[chunk_id].update(status="pending", rows=None, sha256=None, bytes=None)
        return bad

    def remove_stray_temp_files(self) -> list[str]:
        """Delete ``*.tmp`` files left by a writer that died mid-write; return their names."""
        removed = []
        shards = self.root / SHARDS
        if shards.is_dir():
            for tmp in sorted(shards.rglob("*.tmp")):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed.append(tmp.relative_to(self.root).as_posix())
        for tmp in self.root.glob(f".{MANIFEST}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp.name)
        return removed

    def done_files(self) -> list[Path]:
        return [self.shard_path(k) for k in self.done_ids()]

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        done = self.done_ids()
        return {
            "run_id": m["run_id"],
            "created": m["created"],
            "updated": m.get("updated"),
            "status": m.get("status"),
            "chunks_done": len(done),
            "chunks_total": len(self.chunks),
            "rows": sum(int(self.chunks[k]["rows"] or 0) for k in done),
            "bytes": sum(int(self.chunks[k]["bytes"] or 0) for k in done),
            "chemoio_version": m.get("chemoio_version"),
            "git_commit": m.get("git_commit"),
            "spec": m["spec"],
        }


# ----------------------------------------------------------------------------------------
# Reading runs back
# ----------------------------------------------------------------------------------------
def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(run_dir: str | Path):
    """A DuckDB connection with a view ``results`` over the finished shards of a run.

    Partition keys (``chunk``, and ``arm`` / ``replicate`` where present) are columns of the
    view. Only chunks the manifest marks done are included.
    """
    import duckdb

    store = RunStore.open(run_dir)
    files = store.done_files()
    if not files:
        raise ChemoioInputError("run", f"{Path(run_dir)} has no finished chunks yet")
    con = duckdb.connect(database=":memory:")
    listing = ", ".join(_sql_string(p.resolve().as_posix()) for p in files)
    con.execute(f"CREATE VIEW results AS SELECT * FROM read_parquet([{listing}], hive_partitioning = true)")
    return con


def query(run_dir: str | Path, sql: str):
    """Run DuckDB SQL over a run's results (view ``results``); a pandas DataFrame.

    >>> query("runs/kn189", "SELECT COUNT(DISTINCT ID) AS patients FROM results")
    >>> query("runs/kn189", "SELECT TIME, median(sld_mm) FROM results GROUP BY TIME ORDER BY TIME")
    """
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise ChemoioInputError("sql", "give a query, e.g. SELECT COUNT(*) FROM results")
    con = connect(run_dir)
    try:
        return con.execute(sql).df()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ChemoioInputError("sql", first) from None
    finally:
        con.close()


def show_run(run_dir: str | Path) -> dict[str, Any]:
    """Spec, provenance and progress of a run (no shard is read)."""
    store = RunStore.open(run_dir)
    out = store.summary()
    out["attempts"] = store.manifest.get("attempts", [])
    out["patients_done"] = sum(int(c.get("count", 0)) for c in store.chunks.values() if c["status"] == "done")
    out["patients_total"] = sum(int(c.get("count", 0)) for c in store.chunks.values())
    return out


def list_runs(root: str | Path = "."):
    """The runs in ``root`` and its sub-folders (two levels), one row each, newest first."""
    import pandas as pd

    root = Path(root)
    if not root.is_dir():
        raise ChemoioInputError("root", f"{root} is not a folder")
    candidates = [root / MANIFEST, *root.glob(f"*/{MANIFEST}"), *root.glob(f"*/*/{MANIFEST}")]
    rows = []
    for path in candidates:
        if not path.is_file():
            continue
        try:
            s = RunStore.open(path.parent).summary()
        except ChemoioInputError:
            continue
        spec = s["spec"]
        reg = spec.get("regimen")
        rows.append({
            "run": path.parent.relative_to(root).as_posix() if path.parent != root else ".",
            "run_id": s["run_id"],
            "created": s["created"],
            "status": s["status"],
            "chunks": f"{s['chunks_done']}/{s['chunks_total']}",
            "n": spec.get("n"),
            "tumor": spec.get("tumor"),
            "regimen": reg if isinstance(reg, str) else "; ".join(f"{a}: {t}" for a, t in reg.items()),
            "seed": spec.get("seed"),
            "rows": s["rows"],
            "mb": round(s["bytes"] / 1e6, 2),
        })
    cols = ["run", "run_id", "created", "status", "chunks", "n", "tumor", "regimen", "seed", "rows", "mb"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values("created", ascending=False, ignore_index=True) if len(df) else df
