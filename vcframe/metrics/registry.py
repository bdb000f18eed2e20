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

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from vcframe.discovery import DISABLE_ENV, _is_disabled, disabled_from_environment
from vcframe.errors import ConfigError, PluginError
from vcframe.metrics.spec import MetricSpec
from vcframe.specs import api_compatibility, import_string

METRIC_GROUP = "vcframe.metrics"


@dataclass
class MetricRow:
    """One discovered metric: its spec, or the error that kept it from loading."""

    name: str
    entry_point: str
    distribution: str | None = None
    version: str | None = None
    spec: MetricSpec | None = None
    error: str | None = None
    hint: str | None = None
    warning: str | None = None
    disabled: bool = False
    requirements: list[str] = field(default_factory=list)

    @property
    def qualified_name(self) -> str:
        return f"{self.distribution}:{self.name}" if self.distribution else self.name

    @property
    def ok(self) -> bool:
        return self.spec is not None and self.error is None and not self.disabled

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        if self.error:
            return "error"
        return "warning" if self.warning else "ok"


def validate_metric_row(row: MetricRow, loaded: Any) -> MetricRow:
    """Fill ``row.spec`` from ``loaded`` if it is a valid, API-compatible MetricSpec named like the row."""
    if not isinstance(loaded, MetricSpec):
        row.error = f"entry point {row.entry_point!r} gives a {type(loaded).__name__}, not a vcframe MetricSpec"
        row.hint = "point the entry point at the module's MetricSpec object"
        return row
    if loaded.name != row.name:
        row.error = f"entry point is named {row.name!r} but the metric spec is named {loaded.name!r}"
        row.hint = "use the same name in both places"
        return row
    accepted, message = api_compatibility(loaded.api_version)
    if not accepted:
        row.error = message
        row.hint = f"install a release of {row.distribution or row.name} built for this vcframe-core"
        return row
    row.warning = message
    row.spec = loaded
    return row


def _load_metric_row(entry: metadata.EntryPoint, disabled: set[str]) -> MetricRow:
    distribution = entry.dist.name if entry.dist is not None else None
    version = entry.dist.version if entry.dist is not None else None
    requirements = list(entry.dist.requires or []) if entry.dist is not None else []
    row = MetricRow(entry.name, entry.value, distribution, version, requirements=requirements)
    if _is_disabled(entry.name, distribution, disabled):
        row.disabled = True
        return row
    try:
        loaded = entry.load()
    except Exception as error:  # noqa: BLE001 - any import failure is one error row
        row.error = f"{type(error).__name__}: {error}".split("\n")[0]
        row.hint = f"reinstall {distribution or 'the plugin'}, or disable it with --disable {entry.name}"
        return row
    return validate_metric_row(row, loaded)


class MetricRegistry:
    """Every discovered metric, addressable by name (or ``distribution:name``)."""

    def __init__(self, rows: Iterable[MetricRow] = ()) -> None:
        self.rows: list[MetricRow] = list(rows)

    @classmethod
    def from_entry_points(cls, disabled: Iterable[str] = ()) -> MetricRegistry:
        blocked = set(disabled) | set(disabled_from_environment())
        entries = sorted(metadata.entry_points(group=METRIC_GROUP), key=lambda e: (e.name, e.value))
        return cls(_load_metric_row(entry, blocked) for entry in entries)

    def register(self, spec: MetricSpec, *, distribution: str = "<registered>") -> MetricRow:
        """Add a metric that no entry point declares (tests, notebooks). Returns its row."""
        row = validate_metric_row(MetricRow(spec.name, f"<registered {spec.factory}>", distribution), spec)
        self.rows.append(row)
        return row

    def duplicates(self) -> dict[str, list[MetricRow]]:
        """Names provided by more than one enabled distribution (disabling all but one resolves it)."""
        seen: dict[str, list[MetricRow]] = {}
        for row in self.rows:
            if not row.disabled:
                seen.setdefault(row.name, []).append(row)
        return {name: rows for name, rows in seen.items() if len(rows) > 1}

    def row(self, name: str) -> MetricRow:
        """The row for ``name`` (or ``distribution:name``); PluginError if unknown or ambiguous."""
        distribution, _, short = name.rpartition(":")
        candidates = [
            row for row in self.rows if row.name == short and (not distribution or row.distribution == distribution)
        ]
        if not candidates:
            available = ", ".join(sorted({r.name for r in self.rows if r.ok})) or "none installed"
            raise PluginError(
                f"unknown metric {name!r} (available: {available})",
                hint="see 'vcframe metrics list'; install the plugin that provides it",
            )
        enabled = [row for row in candidates if not row.disabled]
        if len(candidates) > 1 and len(enabled) == 1:
            return enabled[0]
        if len(candidates) > 1:
            choices = ", ".join(row.qualified_name for row in candidates)
            raise PluginError(
                f"several plugins provide metric {short!r}: {choices}", hint="pick one as DISTRIBUTION:NAME"
            )
        return candidates[0]

    def get(self, name: str) -> MetricSpec:
        """The spec of an installed, enabled, valid metric; PluginError otherwise."""
        row = self.row(name)
        if row.disabled:
            raise PluginError(f"metric {name!r} is disabled", hint=f"remove it from --disable and {DISABLE_ENV}")
        if row.spec is None:
            raise PluginError(f"metric {name!r} is broken: {row.error}", hint=row.hint)
        if row.warning:
            warnings.warn(f"{row.qualified_name}: {row.warning}", stacklevel=2)
        return row.spec

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
    from pydantic import ValidationError

    try:
        return spec.config_model.model_validate(options or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in issue['loc']) or '(config)'}: {issue['msg']}" for issue in error.errors()
        )
        valid = ", ".join(spec.config_model.model_fields) or "none"
        raise ConfigError(
            f"invalid options for metric {spec.name!r}: {problems}", hint=f"valid options: {valid}"
        ) from error


def build_metric(spec: MetricSpec, options: dict[str, Any] | None, context: Any) -> Any:
    """Validate the options, import the factory and build the metric."""
    config = make_metric_config(spec, options)
    try:
        factory = import_string(spec.factory)
    except Exception as error:  # noqa: BLE001 - any import failure of plugin code
        raise PluginError(
            f"metric {spec.name!r} failed to import its code {spec.factory!r}: {error}".split("\n")[0],
            hint="reinstall the plugin that provides it, or leave it out of the metrics list",
        ) from error
    return factory(config, context)
