"""The periodicity loss (``fit --periodicity-weight``): the normalised autocorrelation finds a tone's period and
tells voiced from noise; the loss is 0 for the recording itself, charges noise and a wrong period where the pitch
is known, only the strength where it is not, leaves pauses out, and its gradient makes the output more like the
recording."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vcframe_hifigan.losses import normalised_autocorrelation, periodicity_loss

RATE, HOP = 16000, 200


def tone(frequency: float, seconds: float = 0.4, *, harmonics: int = 3) -> torch.Tensor:
    time = torch.arange(int(seconds * RATE), dtype=torch.float64) / RATE
    return sum(torch.sin(2 * torch.pi * frequency * k * time) / k for k in range(1, harmonics + 1)).float()


def test_the_curve_peaks_at_the_period_near_1_for_a_tone_and_stays_low_for_noise():
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(6400).astype(np.float32))
    curves, energies = normalised_autocorrelation(torch.stack([tone(150.0), tone(210.0), noise]), RATE, HOP)
    window = int(round(3 * RATE / 60.0))
    assert curves.shape[:2] == (3, (6400 - window) // HOP + 1) and energies.shape == curves.shape[:2]
    shortest = RATE // 500
    for row, frequency in ((0, 150.0), (1, 210.0)):
        period = RATE / frequency
        at_period = curves[row][:, int(round(period)) - shortest]
        assert at_period.min() > 0.95, at_period  # the window's taper undone: ~1 at the period
        half_period = curves[row][:, int(round(period / 2)) - shortest]
        assert half_period.max() < 0.0, half_period  # and below 0 half a period off
        peaks = (curves[row].argmax(dim=-1) + shortest) / period  # the period or a multiple (equally periodic)
        assert torch.all((peaks - peaks.round()).abs() * period <= 1.5), peaks
    assert curves[2].amax(dim=-1).max() < 0.35
    silent, silent_energy = normalised_autocorrelation(torch.zeros(1, 6400), RATE, HOP)
    assert torch.isfinite(silent).all() and float(silent_energy.max()) == 0.0


def test_the_loss_charges_noise_and_a_wrong_period_and_only_the_strength_when_the_pitch_is_unknown():
    real = tone(150.0)[None, None]
    noise = 0.5 * torch.from_numpy(np.random.default_rng(1).standard_normal((1, 1, 6400)).astype(np.float32))
    assert float(periodicity_loss(real, real, RATE, HOP)) == pytest.approx(0.0, abs=1e-6)
    loud_copy = float(periodicity_loss(real, 3.0 * real, RATE, HOP))  # the curve is normalised: level-free
    assert loud_copy == pytest.approx(0.0, abs=1e-5)
    assert float(periodicity_loss(real, noise, RATE, HOP)) > 0.2
    wrong = tone(190.0)[None, None]
    known = float(periodicity_loss(real, wrong, RATE, HOP, torch.tensor([True])))
    unknown = float(periodicity_loss(real, wrong, RATE, HOP, torch.tensor([False])))
    assert known > 0.2 and unknown < 0.02, (known, unknown)
    assert float(periodicity_loss(real, noise, RATE, HOP, torch.tensor([False]))) > 0.5  # noise is never voiced


def test_pauses_are_left_out_and_a_silent_batch_gives_0_with_a_finite_gradient():
    real = tone(150.0).clone()
    real[3200:] = 0.0  # a pause in the second half
    # whatever the output does where the recording is silent costs nothing: frames (800 samples) starting at
    # 3200 or later see only the pause, and those before end by 4000
    tail = 4000
    generated = real.clone()
    generated[tail:] = torch.from_numpy(np.random.default_rng(3).standard_normal(6400 - tail).astype(np.float32))
    assert float(periodicity_loss(real[None], generated[None], RATE, HOP)) < 0.05
    silence = torch.zeros(2, 1, 6400)
    generated = torch.randn(2, 1, 6400, requires_grad=True)
    loss = periodicity_loss(silence, generated, RATE, HOP)
    loss.backward()
    assert float(loss.detach()) == 0.0 and generated.grad is not None and torch.isfinite(generated.grad).all()


def test_a_gradient_step_brings_a_noisy_output_closer_to_the_recordings_periodicity():
    real = tone(120.0)[None, None]
    generated = (real + 0.8 * torch.randn_like(real)).requires_grad_(True)
    before = periodicity_loss(real, generated, RATE, HOP)
    before.backward()
    assert generated.grad is not None
    after = periodicity_loss(real, (generated - 20.0 * generated.grad).detach(), RATE, HOP)
    assert float(after) < float(before.detach()), (float(before.detach()), float(after))


def test_bad_shapes_are_refused_naming_both_values():
    with pytest.raises(ValueError, match=r"shape \(1, 1, 6400\) but the generated one \(1, 1, 6000\)"):
        periodicity_loss(torch.zeros(1, 1, 6400), torch.zeros(1, 1, 6000), RATE, HOP)
    with pytest.raises(ValueError, match="shorter than one periodicity frame of 800 samples"):
        normalised_autocorrelation(torch.zeros(1, 700), RATE, HOP)
    with pytest.raises(ValueError, match=r"pitch_known has shape \(3,\), expected \(2,\)"):
        periodicity_loss(torch.zeros(2, 6400), torch.zeros(2, 6400), RATE, HOP, torch.ones(3, dtype=torch.bool))
