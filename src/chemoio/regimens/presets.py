"""Named regimens: one per arm of every calibration trial (``data/presets.yaml``).

Each preset records the trial and arm it reproduces, the regimen text, a note on every
assumption (doses not recorded, investigator choices, timings picked) and its sources.
:func:`get_preset` returns it as a :class:`~chemoio.regimens.regimen.Regimen` carrying those
fields; :func:`resolve_regimen` accepts a preset name, a regimen string or a YAML file.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from chemoio.errors import ChemoioInputError, suggest
from chemoio.regimens.regimen import Regimen


class Preset(BaseModel):
    """One entry of ``presets.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trial: str
    arm: str
    text: str
    note: str
    sources: list[str] = Field(min_length=1)
    surgery_day: int | None = Field(default=None, ge=1)


@functools.lru_cache(maxsize=1)
def _presets() -> dict[str, Preset]:
    raw = yaml.safe_load(resources.files("chemoio.regimens").joinpath("data/presets.yaml").read_text())
    return {name: Preset(**entry) for name, entry in raw["presets"].items()}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def list_presets() -> list[str]:
    """Names of all presets, in file order (grouped by trial)."""
    return list(_presets())


def preset_info(name: str) -> Preset:
    """The raw preset entry (trial, arm, text, note, sources, surgery_day)."""
    presets = _presets()
    key = _key(name) if isinstance(name, str) else ""
    if key not in presets:
        raise ChemoioInputError(
            "preset",
            f"unknown preset {name!r}",
            suggest(key, presets) or "see chemoio.regimens.list_presets()",
        )
    return presets[key]


def get_preset(name: str) -> Regimen:
    """The preset as a Regimen (name, trial, arm, note, sources and surgery_day filled in)."""
    p = preset_info(name)
    return Regimen.parse(
        p.text,
        name=_key(name),
        trial=p.trial,
        arm=p.arm,
        note=p.note,
        sources=list(p.sources),
        surgery_day=p.surgery_day,
    )


def presets_for_trial(trial: str) -> list[str]:
    """Preset names of one trial (trial id as in calibration.yaml, case-insensitive)."""
    want = trial.strip().lower()
    return [name for name, p in _presets().items() if p.trial.lower() == want]


def resolve_regimen(spec: str | Path | Mapping[str, Any] | Regimen) -> Regimen:
    """A Regimen from a preset name, a regimen string, a YAML file path or a mapping."""
    if isinstance(spec, Regimen):
        return spec
    if isinstance(spec, Mapping):
        return Regimen.from_dict(spec)
    if isinstance(spec, Path):
        return Regimen.from_yaml(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise ChemoioInputError("regimen", f"expected a preset name, regimen text or YAML file, got {spec!r}")
    text = spec.strip()
    if _key(text) in _presets():
        return get_preset(text)
    if text.lower().endswith((".yaml", ".yml")) or (";" not in text and Path(text).is_file()):
        return Regimen.from_yaml(text)
    if text.lower() == "placebo":
        return Regimen.parse(text)  # no treatment: the untreated natural history
    if len(text.split()) == 1:
        # one word: a preset name (a regimen item needs at least a drug and a dose)
        hint = suggest(_key(text), _presets())
        if hint is not None:
            raise ChemoioInputError("preset", f"unknown preset {text!r}", hint)
        raise ChemoioInputError(
            "regimen",
            f"{text!r} is not a preset name, a YAML file or a regimen",
            "give e.g. 'pembrolizumab 200 mg q3w x35' or a name from chemoio.regimens.list_presets()",
        )
    return Regimen.parse(text)
