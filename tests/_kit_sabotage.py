"""Components that each break one property of the contract, to show that the kit's checks catch it.

Each is a dummy component with one defect and a spec of its own (named after the defect), whose factory points
back here.
"""

from __future__ import annotations

import socket
from typing import Any

import numpy as np
import torch
from pydantic import ConfigDict, Field
from vcframe_griffinlim.model import GriffinLimVocoder
from vcframe_griffinlim.spec import SPEC as GRIFFINLIM

from vcframe.audio import mel_basis, preemphasis
from vcframe.specs import ComponentSpec
from vcframe.testing._dummy_models import ConstantSynthesizer, SineVocoder, ToneEncoder
from vcframe.testing.dummy_specs import (
    CONSTANT_SYNTHESIZER,
    SINE_VOCODER,
    TONE_ENCODER,
    SineVocoderConfig,
)
from vcframe.types import Mel, SpeakerEmbedding, Waveform

#: Griffin-Lim's capabilities less 'streaming', for defects of vocode alone (its stream would differ from vocode
#: too, a second failure).
NOT_STREAMING = GRIFFINLIM.capabilities - {"streaming"}


def variant(base: ComponentSpec, name: str, factory: str, **update: Any) -> ComponentSpec:
    return base.model_copy(update={"name": name, "factory": f"tests._kit_sabotage:{factory}", **update})


class WrongLengthVocoder(SineVocoder):
    """Drops the last half hop of every item."""

    spec = variant(SINE_VOCODER, "wrong-length", "WrongLengthVocoder")

    def _vocode(self, mel: Mel, seed: int | None) -> Waveform:
        cut = self.input_spec.hop_length // 2
        items = [self._render(mel.item(index), 0.0)[0][:-cut] for index in range(mel.batch_size)]
        return Waveform.from_numpy(items, mel.spec.sample_rate).to(self.device)


class SeedIgnoringSynthesizer(ConstantSynthesizer):
    """Shifts every mel by a random offset drawn from the global generator, whatever the seed."""

    spec = variant(CONSTANT_SYNTHESIZER, "seed-ignoring", "SeedIgnoringSynthesizer")

    def _synthesize(self, texts: list[str], embedding: SpeakerEmbedding, seed: int | None) -> Mel:
        mel = super()._synthesize(texts, embedding, seed)
        offset = 0.5 * float(torch.rand(()))
        return Mel((mel.frames + offset).clamp(-4, 4), mel.spec, mel.lengths, mel.alignment)


class MutatingVocoder(SineVocoder):
    """Clamps the caller's mel in place."""

    spec = variant(SINE_VOCODER, "mutating", "MutatingVocoder")

    def _vocode(self, mel: Mel, seed: int | None) -> Waveform:
        mel.frames.clamp_(max=0.0)
        return super()._vocode(mel, seed)


class LeakyBatchEncoder(ToneEncoder):
    """Embeds the padded rows, so a short clip's embedding depends on the longest clip in its batch."""

    spec = variant(TONE_ENCODER, "leaky-batch", "LeakyBatchEncoder")

    def _embed(self, waveform: Waveform) -> SpeakerEmbedding:
        padded = Waveform(waveform.samples, waveform.sample_rate)
        return super()._embed(padded)


class NanSynthesizer(ConstantSynthesizer):
    """Puts a NaN into frame 5 of every mel long enough to have one."""

    spec = variant(CONSTANT_SYNTHESIZER, "nan", "NanSynthesizer")

    def _synthesize(self, texts: list[str], embedding: SpeakerEmbedding, seed: int | None) -> Mel:
        mel = super()._synthesize(texts, embedding, seed)
        frames = mel.frames.clone()
        if frames.shape[2] > 5:
            frames[:, 0, 5] = float("nan")
        return Mel(frames, mel.spec, mel.lengths, mel.alignment)


class UncheckedEncoder(ToneEncoder):
    """Skips the base class's input checks: too-short clips get an embedding."""

    spec = variant(TONE_ENCODER, "unchecked", "UncheckedEncoder")

    def embed(self, waveform: Waveform) -> SpeakerEmbedding:
        return self._embed(waveform.to(self.device))


class UncheckedVocoder(SineVocoder):
    """Skips the base class's input checks: empty mels give empty audio."""

    spec = variant(SINE_VOCODER, "unchecked", "UncheckedVocoder")

    def vocode(self, mel: Mel, *, seed: int | None = None) -> Waveform:
        return self._vocode(mel.to(self.device), seed)


