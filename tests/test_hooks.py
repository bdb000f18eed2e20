"""One test per hookspec (marked ``covers_hook``), plus checks that every hookspec is documented and tested."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import typer

from vcframe import hookimpl
from vcframe.config import Settings
from vcframe.discovery import hook_names, plugin_manager, reset_plugin_manager
from vcframe.errors import AudioInputError
from vcframe.pipeline import Pipeline
from vcframe.types import Waveform

REPO = Path(__file__).resolve().parents[1]
DUMMIES = dict(encoder="test-tone", synthesizer="test-constant", vocoder="test-sine")


@pytest.fixture
def hooks():
    """Register hook implementations for one test: ``hooks(obj)``."""
    reset_plugin_manager()

    def register(plugin: object) -> object:
        plugin_manager().register(plugin)
        return plugin

    yield register
    reset_plugin_manager()


@dataclass
class Gain:
    name: str
    order: int
    factor: float

    def __call__(self, waveform: Waveform) -> Waveform:
        return Waveform(waveform.samples * self.factor, waveform.sample_rate, waveform.lengths, waveform.metadata)


@pytest.mark.covers_hook("vcframe_text_frontend")
def test_text_frontend_first_result_wins(hooks) -> None:
    class Upper:
        name = "upper"
        symbols = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ ")

        def normalize(self, text: str) -> str:
            return text.upper()

        def text_to_ids(self, text: str) -> list[int]:
            return [self.symbols.index(c) for c in self.normalize(text) if c in self.symbols]

    class Provider:
        @hookimpl
        def vcframe_text_frontend(self, name):
            return Upper() if name == "upper" else None

    hooks(Provider())
    frontend = plugin_manager().hook.vcframe_text_frontend(name="upper")
    assert frontend.text_to_ids("ab") == [0, 1]
    assert plugin_manager().hook.vcframe_text_frontend(name="unknown-frontend") is None


@pytest.mark.covers_hook("vcframe_reference_processors")
def test_reference_processors_are_ordered_and_selectable(hooks, dummy_registry, speech_like_wav) -> None:
    calls = []

    class Recorded(Gain):
        def __call__(self, waveform: Waveform) -> Waveform:
            calls.append(self.name)
            return super().__call__(waveform)

    class Provider:
        @hookimpl
        def vcframe_reference_processors(self):
            return [Recorded("second", 20, 1.0), Recorded("first", 10, 1.0)]

    hooks(Provider())
    pipeline = Pipeline(**DUMMIES, settings=Settings(), device="cpu")
    pipeline.load_reference(speech_like_wav())
    assert calls == ["first", "second"]
    calls.clear()
    Pipeline(**DUMMIES, settings=Settings(reference_processors=["second"]), device="cpu").load_reference(
        speech_like_wav()
    )
    assert calls == ["second"]


@pytest.mark.covers_hook("vcframe_output_processors")
def test_output_processors_apply_to_final_audio(hooks, dummy_registry, speech_like_wav) -> None:
    class Provider:
        @hookimpl
        def vcframe_output_processors(self):
            return [Gain("half", 0, 0.5)]

    pipeline = Pipeline(**DUMMIES, settings=Settings(), device="cpu")
    plain = pipeline.clone("Hello.", speech_like_wav(), seed=1)
    hooks(Provider())
    halved = pipeline.clone("Hello.", speech_like_wav(), seed=1)
    torch.testing.assert_close(halved.samples, plain.samples * 0.5)
    assert halved.metadata["output_processors"] == ["half"]


@pytest.mark.covers_hook("vcframe_mel_adapter")
def test_mel_adapter_is_opt_in(hooks, dummy_registry, speech_like_wav) -> None:
    from vcframe_griffinlim.spec import SPEC

    dummy_registry.register(SPEC)
    used = []

    class Provider:
        @hookimpl
        def vcframe_mel_adapter(self, source, target):
            from vcframe.types import Mel

            def adapt(mel):
                used.append(mel.spec.n_mels)
                frames = torch.nn.functional.interpolate(mel.frames, size=mel.frames.shape[2] * 64 // 200 + 1)
                frames = torch.nn.functional.interpolate(frames.transpose(1, 2), size=target.n_mels).transpose(1, 2)
                return Mel(frames.contiguous(), target)

            return adapt

    hooks(Provider())
    options = {"vocoder": {"n_iter": 2}}
    with pytest.raises(Exception, match="incompatible"):
        Pipeline("test-tone", "test-constant", "griffinlim", settings=Settings(), device="cpu", options=options)
    pipeline = Pipeline(
        "test-tone", "test-constant", "griffinlim", settings=Settings(), device="cpu", options=options, adapt=True
    )
    waveform = pipeline.clone("Hello.", speech_like_wav(), seed=1)
    assert used == [20] and waveform.sample_rate == 16000
    assert waveform.metadata["bridged"] == ["mel adapter adapt"]


@pytest.mark.covers_hook("vcframe_resolve_checkpoint")
def test_checkpoint_resolution_hook(hooks, tmp_path) -> None:
    from vcframe.checkpoints import resolve

    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"x")

    class Provider:
        @hookimpl
        def vcframe_resolve_checkpoint(self, component, reference):
            if reference.startswith("mystore://"):
                return str(weights)
            return None

    hooks(Provider())
    assert resolve("vocoder", "griffinlim", "mystore://voices/1").path == weights
    with pytest.raises(Exception, match="not found"):
        resolve("vocoder", "griffinlim", "otherstore://x")


@pytest.mark.covers_hook("vcframe_run_start")
@pytest.mark.covers_hook("vcframe_run_chunk")
@pytest.mark.covers_hook("vcframe_run_end")
def test_run_observers(hooks, dummy_registry, speech_like_wav) -> None:
    events = []

    class Observer:
        @hookimpl
        def vcframe_run_start(self, run):
            events.append(("start", run["sentences"]))

        @hookimpl
        def vcframe_run_chunk(self, run, index, chunk):
            events.append(("chunk", index))

        @hookimpl
        def vcframe_run_end(self, run, waveform, error):
            events.append(
                ("end", None if waveform is None else waveform.batch_size, type(error).__name__ if error else None)
            )

    hooks(Observer())
    pipeline = Pipeline(**DUMMIES, settings=Settings(), device="cpu")
    pipeline.clone("One. Two.", speech_like_wav(), seed=1)
    assert events[0] == ("start", 2) and events[-1] == ("end", 1, None)
    assert [e for e in events if e[0] == "chunk"] == [("chunk", 0), ("chunk", 1)]  # one per sentence, no pauses
    events.clear()
    with pytest.raises(AudioInputError):
        pipeline.clone("One.", speech_like_wav(seconds=0.01), seed=1)
    assert events[-1] == ("end", None, "AudioInputError")


@pytest.mark.covers_hook("vcframe_cli_commands")
def test_cli_commands_hook(hooks, vcframe_cli) -> None:
    class Provider:
        @hookimpl
        def vcframe_cli_commands(self, app: typer.Typer):
            @app.command("hello-hook")
            def hello() -> None:
                typer.echo("hello from a hook")

    hooks(Provider())
    from vcframe.cli import _load_cli_hooks

    _load_cli_hooks()
    result = vcframe_cli("hello-hook")
    assert result.exit_code == 0 and "hello from a hook" in result.stdout


def test_every_hookspec_has_a_docstring_documentation_and_a_test() -> None:
    from vcframe import hookspecs

    names = set(hook_names())
    assert names, "no hookspecs found"
    for name in names:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
    guide = (REPO / "docs" / "plugins.md").read_text()
    undocumented = {name for name in names if not re.search(rf"^#+ .*`{name}`", guide, re.MULTILINE)}
    assert not undocumented, f"hookspecs without a heading in docs/plugins.md: {sorted(undocumented)}"
    tree = ast.parse(Path(__file__).read_text())
    covered = {
        decorator.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "covers_hook"
    }
    assert names <= covered, f"hookspecs without a test: {sorted(names - covered)}"
