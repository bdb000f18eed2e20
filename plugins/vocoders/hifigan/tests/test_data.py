"""Training segments: whole clips in memory (repeated listings loaded once), aligned windows, seeded epochs, input
mels smoothed across frequency."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from vcframe_hifigan.data import EpochSegments, TrainingClip, collate, load_clips

from vcframe.audio import mel_spectrogram
from vcframe.datasets import MelSmoothing, band_smoothing, load_training_audio
from vcframe.errors import InputError
from vcframe.specs import HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL
from vcframe.testing import speech_like


def test_clips_keep_their_whole_mel_and_the_audio_it_stands_for(tmp_path):
    soundfile.write(tmp_path / "a.wav", speech_like(0.61, 16000) * 0.2, 16000)
    soundfile.write(tmp_path / "b.wav", speech_like(0.5, 16000, f0=200.0), 16000)
    (tmp_path / "list.txt").write_text("a.wav||x\na.wav||x\nb.wav||y\n")
    clips, description, fingerprint = load_clips([tmp_path / "list.txt"], RTVC_SYNTHESIZER_MEL, min_frames=8)
    assert len(clips) == 3 and clips[0] is clips[1]  # listed twice: two segments an epoch, in memory once
    assert description.startswith("2 clips of 2 speakers") and "1 repeated listings" in description
    audio = load_training_audio(tmp_path / "a.wav", 16000)
    assert np.array_equal(clips[0].mel, mel_spectrogram(audio, RTVC_SYNTHESIZER_MEL))  # centred: 1 + L // hop
    assert clips[0].frames == 1 + 9760 // 200 and clips[0].audio.size == clips[0].frames * 200
    assert np.array_equal(clips[0].audio[:9760], audio) and not clips[0].audio[9760:].any()  # zero-padded end
    mels, segments = collate(clips, [(0, 3), (2, 0)], 8, 200)
    assert mels.shape == (2, 80, 8) and segments.shape == (2, 1, 1600)
    assert np.array_equal(segments[0, 0].numpy(), clips[0].audio[600:2200])
    hifigan, _, _ = load_clips([tmp_path / "b.wav"], HIFIGAN_MEL)  # not centred: L // hop frames, no padding
    assert hifigan[0].frames == 11025 // 256 and hifigan[0].audio.size == hifigan[0].frames * 256
    _, _, other = load_clips([tmp_path / "b.wav"], RTVC_SYNTHESIZER_MEL)
    assert other != fingerprint
    with pytest.raises(InputError, match="none of the 2 clips"):
        load_clips([tmp_path / "b.wav", tmp_path / "a.wav"], RTVC_SYNTHESIZER_MEL, min_frames=100)


def test_a_given_mel_must_fit_its_clip(tmp_path):
    soundfile.write(tmp_path / "a.wav", speech_like(0.5, 16000), 16000)
    np.save(tmp_path / "a.npy", np.zeros((80, 60), np.float32))  # 12,000 samples' worth for 8,000
    with pytest.raises(InputError, match="its mel has 60 frames"):
        load_clips([tmp_path], RTVC_SYNTHESIZER_MEL)


def test_epochs_are_seeded_permutations_with_valid_starts():
    frames = [10, 40, 12, 9, 30]
    segments = EpochSegments(frames, batch_size=2, segment_frames=9, seed=5)
    assert len(segments) == 2  # the short last batch is dropped
    first = list(segments)
    assert list(segments) == first  # the same epoch again: the same batches
    clips = [clip for batch in first for clip, _ in batch]
    assert len(set(clips)) == 4 and all(0 <= start <= frames[clip] - 9 for batch in first for clip, start in batch)
    segments.set_epoch(1)
    assert list(segments) != first
    with pytest.raises(InputError, match="cannot fill a batch of 6"):
        EpochSegments(frames, batch_size=6, segment_frames=9, seed=5)
    with pytest.raises(ValueError, match="fewer than a segment's 11"):
        EpochSegments(frames, batch_size=2, segment_frames=11, seed=5)


def test_collate_smooths_the_ground_truth_mels_and_leaves_the_audio_and_given_mels():
    rng = np.random.default_rng(1)
    clips = [  # clip 3's mel is given (a GTA mel): a synthesizer's already, never smoothed
        TrainingClip(f"c{index}", "s", rng.normal(size=(80, 20)).astype(np.float32), rng.normal(size=4000), index == 3)
        for index in range(4)
    ]
    picks = [(0, 0), (1, 3), (2, 5), (3, 12)]
    smoothing = MelSmoothing(2.0, probability=1.0, seed=2)
    plain_mels, plain_audio = collate(clips, picks, 8, 200)
    mels, audio = collate(clips, picks, 8, 200, smoothing)
    assert mels.shape == plain_mels.shape == (4, 80, 8) and np.array_equal(audio.numpy(), plain_audio.numpy())
    for row, (clip, start) in enumerate(picks[:3]):
        assert smoothing.sigma(clip, start) > 0
        expected = band_smoothing(80, smoothing.sigma(clip, start)) @ clips[clip].mel[:, start : start + 8]
        np.testing.assert_allclose(mels[row].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert smoothing.sigma(3, 12) > 0 and np.array_equal(mels[3].numpy(), plain_mels[3].numpy())