class DriftingStreamVocoder(SineVocoder):
    """Restarts the phase at every streamed chunk, so the stream differs from ``vocode``."""

    spec = variant(SINE_VOCODER, "drifting-stream", "DriftingStreamVocoder")

    def vocode_stream(self, mel: Mel, *, seed: int | None = None):  # type: ignore[no-untyped-def]
        mel = self._check_mel(mel)
        values = mel.item(0)
        for start in range(0, values.shape[1], 16):
            samples, _ = self._render(values[:, start : start + 16], 0.0)
            yield Waveform.from_numpy(samples, mel.spec.sample_rate)


class DownloadingVocoder(SineVocoder):
    """Opens a network connection when built."""

    spec = variant(SINE_VOCODER, "downloading", "DownloadingVocoder")

    def __init__(self, config: SineVocoderConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device=device)
        socket.create_connection(("192.0.2.1", 80), timeout=0.01)  # TEST-NET-1: never routable


class UnbuildableVocoder(SineVocoder):
    """Cannot be built: its constructor fails, as with a weights file that is not there."""

    spec = variant(SINE_VOCODER, "unbuildable", "UnbuildableVocoder")

    def __init__(self, config: SineVocoderConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        raise FileNotFoundError("weights.safetensors not found")


class NoDeemphasisVocoder(GriffinLimVocoder):
    """Griffin-Lim that forgets to undo the mel's pre-emphasis: it returns the pre-emphasised signal."""

    spec = variant(GRIFFINLIM, "no-deemphasis", "NoDeemphasisVocoder", capabilities=NOT_STREAMING)

    def _invert(self, mel_values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        signal = preemphasis(super()._invert(mel_values, rng), self.config.mel.preemphasis)
        return np.clip(signal, -1.0, 1.0).astype(np.float32)


class WrongFmaxVocoder(GriffinLimVocoder):
    """Griffin-Lim that declares the mel it is configured for (fmax 7600 Hz) but inverts with fmax 8000 Hz."""

    spec = variant(GRIFFINLIM, "wrong-fmax", "WrongFmaxVocoder", capabilities=NOT_STREAMING)

    def __init__(self, config: Any = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device=device)
        used = self.config.mel.model_copy(update={"fmax": 8000.0})
        self._inverse_basis = np.linalg.pinv(mel_basis(used).astype(np.float64))


class LoudSilenceVocoder(GriffinLimVocoder):
    """Griffin-Lim that scales every output to peak 0.97, however quiet (the plugin before issue 21.5)."""

    spec = variant(GRIFFINLIM, "loud-silence", "LoudSilenceVocoder")

    def _invert(self, mel_values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        signal = super()._invert(mel_values, rng)
        return (signal * 0.97 / max(float(np.abs(signal).max()), 1e-12)).astype(np.float32)


class GappyStreamVocoder(GriffinLimVocoder):
    """Griffin-Lim whose stream starts each chunk after the first with 25 ms of silence (a seam a listener hears),
    within the spectral bound the plugin declares for its stream on average but not in the frames of the gap."""

    spec = variant(GRIFFINLIM, "gappy-stream", "GappyStreamVocoder")

    def vocode_stream(self, mel: Mel, *, seed: int | None = None):  # type: ignore[no-untyped-def]
        for index, chunk in enumerate(super().vocode_stream(mel, seed=seed)):
            if index:
                chunk.samples[:, : chunk.sample_rate // 40] = 0.0
            yield chunk


class LengthOnlyEncoder(ToneEncoder):
    """Embeds each clip's length instead of its sound (as if it read the padding mask): every voice of the same
    duration gets the same embedding."""

    spec = variant(TONE_ENCODER, "length-only", "LengthOnlyEncoder")

    def _embed(self, waveform: Waveform) -> SpeakerEmbedding:
        seconds = waveform.lengths.double().cpu() / waveform.sample_rate
        vectors = torch.cos(seconds[:, None] * torch.arange(1, self.output_spec.dim + 1, dtype=torch.float64))
        vectors = vectors / vectors.norm(dim=1, keepdim=True)
        return SpeakerEmbedding(vectors.float().to(self.device), self.output_spec)


class LooseConfig(SineVocoderConfig):
    """Ignores unknown options instead of refusing them."""

    model_config = ConfigDict(extra="ignore")


class UndocumentedConfig(SineVocoderConfig):
    """An option without a description."""

    gain: float = 1.0


class RequiredOptionConfig(SineVocoderConfig):
    """An option without a default."""

    required_option: int = Field(description="Must be given.")


def config_variant(config_model: type, test_config: dict[str, Any] | None = None) -> ComponentSpec:
    """The sine vocoder's spec with another config model (same name, so the built instance matches it)."""
    return SINE_VOCODER.model_copy(update={"config_model": config_model, "test_config": test_config or {}})


LOOSE_CONFIG = config_variant(LooseConfig)
UNDOCUMENTED_CONFIG = config_variant(UndocumentedConfig)
REQUIRED_OPTION = config_variant(RequiredOptionConfig, {"required_option": 1})
