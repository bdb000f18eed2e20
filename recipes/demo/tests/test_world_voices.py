"""Tests of the WORLD voices of the corpus recipe: the pitch / vocal-tract transform and the speaker catalogue."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from recipes.demo.tests._recipes import load
from recipes.demo.tests.test_make_corpus import needs_tools, plan_args, read_tree

corpus = load("make_corpus")

RATE = 16000
FORMANTS_HZ = (500.0, 1500.0, 2500.0)


def vowel(f0_hz: float, seconds: float = 1.0, *, onset_s: float = 0.2, offset_s: float = 0.2) -> np.ndarray:
    """A steady synthetic vowel: harmonics of ``f0_hz`` weighted by three formant resonances, with silence
    before ``onset_s`` and during the last ``offset_s`` seconds. (samples,) float64."""
    times = np.arange(int(seconds * RATE)) / RATE
    waveform = np.zeros_like(times)
    for harmonic in range(1, int(RATE / 2 / f0_hz)):
        frequency = harmonic * f0_hz
        gain = sum(1.0 / (1.0 + ((frequency - formant) / 120.0) ** 2) for formant in FORMANTS_HZ)
        waveform += gain * np.sin(2 * np.pi * frequency * times)
    waveform[(times < onset_s) | (times >= seconds - offset_s)] = 0.0
    return 0.5 * waveform / np.abs(waveform).max()


def f0_of(waveform: np.ndarray, *, start_s: float = 0.35, stop_s: float = 0.65) -> float:
    """F0 in Hz of a steady voiced stretch, from the autocorrelation peak between 60 and 500 Hz."""
    stretch = waveform[int(start_s * RATE) : int(stop_s * RATE)]
    stretch = stretch - stretch.mean()
    correlation = np.correlate(stretch, stretch, mode="full")[len(stretch) - 1 :]
    low, high = int(RATE / 500), int(RATE / 60)
    lag = low + int(np.argmax(correlation[low:high]))
    return RATE / lag


def spectral_centroid(waveform: np.ndarray, *, start_s: float = 0.3, stop_s: float = 0.7) -> float:
    """Power-weighted mean frequency (Hz) of a stretch, below 5 kHz (the envelope region the warp moves)."""
    stretch = waveform[int(start_s * RATE) : int(stop_s * RATE)]
    stretch = stretch * np.hanning(len(stretch))
    power = np.abs(np.fft.rfft(stretch)) ** 2
    frequencies = np.fft.rfftfreq(len(stretch), 1 / RATE)
    band = frequencies < 5000
    return float((power[band] * frequencies[band]).sum() / power[band].sum())


def loud_span(waveform: np.ndarray) -> tuple[float, float]:
    """(first, last) time in seconds of 10 ms frames within 30 dB of the loudest."""
    frames = waveform[: len(waveform) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-30 / 20))
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def test_world_transform_is_deterministic_and_keeps_the_length_and_timing() -> None:
    source = vowel(120.0)
    first = corpus.world_transform(source, RATE, f0_factor=1.3, warp_factor=1.15)
    second = corpus.world_transform(source.copy(), RATE, f0_factor=1.3, warp_factor=1.15)
    assert first.dtype == np.float32 and first.shape == source.shape
    assert np.array_equal(first, second)  # WORLD reseeds its noise generator in every call
    start, stop = loud_span(first)
    assert abs(start - 0.2) <= 0.03 and abs(stop - 0.8) <= 0.03  # the speech stays where it was


@pytest.mark.parametrize("f0_factor", [0.7, 1.5])
def test_world_transform_scales_f0_by_the_factor(f0_factor: float) -> None:
    source = vowel(120.0)
    assert f0_of(source) == pytest.approx(120.0, rel=0.02)
    changed = corpus.world_transform(source, RATE, f0_factor=f0_factor, warp_factor=1.0)
    assert f0_of(changed) == pytest.approx(120.0 * f0_factor, rel=0.03)
    # the envelope stays: formants are not dragged along with the harmonics (as a plain resampling would)
    same_pitch = corpus.world_transform(source, RATE, f0_factor=1.0, warp_factor=1.0)
    assert spectral_centroid(changed) == pytest.approx(spectral_centroid(same_pitch), rel=0.12)


def test_world_transform_warps_the_envelope_in_the_asked_direction_without_moving_f0() -> None:
    source = vowel(110.0)
    centroids = {}
    for warp in (0.85, 1.0, 1.2):
        changed = corpus.world_transform(source, RATE, f0_factor=1.0, warp_factor=warp)
        centroids[warp] = spectral_centroid(changed)
        assert f0_of(changed) == pytest.approx(110.0, rel=0.03)
    assert centroids[0.85] < 0.95 * centroids[1.0] and centroids[1.2] > 1.08 * centroids[1.0]


def test_warp_envelope_moves_a_peak_by_the_factor() -> None:
    envelope = np.full((2, 513), 1e-4)
    envelope[:, 100] = 1.0
    for warp, expected in ((1.25, 125), (0.8, 80)):
        warped = corpus.warp_envelope(envelope, warp)
        assert warped.shape == envelope.shape and warped.flags.c_contiguous
        assert abs(int(np.argmax(warped[0])) - expected) <= 1
    assert np.allclose(corpus.warp_envelope(envelope, 1.0), envelope)
    with pytest.raises(ValueError, match="positive"):
        corpus.warp_envelope(envelope, 0.0)
    with pytest.raises(ValueError, match="positive"):
        corpus.world_transform(vowel(120.0), RATE, f0_factor=-1.0, warp_factor=1.0)


def test_catalogue_has_many_training_voices_with_unique_ids() -> None:
    """84 training voices (15 engine + 69 WORLD) survive the GE2E distinctness check (README "WORLD voices")."""
    train = [speaker for speaker in corpus.SPEAKERS if speaker.split == "train"]
    ids = [speaker.id for speaker in corpus.SPEAKERS]
    assert len(train) >= 80 and len(ids) == len(set(ids))
    assert corpus.SPEAKERS[: len(corpus.ENGINE_SPEAKERS)] == corpus.ENGINE_SPEAKERS  # earlier corpora stay a prefix
    world = [speaker for speaker in corpus.SPEAKERS[: 123 + 5] if speaker.uses_world and not speaker.world_tilt_db]
    assert len(world) == len(corpus.WORLD_VOICES) and all(speaker.split == "train" for speaker in world)
    settings = {(s.engine, s.voice, s.world_f0_factor, s.world_warp) for s in world}
    assert len(settings) == len(world)  # no two ids for one voice
    for speaker in world:
        assert "WORLD" in speaker.licence and "mbrola" not in speaker.voice.lower()
        assert 0.4 <= speaker.world_f0_factor <= 2.7 and 0.75 <= speaker.world_warp <= 1.45
        assert (
            corpus.engine_command(speaker, Path("in.txt"), Path("out.wav"))[0] == corpus.ENGINE_BINARIES[speaker.engine]
        )
    characters = {row[3] for row in corpus.WORLD_VOICES}
    assert {"child-like", "female", "male", "deep male"} <= characters
    with pytest.raises(ValueError, match="unknown WORLD base"):
        corpus.world_base("en-xx+nobody")
    with pytest.raises(ValueError, match="modified voice"):
        corpus.world_base("flite-rms-up400")


def test_load_pyworld_without_pkg_resources_and_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyworld 0.3.5's package imports pkg_resources (gone from new setuptools): both import paths give the same
    functions; without pyworld the error names the install command."""
    for name in ("pyworld", "pyworld.pyworld", "pkg_resources"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "pkg_resources", None)  # import pkg_resources -> ModuleNotFoundError
    direct = corpus.load_pyworld()
    assert callable(direct.dio) and callable(direct.synthesize)

    fake = types.ModuleType("pkg_resources")
    fake.get_distribution = lambda name: types.SimpleNamespace(version="0.3.5")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pkg_resources", fake)
    monkeypatch.delitem(sys.modules, "pyworld", raising=False)
    packaged = corpus.load_pyworld()
    assert packaged.synthesize is direct.synthesize or packaged.synthesize.__name__ == "synthesize"

    monkeypatch.setitem(sys.modules, "pyworld", None)  # import pyworld -> ModuleNotFoundError
    with pytest.raises(RuntimeError, match="pip install"):
        corpus.load_pyworld()


