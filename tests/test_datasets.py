"""vcframe.datasets: the vocoder trainers' clips from folders, manifests and the shared real recordings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile
import typer
from typer.testing import CliRunner

from vcframe.audio import TRAINING_PEAK
from vcframe.datasets import (
    HUMAN_YARDSTICK_CLIPS,
    AudioClip,
    MelCache,
    MelSmoothing,
    band_smoothing,
    find_clips,
    load_audio_and_mel,
    load_each_once,
    load_mel,
    load_training_audio,
    manifest_command,
    read_manifest,
    real_speech_clips,
    record_smoothing,
    write_manifest,
)
from vcframe.errors import InputError
from vcframe.testing import speech_like
from vcframe.testing.shared import shared_path


def write(path: Path, seconds: float = 0.2, sample_rate: int = 16000, scale: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, speech_like(seconds, sample_rate) * scale, sample_rate)
    return path


def fake_shared_data(root: Path, ljspeech_clips: int = 14) -> Path:
    """A miniature ../shared/data: two train-clean-100 speakers (one of them also in test-other), two test-other
    speakers, and an LJSpeech-mini with ``ljspeech_clips`` clips."""
    libri = root / "librispeech" / "LibriSpeech"
    for speaker in ("19", "84"):
        write(libri / "train-clean-100" / speaker / "198" / f"{speaker}-198-0001.flac")
    for speaker in ("84", "1688"):
        for utterance in ("0002", "0001"):
            write(libri / "test-other" / speaker / "142" / f"{speaker}-142-{utterance}.flac")
    lj = root / "ljspeech" / "LJSpeech-mini"
    ids = [f"LJ001-{index:04d}" for index in range(1, ljspeech_clips + 1)]
    for clip_id in ids:
        write(lj / "wavs" / f"{clip_id}.wav", sample_rate=22050)
    (lj / "metadata.csv").write_text("".join(f"{clip_id}|Text {clip_id}.|Text {clip_id}.\n" for clip_id in ids))
    return root


def test_folders_give_every_audio_file_with_its_speaker_and_mel(tmp_path):
    generic = tmp_path / "generic"
    write(generic / "alice" / "a1.wav")
    write(generic / "alice" / "deeper" / "a2.flac")
    write(generic / "bob" / "b1.wav")
    np.save(generic / "bob" / "b1.npy", np.zeros((80, 3), np.float32))
    (generic / "bob" / "b1.txt").write_text("a transcript is ignored")
    write(generic / "loose.wav")
    clips = find_clips(generic)
    assert [(c.audio.relative_to(generic).as_posix(), c.speaker, c.mel is not None) for c in clips] == [
        ("alice/a1.wav", "alice", False),
        ("alice/deeper/a2.flac", "alice", False),
        ("bob/b1.wav", "bob", True),
        ("loose.wav", "generic", False),
    ]
    libri = fake_shared_data(tmp_path / "shared") / "librispeech" / "LibriSpeech"
    assert {c.speaker for c in find_clips(libri)} == {"librispeech-19", "librispeech-84", "librispeech-1688"}
    lj = find_clips(tmp_path / "shared" / "ljspeech" / "LJSpeech-mini")
    assert len(lj) == 14 and lj[0].audio.name == "LJ001-0001.wav" and {c.speaker for c in lj} == {"ljspeech"}


def test_manifest_round_trip_and_relative_paths(tmp_path):
    write(tmp_path / "x" / "one.wav")
    clips = [AudioClip(tmp_path / "x" / "one.wav", "sam", tmp_path / "one.npy"), AudioClip(tmp_path / "two.wav", "kim")]
    assert write_manifest(clips, tmp_path / "list.txt") == 2
    assert read_manifest(tmp_path / "list.txt") == clips
    (tmp_path / "pairs.txt").write_text(
        "# wav|gta mel, as 'vcframe train synthesizer gta' writes it\nx/one.wav|one.npy\n\nx/one.wav\n"
    )
    relative = find_clips(tmp_path / "pairs.txt")
    assert relative == [
        AudioClip(tmp_path / "x" / "one.wav", "x", tmp_path / "one.npy"),
        AudioClip(tmp_path / "x" / "one.wav", "x"),
    ]
    assert find_clips(tmp_path / "x" / "one.wav") == [AudioClip(tmp_path / "x" / "one.wav", "x")]  # one file
    # GTA pairs of LibriSpeech clips name no speaker: the file name's, as the real-speech lists give it
    (tmp_path / "gta.txt").write_text("19/198/19-198-0001.flac|gta/19-198-0001.npy\n")
    assert [clip.speaker for clip in read_manifest(tmp_path / "gta.txt")] == ["librispeech-19"]
    (tmp_path / "binary.txt").write_bytes(b"RIFF\xa4\x00")
    with pytest.raises(InputError, match="not a text manifest"):
        find_clips(tmp_path / "binary.txt")
    (tmp_path / "bad.txt").write_text("a|b|c|d\n")
    with pytest.raises(InputError, match="line 1: expected 'audio|mel|speaker'"):
        read_manifest(tmp_path / "bad.txt")
    with pytest.raises(InputError, match="not found"):
        find_clips(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no audio files"):
        find_clips(tmp_path / "empty")


def test_real_speech_leaves_out_the_evaluation_speakers_and_yardstick_clips(tmp_path):
    shared = fake_shared_data(tmp_path)
    training, held_out = real_speech_clips(shared)
    assert [c.speaker for c in training if c.speaker.startswith("librispeech")] == [
        "librispeech-19"
    ]  # 84 is test-other
    lj_training = [c.audio.stem for c in training if c.speaker == "ljspeech"]
    assert lj_training == ["LJ001-0013", "LJ001-0014"]  # after the first HUMAN_YARDSTICK_CLIPS
    assert [c.audio.name for c in held_out[:2]] == ["1688-142-0001.flac", "84-142-0001.flac"]  # first clips
    assert len(held_out) == 2 + HUMAN_YARDSTICK_CLIPS
    assert not {c.audio for c in training} & {c.audio for c in held_out}
    with pytest.raises(InputError, match="no LibriSpeech or LJSpeech-mini"):
        real_speech_clips(tmp_path / "elsewhere")


def test_training_audio_is_resampled_and_peak_normalised(tmp_path):
    path = write(tmp_path / "quiet.wav", seconds=0.5, sample_rate=22050, scale=0.1)
    samples = load_training_audio(AudioClip(path, "x"), 16000)
    assert samples.dtype == np.float32 and abs(len(samples) - 8000) <= 1
    assert np.abs(samples).max() == pytest.approx(TRAINING_PEAK, rel=1e-6)
    np.save(tmp_path / "mel.npy", np.ones((7, 80), np.float32))  # (T, n_mels): transposed back
    assert load_mel(tmp_path / "mel.npy", 80).shape == (80, 7)
    with pytest.raises(InputError, match=r"expected \(40, frames\)"):
        load_mel(tmp_path / "mel.npy", 40)


def test_manifest_command_writes_training_and_held_out_lists(tmp_path):
    shared = fake_shared_data(tmp_path / "shared")
    write(tmp_path / "corpus" / "voice" / "u1.wav", seconds=1.0)
    app = typer.Typer()
    app.command()(manifest_command)
    out, held_out = tmp_path / "train.txt", tmp_path / "valid.txt"
    arguments = ["--out", str(out), "--real-speech", str(shared), "--held-out", str(held_out)]
    result = CliRunner().invoke(app, [*arguments, "--source", str(tmp_path / "corpus")])
    assert result.exit_code == 0, result.output
    assert "corpus: 1 clips, 1 speakers" in result.output and "wrote" in result.output
    assert len(read_manifest(out)) == 1 + 2 + 1 and len(read_manifest(held_out)) == 2 + HUMAN_YARDSTICK_CLIPS
    result = CliRunner().invoke(app, [*arguments, "--real-speech-repeat", "3"])
    assert result.exit_code == 0, result.output
    assert "each listed 3 times" in result.output and len(read_manifest(out)) == 3 * (2 + 1)
    result = CliRunner().invoke(app, ["--out", str(out)])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)


def test_the_shared_recordings():
    shared = shared_path("data", anchor=__file__)
    training, held_out = real_speech_clips(shared)
    speakers = {c.speaker for c in training}
    assert len([s for s in speakers if s.startswith("librispeech-")]) == 251 and "ljspeech" in speakers
    evaluation = {p.name for p in (shared / "librispeech" / "LibriSpeech" / "test-other").iterdir()}
    assert not {s.removeprefix("librispeech-") for s in speakers} & evaluation
    assert len(held_out) == len(evaluation) + HUMAN_YARDSTICK_CLIPS


def test_load_each_once_loads_a_repeated_listing_once(tmp_path):
    first, second = AudioClip(tmp_path / "a.wav", "s"), AudioClip(tmp_path / "b.wav", "s")
    with_mel = AudioClip(tmp_path / "a.wav", "s", mel=tmp_path / "a.npy")
    calls: list[AudioClip] = []
    loaded = load_each_once([first, second, first, with_mel], lambda clip: calls.append(clip) or [clip.audio.name])
    assert calls == [first, second, with_mel]  # the same audio with another mel is another item
    assert loaded[0] is loaded[2] and loaded[0] is not loaded[3] and loaded[1] == ["b.wav"]


def _mel_cache_setup(tmp_path):
    from vcframe.specs import RTVC_SYNTHESIZER_MEL

    clip = AudioClip(write(tmp_path / "voice" / "a.wav", seconds=0.3), "voice")
    return clip, RTVC_SYNTHESIZER_MEL, MelCache(tmp_path / "cache")


def test_mel_cache_hit_returns_the_stored_mel_without_computing(tmp_path, monkeypatch):
    """The first load computes and stores the mel (the uncached one); a later load, from a new cache object as a
    new run makes, reads it back and computes nothing."""
    import vcframe.audio

    clip, spec, cache = _mel_cache_setup(tmp_path)
    audio, uncached = load_audio_and_mel(clip, spec)
    _, first = load_audio_and_mel(clip, spec, mel_cache=cache)
    assert (cache.hits, cache.misses) == (0, 1) and len(list(cache.folder.glob("*.npy"))) == 1
    np.testing.assert_allclose(first, uncached, atol=1e-6)

    def refuse(*_args, **_kwargs):
        raise AssertionError("a cache hit computed the mel")

    monkeypatch.setattr(vcframe.audio, "mel_spectrogram", refuse)
    again = MelCache(tmp_path / "cache")
    audio_again, second = load_audio_and_mel(clip, spec, mel_cache=again)
    assert (again.hits, again.misses) == (1, 0) and again.describe().endswith(": 1 read, 0 computed")
    assert second.dtype == np.float32 and np.array_equal(second, first) and np.array_equal(audio_again, audio)
    given = AudioClip(clip.audio, "voice", mel=tmp_path / "given.npy")  # a given (GTA) mel bypasses the cache
    np.save(given.mel, np.zeros((spec.n_mels, 3), np.float32))
    assert load_audio_and_mel(given, spec, mel_cache=again)[1].shape == (spec.n_mels, 3) and again.hits == 1


def test_mel_cache_misses_for_another_spec_or_a_modified_file(tmp_path):
    clip, spec, cache = _mel_cache_setup(tmp_path)
    load_audio_and_mel(clip, spec, mel_cache=cache)
    other_spec = spec.model_copy(update={"fmax": 7000.0})
    _, other = load_audio_and_mel(clip, other_spec, mel_cache=cache)
    assert (cache.hits, cache.misses) == (0, 2) and cache.entry(clip.audio, spec) != cache.entry(clip.audio, other_spec)
    np.testing.assert_allclose(other, load_audio_and_mel(clip, other_spec)[1], atol=1e-6)
    write(clip.audio, seconds=0.3, scale=0.5)  # same size, other samples: the mtime tells
    status = clip.audio.stat()
    os.utime(clip.audio, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    _, after_edit = load_audio_and_mel(clip, spec, mel_cache=cache)
    assert (cache.hits, cache.misses) == (0, 3)
    np.testing.assert_allclose(after_edit, load_audio_and_mel(clip, spec)[1], atol=1e-6)
    write(clip.audio, seconds=0.4)  # another length
    _, longer = load_audio_and_mel(clip, spec, mel_cache=cache)
    assert cache.misses == 4 and longer.shape[1] > after_edit.shape[1]
    load_audio_and_mel(clip, spec, mel_cache=cache)
    assert cache.hits == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"\x93NUMPY garbage"),  # truncated
        lambda path: path.write_bytes(b""),  # empty
        lambda path: np.save(path, np.zeros((80, 2), np.float32)),  # another shape
        lambda path: np.save(path, np.zeros((2, 2), object)),  # pickled objects: never loaded
    ],
)
def test_a_corrupt_mel_cache_entry_is_recomputed_and_replaced(tmp_path, damage):
    clip, spec, cache = _mel_cache_setup(tmp_path)
    _, first = load_audio_and_mel(clip, spec, mel_cache=cache)
    entry = cache.entry(clip.audio, spec)
    damage(entry)
    again = MelCache(cache.folder)
    _, recomputed = load_audio_and_mel(clip, spec, mel_cache=again)
    assert (again.hits, again.misses) == (0, 1)
    np.testing.assert_allclose(recomputed, first, atol=1e-6)
    assert np.array_equal(np.load(entry, allow_pickle=False), recomputed)  # replaced by a good entry
    assert sorted(path.name for path in cache.folder.iterdir()) == [entry.name]  # no temporaries left


def test_band_smoothing_is_a_gaussian_across_bands_with_nearest_edges():
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    mel = np.random.default_rng(3).normal(size=(80, 12))
    for sigma in (0.2, 1.0, 2.5):
        expected = scipy_ndimage.gaussian_filter1d(mel, sigma, axis=0, mode="nearest")
        np.testing.assert_allclose(band_smoothing(80, sigma) @ mel, expected, atol=1e-12)
    flat = np.tile(np.linspace(-4, 4, 12), (80, 1))  # the same value in every band of a frame: left as it is
    np.testing.assert_allclose(band_smoothing(80, 2.5) @ flat, flat, atol=1e-12)
    with pytest.raises(ValueError, match="sigma must be positive, got 0"):
        band_smoothing(80, 0)


def test_mel_smoothing_smooths_a_share_of_segments_across_frequency_only():
    rng = np.random.default_rng(0)
    mel = rng.normal(size=(80, 8)).astype(np.float32)
    smoothing = MelSmoothing(2.5, probability=0.5, seed=7)
    sigmas = [smoothing.sigma(clip, start) for clip in range(200) for start in (0, 5)]
    assert sigmas == [smoothing.sigma(clip, start) for clip in range(200) for start in (0, 5)]  # a pure function
    smoothed = [sigma for sigma in sigmas if sigma > 0]
    assert 0.4 < len(smoothed) / len(sigmas) < 0.6 and max(smoothed) <= 2.5 and min(smoothed) < 0.5
    clip, start = next((c, s) for c in range(200) for s in (0, 5) if smoothing.sigma(c, s) > 1.0)
    out = smoothing(mel, clip, start)
    band_roughness = lambda m: float(np.abs(np.diff(m, axis=0)).mean())  # noqa: E731
    assert out.dtype == np.float32 and out.shape == mel.shape and band_roughness(out) < 0.5 * band_roughness(mel)
    changed = mel.copy()
    changed[:, 3] += 1.0  # frames stay independent: one changed frame changes only its own output
    difference = np.abs(smoothing(changed, clip, start) - out).max(axis=0)
    assert difference[3] > 0.5 and np.delete(difference, 3).max() == 0
    clip, start = next((c, s) for c in range(200) for s in (0, 5) if smoothing.sigma(c, s) == 0)
    assert smoothing(mel, clip, start) is mel
    assert all(MelSmoothing(2.5, probability=0.0, seed=7).sigma(c, 0) == 0 for c in range(50))
    assert all(MelSmoothing(0.0, probability=1.0, seed=7).sigma(c, 0) == 0 for c in range(50))
    with pytest.raises(ValueError, match="max_bands=-1 and probability=0.5"):
        MelSmoothing(-1)
    with pytest.raises(ValueError, match="max_bands=2.0 and probability=1.5"):
        MelSmoothing(2.0, probability=1.5)


def test_record_smoothing_appends_only_changes_and_says_so():
    changes, note = record_smoothing([], 0.0, 0.5, 0)  # a new run without smoothing: nothing recorded
    assert changes == [] and note is None
    changes, note = record_smoothing([], 2.5, 0.5, 0)
    assert changes == [{"step": 0, "mel_smoothing": 2.5, "mel_smoothing_probability": 0.5}]
    assert note == "the mel smoothing changed at step 0: 0 -> 2.5 bands (probability 0.5)"
    assert record_smoothing(changes, 2.5, 0.5, 40) == (changes, None)  # the same settings on resume
    longer, note = record_smoothing(changes, 2.5, 1.0, 40)
    assert longer[-1] == {"step": 40, "mel_smoothing": 2.5, "mel_smoothing_probability": 1.0} and len(changes) == 1
    off, note = record_smoothing(longer, 0.0, 0.3, 90)
    assert (
        off[-1]["mel_smoothing"] == 0.0
        and note == "the mel smoothing changed at step 90: 2.5 -> 0 bands (probability 0.3)"
    )
    assert record_smoothing(off, 0.0, 0.9, 95) == (off, None)  # while off, the probability does not count
