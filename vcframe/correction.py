"""Mel correction: bring a vocoder's output back to the mel it was given.

A neural vocoder trained on recordings' mels does not quite follow a synthesizer's smoother mels: its output's
spectral envelope drifts from the one it was asked for (bands too weak or too strong, hiss in pauses), where
Griffin-Lim, which only inverts the magnitudes, stays on it. :func:`correct_to_mel` measures the output's mel with
the mel's own spec (:func:`vcframe.audio.mel_spectrogram`), takes the difference to the mel asked for, band by
band and frame by frame, in decibels (clipped to [-:data:`MAX_CUT_DB`, +:data:`MAX_BOOST_DB`], smoothed across
``smoothing_bands`` bands), spreads it over the STFT bins through the mel filters and applies ``strength`` times it
to the output's STFT, keeping the vocoder's phase; the corrected STFT goes back to a waveform by overlap-add.
``iterations`` repeats the measure-and-correct step on its own result (the overlap-add of a modified STFT is not
exactly that STFT, so a second pass gets closer).

It keeps what the vocoder does well (harmonics and phase that fit together) and takes from the mel what the
synthesizer asked for (the envelope, frame by frame). It needs no weights and works with any vocoder whose
input is a log mel (decibels or natural log) at its output's sample rate. ``Pipeline`` applies it with the
``mel_correction`` setting (``vcframe run --mel-correction S``; 0, the default, turns it off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vcframe.audio import mel_basis, mel_spectrogram, mel_values_to_amplitude, spec_istft, spec_stft
from vcframe.datasets import band_smoothing
from vcframe.errors import InputError
from vcframe.specs import MelSpec
from vcframe.spectrum import check_log_mel
from vcframe.types import Mel, Waveform

#: Largest boost given to a band of a frame, in decibels: a band the vocoder left near silence is not raised from
#: its noise by more than this.
MAX_BOOST_DB = 12.0
#: Largest cut, in decibels: enough to take a vocoder's hiss in a pause down to the mel's silence.
MAX_CUT_DB = 30.0
#: Gaussian smoothing of the gains across mel bands (sigma, in bands) by default: the envelope's shape, not the
#: detail of one band against its neighbours.
SMOOTHING_BANDS = 1.0
#: Measure-and-correct passes by default.
ITERATIONS = 2


@dataclass(frozen=True)
class CorrectionReport:
    """What one correction did, in decibels of mel band level (speech and silence frames alike).

    Attributes:
        before_db: mean absolute difference between the output's mel and the mel asked for, before.
        after_db: the same after the correction.
    """

    before_db: float
    after_db: float


def bin_weights(spec: MelSpec) -> np.ndarray:
    """(1 + n_fft/2, n_mels) matrix spreading per-band values over STFT bins: each bin takes the mean of the
    bands whose filters cover it, weighted by the filters; a bin no filter covers (below fmin, above fmax)
    takes its nearest covered bin's bands."""
    basis = mel_basis(spec).T.astype(np.float64)  # (bins, bands)
    totals = basis.sum(axis=1)
    covered = np.flatnonzero(totals > 0)
    if covered.size == 0:
        raise InputError(f"the mel spec's filters cover no STFT bin (fmin {spec.fmin}, fmax {spec.fmax})")
    # below the first covered bin searchsorted gives 0 (that bin), above the last it is clipped to the last
    nearest = covered[np.clip(np.searchsorted(covered, np.arange(basis.shape[0])), 0, covered.size - 1)]
    weights = basis[nearest] / totals[nearest, None]
    return np.asarray(weights)


def _decibels(mel_values: np.ndarray, spec: MelSpec) -> np.ndarray:
    return np.asarray(20.0 * np.log10(np.maximum(mel_values_to_amplitude(mel_values, spec), 1e-12)))


