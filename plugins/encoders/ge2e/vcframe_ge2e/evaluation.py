"""Speaker-verification evaluation shared by training (held-out speakers) and the benchmark."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from vcframe_ge2e.loss import equal_error_rate


def mel_partials(mel: np.ndarray, frames: int = 160, step: int = 80) -> np.ndarray:
    """(P, frames, 40) windows of a (T, 40) mel every ``step`` frames (zero-padded when shorter than ``frames``)."""
    if len(mel) < frames:
        padded = np.zeros((frames, mel.shape[1]), np.float32)
        padded[: len(mel)] = mel
        return padded[None]
    starts = range(0, len(mel) - frames + 1, step)
    return np.stack([np.asarray(mel[s : s + frames], dtype=np.float32) for s in starts])


def embed_mels(
    network: torch.nn.Module, mels: list[np.ndarray], frames: int = 160, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """One unit-norm embedding per mel: the normalised mean of its partial embeddings. (B, D)."""
    windows = [mel_partials(mel, frames, frames // 2) for mel in mels]
    counts = [len(w) for w in windows]
    with torch.no_grad():
        partials: torch.Tensor = network(torch.from_numpy(np.concatenate(windows)).to(device)).cpu()
    means = torch.stack([chunk.mean(dim=0) for chunk in torch.split(partials, counts)])
    embeddings: torch.Tensor = means / means.norm(dim=1, keepdim=True)
    return embeddings


def enrol_test_pairs(
    speaker_mels: list[list[np.ndarray]], min_frames: int = 160
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(enrolment, test) mel per speaker: two different utterances, or the two halves of a single one."""
    enrol, test = [], []
    for mels in speaker_mels:
        if len(mels) >= 2:
            enrol.append(mels[0])
            test.append(mels[1])
        else:
            half = len(mels[0]) // 2
            enrol.append(mels[0][:half])
            test.append(mels[0][half:])
    return enrol, test


def verification_eer(enrol: torch.Tensor, test: torch.Tensor) -> float:
    """EER over all (enrolment i, test j) pairs of unit-norm embeddings, target trials where i == j."""
    scores = (enrol @ test.T).numpy()
    labels = np.eye(len(enrol))
    return equal_error_rate(labels, scores)


def evaluate_speakers(
    network: torch.nn.Module,
    speaker_mels: list[list[np.ndarray]],
    device: str | torch.device = "cpu",
    embed: Callable[..., torch.Tensor] = embed_mels,
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """(EER, enrolment embeddings, test embeddings) of the held-out speakers."""
    enrol_mels, test_mels = enrol_test_pairs(speaker_mels)
    enrol = embed(network, enrol_mels, device=device)
    test = embed(network, test_mels, device=device)
    return verification_eer(enrol, test), enrol, test


def projection_plot(embeddings: torch.Tensor, speakers: np.ndarray, path: str, title: str) -> None:
    """2-D PCA projection of embeddings coloured by speaker, written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vcframe._io import atomic_path

    points = embeddings.numpy().astype(np.float64)
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:2].T
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter(projected[:, 0], projected[:, 1], c=speakers, cmap="tab20", s=12)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    with atomic_path(path, suffix=".png") as temp:
        figure.savefig(str(temp), format="png", dpi=80)
    plt.close(figure)
