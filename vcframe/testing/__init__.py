"""Tools for testing vcframe and vcframe plugins: the conformance kit, dummy components, fixtures.

* The conformance kit (:mod:`vcframe.testing.checks`): :func:`check_component` and the pytest decorator
  :func:`parametrize_with_checks` run one named check per property of the component contract.
* The dummy components (a tone encoder, a constant synthesizer, a sine vocoder) are tiny, deterministic,
  dependency-free implementations of the three contracts, so pipelines and the CLI can be tested without any
  model. Their specs live in :mod:`vcframe.testing.dummy_specs` (no torch import).
* The pytest plugin (:mod:`vcframe.testing.pytest_plugin`, loaded automatically) gives the fixtures
  ``vcframe_registry``, ``dummy_registry``, ``vcframe_cli`` and ``speech_like_wav``.
* :func:`load_rtvc_state` and :func:`load_compact_state` read the compact weights of the golden-test fixtures
  (RTVC and HiFi-GAN, including the SplitMix64-synthesised HiFi-GAN discriminator weights).

Importing this package is light (no torch); the kit loads on first use of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vcframe._lazy import lazy_attributes
from vcframe.testing.dummy_specs import (
    CONSTANT_SYNTHESIZER,
    DUMMY_SPECS,
    SINE_VOCODER,
    TEST_EMBEDDING,
    TEST_MEL,
    TONE_ENCODER,
)
from vcframe.testing.signals import band_noise, speech_like, tone, write_tone_corpus

_LAZY = {
    "CHECKS": "vcframe.testing.checks",
    "CHECK_NAMES": "vcframe.testing.checks",
    "CheckFailed": "vcframe.testing.checks",
    "CheckResult": "vcframe.testing.checks",
    "ConformanceError": "vcframe.testing.checks",
    "ConformanceReport": "vcframe.testing.checks",
    "check_component": "vcframe.testing.checks",
    "iter_checks": "vcframe.testing.checks",
    "parametrize_with_checks": "vcframe.testing.checks",
    "load_compact_state": "vcframe.testing.rtvc",
    "load_rtvc_state": "vcframe.testing.rtvc",
    "splitmix64_int8": "vcframe.testing.rtvc",
}

if TYPE_CHECKING:
    from vcframe.testing.checks import (
        CHECK_NAMES,
        CHECKS,
        CheckFailed,
        CheckResult,
        ConformanceError,
        ConformanceReport,
        check_component,
        iter_checks,
        parametrize_with_checks,
    )
    from vcframe.testing.rtvc import load_compact_state, load_rtvc_state, splitmix64_int8


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "CHECKS",
    "CHECK_NAMES",
    "CONSTANT_SYNTHESIZER",
    "DUMMY_SPECS",
    "SINE_VOCODER",
    "TEST_EMBEDDING",
    "TEST_MEL",
    "TONE_ENCODER",
    "CheckFailed",
    "CheckResult",
    "ConformanceError",
    "ConformanceReport",
    "check_component",
    "iter_checks",
    "load_compact_state",
    "load_rtvc_state",
    "parametrize_with_checks",
    "band_noise",
    "speech_like",
    "splitmix64_int8",
    "tone",
    "write_tone_corpus",
]
