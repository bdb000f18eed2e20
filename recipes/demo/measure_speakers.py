#!/usr/bin/env python
"""How distinct are the corpus speakers to the GE2E encoder? Prints a cosine table.

    python recipes/demo/measure_speakers.py /work/corpus/demo /work/corpus/demo_eval [--clips 6]

Embeds up to ``--clips`` clips of every ``<folder>/<speaker>/*.wav`` with the GE2E plugin's default weights (the
pretrained resemblyzer encoder), averages them into a speaker centroid, and prints for each speaker its nearest
other speaker and their centroid cosine, plus the mean same-speaker cosine (clip to own centroid). Speakers whose
nearest neighbour is at cosine >= ``--threshold`` (0.80) are not distinct identities to GE2E.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="corpus folders in the <speaker>/<utt>.wav layout")
    parser.add_argument("--clips", type=int, default=6, help="clips per speaker (the first, in name order)")
    parser.add_argument("--threshold", type=float, default=0.80, help="centroid cosine at which two speakers merge")
    args = parser.parse_args(argv)

    import torch
    from vcframe_ge2e.model import GE2EEncoder
    from vcframe_ge2e.spec import GE2EConfig

    torch.set_num_threads(1)
    encoder = GE2EEncoder(GE2EConfig())
    names: list[str] = []
    centroids, own_cosines = [], []
    for folder in args.folders:
        for speaker_dir in sorted(path for path in folder.iterdir() if path.is_dir()):
            clips = sorted(speaker_dir.glob("*.wav"))[: args.clips]
            if not clips:
                continue
            wavs = [soundfile.read(path, dtype="float32")[0] for path in clips]
            embeddings = torch.stack([result.embedding for result in encoder.embed_utterances(wavs)]).numpy()
            centroid = embeddings.mean(axis=0)
            centroid /= np.linalg.norm(centroid)
            names.append(speaker_dir.name)
            centroids.append(centroid)
            own_cosines.append(float((embeddings @ centroid).mean()))
    matrix = np.stack(centroids) @ np.stack(centroids).T
    np.fill_diagonal(matrix, -1.0)
    print("| speaker | nearest other speaker | centroid cosine | own clips to own centroid |")
    print("|---|---|---|---|")
    for row, name in enumerate(names):
        nearest = int(np.argmax(matrix[row]))
        flag = " **merge**" if matrix[row, nearest] >= args.threshold else ""
        print(f"| {name} | {names[nearest]} | {matrix[row, nearest]:.3f}{flag} | {own_cosines[row]:.3f} |")
    distinct = sum(matrix[row].max() < args.threshold for row in range(len(names)))
    upper = matrix[np.triu_indices(len(names), k=1)]
    print(
        f"\n{distinct} of {len(names)} speakers have no other speaker at cosine >= {args.threshold}; "
        f"pairwise centroid cosine: max {upper.max():.3f}, mean {upper.mean():.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
