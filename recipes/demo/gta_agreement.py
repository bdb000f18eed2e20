"""How well GTA mels describe the audio they are paired with: per clip, the GTA mel against the recording's own mel.

    python recipes/demo/gta_agreement.py /work/runs/gta_seg /work/runs/gta --smooth 1.5

A vocoder fine-tuned on GTA pairs (``vcframe train synthesizer gta``, then the vocoder on ``pairs.txt``) learns to
turn the synthesizer's mels into the recording's audio. That works when the teacher-forced frames describe the audio
(voices the synthesizer knows); where they do not, the generator learns to follow its input less. For each GTA folder
(its ``manifest.jsonl`` rows carry ``mel``, the preprocessed ground-truth mel, and ``gta``) this prints the median and
10-90 % range over clips of the Pearson correlation and the mean absolute difference (in the mel's normalised units)
between the two, as they are and after spectrum matching the GTA mel to the clip's own long-term spectrum (what the
pipeline does at clone time, strength 1). ``--smooth S`` adds the same figures for the recordings' mels smoothed
across bands by a Gaussian of S bands against themselves: the mismatch ``--mel-smoothing`` trains for.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def agreement(ground_truth: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(Pearson correlation, mean absolute difference) of two (n_mels, T) mels over their common frames."""
    frames = min(ground_truth.shape[1], other.shape[1])
    truth, compared = ground_truth[:, :frames].ravel(), other[:, :frames].ravel()
    return float(np.corrcoef(truth, compared)[0, 1]), float(np.abs(truth - compared).mean())


def bands_first(mel: np.ndarray, n_mels: int) -> np.ndarray:
    """A saved mel as (n_mels, T) (the synthesizer's files are (T, n_mels))."""
    return mel if mel.shape[0] == n_mels else mel.T


def summary(name: str, pairs: Sequence[tuple[float, float]]) -> str:
    correlations, differences = np.array(pairs).T
    return (
        f"{name}: correlation {np.median(correlations):.3f} ({np.quantile(correlations, 0.1):.3f}-"
        f"{np.quantile(correlations, 0.9):.3f}), mean absolute difference {np.median(differences):.3f} "
        f"({np.quantile(differences, 0.1):.3f}-{np.quantile(differences, 0.9):.3f})"
    )


def folder_report(folder: Path, smooth: float) -> list[str]:
    """The summary lines of one GTA folder (see the module docstring)."""
    import torch

    from vcframe.datasets import band_smoothing
    from vcframe.specs import RTVC_SYNTHESIZER_MEL as spec
    from vcframe.spectrum import long_term_spectrum, match_spectrum
    from vcframe.types import Mel

    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{folder}/manifest.jsonl lists no clips")
    plain, matched, smoothed = [], [], []
    smoothing = band_smoothing(spec.n_mels, smooth) if smooth > 0 else None
    for row in rows:
        truth = bands_first(np.load(row["mel"]), spec.n_mels).astype(np.float32)
        gta = bands_first(np.load(folder / row["gta"]), spec.n_mels).astype(np.float32)
        plain.append(agreement(truth, gta))
        frames = min(truth.shape[1], gta.shape[1])
        mel = Mel(frames=torch.from_numpy(gta[None, :, :frames]), spec=spec, lengths=torch.tensor([frames]))
        reference = long_term_spectrum([truth[:, :frames]], spec)
        matched.append(agreement(truth, match_spectrum(mel, reference, 1.0)[0].frames[0].numpy()))
        if smoothing is not None:
            smoothed.append(agreement(truth, smoothing @ truth))
    lines = [f"{folder} ({len(rows)} clips)", summary("  GTA", plain), summary("  GTA, spectrum matched", matched)]
    if smoothed:
        lines.append(summary(f"  recording smoothed by sigma {smooth:g} bands", smoothed))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders written by vcframe train synthesizer gta")
    parser.add_argument("--smooth", type=float, default=0.0, help="also the recordings smoothed by this sigma (bands)")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if not (folder / "manifest.jsonl").is_file():
            print(f"error: {folder} has no manifest.jsonl; give a 'vcframe train synthesizer gta --out' folder")
            return 2
    for folder in args.folders:
        print("\n".join(folder_report(folder, args.smooth)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
