"""Griffin-Lim vocoder: mel -> linear magnitude (pseudo-inverse of the mel basis) -> phase recovery."""

from __future__ import annotations

import numpy as np
import torch

from vcframe.audio import deemphasis, istft, mel_basis, mel_values_to_amplitude, stft
from vcframe.interfaces import BaseVocoder
from vcframe.specs import MelSpec
from vcframe.types import Mel, Waveform
from vcframe_griffinlim.spec import SPEC, GriffinLimConfig

#: Peak normalisation treats a quieter output as if it peaked at this level, so it amplifies by at most
#: ``peak_normalize / QUIET_PEAK`` (9.7 times, +19.7 dB, at the default 0.97). A silent mel then stays
#: near-silent (RMS 1e-3, -60 dBFS, where full normalisation made peak 0.97 / RMS 0.2 of noise), while speech is
#: untouched: its raw output peaks at 0.15-0.62 from the default Tacotron's mels and 0.51-1.0 from the mels of
#: real recordings. (The Tacotron lineage's save_wav, keithito and Rayhane-mamah, floors the peak at 0.01 alike.)
QUIET_PEAK = 0.1


class GriffinLimVocoder(BaseVocoder):
    """Inverts a mel spectrogram without a model, as RTVC's ``inv_mel_spectrogram`` does.

    Args:
        config: GriffinLimConfig (mel spec, iterations, magnitude power, momentum).
        device: accepted for the interface; the computation runs on the CPU with numpy.

    Shapes: Mel (B, n_mels, T) -> Waveform (B, T * hop_length), items cut to ``lengths * hop_length``.
    The random initial phase is drawn from ``numpy.random.default_rng(seed)`` (seed 0 when None), so the
    output is a deterministic function of the mel and the seed. With ``peak_normalize`` each item is scaled to
    that peak, amplified by at most ``peak_normalize / QUIET_PEAK`` so that a silent mel gives near-silence.
    """

    spec = SPEC

    def __init__(self, config: GriffinLimConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device=device)
        self.config: GriffinLimConfig
        basis = mel_basis(self.config.mel).astype(np.float64)
        self._inverse_basis = np.linalg.pinv(basis)

    def _vocode(self, mel: Mel, seed: int | None) -> Waveform:
        spec = self.config.mel
        items = []
        for index in range(mel.batch_size):
            values = mel.item(index).astype(np.float64)
            items.append(self._invert(values, np.random.default_rng(0 if seed is None else seed)))
        waveform = Waveform.from_numpy(items, spec.sample_rate)
        return Waveform(waveform.samples.to(self.device), spec.sample_rate, waveform.lengths.to(self.device))

    def _invert(self, mel_values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        spec = self.config.mel
        amplitude = mel_values_to_amplitude(mel_values, spec)
        if spec.magnitude_power != 1:
            amplitude = amplitude ** (1.0 / spec.magnitude_power)
        linear = np.maximum(1e-10, self._inverse_basis @ amplitude)
        frames = linear.shape[1]
        # with centred frames, T frames describe (T - 1) hops of audio; the last hop is padded with zeros
        # so that every vocoder returns exactly T * hop_length samples. Frames that are not centred describe
        # (T - 1) hops plus one window of the padded signal, of which the pad_length samples at each end go.
        if spec.center:
            recovered_length, start = (frames - 1) * spec.hop_length, 0
        else:
            recovered_length, start = (frames - 1) * spec.hop_length + spec.n_fft, spec.pad_length
        if recovered_length == 0:  # one centred frame describes no audio: silence
            return np.zeros(frames * spec.hop_length, dtype=np.float32)
        signal = griffin_lim(
            linear**self.config.power,
            spec,
            n_iter=self.config.n_iter,
            momentum=self.config.momentum,
            rng=rng,
            length=recovered_length,
        )
        signal = signal[start : start + frames * spec.hop_length]
        signal = np.pad(signal, (0, frames * spec.hop_length - len(signal)))
        if spec.preemphasis:
            signal = deemphasis(signal, spec.preemphasis)
        peak = float(np.max(np.abs(signal))) if signal.size else 0.0
        if self.config.peak_normalize is not None and peak > 0:
            signal = signal * (self.config.peak_normalize / max(peak, QUIET_PEAK))
        return np.clip(signal, -1.0, 1.0).astype(np.float32)


def griffin_lim(
    magnitude: np.ndarray, spec: MelSpec, *, n_iter: int, momentum: float, rng: np.random.Generator, length: int
) -> np.ndarray:
    """(length,) float64 signal whose STFT magnitude approximates ``magnitude``: the fast Griffin-Lim algorithm
    (Perraudin et al. 2013) as ``librosa.griffinlim`` runs it (random initial phase drawn from ``rng``, same
    arithmetic, same result; tests/test_griffinlim.py compares), with the STFT of :mod:`vcframe.audio` so that
    vocoding imports no librosa.

    Args:
        magnitude: (1 + n_fft/2, T) float64 linear magnitudes.
        spec: the mel spec whose STFT settings (n_fft, hop_length, win_length, center, pad_mode) are used.
        n_iter: iterations. momentum: the "fast" extrapolation weight (0 is plain Griffin-Lim).
        rng: draws the initial phase. length: samples of the returned signal.
    """
    settings = {"n_fft": spec.n_fft, "hop_length": spec.hop_length, "win_length": spec.win_length}
    settings["center"] = spec.center
    eps = np.finfo(np.complex128).tiny
    phases = 2 * np.pi * rng.random(size=magnitude.shape)
    angles = (np.cos(phases) + 1j * np.sin(phases)) * magnitude
    previous = None
    for _ in range(n_iter):
        inverse = istft(angles, length=length, **settings)
        rebuilt = stft(inverse, pad_mode=spec.pad_mode, **settings)
        angles = rebuilt.copy()
        if previous is not None:
            angles -= (momentum / (1 + momentum)) * previous
        angles /= np.abs(angles) + eps
        angles *= magnitude
        previous = rebuilt
    return istft(angles, length=length, **settings)
