"""The catalog of known plugins (``registry/plugins.toml``), installed or not, validated by pydantic."""

from __future__ import annotations

import functools
import importlib.resources
import tomllib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CatalogEntry(BaseModel):
    """One known plugin."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Component name.")
    kind: Literal["encoder", "synthesizer", "vocoder", "hooks", "metric"] = Field(description="What it provides.")
    distribution: str = Field(description="PyPI distribution name (vcframe-<name> by convention).")
    entry_point: str = Field(description="Entry-point value, 'module:SPEC'.")
    api_version: str = Field(pattern=r"^\d+\.\d+$", description="vcframe plugin API it targets.")
    license: str = Field(description="SPDX licence of the code.")
    status: Literal["reference", "stable", "experimental", "deprecated"] = Field(description="Maturity.")
    summary: str = Field(max_length=200, description="One line.")
    homepage: str | None = Field(None, description="Project URL.")


@functools.lru_cache(maxsize=1)
def catalog_entries() -> tuple[CatalogEntry, ...]:
    text = importlib.resources.files("vcframe.registry").joinpath("plugins.toml").read_text()
    return tuple(CatalogEntry.model_validate(row) for row in tomllib.loads(text).get("plugin", []))