def test_world_voices_in_the_corpus_are_deterministic_and_resume(tmp_path: Path) -> None:
    world = next(s for s in corpus.SPEAKERS if s.uses_world and s.engine == "flite")
    needs_tools(world.id)
    texts = tmp_path / "sentences.txt"
    texts.write_text(
        "The quick brown fox jumped over the lazy dog by the river.\n"
        "She sold the old blue bicycle to a neighbour last Tuesday morning.\n"
        "We planted seven apple trees along the southern wall of the garden.\n"
    )
    common = [
        "--texts",
        str(texts),
        "--speakers",
        world.id,
        "--eval-speakers",
        "",
        "--sentences-per-speaker",
        "2",
        "--eval-sentences",
        "1",
        "--seen-utterances",
        "0",
    ]
    first, second = tmp_path / "one" / "corpus", tmp_path / "two" / "corpus"  # same relative eval_dir
    assert corpus.main(["--out", str(first), "--jobs", "2", *common]) == 0
    assert corpus.main(["--out", str(second), "--jobs", "1", *common]) == 0
    tree = read_tree(first)
    assert tree == read_tree(second)
    wavs = sorted(first.glob("*/*.wav"))
    assert len(wavs) == 2 and wavs[0].parent.name == world.id
    assert '"world_warp"' in tree["speakers.json"].decode()

    wavs[1].unlink()
    lines: list[str] = []
    args = plan_args(
        texts,
        first,
        speakers=[world.id],
        eval_speakers=[],
        sentences_per_speaker=2,
        eval_sentences=1,
        seen_utterances=0,
    )
    results = corpus.run_plan(
        corpus.make_plan(args).utterances, jobs=1, min_seconds=1.5, max_seconds=8.0, progress=lines.append
    )
    assert len(results) == 1 and "1 already done, 1 to make" in lines[0]
    assert results[0].clock.world > 0
    assert read_tree(first) == tree


