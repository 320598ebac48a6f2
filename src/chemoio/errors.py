"""User-facing errors.

Every mistake a user can make in an input (a drug name, a dose, a regimen string, a YAML
file, a trial spec) raises :class:`ChemoioInputError` with the name of the offending field.
The command-line interface prints these as one clear message, never as a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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
