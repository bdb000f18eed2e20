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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy

from vcframe.errors import ConfigError, PluginError, validation_problems
from vcframe.specs import KINDS, ComponentSpec, api_compatibility, import_string

if TYPE_CHECKING:
    from pydantic import BaseModel

GROUPS: dict[str, str] = {
    "encoder": "vcframe.encoders",
    "synthesizer": "vcframe.synthesizers",
    "vocoder": "vcframe.vocoders",
}
HOOK_GROUP = "vcframe.hooks"
DISABLE_ENV = "VCFRAME_DISABLE_PLUGINS"


SpecT = TypeVar("SpecT")


@dataclass
class EntryPointRow(Generic[SpecT]):
    """One plugin found through an entry point: its spec, or the error that kept it from loading.

    The shared part of :class:`PluginRow` (components) and :class:`~vcframe.metrics.registry.MetricRow` (metrics).
    """

    name: str
    entry_point: str
    distribution: str | None = None
    version: str | None = None
    spec: SpecT | None = None
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


@dataclass
class PluginRow(EntryPointRow[ComponentSpec]):
    """One discovered component: its spec, or the error that kept it from loading."""

    kind: str = field(kw_only=True)


RowT = TypeVar("RowT", bound=EntryPointRow[Any])
KeyT = TypeVar("KeyT")


def entry_points_of(groups: Iterable[str]) -> dict[str, list[metadata.EntryPoint]]:
    """The entry points of each group, sorted by name, from one scan of the installed distributions
    (``importlib.metadata.entry_points(group=...)`` reads every distribution's metadata again for each group)."""
    every = metadata.entry_points()
    return {group: sorted(every.select(group=group), key=lambda entry: entry.name) for group in groups}


def disabled_from_environment() -> list[str]:
    return [name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()]


def unknown_plugin_names(names: Iterable[str]) -> list[str]:
    """The names among ``names`` (for ``--disable``) that no plugin has, in order, without repeats.

    A name is known when an installed entry point of a component, hook plugin or metric has it, as ``name`` or
    ``distribution:name``, or when the current registry (:func:`use_registry`, e.g. in tests) holds a component
    of that name. Only entry-point metadata is read: no plugin is imported.
    """
    from vcframe.metrics.registry import METRIC_GROUP

    known: set[str] = set()
    for entries in entry_points_of((*GROUPS.values(), HOOK_GROUP, METRIC_GROUP)).values():
        for entry in entries:
            known.add(entry.name)
            if entry.dist is not None:
                known.add(f"{entry.dist.name}:{entry.name}")
    if _current_registry is not None:
        known |= {name for row in _current_registry.rows for name in (row.name, row.qualified_name)}
    return [name for name in dict.fromkeys(names) if name not in known]


def _is_disabled(name: str, distribution: str | None, disabled: set[str]) -> bool:
    return name in disabled or (distribution is not None and f"{distribution}:{name}" in disabled)


def load_entry_point_row(
    entry: metadata.EntryPoint,
    new_row: Callable[..., RowT],
    disabled: set[str],
    validate: Callable[[RowT, Any], RowT],
) -> RowT:
    """The row of one entry point: disabled (not loaded), an import error with a hint, or ``validate``'s verdict
    on the loaded object. ``new_row(name, entry_point, distribution=, version=, requirements=)`` makes the row."""
    dist = entry.dist
    row = new_row(
        entry.name,
        entry.value,
        distribution=dist.name if dist is not None else None,
        version=dist.version if dist is not None else None,
        requirements=list(dist.requires or []) if dist is not None else [],
    )
    if _is_disabled(row.name, row.distribution, disabled):
        row.disabled = True
        return row
    try:
        loaded = entry.load()
    except Exception as error:  # noqa: BLE001 - any import failure is one error row
        row.error = f"{type(error).__name__}: {error}".split("\n")[0]
        row.hint = f"reinstall {row.distribution or 'the plugin'}, or disable it with --disable {row.name}"
        return row
    return validate(row, loaded)


