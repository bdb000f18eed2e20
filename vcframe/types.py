"""Tensors that carry their metadata: ``Waveform``, ``Mel``, ``SpeakerEmbedding``.

Everything is batch-first with per-item lengths. Padding beyond an item's length is undefined (use the
lengths); single-item conveniences live in :class:`vcframe.pipeline.Pipeline`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from vcframe.specs import EmbeddingSpec, MelSpec


def _lengths_or_full(lengths: torch.Tensor | None, batch: int, full: int, device: torch.device) -> torch.Tensor:
    if lengths is None:
        return torch.full((batch,), full, dtype=torch.long, device=device)
    return torch.as_tensor(lengths, dtype=torch.long, device=device).reshape(-1)


def _check_lengths(kind: str, lengths: torch.Tensor, batch: int, limit: int) -> None:
    if lengths.shape != (batch,):
        raise ValueError(f"{kind}: lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if batch and (int(lengths.min()) < 0 or int(lengths.max()) > limit):
        raise ValueError(f"{kind}: lengths must lie in [0, {limit}], got {lengths.tolist()}")


@dataclass(frozen=True, eq=False)
class Waveform:
    """A batch of mono audio clips.

    Args:
        samples: (B, T) float32 in [-1, 1]; values past an item's length are padding.
        sample_rate: samples per second (Hz), > 0.
        lengths: (B,) int64, valid samples per item, each in [0, T]; default None: T for every item.
        metadata: free-form run information (components, seed, bridged mismatches); default empty.

    The constructor checks the shapes, the dtype and the lengths (ValueError naming both values). From numpy,
    use :meth:`from_numpy`; ``Waveform(samples, 16000, lengths)`` keeps the tensors' device.
    """

    samples: torch.Tensor
    sample_rate: int
    lengths: torch.Tensor = None  # type: ignore[assignment]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.samples.dim() != 2:
            raise ValueError(f"Waveform.samples must be (B, T), got shape {tuple(self.samples.shape)}")
        if self.samples.dtype != torch.float32:
            raise ValueError(f"Waveform.samples must be float32, got {self.samples.dtype}")
        if self.sample_rate <= 0:
            raise ValueError(f"Waveform.sample_rate must be positive, got {self.sample_rate}")
        batch, total = self.samples.shape
        lengths = _lengths_or_full(self.lengths, batch, total, self.samples.device)
        _check_lengths("Waveform", lengths, batch, total)
        object.__setattr__(self, "lengths", lengths)

    @classmethod
    def from_numpy(cls, samples: np.ndarray | Sequence[np.ndarray], sample_rate: int, **metadata: Any) -> Waveform:
        """Build a batch from one 1-D array or a list of 1-D arrays of any lengths (zero-padded, float32, CPU).

        ``metadata`` keywords become the waveform's metadata.
        """
        items = [samples] if isinstance(samples, np.ndarray) and samples.ndim == 1 else list(samples)
        lengths = [len(item) for item in items]
        padded = np.zeros((len(items), max(lengths, default=0)), dtype=np.float32)
        for row, item in enumerate(items):
            padded[row, : len(item)] = item
        return cls(torch.from_numpy(padded), sample_rate, torch.tensor(lengths), dict(metadata))

    @property
    def batch_size(self) -> int:
        """B, the number of clips."""
        return int(self.samples.shape[0])

    @property
    def durations(self) -> list[float]:
        """Seconds of valid audio per item."""
        return [int(n) / self.sample_rate for n in self.lengths]

    def item(self, index: int = 0) -> np.ndarray:
        """Item ``index`` as a 1-D float32 numpy array of its valid length."""
        return self.samples[index, : int(self.lengths[index])].detach().cpu().numpy()

    def items(self) -> list[np.ndarray]:
        """Every item, as :meth:`item` gives it."""
        return [self.item(i) for i in range(self.batch_size)]

    def to(self, device: torch.device | str) -> Waveform:
        """A copy with samples and lengths on ``device`` (the same object's data when already there)."""
        return replace(self, samples=self.samples.to(device), lengths=self.lengths.to(device))

    def with_metadata(self, **metadata: Any) -> Waveform:
        """A copy whose metadata is updated with ``metadata``."""
        return replace(self, metadata={**self.metadata, **metadata})

    @staticmethod
    def concatenate(parts: Sequence[Waveform], gap_s: float = 0.0) -> Waveform:
        """Join single-item waveforms end to end with ``gap_s`` seconds of silence between them."""
        if not parts:
            raise ValueError("nothing to concatenate")
        rate = parts[0].sample_rate
        for part in parts:
            if part.sample_rate != rate:
                raise ValueError(f"cannot join waveforms at {rate} Hz and {part.sample_rate} Hz")
            if part.batch_size != 1:
                raise ValueError(f"concatenate joins single items; got a batch of {part.batch_size}")
        gap = np.zeros(round(gap_s * rate), dtype=np.float32)
        pieces: list[np.ndarray] = []
        for index, part in enumerate(parts):
            if index:
                pieces.append(gap)
            pieces.append(part.item(0))
        merged: dict[str, Any] = {}
        for part in parts:
            merged.update(part.metadata)
        return Waveform.from_numpy(np.concatenate(pieces), rate, **merged)


#: Key of :attr:`Mel.metadata` holding the speaker embedding a synthesizer's mel was made for (a
#: :class:`SpeakerEmbedding`), which a speaker-conditioned vocoder reads; for a mel without it such a vocoder takes
#: its own default (the HiFi-GAN: the mean of its training voices).
SPEAKER_EMBEDDING_KEY = "speaker_embedding"


@dataclass(frozen=True, eq=False)
class Mel:
    """A batch of mel spectrograms with the settings that made them.

    Args:
        frames: (B, n_mels, T) float32 in the units of ``spec`` (e.g. symmetric dB in [-4, 4]); ``n_mels`` must
            equal ``spec.n_mels``. Frames past an item's length are padding.
        spec: the MelSpec that produced the values.
        lengths: (B,) int64 valid frames per item, each in [0, T]; default None: T for every item.
        alignment: optional (B, decoder_steps, text_length) attention weights of the synthesizer (default None).
        metadata: free-form information (e.g. adapters applied); default empty. Under
            :data:`SPEAKER_EMBEDDING_KEY` the pipeline puts the :class:`SpeakerEmbedding` the mel was synthesized
            for ((1, D), or (B, D) one per item), for vocoders that read the voice beside the mel.

    The constructor checks the shapes, the dtype and the lengths (ValueError naming both values). From numpy,
    use :meth:`from_numpy`, which pads with ``spec.silence_value``.
    """

    frames: torch.Tensor
    spec: MelSpec
    lengths: torch.Tensor = None  # type: ignore[assignment]
    alignment: torch.Tensor | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames.dim() != 3:
            raise ValueError(f"Mel.frames must be (B, n_mels, T), got shape {tuple(self.frames.shape)}")
        if self.frames.shape[1] != self.spec.n_mels:
            raise ValueError(f"Mel.frames has {self.frames.shape[1]} bands but its spec says n_mels={self.spec.n_mels}")
        if self.frames.dtype != torch.float32:
            raise ValueError(f"Mel.frames must be float32, got {self.frames.dtype}")
        batch, _, total = self.frames.shape
        lengths = _lengths_or_full(self.lengths, batch, total, self.frames.device)
        _check_lengths("Mel", lengths, batch, total)
        object.__setattr__(self, "lengths", lengths)
        if self.alignment is not None and (self.alignment.dim() != 3 or self.alignment.shape[0] != batch):
            raise ValueError(f"Mel.alignment must be (B={batch}, steps, L), got {tuple(self.alignment.shape)}")

    @classmethod
    def from_numpy(cls, items: np.ndarray | Sequence[np.ndarray], spec: MelSpec) -> Mel:
        """Build a batch from one (n_mels, T) array or a list of them of any T (float32, CPU), padded with
        ``spec.silence_value``."""
        arrays = [items] if isinstance(items, np.ndarray) and items.ndim == 2 else list(items)
        lengths = [a.shape[1] for a in arrays]
        padded = np.full((len(arrays), spec.n_mels, max(lengths, default=0)), spec.silence_value, np.float32)
        for row, array in enumerate(arrays):
            padded[row, :, : array.shape[1]] = array
        return cls(torch.from_numpy(padded), spec, torch.tensor(lengths))

    @property
    def batch_size(self) -> int:
        """B, the number of mels."""
        return int(self.frames.shape[0])

    def item(self, index: int = 0) -> np.ndarray:
        """Item ``index`` as an (n_mels, frames) float32 numpy array of its valid length."""
        return self.frames[index, :, : int(self.lengths[index])].detach().cpu().numpy()

    def select(self, index: int) -> Mel:
        """A batch of one: item ``index`` cut to its length (alignment kept)."""
        length = int(self.lengths[index])
        alignment = None if self.alignment is None else self.alignment[index : index + 1]
        return Mel(
            self.frames[index : index + 1, :, :length],
            self.spec,
            self.lengths[index : index + 1],
            alignment,
            self.metadata,
        )

    def to(self, device: torch.device | str) -> Mel:
        """A copy with frames, lengths and alignment on ``device``."""
        alignment = None if self.alignment is None else self.alignment.to(device)
        return replace(self, frames=self.frames.to(device), lengths=self.lengths.to(device), alignment=alignment)


@dataclass(frozen=True, eq=False)
class SpeakerEmbedding:
    """A batch of speaker embeddings.

    Args:
        vector: (B, D) float32; unit L2 norm per row when ``spec.l2_normalized``.
        spec: the space the vectors live in; ``D`` must equal ``spec.dim``.
        metadata: free-form information; default empty.

    The constructor checks the shape and dtype (ValueError naming both values).
    """

    vector: torch.Tensor
    spec: EmbeddingSpec
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vector.dim() != 2:
            raise ValueError(f"SpeakerEmbedding.vector must be (B, D), got shape {tuple(self.vector.shape)}")
        if self.vector.shape[1] != self.spec.dim:
            raise ValueError(
                f"SpeakerEmbedding.vector has dimension {self.vector.shape[1]} but its spec says dim={self.spec.dim}"
            )
        if self.vector.dtype != torch.float32:
            raise ValueError(f"SpeakerEmbedding.vector must be float32, got {self.vector.dtype}")

    @property
    def batch_size(self) -> int:
        """B, the number of embeddings."""
        return int(self.vector.shape[0])

    def to(self, device: torch.device | str) -> SpeakerEmbedding:
        """A copy with the vectors on ``device``."""
        return replace(self, vector=self.vector.to(device))

    def select(self, index: int) -> SpeakerEmbedding:
        """A batch of one: embedding ``index``, shape (1, D)."""
        return replace(self, vector=self.vector[index : index + 1])

    def repeat(self, count: int) -> SpeakerEmbedding:
        """The same single embedding for ``count`` items."""
        if self.batch_size != 1:
            raise ValueError(f"repeat needs a single embedding, got a batch of {self.batch_size}")
        return replace(self, vector=self.vector.expand(count, -1).contiguous())

    def mean(self) -> SpeakerEmbedding:
        """One embedding averaging the batch (re-normalised if the space is L2-normalised)."""
        centroid = self.vector.mean(dim=0, keepdim=True)
        if self.spec.l2_normalized:
            centroid = centroid / centroid.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return replace(self, vector=centroid)

    def save(self, path: str) -> None:
        """Write ``.npy`` (B, D) with the spec in a sidecar ``.json``; both atomically."""
        from vcframe._io import save_embedding

        save_embedding(self, path)

    @staticmethod
    def load(path: str) -> SpeakerEmbedding:
        """Read what :meth:`save` wrote (the ``.npy`` and its ``.json`` spec)."""
        from vcframe._io import load_embedding

        return load_embedding(path)
