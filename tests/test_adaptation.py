"""Speaker adaptation's refusals and CLI options, with the dummy components (the Tacotron plugin's tests cover
adaptation itself: plugins/synthesizers/tacotron/tests/test_adaptation.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests._cli import DUMMIES, one_line_error
from vcframe.adaptation import (
    DEFAULT_LEARNING_RATES,
    OUTPUT_ADAPTER_KEY,
    OutputAdapter,
    SpeakerAdaptation,
    output_adapter,
    without_output_adapter,
)
from vcframe.cli import _adaptation_line
from vcframe.config import Settings
from vcframe.errors import ConfigError, InputError
from vcframe.pipeline import Pipeline


def test_a_synthesizer_without_adapt_embedding_is_refused(dummy_registry, speech_like_wav) -> None:
    pipeline = Pipeline("test-tone", "test-constant", "test-sine", settings=Settings(), device="cpu")
    with pytest.raises(ConfigError, match="synthesizer 'test-constant' cannot adapt to a speaker"):
        pipeline.clone("Hello.", speech_like_wav(seconds=2.5), adapt_speaker=3, reference_text="some words")
    assert "speaker_adaptation" not in pipeline.clone("Hello.", speech_like_wav(seconds=2.5)).metadata


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--adapt-speaker"], "synthesizer 'test-constant' cannot adapt to a speaker"),  # the flag without a number
        (["--adapt-steps", "5", "--reference-text", "hello"], "cannot adapt to a speaker"),
        (["--reference-text", "hello"], "--reference-text is read by speaker adaptation only"),
        (["--adapt-target", "output"], "--adapt-target is read by speaker adaptation only"),
        (["--adapt-target", "embedding"], "--adapt-target is read by speaker adaptation only"),
        (["--adapt-speaker", "--adapt-target", "postnet"], "--adapt-target takes embedding or output, got 'postnet'"),
        (["--adapt-steps", "2", "--adapt-target", "output", "--reference-text", "hi"], "cannot adapt its output layer"),
    ],
)
def test_run_adapt_speaker_refusals_are_one_line(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path, extra, needle
) -> None:
    out = tmp_path / "out.wav"
    result = vcframe_cli(
        "run", *DUMMIES, "--reference", speech_like_wav(seconds=2.5), "--text", "Hi.", "--out", out, *extra
    )
    one_line_error(result, needle)
    assert not out.exists() and list(tmp_path.glob("*.wav")) == [tmp_path / "voice.wav"]


def test_run_adapt_steps_takes_whole_positive_steps(dummy_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    result = vcframe_cli(
        "run", *DUMMIES, "-r", speech_like_wav(), "--text", "Hi.", "--out", tmp_path / "o.wav", "--adapt-steps", "0"
    )
    assert result.exit_code == 2 and "--adapt-steps" in result.stderr


def test_voices_add_refuses_adaptation_with_a_synthesizer_that_cannot(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("VCFRAME_DATA_DIR", str(tmp_path / "data"))
    clip = speech_like_wav(seconds=2.5)
    result = vcframe_cli(
        "voices", "add", "carol", clip, "--consent", "--encoder", "test-tone", "--synthesizer", "test-constant",
        "-o", "vocoder=test-sine", "--adapt-steps", "2", "--reference-text", "some words",
    )  # fmt: skip
    one_line_error(result, "cannot adapt to a speaker")
    assert not (tmp_path / "data" / "voices" / "carol").exists()
    result = vcframe_cli("voices", "add", "carol", clip, "--consent", "--reference-text", "some words")
    one_line_error(result, "--reference-text is read by speaker adaptation only")


def test_the_target_chooses_the_method_and_the_learning_rate() -> None:
    assert SpeakerAdaptation().target == "embedding" and SpeakerAdaptation().learning_rate is None
    assert SpeakerAdaptation().effective_learning_rate == 0.005 == DEFAULT_LEARNING_RATES["embedding"]
    assert SpeakerAdaptation(target="output").effective_learning_rate == 0.001
    assert SpeakerAdaptation(target="output", learning_rate=0.003).effective_learning_rate == 0.003
    # the default follows the target it is replaced with; a rate set explicitly stays
    assert replace(SpeakerAdaptation(), target="output").effective_learning_rate == 0.001
    assert replace(SpeakerAdaptation(learning_rate=0.02), target="output").effective_learning_rate == 0.02
    with pytest.raises(ConfigError, match="adaptation target must be 'embedding' or 'output', got 'postnet'"):
        SpeakerAdaptation(target="postnet")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="learning_rate must be > 0, got 0"):
        SpeakerAdaptation(target="output", learning_rate=0)


def _adapter(**changes: object) -> OutputAdapter:
    weight = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    return replace(OutputAdapter("tacotron", "post_proj", weight, "ab" * 32, "registry:demo", 30), **changes)


def test_an_output_adapter_round_trips_through_json_metadata() -> None:
    import json

    adapter = _adapter()
    stored = json.loads(json.dumps(adapter.to_metadata()))
    assert stored["encoding"] == "base64-float32-le" and stored["shape"] == [2, 3]
    again = OutputAdapter.from_metadata(stored)
    assert np.array_equal(again.weight, adapter.weight) and again.weight.dtype == np.float32
    assert (again.synthesizer, again.layer, again.weights_sha256, again.checkpoint, again.steps) == (
        "tacotron", "post_proj", "ab" * 32, "registry:demo", 30,
    )  # fmt: skip
    assert output_adapter({}) is None and output_adapter({OUTPUT_ADAPTER_KEY: stored}) is not None
    for broken, needle in [
        ({**stored, "shape": [3, 3]}, "its weight has 24 bytes; shape [3, 3] of float32 needs 36"),
        ({**stored, "weight": "not base64!"}, "its weight is not base64"),
        ({**stored, "shape": [6]}, "its shape is [6], not two sizes >= 1"),
        ({key: value for key, value in stored.items() if key != "weights_sha256"}, "(missing weights_sha256)"),
        (_adapter(weight=np.full((2, 3), np.nan, dtype=np.float32)).to_metadata(), "values that are not finite"),
    ]:
        with pytest.raises(InputError, match="the embedding's output adapter is unreadable") as caught:
            output_adapter({OUTPUT_ADAPTER_KEY: broken})
        assert needle in caught.value.message


def test_another_synthesizer_refuses_an_embedding_carrying_an_output_adapter(dummy_registry, speech_like_wav) -> None:
    pipeline = Pipeline("test-tone", "test-constant", "test-sine", settings=Settings(), device="cpu")
    embedding = pipeline.embed([speech_like_wav(seconds=2.5)])
    carrying = replace(embedding, metadata={**embedding.metadata, OUTPUT_ADAPTER_KEY: _adapter().to_metadata()})
    with pytest.raises(
        InputError, match="carries an output adapter fitted to tacotron's post_proj; synthesizer 'test-constant'"
    ) as caught:
        pipeline.clone("Hello.", embedding=carrying)
    assert "without_output_adapter" in (caught.value.hint or "")
    with pytest.raises(InputError, match="cannot apply it"):  # the base class checks it too, without the pipeline
        pipeline.synthesizer.synthesize(["Hello."], carrying)
    assert without_output_adapter(carrying).metadata == embedding.metadata
    pipeline.clone("Hello.", embedding=without_output_adapter(carrying))  # the plain embedding speaks
    with pytest.raises(ConfigError, match="synthesizer 'test-constant' cannot adapt its output layer"):
        pipeline.clone(
            "Hello.", speech_like_wav(seconds=2.5), adapt_speaker=SpeakerAdaptation(steps=2, target="output"),
            reference_text="some words",
        )  # fmt: skip


def test_voices_add_refuses_adapt_target_without_adaptation(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("VCFRAME_DATA_DIR", str(tmp_path / "data"))
    result = vcframe_cli("voices", "add", "dave", speech_like_wav(seconds=2.5), "--consent", "--adapt-target", "output")
    one_line_error(result, "--adapt-target is read by speaker adaptation only")
    assert not (tmp_path / "data" / "voices" / "dave").exists()


def test_the_adaptation_line_says_what_was_fitted() -> None:
    record = {"steps": 30, "seconds": 3.21, "loss_before": 2.5, "loss_after": 2.25, "stopped_by": "steps"}
    record |= {"transcript": "hi", "transcript_source": "given"}
    assert _adaptation_line({**record, "target": "output"}).startswith("output layer, 30 steps in 3.2 s, loss 2.500")
    assert _adaptation_line({**record, "target": "embedding"}).startswith("embedding, 30 steps in 3.2 s")
    assert _adaptation_line(record).startswith("embedding, 30 steps")  # a voice stored before targets existed
