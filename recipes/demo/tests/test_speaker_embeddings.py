"""speaker_embeddings.py: one embedding per training voice from up to --clips of its clips, the free-mels folders
under their own names, the space recorded, and a free-mels voice without a training voice refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from recipes.demo.tests._recipes import load

speaker_embeddings = load("speaker_embeddings")
#: the made-up clips are tones: GE2E's speech check would refuse them
TONE = ["-o", "encoder.ge2e.require_speech=false"]


def _voices(root: Path) -> Path:
    """Two voices, ``librispeech-77`` (one clip) and ``alice`` (three), 1.5 s gliding tones at 16 kHz."""
    seconds = np.arange(24000) / 16000
    for voice, base, count in (("librispeech-77", 110.0, 1), ("alice", 210.0, 3)):
        (root / voice).mkdir(parents=True)
        for index in range(count):
            glide = base + 15 * index + 30 * seconds
            soundfile.write(
                root / voice / f"u{index}.wav", (0.3 * np.sin(2 * np.pi * glide * seconds)).astype(np.float32), 16000
            )
    return root


def test_one_embedding_per_voice_and_the_free_mels_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, free, out = _voices(tmp_path / "corpus"), tmp_path / "free", tmp_path / "voices.npz"
    (free / "77").mkdir(parents=True)
    speaker_embeddings.main([str(corpus), "--unpaired-mels", str(free), "--out", str(out), "--clips", "2", *TONE])
    printed = capsys.readouterr().out
    assert "alice: 2 clip(s)" in printed and "librispeech-77: 1 clip(s)" in printed
    with np.load(out, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["77", "__space__", "alice", "librispeech-77"]
        assert str(archive["__space__"]) == "ge2e/rtvc"
        vectors = {name: archive[name] for name in ("77", "alice", "librispeech-77")}
    assert all(vector.shape == (256,) and vector.dtype == np.float32 for vector in vectors.values())
    assert np.allclose(np.linalg.norm(vectors["alice"]), 1.0, atol=1e-4)
    assert np.array_equal(vectors["77"], vectors["librispeech-77"])
    assert not np.allclose(vectors["alice"], vectors["librispeech-77"])
    (free / "99").mkdir()
    with pytest.raises(SystemExit, match="no training voice 'librispeech-99'"):
        speaker_embeddings.main([str(corpus), "--unpaired-mels", str(free), "--out", str(out), *TONE])
    with pytest.raises(SystemExit, match="--clips must be at least 1"):
        speaker_embeddings.main([str(corpus), "--out", str(out), "--clips", "0"])