def correct_to_mel(
    samples: np.ndarray,
    mel: np.ndarray,
    spec: MelSpec,
    *,
    strength: float = 1.0,
    smoothing_bands: float = SMOOTHING_BANDS,
    iterations: int = ITERATIONS,
) -> tuple[np.ndarray, CorrectionReport]:
    """``samples`` (a vocoder's output for ``mel``) with its spectral envelope moved ``strength`` of the way to
    ``mel``'s, frame by frame.

    Args:
        samples: (L,) float waveform at ``spec.sample_rate``, the vocoder's output for ``mel``.
        mel: (n_mels, T) log mel values of ``spec`` (the frames the vocoder was given, no padding).
        spec: the mel's spec; a log mel (decibels or natural log).
        strength: 0 (unchanged) to 1 (the whole measured difference, within the clip limits); default 1.
        smoothing_bands: Gaussian sigma of the gains across bands, in bands (0 = none); default
            :data:`SMOOTHING_BANDS`.
        iterations: measure-and-correct passes (>= 1); default :data:`ITERATIONS`.

    Returns the corrected (L,) float32 waveform and a :class:`CorrectionReport`. Frames past the mel's (the
    output's last hop) keep the gain of the mel's last frame.
    """
    signal = np.asarray(samples, dtype=np.float64)
    if signal.ndim != 1:
        raise InputError(f"mel correction takes one waveform (1-D samples), got shape {tuple(signal.shape)}")
    target_db = _checked_target(mel, spec, strength, smoothing_bands, iterations)
    signal, before = _correction_passes(signal, target_db, spec, strength, smoothing_bands, iterations)
    final_db = _decibels(mel_spectrogram(signal, spec), spec)
    frames = min(final_db.shape[1], target_db.shape[1])
    after = float(np.abs(target_db[:, :frames] - final_db[:, :frames]).mean())
    return signal.astype(np.float32), CorrectionReport(before_db=before, after_db=after)


def _checked_target(
    mel: np.ndarray, spec: MelSpec, strength: float, smoothing_bands: float, iterations: int
) -> np.ndarray:
    """The mel in decibels after the checks every correction makes (InputError naming the values)."""
    check_log_mel(spec)
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"mel_correction must be between 0 and 1, got {strength}")
    if smoothing_bands < 0:
        raise InputError(f"smoothing_bands must be >= 0, got {smoothing_bands}")
    if iterations < 1:
        raise InputError(f"iterations must be at least 1, got {iterations}")
    mel = np.asarray(mel)
    if mel.ndim != 2 or mel.shape[0] != spec.n_mels:
        raise InputError(f"the mel has shape {tuple(mel.shape)}; the spec has {spec.n_mels} bands")
    return _decibels(mel, spec)


def _correction_passes(
    signal: np.ndarray,
    target_db: np.ndarray,
    spec: MelSpec,
    strength: float,
    smoothing_bands: float,
    iterations: int,
) -> tuple[np.ndarray, float]:
    """The passes of :func:`correct_to_mel` on a float64 ``signal`` whose frame 0 is ``target_db``'s frame 0:
    the corrected signal and the mean absolute mel difference before, in decibels."""
    smoothing = band_smoothing(spec.n_mels, smoothing_bands) if smoothing_bands > 0 else None
    spread = bin_weights(spec)
    length = signal.shape[0]
    if length < spec.n_fft:  # an output shorter than one window (a word of a few frames): zeros after it, cut off
        signal = np.pad(signal, (0, spec.n_fft - length))
    differences: list[float] = []
    for _ in range(iterations):
        output_db = _decibels(mel_spectrogram(signal, spec), spec)
        frames = min(output_db.shape[1], target_db.shape[1])
        difference = target_db[:, :frames] - output_db[:, :frames]
        differences.append(float(np.abs(difference).mean()))
        gains = np.clip(difference, -MAX_CUT_DB, MAX_BOOST_DB)
        if smoothing is not None:
            gains = smoothing @ gains
        spectrum = spec_stft(signal, spec)
        if spectrum.shape[1] > frames:  # the output's frames past the mel's keep the last gain
            gains = np.pad(gains, ((0, 0), (0, spectrum.shape[1] - frames)), mode="edge")
        bin_gains = spread @ gains[:, : spectrum.shape[1]]
        spectrum = spectrum * np.power(10.0, strength * bin_gains / 20.0)
        signal = spec_istft(spectrum, spec, signal.shape[0])
    return signal[:length], differences[0]