def _refuse(row: RowT, error: str | None, hint: str) -> RowT:
    row.error, row.hint = error, hint
    return row


def validate_spec_row(
    row: RowT,
    loaded: Any,
    spec_type: type[Any],
    *,
    spec_noun: str = "spec",
    spec_object: str = "SPEC",
    check: Callable[[RowT, Any], tuple[str, str] | None] | None = None,
) -> RowT:
    """Fill ``row.spec`` with ``loaded`` if it is a ``spec_type`` that passes ``check`` (error, hint), is named
    like the row and was written for a compatible plugin API; otherwise give the row an error and a hint."""
    if not isinstance(loaded, spec_type):
        return _refuse(
            row,
            f"entry point {row.entry_point!r} gives a {type(loaded).__name__}, not a vcframe {spec_type.__name__}",
            f"point the entry point at the module's {spec_object} object",
        )
    problem = check(row, loaded) if check is not None else None
    if problem is not None:
        return _refuse(row, *problem)
    if loaded.name != row.name:
        return _refuse(
            row,
            f"entry point is named {row.name!r} but the {spec_noun} is named {loaded.name!r}",
            "use the same name in both places",
        )
    accepted, message = api_compatibility(loaded.api_version)
    if not accepted:
        return _refuse(row, message, f"install a release of {row.distribution or row.name} built for this vcframe-core")
    row.warning = message
    row.spec = loaded
    return row


def _kind_problem(row: PluginRow, spec: ComponentSpec) -> tuple[str, str] | None:
    if spec.kind == row.kind:
        return None
    return (
        f"spec declares kind {spec.kind!r} but is registered as a {row.kind}",
        f"register it in the {GROUPS.get(spec.kind, '?')} entry-point group",
    )


def validate_row(row: PluginRow, loaded: Any) -> PluginRow:
    """Fill ``row.spec`` from ``loaded`` if it is a valid, API-compatible spec of the row's kind."""
    return validate_spec_row(row, loaded, ComponentSpec, check=_kind_problem)


def find_row(rows: Sequence[RowT], name: str, *, what: str, listing: str, prefer_enabled: bool = False) -> RowT:
    """The row among ``rows`` for ``name`` (or ``distribution:name``); PluginError if unknown or ambiguous.

    ``what`` names the plugin type in messages, ``listing`` the command that lists them. With
    ``prefer_enabled``, a name several distributions provide resolves to the only one not disabled.
    """
    distribution, _, short = name.rpartition(":")
    candidates = [row for row in rows if row.name == short and (not distribution or row.distribution == distribution)]
    if not candidates:
        available = ", ".join(sorted({row.name for row in rows if row.ok})) or "none installed"
        raise PluginError(
            f"unknown {what} {name!r} (available: {available})",
            hint=f"see '{listing}'; install the plugin that provides it",
        )
    enabled = [row for row in candidates if not row.disabled]
    if prefer_enabled and len(candidates) > 1 and len(enabled) == 1:
        return enabled[0]
    if len(candidates) > 1:
        choices = ", ".join(row.qualified_name for row in candidates)
        raise PluginError(f"several plugins provide {what} {short!r}: {choices}", hint="pick one as DISTRIBUTION:NAME")
    return candidates[0]


def usable_spec(row: EntryPointRow[SpecT], label: str) -> SpecT:
    """The spec of an enabled, valid row (warning about a newer minor API); PluginError naming ``label``
    (``"encoder 'ge2e'"``) otherwise."""
    if row.disabled:
        raise PluginError(f"{label} is disabled", hint=f"remove it from --disable and {DISABLE_ENV}")
    if row.spec is None:
        raise PluginError(f"{label} is broken: {row.error}", hint=row.hint)
    if row.warning:
        warnings.warn(f"{row.qualified_name}: {row.warning}", stacklevel=3)
    return row.spec


