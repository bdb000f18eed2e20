"""Speaker conditioning (``speaker_embedding_dim``): a zero map at construction (the unconditioned function),
the same in the packed inference form, carried by the config and the safetensors file, and read by the vocoder
from the mel's metadata, refusing an embedding of another space or size."""

from __future__ import annotations

import pytest
import torch
from vcframe_hifigan.generator import Generator
from vcframe_hifigan.inference import PackedGenerator
from vcframe_hifigan.model import HiFiGANVocoder, load_generator_state, save_generator
from vcframe_hifigan.spec import PRESETS, GeneratorConfig, HiFiGANConfig

from vcframe.errors import CheckpointError, InputError
from vcframe.specs import RTVC_SYNTHESIZER_MEL, EmbeddingSpec
from vcframe.types import SPEAKER_EMBEDDING_KEY, Mel, SpeakerEmbedding

DIM = 8
SPACE = EmbeddingSpec(space="test/voices", dim=DIM)


def _sizes(speaker_embedding_dim: int = DIM) -> GeneratorConfig:
    values = HiFiGANConfig(
        preset="v3", upsample_initial_channel=16, upsample_rates=[8, 5, 5], upsample_kernel_sizes=[16, 11, 11]
    ).generator_config()
    return GeneratorConfig.model_validate({**values.model_dump(), "speaker_embedding_dim": speaker_embedding_dim})


def _conditioned(seed: int = 3) -> Generator:
    """A conditioned generator whose projection and mean are not zero (as after training)."""
    torch.manual_seed(seed)
    generator = Generator(_sizes(), weight_norm=False).eval().requires_grad_(False)
    generator.speaker_projection.weight.normal_(0.0, 0.5)
    generator.speaker_projection.bias.normal_(0.0, 0.1)
    generator.speaker_embedding_mean.normal_(0.0, 0.3)
    return generator


def _vectors(count: int, seed: int = 0) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(count, DIM, generator=torch.Generator().manual_seed(seed)), dim=1)


def _mel(batch: int = 2, frames: int = 12) -> torch.Tensor:
    return torch.randn(batch, 80, frames, generator=torch.Generator().manual_seed(frames)) - 4


def test_the_config_carries_the_size_and_the_original_config_json_does_not_name_it() -> None:
    sizes = _sizes()
    assert sizes.to_original()["speaker_embedding_dim"] == DIM
    assert GeneratorConfig.from_original(sizes.to_original()) == sizes
    assert "speaker_embedding_dim" not in PRESETS["v1"].to_original()
    assert GeneratorConfig.from_original(PRESETS["v1"].to_original()).speaker_embedding_dim == 0
    assert sizes.describe().endswith("speaker_embedding_dim 8")
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        GeneratorConfig.model_validate({**sizes.model_dump(), "speaker_embedding_dim": -1})


def test_a_new_conditioned_generator_computes_what_the_unconditioned_one_does() -> None:
    torch.manual_seed(5)
    plain = Generator(_sizes(0), weight_norm=False).eval()
    conditioned = Generator(_sizes(), weight_norm=True).eval()
    load_generator_state(conditioned, plain.state_dict(), "plain", add_speaker=True)
    conditioned.remove_weight_norm()
    mel = _mel()
    with torch.no_grad():
        expected = plain(mel)
        assert torch.allclose(conditioned(mel, _vectors(2)), expected, atol=1e-5)
        assert torch.allclose(conditioned(mel), expected, atol=1e-5)
    with pytest.raises(
        CheckpointError, match=r"speaker_embedding_dim 8 \(first difference: speaker_"
    ):  # keys must match
        load_generator_state(Generator(_sizes(), weight_norm=False), plain.state_dict(), "plain")


