"""Sample-domain helpers of RTVC's vocoder: mu-law, folding, cross-fading, fades (numpy float64).

Bit-exact with RTVC on the same CPU; numpy's vectorised ``log``/``power`` differ between CPUs in the last bit,
so the mu-law companding matches RTVC's fixtures elsewhere within 1e-9 (``vcframe.testing.golden``).
"""

from __future__ import annotations

import numpy as np
import torch


def encode_mu_law(samples: np.ndarray, mu: int) -> np.ndarray:
    """Float samples in [-1, 1] -> int64 labels in [0, mu - 1] (RTVC: ``mu = 2**bits``)."""
    mu = mu - 1
    companded = np.sign(samples) * np.log(1 + mu * np.abs(samples)) / np.log(1 + mu)
    labels: np.ndarray = np.floor((companded + 1) / 2 * mu + 0.5).astype(np.int64)
    return labels


def decode_mu_law(values: np.ndarray, mu: int) -> np.ndarray:
    """Companded values in [-1, 1] -> linear samples, exactly RTVC's ``decode_mu_law(y, mu, False)``."""
    mu = mu - 1
    samples: np.ndarray = np.sign(values) / mu * ((1 + mu) ** np.abs(values) - 1)
    return samples


def label_to_float(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class index -> network input in [-1, 1], computed as RTVC computes it (float32 ops, same rounding)."""
    return 2 * labels.float() / (n_classes - 1.0) - 1.0


def fold_with_overlap(sequence: torch.Tensor, target: int, overlap: int) -> torch.Tensor:
    """RTVC's ``fold_with_overlap``: (1, L, C) -> (F, target + 2 overlap, C), zero-padded at the end.

    Fold ``i`` starts at ``i * (target + overlap)``. RTVC produces no fold when ``L < overlap``; here such a
    short sequence gives one zero-padded fold.
    """
    _, total_len, features = sequence.size()
    num_folds = (total_len - overlap) // (target + overlap)
    extended_len = num_folds * (overlap + target) + overlap
    remaining = total_len - extended_len
    if num_folds < 0:  # shorter than the overlap: RTVC would produce nothing
        num_folds, remaining = 0, total_len - overlap
    if remaining != 0:
        num_folds += 1
        padding = target + 2 * overlap - remaining
        padded = sequence.new_zeros(1, total_len + padding, features)
        padded[:, :total_len] = sequence
        sequence = padded
    folded = sequence.new_zeros(num_folds, target + 2 * overlap, features)
    for index in range(num_folds):
        start = index * (target + overlap)
        folded[index] = sequence[0, start : start + target + 2 * overlap, :]
    return folded


def crossfade_windows(overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """RTVC's equal-power (fade_in, fade_out) of ``overlap`` samples, each with ``overlap // 2`` zeros."""
    silence_len = overlap // 2
    fade_len = overlap - silence_len
    silence = np.zeros(silence_len, dtype=np.float64)
    ramp = np.linspace(-1, 1, fade_len, dtype=np.float64)
    fade_in = np.concatenate([silence, np.sqrt(0.5 * (1 + ramp))])
    fade_out = np.concatenate([np.sqrt(0.5 * (1 - ramp)), silence])
    return fade_in, fade_out


def xfade_and_unfold(folds: np.ndarray, target: int, overlap: int) -> np.ndarray:
    """RTVC's ``xfade_and_unfold``: (F, n) float64 -> (F * (target + overlap) + overlap,), input not modified.

    ``target`` is recomputed from ``n`` as RTVC does. Every fold is faded in and out on its first and last
    ``overlap`` samples, then the folds are overlap-added.
    """
    num_folds, length = folds.shape
    target = length - 2 * overlap
    total_len = num_folds * (target + overlap) + overlap
    faded = np.array(folds, dtype=np.float64, copy=True)
    if overlap:
        fade_in, fade_out = crossfade_windows(overlap)
        faded[:, :overlap] *= fade_in
        faded[:, -overlap:] *= fade_out
    unfolded = np.zeros(total_len, dtype=np.float64)
    for index in range(num_folds):
        start = index * (target + overlap)
        unfolded[start : start + target + 2 * overlap] += faded[index]
    return unfolded


def rtvc_fade_out(length: int, hop_length: int) -> np.ndarray:
    """The final linear fade RTVC applies (``20 * hop`` samples), cut to ``length`` for short outputs.

    RTVC crashes when the output is shorter than the fade (mels under 21 frames); here the fade then spans
    the whole output, ending at 0 as RTVC's does.
    """
    fade_len = 20 * hop_length
    if length >= fade_len:
        return np.linspace(1, 0, fade_len)
    return np.linspace(1, 0, length)