class StreamingCorrection:
    """:func:`correct_to_mel` on a vocoder's output that arrives chunk by chunk (``vocode_stream``).

    Each pass changes a sample from the samples and mel frames within about ``n_fft`` of it, so a sample is final
    once :attr:`context` more samples have arrived: :meth:`push` returns the samples that became final (corrected
    on a window reaching :attr:`context` back and ahead), :meth:`finish` the rest. Joined, they equal
    :func:`correct_to_mel` of the whole output within float rounding (tests/test_correction.py).

    Args:
        mel: (n_mels, T) the mel the vocoder was given; spec, strength, smoothing_bands, iterations as for
            :func:`correct_to_mel`.
    """

    def __init__(
        self,
        mel: np.ndarray,
        spec: MelSpec,
        *,
        strength: float = 1.0,
        smoothing_bands: float = SMOOTHING_BANDS,
        iterations: int = ITERATIONS,
    ) -> None:
        self._target_db = _checked_target(mel, spec, strength, smoothing_bands, iterations)
        self._spec = spec
        self._options = (strength, smoothing_bands, iterations)
        #: samples a final sample needs on each side: one analysis window and a hop per pass
        self.context = iterations * (spec.n_fft + spec.hop_length)
        self._signal = np.zeros(0)
        self._emitted = 0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Take the next (n,) samples of the output; return the corrected samples that are now final (maybe none)."""
        self._signal = np.concatenate([self._signal, np.asarray(chunk, dtype=np.float64)])
        return self._final(self._signal.shape[0] - self.context, last=False)

    def finish(self) -> np.ndarray:
        """The corrected samples still held, once the output is complete."""
        return self._final(self._signal.shape[0], last=True)

    def _final(self, end: int, *, last: bool) -> np.ndarray:
        if end <= self._emitted:
            return np.zeros(0, dtype=np.float32)
        hop = self._spec.hop_length
        start = max(0, self._emitted - self.context) // hop * hop
        stop = self._signal.shape[0] if last else min(self._signal.shape[0], end + self.context)
        window = self._signal[start:stop]
        corrected, _ = _correction_passes(window, self._target_db[:, start // hop :], self._spec, *self._options)
        final = corrected[self._emitted - start : end - start].astype(np.float32)
        self._emitted = end
        return final


def check_sample_rate(sample_rate: int, spec: MelSpec) -> None:
    """Raise InputError (naming both rates) unless a vocoder's output at ``sample_rate`` can be corrected to a mel
    of ``spec``: a vocoder behind a mel adapter, or one that resamples, cannot."""
    if sample_rate != spec.sample_rate:
        raise InputError(
            f"mel correction needs the vocoder's output at the mel's sample rate: the output is at "
            f"{sample_rate} Hz, the mel at {spec.sample_rate} Hz; turn it off (mel_correction=0)"
        )


def correct_waveform(
    waveform: Waveform,
    mel: Mel,
    strength: float,
    *,
    smoothing_bands: float = SMOOTHING_BANDS,
    iterations: int = ITERATIONS,
) -> tuple[Waveform, list[CorrectionReport]]:
    """:func:`correct_to_mel` on each item of a vocoder's output ``waveform`` (B items) for ``mel`` (B items).

    Refused (InputError, naming both values) where the waveform is not at the mel's sample rate (a vocoder behind
    a mel adapter, or one that resamples) or the batch sizes differ. Returns the corrected waveform (same
    lengths and metadata) and one report per item; strength 0 returns ``waveform`` itself and no reports.
    """
    if strength == 0.0:
        return waveform, []
    check_sample_rate(waveform.sample_rate, mel.spec)
    if waveform.batch_size != mel.batch_size:
        raise InputError(f"the waveform has {waveform.batch_size} items; the mel has {mel.batch_size}")
    corrected: list[np.ndarray] = []
    reports: list[CorrectionReport] = []
    for index in range(waveform.batch_size):
        samples, report = correct_to_mel(
            waveform.item(index),
            mel.item(index),
            mel.spec,
            strength=strength,
            smoothing_bands=smoothing_bands,
            iterations=iterations,
        )
        corrected.append(samples)
        reports.append(report)
    return Waveform.from_numpy(corrected, waveform.sample_rate, **waveform.metadata), reports
