"""The metric functions (known values on constructed inputs), StageMeter, and metric plugin discovery."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests._fake_dist import install_fake_distribution
from vcframe.errors import InputError, PluginError
from vcframe.metrics import MetricInputs, MetricResult
from vcframe.metrics.asr import normalize_transcript, word_error_rate, word_errors
from vcframe.metrics.mcd import mel_cepstral_distortion
from vcframe.metrics.pitch import PitchErrorMetric, VoicedShareMetric, pitch_errors, voiced_share
from vcframe.metrics.registry import MetricRegistry, use_metric_registry
from vcframe.metrics.resources import PeakMemoryMetric, RealTimeFactorMetric, StageMeter
from vcframe.metrics.speaker import cosine_similarity
from vcframe.metrics.spec import NoOptions
from vcframe.metrics.stats import mean_confidence_interval, paired_ratio_difference

PANGRAM = "The quick brown fox jumps over the lazy dog."


def _flite(tmp_path: Path, text: str, voice: str = "slt", name: str = "flite.wav") -> Path:
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (Debian: apt-get install flite); it makes the known-transcript speech")
    path = tmp_path / name
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True, timeout=60)
    return path


# -- text normalisation and WER -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("Hello, World!", "hello world"),
        ("Dr. Smith paid $3.50 -- in 1999.", "doctor smith paid three dollars fifty cents in nineteen ninety nine"),
        ("It's twenty-one o'clock; 'quoted' words.", "it's twenty one o'clock quoted words"),
        ("I have 21 cats & 2 dogs", "i have twenty one cats and two dogs"),
        ("Café déjà vu", "cafe deja vu"),
    ],
)
def test_transcript_normalisation(text: str, normalized: str) -> None:
    assert normalize_transcript(text) == normalized


def test_word_errors_count_each_operation() -> None:
    errors = word_errors("the cat sat on the mat", "the cat sat on a mat")
    assert (errors.substitutions, errors.deletions, errors.insertions, errors.reference_words) == (1, 0, 0, 6)
    errors = word_errors("the cat sat on the mat", "the cat on the mat")
    assert (errors.substitutions, errors.deletions, errors.insertions) == (0, 1, 0)
    errors = word_errors("the cat sat", "the big cat sat down")
    assert (errors.substitutions, errors.deletions, errors.insertions) == (0, 0, 2)
    assert word_error_rate("the cat sat", "the big cat sat down") == pytest.approx(2 / 3)
    assert word_error_rate("one two", "") == 1.0


def test_hits_count_words_heard_right_whatever_the_extra_words() -> None:
    # two outputs with about the same WER: one the recogniser hears nothing in, one with some right words
    silent = word_errors("the cat sat on the mat", "")
    wordy = word_errors("the cat sat on the mat", "a cat that sat upon the map and")
    assert silent.rate == 1.0 and wordy.rate == pytest.approx(5 / 6)
    assert silent.hits == 0 and wordy.hits == 3  # cat, sat, the
    assert word_errors("the cat sat", "the big cat sat down").hits == 3


def test_word_error_rate_is_zero_across_spelling_of_numbers_and_punctuation() -> None:
    assert word_error_rate("In 1984, he paid $10!", "in nineteen eighty four he paid ten dollars") == 0.0
    with pytest.raises(InputError, match="no words"):
        word_error_rate("?!", "anything")


def test_known_transcript_of_clean_speech_has_zero_wer(tmp_path: Path) -> None:
    pytest.importorskip("pocketsphinx", reason="the recogniser needs pip install 'vcframe-core[asr]'")
    from vcframe.metrics.asr import Recognizer

    speech = _flite(tmp_path, PANGRAM)
    recognizer = Recognizer()
    transcript = recognizer.transcribe(speech)
    assert word_error_rate(PANGRAM, transcript) == 0.0, transcript
    # the same audio at another rate (resampled to 16 kHz inside) is heard the same
    samples, rate = soundfile.read(speech, dtype="float32")
    import librosa

    upsampled = librosa.resample(samples, orig_sr=rate, target_sr=22050)
    assert recognizer.transcribe(upsampled, sample_rate=22050) == transcript
    # and the metric object reports the transcript next to the rate
    from vcframe.audio import load_audio
    from vcframe.metrics.asr import WordErrorRateMetric

    result = WordErrorRateMetric(NoOptions(), None).compute(MetricInputs(text=PANGRAM, generated=load_audio(speech)))
    assert result.values == {"wer": 0.0, "words_right": 1.0, "transcript": transcript}
    # timed words: the same words in order, within the clip, ascending, confident on clean speech
    heard = recognizer.timed_words(speech)
    assert " ".join(item.text for item in heard if item.is_word) == transcript
    duration = len(samples) / rate
    assert all(0.0 <= item.start < item.end <= duration + 0.02 for item in heard)
    assert all(first.end <= second.start + 1e-9 for first, second in itertools.pairwise(heard))
    assert all(0.0 <= item.confidence <= 1.0 for item in heard)
    assert sum(item.confidence for item in heard if item.is_word) / len(transcript.split()) > 0.5


def test_transcripts_do_not_depend_on_the_previous_utterance() -> None:
    pytest.importorskip("pocketsphinx", reason="the recogniser needs pip install 'vcframe-core[asr]'")
    from vcframe.audio import load_audio
    from vcframe.metrics.asr import Recognizer

    voices = Path(__file__).resolve().parents[1] / "registry" / "voices"
    if not (voices / "duncan.flac").is_file():
        pytest.skip("the shipped sample voices are missing")
    # 2 s of voices pocketsphinx finds hard: without a front-end reset, duncan after angus or clara is heard
    # differently than alone (measured with pocketsphinx 5.1.1)
    clips = {name: load_audio(voices / f"{name}.flac").item(0)[:32000] for name in ("angus", "clara", "duncan")}
    alone = Recognizer().transcribe(clips["duncan"], sample_rate=16000)
    shared = Recognizer()
    for before in ("angus", "clara"):
        shared.transcribe(clips[before], sample_rate=16000)
        assert shared.transcribe(clips["duncan"], sample_rate=16000) == alone


# -- speaker similarity -------------------------------------------------------------------------------


def test_cosine_similarity_known_values() -> None:
    assert cosine_similarity([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert cosine_similarity([1, 0], [0, 5]) == pytest.approx(0.0)
    assert cosine_similarity([1, 0], [-3, 0]) == pytest.approx(-1.0)
    with pytest.raises(InputError, match="zero"):
        cosine_similarity([0, 0], [1, 0])
    with pytest.raises(InputError, match="sizes 2 and 3"):
        cosine_similarity([1, 0], [1, 0, 0])


def test_identical_audio_has_similarity_one_under_the_ge2e_judge(tmp_path: Path) -> None:
    from vcframe.audio import load_audio
    from vcframe.metrics.context import MetricContext
    from vcframe.metrics.speaker import SpeakerJudge, SpeakerSimilarityMetric, speaker_similarity

    first = _flite(tmp_path, PANGRAM, "slt", "slt.wav")
    other = _flite(tmp_path, PANGRAM, "rms", "rms.wav")
    judge = SpeakerJudge("ge2e", device="cpu")  # the pretrained resemblyzer weights
    assert speaker_similarity(first, first, judge=judge) == pytest.approx(1.0, abs=1e-6)
    assert speaker_similarity(first, load_audio(first), judge=judge) == pytest.approx(1.0, abs=1e-6)
    different = speaker_similarity(first, other, judge=judge)
    assert different < 0.9  # a female and a male flite voice
    metric = SpeakerSimilarityMetric(NoOptions(), MetricContext(device="cpu"))
    metric.context._judge = judge
    result = metric.compute(MetricInputs(text="", generated=load_audio(first), references=(first,)))
    assert result.values["speaker_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert len(result.vectors["reference_embedding"]) == 256


# -- mel-cepstral distortion --------------------------------------------------------------------------


def test_mcd_is_zero_for_identical_audio_and_grows_with_distortion(speech_like_wav) -> None:
    clip = speech_like_wav(seconds=1.5)
    samples, rate = soundfile.read(clip, dtype="float32")
    assert mel_cepstral_distortion(clip, clip) == 0.0
    # DTW and silence trimming absorb a delay: the same speech after 0.3 s of silence is (almost) identical
    delayed = np.concatenate([np.zeros(int(0.3 * rate), dtype=np.float32), samples])
    assert mel_cepstral_distortion(samples, delayed, sample_rate=rate) < 0.5
    noise = np.random.default_rng(0).standard_normal(samples.size).astype(np.float32)
    slightly = mel_cepstral_distortion(samples, samples + 0.003 * noise, sample_rate=rate)
    heavily = mel_cepstral_distortion(samples, samples + 0.05 * noise, sample_rate=rate)
    assert 0 < slightly < heavily


def test_mcd_of_two_voices_saying_the_same_text(tmp_path: Path) -> None:
    first = _flite(tmp_path, PANGRAM, "slt", "slt.wav")
    other = _flite(tmp_path, PANGRAM, "rms", "rms.wav")
    assert mel_cepstral_distortion(first, first) == 0.0
    assert 3.0 < mel_cepstral_distortion(first, other) < 20.0


# -- pitch errors -------------------------------------------------------------------------------------

TONE_RATE = 16000


def _harmonic_tone(f0: float, seconds: float = 1.0) -> np.ndarray:
    """Eight harmonics of a steady ``f0`` (Hz) with 1/k amplitudes, peak about 0.3, at 16 kHz."""
    t = np.arange(int(seconds * TONE_RATE)) / TONE_RATE
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 9))
    return (0.3 * tone / np.abs(tone).max()).astype(np.float32)


def test_pitch_errors_are_zero_for_identical_audio() -> None:
    tone = _harmonic_tone(200.0)
    errors = pitch_errors(tone, tone, sample_rate=TONE_RATE)
    assert errors.frames == 1 + tone.size // 160  # 10 ms frames, centred
    assert errors.voiced_both > 0.9 * errors.frames  # a steady tone is voiced throughout
    assert (errors.voicing_error, errors.gross_pitch_error, errors.f0_frame_error) == (0.0, 0.0, 0.0)
    assert (errors.median_abs_cents, errors.rmse_cents) == (0.0, 0.0)


def test_an_octave_down_is_a_gross_error_of_1200_cents() -> None:
    errors = pitch_errors(_harmonic_tone(200.0), _harmonic_tone(100.0), sample_rate=TONE_RATE)
    assert errors.voiced_both > 0.9 * errors.frames
    assert errors.gross_pitch_error is not None and errors.gross_pitch_error > 0.95
    assert errors.median_abs_cents == pytest.approx(1200.0, abs=30.0)
    assert errors.f0_frame_error > 0.95


def test_noise_against_a_voiced_tone_is_a_voicing_error() -> None:
    tone = _harmonic_tone(150.0)
    noise = 0.1 * np.random.default_rng(0).standard_normal(tone.size).astype(np.float32)
    errors = pitch_errors(tone, noise, sample_rate=TONE_RATE)
    assert errors.voicing_error > 0.8
    assert errors.f0_frame_error >= errors.voicing_error


def test_pitch_errors_refuse_audio_shorter_than_a_frame() -> None:
    with pytest.raises(InputError, match="too short to track F0"):
        pitch_errors(_harmonic_tone(200.0, seconds=0.05), _harmonic_tone(200.0), sample_rate=TONE_RATE)


def test_f0_frame_error_metric_is_builtin_and_scores_two_files(speech_like_wav) -> None:
    from vcframe.audio import load_audio
    from vcframe.metrics.registry import build_metric

    spec = MetricRegistry.from_entry_points().get("f0_frame_error")
    assert [column.name for column in spec.columns] == [
        "f0_frame_error",
        "gross_pitch_error",
        "voicing_error",
        "f0_rmse_cents",
    ]
    metric = build_metric(spec, None, None)
    assert isinstance(metric, PitchErrorMetric)
    truth = speech_like_wav("truth.wav", seconds=1.0, f0=120.0)
    higher = speech_like_wav("higher.wav", seconds=1.0, f0=240.0, sample_rate=22050)
    same = metric.compute(MetricInputs(text="", generated=load_audio(truth), ground_truth=truth))
    assert same.values == {"f0_frame_error": 0.0, "gross_pitch_error": 0.0, "voicing_error": 0.0, "f0_rmse_cents": 0.0}
    octave = metric.compute(MetricInputs(text="", generated=load_audio(higher), ground_truth=truth)).values
    assert octave["gross_pitch_error"] is not None and octave["gross_pitch_error"] > 0.9
    assert octave["f0_rmse_cents"] == pytest.approx(1200.0, abs=100.0)
    missing = metric.compute(MetricInputs(text="", generated=load_audio(truth)))
    assert missing.note == "no ground-truth recording" and missing.values["f0_frame_error"] is None
    # text-to-speech output of another length is not frame-aligned: no numbers, a note saying why
    longer = speech_like_wav("longer.wav", seconds=1.5, f0=120.0)
    unaligned = metric.compute(MetricInputs(text="", generated=load_audio(longer), ground_truth=truth))
    assert unaligned.values["f0_frame_error"] is None
    assert unaligned.note is not None and "copy synthesis" in unaligned.note and "1.50 s" in unaligned.note


def test_voiced_share_counts_voiced_frames_among_sounding_ones() -> None:
    tone = _harmonic_tone(150.0)
    noise = 0.1 * np.random.default_rng(0).standard_normal(tone.size).astype(np.float32)
    assert voiced_share(tone, TONE_RATE) > 0.95
    assert voiced_share(noise, TONE_RATE) < 0.1
    # half periodic, half aperiodic at the same level: about half
    half = np.concatenate([tone, 0.3 * noise / np.abs(noise).max()])
    assert 0.35 < voiced_share(half, TONE_RATE) < 0.65
    # pauses (and hiss 50 dB down in them) do not count: the tone between them is still voiced throughout
    pause = 1e-3 * noise[: TONE_RATE // 2]
    assert voiced_share(np.concatenate([pause, tone, pause]), TONE_RATE) > 0.9
    assert voiced_share(np.zeros(TONE_RATE, dtype=np.float32), TONE_RATE) is None
    # a Waveform at another rate is resampled to 16 kHz first
    from vcframe.audio import resample
    from vcframe.types import Waveform

    assert voiced_share(Waveform.from_numpy(resample(tone, TONE_RATE, 22050), 22050)) > 0.95


def test_voiced_share_metric_is_builtin_and_needs_no_recording(speech_like_wav) -> None:
    from vcframe.audio import load_audio
    from vcframe.metrics.registry import build_metric

    spec = MetricRegistry.from_entry_points().get("voiced_share")
    assert spec.needs == frozenset({"generated"}) and spec.higher_is_better is None
    metric = build_metric(spec, None, None)
    assert isinstance(metric, VoicedShareMetric)
    tone = speech_like_wav("tone.wav", seconds=1.0, f0=120.0)
    result = metric.compute(MetricInputs(text="", generated=load_audio(tone)))
    assert result.values["voiced_share"] is not None and result.values["voiced_share"] > 0.8
    from vcframe.types import Waveform

    silent = metric.compute(MetricInputs(text="", generated=Waveform.from_numpy(np.zeros(16000), 16000)))
    assert silent.values == {"voiced_share": None} and silent.note == "silent output"
    short = metric.compute(MetricInputs(text="", generated=Waveform.from_numpy(np.ones(100) * 0.1, 16000)))
    assert short.values == {"voiced_share": None} and short.note is not None and "shorter" in short.note
    assert metric.compute(MetricInputs(text="")).note == "no output"


# -- resources ----------------------------------------------------------------------------------------


def test_rtf_and_peak_memory_from_measurements() -> None:
    measurements = {
        "stages": {
            "embed": {"seconds": 0.5, "peak_rss_mb": 500.0, "peak_extra_mb": 10.0},
            "synthesize": {"seconds": 2.0, "peak_rss_mb": 700.0, "peak_extra_mb": 150.0},
            "vocode": {"seconds": 1.5, "peak_rss_mb": 650.0, "peak_extra_mb": 80.0},
        },
        "audio_seconds": 2.0,
    }
    inputs = MetricInputs(text="x", measurements=measurements)
    rtf = RealTimeFactorMetric(NoOptions(), None).compute(inputs).values
    assert rtf == {"rtf": 2.0, "rtf_embed": 0.25, "rtf_synthesize": 1.0, "rtf_vocode": 0.75}
    memory = PeakMemoryMetric(NoOptions(), None).compute(inputs).values
    assert memory["peak_memory"] == 150.0 and memory["peak_memory_vocode"] == 80.0 and memory["peak_rss"] == 700.0
    assert RealTimeFactorMetric(NoOptions(), None).compute(MetricInputs(text="x")).values["rtf"] is None


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="per-stage peaks need Linux /proc")
def test_stage_meter_charges_time_and_memory_to_the_stage() -> None:
    import gc
    import time

    gc.collect()  # in a long test run, garbage collected mid-stage would lower the resident set under the block
    gc.disable()
    try:
        meter = StageMeter()
        with meter:
            time.sleep(0.05)  # embed
            meter("synthesize", 0, 1)
            block = np.ones(60 * 1024 * 1024 // 8)  # 60 MiB touched
            del block
            meter("vocode", 0, 1)
            time.sleep(0.02)
    finally:
        gc.enable()
    stages = meter.measurements
    assert list(stages) == ["embed", "synthesize", "vocode"]
    assert stages["embed"]["seconds"] >= 0.05 and stages["vocode"]["seconds"] >= 0.02
    assert stages["synthesize"]["peak_extra_mb"] > 50
    assert stages["vocode"]["peak_extra_mb"] < 20  # the block was freed before vocode began
    assert meter.method == "vmhwm-reset"


def test_mean_confidence_interval_known_values() -> None:
    interval = mean_confidence_interval([1, 2, 3, 4, 5, None, float("nan")])
    assert interval is not None and interval.n == 5 and interval.mean == 3.0
    # t(0.975, 4) = 2.776445, s = sqrt(2.5)
    assert interval.half_width == pytest.approx(2.776445 * np.sqrt(2.5) / np.sqrt(5), rel=1e-5)
    single = mean_confidence_interval([0.7])
    assert single is not None and single.mean == 0.7 and single.low is None
    assert mean_confidence_interval([None]) is None


def test_paired_ratio_difference_pools_pairs_and_bounds_the_difference() -> None:
    # words heard right of 3 sentences, 4 words each: A hears 1, 2, 3; B hears 2, 2, 4
    paired = paired_ratio_difference([1, 2, 3], [2, 2, 4], [4, 4, 4], resamples=2000, seed=3)
    assert paired.difference == pytest.approx(2 / 12)
    assert (paired.n, paired.better, paired.worse) == (3, 2, 0)
    assert 0.0 <= paired.low <= paired.difference <= paired.high <= 2 / 4  # B is never worse on any item
    assert paired == paired_ratio_difference([1, 2, 3], [2, 2, 4], [4, 4, 4], resamples=2000, seed=3)
    swapped = paired_ratio_difference([2, 2, 4], [1, 2, 3], [4, 4, 4], resamples=2000, seed=3)
    assert swapped.difference == pytest.approx(-paired.difference)
    assert (swapped.low, swapped.high) == pytest.approx((-paired.high, -paired.low))
    assert (swapped.better, swapped.worse) == (0, 2)


def test_paired_ratio_difference_interval_spans_zero_when_systems_trade_items() -> None:
    paired = paired_ratio_difference([3, 0, 3, 0, 3, 0], [0, 3, 0, 3, 0, 3], [3] * 6, resamples=4000)
    assert paired.difference == 0.0 and paired.better == paired.worse == 3
    assert paired.low < -0.2 and paired.high > 0.2
    same = paired_ratio_difference([1, 2], [1, 2], [2, 2])
    assert (same.difference, same.low, same.high, same.better, same.worse) == (0.0, 0.0, 0.0, 0, 0)


@pytest.mark.parametrize(
    ("a", "b", "d", "message"),
    [([1], [1, 2], [2, 2], "line up"), ([], [], [], "no paired items"), ([0, 0], [0, 0], [0, 0], "sum to zero")],
)
def test_paired_ratio_difference_refuses_what_cannot_pair(a: list, b: list, d: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_ratio_difference(a, b, d)


# -- discovery ----------------------------------------------------------------------------------------

DURATION_METRIC = """
from vcframe.metrics.spec import MetricSpec
SPEC = MetricSpec(
    name="{name}", api_version="{api}", summary="seconds of output", needs=frozenset({{"generated"}}),
    higher_is_better=None, unit="s", factory="{module}_code:Duration",
)
"""
DURATION_CODE = """
from vcframe.metrics.spec import MetricResult
class Duration:
    def __init__(self, config, context):
        self.config = config
    def compute(self, inputs):
        return {{"{name}": inputs.generated.durations[0]}}
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.delenv("VCFRAME_DISABLE_PLUGINS", raising=False)
    yield folder
    sys.path[:] = [p for p in sys.path if p != str(folder)]
    for name in [m for m in sys.modules if m.startswith("thirdmetric")]:
        del sys.modules[name]


