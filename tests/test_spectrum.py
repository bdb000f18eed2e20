"""Spectrum matching (vcframe.spectrum): what it changes and what it leaves, its refusals, and the pipeline's
``match_spectrum`` setting through Python and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests._cli import DUMMIES, one_line_error
from vcframe.config import Settings
from vcframe.errors import InputError
from vcframe.pipeline import Pipeline
from vcframe.specs import RTVC_SYNTHESIZER_MEL, MelSpec
from vcframe.spectrum import decibels_per_unit, long_term_spectrum, match_spectrum, speech_weights
from vcframe.types import Mel

SPEC = RTVC_SYNTHESIZER_MEL
SILENCE = SPEC.silence_value


def speech_mel(envelope: np.ndarray, frames: int = 40, silent: int = 10) -> np.ndarray:
    """``frames`` loud frames of ``envelope`` (n_mels,) between ``silent`` silent frames on each side."""
    loud = np.repeat(envelope[:, None], frames, axis=1)
    quiet = np.full((SPEC.n_mels, silent), SILENCE)
    return np.concatenate([quiet, loud, quiet], axis=1).astype(np.float32)


def tilt(start: float, stop: float) -> np.ndarray:
    return np.linspace(start, stop, SPEC.n_mels)


def test_speech_weights_ignore_silence_and_count_loud_frames_fully() -> None:
    weights = speech_weights(speech_mel(tilt(1.0, -1.0)), SILENCE)
    assert weights[:10].max() == 0.0 and weights[-10:].max() == 0.0
    np.testing.assert_allclose(weights[10:50], 1.0)
    assert speech_weights(np.full((SPEC.n_mels, 5), SILENCE), SILENCE).sum() == 0.0


def test_long_term_spectrum_is_the_speech_frames_mean_over_clips() -> None:
    first, second = tilt(1.0, -1.0), tilt(-1.0, 1.0)
    spectrum = long_term_spectrum([speech_mel(first), speech_mel(second, frames=40)], SPEC)
    np.testing.assert_allclose(spectrum, (first + second) / 2, atol=1e-6)


def test_matching_at_strength_one_takes_on_a_smooth_reference_spectrum() -> None:
    reference = tilt(0.5, -2.0)  # a linear tilt: band smoothing leaves it as it is but for the edge bands
    synthesized = Mel.from_numpy([speech_mel(tilt(-0.5, 0.5))], SPEC)
    matched, gains = match_spectrum(synthesized, reference, 1.0)
    values = matched.item(0)
    spectrum = long_term_spectrum([values], SPEC)
    np.testing.assert_allclose(spectrum[6:-6], reference[6:-6], atol=1e-5)
    np.testing.assert_allclose(spectrum, reference, atol=0.03)  # the edges extended by their nearest band
    np.testing.assert_array_equal(values[:, :10], SILENCE)  # silence stays silent
    # the mean absolute gain: |(0.5 - 2.5 x) - (-0.5 + x)| = |1 - 3.5 x| over x in [0, 1], in dB
    expected = float(np.abs(reference - tilt(-0.5, 0.5)).mean()) * decibels_per_unit(SPEC)
    assert gains == [pytest.approx(expected, rel=1e-3)]
    assert decibels_per_unit(SPEC) == 12.5


def test_half_strength_goes_half_way_and_zero_changes_nothing() -> None:
    own, reference = tilt(-0.5, 0.5), tilt(0.5, -0.5)
    synthesized = Mel.from_numpy([speech_mel(own)], SPEC)
    half, _ = match_spectrum(synthesized, reference, 0.5)
    halfway = long_term_spectrum([half.item(0)], SPEC)
    np.testing.assert_allclose(halfway[6:-6], ((own + reference) / 2)[6:-6], atol=1e-5)
    unchanged, gains = match_spectrum(synthesized, reference, 0.0)
    np.testing.assert_array_equal(unchanged.item(0), synthesized.item(0))
    assert gains == [0.0]


def test_matching_keeps_values_in_range_and_a_batch_matches_its_items_one_by_one() -> None:
    loud, quiet = speech_mel(tilt(3.5, 3.0), frames=30), speech_mel(tilt(-2.0, -3.0), frames=50)
    batch = Mel.from_numpy([loud, quiet], SPEC)
    reference = np.full(SPEC.n_mels, 3.9)
    matched, gains = match_spectrum(batch, reference, 2.0)
    assert matched.frames.max() <= SPEC.max_abs_value and matched.frames.min() >= SILENCE
    assert matched.lengths.tolist() == batch.lengths.tolist()
    for index, item in enumerate([loud, quiet]):
        alone, alone_gains = match_spectrum(Mel.from_numpy([item], SPEC), reference, 2.0)
        np.testing.assert_array_equal(matched.item(index), alone.item(0))
        assert gains[index] == alone_gains[0]


def test_a_silent_item_is_left_as_it_is() -> None:
    silent = Mel.from_numpy([np.full((SPEC.n_mels, 20), SILENCE, np.float32)], SPEC)
    matched, gains = match_spectrum(silent, tilt(1.0, 0.0), 1.0)
    np.testing.assert_array_equal(matched.item(0), silent.item(0))
    assert gains == [0.0]


def test_natural_log_mels_are_matched_without_an_upper_clip() -> None:
    spec = MelSpec(
        sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80, fmin=0.0, fmax=8000.0,
        center=False, pad_mode="reflect", pad_length=384, amplitude_scale="ln", normalization="none",
    )  # fmt: skip
    envelope = np.full(80, -3.0)
    mel = np.concatenate([np.full((80, 5), spec.silence_value), np.repeat(envelope[:, None], 20, axis=1)], axis=1)
    matched, gains = match_spectrum(Mel.from_numpy([mel.astype(np.float32)], spec), np.full(80, 1.0), 1.0)
    assert float(matched.frames.max()) == pytest.approx(1.0, abs=1e-5)  # above ln(1) = 0: not clipped
    assert gains[0] == pytest.approx(4.0 * 20 / np.log(10), rel=1e-5)  # 4 units of ln amplitude = 34.7 dB


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: match_spectrum(Mel.from_numpy([speech_mel(tilt(0, 0))], SPEC), np.zeros(SPEC.n_mels), 2.5),
         "between 0 and 2"),
        (lambda: match_spectrum(Mel.from_numpy([speech_mel(tilt(0, 0))], SPEC), np.zeros(40), 1.0),
         "40 bands; the mel has 80"),
        (lambda: long_term_spectrum([np.full((SPEC.n_mels, 30), SILENCE)], SPEC), "no speech above silence"),
        (lambda: long_term_spectrum([np.zeros((SPEC.n_mels, 30))], SPEC.model_copy(update={"amplitude_scale": "linear",
         "normalization": "none"})), "works on log mels"),
    ],
)  # fmt: skip
def test_bad_input_is_refused(call, needle) -> None:
    with pytest.raises(InputError, match=needle):
        call()


def test_the_pipeline_setting_matches_each_sentence_and_records_it(dummy_registry, speech_like_wav) -> None:
    clip = speech_like_wav(seconds=2.5)
    plain = Pipeline(
        "test-tone", "test-constant", "test-sine", settings=Settings(seed=0, match_spectrum=0), device="cpu"
    )
    plain_audio = plain.clone("Hello there. How are you?", clip)
    plain_mels = [mel.item(0) for mel in plain.last_mels]
    matching = Pipeline(
        "test-tone", "test-constant", "test-sine", settings=Settings(seed=0, match_spectrum=1.0), device="cpu"
    )
    matched_audio = matching.clone("Hello there. How are you?", clip)
    record = matched_audio.metadata["spectrum_match"]
    assert record["strength"] == 1.0 and len(record["gain_db"]) == 2 and min(record["gain_db"]) > 0
    assert "spectrum_match" not in plain_audio.metadata
    reference_mel = plain.last_mels[0].spec
    from vcframe.audio import mel_spectrogram, resample_waveform

    loaded = plain.load_reference(clip)
    reference = long_term_spectrum(
        [mel_spectrogram(resample_waveform(loaded, reference_mel.sample_rate).item(0), reference_mel)], reference_mel
    )
    for before, after in zip(plain_mels, [mel.item(0) for mel in matching.last_mels], strict=True):
        distance_before = np.abs(long_term_spectrum([before], reference_mel) - reference).mean()
        distance_after = np.abs(long_term_spectrum([after], reference_mel) - reference).mean()
        assert distance_after < 0.5 * distance_before
    # streaming gives the same audio as a whole run
    streamed = list(matching.stream("Hello there. How are you?", clip, overlap=False))
    whole = np.concatenate([chunk.item(0) for chunk in streamed])
    np.testing.assert_allclose(whole, matched_audio.item(0), atol=1e-6)


def test_by_default_a_clip_is_matched_at_strength_one_and_an_embedding_alone_is_not(
    dummy_registry, speech_like_wav
) -> None:
    clip = speech_like_wav(seconds=2.5)
    default = Pipeline("test-tone", "test-constant", "test-sine", settings=Settings(seed=0), device="cpu")
    explicit = Pipeline(
        "test-tone", "test-constant", "test-sine", settings=Settings(seed=0, match_spectrum=1.0), device="cpu"
    )
    matched = default.clone("Hello there.", clip)
    assert matched.metadata["spectrum_match"]["strength"] == 1.0
    np.testing.assert_array_equal(matched.item(0), explicit.clone("Hello there.", clip).item(0))
    unmatched = default.clone("Hello there.", embedding=default.embed([clip]))
    assert "spectrum_match" not in unmatched.metadata
    off = Pipeline("test-tone", "test-constant", "test-sine", settings=Settings(seed=0, match_spectrum=0), device="cpu")
    np.testing.assert_array_equal(unmatched.item(0), off.clone("Hello there.", clip).item(0))


def test_a_strength_set_explicitly_needs_a_clip_not_only_an_embedding(dummy_registry, speech_like_wav) -> None:
    pipeline = Pipeline("test-tone", "test-constant", "test-sine", settings=Settings(match_spectrum=1.0), device="cpu")
    embedding = pipeline.embed([speech_like_wav(seconds=2.5)])
    with pytest.raises(InputError, match="spectrum matching needs the reference clip, not only its embedding"):
        pipeline.clone("Hello.", embedding=embedding)


def test_run_match_spectrum_on_the_command_line(dummy_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    clip, out = speech_like_wav(seconds=2.5), tmp_path / "out.wav"
    result = vcframe_cli(
        "run", *DUMMIES, "-r", clip, "--text", "Hi there.", "--out", out, "--match-spectrum", "0.5", "--metadata"
    )
    assert result.exit_code == 0, result.stderr
    assert "spectrum matching: strength 0.5, mean gain per band" in result.stderr
    assert json.loads((tmp_path / "out.wav.json").read_text())["spectrum_match"]["strength"] == 0.5
    result = vcframe_cli("run", *DUMMIES, "-r", clip, "--text", "Hi.", "--out", out, "--match-spectrum", "3")
    assert result.exit_code == 2 and "--match-spectrum" in result.stderr


def test_run_refuses_matching_from_an_embedding_alone_in_one_line(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path
) -> None:
    clip, saved, out = speech_like_wav(seconds=2.5), tmp_path / "voice.npy", tmp_path / "out.wav"
    assert vcframe_cli("embed", "--encoder", "test-tone", "-r", clip, "--out", saved).exit_code == 0
    result = vcframe_cli("run", *DUMMIES, "--embedding", saved, "--text", "Hi.", "--out", out, "-o", "match_spectrum=1")
    one_line_error(result, "spectrum matching needs the reference clip")
    assert not out.exists()
    result = vcframe_cli("run", *DUMMIES, "--embedding", saved, "--text", "Hi.", "--out", out)  # the default
    assert result.exit_code == 0 and "spectrum matching" not in result.stderr


def test_the_default_leaves_a_linear_mel_alone_and_an_explicit_strength_refuses_it(
    dummy_registry, speech_like_wav
) -> None:
    linear = MelSpec(
        sample_rate=16000, n_fft=256, win_length=256, hop_length=64, n_mels=20, fmin=50.0, fmax=7000.0,
        amplitude_scale="linear", normalization="none",
    )  # fmt: skip
    options = {"synthesizer": {"mel": linear}, "vocoder": {"mel": linear}}
    clip = speech_like_wav(seconds=2.5)

    def pipeline(**settings: object) -> Pipeline:
        return Pipeline(
            "test-tone", "test-constant", "test-sine", settings=Settings(seed=0, **settings), options=options,
            device="cpu",
        )  # fmt: skip

    default = pipeline().clone("Hello.", clip)
    assert "spectrum_match" not in default.metadata
    np.testing.assert_array_equal(default.item(0), pipeline(match_spectrum=0).clone("Hello.", clip).item(0))
    with pytest.raises(InputError, match="works on log mels"):
        pipeline(match_spectrum=1.0).clone("Hello.", clip)
