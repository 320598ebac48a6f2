"""Where numba keeps compiled code, keyed by the model's source.

numba's on-disk cache is invalidated only when the file of the cached function changes,
not when a function it inlines from another file changes. The engine kernel inlines the
model equations, so chemoio points numba at a cache folder named after a hash of both
sources: editing the equations can never run stale machine code. Set ``NUMBA_CACHE_DIR``
to choose the location yourself.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_SOURCES = ("model/equations.py", "engine/kernel.py")


def configure() -> None:
    import numba

    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    root = Path(__file__).parent
    digest = hashlib.sha1()
    for rel in _SOURCES:
        digest.update((root / rel).read_bytes())
    digest.update(numba.__version__.encode())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chemoio" / "numba"
    target = base / digest.hexdigest()[:16]
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # read-only home: numba falls back to its default locations
    numba.config.CACHE_DIR = str(target)


configure()
