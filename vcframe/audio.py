"""Audio input/output, resampling, and mel spectrograms for any :class:`~vcframe.specs.MelSpec`.

Reading goes through soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3). Stereo is downmixed by averaging
channels; any sample rate is accepted and resampled on request. Every failure is an
:class:`~vcframe.errors.AudioInputError` with a one-line message.

``mel_spectrogram`` is the one implementation of the mel front-end for every component (synthesizer
training targets, Griffin-Lim, metrics). It reproduces RTVC's synthesizer and encoder features exactly when
given ``RTVC_SYNTHESIZER_MEL`` / ``RTVC_ENCODER_MEL`` (checked against the RTVC fixtures).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile

from vcframe._io import atomic_path, check_output_path
from vcframe.errors import AudioInputError
from vcframe.specs import MelSpec
from vcframe.types import Waveform

#: Peak amplitude under which a clip counts as silence.
SILENCE_PEAK = 1e-4

SUPPORTED_FORMATS = ("wav", "flac", "ogg", "mp3")

#: Peak level of training audio (RTVC's ``rescaling_max``): the synthesizer's preprocessing normalises each clip
#: to it before computing mels, so a vocoder trained on those (GTA) mels must normalise its wavs the same way.
TRAINING_PEAK = 0.9


def load_audio(path: str | os.PathLike[str], *, sample_rate: int | None = None) -> Waveform:
    """Read a mono (B=1) waveform from ``path``; resampled to ``sample_rate`` when given.

    Raises AudioInputError for a missing, empty, unreadable, non-finite or silent file.
    """
    source = Path(path)
    name = str(source)
    if not source.exists():
        raise AudioInputError(f"audio file {name!r} not found", hint="check the path")
    if source.is_dir():
        raise AudioInputError(f"{name!r} is a directory, not an audio file", hint="give a WAV, FLAC, OGG or MP3 file")
    if source.stat().st_size == 0:
        raise AudioInputError(f"audio file {name!r} is empty (0 bytes)", hint="record or export the clip again")
    try:
        with _native_stderr_silenced(source.suffix.lower() == ".mp3"):
            samples, rate = soundfile.read(name, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        detail = str(error).split("\n")[0]
        if "does not exist" in detail or "not a regular file" in detail:
            # libsndfile's words for any stream it cannot open, though the file is there and regular
            detail = f"corrupt or not {source.suffix[1:].upper() or 'audio'} data" if source.suffix else "not audio"
        raise AudioInputError(
            f"cannot read {name!r} as audio ({detail})",
            hint=f"use a {', '.join(f.upper() for f in SUPPORTED_FORMATS)} file",
        ) from error
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    check_samples(mono, rate, name)
    if sample_rate is not None and rate != sample_rate:
        mono = resample(mono, rate, sample_rate)
        rate = sample_rate
    return Waveform.from_numpy(mono, rate, source=name)


@contextlib.contextmanager
def _native_stderr_silenced(silence: bool) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while ``silence``: libsndfile's MP3 decoder (mpg123) prints notes
    about a damaged stream ("Illegal Audio-MPEG-Header", "Giving up resync") straight to it, around the one-line
    error vcframe reports. Python's own ``sys.stderr`` object is untouched."""
    if not silence:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def check_samples(samples: np.ndarray, sample_rate: int, name: str = "audio") -> None:
    """AudioInputError if ``samples`` is empty, non-finite or silent."""
    if samples.size == 0:
        raise AudioInputError(f"{name!r} contains no samples", hint="record or export the clip again")
    if not np.all(np.isfinite(samples)):
        raise AudioInputError(f"{name!r} contains NaN or infinite samples", hint="export the clip again")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise AudioInputError(
            f"{name!r} is silent ({samples.size / sample_rate:.2f} s with peak below {SILENCE_PEAK:g})",
            hint="use a clip where someone speaks",
        )


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling (librosa's soxr_hq); float32 in, float32 out."""
    if source_rate == target_rate:
        return samples
    if source_rate <= 0 or target_rate <= 0:
        raise AudioInputError(f"cannot resample from {source_rate} Hz to {target_rate} Hz")
    import librosa

    return np.asarray(librosa.resample(samples, orig_sr=source_rate, target_sr=target_rate), dtype=np.float32)


def resample_waveform(waveform: Waveform, target_rate: int) -> Waveform:
    """Every item of ``waveform`` resampled to ``target_rate`` (metadata kept)."""
    if waveform.sample_rate == target_rate:
        return waveform
    items = [resample(item, waveform.sample_rate, target_rate) for item in waveform.items()]
    resampled = Waveform.from_numpy(items, target_rate)
    return resampled.with_metadata(**waveform.metadata)


#: Formats ``save_audio`` writes, by file suffix: (soundfile format, subtype). No suffix means WAV.
OUTPUT_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}