def _metric(site: Path, distribution: str, name: str, module: str, api: str = "1.0") -> None:
    install_fake_distribution(
        site,
        distribution,
        {
            module: DURATION_METRIC.format(name=name, api=api, module=module),
            f"{module}_code": DURATION_CODE.format(name=name),
        },
        {"vcframe.metrics": {name: f"{module}:SPEC"}},
    )


def test_builtin_metrics_are_discovered() -> None:
    registry = MetricRegistry.from_entry_points()
    names = {row.name for row in registry if row.ok and row.distribution == "vcframe-core"}
    assert names == {"speaker_similarity", "wer", "mcd", "f0_frame_error", "voiced_share", "rtf", "peak_memory"}
    assert [column.name for column in registry.get("wer").columns] == ["wer", "words_right", "transcript"]


def test_broken_metric_costs_one_error_row(site: Path) -> None:
    _metric(site, "thirdmetric-good", "duration", "thirdmetric_good")
    install_fake_distribution(
        site,
        "thirdmetric-broken",
        {"thirdmetric_broken": "raise RuntimeError('boom')"},
        {"vcframe.metrics": {"mos": "thirdmetric_broken:SPEC"}},
    )
    install_fake_distribution(
        site,
        "thirdmetric-notspec",
        {"thirdmetric_notspec": "SPEC = 42"},
        {"vcframe.metrics": {"notspec": "thirdmetric_notspec:SPEC"}},
    )
    _metric(site, "thirdmetric-future", "future", "thirdmetric_future", api="9.0")
    registry = MetricRegistry.from_entry_points()
    broken = registry.row("mos")
    assert broken.status == "error" and "RuntimeError: boom" in (broken.error or "")
    assert "--disable mos" in (broken.hint or "")
    assert "not a vcframe MetricSpec" in (registry.row("notspec").error or "")
    assert "API 9.x" in (registry.row("future").error or "")
    assert registry.row("duration").ok and registry.row("wer").ok  # the others still load
    available = {spec.name for spec in registry.available()}
    assert "duration" in available and not available & {"mos", "notspec", "future"}
    with pytest.raises(PluginError, match="is broken: RuntimeError: boom"):
        registry.get("mos")
    errors = [row for row in registry if row.status == "error"]
    assert len(errors) == 3


