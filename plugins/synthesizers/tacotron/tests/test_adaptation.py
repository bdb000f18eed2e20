"""Speaker adaptation (vcframe.adaptation) through the Tacotron synthesizer, on tiny random-weight models."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from vcframe_tacotron.model import TacotronSynthesizer
from vcframe_tacotron.spec import SPEC

from vcframe.adaptation import (
    OUTPUT_ADAPTER_KEY,
    OutputAdapter,
    SpeakerAdaptation,
    adapt_speaker,
    output_adapter,
    without_output_adapter,
)
from vcframe.config import Settings
from vcframe.errors import AudioInputError, ConfigError, InputError
from vcframe.pipeline import Pipeline
from vcframe.specs import GE2E_RTVC_EMBEDDING
from vcframe.testing.signals import speech_like
from vcframe.types import SpeakerEmbedding, Waveform

TRANSCRIPT = "Hello there, how are you today?"
OUTPUT = SpeakerAdaptation(steps=3, target="output")


def _tiny(seed: int = 0, **overrides: object) -> TacotronSynthesizer:
    torch.manual_seed(seed)
    return TacotronSynthesizer(SPEC.make_config({**SPEC.test_config, **overrides}))


def _embedding() -> SpeakerEmbedding:
    vector = torch.rand(1, 256, generator=torch.Generator().manual_seed(1))
    return SpeakerEmbedding(vector / vector.norm(dim=1, keepdim=True), GE2E_RTVC_EMBEDDING)


def _clip(seconds: float = 2.2) -> Waveform:
    return Waveform.from_numpy([speech_like(seconds, 16000, 120.0)], 16000)


def _adapt(
    synthesizer: TacotronSynthesizer, adaptation: SpeakerAdaptation = OUTPUT, clip: Waveform | None = None, **kw
):
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


@pytest.fixture
def reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 2.5 s speech-like reference wav, with the voice store in a fresh data folder (VCFRAME_DATA_DIR)."""
    import soundfile

    monkeypatch.setenv("VCFRAME_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "voice.wav"
    soundfile.write(str(path), speech_like(2.5, 16000, 120.0), 16000)
    return path


def test_a_voice_keeps_its_adapted_embedding_for_the_same_weights(
    tiny_pipeline: Pipeline, tmp_path: Path, reference: Path
) -> None:
    from vcframe.voices import VoiceStore, voice_embedding

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


# -- output-layer adaptation (target="output": the Tacotron's post_proj fitted to the clip) ----------------


@pytest.fixture(scope="module")
def adapted() -> tuple[TacotronSynthesizer, SpeakerEmbedding, dict[str, torch.Tensor]]:
    """A tiny synthesizer, its weights before adapting, and the embedding its output adaptation gave (3 steps)."""
    synthesizer = _tiny()
    weights = {name: tensor.clone() for name, tensor in synthesizer.network.state_dict().items()}
    result = _adapt(synthesizer, SpeakerAdaptation(steps=3, target="output", learning_rate=0.01))
    assert result.target == "output" and result.steps == 3 and result.stopped_by == "steps"
    assert result.summary()["target"] == "output"
    assert result.loss_after < result.loss_before
    return synthesizer, result.embedding, weights


def test_only_the_output_layer_is_fitted_and_the_network_is_unchanged(adapted) -> None:
    synthesizer, embedding, weights = adapted
    # the network: weights, batch-norm statistics and the step counter bit-identical, no gradients, eval mode
    state = synthesizer.network.state_dict()
    assert state.keys() == weights.keys()
    for name, tensor in state.items():
        assert torch.equal(tensor, weights[name]), name
    assert all(parameter.grad is None for parameter in synthesizer.network.parameters())
    assert not synthesizer.network.training
    # the embedding: the encoder's vector, now carrying the adapter of post_proj's shape, fitted through these weights
    torch.testing.assert_close(embedding.vector, _embedding().vector, rtol=0, atol=0)
    adapter = output_adapter(embedding)
    assert adapter is not None and adapter.synthesizer == "tacotron" and adapter.layer == "post_proj"
    own = synthesizer.network.post_proj.weight.detach().numpy()
    assert adapter.weight.shape == own.shape and adapter.weight.dtype == np.float32
    assert float(np.abs(adapter.weight - own).max()) > 1e-3  # it moved
    assert adapter.weights_sha256 == synthesizer.weights_sha256() and len(adapter.weights_sha256) == 64
    assert adapter.checkpoint is None and adapter.steps == 3
    synthesizer.check_output_adapter(embedding)  # fits: no error


def test_output_adaptation_is_deterministic_with_a_seed() -> None:
    synthesizer = _tiny(inference_dropout=0.5)  # dropout draws random numbers: the seed pins them
    first = output_adapter(_adapt(synthesizer, replace(OUTPUT, steps=2, seed=7)).embedding)
    again = output_adapter(_adapt(synthesizer, replace(OUTPUT, steps=2, seed=7)).embedding)
    other = output_adapter(_adapt(synthesizer, replace(OUTPUT, steps=2, seed=8)).embedding)
    assert first is not None and again is not None and other is not None
    assert np.array_equal(first.weight, again.weight)
    assert float(np.abs(first.weight - other.weight).max()) > 1e-7


def test_output_adaptation_respects_its_time_bound() -> None:
    result = _adapt(_tiny(), replace(OUTPUT, steps=10_000, max_seconds=1e-9))
    assert result.stopped_by == "time" and result.steps == 1
    adapter = output_adapter(result.embedding)
    assert adapter is not None and adapter.steps == 1


def test_output_adaptation_refuses_bad_input_before_any_step() -> None:
    synthesizer = _tiny()
    with pytest.raises(AudioInputError, match=r"1\.00 s long; speaker adaptation needs at least 2\.00 s"):
        _adapt(synthesizer, clip=_clip(1.0))
    with pytest.raises(InputError, match="reference text is empty"):
        adapt_speaker(synthesizer, _clip(), _embedding(), OUTPUT, synthesizer.output_spec, transcript="  ")


def test_synthesis_applies_the_adapter_for_that_call_only(adapted) -> None:
    synthesizer, embedding, weights = adapted
    texts = ["Hi there.", "A second one."]
    plain = synthesizer.synthesize(texts, _embedding(), seed=0)
    with_adapter = synthesizer.synthesize(texts, embedding, seed=0)
    plain_again = synthesizer.synthesize(texts, _embedding(), seed=0)
    assert with_adapter.metadata["output_adapter"] == "post_proj" and "output_adapter" not in plain.metadata
    assert float((with_adapter.frames - plain.frames).abs().max()) > 1e-4
    torch.testing.assert_close(plain_again.frames, plain.frames, rtol=0, atol=0)  # nothing stayed behind
    assert torch.equal(synthesizer.network.post_proj.weight, weights["post_proj.weight"])
    # the same as a network whose post_proj holds the adapter's weight
    twin = _tiny()
    adapter = output_adapter(embedding)
    assert adapter is not None
    with torch.no_grad():
        twin.network.post_proj.weight.copy_(torch.from_numpy(adapter.weight))
    expected = twin.synthesize(texts, _embedding(), seed=0)
    torch.testing.assert_close(with_adapter.lengths, expected.lengths)
    torch.testing.assert_close(with_adapter.frames, expected.frames, rtol=0, atol=1e-5)
    # the plain embedding speaks as before
    unadapted = synthesizer.synthesize(texts, without_output_adapter(embedding), seed=0)
    torch.testing.assert_close(unadapted.frames, plain.frames, rtol=0, atol=0)


def test_the_adapter_survives_save_and_load(adapted, tmp_path: Path) -> None:
    synthesizer, embedding, _ = adapted
    path = tmp_path / "voice.npy"
    embedding.save(str(path))
    stored = (tmp_path / "voice.npy.json").read_text()
    assert '"encoding": "base64-float32-le"' in stored
    loaded = SpeakerEmbedding.load(str(path))
    before, after = output_adapter(embedding), output_adapter(loaded)
    assert before is not None and after is not None
    assert np.array_equal(before.weight, after.weight) and after.weights_sha256 == before.weights_sha256
    torch.testing.assert_close(
        synthesizer.synthesize(["Hi there."], loaded, seed=0).frames,
        synthesizer.synthesize(["Hi there."], embedding, seed=0).frames,
        rtol=0,
        atol=0,
    )
    # a damaged adapter is refused at load in one line
    path.with_suffix(".npy.json").write_text(stored.replace('"base64-float32-le"', '"float16"'))
    with pytest.raises(InputError, match="output adapter is unreadable: its weight encoding is 'float16'"):
        SpeakerEmbedding.load(str(path))


def test_an_adapter_for_other_weights_or_another_shape_is_refused(adapted) -> None:
    synthesizer, embedding, _ = adapted
    other = _tiny(seed=1)  # the same layout, other weights
    with pytest.raises(InputError, match=r"fitted through other tacotron weights \(sha256 [0-9a-f]{12}\.\.\., "):
        other.synthesize(["Hi there."], embedding)
    with pytest.raises(InputError, match="this synthesizer's") as caught:
        other.check_output_adapter(embedding)
    assert "adapt again" in (caught.value.hint or "") and "without_output_adapter" in (caught.value.hint or "")
    adapter = output_adapter(embedding)
    assert adapter is not None
    narrow = replace(adapter, weight=adapter.weight[:, :8].copy())
    misshapen = replace(embedding, metadata={**embedding.metadata, OUTPUT_ADAPTER_KEY: narrow.to_metadata()})
    with pytest.raises(
        InputError, match=r"replaces a post_proj of shape \(80, 8\); this tacotron's post_proj has shape"
    ):
        synthesizer.synthesize(["Hi there."], misshapen)
    foreign = OutputAdapter("other-synth", "proj", adapter.weight, adapter.weights_sha256, None, 3)
    alien = replace(embedding, metadata={OUTPUT_ADAPTER_KEY: foreign.to_metadata()})
    with pytest.raises(InputError, match="fitted to other-synth's proj; synthesizer 'tacotron' cannot apply it"):
        synthesizer.synthesize(["Hi there."], alien)


def test_clone_and_voices_with_output_adaptation(tiny_pipeline: Pipeline, reference: Path) -> None:
    from vcframe.voices import VoiceStore, voice_embedding

    adaptation = SpeakerAdaptation(steps=2, target="output", learning_rate=0.01)
    plain = tiny_pipeline.clone("Hi there.", reference, seed=1)
    plain_mel = tiny_pipeline.last_mels[0].item(0)
    cloned = tiny_pipeline.clone("Hi there.", reference, seed=1, adapt_speaker=adaptation, reference_text=TRANSCRIPT)
    cloned_mel = tiny_pipeline.last_mels[0].item(0)
    assert cloned.metadata["speaker_adaptation"]["target"] == "output" and "speaker_adaptation" not in plain.metadata
    assert cloned.metadata["output_adapter"]["layer"] == "post_proj" and "output_adapter" not in plain.metadata
    assert cloned_mel.shape != plain_mel.shape or not np.allclose(cloned_mel, plain_mel, atol=1e-4)
    assert tiny_pipeline.last_mels[0].metadata.get("output_adapter") == "post_proj"

    store = VoiceStore()
    voice = store.add(
        "bob", reference, pipeline=tiny_pipeline, consent=True, adaptation=adaptation, reference_text=TRANSCRIPT
    )
    record = voice.details["speaker_adaptation"]
    assert record["target"] == "output" and record["valid_for"]["synthesizer"] == "tacotron"
    assert voice.adapted_embedding_file is not None
    stored = SpeakerEmbedding.load(str(voice.adapted_embedding_file))
    assert output_adapter(stored) is not None
    assert output_adapter(SpeakerEmbedding.load(str(voice.embedding_file))) is None
    used = voice_embedding(store.get("bob"), tiny_pipeline)
    assert output_adapter(used) is not None
    by_voice = tiny_pipeline.clone("Hi there.", voice="bob", seed=1)
    assert by_voice.metadata.get("speaker_adaptation") is None  # reused, not adapted again
    assert by_voice.metadata["output_adapter"] == {"synthesizer": "tacotron", "layer": "post_proj", "steps": 2}
    assert tiny_pipeline.last_mels[0].metadata.get("output_adapter") == "post_proj"  # and applied
    # the same synthesizer and checkpoint name but other weights (changed in place): the plain embedding
    with torch.no_grad():
        tiny_pipeline.synthesizer.network.postnet.conv_project1.conv.weight.mul_(1.01)
    fallback = voice_embedding(store.get("bob"), tiny_pipeline)
    assert output_adapter(fallback) is None
    torch.testing.assert_close(fallback.vector, stored.vector)


def test_voices_add_and_run_with_adapt_target_output_on_the_command_line(
    vcframe_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``voices add --adapt-target output`` stores the adapter; ``run --voice`` applies it with those weights and
    speaks the plain embedding once the checkpoint file holds other weights (same path: the sha256 tells)."""
    import json

    import soundfile
    from vcframe_ge2e.model import build_network
    from vcframe_ge2e.spec import GE2EConfig

    monkeypatch.setenv("VCFRAME_DATA_DIR", str(tmp_path / "data"))
    reference = tmp_path / "voice.wav"
    soundfile.write(str(reference), speech_like(2.5, 16000, 120.0), 16000)
    torch.manual_seed(0)
    encoder = build_network(GE2EConfig(preset="tiny", checkpoint=None))
    torch.save({"step": 1, "model_state": encoder.state_dict(), "optimizer_state": {}}, tmp_path / "encoder.pt")
    checkpoint = tmp_path / "tacotron.safetensors"
    _tiny(seed=0).export(str(checkpoint))
    options = [
        *("--encoder", "ge2e", "-o", "encoder.ge2e.preset=tiny", "-o", "encoder.ge2e.vad=energy"),
        *("-o", f"encoder.ge2e.checkpoint={tmp_path / 'encoder.pt'}", "--synthesizer", "tacotron"),
        *("-o", f"synthesizer.tacotron.checkpoint={checkpoint}", "-o", "synthesizer.tacotron.inference_dropout=0"),
        *("-o", "synthesizer.tacotron.max_frames=40"),
    ]
    result = vcframe_cli(
        "voices", "add", "carol", reference, "--consent", *options,
        "--adapt-steps", "2", "--adapt-target", "output", "--reference-text", TRANSCRIPT,
    )  # fmt: skip
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "speaker adaptation (tacotron): output layer, 2 steps in " in result.stderr
    folder = tmp_path / "data" / "voices" / "carol"
    record = json.loads((folder / "voice.json").read_text())["speaker_adaptation"]
    assert record["target"] == "output" and record["steps"] == 2
    adapter = output_adapter(SpeakerEmbedding.load(str(folder / "adapted_embedding.npy")))
    assert adapter is not None and adapter.layer == "post_proj" and adapter.steps == 2

    def run(name: str, *source: object, adapter_used: bool = False) -> np.ndarray:
        out = tmp_path / f"{name}.wav"
        result = vcframe_cli(
            "run", *source, "-t", "Hi there.", "--out", out, "--seed", "1", "--match-spectrum", "0", *options,
            "--vocoder", "griffinlim", "-o", "vocoder.griffinlim.n_iter=4",
        )  # fmt: skip
        assert result.exit_code == 0, (result.stderr, result.exception)
        note = "output adapter: tacotron post_proj fitted in 2 steps (stored with the voice or the embedding)"
        assert (note in result.stderr) == adapter_used, result.stderr
        return soundfile.read(str(out))[0]

    plain = run("plain", "--embedding", folder / "embedding.npy")
    by_voice = run("voice", "--voice", "carol", adapter_used=True)
    assert by_voice.shape != plain.shape or not np.allclose(by_voice, plain, atol=1e-4)  # the adapter spoke
    _tiny(seed=1).export(str(checkpoint))  # other weights under the same path
    plain = run("plain-other", "--embedding", folder / "embedding.npy")
    np.testing.assert_array_equal(run("voice-other", "--voice", "carol"), plain)
