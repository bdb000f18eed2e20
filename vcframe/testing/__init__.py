"""Tools for testing vcframe and vcframe plugins: dummy components, registries, a CLI runner.

The dummy components (a tone encoder, a constant synthesizer, a sine vocoder) are tiny, deterministic,
dependency-free implementations of the three contracts, so pipelines and the CLI can be tested without any
model. Their specs live in :mod:`vcframe.testing.dummy_specs` (no torch import).
"""

from __future__ import annotations

from vcframe.testing.dummy_specs import (
    CONSTANT_SYNTHESIZER,
    DUMMY_SPECS,
    SINE_VOCODER,
    TEST_EMBEDDING,
    TEST_MEL,
    TONE_ENCODER,
)

__all__ = ["CONSTANT_SYNTHESIZER", "DUMMY_SPECS", "SINE_VOCODER", "TEST_EMBEDDING", "TEST_MEL", "TONE_ENCODER"]
