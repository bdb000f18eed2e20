"""The torch mel front end of the losses matches vcframe.audio.mel_spectrogram (the numpy reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vcframe_hifigan.melspec import MelFrontEnd, loss_mel_spec

from vcframe.audio import mel_spectrogram, rescale_peak
from vcframe.specs import HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL
from vcframe.testing import speech_like


# Natural-log mels: the HiFi-GAN fixtures' criterion for log mels (README section 7: atol 1e-3, 2e-4 where the
# value is above -9; float32 FFTs differ in the last bits and the log magnifies that near the 1e-5 floor).
# Symmetric dB mels in [-4, 4] (numpy computes them in float64 after the pre-emphasis): measured 3.9e-5, atol 2e-4.
@pytest.mark.parametrize(
    "spec",
    [
        HIFIGAN_MEL,
        loss_mel_spec(RTVC_SYNTHESIZER_MEL),
        RTVC_SYNTHESIZER_MEL,
        RTVC_SYNTHESIZER_MEL.model_copy(update={"win_length": 600}),  # a window shorter than the FFT, centred in it
    ],
)
def test_matches_the_numpy_front_end(spec):
    noise = np.random.default_rng(0).standard_normal((2, spec.sample_rate)).astype(np.float32) * 1e-3
    waveforms = [
        rescale_peak(speech_like(0.5, spec.sample_rate, f0=110.0 + 60 * i) + noise[i, : spec.sample_rate // 2])
        for i in range(2)
    ]
    batch = np.stack(waveforms).astype(np.float32)
    mel = MelFrontEnd(spec)(torch.from_numpy(batch))
    for index, waveform in enumerate(batch):
        expected = mel_spectrogram(waveform, spec)
        assert mel.shape[1:] == expected.shape
        error = np.abs(mel[index].numpy() - expected)
        if spec.amplitude_scale == "ln":
            assert error.max() <= 1e-3 and error[expected > -9].max() <= 2e-4
        else:
            assert error.max() <= 2e-4


def test_loss_mel_is_differentiable_and_takes_three_dimensional_input():
    spec = loss_mel_spec(RTVC_SYNTHESIZER_MEL)
    assert (spec.fmin, spec.fmax, spec.pad_length, spec.amplitude_scale) == (0.0, 8000.0, 300, "ln")
    waveform = torch.zeros(1, 1, 2000, requires_grad=True)  # silence: the 1e-9 epsilon keeps the root differentiable
    mel = MelFrontEnd(spec)(waveform)
    assert mel.shape == (1, 80, 10)
    mel.sum().backward()
    assert waveform.grad is not None and torch.isfinite(waveform.grad).all()
    with pytest.raises(ValueError, match="expected a waveform"):
        MelFrontEnd(spec)(torch.zeros(2000))
