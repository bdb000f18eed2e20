"""Finding components and hook plugins through entry points, guarded so that one broken plugin costs one row.

Component groups: ``vcframe.encoders``, ``vcframe.synthesizers``, ``vcframe.vocoders``; each entry point
points at a :class:`~vcframe.specs.ComponentSpec` in a module that imports no torch. Listing plugins loads
those spec modules only; model code is imported when a component is built.

Hook plugins: group ``vcframe.hooks``, loaded into one pluggy PluginManager in a guarded loop.

Disabling: names (``ge2e``) or qualified names (``vcframe-ge2e:ge2e``) in ``disabled`` or in the
environment variable ``VCFRAME_DISABLE_PLUGINS`` (comma-separated) are not loaded at all.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from vcframe.errors import ConfigError, PluginError
from vcframe.specs import KINDS, ComponentSpec, api_compatibility, import_string

GROUPS: dict[str, str] = {
    "encoder": "vcframe.encoders",
    "synthesizer": "vcframe.synthesizers",
    "vocoder": "vcframe.vocoders",
}
HOOK_GROUP = "vcframe.hooks"
DISABLE_ENV = "VCFRAME_DISABLE_PLUGINS"


@dataclass
class PluginRow:
    """One discovered component: its spec, or the error that kept it from loading."""

    name: str
    kind: str
    entry_point: str
    distribution: str | None = None
    version: str | None = None
    spec: ComponentSpec | None = None
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


def disabled_from_environment() -> list[str]:
    return [name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()]


def _is_disabled(name: str, distribution: str | None, disabled: set[str]) -> bool:
    return name in disabled or (distribution is not None and f"{distribution}:{name}" in disabled)


def _load_row(entry: metadata.EntryPoint, kind: str, disabled: set[str]) -> PluginRow:
    distribution = entry.dist.name if entry.dist is not None else None
    version = entry.dist.version if entry.dist is not None else None
    requirements = list(entry.dist.requires or []) if entry.dist is not None else []
    row = PluginRow(entry.name, kind, entry.value, distribution, version, requirements=requirements)
    if _is_disabled(entry.name, distribution, disabled):
        row.disabled = True
        return row
    try:
        loaded = entry.load()
    except Exception as error:  # noqa: BLE001 - any import failure is one error row
        row.error = f"{type(error).__name__}: {error}".split("\n")[0]
        row.hint = f"reinstall {distribution or 'the plugin'}, or disable it with --disable {entry.name}"
        return row
    return validate_row(row, loaded)


def validate_row(row: PluginRow, loaded: Any) -> PluginRow:
    """Fill ``row.spec`` from ``loaded`` if it is a valid, API-compatible spec of the row's kind."""
    if not isinstance(loaded, ComponentSpec):
        row.error = f"entry point {row.entry_point!r} gives a {type(loaded).__name__}, not a vcframe ComponentSpec"
        row.hint = "point the entry point at the module's SPEC object"
        return row
    if loaded.kind != row.kind:
        row.error = f"spec declares kind {loaded.kind!r} but is registered as a {row.kind}"
        row.hint = f"register it in the {GROUPS.get(loaded.kind, '?')} entry-point group"
        return row
    if loaded.name != row.name:
        row.error = f"entry point is named {row.name!r} but the spec is named {loaded.name!r}"
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


