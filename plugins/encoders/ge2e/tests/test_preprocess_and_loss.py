"""Silence trimming (webrtcvad optional, energy fallback), partial slices, EER and GE2E loss."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from vcframe_ge2e import preprocess
from vcframe_ge2e.loss import equal_error_rate, ge2e_loss, similarity_matrix


def clip_with_pause() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    speech = (0.2 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2).astype(np.float32)
    silence = (1e-4 * rng.standard_normal(16000)).astype(np.float32)
    return np.concatenate([speech, silence, speech])


def test_energy_trim_removes_long_silence():
    wav = clip_with_pause()
    trimmed = preprocess.trim_long_silences(wav, "energy")
    assert len(trimmed) % 480 == 0
    assert 32000 <= len(trimmed) < 44000  # the two seconds of tone plus at most the dilation margin


def test_auto_falls_back_to_energy_and_warns_once(monkeypatch):
    monkeypatch.setattr(preprocess, "webrtcvad_available", lambda: False)
    monkeypatch.setattr(preprocess, "_fallback_warned", False)
    wav = clip_with_pause()
    with pytest.warns(RuntimeWarning, match="webrtcvad"):
        first = preprocess.trim_long_silences(wav, "auto")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = preprocess.trim_long_silences(wav, "auto")
    np.testing.assert_array_equal(first, preprocess.trim_long_silences(wav, "energy"))
    np.testing.assert_array_equal(first, second)
    with pytest.raises(ImportError, match="vcframe-ge2e\\[vad\\]"):
        preprocess.trim_long_silences(wav, "webrtc")


def test_all_silent_clip_is_kept_not_emptied():
    wav = np.zeros(9600, np.float32)
    assert len(preprocess.trim_long_silences(wav, "energy")) == 9600


def test_smoothing_and_dilation_match_rtvc_with_scipy():
    """RTVC dilates the smoothed voice mask with scipy.ndimage; the encoder computes the same without scipy."""
    from scipy.ndimage import binary_dilation

    rng = np.random.default_rng(3)
    width = preprocess.VAD_MOVING_AVERAGE_WIDTH
    for length in (1, 3, 7, 20, 301):
        for voiced_share in (0.05, 0.3, 0.7):
            flags = rng.random(length) < voiced_share
            padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
            cumulative = np.cumsum(padded, dtype=float)
            cumulative[width:] = cumulative[width:] - cumulative[:-width]
            smoothed = np.round(cumulative[width - 1 :] / width).astype(bool)
            expected = binary_dilation(smoothed, np.ones(preprocess.VAD_MAX_SILENCE_WINDOWS + 1))
            mask = preprocess._smooth_and_dilate(flags)
            assert mask.dtype == expected.dtype
            np.testing.assert_array_equal(mask, expected)


def test_volume_normalisation_only_increases():
    loud = np.full(100, 0.5, np.float32)
    np.testing.assert_array_equal(preprocess.normalize_volume(loud, -30.0), loud)
    quiet = np.full(100, 0.001, np.float32)
    level = 10 * np.log10(np.mean(preprocess.normalize_volume(quiet, -30.0) ** 2))
    assert level == pytest.approx(-30.0, abs=1e-3)


def test_eer_matches_sklearn_roc_recipe():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq

    rng = np.random.default_rng(1)
    labels = (rng.random(400) < 0.2).astype(int)
    scores = rng.standard_normal(400) + 1.5 * labels
    scores[:50] = np.round(scores[:50], 1)  # ties
    fpr, tpr, _ = sklearn_metrics.roc_curve(labels, scores)
    expected = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    assert equal_error_rate(labels, scores) == pytest.approx(expected, abs=1e-9)


def test_similarity_matrix_matches_rtvc_loop():
    generator = torch.Generator().manual_seed(0)
    embeds = torch.nn.functional.normalize(torch.rand(3, 4, 8, generator=generator), dim=2)
    weight, bias = torch.tensor([10.0]), torch.tensor([-5.0])
    incl = embeds.mean(dim=1, keepdim=True)
    incl = incl / (incl.norm(dim=2, keepdim=True) + 1e-5)
    excl = (embeds.sum(dim=1, keepdim=True) - embeds) / 3
    excl = excl / (excl.norm(dim=2, keepdim=True) + 1e-5)
    expected = torch.zeros(3, 4, 3)
    for j in range(3):
        others = [k for k in range(3) if k != j]
        expected[others, :, j] = (embeds[others] * incl[j]).sum(dim=2)
        expected[j, :, j] = (embeds[j] * excl[j]).sum(dim=1)
    torch.testing.assert_close(similarity_matrix(embeds, weight, bias), expected * 10 - 5)
    loss, _ = ge2e_loss(embeds, weight, bias)
    assert loss.shape == ()
    with pytest.raises(ValueError, match="at least 2"):
        similarity_matrix(embeds[:, :1], weight, bias)
