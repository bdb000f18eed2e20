"""The packed inference form: equal to the generator in float32 at every length (padded lengths included),
close in bfloat16, and refusing what it cannot compute."""

from __future__ import annotations

import pytest
import torch
from vcframe_hifigan import inference
from vcframe_hifigan.generator import Generator
from vcframe_hifigan.inference import PackedGenerator, padded_frames
from vcframe_hifigan.spec import HiFiGANConfig

#: Small V1-like (ResBlock1) and V3-like (ResBlock2) generators, 16 channels after conv_pre.
SIZES = {
    "resblock 1": {"preset": "v1", "upsample_initial_channel": 16},
    "resblock 2": {"preset": "v3", "upsample_initial_channel": 16},
}


def _generator(name: str) -> Generator:
    torch.manual_seed(3)
    return Generator(HiFiGANConfig(**SIZES[name]).generator_config(), weight_norm=False).eval().requires_grad_(False)


def test_padded_lengths_round_up_by_at_most_an_eighth() -> None:
    for frames in range(1, 600):
        padded = padded_frames(frames)
        assert frames <= padded <= frames * 1.125
    assert len({padded_frames(frames) for frames in range(65, 129)}) == 8  # 8 lengths per octave


@pytest.mark.parametrize("name", sorted(SIZES))
@pytest.mark.parametrize("frames", [1, 5, 17, 33])  # 17 and 33 run padded to 18 and 36
def test_float32_equals_the_generator(name, frames) -> None:
    generator = _generator(name)
    mel = torch.randn(2, 80, frames, generator=torch.Generator().manual_seed(frames)) - 4
    with torch.inference_mode():
        expected = generator(mel)[:, 0]
    packed = PackedGenerator(generator)(mel)
    assert packed.dtype == torch.float32 and packed.shape == expected.shape
    torch.testing.assert_close(packed, expected, rtol=0, atol=1e-6)


def test_padding_is_zeroed_after_every_convolution(monkeypatch) -> None:
    """Without zeroing what follows the utterance after each convolution, the padded frames leak into the last
    samples: the zeroing is what keeps a padded length exact."""
    generator = _generator("resblock 2")
    mel = torch.randn(1, 80, 17, generator=torch.Generator().manual_seed(0)) - 4
    with torch.inference_mode():
        expected = generator(mel)[:, 0]
    monkeypatch.setattr(inference, "zero_tail", lambda activations, valid: activations)
    leaked = PackedGenerator(generator)(mel)
    assert float((leaked - expected).abs().max()) > 1e-4


@pytest.mark.parametrize("name", sorted(SIZES))
def test_bfloat16_is_close_and_returns_float32(name) -> None:
    generator = _generator(name)
    mel = torch.randn(1, 80, 20, generator=torch.Generator().manual_seed(1)) - 4
    with torch.inference_mode():
        expected = generator(mel)[:, 0]
    fast = PackedGenerator(generator, torch.bfloat16)(mel)
    assert fast.dtype == torch.float32
    difference = (fast - expected).abs()
    assert 0 < float(difference.max()) < 0.05 and float(difference.mean()) < 5e-3


def test_weight_norm_and_other_dtypes_are_refused() -> None:
    with pytest.raises(ValueError, match="remove_weight_norm"):
        PackedGenerator(Generator(HiFiGANConfig(**SIZES["resblock 2"]).generator_config()))
    with pytest.raises(ValueError, match="float16"):
        PackedGenerator(_generator("resblock 2"), torch.float16)
