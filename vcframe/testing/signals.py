"""Synthetic test audio: a harmonic, vibrato, amplitude-modulated speech-like signal, noise in log-spaced bands
(the conformance kit's resynthesis probe), and a tiny two-speaker corpus of tones for trainer tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def speech_like(seconds: float = 2.0, sample_rate: int = 16000, f0: float = 120.0) -> np.ndarray:
    """A float32 mono clip of ``seconds`` that has what speech processing looks for.

    Eleven harmonics of ``f0`` with a 3 Hz, 5 % vibrato, under a 4 Hz syllable-like envelope, peaking at 0.3.
    Deterministic: the same arguments give the same samples.
    """
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    vibrato = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(vibrato) / sample_rate
    signal = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    peak = float(np.max(np.abs(signal))) if len(t) else 1.0
    return np.asarray(0.3 * envelope * signal / max(peak, 1e-9), dtype=np.float32)


def band_noise(
    seconds: float,
    sample_rate: int,
    low: float,
    high: float,
    *,
    bands: int = 8,
    peak: float = 0.9,
    seed: int = 0,
) -> np.ndarray:
    """A float32 clip of noise in ``bands`` quarter-octave bands centred from ``low`` to ``high`` Hz (log-spaced).

    Steady, broadband and full of sharp spectral edges: its long-term spectrum shows a tilt (a forgotten
    de-emphasis) and a frequency warp (a wrong fmax) in any vocoder, including noise-excited ones. Gaussian
    noise from ``numpy.random.default_rng(seed)``, band-limited in the FFT domain, faded in and out over 20 ms,
    scaled to ``peak`` (default 0.9, the level of synthesizer training audio). Deterministic.
    """
    if not 0 < low < high < sample_rate / 2:
        raise ValueError(f"bands must lie between 0 and {sample_rate / 2} Hz, got low {low} and high {high}")
    count = int(seconds * sample_rate)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(count))
    frequencies = np.fft.rfftfreq(count, 1 / sample_rate)
    keep = np.zeros(len(frequencies), dtype=bool)
    for centre in np.geomspace(low, high, bands):
        keep |= (frequencies >= centre * 2 ** (-1 / 8)) & (frequencies < centre * 2 ** (1 / 8))
    signal = np.fft.irfft(spectrum * keep, count)
    t = np.arange(count) / sample_rate
    signal *= np.clip(np.minimum(t, seconds - t) / 0.02, 0, 1)
    return np.asarray(peak * signal / max(float(np.max(np.abs(signal))), 1e-12), dtype=np.float32)


def tone(seconds: float, frequency: float, sample_rate: int = 16000) -> np.ndarray:
    """A float32 sine of ``frequency`` Hz under a Hann window, peaking at 0.3."""
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * frequency * t) * np.hanning(len(t))).astype(np.float32)


def write_tone_corpus(root: Path, texts: Sequence[str], *, lab_every_other: bool = False) -> Path:
    """A tiny speaker-per-folder corpus under ``root`` for trainer tests, and ``root``.

    Speaker ``alice`` (tones from 180 Hz) reads every text, ``bob`` (from 110 Hz) all but the last, so the
    speakers have different clip counts: ``<speaker>/utt<i>.wav`` (16 kHz, 0.4 s + 0.1 s per index, 20 Hz
    higher per index) with its transcript in ``utt<i>.txt``, or ``utt<i>.lab`` for odd ``i`` when
    ``lab_every_other`` (both layouts the preprocessors read).
    """
    import soundfile

    for speaker, base in (("alice", 180.0), ("bob", 110.0)):
        (root / speaker).mkdir(parents=True)
        for index, text in enumerate(texts if speaker == "alice" else texts[:-1]):
            soundfile.write(root / speaker / f"utt{index}.wav", tone(0.4 + 0.1 * index, base + 20 * index), 16000)
            suffix = "lab" if lab_every_other and index % 2 else "txt"
            (root / speaker / f"utt{index}.{suffix}").write_text(text)
    return root
