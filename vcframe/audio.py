"""Audio input/output, resampling, and mel spectrograms for any :class:`~vcframe.specs.MelSpec`.

Reading goes through soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3). Stereo is downmixed by averaging
channels; any sample rate is accepted and resampled on request. Every failure is an
:class:`~vcframe.errors.AudioInputError` with a one-line message.

``mel_spectrogram`` is the one implementation of the mel front-end for every component (synthesizer
training targets, Griffin-Lim, metrics). It reproduces RTVC's synthesizer and encoder features exactly when
given ``RTVC_SYNTHESIZER_MEL`` / ``RTVC_ENCODER_MEL`` (checked against the RTVC fixtures).

The inference path imports neither librosa nor scipy.signal (together about 2 s of a cold ``vcframe run``):
the STFT, inverse STFT, mel filterbank and pre-/de-emphasis here are numpy transcriptions of librosa 0.11's
``stft``, ``istft``, ``filters.mel`` and scipy's ``lfilter`` (tests/test_audio.py checks them against those),
and resampling calls soxr, the library behind librosa's default ``soxr_hq``, directly.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

#: Samples per block of :func:`deemphasis`'s vectorised recursion.
DEEMPHASIS_BLOCK = 64


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
    """Band-limited resampling of 1-D ``samples``: soxr's high-quality mode, cut or zero-padded to
    ``ceil(len(samples) * target_rate / source_rate)`` samples, as ``librosa.resample`` (``res_type="soxr_hq"``,
    ``fix=True``) does; float32 in, float32 out."""
    if source_rate == target_rate:
        return samples
    if source_rate <= 0 or target_rate <= 0:
        raise AudioInputError(f"cannot resample from {source_rate} Hz to {target_rate} Hz")
    import soxr

    resampled = np.asarray(soxr.resample(samples, source_rate, target_rate, quality="soxr_hq"), dtype=np.float32)
    length = int(np.ceil(samples.shape[-1] * (float(target_rate) / source_rate)))
    if resampled.shape[-1] >= length:
        return resampled[:length]
    return np.pad(resampled, (0, length - resampled.shape[-1]))


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


def hz_to_mel(frequencies: np.ndarray | float, *, htk: bool = False) -> np.ndarray:
    """Frequencies in Hz -> mels, same shape (float64): the HTK formula ``2595 log10(1 + f / 700)`` or
    Slaney's (linear below 1 kHz, logarithmic above), as ``librosa.hz_to_mel``."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if htk:
        return np.asarray(2595.0 * np.log10(1.0 + frequencies / 700.0))
    linear_step = 200.0 / 3
    mels = np.array(frequencies / linear_step, ndmin=1)
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / linear_step
    log_step = np.log(6.4) / 27.0
    above = np.array(frequencies >= min_log_hz, ndmin=1)
    mels[above] = min_log_mel + np.log(np.array(frequencies, ndmin=1)[above] / min_log_hz) / log_step
    return mels.reshape(frequencies.shape)


