"""measure_intelligibility.py with a stand-in recogniser: pooled words heard per voice, deterministic clip choice,
refusals; and one real pocketsphinx pass over a clip flite speaks, when flite and pocketsphinx are installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from recipes.demo.tests._recipes import load

intelligibility = load("measure_intelligibility")


def _voice(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True)
    for index, text in enumerate(texts):
        (folder / f"{folder.name}_{index:03d}.wav").write_bytes(b"")
        (folder / f"{folder.name}_{index:03d}.txt").write_text(text + "\n")
    return folder


def test_words_are_pooled_over_the_first_clips_by_name(tmp_path: Path) -> None:
    voice = _voice(tmp_path / "flite-x", ["one two three four", "five six", "never used"])
    pairs = intelligibility.voice_clips(voice, 2)
    assert [wav.name for wav, _ in pairs] == ["flite-x_000.wav", "flite-x_001.wav"]
    heard = {"flite-x_000.wav": "one two three", "flite-x_001.wav": "five seven"}
    result = intelligibility.measure_voice(pairs, lambda wav: heard[wav.name])
    assert result == {"clips": 2, "words": 6, "words_right": 4, "heard": pytest.approx(4 / 6)}


def test_a_clip_without_its_text_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    voice = _voice(tmp_path / "corpus" / "espeak-y", ["a b"])
    (voice / "espeak-y_009.wav").write_bytes(b"")
    with pytest.raises(SystemExit, match="has no transcript espeak-y_009.txt"):
        intelligibility.voice_clips(voice, 5)
    with pytest.raises(SystemExit, match="--clips 0"):
        intelligibility.main([str(tmp_path / "corpus"), "--clips", "0", "--out", str(tmp_path / "o.json")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no voice folders"):
        intelligibility.main([str(tmp_path / "empty"), "--out", str(tmp_path / "o.json")])
    assert not (tmp_path / "o.json").exists()


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_pocketsphinx_hears_most_of_a_flite_clip(tmp_path: Path) -> None:
    pytest.importorskip("pocketsphinx")
    voice = tmp_path / "corpus" / "flite-kal"
    voice.mkdir(parents=True)
    text = "the quick brown fox jumps over the lazy dog"
    subprocess.run(["flite", "-voice", "kal16", "-t", text, "-o", str(voice / "flite-kal_000.wav")], check=True)
    (voice / "flite-kal_000.txt").write_text(text)
    out = tmp_path / "heard.json"
    assert intelligibility.main([str(tmp_path / "corpus"), "--clips", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clips_per_voice"] == 1 and report["voices"]["flite-kal"]["words"] == 9
    assert report["voices"]["flite-kal"]["heard"] >= 0.5
