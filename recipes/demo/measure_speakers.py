#!/usr/bin/env python
"""How distinct are the corpus speakers to the GE2E encoder, and how close do they come to real voices?

    python recipes/demo/measure_speakers.py /work/corpus/demo /work/corpus/demo_eval [--clips 6]
    python recipes/demo/measure_speakers.py /work/corpus/many_trial /work/corpus/many_trial_eval --clips 4 \\
        --real /work/shared/data/librispeech/LibriSpeech/train-clean-100 \\
        --real /work/shared/data/librispeech/LibriSpeech/test-other --before 15 [--json out.json]

Embeds up to ``--clips`` clips of every ``<folder>/<speaker>/*.wav`` with the GE2E plugin's default weights (the
pretrained resemblyzer encoder), averages them into a speaker centroid, and prints for each speaker its nearest
other speaker and their centroid cosine, plus the mean same-speaker cosine (clip to own centroid). Speakers whose
nearest neighbour is at cosine >= ``--threshold`` (0.80) are not distinct identities to GE2E.

Where a folder holds the recipe's ``speakers.json``, its ``split`` tells training speakers from held-out ones:
the summary then gives the largest cosine between two training speakers and every training pair at or over
the threshold (the bar: none), and each held-out speaker's nearest training speaker. Folders without it count
as training speakers.

``--real`` (LibriSpeech's ``<split>/<speaker>/<chapter>/*.flac`` layout; repeatable) adds, for each real speaker
(centroid of its first ``--real-clips`` clips), the cosine to its nearest training speaker: mean and quartiles,
by sex (from LibriSpeech's ``SPEAKERS.TXT``, found beside the split folders), per split, for all training
speakers ("after") and, with ``--before N``, for the first N training speakers in ``speakers.json`` order (the
catalogue's order: the 15 voices of the recipe before the WORLD voices come first, so ``--before 15``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile


@dataclass
class Centroids:
    """Unit-norm GE2E speaker centroids (speakers, dim) with names and, per speaker, the mean clip-to-centroid
    cosine and the role (train | eval for corpus speakers; the split folder's name for real speakers)."""

    names: list[str]
    vectors: np.ndarray
    own_cosines: list[float]
    roles: list[str]


def centroid_of(encoder: object, clips: Sequence[Path]) -> tuple[np.ndarray, float]:
    """(unit-norm centroid of the clips' GE2E embeddings, mean cosine of a clip to it)."""
    import torch

    wavs = [soundfile.read(path, dtype="float32")[0] for path in clips]
    embeddings = torch.stack([result.embedding for result in encoder.embed_utterances(wavs)]).numpy()  # type: ignore[attr-defined]
    centroid = embeddings.mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    return centroid, float((embeddings @ centroid).mean())


def speaker_roles(folder: Path) -> dict[str, str]:
    """speaker id -> split from the recipe's speakers.json (in catalogue order), or {} without one."""
    path = folder / "speakers.json"
    if not path.is_file():
        return {}
    return {name: str(info.get("split", "train")) for name, info in json.loads(path.read_text()).items()}


def corpus_centroids(encoder: object, folders: Sequence[Path], clips: int) -> Centroids:
    """Centroids of every ``<folder>/<speaker>/`` with clips, in catalogue order where speakers.json gives it."""
    roles: dict[str, str] = {}
    for folder in folders:
        roles.update(speaker_roles(folder))
    order = {name: rank for rank, name in enumerate(roles)}
    speaker_dirs = [path for folder in folders for path in sorted(folder.iterdir()) if path.is_dir()]
    speaker_dirs.sort(key=lambda path: order.get(path.name, len(order)))  # stable: folder order otherwise
    result = Centroids([], np.zeros((0, 0)), [], [])
    vectors = []
    for speaker_dir in speaker_dirs:
        wavs = sorted(speaker_dir.glob("*.wav"))[:clips]
        if not wavs:
            continue
        centroid, own = centroid_of(encoder, wavs)
        result.names.append(speaker_dir.name)
        result.roles.append(roles.get(speaker_dir.name, "train"))
        result.own_cosines.append(own)
        vectors.append(centroid)
    if not vectors:
        raise SystemExit(f"no <speaker>/*.wav clips under {', '.join(map(str, folders))}")
    result.vectors = np.stack(vectors)
    return result


def librispeech_sexes(split_folder: Path) -> dict[str, str]:
    """LibriSpeech reader id -> 'F' | 'M' from the first SPEAKERS.TXT found at or above the split folder."""
    for folder in (split_folder, *split_folder.parents):
        path = folder / "SPEAKERS.TXT"
        if path.is_file():
            sexes = {}
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                fields = [field.strip() for field in line.split("|")]
                if not line.startswith(";") and len(fields) >= 2:
                    sexes[fields[0]] = fields[1]
            return sexes
    return {}


def real_centroids(encoder: object, split_folders: Sequence[Path], clips: int) -> tuple[Centroids, list[str]]:
    """Centroids of LibriSpeech speakers (``<split>/<speaker>/<chapter>/*.flac``) and each one's sex ('?' if
    unknown); roles are the split folders' names."""
    result = Centroids([], np.zeros((0, 0)), [], [])
    vectors, sexes = [], []
    for split_folder in split_folders:
        sex_of = librispeech_sexes(split_folder)
        for speaker_dir in sorted(path for path in split_folder.iterdir() if path.is_dir()):
            flacs = sorted(speaker_dir.rglob("*.flac"))[:clips]
            if not flacs:
                continue
            centroid, own = centroid_of(encoder, flacs)
            result.names.append(f"{split_folder.name}/{speaker_dir.name}")
            result.roles.append(split_folder.name)
            result.own_cosines.append(own)
            vectors.append(centroid)
            sexes.append(sex_of.get(speaker_dir.name, "?"))
    if not vectors:
        raise SystemExit(f"no <speaker>/<chapter>/*.flac clips under {', '.join(map(str, split_folders))}")
    result.vectors = np.stack(vectors)
    return result, sexes


def distribution(values: np.ndarray) -> str:
    """'mean m, quartiles q1/median/q3, min..max (n)' of a 1-D array."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return (
        f"mean {values.mean():.3f}, quartiles {q1:.3f}/{median:.3f}/{q3:.3f}, "
        f"range {values.min():.3f}..{values.max():.3f} (n={len(values)})"
    )


def distinct_cover(cosines: np.ndarray, threshold: float) -> list[int]:
    """Rows of a speaker set whose pairwise cosines all stay below ``threshold``: from a symmetric cosine matrix,
    drop one speaker at a time, the one in most pairs at or over the threshold (ties: the one with the highest
    such cosine, then the later row), until no such pair is left. Greedy, so a lower bound on the largest such
    set; it returns the kept rows in order."""
    if cosines.ndim != 2 or cosines.shape[0] != cosines.shape[1]:
        raise ValueError(f"cosines must be a square matrix, got shape {cosines.shape}")
    over = cosines >= threshold
    np.fill_diagonal(over, False)
    kept = np.ones(len(cosines), dtype=bool)
    while True:
        counts = (over & kept[None, :] & kept[:, None]).sum(axis=1)
        if not counts.any():
            return [int(row) for row in np.flatnonzero(kept)]
        worst = np.where(kept[None, :] & over, cosines, -np.inf).max(axis=1)
        candidates = np.flatnonzero(counts == counts.max())
        drop = max(candidates, key=lambda row: (worst[row], row))
        kept[drop] = False


def training_pairs(speakers: Centroids, threshold: float) -> dict[str, object]:
    """Summary of the centroid cosines between training speakers; prints the pairs at or over the threshold."""
    train = [row for row, role in enumerate(speakers.roles) if role == "train"]
    matrix = speakers.vectors[train] @ speakers.vectors[train].T
    upper_rows, upper_cols = np.triu_indices(len(train), k=1)
    upper = matrix[upper_rows, upper_cols]
    over = [
        (float(matrix[row, col]), speakers.names[train[row]], speakers.names[train[col]])
        for row, col in zip(upper_rows, upper_cols, strict=True)
        if matrix[row, col] >= threshold
    ]
    print(
        f"\ntraining speakers: {len(train)}; {len(upper)} pairs; centroid cosine max "
        f"{upper.max() if len(upper) else float('nan'):.3f}, mean {upper.mean() if len(upper) else float('nan'):.3f}; "
        f"{len(over)} pairs at or over {threshold}"
    )
    for cosine, first, second in sorted(over, reverse=True):
        print(f"  {cosine:.3f}  {first}  {second}")
    kept = set(distinct_cover(matrix, threshold))
    dropped = [speakers.names[train[row]] for row in range(len(train)) if row not in kept]
    print(
        f"distinct training voices (greedy cover, every pair below {threshold}): {len(kept)} of {len(train)}"
        + (f"; dropped: {', '.join(dropped)}" if dropped else "")
    )
    return {
        "distinct_training_speakers": len(kept),
        "dropped_for_distinctness": dropped,
        "training_speakers": len(train),
        "max_pair_cosine": float(upper.max()) if len(upper) else None,
        "mean_pair_cosine": float(upper.mean()) if len(upper) else None,
        "pairs_at_or_over_threshold": [[first, second, cosine] for cosine, first, second in sorted(over, reverse=True)],
    }


def held_out_neighbours(speakers: Centroids) -> dict[str, list[object]]:
    """Each held-out (eval) speaker's nearest training speaker and their cosine; printed."""
    train = [row for row, role in enumerate(speakers.roles) if role == "train"]
    held = [row for row, role in enumerate(speakers.roles) if role != "train"]
    if not held or not train:
        return {}
    cosines = speakers.vectors[held] @ speakers.vectors[train].T
    print("\nheld-out speaker -> nearest training speaker:")
    result: dict[str, list[object]] = {}
    for index, row in enumerate(held):
        nearest = int(np.argmax(cosines[index]))
        result[speakers.names[row]] = [speakers.names[train[nearest]], float(cosines[index, nearest])]
        print(f"  {speakers.names[row]} -> {speakers.names[train[nearest]]} {cosines[index, nearest]:.3f}")
    return result


def real_coverage(
    speakers: Centroids, real: Centroids, sexes: list[str], before: int | None
) -> dict[str, dict[str, object]]:
    """Cosine from each real speaker to its nearest training speaker, for all training speakers ('after') and
    the first ``before`` ones ('before'); distributions printed per split and sex."""
    train = [row for row, role in enumerate(speakers.roles) if role == "train"]
    sets = {"after": train}
    if before is not None:
        if not 0 < before <= len(train):
            raise SystemExit(f"--before {before} must be between 1 and the {len(train)} training speakers")
        sets = {"before": train[:before], "after": train}
    report: dict[str, dict[str, object]] = {}
    sex_array = np.array(sexes)
    for label, rows in sets.items():
        cosines = real.vectors @ speakers.vectors[rows].T
        nearest = np.argmax(cosines, axis=1)
        best = cosines[np.arange(len(real.names)), nearest]
        print(f"\nreal voices -> nearest of {len(rows)} training speakers ({label}):")
        groups: dict[str, np.ndarray] = {"all": np.ones(len(best), dtype=bool)}
        for role in dict.fromkeys(real.roles):
            groups[role] = np.array([own == role for own in real.roles])
        for sex in ("F", "M"):
            groups[f"sex {sex}"] = sex_array == sex
        summary = {}
        for name, mask in groups.items():
            if mask.any():
                print(f"  {name}: {distribution(best[mask])}")
                summary[name] = {
                    "mean": float(best[mask].mean()),
                    "quartiles": [float(value) for value in np.percentile(best[mask], [25, 50, 75])],
                    "count": int(mask.sum()),
                }
        used = np.bincount(nearest, minlength=len(rows))
        print(f"  training speakers nearest to at least one real voice: {int((used > 0).sum())} of {len(rows)}")
        report[label] = {
            "summary": summary,
            "nearest": {
                real.names[index]: [speakers.names[rows[int(nearest[index])]], float(best[index]), sexes[index]]
                for index in range(len(real.names))
            },
        }
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="corpus folders in the <speaker>/<utt>.wav layout")
    parser.add_argument("--clips", type=int, default=6, help="clips per speaker (the first, in name order)")
    parser.add_argument("--threshold", type=float, default=0.80, help="centroid cosine at which two speakers merge")
    parser.add_argument(
        "--real", type=Path, action="append", default=[], help="a LibriSpeech split folder of real voices (repeatable)"
    )
    parser.add_argument("--real-clips", type=int, default=3, help="clips per real speaker")
    parser.add_argument(
        "--before", type=int, help="also measure the real voices against only the first N training speakers"
    )
    parser.add_argument("--json", type=Path, help="write every number printed (and per-voice details) here")
    args = parser.parse_args(argv)
    for folder in [*args.folders, *args.real]:
        if not folder.is_dir():
            raise SystemExit(f"{folder} is not a folder; pass corpus folders (and LibriSpeech split folders)")
    if args.clips < 1 or args.real_clips < 1:
        raise SystemExit(f"--clips and --real-clips must be at least 1, got {args.clips} and {args.real_clips}")

    import torch
    from vcframe_ge2e.model import GE2EEncoder
    from vcframe_ge2e.spec import GE2EConfig

    torch.set_num_threads(1)
    encoder = GE2EEncoder(GE2EConfig())
    speakers = corpus_centroids(encoder, args.folders, args.clips)
    matrix = speakers.vectors @ speakers.vectors.T
    np.fill_diagonal(matrix, -1.0)
    print("| speaker | split | nearest other speaker | centroid cosine | own clips to own centroid |")
    print("|---|---|---|---|---|")
    for row, name in enumerate(speakers.names):
        nearest = int(np.argmax(matrix[row]))
        flag = " **merge**" if matrix[row, nearest] >= args.threshold else ""
        print(
            f"| {name} | {speakers.roles[row]} | {speakers.names[nearest]} | {matrix[row, nearest]:.3f}{flag} "
            f"| {speakers.own_cosines[row]:.3f} |"
        )
    distinct = sum(matrix[row].max() < args.threshold for row in range(len(speakers.names)))
    upper = matrix[np.triu_indices(len(speakers.names), k=1)]
    print(
        f"\n{distinct} of {len(speakers.names)} speakers have no other speaker at cosine >= {args.threshold}; "
        f"pairwise centroid cosine: max {upper.max():.3f}, mean {upper.mean():.3f}"
    )
    report: dict[str, object] = {
        "clips": args.clips,
        "threshold": args.threshold,
        "speakers": {
            name: {"split": role, "own_cosine": own}
            for name, role, own in zip(speakers.names, speakers.roles, speakers.own_cosines, strict=True)
        },
        "training": training_pairs(speakers, args.threshold),
        "held_out": held_out_neighbours(speakers),
    }
    if args.real:
        real, sexes = real_centroids(encoder, args.real, args.real_clips)
        report["real"] = real_coverage(speakers, real, sexes, args.before)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        partial = args.json.with_name(f".{args.json.name}.part")
        partial.write_text(json.dumps(report, indent=1) + "\n")
        partial.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
