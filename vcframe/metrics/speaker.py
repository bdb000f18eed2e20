"""Speaker similarity: the cosine of two speaker embeddings from a judge encoder.

The judge is a speaker encoder chosen independently of the systems under comparison (default: GE2E with
the pretrained resemblyzer weights), so that a system is not graded by its own encoder.

    >>> judge = SpeakerJudge("ge2e", device="cpu")
    >>> speaker_similarity("reference.wav", "generated.wav", judge=judge)   # in [-1, 1], 1 = same direction
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vcframe.errors import AudioInputError, InputError
from vcframe.metrics.context import MetricContext
from vcframe.metrics.spec import MetricInputs, MetricResult, NoOptions
from vcframe.types import Waveform

Clip = str | os.PathLike[str] | Waveform


def cosine_similarity(first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray) -> float:
    """Cosine of the angle between two vectors, in [-1, 1]. InputError for zero or mismatched vectors."""
    a = np.asarray(first, dtype=np.float64).reshape(-1)
    b = np.asarray(second, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise InputError(f"cannot compare embeddings of sizes {a.size} and {b.size}")
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norms == 0.0 or not np.isfinite(norms):
        raise InputError("cannot take the cosine of a zero or non-finite embedding")
    return float(np.clip(np.dot(a, b) / norms, -1.0, 1.0))


class SpeakerJudge:
    """A speaker encoder used to judge voices: ``embed(clips) -> (D,)`` numpy vector, cached per file.

    Args:
        encoder: encoder plugin name (``ge2e``) or ``distribution:name``.
        options: the encoder's options, e.g. ``{"checkpoint": "my_encoder.pt"}``.
        device: ``cpu``, ``cuda``, ``auto``.
        settings, registry: as for :class:`vcframe.pipeline.Pipeline`.
    """

    def __init__(
        self,
        encoder: str = "ge2e",
        *,
        options: dict[str, Any] | None = None,
        device: str = "cpu",
        settings: Any = None,
        registry: Any = None,
    ) -> None:
        import torch

        from vcframe.pipeline import Pipeline

        self.pipeline = Pipeline(
            encoder=encoder,
            device=device,
            settings=settings,
            registry=registry,
            options={"encoder": dict(options or {})},
            embedding_only=True,
            threads=torch.get_num_threads(),  # a metric keeps the thread count of the program that runs it
        )
        self.name = self.pipeline.specs["encoder"].name
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def embed(self, clips: Clip | Sequence[Clip]) -> np.ndarray:
        """One embedding (D,) of one clip, or of several clips of the same speaker (the encoder averages them)."""
        items: list[Clip] = [clips] if isinstance(clips, (str, os.PathLike, Waveform)) else list(clips)
        key: tuple[str, ...] | None = None
        if not any(isinstance(item, Waveform) for item in items):
            key = tuple(str(Path(item).resolve()) for item in items if not isinstance(item, Waveform))
        if key is not None and key in self._cache:
            return self._cache[key]
        vector = self.pipeline.embed(items).vector[0].detach().cpu().numpy().astype(np.float64)
        if key is not None:
            self._cache[key] = vector
        return vector

    def similarity(self, reference: Clip | Sequence[Clip], generated: Clip | Sequence[Clip]) -> float:
        """Cosine similarity of the judge's embeddings of ``reference`` and ``generated``."""
        return cosine_similarity(self.embed(reference), self.embed(generated))


def speaker_similarity(
    reference: Clip | Sequence[Clip], generated: Clip | Sequence[Clip], *, judge: SpeakerJudge | None = None
) -> float:
    """Cosine similarity of ``reference`` and ``generated`` speech under ``judge`` (default: GE2E on CPU).

    Identical audio gives 1.0; GE2E gives about 0.75-0.9 for two clips of one real speaker and below 0.6
    for most pairs of different speakers.
    """
    return (judge or SpeakerJudge()).similarity(reference, generated)


class SpeakerSimilarityMetric:
    """The ``speaker_similarity`` metric: judge cosine of the voice's reference clip(s) and the output."""

    def __init__(self, config: NoOptions, context: MetricContext) -> None:
        self.config = config
        self.context = context

    def compute(self, inputs: MetricInputs) -> MetricResult:
        if inputs.generated is None or not inputs.references:
            return MetricResult({"speaker_similarity": None}, note="no reference or no output")
        judge = self.context.judge
        reference = judge.embed(list(inputs.references))
        try:
            generated = judge.embed(inputs.generated)
        except AudioInputError as error:  # e.g. the output has no detectable speech: it has no voice to compare
            return MetricResult({"speaker_similarity": None}, note=f"the judge cannot embed the output: {error}")
        return MetricResult(
            {"speaker_similarity": cosine_similarity(reference, generated)},
            vectors={"reference_embedding": reference.tolist(), "generated_embedding": generated.tolist()},
        )
