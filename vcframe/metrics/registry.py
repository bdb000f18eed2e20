"""Finding metric plugins (entry-point group ``vcframe.metrics``) with the rules of component discovery.

* Each entry point points at a :class:`~vcframe.metrics.spec.MetricSpec` in a module that imports no torch.
* A metric that fails to import or validate is one error row with a hint; only selecting it is fatal.
* Names (``wer``) or qualified names (``vcframe-core:wer``) given as ``disabled`` or in
  ``VCFRAME_DISABLE_PLUGINS`` are not loaded at all.
* A name provided by several distributions is reported by :meth:`MetricRegistry.duplicates`; select one
  as ``DISTRIBUTION:NAME``.
* A spec written for another major plugin API version is refused; a newer minor version warns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from vcframe.discovery import (
    EntryPointRow,
    disabled_from_environment,
    find_row,
    group_duplicates,
    import_factory,
    load_entry_point_row,
    usable_spec,
    validate_options,
    validate_spec_row,
)
from vcframe.metrics.spec import MetricSpec

METRIC_GROUP = "vcframe.metrics"


@dataclass
class MetricRow(EntryPointRow[MetricSpec]):
    """One discovered metric: its spec, or the error that kept it from loading."""


def validate_metric_row(row: MetricRow, loaded: Any) -> MetricRow:
    """Fill ``row.spec`` from ``loaded`` if it is a valid, API-compatible MetricSpec named like the row."""
    return validate_spec_row(row, loaded, MetricSpec, spec_noun="metric spec", spec_object="MetricSpec")


class MetricRegistry:
    """Every discovered metric, addressable by name (or ``distribution:name``)."""

    def __init__(self, rows: Iterable[MetricRow] = ()) -> None:
        self.rows: list[MetricRow] = list(rows)

    @classmethod
    def from_entry_points(cls, disabled: Iterable[str] = ()) -> MetricRegistry:
        blocked = set(disabled) | set(disabled_from_environment())
        entries = sorted(metadata.entry_points(group=METRIC_GROUP), key=lambda e: (e.name, e.value))
        return cls(load_entry_point_row(entry, MetricRow, blocked, validate_metric_row) for entry in entries)

    def register(self, spec: MetricSpec, *, distribution: str = "<registered>") -> MetricRow:
        """Add a metric that no entry point declares (tests, notebooks). Returns its row."""
        row = validate_metric_row(MetricRow(spec.name, f"<registered {spec.factory}>", distribution), spec)
        self.rows.append(row)
        return row

    def duplicates(self) -> dict[str, list[MetricRow]]:
        """Names provided by more than one enabled distribution (disabling all but one resolves it)."""
        return group_duplicates((row for row in self.rows if not row.disabled), lambda row: row.name)

    def row(self, name: str) -> MetricRow:
        """The row for ``name`` (or ``distribution:name``); PluginError if unknown or ambiguous."""
        return find_row(self.rows, name, what="metric", listing="vcframe metrics list", prefer_enabled=True)

    def get(self, name: str) -> MetricSpec:
        """The spec of an installed, enabled, valid metric; PluginError otherwise."""
        return usable_spec(self.row(name), f"metric {name!r}")

    def available(self) -> list[MetricSpec]:
        """Specs of every usable metric, one per name (names provided twice are left out: pick one)."""
        duplicated = set(self.duplicates())
        return [row.spec for row in self.rows if row.ok and row.spec is not None and row.name not in duplicated]

    def __iter__(self) -> Iterator[MetricRow]:
        return iter(self.rows)


_current_metric_registry: MetricRegistry | None = None


def default_metric_registry(disabled: Iterable[str] = ()) -> MetricRegistry:
    """The registry installed by :func:`use_metric_registry` (tests), else a fresh entry-point scan."""
    if _current_metric_registry is not None:
        return _current_metric_registry
    return MetricRegistry.from_entry_points(disabled)


def use_metric_registry(registry: MetricRegistry | None) -> MetricRegistry | None:
    """Make ``registry`` the default (None restores entry-point scanning). Returns the previous one."""
    global _current_metric_registry
    previous, _current_metric_registry = _current_metric_registry, registry
    return previous


def make_metric_config(spec: MetricSpec, options: dict[str, Any] | None = None) -> Any:
    """The metric's config from ``options``; ConfigError naming the bad fields and the valid ones."""
    return validate_options(spec.config_model, options, f"metric {spec.name!r}")


def build_metric(spec: MetricSpec, options: dict[str, Any] | None, context: Any) -> Any:
    """Validate the options, import the factory and build the metric."""
    config = make_metric_config(spec, options)
    factory = import_factory(
        spec.factory,
        f"metric {spec.name!r} failed to import its code",
        hint="reinstall the plugin that provides it, or leave it out of the metrics list",
    )
    return factory(config, context)
