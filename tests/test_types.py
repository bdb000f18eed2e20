from __future__ import annotations

import numpy as np
import pytest
import torch

from vcframe.specs import GE2E_RTVC_EMBEDDING, RTVC_SYNTHESIZER_MEL
from vcframe.types import Mel, SpeakerEmbedding, Waveform


def test_waveform_from_numpy_pads_and_keeps_lengths() -> None:
    waveform = Waveform.from_numpy([np.ones(5, np.float32), np.ones(3, np.float32)], 16000)
    assert waveform.samples.shape == (2, 5)
    assert waveform.lengths.tolist() == [5, 3]
    assert waveform.item(1).shape == (3,)
    assert waveform.durations == [5 / 16000, 3 / 16000]


def test_waveform_invariants() -> None:
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        Waveform(torch.zeros(3), 16000)
    with pytest.raises(ValueError, match="float32"):
        Waveform(torch.zeros(1, 3, dtype=torch.float64), 16000)
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 3\]"):
        Waveform(torch.zeros(1, 3), 16000, torch.tensor([4]))


def test_concatenate_inserts_gaps_and_checks_rates() -> None:
    one = Waveform.from_numpy(np.ones(10, np.float32), 100)
    joined = Waveform.concatenate([one, one], gap_s=0.05)
    assert joined.samples.shape == (1, 25)
    assert joined.item(0)[10:15].tolist() == [0.0] * 5
    with pytest.raises(ValueError, match="100 Hz and 200 Hz"):
        Waveform.concatenate([one, Waveform.from_numpy(np.ones(3, np.float32), 200)])


def test_mel_checks_bands_against_spec() -> None:
    with pytest.raises(ValueError, match="has 40 bands but its spec says n_mels=80"):
        Mel(torch.zeros(1, 40, 5), RTVC_SYNTHESIZER_MEL)
    mel = Mel.from_numpy([np.zeros((80, 4), np.float32), np.zeros((80, 2), np.float32)], RTVC_SYNTHESIZER_MEL)
    assert mel.lengths.tolist() == [4, 2]
    assert float(mel.frames[1, 0, 3]) == -4.0  # padded with the spec's silence
    assert mel.select(1).frames.shape == (1, 80, 2)


def test_embedding_mean_is_normalised_and_roundtrips(tmp_path) -> None:
    vectors = torch.nn.functional.normalize(torch.rand(3, 256), dim=1)
    embedding = SpeakerEmbedding(vectors, GE2E_RTVC_EMBEDDING)
    centroid = embedding.mean()
    assert centroid.vector.shape == (1, 256)
    assert float(centroid.vector.norm()) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="dimension 8 but its spec says dim=256"):
        SpeakerEmbedding(torch.zeros(1, 8), GE2E_RTVC_EMBEDDING)
    path = tmp_path / "voice.npy"
    centroid.save(str(path))
    loaded = SpeakerEmbedding.load(str(path))
    assert loaded.spec == GE2E_RTVC_EMBEDDING
    assert torch.equal(loaded.vector, centroid.vector)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.npy", "voice.npy.json"]
