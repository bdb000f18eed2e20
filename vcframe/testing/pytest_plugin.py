"""pytest plugin (entry point ``pytest11``) with fixtures for testing vcframe plugins.

* ``vcframe_registry``: an isolated component registry. Installed plugins are *not* loaded into it;
  register test components with ``vcframe_registry.register(SPEC)``. While the fixture is active, the
  pipeline and the CLI use this registry. Call ``vcframe_registry.add_installed()`` to add the installed
  entry points too.
* ``vcframe_cli``: runs ``vcframe ...`` in-process and returns a result with ``exit_code``, ``stdout``,
  ``stderr``; ``vcframe_cli("run", "--encoder", "mine", ...)``.
* ``dummy_registry``: an isolated registry holding vcframe's dummy components (test-tone, test-constant,
  test-sine).
* ``speech_like_wav``: a factory writing a short harmonic, speech-like WAV file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vcframe.discovery import Registry, reset_plugin_manager, use_registry


class IsolatedRegistry(Registry):
    """A registry for tests; ``add_installed`` merges the installed entry points."""

    def add_installed(self) -> IsolatedRegistry:
        self.rows.extend(Registry.from_entry_points().rows)
        return self


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


@pytest.fixture
def vcframe_registry() -> Iterator[IsolatedRegistry]:
    registry = IsolatedRegistry()
    previous = use_registry(registry)
    try:
        yield registry
    finally:
        use_registry(previous)


@pytest.fixture
def dummy_registry(vcframe_registry: IsolatedRegistry) -> IsolatedRegistry:
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

    def make(
        name: str = "voice.wav",
        seconds: float = 2.0,
        f0: float = 120.0,
        sample_rate: int = 16000,
        channels: int = 1,
        subtype: str | None = None,
    ) -> Path:
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        vibrato = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
        phase = 2 * np.pi * np.cumsum(vibrato) / sample_rate
        signal = sum(np.sin(k * phase) / k for k in range(1, 12))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
        samples = (0.3 * envelope * signal / np.max(np.abs(signal))).astype(np.float32)
        if channels > 1:
            samples = np.stack([samples] * channels, axis=1)
        path = tmp_path / name
        soundfile.write(str(path), samples, sample_rate, subtype=subtype)
        return path

    return make
