"""segment_real.py with stand-in timed words: phrases cut at pauses, doubtful phrases dropped (and never bridged),
confident neighbours joined up to the length limit, pieces written in the generic corpus layout, finished clips
skipped on a rerun, the evaluation split refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from recipes.demo.tests._recipes import load
from vcframe.metrics.asr import HeardWord

segment_real = load("segment_real")


def _heard(*items: tuple[str, float, float, float]) -> list[HeardWord]:
    return [HeardWord(text, start, end, confidence, not text.startswith("<")) for text, start, end, confidence in items]


CLIP = _heard(
    ("<s>", 0.0, 0.4, 1.0),
    ("the", 0.4, 0.6, 0.9),
    ("old", 0.6, 1.0, 0.95),
    ("house", 1.0, 1.5, 0.9),
    ("<sil>", 1.5, 1.7, 1.0),  # a short pause: the next phrase joins
    ("stood", 1.7, 2.1, 0.8),
    ("there", 2.1, 2.5, 0.9),
    ("<sil>", 2.5, 3.5, 1.0),  # a long pause: a new piece
    ("by", 3.5, 3.7, 0.9),
    ("the", 3.7, 3.8, 0.1),  # doubtful: this phrase goes, and breaks the chain
    ("brook", 3.8, 4.2, 0.9),
    ("<sil>", 4.2, 4.4, 1.0),
    ("green", 4.4, 4.8, 0.99),
    ("and", 4.8, 5.0, 0.9),
    ("quiet", 5.0, 5.6, 0.9),
    ("</s>", 5.6, 5.8, 1.0),
)


def test_confident_phrases_become_pieces() -> None:
    pieces = segment_real.confident_pieces(CLIP)
    assert [piece.text for piece in pieces] == ["the old house stood there", "green and quiet"]
    first, second = pieces
    assert first.start == pytest.approx(0.3) and first.end == pytest.approx(2.6)  # padded 0.1 s into the pauses
    assert second.start == pytest.approx(4.3) and second.end == pytest.approx(5.7)
    # a lower bar keeps the doubtful phrase; a length limit stops the joining
    loose = segment_real.confident_pieces(CLIP, min_confidence=0.05)
    assert [piece.text for piece in loose] == ["the old house stood there", "by the brook green and quiet"]
    split = segment_real.confident_pieces(CLIP, max_seconds=1.2)
    assert [piece.text for piece in split] == ["the old house", "green and quiet"]  # 'stood there': 0.8 s < 1 s


def test_pieces_are_written_as_a_generic_corpus_and_reruns_skip(tmp_path: Path) -> None:
    rate = 16000
    flac = tmp_path / "data" / "19-198-0000.flac"
    flac.parent.mkdir()
    soundfile.write(flac, np.linspace(-0.5, 0.5, 6 * rate, dtype="float32"), rate)
    calls: list[Path] = []

    def timed_words(path: Path) -> list[HeardWord]:
        calls.append(path)
        return CLIP

    out = tmp_path / "seg"
    count, seconds, made_now = segment_real.write_clip(flac, out, timed_words)
    assert count == 2 and seconds == pytest.approx(2.3 + 1.4, abs=1e-3) and made_now
    assert (out / "19" / "19-198-0000-00.txt").read_text() == "the old house stood there\n"
    audio, written_rate = soundfile.read(out / "19" / "19-198-0000-01.wav")
    assert written_rate == rate and len(audio) == round(1.4 * rate)
    assert sorted(path.name for path in (out / "19").iterdir() if not path.name.startswith(".")) == [
        "19-198-0000-00.txt",
        "19-198-0000-00.wav",
        "19-198-0000-01.txt",
        "19-198-0000-01.wav",
    ]
    # a rerun skips the clip without recognising it again and reports what the earlier run made
    count, seconds, made_now = segment_real.write_clip(flac, out, timed_words)
    assert (count, not made_now, len(calls)) == (2, True, 1) and seconds == pytest.approx(2.3 + 1.4, abs=0.01)


def test_the_evaluation_split_and_bad_options_are_refused(tmp_path: Path) -> None:
    (tmp_path / "LibriSpeech" / "train-clean-100").mkdir(parents=True)
    with pytest.raises(SystemExit, match="evaluation voices"):
        segment_real.main([str(tmp_path), "--out", str(tmp_path / "o"), "--split", "test-other"])
    with pytest.raises(SystemExit, match="min-confidence"):
        segment_real.main([str(tmp_path), "--out", str(tmp_path / "o"), "--min-confidence", "2"])
    assert not (tmp_path / "o").exists()
