"""Tests of the WORLD voices of the corpus recipe: the pitch / vocal-tract transform and the speaker catalogue."""

from __future__ import annotations

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
    world = [speaker for speaker in corpus.SPEAKERS if speaker.uses_world]
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
    with pytest.raises(SystemExit, match="train_speakers: \\['espeak-steph'\\] there"):
        corpus.main(arguments)
