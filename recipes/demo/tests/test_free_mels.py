"""free_mels.py on a made-up LibriSpeech tree: the shipped synthesizer's mels of its speaker, (n_mels, T) with their
texts (training sentences, never the benchmark's held-out ones), resumable and deterministic; the evaluation splits
are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from recipes.demo.tests._recipes import load

free_mels = load("free_mels")
#: the made-up clip is a tone: GE2E's speech check would refuse it
TONE = ["-o", "encoder.ge2e.require_speech=false"]


def _librispeech(root: Path) -> Path:
    """One train-clean-100 speaker with one 2 s clip (a gliding tone with noise, 16 kHz FLAC)."""
    folder = root / "librispeech" / "LibriSpeech" / "train-clean-100" / "77" / "1"
    folder.mkdir(parents=True)
    seconds = np.arange(32000) / 16000
    rng = np.random.default_rng(0)
    signal = 0.3 * np.sin(2 * np.pi * (120 + 40 * seconds) * seconds) + 0.02 * rng.standard_normal(seconds.size)
    soundfile.write(folder / "77-1-0000.flac", signal.astype(np.float32), 16000)
    return root


def test_mels_texts_resume_and_determinism(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared, out = _librispeech(tmp_path / "data"), tmp_path / "free"
    free_mels.main([str(shared), "--out", str(out), "--per-speaker", "2", *TONE])
    assert "2 mels written" in capsys.readouterr().out
    mels = sorted((out / "77").glob("*.npy"))
    assert [path.name for path in mels] == ["77_0.npy", "77_1.npy"]
    first = np.load(mels[0])
    assert first.dtype == np.float32 and first.shape[0] == 80 and first.shape[1] > 20 and np.isfinite(first).all()
    texts = [path.with_suffix(".txt").read_text().strip() for path in mels]
    training = free_mels.training_sentences()
    assert texts == training[:2]
    recipe = load("make_corpus")
    plan = recipe.make_plan(recipe.build_parser().parse_args(["--out", str(tmp_path), "--eval-out", str(tmp_path)]))
    held_out = {text for _, text in plan.eval_sentences}
    assert len(held_out) > 0 and not held_out & set(training)  # the benchmark's sentences are never synthesized
    free_mels.main([str(shared), "--out", str(out), "--per-speaker", "2", *TONE])
    assert "0 mels written" in capsys.readouterr().out  # everything there: nothing made again
    mels[0].unlink()
    free_mels.main([str(shared), "--out", str(out), "--per-speaker", "2", *TONE])
    assert "1 mels written" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(mels[0]), first, atol=1e-4)
    assert (out / "mel_spec.json").is_file()


def test_evaluation_splits_and_a_missing_split_are_refused(tmp_path: Path) -> None:
    shared = _librispeech(tmp_path / "data")
    with pytest.raises(SystemExit, match="test-other holds the evaluation voices"):
        free_mels.main([str(shared), "--out", str(tmp_path / "free"), "--split", "test-other"])
    with pytest.raises(SystemExit, match="no LibriSpeech split 'dev-clean'"):
        free_mels.main([str(shared), "--out", str(tmp_path / "free"), "--split", "dev-clean"])
    assert not (tmp_path / "free").exists()
