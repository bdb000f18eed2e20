from __future__ import annotations

import numpy as np
import pytest
import torch

from vcframe.config import Settings
from vcframe.errors import AudioInputError, IncompatibleComponentsError, InputError
from vcframe.pipeline import Pipeline
from vcframe.types import Waveform

DUMMIES = dict(encoder="test-tone", synthesizer="test-constant", vocoder="test-sine")


@pytest.fixture
def pipeline(dummy_registry) -> Pipeline:
    return Pipeline(**DUMMIES, settings=Settings(), device="cpu")


def test_clone_returns_audio_with_metadata(pipeline, speech_like_wav) -> None:
    waveform = pipeline.clone("Hello there.", speech_like_wav(), seed=3)
    assert waveform.batch_size == 1 and waveform.sample_rate == 16000
    assert waveform.lengths.item() == 4 * len("Hello there.") * 64
    assert waveform.metadata["seed"] == 3
    assert waveform.metadata["components"]["vocoder"]["name"] == "test-sine"
    assert waveform.metadata["bridged"] == []


def test_synthesized_mels_carry_the_embedding_they_were_made_for(pipeline, speech_like_wav) -> None:
    """Each mel of a run names its speaker embedding (SPEAKER_EMBEDDING_KEY), for vocoders that read the voice:
    the single embedding for every sentence, or one row each of an embedding per sentence."""
    from vcframe.types import SPEAKER_EMBEDDING_KEY

    embedding = pipeline.embed([speech_like_wav()])
    mels = pipeline.synthesize(["One.", "Two."], embedding)
    assert [mel.metadata[SPEAKER_EMBEDDING_KEY] for mel in mels] == [embedding, embedding]
    pipeline.clone("Hello there.", speech_like_wav(), seed=3)
    assert pipeline.last_mels[0].metadata[SPEAKER_EMBEDDING_KEY].vector.shape == (1, embedding.spec.dim)
    pair = embedding.repeat(2)
    pair = type(pair)(pair.vector * torch.tensor([[1.0], [-1.0]]), pair.spec)
    first, second = pipeline.synthesize(["One.", "Two."], pair)
    assert torch.equal(first.metadata[SPEAKER_EMBEDDING_KEY].vector, pair.vector[:1])
    assert torch.equal(second.metadata[SPEAKER_EMBEDDING_KEY].vector, pair.vector[1:])


def test_long_text_is_split_and_joined_with_pauses(pipeline, speech_like_wav) -> None:
    sentences = ["First one here.", "Second sentence.", "Third!"]
    waveform = pipeline.clone(" ".join(sentences), speech_like_wav(), seed=1)
    speech = sum(4 * len(s) * 64 for s in sentences)
    pauses = 2 * round(0.15 * 16000)
    assert waveform.lengths.item() == speech + pauses
    assert len(pipeline.last_mels) == 3


def test_seed_makes_output_reproducible(pipeline, speech_like_wav) -> None:
    reference = speech_like_wav()
    first = pipeline.clone("Same text.", reference, seed=5).samples
    assert torch.equal(first, pipeline.clone("Same text.", reference, seed=5).samples)
    assert not torch.equal(first, pipeline.clone("Same text.", reference, seed=6).samples)


def test_stream_concatenates_to_clone(pipeline, speech_like_wav) -> None:
    reference = speech_like_wav()
    text = "A streamed sentence. And another one."
    chunks = list(pipeline.stream(text, reference, seed=2))
    assert len(chunks) > 2
    streamed = torch.cat([c.samples for c in chunks], dim=1)
    torch.testing.assert_close(streamed, pipeline.clone(text, reference, seed=2).samples, atol=1e-6, rtol=0)


def test_embed_many_references_and_reuse(pipeline, speech_like_wav, tmp_path) -> None:
    low, high = speech_like_wav("low.wav", f0=100), speech_like_wav("high.wav", f0=300, sample_rate=44100)
    both = pipeline.embed([low, high])
    assert both.vector.shape == (1, 8)
    assert float(both.vector.norm()) == pytest.approx(1.0, abs=1e-6)
    both.save(str(tmp_path / "voice.npy"))
    from vcframe.types import SpeakerEmbedding

    reused = pipeline.clone("Hi.", embedding=SpeakerEmbedding.load(str(tmp_path / "voice.npy")), seed=1)
    # a saved embedding has no clip to match the spectrum to (on by default for clips): the same output as the
    # clips give without spectrum matching, and another one with it
    pipeline.settings.match_spectrum = 0
    assert torch.equal(reused.samples, pipeline.clone("Hi.", [low, high], seed=1).samples)
    pipeline.settings.match_spectrum = None
    assert not torch.equal(reused.samples, pipeline.clone("Hi.", [low, high], seed=1).samples)


