"""Mel-to-mel conversion used by the built-in mel adapter hook (``vcframe run --adapt``)."""

from __future__ import annotations

import numpy as np
import torch

from vcframe.audio import amplitude_to_mel_values, hann_window, mel_basis, mel_values_to_amplitude
from vcframe.specs import MelSpec
from vcframe.types import Mel

#: Multiplicative updates refining the pseudo-inverse's linear spectrum into a non-negative least-squares one
#: (0.143 -> 0.134 mean absolute ln difference on real speech, see :class:`MelRemapper`; 0.1 ms per frame).
NONNEGATIVE_ITERATIONS = 20

#: A target band gets a value only when at least this share of its filter weight lies within the frequencies the
#: source mel describes; the others get the target's silence floor.
MIN_BAND_COVERAGE = 0.5


def describe_mel(spec: MelSpec) -> str:
    """A mel spec in a few words for messages: rate, hop, bands and their range."""
    return f"{spec.sample_rate} Hz / hop {spec.hop_length} / {spec.n_mels} bands {spec.fmin:g}-{spec.fmax:g} Hz"


def frame_centre_offset(spec: MelSpec) -> float:
    """Samples from ``hop_length * t`` to the centre of frame ``t``: 0 when centred, else
    ``n_fft / 2 - pad_length`` (HiFi-GAN: 1024 / 2 - 384 = 128, half a hop)."""
    return 0.0 if spec.center else spec.n_fft / 2 - spec.pad_length


def adapted_frame_count(frames: int, source: MelSpec, target: MelSpec) -> int:
    """Frames of ``target`` spec standing for the audio of ``frames`` frames of ``source`` spec.

    A vocoder writes ``hop_length`` samples per frame, so ``frames`` source frames are
    ``frames * source.hop_length / source.sample_rate`` seconds; the target needs that duration divided by its
    frame period, rounded (RTVC's 80 frames/s to HiFi-GAN's 86.13: 100 frames -> 108).
    """
    seconds = frames * source.hop_length / source.sample_rate
    return int(round(seconds * target.sample_rate / target.hop_length))


def _emphasis_response(spec: MelSpec, frequencies: np.ndarray) -> np.ndarray:
    """|1 - c e^(-j w)| at ``frequencies`` (Hz): the gain pre-emphasis with coefficient c applies (1 without)."""
    if not spec.preemphasis:
        return np.ones_like(frequencies)
    radians = 2.0 * np.pi * frequencies / spec.sample_rate
    return np.asarray(np.abs(1.0 - spec.preemphasis * np.exp(-1j * radians)))


def _window_gain(source: MelSpec, target: MelSpec) -> float:
    """Ratio of the STFT magnitudes the two specs give the same broadband sound: the expected |X|^2 of a bin is
    the window's energy times the sample rate times the sound's spectral density, so the magnitudes differ by
    ``sqrt(sum(w_t^2) sr_t / (sum(w_s^2) sr_s))`` (1.33 from RTVC's mel to HiFi-GAN's; a steady tone would give
    the windows' sum ratio, 1.28)."""
    source_energy = float(np.sum(hann_window(source.win_length, source.n_fft) ** 2)) * source.sample_rate
    target_energy = float(np.sum(hann_window(target.win_length, target.n_fft) ** 2)) * target.sample_rate
    return float(np.sqrt(target_energy / source_energy))


