"""A differentiable mel front end in torch, for the training losses.

:class:`MelFrontEnd` computes what :func:`vcframe.audio.mel_spectrogram` computes for a
:class:`~vcframe.specs.MelSpec` (numpy/librosa, the one reference implementation), with the same mel basis
(:func:`vcframe.audio.mel_basis`), but on batched torch tensors and with gradients, so the mel L1 loss of a
generated waveform can be back-propagated. It matches the numpy front end to float32 rounding (the tests compare
them on RTVC's and HiFi-GAN's specs).

:func:`loss_mel_spec` is the mel HiFi-GAN's loss is measured on: the natural-log NVIDIA convention of the
generator's input mel, but up to the Nyquist frequency (``fmax_for_loss: null``) and from 0 Hz, whatever mel the
generator reads. For :data:`vcframe.specs.HIFIGAN_MEL` it is the original's loss mel exactly (fmax 11,025 Hz).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vcframe.specs import HIFIGAN_MEL, MelSpec


def loss_mel_spec(spec: MelSpec) -> MelSpec:
    """HiFi-GAN's loss mel for a generator that reads ``spec``: :data:`~vcframe.specs.HIFIGAN_MEL`'s convention
    (natural log of ``sqrt(re^2 + im^2 + 1e-9)`` floored at 1e-5, not centred, no pre-emphasis), at ``spec``'s
    rate, FFT, window, hop and band count, reflect-padded by ``(n_fft - hop) / 2``, from 0 Hz to sr/2."""
    return MelSpec(
        **{
            **HIFIGAN_MEL.model_dump(),
            "sample_rate": spec.sample_rate,
            "n_fft": spec.n_fft,
            "win_length": spec.win_length,
            "hop_length": spec.hop_length,
            "n_mels": spec.n_mels,
            "fmin": 0.0,
            "fmax": spec.sample_rate / 2,
            "pad_length": (spec.n_fft - spec.hop_length) // 2,
        }
    )


class MelFrontEnd(nn.Module):
    """``spec``'s mel spectrogram of a batch of waveforms, differentiable (torch.stft and a matrix product).

    Args:
        spec: the mel to compute (any :class:`~vcframe.specs.MelSpec`).

    Shapes: ``forward(waveform (B, L) or (B, 1, L) float32)`` -> (B, n_mels, T), with T the frame count
    :func:`vcframe.audio.frames_for` gives. The buffers (periodic Hann window zero-padded to ``n_fft``, mel basis)
    move with ``.to(device)``.
    """

    window: torch.Tensor
    basis: torch.Tensor

    def __init__(self, spec: MelSpec) -> None:
        super().__init__()
        from vcframe.audio import mel_basis

        self.spec = spec
        window = torch.hann_window(spec.win_length, periodic=True)
        left = (spec.n_fft - spec.win_length) // 2  # librosa centres a shorter window in the FFT frame
        self.register_buffer("window", F.pad(window, (left, spec.n_fft - spec.win_length - left)), persistent=False)
        self.register_buffer("basis", torch.from_numpy(mel_basis(spec).copy()), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        signal = waveform.squeeze(1) if waveform.dim() == 3 else waveform
        if signal.dim() != 2:
            raise ValueError(f"expected a waveform (B, L) or (B, 1, L), got shape {tuple(waveform.shape)}")
        if spec.preemphasis:  # y[n] = x[n] - c x[n-1], zero initial state (scipy's lfilter)
            signal = torch.cat([signal[:, :1], signal[:, 1:] - spec.preemphasis * signal[:, :-1]], dim=1)
        padding = spec.n_fft // 2 if spec.center else spec.pad_length
        if padding:
            mode = "reflect" if spec.pad_mode == "reflect" else "constant"
            signal = F.pad(signal.unsqueeze(1), (padding, padding), mode=mode).squeeze(1)
        stft = torch.stft(
            signal,
            spec.n_fft,
            hop_length=spec.hop_length,
            win_length=spec.n_fft,
            window=self.window,
            center=False,
            return_complex=True,
        )
        if spec.magnitude_epsilon:
            magnitude = torch.sqrt(stft.real**2 + stft.imag**2 + spec.magnitude_epsilon)
        else:
            magnitude = stft.abs()
        if spec.magnitude_power != 1:
            magnitude = magnitude**spec.magnitude_power
        return self._scale(torch.matmul(self.basis, magnitude))

    def _scale(self, mel_amplitude: torch.Tensor) -> torch.Tensor:
        """:func:`vcframe.audio.amplitude_to_mel_values` in torch."""
        spec = self.spec
        if spec.amplitude_scale == "linear":
            return mel_amplitude
        floored = torch.clamp(mel_amplitude, min=spec.amplitude_floor)
        if spec.amplitude_scale == "ln":
            return torch.log(floored)
        decibels = 20.0 * torch.log10(floored) - spec.ref_level_db
        if spec.normalization == "none":
            return decibels
        scaled = (decibels - spec.min_level_db) / -spec.min_level_db
        if spec.normalization == "symmetric":
            values = 2 * spec.max_abs_value * scaled - spec.max_abs_value
            return torch.clamp(values, -spec.max_abs_value, spec.max_abs_value) if spec.clip else values
        values = spec.max_abs_value * scaled
        return torch.clamp(values, 0, spec.max_abs_value) if spec.clip else values
