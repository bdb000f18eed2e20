"""The first streamed chunk (issue 26): a small first block and the conditioning's mel path by phase taps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from vcframe_wavernn.generate import block_bounds
from vcframe_wavernn.model import WaveRNNVocoder
from vcframe_wavernn.spec import SPEC, WaveRNNConfig
from vcframe_wavernn.upsample import UpsampleNetwork

from vcframe.specs import RTVC_SYNTHESIZER_MEL
from vcframe.types import Mel


def random_mel(frames: int, seed: int = 0) -> Mel:
    generator = torch.Generator().manual_seed(seed)
    return Mel(torch.rand(1, 80, frames, generator=generator) * 8 - 4, RTVC_SYNTHESIZER_MEL)


def trained_looking_upsampler(pad: int = 2) -> UpsampleNetwork:
    """RTVC's upsampler with smoothing kernels away from the box initialisation (asymmetric, as training leaves
    them), so the phase taps are tested on more than a symmetric box."""
    torch.manual_seed(3)
    network = UpsampleNetwork(80, (5, 5, 8), 16, 1, 16, pad).eval()
    with torch.no_grad():
        for layer in network.up_layers:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.add_(torch.rand_like(layer.weight) * 0.05)
    return network


@pytest.mark.parametrize("pad", [1, 2, 3])
def test_mel_path_by_phase_equals_the_convolutions(pad):
    network = trained_looking_upsampler(pad)
    mel = torch.rand(1, 80, 23 + 2 * pad) * 2 - 1
    with torch.no_grad():
        reference, _ = network(mel)
        taps = network.phase_taps()
        fast = network.mel_path_by_phase(mel[0], taps)
    assert taps.shape == (200, 5)
    assert fast.shape == reference[0].shape and fast.is_contiguous()
    assert torch.allclose(fast, reference[0], atol=2e-6, rtol=0)
    # elementwise arithmetic: a window of frames gives the whole mel's bits at the same positions
    with torch.no_grad():
        window = network.mel_path_by_phase(mel[0, :, : 7 + 2 * pad], taps)
    assert torch.equal(window[: 6 * 200], fast[: 6 * 200])


def test_generator_conditioning_equals_the_network():
    torch.manual_seed(0)
    vocoder = WaveRNNVocoder(SPEC.make_config({**SPEC.test_config, "engine": "torch"}))
    mel = random_mel(12).frames[0] / 4
    generator = vocoder.generator
    with torch.no_grad():
        upsampled, aux = generator.condition(mel, 0.0)
        reference_up, reference_aux = vocoder.network.upsample(F.pad(mel.unsqueeze(0), (2, 2)))
    assert torch.allclose(upsampled, reference_up[0], atol=2e-6, rtol=0)
    assert torch.equal(aux, reference_aux[0])


def test_block_bounds():
    assert list(block_bounds(1000, 400, 100)) == [(0, 100), (100, 500), (500, 900), (900, 1000)]
    assert list(block_bounds(60, 400, 100)) == [(0, 60)]
    assert list(block_bounds(250, 100, 400)) == [(0, 100), (100, 200), (200, 250)]  # never above the block


@pytest.mark.parametrize("engine", ["torch", "cpp"])
def test_first_chunk_after_the_first_block_and_stream_equals_vocode(engine):
    torch.manual_seed(0)
    config = {**SPEC.test_config, "engine": engine, "block_steps": 300, "first_block_steps": 40}
    vocoder = WaveRNNVocoder(SPEC.make_config(config))
    mel = random_mel(60)  # 12,000 samples: folds of 400 + 2 x 50 steps, blocks 0-40, 40-340, 340-500
    chunks = list(vocoder.vocode_stream(mel, seed=5))
    assert [chunk.samples.shape[1] for chunk in chunks] == [40, 300, 12000 - 340]  # the rest when folds finish
    streamed = np.concatenate([chunk.item(0) for chunk in chunks])
    assert np.array_equal(streamed, vocoder.vocode(mel, seed=5).item(0))


def test_first_block_option_is_checked():
    assert WaveRNNConfig().first_block_steps == 100
    with pytest.raises(ValueError):
        WaveRNNConfig(first_block_steps=0)
