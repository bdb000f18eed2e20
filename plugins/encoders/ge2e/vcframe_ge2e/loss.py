"""GE2E softmax loss (Wan et al. 2018) and the equal error rate, as RTVC computes them."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def similarity_matrix(embeds: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Scaled cosine similarity of every utterance to every speaker centroid.

    Args:
        embeds: (N speakers, M utterances, D), unit-norm rows; M >= 2.
        weight, bias: (1,) learnable scale and offset (RTVC init 10 and -5).

    Returns (N, M, N): ``S[j, i, k] = w * cos(e[j, i], c_k) + b``, where ``c_k`` is speaker k's centroid
    (inclusive) for k != j and the centroid of speaker j's *other* utterances (exclusive) for k == j.
    """
    if embeds.dim() != 3:
        raise ValueError(f"embeds must be (N, M, D), got {tuple(embeds.shape)}")
    speakers, utterances = embeds.shape[:2]
    if utterances < 2:
        raise ValueError(f"GE2E needs at least 2 utterances per speaker, got {utterances}")
    centroids_incl = embeds.mean(dim=1, keepdim=True)
    centroids_incl = centroids_incl / (torch.norm(centroids_incl, dim=2, keepdim=True) + 1e-5)
    centroids_excl = (embeds.sum(dim=1, keepdim=True) - embeds) / (utterances - 1)
    centroids_excl = centroids_excl / (torch.norm(centroids_excl, dim=2, keepdim=True) + 1e-5)
    # (N, M, 1, D) * (1, 1, N, D) -> (N, M, N)
    incl = (embeds.unsqueeze(2) * centroids_incl.squeeze(1).unsqueeze(0).unsqueeze(0)).sum(dim=3)
    excl = (embeds * centroids_excl).sum(dim=2)  # (N, M)
    own = torch.eye(speakers, dtype=torch.bool, device=embeds.device).unsqueeze(1)  # (N, 1, N)
    sim = torch.where(own, excl.unsqueeze(2), incl)
    return sim * weight + bias


def ge2e_loss(embeds: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, similarity matrix) for embeds (N, M, D): mean cross-entropy of each row against its speaker."""
    speakers, utterances = embeds.shape[:2]
    sim = similarity_matrix(embeds, weight, bias)
    target = torch.arange(speakers, device=embeds.device).repeat_interleave(utterances)
    return F.cross_entropy(sim.reshape(speakers * utterances, speakers), target), sim


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct threshold, from (0, 0) up, like sklearn's ``roc_curve``."""
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order].astype(np.float64)
    distinct = np.where(np.diff(scores))[0]
    ends = np.r_[distinct, labels.size - 1]
    tps = np.cumsum(labels)[ends]
    fps = 1 + ends - tps
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    if fps[-1] <= 0 or tps[-1] <= 0:
        raise ValueError("the EER needs both positive and negative pairs")
    return fps / fps[-1], tps / tps[-1]


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """EER: where the false-acceptance rate equals the false-rejection rate (RTVC's brentq recipe).

    ``labels`` are 1 for target (same-speaker) trials and 0 otherwise; higher ``scores`` mean "same".
    """
    from scipy.optimize import brentq

    fpr, tpr = roc_points(np.asarray(labels).ravel(), np.asarray(scores, dtype=np.float64).ravel())
    return float(brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0))


def ge2e_eer(sim: torch.Tensor) -> float:
    """EER of a (N, M, N) similarity matrix, one-hot speaker labels against the scores (RTVC's training EER)."""
    speakers, utterances = sim.shape[:2]
    labels = np.repeat(np.eye(speakers), utterances, axis=0)
    return equal_error_rate(labels, sim.detach().cpu().numpy().reshape(speakers * utterances, speakers))