def group_duplicates(rows: Iterable[RowT], key: Callable[[RowT], KeyT]) -> dict[KeyT, list[RowT]]:
    """The rows whose ``key`` more than one row shares, by key."""
    seen: dict[KeyT, list[RowT]] = {}
    for row in rows:
        seen.setdefault(key(row), []).append(row)
    return {value: group for value, group in seen.items() if len(group) > 1}


class Registry:
    """Every discovered component, addressable by kind and name (or ``distribution:name``)."""

    def __init__(self, rows: Iterable[PluginRow] = ()) -> None:
        self.rows: list[PluginRow] = list(rows)

    @classmethod
    def from_entry_points(cls, disabled: Iterable[str] = ()) -> Registry:
        blocked = set(disabled) | set(disabled_from_environment())
        rows: list[PluginRow] = []
        found = entry_points_of(GROUPS[kind] for kind in KINDS)
        for kind in KINDS:
            new_row = functools.partial(PluginRow, kind=kind)
            for entry in found[GROUPS[kind]]:
                rows.append(load_entry_point_row(entry, new_row, blocked, validate_row))
        return cls(rows)

    def register(self, spec: ComponentSpec, *, distribution: str = "<registered>") -> PluginRow:
        """Add a component that no entry point declares (tests, notebooks). Returns its row."""
        row = validate_row(PluginRow(spec.name, f"<registered {spec.factory}>", distribution, kind=spec.kind), spec)
        self.rows.append(row)
        return row

    def unregister(self, kind: str, name: str) -> None:
        self.rows = [row for row in self.rows if not (row.kind == kind and row.name == name)]

    def of_kind(self, kind: str) -> list[PluginRow]:
        return [row for row in self.rows if row.kind == kind]

    def duplicates(self) -> dict[tuple[str, str], list[PluginRow]]:
        """Names provided by more than one distribution, per kind."""
        return group_duplicates(self.rows, lambda row: (row.kind, row.name))

    def row(self, kind: str, name: str) -> PluginRow:
        """The row for ``name`` (or ``distribution:name``); PluginError if unknown or ambiguous."""
        if kind not in GROUPS:
            raise PluginError(f"unknown component kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
        return find_row(self.of_kind(kind), name, what=kind, listing="vcframe plugins list")

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The spec of an installed, enabled, valid component; PluginError otherwise."""
        return usable_spec(self.row(kind, name), f"{kind} {name!r}")

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
    factory = import_factory(
        spec.factory,
        f"{spec.kind} {spec.name!r} failed to import its model code",
        hint="reinstall the plugin, or pick another with --" + spec.kind,
    )
    return factory(config, device=device)


def make_config(spec: ComponentSpec, overrides: dict[str, Any] | None = None) -> Any:
    """The component's config from ``overrides``; ConfigError naming the bad fields and the valid ones."""
    return validate_options(spec.config_model, overrides, f"{spec.kind} {spec.name!r}")


def import_factory(factory: str, failure: str, *, hint: str) -> Any:
    """Import a spec's ``factory``; PluginError ``"<failure> '<factory>': <error>"`` (one line) if that fails."""
    try:
        return import_string(factory)
    except Exception as error:  # noqa: BLE001 - any import failure of plugin code
        raise PluginError(f"{failure} {factory!r}: {error}".split("\n")[0], hint=hint) from error


def validate_options(config_model: type[BaseModel], options: dict[str, Any] | None, label: str) -> Any:
    """``config_model`` validated from ``options``; ConfigError naming ``label``, the bad fields and the valid ones."""
    from pydantic import ValidationError

    from vcframe.config import none_spelled

    try:
        return config_model.model_validate(none_spelled(config_model, options or {}))
    except ValidationError as error:
        problems = validation_problems(error, "(config)")
        valid = ", ".join(config_model.model_fields) or "none"
        raise ConfigError(f"invalid options for {label}: {problems}", hint=f"valid options: {valid}") from error


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