def test_metrics_disabled_and_duplicates(site: Path, monkeypatch) -> None:
    _metric(site, "thirdmetric-a", "twin", "thirdmetric_a")
    _metric(site, "thirdmetric-b", "twin", "thirdmetric_b")
    registry = MetricRegistry.from_entry_points()
    assert [row.distribution for row in registry.duplicates()["twin"]] == ["thirdmetric-a", "thirdmetric-b"]
    with pytest.raises(PluginError, match="thirdmetric-a:twin, thirdmetric-b:twin"):
        registry.get("twin")
    assert registry.get("thirdmetric-b:twin").factory == "thirdmetric_b_code:Duration"
    assert "twin" not in {spec.name for spec in registry.available()}
    monkeypatch.setenv("VCFRAME_DISABLE_PLUGINS", "thirdmetric-a:twin,mcd")
    registry = MetricRegistry.from_entry_points()
    assert registry.row("mcd").disabled and registry.row("thirdmetric-a:twin").disabled
    assert registry.get("twin").factory == "thirdmetric_b_code:Duration"


def test_metrics_list_command_shows_error_rows_without_importing_torch(site: Path) -> None:
    install_fake_distribution(
        site,
        "thirdmetric-broken",
        {"thirdmetric_broken": "raise RuntimeError('boom')"},
        {"vcframe.metrics": {"mos": "thirdmetric_broken:SPEC"}},
    )
    code = (
        f"import sys, json\nsys.path.insert(0, {str(site)!r})\n"
        "from vcframe.cli import main\n"
        "try:\n    main(['metrics', 'list', '--format', 'json'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m in ('torch', 'pocketsphinx', 'librosa'))\n"
        "print('HEAVY', json.dumps(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    listing, heavy = result.stdout.rsplit("HEAVY", 1)
    assert json.loads(heavy) == []
    rows = {row["name"]: row for row in json.loads(listing)["metrics"]}
    assert rows["mos"]["status"] == "error" and "boom" in rows["mos"]["error"]
    assert rows["wer"]["status"] == "ok" and rows["wer"]["columns"] == ["wer", "words_right", "transcript"]


def test_isolated_metric_registry_is_used_by_default() -> None:
    from vcframe.metrics.builtin import REAL_TIME_FACTOR
    from vcframe.metrics.registry import default_metric_registry

    registry = MetricRegistry()
    registry.register(REAL_TIME_FACTOR)
    previous = use_metric_registry(registry)
    try:
        assert [spec.name for spec in default_metric_registry().available()] == ["rtf"]
    finally:
        use_metric_registry(previous)
    assert isinstance(MetricResult({"x": 1.0}).values, dict)
