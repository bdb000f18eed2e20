"""Search for new WORLD voices of the natural engine voices that sit near real voices the corpus serves badly.

    python recipes/demo/search_voices.py --against /work/corpus/many_all --against /work/corpus/many_eval \
        --real /work/shared/data/librispeech/LibriSpeech/train-clean-100 --heard /work/corpus/many_all_heard.json \
        --out /work/corpus/search_v4.json

Why: a synthesizer conditioned on a speaker embedding speaks an unseen voice the way the training voices near it
speak. In the 123-voice corpus most real voices' nearest training voice is an espeak-ng based one, which
pocketsphinx barely follows (``measure_intelligibility.py``), and a synthesizer continued on that corpus lost half
its words heard right on real voices. This looks for voices that would be real voices' new nearest neighbours and
that the recogniser follows: WORLD variants (F0 factor, envelope warp, spectral tilt; ``make_corpus.world_voice``)
of the natural bases (flite, festival).

How (deterministic with ``--seed``):

1. GE2E centroids of the existing training and held-out voices (``--against``, ``--against-clips`` each) and of
   the real voices (``--real``: LibriSpeech split folders; the quality benchmark's test-other voices must not be
   passed, they are the evaluation voices).
2. Each base speaks ``--clips`` sentences (the last ones of ``--texts``, not the corpus recipe's first picks), is
   analysed with WORLD once, and ``--candidates`` random settings per base are resynthesised from that analysis:
   median F0 drawn log-uniformly in 75-320 Hz, warp in 0.82-1.35, tilt 0 or +-2.5..6 dB/octave.
3. A candidate is eligible when its centroid is below ``--threshold`` to every ``--against`` voice. Then, greedily,
   the eligible candidate with the largest gain (the sum over real voices of how much nearer it is than their
   nearest voice so far, weighted by ``1 - heard`` of that nearest voice when ``--heard`` is given, so voices
   nearest a badly heard voice count most) is checked with pocketsphinx: kept when the recogniser hears at least
   ``--min-heard`` of its words, and then every candidate at or above ``--threshold`` to it leaves the pool.
   Until ``--max-voices`` are kept or no candidate gains.

Writes ``--out`` (JSON: every kept voice with its settings, what it sounds like, its gain, nearest existing voice
and words heard, plus the search's numbers) and prints the rows to paste into ``make_corpus.py``'s catalogue.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # when imported by path, not run as a script
from _recipe_import import load  # noqa: E402

corpus = load("make_corpus")
speakers_tool = load("measure_speakers")
intelligibility = load("measure_intelligibility")

#: the natural engine voices (people and the recogniser both follow them) and whether each is a woman's voice
NATURAL_BASES = {
    "flite-rms": False,
    "flite-awb": False,
    "flite-kal16": False,
    "flite-slt": True,
    "festival-ked": False,
    "festival-slt-hts": True,
}
FEMALE_TRACT = 1.17  # a woman's vocal tract counts as this much shorter than a man's (as in make_corpus.py)
MEDIAN_F0_RANGE_HZ = (75.0, 320.0)
WARP_RANGE = (0.82, 1.35)
TILT_RANGE_DB = (2.5, 6.0)


@dataclass(frozen=True)
class Candidate:
    base: str
    f0_factor: float
    warp: float
    tilt_db: float
    median_f0_hz: float  # after the change

    @property
    def id(self) -> str:
        return corpus.world_voice(self.base, self.f0_factor, self.warp, "", self.tilt_db).id

    def character(self) -> str:
        """What it sounds like, from the median F0 and the vocal-tract scale after the change."""
        tract = self.warp * (FEMALE_TRACT if NATURAL_BASES.get(self.base, False) else 1.0)
        if self.median_f0_hz >= 230 and tract >= 1.25:
            kind = "child-like"
        elif self.median_f0_hz >= 150 and tract >= 1.08:
            kind = "female"
        elif self.median_f0_hz < 100 and tract <= 1.0:
            kind = "deep male"
        elif self.median_f0_hz < 165 and tract <= 1.05:
            kind = "male"
        else:
            kind = "androgynous"
        if self.tilt_db:
            kind += ", bright" if self.tilt_db > 0 else ", dark"
        return kind


def draw_candidates(base: str, base_median_f0: float, count: int, rng: np.random.Generator) -> list[Candidate]:
    """``count`` random settings of one base: median F0 log-uniform in MEDIAN_F0_RANGE_HZ, warp uniform in
    WARP_RANGE, a third without tilt and the rest tilted by +-TILT_RANGE_DB; factors rounded as the catalogue
    writes them (hundredths; tilt in tenths of a dB)."""
    low, high = np.log(MEDIAN_F0_RANGE_HZ[0]), np.log(MEDIAN_F0_RANGE_HZ[1])
    result = []
    for _ in range(count):
        f0_factor = round(float(np.exp(rng.uniform(low, high))) / base_median_f0, 2)
        warp = round(float(rng.uniform(*WARP_RANGE)), 2)
        tilt = 0.0
        if rng.uniform() >= 1 / 3:
            tilt = round(float(rng.uniform(*TILT_RANGE_DB)) * (1 if rng.uniform() < 0.5 else -1), 1)
        result.append(Candidate(base, f0_factor, warp, tilt, base_median_f0 * f0_factor))
    return result


def real_gain(candidate: np.ndarray, real: np.ndarray, nearest: np.ndarray, weights: np.ndarray) -> float:
    """How much nearer the real voices (rows of ``real``) would get: sum of ``weights * max(0, cos - nearest)``."""
    return float(np.sum(weights * np.maximum(0.0, real @ candidate - nearest)))


def greedy_select(
    vectors: np.ndarray,
    eligible: np.ndarray,
    real: np.ndarray,
    nearest: np.ndarray,
    nearest_weights: np.ndarray,
    weight_of: Callable[[int], float],
    accept: Callable[[int], bool],
    threshold: float,
    max_voices: int,
) -> list[tuple[int, float]]:
    """Candidates (index, gain) in the order kept.

    Args:
        vectors: (candidates, dim) unit centroids. eligible: (candidates,) bool, below ``threshold`` to every
            existing voice. real: (voices, dim) unit centroids. nearest / nearest_weights: (voices,) each real
            voice's cosine to its nearest voice so far and that voice's weight (1 - heard).
        weight_of: a kept candidate's weight for the voices it becomes nearest to (1 - its words heard).
        accept: the last check of the best candidate (pocketsphinx); a refused one leaves the pool.
    """
    pool = eligible.copy()
    nearest, nearest_weights = nearest.copy(), nearest_weights.copy()
    kept: list[tuple[int, float]] = []
    while len(kept) < max_voices and pool.any():
        gains = np.full(len(vectors), -1.0)
        for index in np.flatnonzero(pool):
            gains[index] = real_gain(vectors[index], real, nearest, nearest_weights)
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        pool[best] = False
        if not accept(best):
            continue
        kept.append((best, float(gains[best])))
        pool &= vectors @ vectors[best] < threshold
        cosines = real @ vectors[best]
        closer = cosines > nearest
        nearest[closer] = cosines[closer]
        nearest_weights[closer] = weight_of(best)
    return kept


def base_clips(base: str, sentences: Sequence[str]) -> list[np.ndarray]:
    """The base voice speaking the sentences, 16 kHz, as the corpus recipe makes clips (before WORLD)."""
    speaker = corpus.world_base(base)
    return [corpus.synthesize(speaker, text) for text in sentences]


def voiced_median(features: Sequence[object]) -> float:
    f0 = np.concatenate([item.f0 for item in features])  # type: ignore[attr-defined]
    return float(np.median(f0[f0 > 0]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, action="append", required=True, help="existing voices' corpus folder")
    parser.add_argument("--against-clips", type=int, default=8, help="clips per existing voice (default 8)")
    parser.add_argument("--real", type=Path, action="append", required=True, help="LibriSpeech split folder")
    parser.add_argument("--real-clips", type=int, default=1, help="clips per real voice (default 1)")
    parser.add_argument("--heard", type=Path, help="measure_intelligibility.py's report of the --against voices")
    parser.add_argument("--bases", default=",".join(NATURAL_BASES), help="comma-separated natural bases")
    parser.add_argument("--candidates", type=int, default=60, help="random settings per base (default 60)")
    parser.add_argument("--clips", type=int, default=4, help="sentences each candidate speaks (default 4)")
    parser.add_argument("--texts", type=Path, default=corpus.DEFAULT_TEXTS, help="sentences, one per line")
    parser.add_argument("--threshold", type=float, default=0.76, help="centroid cosine kept below (default 0.76)")
    parser.add_argument("--min-heard", type=float, default=0.5, help="words heard right a kept voice needs")
    parser.add_argument("--max-voices", type=int, default=40, help="stop after this many (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="the JSON report (written atomically)")
    args = parser.parse_args(argv)
    bases = [base for base in args.bases.split(",") if base]
    unknown = [base for base in bases if base not in NATURAL_BASES]
    if unknown or not bases:
        raise SystemExit(f"--bases {args.bases!r}: expected some of {', '.join(NATURAL_BASES)}")
    if min(args.candidates, args.clips, args.against_clips, args.real_clips, args.max_voices) < 1:
        raise SystemExit("--candidates, --clips, --against-clips, --real-clips and --max-voices must be at least 1")
    for folder in [*args.against, *args.real]:
        if not folder.is_dir():
            raise SystemExit(f"{folder} is not a folder")
    if any(folder.name == "test-other" for folder in args.real):
        raise SystemExit("--real test-other: those are the quality benchmark's voices; search with other voices")
    heard_of: dict[str, float] = {}
    if args.heard is not None:
        heard_of = {name: float(row["heard"]) for name, row in json.loads(args.heard.read_text())["voices"].items()}
    lines = [line.strip() for line in args.texts.read_text(encoding="utf-8").splitlines() if 25 <= len(line) <= 110]
    sentences = lines[-args.clips :]

    import torch
    from vcframe_ge2e.model import GE2EEncoder
    from vcframe_ge2e.spec import GE2EConfig

    from vcframe.metrics.asr import default_recognizer

    torch.set_num_threads(1)
    encoder = GE2EEncoder(GE2EConfig())
    existing = speakers_tool.corpus_centroids(encoder, args.against, args.against_clips)
    real, _ = speakers_tool.real_centroids(encoder, args.real, args.real_clips)
    to_existing = real.vectors @ existing.vectors.T
    nearest_index = to_existing.argmax(axis=1)
    nearest = to_existing.max(axis=1)
    nearest_weights = np.array([1.0 - heard_of.get(existing.names[index], 0.0) for index in nearest_index])
    print(
        f"{len(existing.names)} existing voices, {len(real.names)} real voices: nearest {nearest.mean():.3f} on average"
    )

    rng = np.random.default_rng(args.seed)
    candidates: list[Candidate] = []
    vectors: list[np.ndarray] = []
    audio: dict[int, list[np.ndarray]] = {}
    for base in bases:
        features = [corpus.world_analyse(clip, corpus.SAMPLE_RATE) for clip in base_clips(base, sentences)]
        for candidate in draw_candidates(base, voiced_median(features), args.candidates, rng):
            clips = [
                corpus.trim_and_normalise(
                    corpus.world_resynthesize(
                        item,
                        f0_factor=candidate.f0_factor,
                        warp_factor=candidate.warp,
                        tilt_db_per_octave=candidate.tilt_db,
                    )
                )
                for item in features
            ]
            embeddings = torch.stack([result.embedding for result in encoder.embed_utterances(clips)]).numpy()
            centroid = embeddings.mean(axis=0)
            audio[len(candidates)] = clips
            candidates.append(candidate)
            vectors.append(centroid / np.linalg.norm(centroid))
        print(f"{base}: {args.candidates} candidates", file=sys.stderr)
    matrix = np.stack(vectors)
    to_old = matrix @ existing.vectors.T
    eligible = to_old.max(axis=1) < args.threshold
    print(f"{int(eligible.sum())} of {len(candidates)} candidates below {args.threshold} to every existing voice")

    recognizer = default_recognizer()
    heard: dict[int, float] = {}

    def transcribe(clip: np.ndarray) -> str:
        return recognizer.transcribe(clip, corpus.SAMPLE_RATE)

    def accept(index: int) -> bool:
        pairs = list(zip(audio[index], sentences, strict=True))
        heard[index] = float(intelligibility.measure_voice(pairs, transcribe)["heard"])
        verdict = "kept" if heard[index] >= args.min_heard else "refused"
        print(f"{candidates[index].id}: words heard {100 * heard[index]:.0f} % ({verdict})", file=sys.stderr)
        return heard[index] >= args.min_heard

    kept = greedy_select(
        matrix,
        eligible,
        real.vectors,
        nearest,
        nearest_weights,
        lambda index: 1.0 - heard[index],
        accept,
        args.threshold,
        args.max_voices,
    )
    after = (
        np.maximum(nearest, (real.vectors @ matrix[[index for index, _ in kept]].T).max(axis=1)) if kept else nearest
    )
    rows = []
    for index, gain in kept:
        candidate = candidates[index]
        closest = int(to_old[index].argmax())
        rows.append(
            {
                "id": candidate.id,
                **asdict(candidate),
                "character": candidate.character(),
                "gain": round(gain, 4),
                "nearest_existing": [existing.names[closest], round(float(to_old[index, closest]), 3)],
                "heard": round(heard[index], 3),
            }
        )
    report = {
        "against": [str(folder) for folder in args.against],
        "real": [str(folder) for folder in args.real],
        "settings": {name: str(value) for name, value in vars(args).items()},
        "candidates": len(candidates),
        "eligible": int(eligible.sum()),
        "checked_with_pocketsphinx": len(heard),
        "real_nearest_before": round(float(nearest.mean()), 4),
        "real_nearest_after": round(float(after.mean()), 4),
        "kept": rows,
    }
    partial = args.out.with_name(f".{args.out.name}.part")
    partial.write_text(json.dumps(report, indent=1) + "\n")
    partial.rename(args.out)
    print(
        f"kept {len(rows)} voices (checked {len(heard)} with pocketsphinx); real voices' nearest voice "
        f"{nearest.mean():.3f} -> {after.mean():.3f} on average; wrote {args.out}"
    )
    for row in rows:
        print(
            f'    ("{row["base"]}", {row["f0_factor"]:g}, {row["warp"]:g}, {row["tilt_db"]:g}, "{row["character"]}"),'
            f"  # {row['median_f0_hz']:.0f} Hz, nearest {row['nearest_existing'][1]:.3f}, heard {row['heard']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
