"""Spectrum matching (vcframe.spectrum): what it changes and what it leaves, its refusals, and the pipeline's
``match_spectrum`` setting through Python and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

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


def test_a_strength_set_explicitly_needs_a_clip_or_an_embedding_that_stores_its_spectrum(
    dummy_registry, speech_like_wav
) -> None:
    pipeline = Pipeline("test-tone", "test-constant", "test-sine", settings=Settings(match_spectrum=1.0), device="cpu")
    embedding = pipeline.embed([speech_like_wav(seconds=2.5)])  # without with_spectrum: stores none
    with pytest.raises(InputError, match="needs the reference clip, or a saved embedding that stores its spectrum"):
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
    one_line_error(result, "spectrum matching needs the reference clip", "re-create the embedding with 'vcframe embed'")
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


# -- a saved embedding stores its clips' spectrum -----------------------------------------------------------------

#: The dummy synthesizer's mel with 16 bands instead of 20, as a TOML inline table for ``-o``.
SIXTEEN_BANDS_TOML = "{sample_rate=16000, n_fft=256, win_length=256, hop_length=64, n_mels=16, fmin=50.0, fmax=7000.0}"


def dummies(**settings: object) -> Pipeline:
    return Pipeline("test-tone", "test-constant", "test-sine", settings=Settings(seed=0, **settings), device="cpu")


def test_embed_with_spectrum_stores_the_clips_spectrum_at_the_synthesizers_mel_without_building_it(
    dummy_registry, speech_like_wav, tmp_path, monkeypatch
) -> None:
    from vcframe.spectrum import STORED_SPECTRUM_KEY, clips_spectrum
    from vcframe.testing.dummy_specs import TEST_MEL
    from vcframe.types import SpeakerEmbedding

    low, high = speech_like_wav("low.wav", seconds=2.5, f0=100), speech_like_wav("high.wav", seconds=2.5, f0=220)
    embedder = Pipeline("test-tone", "test-constant", settings=Settings(), device="cpu", embedding_only=True)
    import vcframe.pipeline

    built: list[str] = []
    build = vcframe.pipeline.build_component

    def recorded_build(spec, *args, **kwargs):
        built.append(spec.kind)
        return build(spec, *args, **kwargs)

    monkeypatch.setattr(vcframe.pipeline, "build_component", recorded_build)
    embedding = embedder.embed([low, high], with_spectrum=True)
    assert built == ["encoder"]  # the synthesizer's mel spec came from its spec, not from its weights
    stored = embedding.metadata[STORED_SPECTRUM_KEY]
    assert stored["mel_spec"] == TEST_MEL.model_dump(mode="json") and stored["clips"] == 2
    clips = [embedder.load_reference(low), embedder.load_reference(high)]
    np.testing.assert_allclose(stored["bands"], clips_spectrum(clips, TEST_MEL), rtol=0, atol=1e-12)
    assert STORED_SPECTRUM_KEY not in embedder.embed([low]).metadata  # only when asked
    embedding.save(str(tmp_path / "voice.npy"))
    assert SpeakerEmbedding.load(str(tmp_path / "voice.npy")).metadata[STORED_SPECTRUM_KEY] == stored


def test_a_run_from_a_stored_spectrum_is_matched_as_a_run_with_the_clips(dummy_registry, speech_like_wav) -> None:
    low, high = speech_like_wav("low.wav", seconds=2.5, f0=100), speech_like_wav("high.wav", seconds=2.5, f0=220)
    text = "Hello there. How are you?"
    embedder = Pipeline("test-tone", "test-constant", settings=Settings(), device="cpu", embedding_only=True)
    embedding = embedder.embed([low, high], with_spectrum=True)
    for strength in (None, 0.5):
        from_embedding, from_clips = dummies(match_spectrum=strength), dummies(match_spectrum=strength)
        by_embedding = from_embedding.clone(text, embedding=embedding)
        by_clips = from_clips.clone(text, [low, high])
        for mine, theirs in zip(from_embedding.last_mels, from_clips.last_mels, strict=True):
            np.testing.assert_allclose(mine.item(0), theirs.item(0), rtol=0, atol=1e-5)
        np.testing.assert_allclose(by_embedding.item(0), by_clips.item(0), rtol=0, atol=1e-5)
        record, theirs_record = by_embedding.metadata["spectrum_match"], by_clips.metadata["spectrum_match"]
        assert record["source"] == "embedding" and theirs_record["source"] == "clip"
        assert record["strength"] == theirs_record["strength"] == (1.0 if strength is None else strength)
        np.testing.assert_allclose(record["gain_db"], theirs_record["gain_db"], rtol=1e-6)
    unmatched = dummies(match_spectrum=0)
    unmatched.clone(text, embedding=embedding)
    assert not np.allclose(unmatched.last_mels[0].item(0), from_embedding.last_mels[0].item(0), atol=1e-3)


def test_a_stored_spectrum_of_another_mel_spec_is_left_by_the_default_and_refused_when_asked(
    dummy_registry, speech_like_wav
) -> None:
    clip = speech_like_wav(seconds=2.5)
    sixteen = RTVC_SYNTHESIZER_MEL.model_copy(update={"n_mels": 16})  # not the test synthesizer's 20 bands
    embedder = Pipeline(
        "test-tone", "test-constant", settings=Settings(), options={"synthesizer": {"mel": sixteen}}, device="cpu",
        embedding_only=True,
    )  # fmt: skip
    embedding = embedder.embed([clip], with_spectrum=True)
    assert embedding.metadata["reference_spectrum"]["mel_spec"]["n_mels"] == 16
    default = dummies()
    audio = default.clone("Hello.", embedding=embedding)
    assert "spectrum_match" not in audio.metadata
    unmatched = audio.metadata["spectrum_unmatched"]
    assert "n_mels: the stored spectrum gives 16, test-constant expects 20" in unmatched
    assert "sample_rate: the stored spectrum gives 16000, test-constant expects 16000" not in unmatched
    np.testing.assert_array_equal(audio.item(0), dummies(match_spectrum=0).clone("Hello.", embedding=embedding).item(0))
    with pytest.raises(InputError, match="n_mels: the stored spectrum gives 16, test-constant expects 20") as refused:
        dummies(match_spectrum=1.0).clone("Hello.", embedding=embedding)
    assert "hop_length: the stored spectrum gives 200, test-constant expects 64" in str(refused.value)
    # a clip given beside the embedding is what is matched to, as before
    beside = default.clone("Hello.", clip, embedding=embedding)
    assert beside.metadata["spectrum_match"]["source"] == "clip" and "spectrum_unmatched" not in beside.metadata


def test_embed_without_a_resolvable_synthesizer_saves_without_the_spectrum_and_says_so(
    dummy_registry, speech_like_wav
) -> None:
    from vcframe.spectrum import STORED_SPECTRUM_KEY, UNSTORED_SPECTRUM_KEY
    from vcframe.testing.dummy_specs import TEST_MEL

    clip = speech_like_wav(seconds=2.5)
    linear = TEST_MEL.model_copy(update={"amplitude_scale": "linear", "normalization": "none"})
    embedder = Pipeline(
        "test-tone", "test-constant", settings=Settings(), options={"synthesizer": {"mel": linear}}, device="cpu",
        embedding_only=True,
    )  # fmt: skip
    embedding = embedder.embed([clip], with_spectrum=True)
    assert STORED_SPECTRUM_KEY not in embedding.metadata
    assert "works on log mels" in embedding.metadata[UNSTORED_SPECTRUM_KEY]
    unknown = Pipeline("test-tone", "nonexistent", settings=Settings(), device="cpu", embedding_only=True)
    embedding = unknown.embed([clip], with_spectrum=True)
    assert "unknown synthesizer 'nonexistent'" in embedding.metadata[UNSTORED_SPECTRUM_KEY]


def test_embed_then_run_from_the_embedding_is_matched_as_run_with_the_reference(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path
) -> None:
    from vcframe.testing.dummy_specs import TEST_MEL

    clip, saved = speech_like_wav(seconds=2.5), tmp_path / "voice.npy"
    made = vcframe_cli("embed", "--encoder", "test-tone", "--synthesizer", "test-constant", "-r", clip, "--out", saved)
    assert made.exit_code == 0, made.stderr
    assert "and the clips' spectrum" in made.stderr and "note" not in made.stderr
    stored = json.loads((tmp_path / "voice.npy.json").read_text())["metadata"]["reference_spectrum"]
    assert stored["mel_spec"] == TEST_MEL.model_dump(mode="json") and len(stored["bands"]) == 20
    assert stored["clips"] == 1
    common = ["--text", "Hi there. Bye.", "--seed", "3", "--metadata"]
    by_embedding = vcframe_cli("run", *DUMMIES, "--embedding", saved, "--out", tmp_path / "e.wav", *common)
    by_reference = vcframe_cli("run", *DUMMIES, "-r", clip, "--out", tmp_path / "r.wav", *common)
    assert by_embedding.exit_code == 0 and by_reference.exit_code == 0, (by_embedding.stderr, by_reference.stderr)
    assert "spectrum matching: strength 1, mean gain per band" in by_embedding.stderr
    assert "(the reference spectrum stored in the embedding)" in by_embedding.stderr
    embedded_audio, _ = soundfile.read(str(tmp_path / "e.wav"))
    reference_audio, _ = soundfile.read(str(tmp_path / "r.wav"))
    np.testing.assert_allclose(embedded_audio, reference_audio, rtol=0, atol=1e-4)
    embedded = json.loads((tmp_path / "e.wav.json").read_text())["spectrum_match"]
    referenced = json.loads((tmp_path / "r.wav.json").read_text())["spectrum_match"]
    assert (embedded["source"], referenced["source"]) == ("embedding", "clip")
    np.testing.assert_allclose(embedded["gain_db"], referenced["gain_db"], rtol=1e-6)
    unmatched = vcframe_cli(
        "run", *DUMMIES, "--embedding", saved, "--out", tmp_path / "u.wav", *common, "--match-spectrum", "0"
    )
    assert unmatched.exit_code == 0, unmatched.stderr
    assert not np.allclose(soundfile.read(str(tmp_path / "u.wav"))[0], reference_audio, atol=1e-3)


def test_an_embedding_without_a_stored_spectrum_runs_unmatched_and_refuses_an_explicit_strength(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path
) -> None:
    clip, saved, out = speech_like_wav(seconds=2.5), tmp_path / "voice.npy", tmp_path / "out.wav"
    made = vcframe_cli("embed", "--encoder", "test-tone", "--synthesizer", "test-constant", "-r", clip, "--out", saved)
    assert made.exit_code == 0, made.stderr
    sidecar = tmp_path / "voice.npy.json"
    described = json.loads(sidecar.read_text())
    del described["metadata"]["reference_spectrum"]  # as embeddings made before the spectrum was stored
    sidecar.write_text(json.dumps(described))
    result = vcframe_cli("run", *DUMMIES, "--embedding", saved, "--text", "Hi.", "--out", out, "--metadata")
    assert result.exit_code == 0, result.stderr
    assert "spectrum matching" not in result.stderr and "note" not in result.stderr
    assert "spectrum_match" not in json.loads((tmp_path / "out.wav.json").read_text())
    result = vcframe_cli("run", *DUMMIES, "--embedding", saved, "-t", "Hi.", "--out", tmp_path / "x.wav", "-o",
                         "match_spectrum=0.5")  # fmt: skip
    one_line_error(result, "stores none", "re-create the embedding with 'vcframe embed' to store its spectrum")
    assert not (tmp_path / "x.wav").exists()


def test_a_stored_spectrum_of_another_mel_spec_on_the_command_line(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path
) -> None:
    clip, saved, out = speech_like_wav(seconds=2.5), tmp_path / "voice.npy", tmp_path / "out.wav"
    made = vcframe_cli(
        "embed", "--encoder", "test-tone", "--synthesizer", "test-constant", "-r", clip, "--out", saved,
        "-o", f"synthesizer.test-constant.mel={SIXTEEN_BANDS_TOML}",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    result = vcframe_cli("run", *DUMMIES, "--embedding", saved, "--text", "Hi.", "--out", out, "--metadata")
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: not spectrum-matched")]
    assert len(notes) == 1 and "n_mels: the stored spectrum gives 16, test-constant expects 20" in notes[0]
    written = json.loads((tmp_path / "out.wav.json").read_text())
    assert "spectrum_match" not in written and "n_mels" in written["spectrum_unmatched"]
    result = vcframe_cli(
        "run", *DUMMIES, "--embedding", saved, "-t", "Hi.", "--out", tmp_path / "x.wav", "--match-spectrum", "1"
    )
    one_line_error(result, "n_mels: the stored spectrum gives 16, test-constant expects 20", "re-create the embedding")


@pytest.mark.parametrize(
    ("corrupt", "needle"),
    [
        (lambda stored: stored["bands"].pop(), "it has 19 bands; its mel_spec has n_mels=20"),
        (lambda stored: stored["bands"].__setitem__(3, float("nan")), "its bands are not all finite"),
        (lambda stored: stored["bands"].__setitem__(3, "loud"), "its bands are not a list of numbers"),
        (lambda stored: stored.update(clips=0), "its clip count is 0"),
        (lambda stored: stored["mel_spec"].update(n_fft=-1), "its mel_spec is not a mel spec (n_fft:"),
        (lambda stored: stored["mel_spec"].update(amplitude_scale="linear", normalization="none"), "is linear"),
        (lambda stored: stored.pop("mel_spec"), "not an object with mel_spec, bands and clips"),
    ],
)
def test_a_corrupt_stored_spectrum_is_refused_in_one_line(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path, corrupt, needle
) -> None:
    from vcframe.types import SpeakerEmbedding

    clip, saved = speech_like_wav(seconds=2.5), tmp_path / "voice.npy"
    made = vcframe_cli("embed", "--encoder", "test-tone", "--synthesizer", "test-constant", "-r", clip, "--out", saved)
    assert made.exit_code == 0, made.stderr
    sidecar = tmp_path / "voice.npy.json"
    described = json.loads(sidecar.read_text())
    corrupt(described["metadata"]["reference_spectrum"])
    sidecar.write_text(json.dumps(described))
    result = vcframe_cli("run", *DUMMIES, "--embedding", saved, "--text", "Hi.", "--out", tmp_path / "out.wav")
    one_line_error(result, "stored reference spectrum is unreadable", needle, "re-create the embedding")
    with pytest.raises(InputError, match="voice.npy"):
        SpeakerEmbedding.load(str(saved))
    with pytest.raises(InputError, match="stored reference spectrum is unreadable"):  # in memory, not loaded
        dummies().clone("Hi.", embedding=_in_memory(described))


def _in_memory(described: dict) -> object:
    """A SpeakerEmbedding made in Python with the sidecar's (corrupt) metadata, never loaded from a file."""
    import torch

    from vcframe.specs import EmbeddingSpec
    from vcframe.types import SpeakerEmbedding

    spec = EmbeddingSpec.model_validate(described["spec"])
    vector = torch.nn.functional.normalize(torch.ones(1, spec.dim), dim=1)
    return SpeakerEmbedding(vector, spec, described["metadata"])


def test_with_a_mel_adapter_the_stored_spectrum_is_compared_with_the_adapted_mel(
    dummy_registry, speech_like_wav
) -> None:
    from vcframe_griffinlim.spec import SPEC

    dummy_registry.register(SPEC)
    embedding = Pipeline("test-tone", "test-constant", settings=Settings(), device="cpu", embedding_only=True).embed(
        [speech_like_wav(seconds=2.5)], with_spectrum=True
    )
    adapted = Pipeline(
        "test-tone", "test-constant", "griffinlim", settings=Settings(seed=0), options={"vocoder": {"n_iter": 2}},
        device="cpu", adapt=True,
    )  # fmt: skip
    audio = adapted.clone("Hi.", embedding=embedding)
    assert "spectrum_match" not in audio.metadata  # mels are matched after conversion, at griffinlim's spec
    assert (
        "hop_length: the stored spectrum gives 64, the griffinlim mel the adapter converts to expects 200"
        in (audio.metadata["spectrum_unmatched"])
    )