def mel_to_hz(mels: np.ndarray | float, *, htk: bool = False) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`: mels -> Hz, same shape (float64), as ``librosa.mel_to_hz``."""
    mels = np.asarray(mels, dtype=np.float64)
    if htk:
        return np.asarray(700.0 * (10.0 ** (mels / 2595.0) - 1.0))
    linear_step = 200.0 / 3
    frequencies = np.array(linear_step * mels, ndmin=1)
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / linear_step
    log_step = np.log(6.4) / 27.0
    above = np.array(mels >= min_log_mel, ndmin=1)
    frequencies[above] = min_log_hz * np.exp(log_step * (np.array(mels, ndmin=1)[above] - min_log_mel))
    return frequencies.reshape(mels.shape)


@functools.lru_cache(maxsize=16)
def mel_basis(spec: MelSpec) -> np.ndarray:
    """(n_mels, 1 + n_fft/2) float32 mel filterbank of ``spec`` (librosa's ``filters.mel``, with the spec's fmin,
    fmax, mel scale and norm: triangles between ``n_mels + 2`` points evenly spaced in mels, each scaled to unit
    area with the Slaney norm); ``mel_basis(spec) @ linear_spectrogram(samples, spec)`` are the mel amplitudes.
    Cached per spec."""
    htk = spec.mel_scale == "htk"
    fft_frequencies = np.fft.rfftfreq(n=spec.n_fft, d=1.0 / spec.sample_rate)
    lowest, highest = hz_to_mel(spec.fmin, htk=htk), hz_to_mel(spec.fmax, htk=htk)
    edges = mel_to_hz(np.linspace(lowest, highest, spec.n_mels + 2), htk=htk)
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, fft_frequencies)
    weights = np.zeros((spec.n_mels, 1 + spec.n_fft // 2), dtype=np.float32)
    for band in range(spec.n_mels):
        rising = -ramps[band] / widths[band]
        falling = ramps[band + 2] / widths[band + 1]
        weights[band] = np.maximum(0, np.minimum(rising, falling))
    if spec.mel_norm == "slaney":
        weights *= (2.0 / (edges[2 : spec.n_mels + 2] - edges[: spec.n_mels]))[:, np.newaxis]
    return weights


def hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """(n_fft,) float64 periodic Hann window of ``win_length`` samples, zero-padded on both sides to ``n_fft``
    (centred): the window of ``librosa.stft`` / ``istft``, computed as ``scipy.signal.get_window("hann")``."""
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length ({win_length}) must be between 1 and n_fft ({n_fft})")
    phase = np.linspace(-np.pi, np.pi, win_length + 1)[:-1]
    window = np.zeros(win_length) + 0.5 * np.cos(0 * phase) + 0.5 * np.cos(phase)
    left = (n_fft - win_length) // 2
    return np.pad(window, (left, n_fft - win_length - left))


def stft(
    signal: np.ndarray, *, n_fft: int, hop_length: int, win_length: int, center: bool = True, pad_mode: str = "constant"
) -> np.ndarray:
    """Short-time Fourier transform of 1-D ``signal`` with a Hann window: complex (1 + n_fft/2, frames), complex64
    for float32 input and complex128 for float64, frame ``t`` starting at sample ``t * hop_length`` (of the signal
    padded by ``n_fft // 2`` on each side with ``pad_mode`` when ``center``). As ``librosa.stft``.

    Args:
        signal: (L,) samples, ``L >= n_fft`` unless ``center``.
        n_fft: FFT size. hop_length: samples between frames. win_length: Hann window length (<= n_fft).
        center: pad so that frame ``t`` is centred on sample ``t * hop_length`` (default True).
        pad_mode: numpy padding mode for ``center`` (default "constant": zeros).
    """
    samples = np.asarray(signal)
    if center:
        samples = np.pad(samples, (n_fft // 2, n_fft // 2), mode=pad_mode)  # type: ignore[call-overload]
    if samples.shape[-1] < n_fft:
        raise ValueError(f"n_fft={n_fft} is larger than the signal ({samples.shape[-1]} samples)")
    frames = np.lib.stride_tricks.sliding_window_view(samples, n_fft)[::hop_length]
    spectrum = np.fft.rfft(hann_window(win_length, n_fft) * frames, axis=-1)
    complex_type = np.complex64 if samples.dtype == np.float32 else np.complex128
    return np.ascontiguousarray(spectrum.T, dtype=complex_type)


def overlap_add(frames: np.ndarray, hop_length: int, dtype: type[np.floating] = np.float64) -> np.ndarray:
    """(n_fft + hop_length * (T - 1),) ``dtype`` sum of the (T, n_fft) ``frames`` placed ``hop_length`` apart,
    each sample summed in frame order, each partial sum rounded to ``dtype`` (as librosa's overlap-add, so the
    sums are the same to the last bit)."""
    count, n_fft = frames.shape
    shifts = -(-n_fft // hop_length)
    chunks = np.zeros((count, shifts * hop_length), dtype=frames.dtype)
    chunks[:, :n_fft] = frames
    chunks = chunks.reshape(count, shifts, hop_length)
    blocks = np.zeros((count + shifts - 1, hop_length), dtype=dtype)
    for shift in reversed(range(shifts)):  # a block gets its earliest frame first
        blocks[shift : shift + count] += chunks[:, shift]
    return blocks.reshape(-1)[: n_fft + hop_length * (count - 1)]


def istft(
    stft_matrix: np.ndarray, *, n_fft: int, hop_length: int, win_length: int, center: bool = True, length: int
) -> np.ndarray:
    """Inverse of :func:`stft`: (1 + n_fft/2, T) complex -> (length,) real signal (float32 from complex64,
    float64 from complex128) by windowed overlap-add divided by the summed squared window, as ``librosa.istft``
    with ``length``: frames past the ones ``length`` needs are skipped, a shorter result is zero-padded."""
    window = hann_window(win_length, n_fft)
    padded_length = length + 2 * (n_fft // 2) if center else length
    count = min(stft_matrix.shape[-1], int(np.ceil(padded_length / hop_length)))
    real_type = np.float32 if stft_matrix.dtype == np.complex64 else np.float64
    frames = window * np.fft.irfft(stft_matrix[:, :count].T, n=n_fft, axis=-1)
    signal = overlap_add(frames, hop_length, real_type)
    window_sum = overlap_add(np.broadcast_to(window**2, (count, n_fft)), hop_length, real_type)
    start = n_fft // 2 if center else 0
    signal, window_sum = signal[start : start + length], window_sum[start : start + length]
    nonzero = window_sum > np.finfo(real_type).tiny
    signal[nonzero] /= window_sum[nonzero]
    return np.pad(signal, (0, length - signal.shape[-1]))


def rescale_peak(samples: np.ndarray, peak: float = TRAINING_PEAK) -> np.ndarray:
    """``samples`` scaled so that their largest magnitude is ``peak`` (all-zero input stays zero)."""
    return samples / max(float(np.abs(samples).max()), 1e-8) * peak


def preemphasis(samples: np.ndarray, coefficient: float) -> np.ndarray:
    """``y[n] = x[n] - c x[n-1]`` of 1-D ``samples`` with ``coefficient`` c: a float64 array of the same length
    (as RTVC computes it). ``MelSpec.preemphasis`` applies it before the STFT."""
    signal = np.asarray(samples, dtype=np.float64)
    emphasised = signal.copy()
    emphasised[1:] -= coefficient * signal[:-1]
    return emphasised


def deemphasis(samples: np.ndarray, coefficient: float) -> np.ndarray:
    """Inverse of :func:`preemphasis`: ``y[n] = x[n] + c y[n-1]``, float64, same length. A vocoder that rebuilds
    the signal a pre-emphasised mel describes must apply it last (the conformance kit checks)."""
    # Blocks of DEEMPHASIS_BLOCK samples: within a block y = T x (T[i, j] = c^(i-j), lower triangular), and each
    # block adds c^(i+1) times the last output of the block before. Same values as scipy's lfilter([1], [1, -c])
    # within float64 rounding (tests/test_audio.py), without importing scipy.signal.
    signal = np.asarray(samples, dtype=np.float64)
    size = DEEMPHASIS_BLOCK
    blocks = np.pad(signal, (0, -signal.shape[-1] % size)).reshape(-1, size)
    lags = np.arange(size)[:, np.newaxis] - np.arange(size)[np.newaxis, :]
    response = np.where(lags >= 0, float(coefficient) ** np.maximum(lags, 0), 0.0)
    filtered = blocks @ response.T
    decay = float(coefficient) ** np.arange(1, size + 1)
    carry = 0.0
    for block in filtered:
        block += carry * decay
        carry = block[-1]
    return filtered.reshape(-1)[: signal.shape[-1]]


def _frame_arguments(spec: MelSpec) -> dict[str, Any]:
    return {"n_fft": spec.n_fft, "hop_length": spec.hop_length, "win_length": spec.win_length, "center": spec.center}


def spec_stft(signal: np.ndarray, spec: MelSpec) -> np.ndarray:
    """:func:`stft` of 1-D ``signal`` (pre-emphasised already, if ``spec`` asks for it) as ``spec`` frames it: first
    padded by ``spec.pad_length`` on each side with ``spec.pad_mode`` when frames are not centred, then ``spec``'s
    FFT size, hop, window length, centring and pad mode. The STFT :func:`linear_spectrogram` takes."""
    if spec.pad_length and not spec.center:
        signal = np.pad(signal, (spec.pad_length, spec.pad_length), mode=spec.pad_mode)
    return stft(signal, pad_mode=spec.pad_mode, **_frame_arguments(spec))


def spec_istft(spectrum: np.ndarray, spec: MelSpec, length: int) -> np.ndarray:
    """:func:`istft` of a :func:`spec_stft` spectrum back to the ``length`` samples it was taken from (the padding
    :func:`spec_stft` added cut off)."""
    pad = spec.pad_length if spec.pad_length and not spec.center else 0
    return istft(spectrum, length=length + 2 * pad, **_frame_arguments(spec))[pad : pad + length]


def linear_spectrogram(samples: np.ndarray, spec: MelSpec) -> np.ndarray:
    """``|STFT| ** magnitude_power`` of the (pre-emphasised, padded) 1-D samples: (1 + n_fft/2, frames).

    With ``spec.pad_length`` (frames not centred) the signal is first padded by that many samples on each side
    with ``spec.pad_mode`` (numpy's "reflect" does not repeat the edge sample, as torch's does not); with
    ``spec.magnitude_epsilon`` the magnitude is ``sqrt(re**2 + im**2 + epsilon)``.
    """
    signal = preemphasis(samples, spec.preemphasis) if spec.preemphasis else samples
    spectrum = spec_stft(signal, spec)
    if spec.magnitude_epsilon:
        magnitude: np.ndarray = np.sqrt(spectrum.real**2 + spectrum.imag**2 + np.float32(spec.magnitude_epsilon))
    else:
        magnitude = np.abs(spectrum)
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