def test_the_embedding_changes_the_output_and_broadcasts_over_the_batch() -> None:
    generator = _conditioned()
    mel, vectors = _mel(), _vectors(2)
    with torch.no_grad():
        both = generator(mel, vectors)
        first = generator(mel[:1], vectors[0])  # (D,)
        assert torch.allclose(both[:1], first, atol=1e-6)
        assert (both[0] - generator(mel[:1], vectors[1:])[0]).abs().max() > 1e-3  # the other voice differs
        shared = generator(mel, vectors[:1])  # (1, D) for the whole batch
        assert torch.allclose(shared[1:], generator(mel[1:], vectors[:1]), atol=1e-6)
        assert torch.allclose(generator(mel), generator(mel, generator.speaker_embedding_mean), atol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(3, 8\) for a batch of 2: expected \(2, 8\)"):
        generator(mel, _vectors(3))
    with pytest.raises(ValueError, match=r"shape \(2, 5\)"):
        generator(mel, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="reads no speaker embedding"):
        Generator(_sizes(0), weight_norm=False)(mel, vectors)


@pytest.mark.parametrize("frames", [5, 17])  # 17 runs padded to 18: the offset must not leak into the padding
def test_the_packed_form_equals_the_generator_with_an_embedding(frames) -> None:
    generator = _conditioned()
    mel, vectors = _mel(frames=frames), _vectors(2)
    with torch.no_grad():
        expected = generator(mel, vectors)[:, 0]
        expected_mean = generator(mel)[:, 0]
    packed = PackedGenerator(generator)
    assert torch.allclose(packed(mel, vectors), expected, atol=1e-5)
    assert torch.allclose(packed(mel), expected_mean, atol=1e-5)
    close = PackedGenerator(generator, torch.bfloat16)(mel, vectors)
    assert close.dtype == torch.float32 and (close - expected).abs().mean() < 0.02
    with pytest.raises(ValueError, match="reads no speaker embedding"):
        PackedGenerator(Generator(_sizes(0), weight_norm=False))(mel, vectors)


@pytest.fixture
def conditioned_vocoder(tmp_path) -> HiFiGANVocoder:
    path = tmp_path / "voices.safetensors"
    save_generator(_conditioned(), RTVC_SYNTHESIZER_MEL, path, speaker_embedding_space=SPACE.space)
    return HiFiGANVocoder(HiFiGANConfig(checkpoint=str(path), precision="float32"))


def test_the_vocoder_reads_the_embedding_the_mel_comes_with(conditioned_vocoder) -> None:
    vocoder = conditioned_vocoder
    assert vocoder.speaker_embedding_space == "test/voices" and vocoder.network.config.speaker_embedding_dim == DIM
    frames, vectors = _mel(), _vectors(2)
    with torch.no_grad():
        expected = vocoder.network(frames, vectors)[:, 0]
        expected_mean = vocoder.network(frames)[:, 0]
    mel = Mel(frames, RTVC_SYNTHESIZER_MEL, metadata={SPEAKER_EMBEDDING_KEY: SpeakerEmbedding(vectors, SPACE)})
    assert torch.allclose(vocoder.vocode(mel).samples, expected, atol=1e-5)
    assert torch.allclose(vocoder.vocode(Mel(frames, RTVC_SYNTHESIZER_MEL)).samples, expected_mean, atol=1e-5)
    one = Mel(
        frames[:1, :, :9], RTVC_SYNTHESIZER_MEL, metadata={SPEAKER_EMBEDDING_KEY: SpeakerEmbedding(vectors[1:], SPACE)}
    )
    whole = vocoder.vocode(one).samples
    streamed = torch.cat([chunk.samples for chunk in vocoder.vocode_stream(one)], dim=1)
    assert torch.allclose(streamed, whole, atol=vocoder.spec.streaming_tolerance)
    with torch.no_grad():
        assert torch.allclose(whole, vocoder.network(frames[:1, :, :9], vectors[1:])[:, 0], atol=1e-5)


def test_an_embedding_of_another_space_or_batch_is_refused_naming_both(conditioned_vocoder) -> None:
    frames = _mel()
    other = SpeakerEmbedding(_vectors(2), EmbeddingSpec(space="ge2e/rtvc", dim=DIM))
    with pytest.raises(
        InputError,
        match="reads test/voices speaker embeddings of 8 values, but the mel comes with a ge2e/rtvc embedding of 8",
    ):
        conditioned_vocoder.vocode(Mel(frames, RTVC_SYNTHESIZER_MEL, metadata={SPEAKER_EMBEDDING_KEY: other}))
    three = SpeakerEmbedding(_vectors(3), SPACE)
    with pytest.raises(InputError, match="3 speaker embeddings for a batch of 2 mels"):
        conditioned_vocoder.vocode(Mel(frames, RTVC_SYNTHESIZER_MEL, metadata={SPEAKER_EMBEDDING_KEY: three}))


def test_an_unconditioned_vocoder_ignores_the_embedding(tmp_path) -> None:
    torch.manual_seed(2)
    path = tmp_path / "plain.safetensors"
    save_generator(Generator(_sizes(0), weight_norm=False), RTVC_SYNTHESIZER_MEL, path)
    vocoder = HiFiGANVocoder(HiFiGANConfig(checkpoint=str(path), precision="float32"))
    frames = _mel()
    with_voice = Mel(
        frames, RTVC_SYNTHESIZER_MEL, metadata={SPEAKER_EMBEDDING_KEY: SpeakerEmbedding(_vectors(2), SPACE)}
    )
    assert vocoder.speaker_embedding_space is None
    assert torch.equal(vocoder.vocode(with_voice).samples, vocoder.vocode(Mel(frames, RTVC_SYNTHESIZER_MEL)).samples)


def test_folded_conditioned_weights_load_into_a_weight_normalised_generator() -> None:
    """What ``fit --init EXPORTED`` does with a conditioned export: the convolutions unfold into weight norm and
    the speaker projection (a Linear) keeps its plain weight; the function is unchanged."""
    folded = _conditioned()
    trainable = Generator(_sizes(), weight_norm=True)
    load_generator_state(trainable, folded.state_dict(), "exported.safetensors")
    assert "speaker_projection.weight" in trainable.state_dict()
    assert not any(key.startswith("speaker_projection.parametrizations") for key in trainable.state_dict())
    mel, vectors = _mel(), _vectors(2)
    with torch.no_grad():
        assert torch.allclose(trainable.eval()(mel, vectors), folded(mel, vectors), atol=1e-5)
