"""The encoder's audio front-end: volume normalisation, silence trimming, mel frames, partial slices.

Everything follows RTVC's ``encoder/audio.py`` and ``encoder/inference.py`` (SPEC.md 2.1) and is checked
against the RTVC fixtures. Functions take and return 1-D float32 numpy arrays at 16 kHz.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass

import numpy as np

from vcframe.audio import mel_spectrogram
from vcframe.specs import RTVC_ENCODER_MEL

SAMPLE_RATE = RTVC_ENCODER_MEL.sample_rate
HOP_LENGTH = RTVC_ENCODER_MEL.hop_length
VAD_WINDOW = 480  # 30 ms at 16 kHz
VAD_MOVING_AVERAGE_WIDTH = 8
VAD_MAX_SILENCE_WINDOWS = 6
INT16_MAX = 2**15 - 1
#: Energy fallback: a 30 ms window is voiced if its level is within this many dB of the loudest window ...
ENERGY_RANGE_DB = 40.0
#: ... and above this absolute level (dBFS).
ENERGY_FLOOR_DBFS = -60.0
#: A 30 ms window whose power spectrum (100 Hz - 8 kHz) is at least this flat (geometric over arithmetic mean,
#: 0..1) is noise, not voice, whatever the detector says (webrtcvad calls 99 % of white-noise windows speech).
#: Measured: white noise 0.47-0.6 in every window; LibriSpeech and LJSpeech speech below 0.3 in 99-100 % of its
#: windows, and still in 17-30 % of them under white noise at 0 dB SNR.
NOISE_FLATNESS = 0.3
#: A clip with less voice than this (voiced, not noise-like windows) has no detectable speech.
MIN_SPEECH_S = 0.15

_fallback_warned = False


def normalize_volume(wav: np.ndarray, target_dbfs: float = -30.0, *, increase_only: bool = True) -> np.ndarray:
    """Scale ``wav`` so its mean power is ``target_dbfs``; by default only ever louder (RTVC)."""
    power = np.mean(wav**2)
    if power <= 0:
        return wav
    dbfs_change = target_dbfs - 10 * np.log10(power)
    if dbfs_change < 0 and increase_only:
        return wav
    louder: np.ndarray = wav * (10 ** (dbfs_change / 20))
    return louder


class _WebrtcVad:
    """WebRTC's voice activity detector through the ``_webrtcvad`` C extension of the ``webrtcvad`` wheel.

    The wheel's Python wrapper (``webrtcvad.py`` 2.0.10, the version resemblyzer pins) imports
    ``pkg_resources`` only to read its own version, and fails where setuptools no longer provides it; the
    C extension itself is fine, so it is driven directly (``create``, ``init``, ``set_mode``, ``process``).
    """

    def __init__(self, mode: int) -> None:
        import _webrtcvad

        self._extension = _webrtcvad
        self._handle = _webrtcvad.create()
        _webrtcvad.init(self._handle)
        _webrtcvad.set_mode(self._handle, mode)

    def is_speech(self, pcm: bytes, sample_rate: int) -> bool:
        return bool(self._extension.process(self._handle, sample_rate, pcm, len(pcm) // 2))


def webrtcvad_available() -> bool:
    """True if WebRTC's VAD extension (``_webrtcvad``, from the ``webrtcvad`` wheel) imports."""
    return importlib.util.find_spec("_webrtcvad") is not None


