"""transcribe_real.py with a stand-in recogniser: a LibriSpeech tree of links and upper-case transcripts that the
Tacotron preprocess reads, silent clips left out, finished chapters skipped on a rerun, evaluation split refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipes.demo.tests._recipes import load

transcribe_real = load("transcribe_real")


def _librispeech(root: Path) -> Path:
    split = root / "librispeech" / "LibriSpeech" / "train-clean-100"
    for speaker, chapter, utterances in (("19", "198", 2), ("26", "495", 1)):
        folder = split / speaker / chapter
        folder.mkdir(parents=True)
        for index in range(utterances):
            (folder / f"{speaker}-{chapter}-{index:04d}.flac").write_bytes(b"flac " + speaker.encode())
    (root / "librispeech" / "LibriSpeech" / "test-other" / "1688" / "142285").mkdir(parents=True)
    return root


def test_the_tree_is_librispeech_layout_with_links_and_heard_words(tmp_path: Path) -> None:
    data = _librispeech(tmp_path / "data")
    heard = {"19-198-0000": "the  cat sat", "19-198-0001": "", "26-495-0000": "a dog"}
    calls: list[str] = []

    def transcribe(flac: Path) -> str:
        calls.append(flac.stem)
        return heard[flac.stem]

    out = tmp_path / "asr"
    root = transcribe_real.librispeech_root(data)
    counts = transcribe_real.transcribe_tree(root, out, "train-clean-100", transcribe, lambda line: None)
    assert counts == {"written": 2, "silent": 1, "skipped": 0}
    chapter = out / "train-clean-100" / "19" / "198"
    assert (chapter / "19-198.trans.txt").read_text() == "19-198-0000 THE CAT SAT\n"
    link = chapter / "19-198-0000.flac"
    assert link.is_symlink() and link.read_bytes() == b"flac 19"
    assert not (chapter / "19-198-0001.flac").exists()

    from vcframe_tacotron.preprocess import find_librispeech

    utterances = list(find_librispeech(out))
    assert [(u.speaker, u.text) for u in utterances] == [("19", "THE CAT SAT"), ("26", "A DOG")]

    calls.clear()
    again = transcribe_real.transcribe_tree(root, out, "train-clean-100", transcribe, lambda line: None)
    assert again == {"written": 0, "silent": 0, "skipped": 3} and calls == []


def test_the_evaluation_split_and_missing_trees_are_refused(tmp_path: Path) -> None:
    data = _librispeech(tmp_path / "data")
    root = transcribe_real.librispeech_root(data)
    with pytest.raises(SystemExit, match="evaluation voices"):
        transcribe_real.chapters(root, "test-other")
    with pytest.raises(SystemExit, match="dev-clean does not exist"):
        transcribe_real.chapters(root, "dev-clean")
    with pytest.raises(SystemExit, match="no LibriSpeech split folders"):
        transcribe_real.librispeech_root(tmp_path)
