"""pytest plugin (entry point ``pytest11``, loaded automatically with vcframe-core) for testing vcframe plugins.

Fixtures:

* ``vcframe_registry``: an isolated registry. Installed plugins are *not* loaded into it: neither components
  (entry points ``vcframe.encoders`` ...) nor hook plugins (``vcframe.hooks``); vcframe's own hooks stay.
  While the fixture is active the pipeline and the CLI use it, and everything registered goes away after the
  test. ``register(SPEC)`` adds a component (``test_config=True``: its default config becomes the spec's
  ``test_config``, a tiny random-weight instance); ``register_with_partners(SPEC)`` also adds dummy partners
  that fit it and returns the CLI arguments selecting all three; ``register_hooks(obj)`` adds a hook plugin;
  ``add_installed()`` brings the installed components and hook plugins back.
* ``dummy_registry``: the isolated registry holding vcframe's dummy components (test-tone, test-constant,
  test-sine).
* ``vcframe_cli``: runs ``vcframe ...`` in-process in a temporary working directory with no ``VCFRAME_*``
  settings in the environment and returns ``exit_code``, ``stdout``, ``stderr`` and ``exception``:
  ``vcframe_cli("run", "--vocoder", "mine", ...)``.
* ``speech_like_wav``: a factory writing a short harmonic, speech-like WAV file.
* ``torch_threads``: torch's thread count faked for the test, independent of this machine's cores:
  ``torch_threads(8)`` makes torch report 8 (torch's default on an 8-core machine) with ``OMP_NUM_THREADS`` and
  ``MKL_NUM_THREADS`` unset, and returns the list of counts later passed to ``torch.set_num_threads``.

Importing this module imports no torch (pytest loads it in every session of an environment with vcframe).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vcframe.discovery import (
    HookSources,
    PluginRow,
    Registry,
    reset_plugin_manager,
    use_hook_sources,
    use_registry,
)
from vcframe.specs import ComponentSpec


class IsolatedRegistry(Registry):
    """A registry for tests: starts empty, with installed hook plugins switched off too."""

    def __init__(self) -> None:
        super().__init__()
        self._hook_sources = HookSources(entry_points=False)

    def register(
        self, spec: ComponentSpec, *, distribution: str = "<registered>", test_config: bool = False
    ) -> PluginRow:
        """Add a component; with ``test_config=True`` its default config is the spec's ``test_config``."""
        if test_config:
            from vcframe.testing.variants import with_defaults

            spec = with_defaults(spec, spec.test_config)
        return super().register(spec, distribution=distribution)

    def register_with_partners(self, spec: ComponentSpec, *, test_config: bool = True) -> list[str]:
        """Add ``spec`` and dummy components that fit it; return ``--encoder X --synthesizer Y --vocoder Z``.

        The partners are vcframe's dummies re-specced to read and write ``spec``'s embedding and mel, so
        ``vcframe_cli("run", *selection, "-r", clip, "-t", "Hello.", "--out", path)`` runs your component end
        to end with no other model installed.
        """
        from vcframe.testing.variants import partners_for

        self.register(spec, test_config=test_config)
        selection: dict[str, str] = {spec.kind: spec.name}
        for kind, partner in partners_for(spec).items():
            self.unregister(kind, partner.name)
            self.register(partner, distribution="vcframe-core")
            selection[kind] = partner.name
        return [part for kind in ("encoder", "synthesizer", "vocoder") for part in (f"--{kind}", selection[kind])]

    def register_hooks(self, plugin: object) -> object:
        """Add a hook plugin (an object or module with ``@vcframe.hookimpl`` functions) for this test."""
        self._hook_sources = HookSources(self._hook_sources.entry_points, (*self._hook_sources.extra, plugin))
        use_hook_sources(self._hook_sources)
        return plugin

    def add_installed(self) -> IsolatedRegistry:
        """Add the installed components and switch the installed hook plugins back on."""
        self.rows.extend(Registry.from_entry_points().rows)
        self._hook_sources = HookSources(True, self._hook_sources.extra)
        use_hook_sources(self._hook_sources)
        return self


@dataclass
class CliResult:
    """What ``vcframe_cli(...)`` returns."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


@contextlib.contextmanager
def isolated_registry() -> Iterator[IsolatedRegistry]:
    """Use an :class:`IsolatedRegistry` inside the block (the ``vcframe_registry`` fixture, for any code)."""
    registry = IsolatedRegistry()
    previous_registry = use_registry(registry)
    previous_hooks = use_hook_sources(registry._hook_sources)
    try:
        yield registry
    finally:
        use_registry(previous_registry)
        use_hook_sources(previous_hooks)


@pytest.fixture
def vcframe_registry() -> Iterator[IsolatedRegistry]:
    """An isolated registry (no installed components or hook plugins) that the pipeline and CLI use."""
    with isolated_registry() as registry:
        yield registry


@pytest.fixture
def dummy_registry(vcframe_registry: IsolatedRegistry) -> IsolatedRegistry:
    """The isolated registry with vcframe's dummy components: test-tone, test-constant, test-sine."""
    from vcframe.testing.dummy_specs import DUMMY_SPECS

    for spec in DUMMY_SPECS:
        vcframe_registry.register(spec, distribution="vcframe-core")
    return vcframe_registry


@pytest.fixture
def vcframe_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., CliResult]:
    """Run the CLI in-process with a clean settings environment (no user vcframe.toml, no VCFRAME_* vars)."""
    import os

    from typer.testing import CliRunner

    from vcframe.cli import _load_cli_hooks, app

    for key in list(os.environ):
        if key.startswith("VCFRAME_") and key not in ("VCFRAME_SHARED",):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    reset_plugin_manager()
    _load_cli_hooks()

    def invoke(*args: Any) -> CliResult:
        runner = CliRunner()
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=True)
        exception = result.exception if not isinstance(result.exception, SystemExit) else None
        return CliResult(result.exit_code, result.stdout, result.stderr, exception)

    return invoke


@pytest.fixture
def speech_like_wav(tmp_path: Path) -> Callable[..., Path]:
    """``speech_like_wav(name="voice.wav", seconds=2.0, f0=120.0, sample_rate=16000, channels=1)``."""
    import numpy as np
    import soundfile

    from vcframe.testing.signals import speech_like

    def make(
        name: str = "voice.wav",
        seconds: float = 2.0,
        f0: float = 120.0,
        sample_rate: int = 16000,
        channels: int = 1,
        subtype: str | None = None,
    ) -> Path:
        samples = speech_like(seconds, sample_rate, f0)
        if channels > 1:
            samples = np.stack([samples] * channels, axis=1)
        path = tmp_path / name
        soundfile.write(str(path), samples, sample_rate, subtype=subtype)
        return path

    return make


@pytest.fixture
def torch_threads(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[int]]:
    """``torch_threads(count)``: torch reports ``count`` threads (as if it had started on a machine where that is
    its default; OMP_NUM_THREADS and MKL_NUM_THREADS are unset) and ``torch.set_num_threads`` changes only the
    fake; returns the list of counts set since, so a test sees what a pipeline or component chose without
    depending on this machine's cores or changing its real thread pools."""
    import torch

    def fake(count: int) -> list[int]:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            monkeypatch.delenv(name, raising=False)
        current = [count]
        calls: list[int] = []

        def set_num_threads(value: int) -> None:
            calls.append(value)
            current[0] = value

        monkeypatch.setattr(torch, "get_num_threads", lambda: current[0])
        monkeypatch.setattr(torch, "set_num_threads", set_num_threads)
        return calls

    return fake
