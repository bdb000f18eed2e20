"""The dummy components: deterministic, fast, and honest implementations of the three contracts.

Each reads its input and output specs from its config (the test specs by default), so the same classes serve
as partners for components of any spec.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from vcframe.audio import mel_basis
from vcframe.interfaces import BaseSpeakerEncoder, BaseSynthesizer, BaseVocoder
from vcframe.seeding import item_generators
from vcframe.specs import MelSpec
from vcframe.testing.dummy_specs import (
    CONSTANT_SYNTHESIZER,
    SINE_VOCODER,
    TONE_ENCODER,
    ConstantSynthesizerConfig,
    SineVocoderConfig,
)
from vcframe.types import Mel, SpeakerEmbedding, Waveform


def value_range(spec: MelSpec) -> tuple[float, float]:
    """(silence, loudest) mel values of ``spec``: [-4, 4] for the test mel."""
    if spec.amplitude_scale == "linear":
        return 0.0, 1.0
    if spec.amplitude_scale == "ln":
        return spec.silence_value, 0.0  # ln of amplitude 1
    if spec.normalization == "symmetric":
        return -spec.max_abs_value, spec.max_abs_value
    if spec.normalization == "asymmetric":
        return 0.0, spec.max_abs_value
    return spec.silence_value, -spec.ref_level_db


class ToneEncoder(BaseSpeakerEncoder):
    """Embedding = L2-normalised, mean-removed log energies of D log-spaced bands (60 Hz to 7.9 kHz).

    (B, T) -> (B, D) with D the configured embedding's dim (8 by default).
    """

    spec = TONE_ENCODER

    def _embed(self, waveform: Waveform) -> SpeakerEmbedding:
        embedding_spec = self.output_spec
        top = min(7900.0, waveform.sample_rate / 2 - 1)
        band_edges = np.geomspace(60, top, embedding_spec.dim + 1)
        vectors = []
        for item in waveform.items():
            spectrum = np.abs(np.fft.rfft(item.astype(np.float64))) ** 2
            frequencies = np.fft.rfftfreq(len(item), 1 / waveform.sample_rate)
            energies = np.array(
                [
                    spectrum[(frequencies >= lo) & (frequencies < hi)].sum()
                    for lo, hi in zip(band_edges[:-1], band_edges[1:], strict=True)
                ]
            )
            logs = np.log(energies + 1e-9)
            logs -= logs.mean()
            vectors.append(logs / max(np.linalg.norm(logs), 1e-9))
        vector = torch.tensor(np.array(vectors), dtype=torch.float32, device=self.device)
        return SpeakerEmbedding(vector, embedding_spec)


class ConstantSynthesizer(BaseSynthesizer):
    """Mel of ``frames_per_char * len(text)`` frames; band pattern from the embedding; seeded noise.

    Each item's noise comes from its own generator seeded with ``seed``, so a batch equals one-by-one calls.
    Alignment: a diagonal (B, frames, characters).
    """

    spec = CONSTANT_SYNTHESIZER

    def _synthesize(self, texts: list[str], embedding: SpeakerEmbedding, seed: int | None) -> Mel:
        config: ConstantSynthesizerConfig = self.config  # type: ignore[assignment]
        mel_spec: MelSpec = self.output_spec
        low, high = value_range(mel_spec)
        scale = (high - low) / 8  # the pattern is designed for the test mel's [-4, 4]
        lengths = [config.frames_per_char * len(text) for text in texts]
        longest = max(lengths)
        bands = torch.linspace(0, 1, mel_spec.n_mels, device=self.device)
        frames = torch.full((len(texts), mel_spec.n_mels, longest), mel_spec.silence_value, device=self.device)
        alignment = torch.zeros(len(texts), longest, max(len(t) for t in texts), device=self.device)
        generators = item_generators(seed, len(texts))
        for row, (text, length) in enumerate(zip(texts, lengths, strict=True)):
            weights = embedding.vector[row]
            peak = int(torch.argmax(weights)) / max(1, weights.numel() - 1)
            pattern = 3.0 - 6.0 * (bands - peak).abs()
            frames[row, :, :length] = (low + scale * (pattern + 4.0))[:, None]
            if config.noise:
                noise = torch.rand(mel_spec.n_mels, length, generator=generators[row])
                frames[row, :, :length] += config.noise * scale * noise.to(self.device)
            steps = torch.arange(length, device=self.device)
            alignment[row, steps, (steps // config.frames_per_char).clamp(max=len(text) - 1)] = 1.0
        return Mel(frames.clamp(low, high), mel_spec, torch.tensor(lengths, device=self.device), alignment)


class SineVocoder(BaseVocoder):
    """Each frame becomes hop_length samples of a sine at the centre frequency of its loudest band, with a
    continuous phase; loudness follows the frame's mean value. (B, n_mels, T) -> (B, T * hop_length)."""

    spec = SINE_VOCODER

    def __init__(self, config: SineVocoderConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device=device)
        mel_spec: MelSpec = self.input_spec
        basis = mel_basis(mel_spec)
        bin_frequencies = np.linspace(0, mel_spec.sample_rate / 2, basis.shape[1])
        self._centres = (basis * bin_frequencies).sum(axis=1) / np.maximum(basis.sum(axis=1), 1e-9)

    def _render(self, mel_item: np.ndarray, phase: float) -> tuple[np.ndarray, float]:
        config: SineVocoderConfig = self.config  # type: ignore[assignment]
        mel_spec: MelSpec = self.input_spec
        low, high = value_range(mel_spec)
        hop = mel_spec.hop_length
        frequencies = self._centres[np.argmax(mel_item, axis=0)]
        loudness = np.clip((mel_item.mean(axis=0) - low) / (high - low), 0, 1)
        increments = np.repeat(2 * np.pi * frequencies / mel_spec.sample_rate, hop)
        phases = phase + np.cumsum(increments)
        samples = config.amplitude * np.repeat(loudness, hop) * np.sin(phases)
        return samples.astype(np.float32), float(phases[-1]) if len(phases) else phase

    def _vocode(self, mel: Mel, seed: int | None) -> Waveform:
        items = [self._render(mel.item(index), 0.0)[0] for index in range(mel.batch_size)]
        waveform = Waveform.from_numpy(items, mel.spec.sample_rate)
        return waveform.to(self.device)

    def vocode_stream(self, mel: Mel, *, seed: int | None = None) -> Iterator[Waveform]:
        mel = self._check_mel(mel)
        if mel.batch_size != 1:
            raise ValueError(f"vocode_stream takes one mel, got a batch of {mel.batch_size}")
        config: SineVocoderConfig = self.config  # type: ignore[assignment]
        values, phase = mel.item(0), 0.0
        for start in range(0, values.shape[1], config.chunk_frames):
            samples, phase = self._render(values[:, start : start + config.chunk_frames], phase)
            yield Waveform.from_numpy(samples, mel.spec.sample_rate).to(self.device)
