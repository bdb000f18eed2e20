"""Metrics for comparing voice-cloning systems, and the ``vcframe.metrics`` plugin group.

Reusable functions (import them directly; heavy dependencies load on first use):

* :func:`speaker_similarity`, :class:`SpeakerJudge`, :func:`cosine_similarity` (``vcframe.metrics.speaker``)
* :func:`word_error_rate`, :func:`word_errors`, :func:`normalize_transcript`, :class:`Recognizer` (``transcribe``,
  and ``timed_words``: each word's time span and confidence), :class:`HeardWord` (``vcframe.metrics.asr``; the
  recogniser needs ``pip install 'vcframe-core[asr]'``)
* :func:`mel_cepstral_distortion`, :func:`mel_cepstrum` (``vcframe.metrics.mcd``)
* :func:`pitch_errors`, :func:`track_f0`, :func:`compare_f0_tracks`, :class:`PitchErrors` (``vcframe.metrics.pitch``):
  F0 frame, gross pitch and voicing errors against a frame-aligned recording (copy synthesis); :func:`voiced_share`
  (same module): the share of an output's sounding frames that are voiced, no recording needed
* :class:`StageMeter` (``vcframe.metrics.resources``): seconds and peak memory of each pipeline stage
* :func:`mean_confidence_interval`, :func:`paired_ratio_difference` (``vcframe.metrics.stats``)

Metric plugins: an entry point in the group ``vcframe.metrics`` pointing at a :class:`MetricSpec`
(pydantic only, no torch), whose ``factory`` builds an object with ``compute(MetricInputs) -> MetricResult``.
Discovery follows the component rules (:mod:`vcframe.metrics.registry`). See docs/compare.md.

Importing this package is cheap: only the spec classes load eagerly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vcframe._lazy import lazy_attributes
from vcframe.metrics.spec import NEEDS, MetricColumn, MetricInputs, MetricResult, MetricSpec, NoOptions

_LAZY = {
    "MetricContext": "vcframe.metrics.context",
    "MetricRegistry": "vcframe.metrics.registry",
    "MetricRow": "vcframe.metrics.registry",
    "default_metric_registry": "vcframe.metrics.registry",
    "use_metric_registry": "vcframe.metrics.registry",
    "build_metric": "vcframe.metrics.registry",
    "SpeakerJudge": "vcframe.metrics.speaker",
    "cosine_similarity": "vcframe.metrics.speaker",
    "speaker_similarity": "vcframe.metrics.speaker",
    "HeardWord": "vcframe.metrics.asr",
    "Recognizer": "vcframe.metrics.asr",
    "WordErrors": "vcframe.metrics.asr",
    "normalize_transcript": "vcframe.metrics.asr",
    "word_errors": "vcframe.metrics.asr",
    "word_error_rate": "vcframe.metrics.asr",
    "mel_cepstral_distortion": "vcframe.metrics.mcd",
    "mel_cepstrum": "vcframe.metrics.mcd",
    "PitchErrors": "vcframe.metrics.pitch",
    "compare_f0_tracks": "vcframe.metrics.pitch",
    "pitch_errors": "vcframe.metrics.pitch",
    "track_f0": "vcframe.metrics.pitch",
    "voiced_share": "vcframe.metrics.pitch",
    "StageMeter": "vcframe.metrics.resources",
    "MeanInterval": "vcframe.metrics.stats",
    "mean_confidence_interval": "vcframe.metrics.stats",
    "PairedDifference": "vcframe.metrics.stats",
    "paired_ratio_difference": "vcframe.metrics.stats",
}

if TYPE_CHECKING:
    from vcframe.metrics.asr import (
        HeardWord,
        Recognizer,
        WordErrors,
        normalize_transcript,
        word_error_rate,
        word_errors,
    )
    from vcframe.metrics.context import MetricContext
    from vcframe.metrics.mcd import mel_cepstral_distortion, mel_cepstrum
    from vcframe.metrics.pitch import PitchErrors, compare_f0_tracks, pitch_errors, track_f0, voiced_share
    from vcframe.metrics.registry import (
        MetricRegistry,
        MetricRow,
        build_metric,
        default_metric_registry,
        use_metric_registry,
    )
    from vcframe.metrics.resources import StageMeter
    from vcframe.metrics.speaker import SpeakerJudge, cosine_similarity, speaker_similarity
    from vcframe.metrics.stats import MeanInterval, PairedDifference, mean_confidence_interval, paired_ratio_difference


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "MeanInterval",
    "MetricColumn",
    "MetricContext",
    "MetricInputs",
    "MetricRegistry",
    "MetricResult",
    "MetricRow",
    "MetricSpec",
    "NEEDS",
    "NoOptions",
    "PairedDifference",
    "PitchErrors",
    "Recognizer",
    "SpeakerJudge",
    "StageMeter",
    "WordErrors",
    "HeardWord",
    "build_metric",
    "compare_f0_tracks",
    "cosine_similarity",
    "default_metric_registry",
    "mean_confidence_interval",
    "mel_cepstral_distortion",
    "mel_cepstrum",
    "normalize_transcript",
    "paired_ratio_difference",
    "pitch_errors",
    "speaker_similarity",
    "track_f0",
    "use_metric_registry",
    "voiced_share",
    "word_error_rate",
    "word_errors",
]