def _smooth_and_dilate(voice_flags: np.ndarray) -> np.ndarray:
    """RTVC's moving average (width 8), rounding, and binary dilation by 7 windows (scipy.ndimage's
    ``binary_dilation`` with ``np.ones(7)``: a window is kept if any within 3 windows of it is voiced, computed
    here by a count so that embedding a voice imports no scipy)."""
    width = VAD_MOVING_AVERAGE_WIDTH
    padded = np.concatenate((np.zeros((width - 1) // 2), voice_flags, np.zeros(width // 2)))
    cumulative = np.cumsum(padded, dtype=float)
    cumulative[width:] = cumulative[width:] - cumulative[:-width]
    mask = np.round(cumulative[width - 1 :] / width).astype(bool)
    reach = VAD_MAX_SILENCE_WINDOWS // 2
    voiced_nearby = np.convolve(mask.astype(np.int64), np.ones(2 * reach + 1, dtype=np.int64), mode="full")
    return np.asarray(voiced_nearby[reach : reach + mask.size] > 0)


def webrtc_voice_flags(wav: np.ndarray, mode: int = 3) -> np.ndarray:
    """One webrtcvad decision per 30 ms window of ``wav`` (a multiple of 480 samples long)."""
    # RTVC casts round(wav * 32767) to int16 without clipping, which wraps around for samples beyond +-1
    # (volume normalisation can push a peak there); we clip instead
    pcm = np.clip(np.round(wav * INT16_MAX), -INT16_MAX - 1, INT16_MAX).astype("<i2").tobytes()
    vad = _WebrtcVad(mode)
    window_bytes = VAD_WINDOW * 2
    return np.array(
        [
            vad.is_speech(pcm[start : start + window_bytes], sample_rate=SAMPLE_RATE)
            for start in range(0, len(pcm), window_bytes)
        ],
        dtype=bool,
    )


def energy_voice_flags(wav: np.ndarray) -> np.ndarray:
    """A voiced/unvoiced decision per 30 ms window from its level alone (the fallback without webrtcvad)."""
    windows = wav.reshape(-1, VAD_WINDOW).astype(np.float64)
    level = 10 * np.log10(np.mean(windows**2, axis=1) + 1e-12)
    voiced: np.ndarray = (level > level.max() - ENERGY_RANGE_DB) & (level > ENERGY_FLOOR_DBFS)
    return voiced


def spectral_flatness(wav: np.ndarray) -> np.ndarray:
    """Per 30 ms window of ``wav`` (a multiple of 480 samples long): the flatness of its Hann-windowed power
    spectrum between 100 Hz and 8 kHz, the geometric over the arithmetic mean (1 = white noise, near 0 = tones
    and voiced speech)."""
    windows = wav.reshape(-1, VAD_WINDOW).astype(np.float64) * np.hanning(VAD_WINDOW)
    power = np.abs(np.fft.rfft(windows, axis=1))[:, 3:] ** 2 + 1e-12  # from bin 3 = 100 Hz
    return np.asarray(np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1))


def _detector(method: str) -> str:
    """``webrtc`` or ``energy`` for a trimming ``method`` (``auto``: webrtc when installed, else energy with a
    one-time warning)."""
    global _fallback_warned
    if method == "webrtc" and not webrtcvad_available():
        raise ImportError("vad='webrtc' needs webrtcvad: pip install 'vcframe-ge2e[vad]' (webrtcvad-wheels)")
    if method == "auto":
        if webrtcvad_available():
            return "webrtc"
        if not _fallback_warned:
            _fallback_warned = True
            warnings.warn(
                "webrtcvad is not installed or does not import: the GE2E encoder trims silence by frame "
                "energy instead (pip install 'vcframe-ge2e[vad]' for RTVC's voice-activity trimming)",
                RuntimeWarning,
                stacklevel=3,
            )
        return "energy"
    if method not in ("webrtc", "energy"):
        raise ValueError(f"unknown silence trimming method {method!r}; use webrtc, energy, auto or off")
    return method


def speech_seconds(wav: np.ndarray, method: str = "auto") -> float:
    """Seconds of speech the voice-activity detector finds in ``wav`` (16 kHz, volume-normalised).

    A 30 ms window counts when the detector (``method``: webrtc, energy or auto, as for trimming) flags it and
    its spectrum is not noise-like (:data:`NOISE_FLATNESS`). Full-scale noise gives 0.0, speech about its voiced
    duration; a steady tone counts as voice for the energy detector (webrtcvad flags 3 % of its windows).
    """
    usable = np.asarray(wav, dtype=np.float32)[: len(wav) - len(wav) % VAD_WINDOW]
    if usable.size == 0:
        return 0.0
    detector = _detector(method)
    flags = webrtc_voice_flags(usable) if detector == "webrtc" else energy_voice_flags(usable)
    voiced = flags & (spectral_flatness(usable) < NOISE_FLATNESS)
    return float(voiced.sum()) * VAD_WINDOW / SAMPLE_RATE


def trim_long_silences(wav: np.ndarray, method: str = "auto") -> np.ndarray:
    """Remove silences longer than about 0.2 s, as RTVC's ``trim_long_silences`` does.

    ``method``: ``webrtc`` (RTVC: webrtcvad mode 3), ``energy``, ``auto`` (webrtc when installed, else energy,
    with a one-time warning) or ``off``. The result is cut to a multiple of 30 ms, like RTVC's. If nothing is
    judged voiced, the clip is returned untrimmed (RTVC would return an empty array).
    """
    if method == "off":
        return wav
    method = _detector(method)
    usable = wav[: len(wav) - len(wav) % VAD_WINDOW]
    if usable.size == 0:
        return wav
    flags = webrtc_voice_flags(usable) if method == "webrtc" else energy_voice_flags(usable)
    mask = _smooth_and_dilate(flags.astype(np.float64))
    trimmed = usable[np.repeat(mask, VAD_WINDOW)]
    return trimmed if trimmed.size else wav


def preprocess_wav(
    wav: np.ndarray, *, normalize: bool = True, target_dbfs: float = -30.0, vad: str = "auto"
) -> np.ndarray:
    """RTVC's ``preprocess_wav`` on 16 kHz audio: volume normalisation, then silence trimming."""
    processed = np.asarray(wav, dtype=np.float32)
    if normalize:
        processed = normalize_volume(processed, target_dbfs, increase_only=True)
    return trim_long_silences(processed, vad)


def wav_to_mel(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) float32 power mel, RTVC's ``wav_to_mel_spectrogram``."""
    return mel_spectrogram(wav, RTVC_ENCODER_MEL).T.copy()


@dataclass(frozen=True)
class PartialSlices:
    """Where the partials of one clip lie: rows of [start, stop) in samples and in mel frames."""

    wav: np.ndarray  # (P, 2) int64
    mel: np.ndarray  # (P, 2) int64

    @property
    def padded_length(self) -> int:
        """Samples the clip is zero-padded to before the mel is computed."""
        return int(self.wav[-1, 1])


def compute_partial_slices(
    n_samples: int, partial_frames: int = 160, min_pad_coverage: float = 0.75, overlap: float = 0.5
) -> PartialSlices:
    """RTVC's ``compute_partial_slices``: 1.6 s windows every 0.8 s; a mostly-padding last one is dropped."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if not 0 < min_pad_coverage <= 1:
        raise ValueError(f"min_pad_coverage must be in (0, 1], got {min_pad_coverage}")
    n_frames = int(np.ceil((n_samples + 1) / HOP_LENGTH))
    frame_step = max(int(np.round(partial_frames * (1 - overlap))), 1)
    steps = max(1, n_frames - partial_frames + frame_step + 1)
    starts = np.arange(0, steps, frame_step, dtype=np.int64)
    mel = np.stack([starts, starts + partial_frames], axis=1)
    wav = mel * HOP_LENGTH
    coverage = (n_samples - wav[-1, 0]) / (wav[-1, 1] - wav[-1, 0])
    if coverage < min_pad_coverage and len(mel) > 1:
        mel, wav = mel[:-1], wav[:-1]
    return PartialSlices(wav=wav, mel=mel)
