"""Frame-rate lines: how strongly a vocoder's output repeats itself once per mel frame.

A vocoder turns each mel frame into ``hop_length`` samples. A generator that has not learnt to vary its output
within and across frames (a young HiFi-GAN: no noise input, so a steady mel gives exactly periodic audio) adds a
buzz at the frame rate ``sample_rate / hop_length`` (80 Hz for RTVC's 16 kHz hop-200 mel): spectral lines at every
multiple of it that no recording has. Pitch trackers then hear 80 Hz, and a speaker encoder hears another voice.

    >>> frame_rate_lines(waveform, 16000, hop_length=200)
    FrameRateLines(frame_rate_hz=80.0, median_db=19.0, low_db=6.1, high_db=19.9, harmonics=93)

How it is measured (:func:`frame_rate_lines`): Welch's power spectrum with 1 Hz bins (Hann windows of one
second, half overlapping), each bin replaced by the largest of it and its two neighbours (a line between two bins,
at frame rates that are not whole hertz, keeps its power); for each multiple ``k * frame_rate`` below
``LINE_CEILING_HZ`` that value against the median of the same values over the bins ``NEIGHBOUR_NEAR_HZ`` to
``NEIGHBOUR_FAR_HZ`` away on both sides, in dB. Noise and recordings give about 0 dB (a voice's harmonics follow
its pitch, not the frame rate); the median over the lines is the score, reported also for the lines below and
above ``LOW_HIGH_SPLIT_HZ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vcframe.errors import InputError
from vcframe.metrics._audio import mono_samples

#: Bins closer than this to a line belong to the line (Hann main lobe at 1 Hz resolution, plus rounding).
NEIGHBOUR_NEAR_HZ = 10
#: The neighbourhood a line is compared with; must stay under half the lowest frame rate of interest (86 Hz).
NEIGHBOUR_FAR_HZ = 30
#: Lines above this are not scored (anti-aliasing and the mel's fmax leave little there).
LINE_CEILING_HZ = 7500.0
#: Low lines (where voiced harmonics are strong and mask a buzz) and high lines are also reported apart.
LOW_HIGH_SPLIT_HZ = 1000.0
#: Shortest audio scored: one Welch window of one second.
MIN_SECONDS = 1.0


@dataclass(frozen=True)
class FrameRateLines:
    """Spectral lines at multiples of the frame rate, dB above their neighbourhood (0 = none).

    Args:
        frame_rate_hz: ``sample_rate / hop_length``.
        median_db: median over every scored line.
        low_db: median over the lines below ``LOW_HIGH_SPLIT_HZ`` (nan if none).
        high_db: median over the lines from ``LOW_HIGH_SPLIT_HZ`` up (nan if none).
        harmonics: lines scored.
    """

    frame_rate_hz: float
    median_db: float
    low_db: float
    high_db: float
    harmonics: int


def frame_rate_lines(audio: Any, sample_rate: int | None = None, *, hop_length: int) -> FrameRateLines:
    """Frame-rate lines of a file, Waveform or 1-D array (then ``sample_rate`` is required) at its own rate.

    ``hop_length``: samples per mel frame of the vocoder that made the audio (its input spec's). InputError for
    audio shorter than ``MIN_SECONDS`` or a frame rate too low to have a neighbourhood between its lines.
    """
    import scipy.signal

    if hop_length < 1:
        raise InputError(f"hop_length must be >= 1, got {hop_length}")
    rate = _native_rate(audio, sample_rate)
    samples = mono_samples(audio, sample_rate, rate, array_name="an audio array")
    if samples.size < MIN_SECONDS * rate:
        raise InputError(
            f"{samples.size / rate:.2f} s of audio is too short to measure frame-rate lines (need {MIN_SECONDS} s)"
        )
    frame_rate = rate / hop_length
    if frame_rate <= 2 * NEIGHBOUR_FAR_HZ:
        raise InputError(
            f"frame rate {frame_rate:.1f} Hz is too low: lines must be more than {2 * NEIGHBOUR_FAR_HZ} Hz apart"
        )
    _, power = scipy.signal.welch(samples.astype(np.float64), rate, nperseg=rate, noverlap=rate // 2)
    power = np.maximum(power, np.finfo(np.float64).tiny)
    # each bin's value: the largest of it and its two neighbours (a line between two bins keeps its power), the
    # same statistic for the line and its neighbourhood, so that noise scores 0 dB
    power = np.maximum(np.maximum(power, np.roll(power, 1)), np.roll(power, -1))
    ceiling = min(LINE_CEILING_HZ, rate / 2 - NEIGHBOUR_FAR_HZ - 1)
    lines: list[tuple[float, float]] = []
    harmonic = 1
    while harmonic * frame_rate <= ceiling:
        centre = int(round(harmonic * frame_rate))
        peak = power[centre]
        neighbours = np.r_[
            power[centre - NEIGHBOUR_FAR_HZ : centre - NEIGHBOUR_NEAR_HZ + 1],
            power[centre + NEIGHBOUR_NEAR_HZ : centre + NEIGHBOUR_FAR_HZ + 1],
        ]
        lines.append((harmonic * frame_rate, float(10 * np.log10(peak / np.median(neighbours)))))
        harmonic += 1
    levels = np.array([level for _, level in lines])
    low = [level for frequency, level in lines if frequency < LOW_HIGH_SPLIT_HZ]
    high = [level for frequency, level in lines if frequency >= LOW_HIGH_SPLIT_HZ]
    return FrameRateLines(
        frame_rate_hz=frame_rate,
        median_db=float(np.median(levels)),
        low_db=float(np.median(low)) if low else float("nan"),
        high_db=float(np.median(high)) if high else float("nan"),
        harmonics=len(lines),
    )


def _native_rate(audio: Any, sample_rate: int | None) -> int:
    """The rate the audio comes at: ``sample_rate`` for arrays, the Waveform's, or the file's header."""
    if sample_rate is not None:
        return int(sample_rate)
    rate = getattr(audio, "sample_rate", None)
    if rate is not None:
        return int(rate)
    if isinstance(audio, np.ndarray):
        raise InputError("an audio array needs its sample_rate")
    import soundfile

    return int(soundfile.info(str(audio)).samplerate)