def check_audio_output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if ``save_audio`` can write it, else an OutputError: a suffix it does not write (``.mp3``), or a
    path that cannot be written (:func:`vcframe._io.check_output_path`). Commands call it before any model
    runs, so a bad ``--out`` costs nothing."""
    target = Path(path)
    suffix = target.suffix.lower().lstrip(".") or "wav"
    if suffix not in OUTPUT_FORMATS:
        from vcframe.errors import OutputError

        raise OutputError(
            f"cannot write {suffix!r} files ({str(target)!r})",
            hint=f"use {', '.join('.' + name for name in OUTPUT_FORMATS)}",
        )
    return check_output_path(target)


def save_audio(waveform: Waveform, path: str | os.PathLike[str], *, index: int = 0) -> Path:
    """Write item ``index`` to ``path`` atomically (16-bit PCM WAV, or FLAC/OGG by suffix)."""
    target = check_audio_output_path(path)
    file_format, subtype = OUTPUT_FORMATS[target.suffix.lower().lstrip(".") or "wav"]
    samples = np.clip(waveform.item(index), -1.0, 1.0)
    with atomic_path(target) as temp:
        soundfile.write(str(temp), samples, waveform.sample_rate, format=file_format, subtype=subtype)
    return target


# -- mel front-end -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def mel_basis(spec: MelSpec) -> np.ndarray:
    """(n_mels, 1 + n_fft/2) float32 mel filterbank of ``spec`` (librosa's, with the spec's fmin, fmax, mel scale
    and norm); ``mel_basis(spec) @ linear_spectrogram(samples, spec)`` are the mel amplitudes. Cached per spec."""
    import librosa

    return np.asarray(
        librosa.filters.mel(
            sr=spec.sample_rate,
            n_fft=spec.n_fft,
            n_mels=spec.n_mels,
            fmin=spec.fmin,
            fmax=spec.fmax,
            htk=spec.mel_scale == "htk",
            norm="slaney" if spec.mel_norm == "slaney" else None,
        ),
        dtype=np.float32,
    )


def rescale_peak(samples: np.ndarray, peak: float = TRAINING_PEAK) -> np.ndarray:
    """``samples`` scaled so that their largest magnitude is ``peak`` (all-zero input stays zero)."""
    return samples / max(float(np.abs(samples).max()), 1e-8) * peak


def preemphasis(samples: np.ndarray, coefficient: float) -> np.ndarray:
    """``y[n] = x[n] - c x[n-1]`` of 1-D ``samples`` with ``coefficient`` c: a float64 array of the same length
    (as RTVC computes it). ``MelSpec.preemphasis`` applies it before the STFT."""
    from scipy.signal import lfilter

    return np.asarray(lfilter([1.0, -coefficient], [1.0], samples))


def deemphasis(samples: np.ndarray, coefficient: float) -> np.ndarray:
    """Inverse of :func:`preemphasis`: ``y[n] = x[n] + c y[n-1]``, float64, same length. A vocoder that rebuilds
    the signal a pre-emphasised mel describes must apply it last (the conformance kit checks)."""
    from scipy.signal import lfilter

    return np.asarray(lfilter([1.0], [1.0, -coefficient], samples))


def linear_spectrogram(samples: np.ndarray, spec: MelSpec) -> np.ndarray:
    """``|STFT| ** magnitude_power`` of the (pre-emphasised, padded) 1-D samples: (1 + n_fft/2, frames).

    With ``spec.pad_length`` (frames not centred) the signal is first padded by that many samples on each side
    with ``spec.pad_mode`` (numpy's "reflect" does not repeat the edge sample, as torch's does not); with
    ``spec.magnitude_epsilon`` the magnitude is ``sqrt(re**2 + im**2 + epsilon)``.
    """
    import librosa

    signal = preemphasis(samples, spec.preemphasis) if spec.preemphasis else samples
    if spec.pad_length and not spec.center:
        signal = np.pad(signal, (spec.pad_length, spec.pad_length), mode=spec.pad_mode)
    stft = librosa.stft(
        y=signal,
        n_fft=spec.n_fft,
        hop_length=spec.hop_length,
        win_length=spec.win_length,
        center=spec.center,
        pad_mode=spec.pad_mode,
    )
    if spec.magnitude_epsilon:
        magnitude: np.ndarray = np.sqrt(stft.real**2 + stft.imag**2 + np.float32(spec.magnitude_epsilon))
    else:
        magnitude = np.abs(stft)
    return magnitude if spec.magnitude_power == 1 else np.asarray(magnitude**spec.magnitude_power)


def amplitude_to_mel_values(mel_amplitude: np.ndarray, spec: MelSpec) -> np.ndarray:
    """(n_mels, frames) mel amplitudes ``M`` -> the values ``spec`` stores, same shape: ``M`` itself, its
    logarithm, or normalised decibels (the last lines of :class:`~vcframe.specs.MelSpec`'s formula)."""
    if spec.amplitude_scale == "linear":
        return mel_amplitude
    if spec.amplitude_scale == "ln":
        floor = np.asarray(spec.amplitude_floor, dtype=mel_amplitude.dtype)
        return np.asarray(np.log(np.maximum(floor, mel_amplitude)))
    decibels: np.ndarray = 20.0 * np.log10(np.maximum(spec.amplitude_floor, mel_amplitude)) - spec.ref_level_db
    if spec.normalization == "none":
        return decibels
    scaled: np.ndarray = (decibels - spec.min_level_db) / -spec.min_level_db
    if spec.normalization == "symmetric":
        values: np.ndarray = 2 * spec.max_abs_value * scaled - spec.max_abs_value
        return np.clip(values, -spec.max_abs_value, spec.max_abs_value) if spec.clip else values
    values = spec.max_abs_value * scaled
    return np.clip(values, 0, spec.max_abs_value) if spec.clip else values


def mel_values_to_amplitude(mel: np.ndarray, spec: MelSpec) -> np.ndarray:
    """Inverse of :func:`amplitude_to_mel_values`: (n_mels, frames) mel values -> mel amplitudes ``M`` (float64
    for the logarithmic scales). Clipped values come back at the range edge: ``spec.silence_value`` gives the
    amplitude floor, not zero."""
    if spec.amplitude_scale == "linear":
        return np.asarray(np.maximum(mel, 0.0))
    values = np.asarray(mel, dtype=np.float64)
    if spec.amplitude_scale == "ln":
        return np.exp(values)
    if spec.normalization == "symmetric":
        values = np.clip(values, -spec.max_abs_value, spec.max_abs_value) if spec.clip else values
        decibels = (values + spec.max_abs_value) * -spec.min_level_db / (2 * spec.max_abs_value) + spec.min_level_db
    elif spec.normalization == "asymmetric":
        values = np.clip(values, 0, spec.max_abs_value) if spec.clip else values
        decibels = values * -spec.min_level_db / spec.max_abs_value + spec.min_level_db
    else:
        decibels = values
    return np.power(10.0, (decibels + spec.ref_level_db) * 0.05)


def mel_spectrogram(samples: np.ndarray, spec: MelSpec) -> np.ndarray:
    """(n_mels, frames) float32 mel of mono 1-D ``samples`` at ``spec.sample_rate``, ``frames`` being
    :func:`frames_for` ``(len(samples), spec)``: :class:`~vcframe.specs.MelSpec`'s formula, the one mel front-end
    of every component (RTVC's features for ``RTVC_SYNTHESIZER_MEL`` / ``RTVC_ENCODER_MEL``)."""
    spectrogram = linear_spectrogram(np.asarray(samples), spec)
    basis = mel_basis(spec)
    mel_amplitude = np.dot(basis, spectrogram)
    return np.asarray(amplitude_to_mel_values(mel_amplitude, spec), dtype=np.float32)


def frames_for(num_samples: int, spec: MelSpec) -> int:
    """Number of mel frames ``mel_spectrogram`` gives for ``num_samples`` samples.

    Centred: ``1 + L // hop``. Not centred: ``1 + (L + 2 pad_length - n_fft) // hop`` (HiFi-GAN: ``L // 256``).
    """
    if spec.center:
        return 1 + num_samples // spec.hop_length
    return 1 + max(0, num_samples + 2 * spec.pad_length - spec.n_fft) // spec.hop_length
