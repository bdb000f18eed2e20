"""Named bundles: known-good component triples with the options and checkpoints they run with.

``registry/bundles.toml`` lists them (``[bundle.<name>]``). ``default`` is what ``vcframe run`` uses when no
component is named; ``vcframe run --bundle rtvc`` (or ``bundle = "rtvc"`` in ``vcframe.toml``, ``-o bundle=rtvc``,
``VCFRAME_BUNDLE``) selects another. A bundle's components and options sit beneath everything the user sets
(``vcframe.toml``, environment, ``-o``, ``--vocoder``...), so ``--bundle rtvc --vocoder griffinlim`` keeps RTVC's
encoder and synthesizer and swaps the vocoder.

A bundle's quality status is the worst status of the registry checkpoints it loads (``demo`` < ``usable`` <
``published``; see :mod:`vcframe.checkpoints`).
"""

from __future__ import annotations

import functools
import importlib.resources
import tomllib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vcframe.checkpoints import STATUSES, CheckpointEntry, Status, find_entry
from vcframe.errors import CheckpointError, ConfigError
from vcframe.specs import KINDS


class Bundle(BaseModel):
    """One ``[bundle.<name>]`` of ``registry/bundles.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Bundle name, used as --bundle NAME.")
    encoder: str = Field(description="Speaker encoder plugin.")
    synthesizer: str = Field(description="Synthesizer plugin.")
    vocoder: str = Field(description="Vocoder plugin.")
    notes: str = Field("", description="What the bundle is and when to use it.")
    components: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict,
        description="Component options, as in vcframe.toml: components.<kind>.<name>.<option> (checkpoints, "
        "presets, behaviour).",
    )

    def component_names(self) -> dict[str, str]:
        """``{"encoder": "ge2e", "synthesizer": ..., "vocoder": ...}``."""
        return {kind: str(getattr(self, kind)) for kind in KINDS}

    def settings_layer(self) -> dict[str, Any]:
        """The settings tree this bundle contributes (beneath the user's own layers)."""
        return {**self.component_names(), "components": self.components}

    def checkpoint_entries(self) -> dict[str, CheckpointEntry | None]:
        """The registry checkpoint each component loads (its ``checkpoint`` option, else ``default``); None for a
        component without registry weights (Griffin-Lim, a file path)."""
        entries: dict[str, CheckpointEntry | None] = {}
        for kind, name in self.component_names().items():
            options = self.components.get(kind, {}).get(name, {})
            reference = options.get("checkpoint", "default")
            entries[kind] = find_entry(f"{kind}/{name}", reference) if isinstance(reference, str) else None
        return entries

    def status(self) -> Status | None:
        """The worst quality status of the checkpoints the bundle loads; None when it loads none."""
        statuses = [entry.status for entry in self.checkpoint_entries().values() if entry is not None]
        return min(statuses, key=STATUSES.index) if statuses else None


@functools.lru_cache(maxsize=1)
def bundles() -> dict[str, Bundle]:
    """Every bundle of the shipped ``registry/bundles.toml``, by name."""
    text = importlib.resources.files("vcframe.registry").joinpath("bundles.toml").read_text()
    found: dict[str, Bundle] = {}
    for name, table in tomllib.loads(text).get("bundle", {}).items():
        try:
            found[name] = Bundle.model_validate({"name": name, **table})
        except ValidationError as error:
            problem = error.errors()[0]["msg"]
            raise ConfigError(f"registry/bundles.toml: bundle {name!r} is invalid ({problem})") from error
    return found


def get_bundle(name: str) -> Bundle:
    """The bundle called ``name``; ConfigError listing the known ones otherwise."""
    known = bundles()
    if name not in known:
        raise ConfigError(f"no bundle named {name!r}", hint=f"known bundles: {', '.join(known)} (vcframe bundles list)")
    return known[name]


def configured_entry(kind: str, name: str, config: Any) -> CheckpointEntry | None:
    """The registry checkpoint a built component's ``config`` names in its ``checkpoint`` option; None for a
    component without that option, for random weights (None), a file path, or a reference no entry matches."""
    reference = getattr(config, "checkpoint", None)
    if not isinstance(reference, str):
        return None
    try:
        return find_entry(f"{kind}/{name}", reference)
    except CheckpointError:
        return None


def weights_label(kind: str, name: str, config: Any) -> str:
    """What a component's weights are, for the run summary and the web page: the registry checkpoint's status
    with its figures (``"demo: 6.5 % words heard right, similarity 0.555 (c5c3eb9)"``, ``"published"``),
    ``"own checkpoint, no status"`` for a file path, ``"random weights"``, ``"no default weights"`` (a component
    whose registry has none, e.g. HiFi-GAN today), or ``"no weights"`` for a component without a ``checkpoint``
    option (Griffin-Lim)."""
    if not hasattr(config, "checkpoint"):
        return "no weights"
    entry = configured_entry(kind, name, config)
    if entry is not None:
        return entry.status if entry.quality.summary() == "not measured here" else entry.status_line()
    if config.checkpoint is None:
        return "random weights"
    return "no default weights" if config.checkpoint == "default" else "own checkpoint, no status"
