"""Spectrum matching: bring a synthesized mel's long-term average spectrum toward the reference clip's.

A synthesizer speaks an unseen voice much as its nearest training voices speak, so its mel carries their average
spectral balance (formant region, brightness, tilt) rather than the reference's. :func:`match_spectrum` measures
both long-term spectra over speech frames (:func:`long_term_spectrum`: the mean of each band, each frame weighted
by how far it stands above silence), smooths their difference across bands and adds ``strength`` times it to the
synthesized mel's speech frames (silence stays silent). It is a per-band gain, the same for every frame: timing,
pitch and the words are the synthesizer's. It works on log mels (decibels or natural log) of any spec, needs no
weights and costs well under a millisecond per sentence; ``Pipeline`` applies it with the ``match_spectrum``
setting: by default at :data:`DEFAULT_STRENGTH` wherever the reference clip, or a saved embedding that stores its
clips' spectrum, is at hand (``vcframe run --match-spectrum S`` chooses the strength, 0 turns it off).

A saved embedding (``vcframe embed``, ``Pipeline.embed(..., with_spectrum=True)``) stores its clips' long-term
spectrum at the synthesizer's mel spec in its metadata (:class:`StoredSpectrum`, under
:data:`STORED_SPECTRUM_KEY`), so a run from the embedding alone is matched as a run with the clips would be.

The reference's spectrum includes its recording channel (microphone, room), so the output takes that on too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from vcframe.audio import mel_spectrogram, resample_waveform
from vcframe.datasets import band_smoothing
from vcframe.errors import InputError, validation_problems
from vcframe.specs import MelSpec
from vcframe.types import Mel, Waveform

#: Strengths the setting accepts: 0 is off, 1 moves the output's long-term spectrum onto the reference's.
MAX_STRENGTH = 2.0
#: The strength of the default setting (None) where the reference clip is at hand. Measured (README, "Quality"):
#: on 120 items of real voices through the default triple, similarity to the reference +0.038 and to the
#: speaker's second recording +0.036, words heard right +0.6 points (-1.1 to +2.3); 1.5 and 2 gave less.
DEFAULT_STRENGTH = 1.0
#: Gaussian smoothing (in mel bands) of the spectral difference: keeps the spectral envelope's shape, drops the
#: harmonics and noise of a few seconds of reference.
SMOOTHING_BANDS = 1.5
#: A frame's weight is ((value above silence) / (the 90th percentile frame's))^2, clipped to [0, 1].
_LOUD_PERCENTILE = 90.0
#: The key of a saved embedding's metadata holding its reference clips' spectrum (:meth:`StoredSpectrum.to_metadata`).
STORED_SPECTRUM_KEY = "reference_spectrum"
#: The key of an embedding's metadata saying why it stores no spectrum (it could not be measured when it was made).
UNSTORED_SPECTRUM_KEY = "reference_spectrum_unavailable"
#: What to do about an embedding without a usable stored spectrum.
REMAKE_EMBEDDING_HINT = "re-create the embedding with 'vcframe embed' to store its spectrum"


def check_log_mel(spec: MelSpec) -> None:
    """Raise InputError unless ``spec`` is a log mel (decibels or natural log), where a gain is an addition."""
    if spec.amplitude_scale == "linear":
        raise InputError(
            "spectrum matching works on log mels; this synthesizer's mel is linear",
            hint="leave match_spectrum at 0 for this synthesizer",
        )


def speech_weights(mel: np.ndarray, silence: float) -> np.ndarray:
    """Per-frame weights (T,) in [0, 1] of a mel (n_mels, T): 0 at silence, 1 from the 90th-percentile frame's
    mean level up, squared in between so that quiet frames count little."""
    level = mel.mean(axis=0) - silence
    loud = float(np.percentile(level, _LOUD_PERCENTILE)) if level.size else 0.0
    if loud <= 0:
        return np.zeros_like(level)
    weights: np.ndarray = np.clip(level / loud, 0.0, 1.0) ** 2
    return weights


def long_term_spectrum(mels: Sequence[np.ndarray], spec: MelSpec) -> np.ndarray:
    """The speech-weighted mean of each band (n_mels,) over one or more mels (n_mels, T) of ``spec``.

    Raises InputError when the mels hold no frame above silence."""
    check_log_mel(spec)
    silence = spec.silence_value
    total = np.zeros(spec.n_mels, dtype=np.float64)
    weight = 0.0
    for mel in mels:
        if mel.ndim != 2 or mel.shape[0] != spec.n_mels:
            raise InputError(f"a mel of shape {tuple(mel.shape)} is not ({spec.n_mels}, T) as its spec says")
        weights = speech_weights(mel, silence)
        total += (mel * weights).sum(axis=1)
        weight += float(weights.sum())
    if weight <= 0:
        raise InputError("the reference has no speech above silence to match", hint="use a clip with speech")
    return total / weight


def clips_spectrum(clips: Sequence[Waveform], spec: MelSpec) -> np.ndarray:
    """The long-term spectrum (n_mels,) of reference clips at ``spec``: each clip (a single-item Waveform at any
    rate) resampled to ``spec``'s rate and its mel taken, then :func:`long_term_spectrum` over all of them. The one
    way the pipeline measures a reference, whether it matches from the clips or stores their spectrum in a saved
    embedding."""
    rate = spec.sample_rate
    return long_term_spectrum([mel_spectrogram(resample_waveform(clip, rate).item(0), spec) for clip in clips], spec)


@dataclass(frozen=True)
class StoredSpectrum:
    """Reference clips' long-term spectrum as a saved embedding stores it (under :data:`STORED_SPECTRUM_KEY`).

    Args:
        mel_spec: the (log) mel spec it was measured at: the synthesizer's at the time the embedding was made.
        bands: (n_mels,) float64, :func:`clips_spectrum` of the clips at ``mel_spec``.
        clips: how many clips it was measured over (>= 1).
    """

    mel_spec: MelSpec
    bands: np.ndarray
    clips: int

    def to_metadata(self) -> dict[str, Any]:
        """``{"mel_spec": {...}, "bands": [n_mels floats], "clips": count}``: plain JSON values."""
        return {
            "mel_spec": self.mel_spec.model_dump(mode="json"),
            "bands": [float(value) for value in self.bands],
            "clips": self.clips,
        }

    @classmethod
    def from_metadata(cls, value: Any) -> StoredSpectrum:
        """Read what :meth:`to_metadata` wrote; ValueError (one line, saying what is wrong) unless it is a log mel
        spec, a finite value for each of its bands and a clip count of at least 1."""
        if not isinstance(value, Mapping) or not {"mel_spec", "bands", "clips"} <= set(value):
            raise ValueError("it is not an object with mel_spec, bands and clips")
        try:
            mel_spec = MelSpec.model_validate(value["mel_spec"])
        except ValidationError as error:
            raise ValueError(f"its mel_spec is not a mel spec ({validation_problems(error)})") from None
        if mel_spec.amplitude_scale == "linear":
            raise ValueError("its mel_spec is linear; spectrum matching works on log mels")
        bands = value["bands"]
        if not isinstance(bands, list) or not all(
            isinstance(band, (int, float)) and not isinstance(band, bool) for band in bands
        ):
            raise ValueError("its bands are not a list of numbers")
        if len(bands) != mel_spec.n_mels:
            raise ValueError(f"it has {len(bands)} bands; its mel_spec has n_mels={mel_spec.n_mels}")
        array = np.asarray(bands, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError("its bands are not all finite")
        clips = value["clips"]
        if not isinstance(clips, int) or isinstance(clips, bool) or clips < 1:
            raise ValueError(f"its clip count is {clips!r}, not a whole number of at least 1")
        return cls(mel_spec, array, clips)


def stored_spectrum(metadata: Mapping[str, Any]) -> StoredSpectrum | None:
    """The spectrum a saved embedding's ``metadata`` stores (None when it stores none, as embeddings made before
    it was stored); InputError when it is unreadable."""
    if STORED_SPECTRUM_KEY not in metadata:
        return None
    try:
        return StoredSpectrum.from_metadata(metadata[STORED_SPECTRUM_KEY])
    except ValueError as error:
        raise InputError(
            f"the embedding's stored reference spectrum is unreadable: {error}", hint=REMAKE_EMBEDDING_HINT
        ) from error


def decibels_per_unit(spec: MelSpec) -> float:
    """How many decibels one unit of ``spec``'s mel values is (12.5 for RTVC's symmetric [-4, 4] mel)."""
    if spec.amplitude_scale == "ln":
        return 20.0 / math.log(10.0)
    if spec.normalization == "symmetric":
        return -spec.min_level_db / (2.0 * spec.max_abs_value)
    if spec.normalization == "asymmetric":
        return -spec.min_level_db / spec.max_abs_value
    return 1.0


def _value_range(spec: MelSpec) -> tuple[float, float | None]:
    if spec.amplitude_scale == "db" and spec.normalization != "none" and spec.clip:
        return spec.silence_value, spec.max_abs_value
    return spec.silence_value, None


def match_spectrum(mel: Mel, reference_spectrum: np.ndarray, strength: float) -> tuple[Mel, list[float]]:
    """``mel`` with each item's long-term spectrum moved ``strength`` of the way to ``reference_spectrum``.

    Args:
        mel: Mel (B, n_mels, T), a log mel.
        reference_spectrum: (n_mels,) from :func:`long_term_spectrum` of the reference at ``mel.spec``.
        strength: 0 (unchanged) to :data:`MAX_STRENGTH`; 1 matches the long-term spectra.

    Returns the matched Mel (the same spec, lengths, alignment and metadata; values kept in the spec's range) and,
    per item, the mean absolute gain given to a speech frame, in decibels. Items with no frame above silence are
    returned unchanged."""
    spec = mel.spec
    check_log_mel(spec)
    if not 0.0 <= strength <= MAX_STRENGTH:
        raise InputError(f"match_spectrum must be between 0 and {MAX_STRENGTH}, got {strength}")
    if reference_spectrum.shape != (spec.n_mels,):
        raise InputError(f"the reference spectrum has {reference_spectrum.shape[0]} bands; the mel has {spec.n_mels}")
    low, high = _value_range(spec)
    smoothing = band_smoothing(spec.n_mels, SMOOTHING_BANDS)
    frames = mel.frames.detach().cpu().numpy().copy()
    gains = []
    for index in range(mel.batch_size):
        length = int(mel.lengths[index])
        values = frames[index, :, :length]
        weights = speech_weights(values, spec.silence_value)
        if strength == 0.0 or weights.sum() <= 0:
            gains.append(0.0)
            continue
        own = (values * weights).sum(axis=1) / weights.sum()
        offset = strength * (smoothing @ (reference_spectrum - own))
        frames[index, :, :length] = np.clip(values + offset[:, None] * weights[None, :], low, high)
        gains.append(float(np.abs(offset).mean()) * decibels_per_unit(spec))
    matched = torch.from_numpy(frames).to(mel.frames.device)
    return replace(mel, frames=matched), gains