def test_reference_waveform_is_resampled(pipeline) -> None:
    t = np.arange(44100) / 44100
    reference = Waveform.from_numpy((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 44100)
    assert pipeline.load_reference(reference).sample_rate == 16000


@pytest.mark.parametrize(("text", "message"), [("", "empty"), ("   \n ", "empty"), ("x" * 10_001, "10,001 characters")])
def test_bad_text(pipeline, speech_like_wav, text, message) -> None:
    with pytest.raises(InputError, match=message):
        pipeline.clone(text, speech_like_wav())


def test_too_short_reference(pipeline, speech_like_wav) -> None:
    with pytest.raises(AudioInputError, match=r"is 0.05 s long; test-tone needs at least 0.10 s"):
        pipeline.clone("Hi.", speech_like_wav(seconds=0.05))


def test_incompatible_components_refused_before_loading(dummy_registry, monkeypatch) -> None:
    from vcframe_griffinlim.spec import SPEC

    dummy_registry.register(SPEC)
    import vcframe.discovery

    monkeypatch.setattr(vcframe.discovery, "build_component", lambda *a, **k: pytest.fail("weights loaded"))
    with pytest.raises(IncompatibleComponentsError, match="hop_length: test-constant gives 64, griffinlim expects 200"):
        Pipeline("test-tone", "test-constant", "griffinlim", settings=Settings(), device="cpu")


def test_allow_mismatch_and_adapter_are_recorded(dummy_registry, speech_like_wav) -> None:
    from vcframe_griffinlim.spec import SPEC

    from vcframe._adapters import adapted_frame_count
    from vcframe.testing.dummy_specs import TEST_MEL

    dummy_registry.register(SPEC)
    options = {"vocoder": {"n_iter": 2}}
    # hop lengths differ (64 -> 200 at 16 kHz): the built-in adapter resamples the frame rate
    resampled = Pipeline(
        "test-tone", "test-constant", "griffinlim", settings=Settings(), device="cpu", options=options, adapt=True
    )
    assert resampled.bridged[0].startswith("mel adapter mel-remap(16000 Hz / hop 64 / 20 bands 50-7000 Hz")
    frames = adapted_frame_count(4 * len("Hi there."), TEST_MEL, SPEC.input)
    assert resampled.clone("Hi there.", speech_like_wav(), seed=1).lengths.item() == frames * 200
    # bands wholly beyond the synthesizer's 50-7,000 Hz cannot be adapted: refused in one line naming both specs
    beyond = {"vocoder": {"griffinlim": {"mel": {**SPEC.input.model_dump(), "fmin": 7500.0, "fmax": 8000.0}}}}
    with pytest.raises(
        IncompatibleComponentsError, match="cannot adapt mels of 16000 Hz / hop 64 .* to 16000 Hz / hop 200"
    ):
        Pipeline(
            "test-tone", "test-constant", "griffinlim", settings=Settings(components=beyond), device="cpu", adapt=True
        )
    allowed = Pipeline(
        "test-tone",
        "test-constant",
        "griffinlim",
        settings=Settings(),
        device="cpu",
        options=options,
        allow_mismatch=True,
    )
    assert any(item.startswith("synthesizer -> vocoder: hop_length") for item in allowed.bridged)
    same_rate = Settings(
        components={
            "vocoder": {
                "griffinlim": {"mel": {**SPEC.input.model_dump(), "hop_length": 64, "win_length": 256, "n_fft": 256}}
            }
        }
    )
    bridged = Pipeline(
        "test-tone", "test-constant", "griffinlim", settings=same_rate, device="cpu", options=options, adapt=True
    )
    assert bridged.bridged and bridged.bridged[0].startswith("mel adapter")
    waveform = bridged.clone("Hi there.", speech_like_wav(), seed=1)
    assert waveform.metadata["bridged"] == bridged.bridged
    assert waveform.lengths.item() == 4 * len("Hi there.") * 64


def test_pipeline_sets_one_torch_thread_when_nothing_is_chosen(dummy_registry, torch_threads) -> None:
    calls = torch_threads(8)  # torch's own default on an 8-core machine
    pipeline = Pipeline(**DUMMIES, settings=Settings(), device="cpu")
    assert calls == [1] and torch.get_num_threads() == 1 and pipeline.threads == 1


def test_explicit_thread_choices_win_over_the_default(dummy_registry, torch_threads, monkeypatch) -> None:
    torch_threads(8)
    assert Pipeline(**DUMMIES, settings=Settings(threads=2), device="cpu").threads == 2  # the threads setting
    assert Pipeline(**DUMMIES, settings=Settings(threads=2), device="cpu", threads=3).threads == 3  # the argument
    calls = torch_threads(4)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # read by torch at start: its count stays
    assert Pipeline(**DUMMIES, settings=Settings(), device="cpu").threads == 4 and calls == []
