"""Pitch (F0) errors of generated speech against the ground-truth recording, frame by frame.

    >>> pitch_errors("truth.wav", "resynthesised.wav").f0_frame_error   # 0 for identical audio

Meant for copy synthesis: a vocoder turning a recording back into audio from the recording's own mel, whose
output is frame-aligned with the recording. The two F0 tracks are compared frame for frame (no time warping),
so for text-to-speech outputs, whose length and timing differ from any recording, these numbers do not apply.

How it is computed (:func:`track_f0`, :func:`compare_f0_tracks`):

1. Both signals are resampled to 16 kHz and tracked with probabilistic YIN (``librosa.pyin``): F0 searched
   between 60 and 500 Hz, 64 ms frames (1024 samples) every 10 ms, a frame voiced where pyin's HMM says so.
2. The first ``min(len)`` frames of the two tracks are compared (a vocoder's output may be a few samples longer
   or shorter than the recording):

   * voicing decision error (VDE): share of frames where one track is voiced and the other is not;
   * gross pitch error (GPE): among the frames voiced in both, share with ``|f0_gen / f0_ref - 1| > 0.2``;
   * F0 frame error (FFE): (voicing-disagreeing frames + gross-error frames) / all frames;
   * the median and root mean square of ``|1200 log2(f0_gen / f0_ref)|`` (cents) over the frames voiced in both.

   GPE and the cents figures are None when no frame is voiced in both.

:func:`voiced_share` needs no recording, so it applies to text-to-speech output too: the share of an output's
sounding frames (RMS within :data:`SOUNDING_RANGE_DB` of its loudest) that the same tracker calls voiced, for
comparing systems on the same texts (a vocoder that renders voiced speech breathy scores lower).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vcframe.errors import InputError
from vcframe.metrics._audio import mono_samples
from vcframe.metrics.spec import MetricInputs, MetricResult, NoOptions

#: Rate both signals are tracked at: the frame sizes below are in samples at this rate, and 8 kHz of band holds
#: every harmonic pyin needs for F0 up to 500 Hz.
PITCH_SAMPLE_RATE = 16000
#: Lowest F0 searched (Hz): under low adult male speaking voices (about 85 Hz and up), with room for phrase ends.
FMIN_HZ = 60.0
#: Highest F0 searched (Hz): above adult speaking voices, raised voices included; a wider range only adds room
#: for octave-up mistakes of the tracker.
FMAX_HZ = 500.0
#: Samples per analysis frame: 64 ms at 16 kHz, two periods of FMIN_HZ (YIN needs two periods to see one).
FRAME_LENGTH = 1024
#: Samples between frames: 10 ms at 16 kHz, the frame rate F0 errors are usually reported at.
HOP_LENGTH = 160
#: A voiced frame's F0 is grossly wrong when off by more than this fraction of the reference (the usual 20 %).
GROSS_ERROR_RATIO = 0.2
CENTS_PER_OCTAVE = 1200.0
#: The metric compares an output with its ground truth only when their lengths differ by at most this share (plus
#: one frame): copy synthesis keeps the length to within a mel frame, text-to-speech does not.
ALIGNED_TOLERANCE = 0.02

#: A frame is *sounding* for :func:`voiced_share` when its RMS is within this many decibels of the loudest frame's:
#: vowels and voiced consonants (within about 20 dB of the peak) and unvoiced fricatives (20-30 dB below it) count,
#: pauses and the hiss a vocoder may leave in them do not.
SOUNDING_RANGE_DB = 35.0

#: An F0 track: (f0 in Hz per frame, 0 where unvoiced; voiced flag per frame), both of shape (frames,).
F0Track = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PitchErrors:
    """F0 errors of a generated signal against its frame-aligned reference (see the module docstring).

    ``frames``: frames compared (10 ms each); ``voiced_both``: those voiced in both tracks; ``voicing_error``,
    ``gross_pitch_error`` and ``f0_frame_error``: shares in [0, 1]; ``median_abs_cents`` and ``rmse_cents``: cents
    over the frames voiced in both. The last three that need such frames are None without any.
    """

    frames: int
    voiced_both: int
    voicing_error: float
    gross_pitch_error: float | None
    f0_frame_error: float
    median_abs_cents: float | None
    rmse_cents: float | None


def track_f0(audio: Any, sample_rate: int | None = None) -> F0Track:
    """(f0 in Hz, 0 where unvoiced; voiced flags) per 10 ms frame of a file, Waveform or 1-D array (then with its
    ``sample_rate``), tracked by ``librosa.pyin`` at 16 kHz. InputError for audio shorter than one 64 ms frame."""
    import librosa

    samples = mono_samples(audio, sample_rate, PITCH_SAMPLE_RATE, array_name="an audio array")
    if samples.size < FRAME_LENGTH:
        raise InputError(f"{samples.size} samples at 16 kHz are too short to track F0 (need {FRAME_LENGTH})")
    f0, voiced, _ = librosa.pyin(
        samples.astype(np.float32),
        fmin=FMIN_HZ,
        fmax=FMAX_HZ,
        sr=PITCH_SAMPLE_RATE,
        frame_length=FRAME_LENGTH,
        hop_length=HOP_LENGTH,
    )
    voiced = np.asarray(voiced, dtype=bool)
    return np.where(voiced, np.nan_to_num(f0, nan=0.0), 0.0), voiced


def compare_f0_tracks(reference: F0Track, generated: F0Track) -> PitchErrors:
    """Pitch errors of the ``generated`` track against the ``reference`` track over their common frames."""
    frames = min(reference[0].size, generated[0].size)
    reference_f0, reference_voiced = reference[0][:frames], reference[1][:frames]
    generated_f0, generated_voiced = generated[0][:frames], generated[1][:frames]
    voicing_disagreements = int(np.count_nonzero(reference_voiced != generated_voiced))
    both = reference_voiced & generated_voiced
    ratio = generated_f0[both] / reference_f0[both]
    gross_errors = int(np.count_nonzero(np.abs(ratio - 1.0) > GROSS_ERROR_RATIO))
    abs_cents = np.abs(CENTS_PER_OCTAVE * np.log2(ratio))
    voiced_both = int(both.sum())
    return PitchErrors(
        frames=frames,
        voiced_both=voiced_both,
        voicing_error=voicing_disagreements / frames,
        gross_pitch_error=gross_errors / voiced_both if voiced_both else None,
        f0_frame_error=(voicing_disagreements + gross_errors) / frames,
        median_abs_cents=float(np.median(abs_cents)) if voiced_both else None,
        rmse_cents=float(np.sqrt(np.mean(abs_cents**2))) if voiced_both else None,
    )


def pitch_errors(reference: Any, generated: Any, *, sample_rate: int | None = None) -> PitchErrors:
    """F0 errors of ``generated`` against the ground-truth ``reference``, frame by frame: files, Waveforms or
    arrays (then ``sample_rate`` applies to both). For copy synthesis, where the output is frame-aligned with the
    recording (no time warping is done; outputs of other lengths and timing, such as text-to-speech, do not
    apply). 0 errors for identical audio."""
    return compare_f0_tracks(track_f0(reference, sample_rate), track_f0(generated, sample_rate))


def voiced_share(audio: Any, sample_rate: int | None = None) -> float | None:
    """Share of the sounding 10 ms frames of ``audio`` (RMS within :data:`SOUNDING_RANGE_DB` of the loudest frame's)
    that pyin calls voiced, tracked as :func:`track_f0` does; None when no frame sounds (digital silence).

    Needs no recording, so it applies to text-to-speech output. It is a comparison, not a score: systems read the
    same texts, a vocoder that turns voiced speech breathy or noisy (aperiodic where the mel asked for harmonics)
    scores below one that keeps it periodic, and one that buzzes through fricatives scores above it. InputError
    for audio shorter than one 64 ms frame, as :func:`track_f0`."""
    import librosa

    samples = mono_samples(audio, sample_rate, PITCH_SAMPLE_RATE, array_name="an audio array")
    _, voiced = track_f0(samples, PITCH_SAMPLE_RATE)
    rms = librosa.feature.rms(
        y=samples.astype(np.float32), frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH, center=True, pad_mode="constant"
    )[0]
    frames = min(rms.size, voiced.size)
    rms, voiced = rms[:frames], voiced[:frames]
    loudest = float(rms.max()) if frames else 0.0
    if loudest <= 0.0:
        return None
    sounding = rms >= loudest * 10.0 ** (-SOUNDING_RANGE_DB / 20.0)
    return float(np.count_nonzero(voiced & sounding) / np.count_nonzero(sounding))


class PitchErrorMetric:
    """The ``f0_frame_error`` metric: F0 errors of the output against the item's ground-truth recording, frame by
    frame (meaningful for copy synthesis, where the output is aligned with the recording)."""

    def __init__(self, config: NoOptions, context: Any) -> None:
        self.config = config

    def compute(self, inputs: MetricInputs) -> MetricResult:
        columns = ("f0_frame_error", "gross_pitch_error", "voicing_error", "f0_rmse_cents")
        if inputs.generated is None or inputs.ground_truth is None:
            return MetricResult(dict.fromkeys(columns), note="no ground-truth recording")
        truth = mono_samples(inputs.ground_truth, None, PITCH_SAMPLE_RATE, array_name="the ground truth")
        generated = mono_samples(inputs.generated, None, PITCH_SAMPLE_RATE, array_name="the output")
        if abs(generated.size - truth.size) > ALIGNED_TOLERANCE * truth.size + FRAME_LENGTH:
            return MetricResult(
                dict.fromkeys(columns),
                note=f"output ({generated.size / PITCH_SAMPLE_RATE:.2f} s) not aligned with the ground truth "
                f"({truth.size / PITCH_SAMPLE_RATE:.2f} s): F0 errors are for copy synthesis",
            )
        errors = pitch_errors(truth, generated, sample_rate=PITCH_SAMPLE_RATE)
        values = (errors.f0_frame_error, errors.gross_pitch_error, errors.voicing_error, errors.rmse_cents)
        return MetricResult(dict(zip(columns, values, strict=True)))


class VoicedShareMetric:
    """The ``voiced_share`` metric: :func:`voiced_share` of the output (no recording needed)."""

    def __init__(self, config: NoOptions, context: Any) -> None:
        self.config = config

    def compute(self, inputs: MetricInputs) -> MetricResult:
        if inputs.generated is None:
            return MetricResult({"voiced_share": None}, note="no output")
        samples = mono_samples(inputs.generated, None, PITCH_SAMPLE_RATE, array_name="the output")
        if samples.size < FRAME_LENGTH:
            return MetricResult({"voiced_share": None}, note=f"output shorter than one {FRAME_LENGTH}-sample frame")
        share = voiced_share(samples, PITCH_SAMPLE_RATE)
        return MetricResult({"voiced_share": share}, note=None if share is not None else "silent output")
