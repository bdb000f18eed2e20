"""GE2E encoder benchmark: EER of the default (resemblyzer) weights on real LibriSpeech clips, and speed.

Run by hand:  .venv/bin/python benchmarks/encoder.py [--threads 1] [--shared ../shared]

* train-clean-100: one clip per speaker, split into halves; enrolment = first half, test = second half;
  EER over all (enrolment, test) pairs. Clips whose halves are shorter than the encoder's minimum are left out.
* test-other: 5 speakers x 10 clips; EER over all clip pairs (same speaker vs different speaker).
* speed: embeddings per second for 5 s clips, one call for the whole batch vs one call per clip.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from vcframe_ge2e.loss import equal_error_rate
from vcframe_ge2e.model import GE2EEncoder
from vcframe_ge2e.spec import GE2EConfig

from vcframe.audio import load_audio
from vcframe.types import Waveform


def embed_all(encoder: GE2EEncoder, clips: list[np.ndarray], batch: int = 32) -> torch.Tensor:
    parts = [
        encoder.embed(Waveform.from_numpy(clips[i : i + batch], 16000)).vector for i in range(0, len(clips), batch)
    ]
    return torch.cat(parts).cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = os.environ.get("VCFRAME_SHARED", str(Path(__file__).resolve().parents[1] / ".." / "shared"))
    parser.add_argument("--shared", default=default_shared, help="folder holding data/librispeech")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--checkpoint", default="default", help="encoder weights (default: resemblyzer)")
    parser.add_argument("--speed-clips", type=int, default=32, help="5 s clips in the speed test")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.shared) / "data" / "librispeech" / "LibriSpeech"
    if not root.is_dir():
        raise SystemExit(f"no LibriSpeech clips at {root}")
    encoder = GE2EEncoder(GE2EConfig(checkpoint=args.checkpoint))
    minimum = encoder.input_spec.min_duration_s
    vad = "webrtc" if encoder.config.vad in ("auto", "webrtc") else encoder.config.vad
    rows: list[tuple[str, str]] = [
        ("weights", str(args.checkpoint)),
        ("silence trimming", vad),
        ("threads", str(args.threads)),
    ]

    # -- train-clean-100, halves ---------------------------------------------------------------------------
    files = sorted((root / "train-clean-100").glob("*/*/*.flac"))
    first, second = [], []
    for path in files:
        wav = load_audio(path).item()
        half = len(wav) // 2
        if half / 16000 >= minimum:
            first.append(wav[:half])
            second.append(wav[half:])
    started = time.perf_counter()
    enrol, test = embed_all(encoder, first), embed_all(encoder, second)
    elapsed = time.perf_counter() - started
    eer = equal_error_rate(np.eye(len(enrol)), (enrol @ test.T).numpy())
    rows.append((f"EER train-clean-100, {len(enrol)} of {len(files)} speakers, clip halves", f"{eer:.2%}"))
    long_halves = np.array([len(wav) >= 4 * 16000 for wav in first])
    if long_halves.sum() > 1:
        eer_long = equal_error_rate(np.eye(int(long_halves.sum())), (enrol[long_halves] @ test[long_halves].T).numpy())
        rows.append((f"  the {int(long_halves.sum())} speakers with halves of 4 s or more", f"{eer_long:.2%}"))
    rows.append(("  same-speaker cosine (mean)", f"{float((enrol * test).sum(1).mean()):.3f}"))
    rows.append(("  time to embed the halves", f"{elapsed:.1f} s"))

    # -- test-other, 5 x 10 clips ----------------------------------------------------------------------------
    files = sorted((root / "test-other").glob("*/*/*.flac"))
    speakers = np.array([path.parent.parent.name for path in files])
    clips = [load_audio(path).item() for path in files]
    embeddings = embed_all(encoder, clips)
    scores = (embeddings @ embeddings.T).numpy()
    upper = np.triu_indices(len(files), k=1)
    labels = (speakers[:, None] == speakers[None, :])[upper]
    eer = equal_error_rate(labels.astype(int), scores[upper])
    rows.append(
        (
            f"EER test-other, {len(set(speakers))} speakers x {len(files) // len(set(speakers))} clips, all pairs",
            f"{eer:.2%}",
        )
    )

    # -- speed -----------------------------------------------------------------------------------------------
    source = [load_audio(path).item() for path in sorted((root / "train-clean-100").glob("*/*/*.flac"))]
    five = [wav[:80000] for wav in source if len(wav) >= 80000][: args.speed_clips]
    batch = Waveform.from_numpy(five, 16000)
    encoder.embed(Waveform.from_numpy(five[:2], 16000))  # warm-up
    started = time.perf_counter()
    batched = encoder.embed(batch).vector
    batched_s = time.perf_counter() - started
    started = time.perf_counter()
    single = torch.cat([encoder.embed(Waveform.from_numpy(clip, 16000)).vector for clip in five])
    single_s = time.perf_counter() - started
    rows.append((f"speed, {len(five)} clips of 5 s, one batched call", f"{len(five) / batched_s:.1f} embeddings/s"))
    rows.append((f"speed, {len(five)} clips of 5 s, one call per clip", f"{len(five) / single_s:.1f} embeddings/s"))
    rows.append(("max |batched - one at a time|", f"{float((batched - single).abs().max()):.1e}"))

    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
