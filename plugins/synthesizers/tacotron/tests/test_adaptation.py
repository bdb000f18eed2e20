"""Speaker adaptation (vcframe.adaptation) through the Tacotron synthesizer, on tiny random-weight models."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from vcframe_tacotron.model import TacotronSynthesizer
from vcframe_tacotron.spec import SPEC

from vcframe.adaptation import SpeakerAdaptation, adapt_speaker
from vcframe.config import Settings
from vcframe.errors import AudioInputError, ConfigError, InputError
from vcframe.pipeline import Pipeline
from vcframe.specs import GE2E_RTVC_EMBEDDING
from vcframe.testing.signals import speech_like
from vcframe.types import SpeakerEmbedding, Waveform

TRANSCRIPT = "Hello there, how are you today?"


def _tiny(**overrides: object) -> TacotronSynthesizer:
    torch.manual_seed(0)
    return TacotronSynthesizer(SPEC.make_config({**SPEC.test_config, **overrides}))


def _embedding() -> SpeakerEmbedding:
    vector = torch.rand(1, 256, generator=torch.Generator().manual_seed(1))
    return SpeakerEmbedding(vector / vector.norm(dim=1, keepdim=True), GE2E_RTVC_EMBEDDING)


def _clip(seconds: float = 2.2) -> Waveform:
    return Waveform.from_numpy([speech_like(seconds, 16000, 120.0)], 16000)


def _adapt(synthesizer: TacotronSynthesizer, adaptation: SpeakerAdaptation, clip: Waveform | None = None, **kw):
    return adapt_speaker(
        synthesizer, clip or _clip(), _embedding(), adaptation, synthesizer.output_spec, transcript=TRANSCRIPT, **kw
    )


def test_adaptation_changes_the_embedding_only_and_lowers_the_loss() -> None:
    synthesizer = _tiny()
    weights = {name: tensor.clone() for name, tensor in synthesizer.network.state_dict().items()}
    start = _embedding()
    result = _adapt(synthesizer, SpeakerAdaptation(steps=3, learning_rate=0.02))
    assert result.steps == 3 and result.stopped_by == "steps"
    assert result.transcript == TRANSCRIPT and result.transcript_source == "given"
    assert result.loss_after < result.loss_before
    vector = result.embedding.vector
    assert vector.shape == (1, 256) and result.embedding.spec == GE2E_RTVC_EMBEDDING
    assert float((vector - start.vector).norm()) > 1e-3  # it moved
    assert float(vector.norm()) == pytest.approx(1.0, abs=1e-5)  # and stayed on the unit sphere
    # the synthesizer is untouched: weights, batch-norm statistics, the step counter, no gradients, eval mode
    for name, tensor in synthesizer.network.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    assert all(parameter.grad is None for parameter in synthesizer.network.parameters())
    assert not synthesizer.network.training


def test_adaptation_is_deterministic_with_a_seed() -> None:
    synthesizer = _tiny(inference_dropout=0.5)  # dropout draws random numbers: the seed pins them
    first = _adapt(synthesizer, SpeakerAdaptation(steps=2, seed=7))
    again = _adapt(synthesizer, SpeakerAdaptation(steps=2, seed=7))
    other = _adapt(synthesizer, SpeakerAdaptation(steps=2, seed=8))
    torch.testing.assert_close(first.embedding.vector, again.embedding.vector, rtol=0, atol=1e-6)
    assert first.loss_after == pytest.approx(again.loss_after, rel=1e-6)
    assert float((first.embedding.vector - other.embedding.vector).abs().max()) > 1e-6


def test_adaptation_respects_its_time_bound() -> None:
    synthesizer = _tiny()
    result = _adapt(synthesizer, SpeakerAdaptation(steps=10_000, max_seconds=0.01))
    assert result.stopped_by == "time" and result.steps == 1
    assert result.seconds < 10  # one step and two loss measurements, not ten thousand steps


def test_bad_input_is_refused_before_any_step() -> None:
    synthesizer = _tiny()
    with pytest.raises(AudioInputError, match=r"1\.00 s long; speaker adaptation needs at least 2\.00 s"):
        _adapt(synthesizer, SpeakerAdaptation(steps=1), clip=_clip(1.0))
    with pytest.raises(InputError, match="reference text is empty"):
        adapt_speaker(synthesizer, _clip(), _embedding(), SpeakerAdaptation(), synthesizer.output_spec, transcript=" ")
    with pytest.raises(ConfigError, match="steps must be a whole number >= 1, got 0"):
        SpeakerAdaptation(steps=0)
    with pytest.raises(ConfigError, match="max_seconds must be > 0, got -1"):
        SpeakerAdaptation(max_seconds=-1)
    assert SpeakerAdaptation.from_value(0) is None and SpeakerAdaptation.from_value(5) == SpeakerAdaptation(steps=5)


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_without_a_transcript_the_clip_is_recognised(tmp_path: Path) -> None:
    pytest.importorskip("pocketsphinx")
    path = tmp_path / "said.wav"
    text = "the weather is nice today and we are going to the park"
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(path)], check=True, capture_output=True)
    from vcframe.audio import load_audio

    clip = load_audio(path, sample_rate=16000)
    synthesizer = _tiny()
    result = adapt_speaker(synthesizer, clip, _embedding(), SpeakerAdaptation(steps=1), synthesizer.output_spec)
    assert result.transcript_source == "recognised"
    assert len(set(result.transcript.split()) & set(text.split())) >= 3  # pocketsphinx hears most of flite


@pytest.fixture
def tiny_pipeline() -> Pipeline:
    from vcframe_ge2e.spec import SPEC as GE2E_SPEC

    options = {"encoder": dict(GE2E_SPEC.test_config), "synthesizer": dict(SPEC.test_config)}
    torch.manual_seed(0)
    return Pipeline("ge2e", "tacotron", "griffinlim", settings=Settings(), device="cpu", options=options)


def test_clone_with_adaptation_records_it_and_changes_the_voice(tiny_pipeline: Pipeline, tmp_path: Path) -> None:
    import soundfile

    reference = tmp_path / "voice.wav"
    soundfile.write(str(reference), speech_like(2.5, 16000, 120.0), 16000)
    plain = tiny_pipeline.clone("Hi there.", reference, seed=1)
    plain_mel = tiny_pipeline.last_mels[0].item(0)
    adapted = tiny_pipeline.clone(
        "Hi there.", reference, seed=1, adapt_speaker=SpeakerAdaptation(steps=2), reference_text=TRANSCRIPT
    )
    adapted_mel = tiny_pipeline.last_mels[0].item(0)
    record = adapted.metadata["speaker_adaptation"]
    assert record["steps"] == 2 and record["transcript"] == TRANSCRIPT and record["transcript_source"] == "given"
    assert "speaker_adaptation" not in plain.metadata
    # the adapted embedding reached the synthesizer
    assert adapted_mel.shape != plain_mel.shape or not np.allclose(adapted_mel, plain_mel, atol=1e-4)
    with pytest.raises(InputError, match="needs the reference clip, not only its embedding"):
        tiny_pipeline.clone("Hi.", embedding=_embedding(), adapt_speaker=1, reference_text=TRANSCRIPT)
    with pytest.raises(InputError, match="fits one reference clip; got 2"):
        tiny_pipeline.clone("Hi.", [reference, reference], adapt_speaker=1, reference_text=TRANSCRIPT)


def test_a_voice_keeps_its_adapted_embedding_for_the_same_weights(
    tiny_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import soundfile

    from vcframe.voices import VoiceStore, voice_embedding

    monkeypatch.setenv("VCFRAME_DATA_DIR", str(tmp_path / "data"))
    reference = tmp_path / "voice.wav"
    soundfile.write(str(reference), speech_like(2.5, 16000, 120.0), 16000)
    store = VoiceStore()
    voice = store.add(
        "bob", reference, pipeline=tiny_pipeline, consent=True, adaptation=SpeakerAdaptation(steps=2),
        reference_text=TRANSCRIPT,
    )  # fmt: skip
    assert voice.adapted_embedding_file is not None
    record = voice.details["speaker_adaptation"]
    assert record["steps"] == 2 and record["valid_for"]["synthesizer"] == "tacotron"
    plain = SpeakerEmbedding.load(str(voice.embedding_file))
    adapted = SpeakerEmbedding.load(str(voice.adapted_embedding_file))
    assert float((plain.vector - adapted.vector).abs().max()) > 1e-6
    used = voice_embedding(store.get("bob"), tiny_pipeline)
    torch.testing.assert_close(used.vector, adapted.vector)
    # other synthesizer weights (another checkpoint): the plain embedding
    other_options = {"synthesizer": {**SPEC.test_config, "checkpoint": str(tmp_path / "other.safetensors")}}
    other = Pipeline("ge2e", "tacotron", "griffinlim", settings=Settings(), device="cpu", options=other_options)
    torch.testing.assert_close(voice_embedding(store.get("bob"), other).vector, plain.vector)