def test_resuming_after_the_catalogue_grew_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same options, more catalogue speakers (as between recipe versions): the corpus is not silently extended."""
    needs_tools("espeak-steph", "espeak-andy")
    texts = tmp_path / "sentences.txt"
    texts.write_text("The quick brown fox jumped over the lazy dog by the river.\n" * 3)
    arguments = ["--out", str(tmp_path / "c"), "--texts", str(texts), "--eval-speakers", "", "--eval-sentences", "1"]
    arguments += ["--sentences-per-speaker", "1", "--seen-utterances", "0"]
    steph, andy = corpus.SPEAKERS_BY_ID["espeak-steph"], corpus.SPEAKERS_BY_ID["espeak-andy"]
    monkeypatch.setattr(corpus, "SPEAKERS", (steph,))
    assert corpus.main(arguments) == 0
    monkeypatch.setattr(corpus, "SPEAKERS", (steph, andy))
    with pytest.raises(SystemExit, match="train_speakers: \\['espeak-steph'\\] there.*--num-speakers 1 resumes it"):
        corpus.main(arguments)


def test_a_corpus_of_an_older_recipe_version_resumes_with_num_speakers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalogue grew (recipe version 3 appended voices): --num-speakers N selects the speakers the corpus
    was made with, and it resumes (extends) without a re-deal although its corpus.json says version 2."""
    needs_tools("espeak-steph", "espeak-andy")
    texts = tmp_path / "sentences.txt"
    texts.write_text("The quick brown fox jumped over the lazy dog by the river.\n" * 4)
    out = tmp_path / "c"
    arguments = ["--out", str(out), "--texts", str(texts), "--eval-speakers", "", "--eval-sentences", "1"]
    arguments += ["--seen-utterances", "0"]
    steph, andy = corpus.SPEAKERS_BY_ID["espeak-steph"], corpus.SPEAKERS_BY_ID["espeak-andy"]
    monkeypatch.setattr(corpus, "SPEAKERS", (steph,))
    assert corpus.main([*arguments, "--sentences-per-speaker", "1"]) == 0
    recorded = json.loads((out / "corpus.json").read_text())
    recorded["recipe_version"] = 2
    (out / "corpus.json").write_text(json.dumps(recorded))
    before = {name: payload for name, payload in read_tree(out).items() if name.endswith(".wav")}
    monkeypatch.setattr(corpus, "SPEAKERS", (steph, andy))
    assert corpus.main([*arguments, "--sentences-per-speaker", "2", "--num-speakers", "1"]) == 0
    tree = read_tree(out)
    wavs = sorted(name for name in tree if name.endswith(".wav"))
    assert len(before) == 1 and len(wavs) == 2 and all(name.startswith("espeak-steph/") for name in wavs)
    assert all(tree[name] == payload for name, payload in before.items())  # kept, not re-dealt
    assert json.loads(tree["corpus.json"])["num_speakers"] == 1
    with pytest.raises(SystemExit, match="seed"):  # content options are still compared
        corpus.main([*arguments, "--sentences-per-speaker", "2", "--num-speakers", "1", "--seed", "7"])