class Registry:
    """Every discovered component, addressable by kind and name (or ``distribution:name``)."""

    def __init__(self, rows: Iterable[PluginRow] = ()) -> None:
        self.rows: list[PluginRow] = list(rows)

    @classmethod
    def from_entry_points(cls, disabled: Iterable[str] = ()) -> Registry:
        blocked = set(disabled) | set(disabled_from_environment())
        rows: list[PluginRow] = []
        for kind in KINDS:
            for entry in sorted(metadata.entry_points(group=GROUPS[kind]), key=lambda e: e.name):
                rows.append(_load_row(entry, kind, blocked))
        return cls(rows)

    def register(self, spec: ComponentSpec, *, distribution: str = "<registered>") -> PluginRow:
        """Add a component that no entry point declares (tests, notebooks). Returns its row."""
        row = validate_row(PluginRow(spec.name, spec.kind, f"<registered {spec.factory}>", distribution), spec)
        self.rows.append(row)
        return row

    def unregister(self, kind: str, name: str) -> None:
        self.rows = [row for row in self.rows if not (row.kind == kind and row.name == name)]

    def of_kind(self, kind: str) -> list[PluginRow]:
        return [row for row in self.rows if row.kind == kind]

    def duplicates(self) -> dict[tuple[str, str], list[PluginRow]]:
        """Names provided by more than one distribution, per kind."""
        seen: dict[tuple[str, str], list[PluginRow]] = {}
        for row in self.rows:
            seen.setdefault((row.kind, row.name), []).append(row)
        return {key: rows for key, rows in seen.items() if len(rows) > 1}

    def row(self, kind: str, name: str) -> PluginRow:
        """The row for ``name`` (or ``distribution:name``); PluginError if unknown or ambiguous."""
        if kind not in GROUPS:
            raise PluginError(f"unknown component kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
        distribution, _, short = name.rpartition(":")
        candidates = [
            row
            for row in self.of_kind(kind)
            if row.name == short and (not distribution or row.distribution == distribution)
        ]
        if not candidates:
            available = ", ".join(sorted({r.name for r in self.of_kind(kind) if r.ok})) or "none installed"
            raise PluginError(
                f"unknown {kind} {name!r} (available: {available})",
                hint="see 'vcframe plugins list'; install the plugin that provides it",
            )
        if len(candidates) > 1:
            choices = ", ".join(row.qualified_name for row in candidates)
            raise PluginError(
                f"several plugins provide {kind} {short!r}: {choices}", hint="pick one as DISTRIBUTION:NAME"
            )
        return candidates[0]

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The spec of an installed, enabled, valid component; PluginError otherwise."""
        row = self.row(kind, name)
        if row.disabled:
            raise PluginError(f"{kind} {name!r} is disabled", hint=f"remove it from --disable and {DISABLE_ENV}")
        if row.spec is None:
            raise PluginError(f"{kind} {name!r} is broken: {row.error}", hint=row.hint)
        if row.warning:
            warnings.warn(f"{row.qualified_name}: {row.warning}", stacklevel=2)
        return row.spec

    def __iter__(self) -> Iterator[PluginRow]:
        return iter(self.rows)


_current_registry: Registry | None = None


def default_registry(disabled: Iterable[str] = ()) -> Registry:
    """The registry to use: the one installed by :func:`use_registry` (tests), else a fresh scan."""
    if _current_registry is not None:
        return _current_registry
    return Registry.from_entry_points(disabled)


def use_registry(registry: Registry | None) -> Registry | None:
    """Make ``registry`` the default (None restores entry-point scanning). Returns the previous one."""
    global _current_registry
    previous, _current_registry = _current_registry, registry
    return previous


def build_component(spec: ComponentSpec, overrides: dict[str, Any] | None = None, *, device: Any = "cpu") -> Any:
    """Validate the config, import the factory, build the component (this is where weights load)."""
    config = make_config(spec, overrides)
    try:
        factory = import_string(spec.factory)
    except Exception as error:  # noqa: BLE001 - any import failure of plugin code
        raise PluginError(
            f"{spec.kind} {spec.name!r} failed to import its model code {spec.factory!r}: {error}".split("\n")[0],
            hint="reinstall the plugin, or pick another with --" + spec.kind,
        ) from error
    return factory(config, device=device)


def make_config(spec: ComponentSpec, overrides: dict[str, Any] | None = None) -> Any:
    """The component's config from ``overrides``; ConfigError naming the bad fields and the valid ones."""
    from pydantic import ValidationError

    try:
        return spec.make_config(overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in issue['loc']) or '(config)'}: {issue['msg']}" for issue in error.errors()
        )
        valid = ", ".join(spec.config_model.model_fields)
        raise ConfigError(
            f"invalid options for {spec.kind} {spec.name!r}: {problems}", hint=f"valid options: {valid}"
        ) from error


# -- hooks -------------------------------------------------------------------------------------------


@dataclass
class HookLoadError:
    name: str
    distribution: str | None
    error: str


@dataclass(frozen=True)
class HookSources:
    """What the hook manager loads besides vcframe's own hooks (see :func:`use_hook_sources`)."""

    entry_points: bool = True
    extra: tuple[object, ...] = ()


class _PluginManagerState:
    manager: pluggy.PluginManager | None = None
    errors: list[HookLoadError] = []
    sources = HookSources()


def _new_plugin_manager(disabled: set[str]) -> tuple[pluggy.PluginManager, list[HookLoadError]]:
    from vcframe import _builtin_hooks, hookspecs

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(_builtin_hooks, name="vcframe.builtin")
    for extra in _PluginManagerState.sources.extra:
        manager.register(extra)
    errors: list[HookLoadError] = []
    entries = metadata.entry_points(group=HOOK_GROUP) if _PluginManagerState.sources.entry_points else ()
    for entry in sorted(entries, key=lambda e: e.name):
        distribution = entry.dist.name if entry.dist is not None else None
        if _is_disabled(entry.name, distribution, disabled) or manager.has_plugin(entry.name):
            continue
        try:
            manager.register(entry.load(), name=entry.name)
        except Exception as error:  # noqa: BLE001 - a broken hook plugin is one error row
            errors.append(HookLoadError(entry.name, distribution, f"{type(error).__name__}: {error}".split("\n")[0]))
    return manager, errors


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide hook manager, with ``vcframe.hooks`` entry points loaded (guarded)."""
    if _PluginManagerState.manager is None:
        blocked = set(disabled_from_environment())
        _PluginManagerState.manager, _PluginManagerState.errors = _new_plugin_manager(blocked)
    return _PluginManagerState.manager


def hook_errors() -> list[HookLoadError]:
    plugin_manager()
    return list(_PluginManagerState.errors)


def reset_plugin_manager() -> None:
    """Forget the hook manager (the next call re-reads entry points and the environment)."""
    _PluginManagerState.manager = None
    _PluginManagerState.errors = []


def use_hook_sources(sources: HookSources) -> HookSources:
    """Choose what the hook manager loads: the installed ``vcframe.hooks`` entry points or not, and extra
    plugin objects (registered first, so entry points come later and take precedence). Tests use it to
    isolate hooks; returns the previous choice, and the manager is rebuilt on next use."""
    previous, _PluginManagerState.sources = _PluginManagerState.sources, sources
    reset_plugin_manager()
    return previous


@functools.lru_cache(maxsize=1)
def _hook_names() -> tuple[str, ...]:
    from vcframe import hookspecs

    return tuple(name for name in dir(hookspecs) if name.startswith("vcframe_"))


def hook_names() -> Sequence[str]:
    """Names of every hookspec (for documentation and coverage checks)."""
    return _hook_names()
