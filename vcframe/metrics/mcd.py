"""Mel-cepstral distortion (MCD) between a ground-truth recording and generated speech, DTW-aligned.

    >>> mel_cepstral_distortion("truth.wav", "generated.wav")     # dB; 0 for identical audio

How it is computed (:func:`mel_cepstrum`, :func:`mel_cepstral_distortion`):

1. Both signals are resampled to 16 kHz and trimmed of leading and trailing silence (40 dB below peak).
2. Mel cepstra: 25 ms Hann windows every 10 ms (n_fft 512), 80-band Slaney mel power spectrum from 0 to
   8 kHz floored 80 dB below the clip's peak, natural log of the mel *amplitude*, and its cosine-series
   coefficients over the mel axis (DCT-II scaled by 2/N, so that ``log A = c0/2 + sum c_d cos(...)`` as in
   the cepstrum the MCD formula assumes); coefficients 1-24 are kept (c0, the frame energy, is dropped so
   loudness differences do not count).
3. Dynamic time warping (librosa) aligns the two frame sequences, minimising the summed Euclidean distance.
4. MCD = mean over the aligned frame pairs of ``(10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2)`` in dB.

This is the widespread "MFCC-style" MCD (a DCT of the log mel spectrum), not SPTK's all-pass-warped
mel-cepstrum, so its values are comparable between systems scored here, not with every paper's numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vcframe.errors import InputError
from vcframe.metrics._audio import mono_samples
from vcframe.metrics.spec import MetricInputs, MetricResult, NoOptions

MCD_SAMPLE_RATE = 16000
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
N_MELS = 80
FIRST_COEFFICIENT = 1
LAST_COEFFICIENT = 24
TRIM_TOP_DB = 40.0
#: Mel power below this many dB under the clip's loudest bin is floored (digital silence stays finite).
FLOOR_DB = 80.0
#: dB per unit of cepstral Euclidean distance: 10 / ln(10) * sqrt(2).
MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)


def mel_cepstrum(audio: Any, sample_rate: int | None = None, *, trim: bool = True) -> np.ndarray:
    """Mel cepstra (frames, 24) of a file, Waveform or 1-D array (see the module docstring)."""
    import librosa
    import scipy.fft

    samples = mono_samples(audio, sample_rate, MCD_SAMPLE_RATE, array_name="an audio array")
    if trim:
        trimmed, _ = librosa.effects.trim(samples, top_db=TRIM_TOP_DB, frame_length=WIN_LENGTH, hop_length=HOP_LENGTH)
        samples = trimmed if trimmed.size >= WIN_LENGTH else samples
    if samples.size < WIN_LENGTH:
        raise InputError(f"{samples.size} samples are too short for a mel cepstrum (need {WIN_LENGTH})")
    power = librosa.feature.melspectrogram(
        y=samples.astype(np.float32),
        sr=MCD_SAMPLE_RATE,
        n_fft=N_FFT,
        win_length=WIN_LENGTH,
        hop_length=HOP_LENGTH,
        n_mels=N_MELS,
        fmin=0.0,
        fmax=MCD_SAMPLE_RATE / 2,
        power=2.0,
    )
    floor = max(float(power.max()), 1e-20) * 10 ** (-FLOOR_DB / 10)
    log_amplitude = 0.5 * np.log(np.maximum(power, floor))
    # cosine-series coefficients of the log amplitude over the mel axis: c_d = (2 / N) sum_k x_k cos(...)
    cepstra = scipy.fft.dct(log_amplitude, type=2, axis=0, norm=None) / N_MELS
    return np.asarray(cepstra[FIRST_COEFFICIENT : LAST_COEFFICIENT + 1].T, dtype=np.float64)


def dtw_path(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Pairs (i, j) of the minimum-cost monotonic alignment of two (frames, dims) sequences, in order."""
    import librosa

    _, path = librosa.sequence.dtw(X=reference.T, Y=other.T, metric="euclidean", backtrack=True)
    return np.asarray(path[::-1])


def mel_cepstral_distortion(
    reference: Any, generated: Any, *, sample_rate: int | None = None, trim: bool = True
) -> float:
    """MCD in dB between ``reference`` (ground truth) and ``generated``: files, Waveforms or arrays (then
    ``sample_rate`` applies to both). 0 for identical audio; typical TTS systems score 4-10 dB."""
    first = mel_cepstrum(reference, sample_rate, trim=trim)
    second = mel_cepstrum(generated, sample_rate, trim=trim)
    path = dtw_path(first, second)
    distances = np.linalg.norm(first[path[:, 0]] - second[path[:, 1]], axis=1)
    return float(MCD_SCALE * distances.mean())


class MelCepstralDistortionMetric:
    """The ``mcd`` metric: DTW-aligned MCD of the output against the item's ground-truth recording."""

    def __init__(self, config: NoOptions, context: Any) -> None:
        self.config = config

    def compute(self, inputs: MetricInputs) -> MetricResult:
        if inputs.generated is None or inputs.ground_truth is None:
            return MetricResult({"mcd": None}, note="no ground-truth recording")
        return MetricResult({"mcd": mel_cepstral_distortion(inputs.ground_truth, inputs.generated)})
