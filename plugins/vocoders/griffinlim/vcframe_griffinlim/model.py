"""Griffin-Lim vocoder: mel -> linear magnitude (pseudo-inverse of the mel basis) -> phase recovery."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypedDict

import numpy as np
import torch

from vcframe.audio import deemphasis, hann_window, istft, mel_basis, mel_values_to_amplitude, overlap_add, stft
from vcframe.errors import InputError
from vcframe.interfaces import BaseVocoder, stream_chunks
from vcframe.specs import MelSpec
from vcframe.types import Mel, Waveform
from vcframe_griffinlim.spec import SPEC, GriffinLimConfig

#: Peak normalisation treats a quieter output as if it peaked at this level, so it amplifies by at most
#: ``peak_normalize / QUIET_PEAK`` (9.7 times, +19.7 dB, at the default 0.97). A silent mel then stays
#: near-silent (RMS 1e-3, -60 dBFS, where full normalisation made peak 0.97 / RMS 0.2 of noise), while speech is
#: untouched: its raw output peaks at 0.15-0.62 from the default Tacotron's mels and 0.51-1.0 from the mels of
#: real recordings. (The Tacotron lineage's save_wav, keithito and Rayhane-mamah, floors the peak at 0.01 alike.)
QUIET_PEAK = 0.1

#: Streaming must set the level before the output's peak is known, so it scales by the peak expected from the
#: magnitudes (:func:`expected_peak`): this factor times the RMS of the loudest frame. Whole-signal Griffin-Lim's
#: unclipped output peak over that RMS, measured on 24 LJSpeech-mini clips' own mels and 5 default-Tacotron mels
#: (RTVC mel, power 1.2, seeds 0-28): 1.57-2.70, median 2.05. At 2.3 the streamed output peaks at 0.66-1.14 of
#: ``peak_normalize`` (-3.6 to +1.1 dB from the whole output's level; above 1 on 4 of the 29, where it clips).
STREAM_CREST_FACTOR = 2.3


class _STFTSettings(TypedDict):
    """The keyword arguments that :func:`griffin_lim` passes to both ``stft`` and ``istft``."""

    n_fft: int
    hop_length: int
    win_length: int
    center: bool


class GriffinLimVocoder(BaseVocoder):
    """Inverts a mel spectrogram without a model, as RTVC's ``inv_mel_spectrogram`` does.

    Args:
        config: GriffinLimConfig (mel spec, iterations, magnitude power, momentum).
        device: accepted for the interface; the computation runs on the CPU with numpy.

    Shapes: Mel (B, n_mels, T) -> Waveform (B, T * hop_length), items cut to ``lengths * hop_length``.
    The random initial phase is drawn from ``numpy.random.default_rng(seed)`` (seed 0 when None), so the
    output is a deterministic function of the mel and the seed. With ``peak_normalize`` each item is scaled to
    that peak, amplified by at most ``peak_normalize / QUIET_PEAK`` so that a silent mel gives near-silence.
    """

    spec = SPEC

    def __init__(self, config: GriffinLimConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device=device)
        self.config: GriffinLimConfig
        basis = mel_basis(self.config.mel).astype(np.float64)
        self._inverse_basis = np.linalg.pinv(basis)

    def _vocode(self, mel: Mel, seed: int | None) -> Waveform:
        spec = self.config.mel
        items = []
        for index in range(mel.batch_size):
            values = mel.item(index).astype(np.float64)
            items.append(self._invert(values, np.random.default_rng(0 if seed is None else seed)))
        waveform = Waveform.from_numpy(items, spec.sample_rate)
        return Waveform(waveform.samples.to(self.device), spec.sample_rate, waveform.lengths.to(self.device))

    def vocode_stream(self, mel: Mel, *, seed: int | None = None) -> Iterator[Waveform]:
        """Mel (1, n_mels, T) -> Waveform (1, n) chunks that add up to T * hop_length samples, by
        :func:`griffin_lim_stream`: the first chunk holds the audio of ``stream_first_chunk_frames`` frames less
        the half window that the next frames still overlap (``first * hop_length - n_fft / 2`` samples for
        centred frames), later chunks twice as much each time up to ``stream_chunk_frames`` frames.

        Needs a batch of one. Deterministic for a seed (the initial phase is :meth:`vocode`'s), but not equal to
        :meth:`vocode`'s output: each block's phase is estimated from the frames up to ``stream_lookahead_frames``
        after it, not from the whole mel (the plugin README measures the cost). With ``peak_normalize`` the
        level is set before the first chunk from the magnitudes (:func:`expected_peak`), not from the output's
        peak, which is not known yet.
        """
        mel = self._check_mel(mel)
        if mel.batch_size != 1:
            raise InputError(f"vocode_stream takes one mel at a time, got a batch of {mel.batch_size}")
        spec, config = self.config.mel, self.config
        values = mel.item(0).astype(np.float64)
        frames = values.shape[1]
        output_length = frames * spec.hop_length
        recovered_length, start = self._recovered_length(frames)
        if recovered_length == 0:  # one centred frame describes no audio: silence
            yield self._waveform(np.zeros(output_length, dtype=np.float32))
            return
        magnitude = self._magnitude(values)
        gain = 1.0
        if config.peak_normalize is not None:
            gain = config.peak_normalize / max(expected_peak(magnitude, spec), QUIET_PEAK)
        pieces = griffin_lim_stream(
            magnitude,
            spec,
            n_iter=config.n_iter,
            momentum=config.momentum,
            rng=np.random.default_rng(0 if seed is None else seed),
            length=recovered_length,
            first_frames=config.stream_first_chunk_frames,
            largest_frames=config.stream_chunk_frames,
            lookahead_frames=config.stream_lookahead_frames,
        )
        recovered_end = min(output_length, recovered_length - start)  # output samples the signal covers
        position, emitted, carry = 0, 0, 0.0  # signal samples read, output samples given, de-emphasis state
        for piece in pieces:
            low, high = max(position, start), min(position + len(piece), start + recovered_end)
            position += len(piece)
            if high <= low:
                continue
            chunk = piece[low - (position - len(piece)) : high - (position - len(piece))]
            emitted += len(chunk)
            if emitted == recovered_end:  # the last hop of centred frames: zeros, as vocode pads
                chunk = np.pad(chunk, (0, output_length - emitted))
            if spec.preemphasis:
                chunk = deemphasis(chunk, spec.preemphasis)
                chunk += carry * spec.preemphasis ** np.arange(1, len(chunk) + 1)
                carry = float(chunk[-1])
            yield self._waveform(np.clip(chunk * gain, -1.0, 1.0).astype(np.float32))

    def _waveform(self, samples: np.ndarray) -> Waveform:
        """(n,) samples -> Waveform (1, n) on this device at the mel's rate."""
        return Waveform(torch.from_numpy(samples)[None].to(self.device), self.config.mel.sample_rate)

    def _magnitude(self, mel_values: np.ndarray) -> np.ndarray:
        """(n_mels, T) mel values -> (1 + n_fft/2, T) float64 linear magnitudes raised to ``power``: what
        Griffin-Lim's phase is recovered for."""
        spec = self.config.mel
        amplitude = mel_values_to_amplitude(mel_values, spec)
        if spec.magnitude_power != 1:
            amplitude = amplitude ** (1.0 / spec.magnitude_power)
        linear = np.maximum(1e-10, self._inverse_basis @ amplitude)
        magnitude: np.ndarray = linear**self.config.power
        return magnitude

    def _recovered_length(self, frames: int) -> tuple[int, int]:
        """(samples Griffin-Lim recovers from ``frames`` frames, index of the first output sample among them).

        With centred frames, T frames describe (T - 1) hops of audio; the last hop is padded with zeros so that
        every vocoder returns exactly T * hop_length samples. Frames that are not centred describe (T - 1) hops
        plus one window of the padded signal, of which the pad_length samples at each end go."""
        spec = self.config.mel
        if spec.center:
            return (frames - 1) * spec.hop_length, 0
        return (frames - 1) * spec.hop_length + spec.n_fft, spec.pad_length

    def _invert(self, mel_values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        spec = self.config.mel
        frames = mel_values.shape[1]
        recovered_length, start = self._recovered_length(frames)
        if recovered_length == 0:  # one centred frame describes no audio: silence
            return np.zeros(frames * spec.hop_length, dtype=np.float32)
        signal = griffin_lim(
            self._magnitude(mel_values),
            spec,
            n_iter=self.config.n_iter,
            momentum=self.config.momentum,
            rng=rng,
            length=recovered_length,
        )
        signal = signal[start : start + frames * spec.hop_length]
        signal = np.pad(signal, (0, frames * spec.hop_length - len(signal)))
        if spec.preemphasis:
            signal = deemphasis(signal, spec.preemphasis)
        peak = float(np.max(np.abs(signal))) if signal.size else 0.0
        if self.config.peak_normalize is not None and peak > 0:
            signal = signal * (self.config.peak_normalize / max(peak, QUIET_PEAK))
        return np.clip(signal, -1.0, 1.0).astype(np.float32)


def griffin_lim(
    magnitude: np.ndarray, spec: MelSpec, *, n_iter: int, momentum: float, rng: np.random.Generator, length: int
) -> np.ndarray:
    """(length,) float64 signal whose STFT magnitude approximates ``magnitude``: the fast Griffin-Lim algorithm
    (Perraudin et al. 2013) as ``librosa.griffinlim`` runs it (random initial phase drawn from ``rng``, same
    arithmetic, same result; tests/test_griffinlim.py compares), with the STFT of :mod:`vcframe.audio` so that
    vocoding imports no librosa.

    Args:
        magnitude: (1 + n_fft/2, T) float64 linear magnitudes.
        spec: the mel spec whose STFT settings (n_fft, hop_length, win_length, center, pad_mode) are used.
        n_iter: iterations. momentum: the "fast" extrapolation weight (0 is plain Griffin-Lim).
        rng: draws the initial phase. length: samples of the returned signal.
    """
    settings: _STFTSettings = {
        "n_fft": spec.n_fft,
        "hop_length": spec.hop_length,
        "win_length": spec.win_length,
        "center": spec.center,
    }
    eps = np.finfo(np.complex128).tiny
    phases = 2 * np.pi * rng.random(size=magnitude.shape)
    angles = (np.cos(phases) + 1j * np.sin(phases)) * magnitude
    previous = None
    for _ in range(n_iter):
        inverse = istft(angles, length=length, **settings)
        rebuilt = stft(inverse, pad_mode=spec.pad_mode, **settings)
        angles = rebuilt.copy()
        if previous is not None:
            angles -= (momentum / (1 + momentum)) * previous
        angles /= np.abs(angles) + eps
        angles *= magnitude
        previous = rebuilt
    return istft(angles, length=length, **settings)


def griffin_lim_stream(
    magnitude: np.ndarray,
    spec: MelSpec,
    *,
    n_iter: int,
    momentum: float,
    rng: np.random.Generator,
    length: int,
    first_frames: int,
    largest_frames: int,
    lookahead_frames: int,
) -> Iterator[np.ndarray]:
    """:func:`griffin_lim` block by block: yields consecutive pieces of the (length,) float64 signal, each as soon
    as the frames that make it are final. Blockwise fast Griffin-Lim with look-ahead and a committed prefix, the
    idea of RTISI-LA (Zhu, Beauregard & Wyse 2007) applied to blocks of frames.

    Each block runs ``n_iter`` iterations (same momentum, same initial phase as :func:`griffin_lim`: the whole
    (F, T) phase grid is drawn from ``rng`` first) on its ``end - start`` frames plus ``lookahead_frames`` after
    them; the frames committed before (those overlapping the block's first frame) take part in the overlap-add
    with their final values but are not changed, so the block's phase continues from the audio already given
    out. At the end of the block its own frames are committed; the look-ahead frames keep their estimate as the
    next block's starting point. The overlap-add is normalised by the squared windows of the frames it sums, so
    the block's right edge behaves as the end of a signal. With ``first_frames >= T`` (one block) the result is
    :func:`griffin_lim`'s.

    Args:
        magnitude: (1 + n_fft/2, T) float64 linear magnitudes, T >= 2.
        spec: the mel spec whose STFT settings are used. n_iter, momentum, rng: as :func:`griffin_lim`.
        length: samples of the whole signal: ``(T - 1) * hop_length`` when frames are centred,
            ``(T - 1) * hop_length + n_fft`` when not (the lengths the vocoder asks :func:`griffin_lim` for).
        first_frames: frames committed by the first block (default in the vocoder's config).
        largest_frames: most frames committed by one block (blocks double from ``first_frames`` up to it).
        lookahead_frames: frames after a block iterated with it but not committed.

    Yields (n,) float64 pieces whose concatenation has ``length`` samples (no empty piece).
    """
    n_fft, hop = spec.n_fft, spec.hop_length
    total = magnitude.shape[1]
    start = n_fft // 2 if spec.center else 0
    if length != (total - 1) * hop + n_fft - 2 * start:
        raise ValueError(f"length {length} does not match {total} frames ({(total - 1) * hop + n_fft - 2 * start})")
    window = hann_window(spec.win_length, n_fft)
    overlap = -(-n_fft // hop)  # frames that overlap one sample at most
    eps = np.finfo(np.complex128).tiny
    phases = 2 * np.pi * rng.random(size=magnitude.shape)
    angles = (np.cos(phases) + 1j * np.sin(phases)) * magnitude

    def overlapped(first: int, stop: int) -> np.ndarray:
        """Padded-domain samples [first * hop, (stop - 1) * hop + n_fft) of the overlap-add of frames [first, stop)
        divided by their summed squared windows (zero where the sum is zero)."""
        frames = window * np.fft.irfft(angles[:, first:stop].T, n=n_fft, axis=-1)
        signal = overlap_add(frames, hop)
        window_sum = overlap_add(np.broadcast_to(window**2, frames.shape), hop)
        nonzero = window_sum > np.finfo(np.float64).tiny
        signal[nonzero] /= window_sum[nonzero]
        signal[~nonzero] = 0.0
        return signal

    def padded(signal: np.ndarray, offset: int, first: int, stop: int) -> np.ndarray:
        """The padded signal that :func:`stft` frames, at padded-domain samples [first, stop), from ``signal``
        (the overlap-add starting at padded-domain sample ``offset``): outside the signal's ``length`` samples,
        zeros or the reflection, as ``spec.pad_mode`` pads centred frames."""
        positions = np.arange(first, stop) - start  # signal sample of each padded-domain sample
        if spec.center and spec.pad_mode == "reflect":
            positions = np.where(positions < 0, -positions, positions)
            positions = np.where(positions >= length, 2 * (length - 1) - positions, positions)
        inside = (positions >= 0) & (positions < length)
        source = positions + start - offset
        if inside.any() and (source[inside].min() < 0 or source[inside].max() >= len(signal)):
            raise AssertionError("a padded sample outside the block's overlap-add")  # pragma: no cover
        return np.where(inside, signal[np.clip(source, 0, len(signal) - 1)], 0.0)

    given = 0  # signal samples yielded so far
    for block_start, block_end in stream_chunks(total, first_frames, largest_frames):
        stop = min(total, block_end + lookahead_frames)
        context = max(0, block_start - overlap + 1)
        target = magnitude[:, block_start:stop]
        previous = None
        for _ in range(n_iter):
            signal = overlapped(context, stop)
            frames_of = padded(signal, context * hop, block_start * hop, (stop - 1) * hop + n_fft)
            framed = np.lib.stride_tricks.sliding_window_view(frames_of, n_fft)[::hop]
            rebuilt = np.fft.rfft(window * framed, axis=-1).T
            estimate = rebuilt.copy()
            if previous is not None:
                estimate -= (momentum / (1 + momentum)) * previous
            estimate /= np.abs(estimate) + eps
            estimate *= target
            angles[:, block_start:stop] = estimate
            previous = rebuilt
        # samples no later frame overlaps are final: padded-domain samples before block_end * hop
        final = (block_end * hop if block_end < total else (total - 1) * hop + n_fft) - start
        final = min(length, final)
        if final > given:
            first_frame = max(0, (given + start) // hop - overlap + 1)
            signal = overlapped(first_frame, block_end)
            offset = first_frame * hop - start
            yield signal[given - offset : final - offset]
            given = final


def expected_peak(magnitude: np.ndarray, spec: MelSpec) -> float:
    """The peak a signal whose STFT magnitudes are ``magnitude`` is expected to reach, known before any phase:
    ``STREAM_CREST_FACTOR`` times the RMS of its loudest frame (Parseval: a frame's windowed energy is the sum of
    its squared magnitudes over n_fft, both halves of the spectrum, divided by the window's energy), after
    de-emphasis when the spec pre-emphasises (magnitudes divided by ``|1 - c e^(-i w)|``).

    Args:
        magnitude: (1 + n_fft/2, T) linear magnitudes. spec: the mel spec (n_fft, window, pre-emphasis).
    """
    n_fft = spec.n_fft
    sides = np.full(magnitude.shape[0], 2.0)
    sides[0] = sides[-1] = 1.0  # DC and Nyquist appear once in the full spectrum
    power = magnitude**2 * sides[:, np.newaxis]
    if spec.preemphasis:
        angle = np.pi * np.arange(magnitude.shape[0]) / (n_fft // 2)
        power = power / (np.abs(1 - spec.preemphasis * np.exp(-1j * angle)) ** 2)[:, np.newaxis]
    window_energy = float(np.sum(hann_window(spec.win_length, n_fft) ** 2))
    frame_rms = np.sqrt(power.sum(axis=0) / n_fft / window_energy)
    return STREAM_CREST_FACTOR * float(frame_rms.max()) if frame_rms.size else 0.0
