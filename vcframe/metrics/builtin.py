"""Specs of the metrics vcframe-core ships (registered in its own pyproject under ``vcframe.metrics``).

This module imports pydantic and vcframe's spec modules only: listing metrics never loads torch,
pocketsphinx or librosa.
"""

from __future__ import annotations

from vcframe.metrics.spec import MetricColumn, MetricSpec
from vcframe.specs import API_VERSION

_STAGES = ("embed", "synthesize", "vocode")

SPEAKER_SIMILARITY = MetricSpec(
    name="speaker_similarity",
    api_version=API_VERSION,
    summary="Cosine of the judge encoder's embeddings of the reference and the output (default judge: GE2E)",
    description="judge-encoder cosine between the voice's reference clip(s) and the output; 1 = same direction",
    needs=frozenset({"reference", "generated"}),
    higher_is_better=True,
    unit="",
    factory="vcframe.metrics.speaker:SpeakerSimilarityMetric",
    license="MIT",
)

WORD_ERROR_RATE = MetricSpec(
    name="wer",
    api_version=API_VERSION,
    summary="Word error rate of the pocketsphinx transcript of the output against the text (extra: asr)",
    description="word error rate of the offline pocketsphinx transcript after text normalisation (0 = perfect)",
    needs=frozenset({"generated", "text"}),
    higher_is_better=False,
    unit="",
    factory="vcframe.metrics.asr:WordErrorRateMetric",
    extra_columns=(
        MetricColumn(
            name="words_right",
            higher_is_better=True,
            description="share of the text's words the recogniser heard, (N - S - D) / N; extra words do not count",
        ),
        MetricColumn(name="transcript", higher_is_better=None, numeric=False, description="what the recogniser heard"),
    ),
    license="MIT",
)

MEL_CEPSTRAL_DISTORTION = MetricSpec(
    name="mcd",
    api_version=API_VERSION,
    summary="Mel-cepstral distortion against a ground-truth recording, DTW-aligned (items with one only)",
    description="mel-cepstral distortion (c1-c24, DTW-aligned) against the ground-truth recording",
    needs=frozenset({"generated", "ground_truth"}),
    higher_is_better=False,
    unit="dB",
    factory="vcframe.metrics.mcd:MelCepstralDistortionMetric",
    license="MIT",
)

F0_FRAME_ERROR = MetricSpec(
    name="f0_frame_error",
    api_version=API_VERSION,
    summary="F0 frame error against a ground-truth recording, frame by frame (copy synthesis / vocoder comparisons)",
    description=(
        "share of 10 ms frames whose voicing differs from the ground-truth recording's or whose F0 is off by "
        "more than 20 %, frame by frame without alignment (for copy-synthesis / vocoder comparisons)"
    ),
    needs=frozenset({"generated", "ground_truth"}),
    higher_is_better=False,
    unit="",
    factory="vcframe.metrics.pitch:PitchErrorMetric",
    extra_columns=(
        MetricColumn(
            name="gross_pitch_error",
            higher_is_better=False,
            description="among frames voiced in both, share with F0 off by more than 20 % of the recording's",
        ),
        MetricColumn(
            name="voicing_error",
            higher_is_better=False,
            description="share of frames voiced in one of output and recording but not in the other",
        ),
        MetricColumn(
            name="f0_rmse_cents",
            unit="cents",
            higher_is_better=False,
            description="root mean square F0 difference in cents over the frames voiced in both",
        ),
    ),
    license="MIT",
)

VOICED_SHARE = MetricSpec(
    name="voiced_share",
    api_version=API_VERSION,
    summary="Share of the output's sounding 10 ms frames that pyin calls voiced (no recording needed)",
    description=(
        "share of the output's sounding frames (RMS within 35 dB of its loudest) that pyin calls voiced; compare "
        "systems on the same texts: lower = breathier, aperiodic where speech is voiced"
    ),
    needs=frozenset({"generated"}),
    higher_is_better=None,
    unit="",
    factory="vcframe.metrics.pitch:VoicedShareMetric",
    license="MIT",
)

REAL_TIME_FACTOR = MetricSpec(
    name="rtf",
    api_version=API_VERSION,
    summary="Real-time factor: seconds of computation per second of output, in total and per stage",
    description="wall-clock seconds per second of output, all stages (below 1 = faster than real time)",
    needs=frozenset({"measurements"}),
    higher_is_better=False,
    unit="x",
    factory="vcframe.metrics.resources:RealTimeFactorMetric",
    extra_columns=tuple(
        MetricColumn(name=f"rtf_{stage}", unit="x", higher_is_better=False, description=f"real-time factor of {stage}")
        for stage in _STAGES
    ),
    license="MIT",
)

PEAK_MEMORY = MetricSpec(
    name="peak_memory",
    api_version=API_VERSION,
    summary="Peak extra resident memory of each stage (Linux VmHWM reset per stage), in MiB",
    description="largest extra resident memory any stage needed on top of what was loaded before it",
    needs=frozenset({"measurements"}),
    higher_is_better=False,
    unit="MiB",
    factory="vcframe.metrics.resources:PeakMemoryMetric",
    extra_columns=(
        *(
            MetricColumn(
                name=f"peak_memory_{stage}",
                unit="MiB",
                higher_is_better=False,
                description=f"extra resident memory at the peak of {stage}",
            )
            for stage in _STAGES
        ),
        MetricColumn(
            name="peak_rss",
            unit="MiB",
            higher_is_better=None,
            description="peak resident size of the worker process (includes every model it holds)",
        ),
    ),
    license="MIT",
)

BUILTIN_METRICS = (
    SPEAKER_SIMILARITY,
    WORD_ERROR_RATE,
    MEL_CEPSTRAL_DISTORTION,
    F0_FRAME_ERROR,
    VOICED_SHARE,
    REAL_TIME_FACTOR,
    PEAK_MEMORY,
)