class MelRemapper:
    """Converts mels of ``source`` spec to ``target`` spec: bands, value scale, level and frame rate.

    Each frame's values are turned back into mel amplitudes, spread onto the source's linear FFT bins (the
    non-negative least-squares spectrum under its filterbank, :meth:`linear_bins`), corrected for pre-emphasis
    (the source's undone, the target's applied) and for the two STFTs' window and sample rate
    (:func:`_window_gain`), moved onto the target's FFT bins by frequency in Hz (linear interpolation), raised to
    the target's magnitude power and projected onto the target's filterbank and value scale.

    Bands the source does not describe stay silent: a target band with less than half
    (:data:`MIN_BAND_COVERAGE`) of its filter weight inside ``[source.fmin, min(source.fmax, source Nyquist)]``
    gets the target's silence floor (``target.silence_value``; from RTVC's 55-7,600 Hz mel to HiFi-GAN's
    0-8,000 Hz: band 0 and band 79); a band partly inside is scaled up by the share inside. A source at a lower
    sample rate cannot give a higher-rate target anything above its own Nyquist or fmax.

    Time is resampled when the frame rates or frame positions differ: the target gets
    :func:`adapted_frame_count` frames (the same audio duration at its hop), each the linear interpolation, in
    log amplitude, of the source frames around its centre time (centres from :func:`frame_centre_offset`; ends
    held). With equal sample rates, hops and frame positions the frames map one to one.

    Measured (``benchmarks/mel_adapter.py``) on 6 LJSpeech-mini clips, RTVC's mel of the 16 kHz audio through
    this remapper against HiFi-GAN's mel of the same audio at 22,050 Hz: mean absolute difference 0.134 (natural
    log) over the bands it covers, 0.101 where the target is within 35 dB of its largest value, median -0.05
    (0.4 dB quieter). It costs about 0.005 s per second of audio on one core.

    Args:
        source: spec of the mels given (e.g. ``RTVC_SYNTHESIZER_MEL``).
        target: spec of the mels wanted (e.g. ``HIFIGAN_MEL``).

    Raises:
        ValueError: (one line naming both specs) when no target band lies within the source's frequencies.
    """

    def __init__(self, source: MelSpec, target: MelSpec) -> None:
        self.source, self.target = source, target
        source_basis = mel_basis(source).astype(np.float64)  # (n_mels_s, bins_s)
        target_basis = mel_basis(target).astype(np.float64)  # (n_mels_t, bins_t)
        source_bins = np.fft.rfftfreq(source.n_fft, d=1.0 / source.sample_rate)
        target_bins = np.fft.rfftfreq(target.n_fft, d=1.0 / target.sample_rate)
        lowest, highest = source.fmin, min(source.fmax, source.sample_rate / 2)
        inside = (target_bins >= lowest) & (target_bins <= highest)
        weights = target_basis.sum(axis=1)
        coverage = (target_basis @ inside) / np.maximum(weights, np.finfo(np.float64).tiny)
        self.covered = coverage >= MIN_BAND_COVERAGE  # (n_mels_t,) bands that get a value
        if not self.covered.any():
            raise ValueError(
                f"cannot adapt mels of {describe_mel(source)} to {describe_mel(target)}: no target band lies within "
                f"the source's {lowest:g}-{highest:g} Hz"
            )
        # source linear bins -> target linear bins by frequency: (bins_t, bins_s), zero outside the source's range
        position = target_bins / (source.sample_rate / source.n_fft)
        left = np.minimum(np.floor(position).astype(int), len(source_bins) - 1)
        right = np.minimum(left + 1, len(source_bins) - 1)
        fraction = position - left
        rows = np.flatnonzero(inside)
        bin_map = np.zeros((len(target_bins), len(source_bins)))
        np.add.at(bin_map, (rows, left[rows]), 1.0 - fraction[rows])
        np.add.at(bin_map, (rows, right[rows]), fraction[rows])
        magnitude_gain = (
            _window_gain(source, target)
            * _emphasis_response(target, target_bins)
            / np.maximum(_emphasis_response(source, target_bins), 1e-8)
        )
        band_scale = np.where(self.covered, 1.0 / np.maximum(coverage, MIN_BAND_COVERAGE), 0.0)
        # the per-frame work runs in torch, whose threads the pipeline sets (numpy's BLAS keeps its own pool,
        # which spun for 30x longer than the work on a busy 2-core machine)
        #: (bins_s, n_mels_s): source mel amplitudes -> source linear bins (a starting point, clamped)
        self._to_bins = torch.from_numpy(np.linalg.pinv(source_basis).astype(np.float32))
        self._source_basis = torch.from_numpy(source_basis.astype(np.float32))
        self._source_basis_t = self._source_basis.T.contiguous()
        #: (n_mels_t, bins_s): source bins at the target's magnitude power -> target mel amplitudes
        to_target = band_scale[:, np.newaxis] * (
            target_basis @ (magnitude_gain[:, np.newaxis] ** target.magnitude_power * bin_map)
        )
        self._to_target = torch.from_numpy(to_target.astype(np.float32))
        self._same_frames = (
            source.sample_rate * target.hop_length == target.sample_rate * source.hop_length
            and frame_centre_offset(source) * target.sample_rate == frame_centre_offset(target) * source.sample_rate
        )
        self.__name__ = f"mel-remap({describe_mel(source)} -> {describe_mel(target)})"

    def convert(self, mel_values: np.ndarray) -> np.ndarray:
        """One item: (n_mels_s, T_s) values of the source spec -> (n_mels_t, T_t) float32 values of the target
        spec, ``T_t = adapted_frame_count(T_s, source, target)``."""
        amplitude = mel_values_to_amplitude(np.asarray(mel_values, dtype=np.float64), self.source)
        frames = adapted_frame_count(amplitude.shape[1], self.source, self.target)
        with torch.no_grad():
            bins = self.linear_bins(torch.from_numpy(np.asarray(amplitude, dtype=np.float32)))  # |X|^p_s per bin
            if self.source.magnitude_power != self.target.magnitude_power:
                bins = bins ** (self.target.magnitude_power / self.source.magnitude_power)
            target_amplitude = self._to_target @ bins  # (n_mels_t, T_s); uncovered bands are 0
            if not self._same_frames and amplitude.shape[1] and frames:
                target_amplitude = self._resample_frames(target_amplitude, frames)
            target_amplitude[torch.from_numpy(~self.covered)] = 0.0  # the target's silence floor once scaled
        values = amplitude_to_mel_values(target_amplitude[:, :frames].double().numpy(), self.target)
        return np.asarray(values, dtype=np.float32)

    def linear_bins(self, amplitude: torch.Tensor) -> torch.Tensor:
        """(n_mels_s, T) float32 source mel amplitudes -> (bins_s, T) float32 non-negative linear spectrum whose mel
        is closest to them: the pseudo-inverse clamped at a tiny positive value, then
        :data:`NONNEGATIVE_ITERATIONS` multiplicative updates ``x *= B^T m / B^T B x`` (Lee and Seung's rule for
        non-negative least squares; they keep ``x >= 0``, so the linear spectrum has no negative energy that
        clamping would turn into added sound)."""
        bins = (self._to_bins @ amplitude).clamp_min(1e-12)
        numerator = self._source_basis_t @ amplitude
        for _ in range(NONNEGATIVE_ITERATIONS):
            bins *= numerator / (self._source_basis_t @ (self._source_basis @ bins)).clamp_min(1e-30)
        return bins

    def _resample_frames(self, amplitude: torch.Tensor, frames: int) -> torch.Tensor:
        """(n_mels_t, T_s) amplitudes at the source's frame times -> (n_mels_t, frames) at the target's, by linear
        interpolation of their logarithm (floored at the target's amplitude floor) between the two nearest
        source frames."""
        source, target = self.source, self.target
        centres = (np.arange(frames) * target.hop_length + frame_centre_offset(target)) / target.sample_rate
        position = (centres * source.sample_rate - frame_centre_offset(source)) / source.hop_length
        position = np.clip(position, 0.0, amplitude.shape[1] - 1)
        before = np.floor(position).astype(np.int64)
        after = np.minimum(before + 1, amplitude.shape[1] - 1)
        weight = torch.from_numpy((position - before).astype(np.float32))
        logarithm = amplitude.clamp_min(target.amplitude_floor).log()
        interpolated = (
            logarithm[:, torch.from_numpy(before)] * (1.0 - weight) + logarithm[:, torch.from_numpy(after)] * weight
        )
        return interpolated.exp()

    def __call__(self, mel: Mel) -> Mel:
        """A batch of the source spec -> the same batch in the target spec, each item ``adapted_frame_count``
        frames long (the synthesizer's alignment is kept as it is: it counts decoder steps)."""
        if mel.spec != self.source:
            raise ValueError(
                f"mel of {describe_mel(mel.spec)} given to an adapter from {describe_mel(self.source)}; "
                "build the adapter for the mel's spec"
            )
        items = [self.convert(mel.item(index)) for index in range(mel.batch_size)]
        adapted = Mel.from_numpy(items, self.target)
        return Mel(
            adapted.frames.to(mel.frames.device),
            self.target,
            adapted.lengths.to(mel.lengths.device),
            mel.alignment,
            {**mel.metadata, "adapted_from": self.source.model_dump()},
        )
