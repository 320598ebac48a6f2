"""User-facing errors.

Every mistake a user can make in an input (a drug name, a dose, a regimen string, a YAML
file, a trial spec) raises :class:`ChemoioInputError` with the name of the offending field.
The command-line interface prints these as one clear message, never as a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ChemoioInputError(ValueError):
    """Bad user input. ``field`` names the input that is wrong (e.g. ``regimen[2].dose``)."""

    def __init__(self, field: str, message: str, hint: str | None = None):
        self.field = field
        self.message = message
        self.hint = hint
        text = f"{field}: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str | None:
    """Return a 'did you mean ...?' hint for a misspelled name, or None."""
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in choices], n=n, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


def read_yaml_file(path: str | Path, field: str) -> Any:
    """Parse a YAML file; a missing file or malformed YAML raises :class:`ChemoioInputError`
    naming ``field``, the file and (for a syntax error) the line and column."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChemoioInputError(field, f"file not found: {str(p)!r}") from None
    except OSError as exc:
        raise ChemoioInputError(field, f"cannot read {str(p)!r}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ChemoioInputError(field, f"malformed YAML in {p.name}{where}: {problem}") from None
