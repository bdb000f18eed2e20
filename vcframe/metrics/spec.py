"""Metric specs: what a metric needs and what it reports, as frozen pydantic models (no torch import).

A metric plugin registers an entry point in the group ``vcframe.metrics`` that points at a
:class:`MetricSpec`. The spec's module must stay light (pydantic and the standard library only): listing
metrics reads specs, and the metric's code (``factory``) is imported only when a comparison uses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vcframe.specs import API_VERSION, ApiVersionString, ImportString, must_match

if TYPE_CHECKING:
    from vcframe.types import Mel, Waveform

__all__ = [
    "API_VERSION",
    "NEEDS",
    "MetricColumn",
    "MetricInputs",
    "MetricResult",
    "MetricSpec",
    "Need",
    "NoOptions",
]

#: What a metric may need from an item:
#: ``reference`` (the voice's reference clip(s)), ``generated`` (the system's output), ``text`` (what was
#: to be said), ``ground_truth`` (a recording of the same speaker saying the same text; items without one
#: get no value), ``measurements`` (seconds and peak memory of each pipeline stage).
Need = Literal["reference", "generated", "text", "ground_truth", "measurements"]
NEEDS: tuple[str, ...] = ("reference", "generated", "text", "ground_truth", "measurements")

_COLUMN = re.compile(r"^[a-z][a-z0-9_]*$")
ColumnName = Annotated[str, must_match(_COLUMN, "column name")]
MetricName = Annotated[str, must_match(_COLUMN, "metric name")]


class NoOptions(BaseModel):
    """Options of a metric that has none."""

    model_config = ConfigDict(extra="forbid")


class MetricColumn(BaseModel):
    """One column a metric adds to the results table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ColumnName = Field(description="Column name in results.csv (lowercase, digits, '_').")
    unit: str = Field(default="", description="Unit shown in tables, e.g. 'dB', 'MB', '' for a ratio.")
    higher_is_better: bool | None = Field(description="Direction of 'better'; None for neutral columns.")
    numeric: bool = Field(default=True, description="Numbers are summarised (mean, 95% CI); text columns are not.")
    description: str = Field(default="", description="One line for the report's legend.")


class MetricSpec(BaseModel):
    """Everything vcframe needs to know about a metric before importing its code.

    The first column is named after the metric and carries ``unit`` and ``higher_is_better``; ``extra_columns``
    add more (per-stage values, a transcript). ``factory`` is called as ``Factory(config, context)`` with an
    instance of ``config_model`` and a :class:`~vcframe.metrics.MetricContext`, and returns an object with
    ``compute(inputs: MetricInputs) -> MetricResult | Mapping[str, float | str | None]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: MetricName = Field(description="Metric name, also its main column (lowercase, digits, '_').")
    api_version: ApiVersionString = Field(
        description="vcframe plugin API version the metric was written for, 'MAJOR.MINOR'."
    )
    summary: str = Field(min_length=1, max_length=200, description="One line shown by 'vcframe metrics list'.")
    needs: frozenset[Need] = Field(description="What the metric reads from an item (see NEEDS).")
    higher_is_better: bool | None = Field(description="Direction of the main column.")
    unit: str = Field(default="", description="Unit of the main column.")
    description: str = Field(default="", description="What the main column measures, for the report's legend.")
    factory: ImportString = Field(description="'module:Class' called as Class(config, context).")
    config_model: type[BaseModel] = Field(default=NoOptions, description="Pydantic model of the metric's options.")
    extra_columns: tuple[MetricColumn, ...] = Field(default=(), description="Further columns the metric reports.")
    license: str = Field(default="unknown", description="SPDX licence of the metric's code.")

    @model_validator(mode="after")
    def _check_columns(self) -> MetricSpec:
        names = [column.name for column in self.columns]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"metric {self.name!r} declares the columns {duplicated} more than once")
        if not self.needs:
            raise ValueError(f"metric {self.name!r} needs nothing; declare what it reads in 'needs'")
        return self

    @property
    def columns(self) -> tuple[MetricColumn, ...]:
        """The main column (named after the metric) followed by ``extra_columns``."""
        main = MetricColumn(
            name=self.name, unit=self.unit, higher_is_better=self.higher_is_better, description=self.description
        )
        return (main, *self.extra_columns)

    @property
    def api_major(self) -> int:
        return int(self.api_version.split(".")[0])


@dataclass
class MetricInputs:
    """One finished item, as a metric sees it. Fields a metric did not declare in ``needs`` may be None.

    Args:
        text: what the system was asked to say.
        generated: the system's output, (1, T) at the vocoder's rate.
        references: the voice's reference clip(s), as files.
        ground_truth: a recording of the same speaker saying ``text``, if the grid names one.
        measurements: per stage (``embed``, ``synthesize``, ``vocode``): ``seconds`` and ``peak_rss_mb``
            (see :class:`vcframe.metrics.resources.StageMeter`), plus ``audio_seconds`` of the output.
        mel: the first sentence's mel (with its alignment when the synthesizer gives one), if available.
        voice, system: labels of the item's voice and system (for caching inside a metric).
    """

    text: str
    generated: Waveform | None = None
    references: tuple[Path, ...] = ()
    ground_truth: Path | None = None
    measurements: Mapping[str, Any] = field(default_factory=dict)
    mel: Mel | None = None
    voice: str = ""
    system: str = ""


@dataclass
class MetricResult:
    """What ``compute`` returns: column values (None = not applicable) and optional vectors.

    ``vectors`` are kept in results.json (not in the CSV); the comparison uses ``reference_embedding`` and
    ``generated_embedding`` from the speaker-similarity metric for its 2-D projection plot.
    """

    values: dict[str, float | str | None]
    vectors: dict[str, list[float]] = field(default_factory=dict)
    note: str | None = None