def test_tilt_envelope_gives_the_asked_slope_about_one_kilohertz() -> None:
    envelope = np.ones((2, 513))
    tilted = corpus.tilt_envelope(envelope, RATE, 3.0)
    assert tilted.shape == envelope.shape and tilted.flags.c_contiguous
    frequencies = np.linspace(0, RATE / 2, 513)
    level_db = 10 * np.log10(tilted[0])
    for hertz, expected_db in ((1000, 0.0), (2000, 3.0), (4000, 6.0), (500, -3.0), (250, -6.0)):
        assert level_db[int(np.argmin(np.abs(frequencies - hertz)))] == pytest.approx(expected_db, abs=0.05)
    assert np.allclose(level_db[frequencies < 100], 3.0 * np.log2(100 / 1000))  # held below 100 Hz
    assert np.allclose(10 * np.log10(corpus.tilt_envelope(envelope, RATE, -3.0)[0]), -level_db)
    assert np.array_equal(corpus.tilt_envelope(envelope, RATE, 0.0), envelope)


def test_world_transform_tilts_the_spectrum_keeps_f0_length_and_is_deterministic() -> None:
    source = vowel(120.0)
    plain = corpus.world_transform(source, RATE, f0_factor=1.0, warp_factor=1.0)
    brighter = corpus.world_transform(source, RATE, f0_factor=1.0, warp_factor=1.0, tilt_db_per_octave=5.0)
    darker = corpus.world_transform(source, RATE, f0_factor=1.0, warp_factor=1.0, tilt_db_per_octave=-5.0)
    assert brighter.shape == darker.shape == source.shape and brighter.dtype == np.float32
    assert np.array_equal(
        brighter, corpus.world_transform(source.copy(), RATE, f0_factor=1.0, warp_factor=1.0, tilt_db_per_octave=5.0)
    )
    assert spectral_centroid(brighter) > 1.15 * spectral_centroid(plain)
    assert spectral_centroid(darker) < 0.85 * spectral_centroid(plain)
    for changed in (brighter, darker):
        assert f0_of(changed) == pytest.approx(120.0, rel=0.03)
        start, stop = loud_span(changed)
        assert abs(start - 0.2) <= 0.03 and abs(stop - 0.8) <= 0.03


