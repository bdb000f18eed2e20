"""Compatibility of components, decided from specs and configs alone (no weights are loaded).

Two links are checked: encoder -> synthesizer (the EmbeddingSpec: space, dim, normalisation) and
synthesizer -> vocoder (every MelSpec field). Reference audio needs no check: the pipeline resamples it to
the encoder's rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from vcframe.specs import ComponentSpec


@dataclass(frozen=True)
class Mismatch:
    """One differing field of one link."""

    link: str  # "encoder -> synthesizer" or "synthesizer -> vocoder"
    field: str
    producer: str
    producer_value: Any
    consumer: str
    consumer_value: Any

    def describe(self) -> str:
        return (
            f"{self.field}: {self.producer} gives {self.producer_value!r}, "
            f"{self.consumer} expects {self.consumer_value!r}"
        )


@dataclass
class CompatReport:
    """The result of :func:`check`: empty ``mismatches`` means the components fit."""

    encoder: str
    synthesizer: str
    vocoder: str
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def links(self) -> dict[str, list[Mismatch]]:
        grouped: dict[str, list[Mismatch]] = {"encoder -> synthesizer": [], "synthesizer -> vocoder": []}
        for mismatch in self.mismatches:
            grouped.setdefault(mismatch.link, []).append(mismatch)
        return grouped

    def mel_mismatches(self) -> list[Mismatch]:
        return [m for m in self.mismatches if m.link == "synthesizer -> vocoder"]

    def summary(self) -> str:
        """One line naming every differing field with both values."""
        if self.ok:
            return f"{self.encoder} -> {self.synthesizer} -> {self.vocoder}: compatible"
        parts = [f"{link}: " + "; ".join(m.describe() for m in items) for link, items in self.links().items() if items]
        return " | ".join(parts)


def compare_specs(link: str, producer: str, produced: Any, consumer: str, expected: Any) -> list[Mismatch]:
    """Each field in which spec ``produced`` (of ``producer``) differs from ``expected`` (of ``consumer``), as a
    :class:`Mismatch` of ``link`` (``describe()`` names the field and both values); empty when they are equal. Specs
    of different kinds differ in one field, ``kind``."""
    if type(produced) is not type(expected):
        return [Mismatch(link, "kind", producer, type(produced).__name__, consumer, type(expected).__name__)]
    return [Mismatch(link, name, producer, mine, consumer, theirs) for name, mine, theirs in produced.diff(expected)]


def check(
    encoder: tuple[ComponentSpec, BaseModel | None],
    synthesizer: tuple[ComponentSpec, BaseModel | None],
    vocoder: tuple[ComponentSpec, BaseModel | None],
) -> CompatReport:
    """Compare the specs of (spec, config) pairs; configs may be None for the spec's static defaults."""
    encoder_spec, encoder_config = encoder
    synthesizer_spec, synthesizer_config = synthesizer
    vocoder_spec, vocoder_config = vocoder
    _, embedding_out = encoder_spec.resolve_io(encoder_config)
    embedding_in, mel_out = synthesizer_spec.resolve_io(synthesizer_config)
    mel_in, _ = vocoder_spec.resolve_io(vocoder_config)
    report = CompatReport(encoder_spec.name, synthesizer_spec.name, vocoder_spec.name)
    report.mismatches += compare_specs(
        "encoder -> synthesizer", encoder_spec.name, embedding_out, synthesizer_spec.name, embedding_in
    )
    report.mismatches += compare_specs(
        "synthesizer -> vocoder", synthesizer_spec.name, mel_out, vocoder_spec.name, mel_in
    )
    return report