def test_tilted_voice_ids_say_the_tilt() -> None:
    brighter = corpus.world_voice("flite-rms", 1.82, 0.82, "female", 3.4)
    darker = corpus.world_voice("en-us+Marco", 0.5, 1.1, "male", -3.75)
    assert brighter.id == "flite-rms-f182-w082-tp34" and darker.id == "espeak-us-marco-f050-w110-tm38"
    assert brighter.world_tilt_db == 3.4 and "tilt +3.4 dB/octave" in brighter.description
    assert corpus.world_voice("flite-rms", 1.62, 1.1, "female").id == "flite-rms-f162-w110"  # version-2 ids stay
    tilt_only = corpus.world_voice("flite-rms", 1.0, 1.0, "male", -3.0)
    assert tilt_only.uses_world and "WORLD" in tilt_only.licence


def test_catalogue_version_3_appends_tilted_voices_after_the_84() -> None:
    """Recipe version 3: 100+ training voices, ids unique, the tilted WORLD voices after version 2's 84 (so
    --num-speakers 84 keeps meaning version 2's catalogue and --skip-speakers 84 selects the new ones)."""
    train = [speaker for speaker in corpus.SPEAKERS if speaker.split == "train"]
    ids = [speaker.id for speaker in corpus.SPEAKERS]
    assert len(train) >= 100 and len(ids) == len(set(ids))
    version_2 = len(corpus.ENGINE_SPEAKERS) - 5 + len(corpus.WORLD_VOICES)
    assert version_2 == 84 and not any(speaker.world_tilt_db for speaker in train[:version_2])
    tilted = train[version_2 : version_2 + len(corpus.TILTED_VOICES)]
    assert len(tilted) == len(corpus.TILTED_VOICES) and all(speaker.world_tilt_db != 0 for speaker in tilted)
    settings = {(s.engine, s.voice, s.world_f0_factor, s.world_warp, s.world_tilt_db) for s in train if s.uses_world}
    assert len(settings) == len(corpus.WORLD_VOICES) + len(tilted) + len(corpus.NEAR_REAL_VOICES)
    for speaker in tilted:
        assert 2.5 <= abs(speaker.world_tilt_db) <= 6.0 and speaker.id.split("-")[-1][:2] in {"tp", "tm"}
        assert 0.4 <= speaker.world_f0_factor <= 3.1 and 0.8 <= speaker.world_warp <= 1.36
        assert "WORLD" in speaker.licence and "dB/octave" in speaker.describe()["description"]


def test_catalogue_version_4_appends_natural_voices_after_the_123() -> None:
    """Recipe version 4: voices of the natural bases only (flite, festival), after version 3's 123, each a WORLD
    voice with settings in the search's ranges (search_voices.py)."""
    train = [speaker for speaker in corpus.SPEAKERS if speaker.split == "train"]
    near_real = train[123:]
    assert len(near_real) == len(corpus.NEAR_REAL_VOICES) >= 20
    assert len(train[:123]) == 84 + len(corpus.TILTED_VOICES)
    for speaker in near_real:
        assert speaker.engine in {"flite", "festival"} and speaker.uses_world
        assert (
            0.82 <= speaker.world_warp <= 1.35 and speaker.world_tilt_db == 0 or 2.5 <= abs(speaker.world_tilt_db) <= 6
        )
        assert "WORLD" in speaker.licence


def test_skip_speakers_plans_only_the_voices_after_the_first_n(tmp_path: Path) -> None:
    texts = tmp_path / "sentences.txt"
    texts.write_text("".join(f"Sentence number {index} is long enough to be read aloud here.\n" for index in range(9)))
    args = plan_args(texts, tmp_path / "c", eval_sentences=1, sentences_per_speaker=1, seen_utterances=0)
    train = [speaker for speaker in corpus.SPEAKERS if speaker.split == "train"]
    args.skip_speakers = 84
    plan = corpus.make_plan(args)
    assert plan.train_speakers == train[84:]
    assert all(speaker.world_tilt_db for speaker in plan.train_speakers[: len(corpus.TILTED_VOICES)])
    args.num_speakers = 2
    assert corpus.make_plan(args).train_speakers == train[84:86]
    args.skip_speakers = len(train)
    with pytest.raises(SystemExit, match="leaves none"):
        corpus.make_plan(args)
