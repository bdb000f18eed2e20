"""Speaker embeddings of a vocoder's training voices, for the HiFi-GAN trainer's ``--speaker-embeddings``.

    python recipes/demo/speaker_embeddings.py /work/runs/hifigan_data/train.txt \
        --unpaired-mels /work/runs/free_mels --out /work/runs/speaker_embeddings.npz

A speaker-conditioned generator (``fit --speaker-embeddings`` with this file gives it the embedding's size) reads,
beside the mel, the embedding of the voice it speaks in: at inference the reference's, which the pipeline passes
with the synthesizer's mel. For training, this writes one embedding per voice of the training sources (folders or
manifests, as ``fit --data`` takes them): the default bundle's encoder (``--encoder``) on up to ``--clips`` of the
voice's clips (the first ones, in the sources' order), as ``vcframe embed`` makes a voice from several clips.
``--unpaired-mels`` folders (``recipes/demo/free_mels.py``: ``<out>/<speaker>/...``) name LibriSpeech speakers by
their number, so each of their subfolders gets the embedding of ``librispeech-<number>`` under its own name too,
which must be a training voice. The file is an ``.npz`` of ``(dim,)`` float32 vectors keyed by speaker, written
atomically, with ``__space__`` (``vcframe_hifigan.data.SPACE_KEY``: the embedding spec's space, e.g. ``ge2e/rtvc``),
which the trainer records.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from vcframe._io import atomic_write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="training audio: folders or manifests")
    parser.add_argument("--out", type=Path, required=True, help="the .npz to write")
    parser.add_argument("--unpaired-mels", type=Path, action="append", default=[], help="free_mels.py folders")
    parser.add_argument("--encoder", default=None, help="speaker encoder (default: the default bundle's)")
    parser.add_argument("--clips", type=int, default=8, help="clips per voice (default 8)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--option", action="append", default=[], help="settings KEY=VALUE, as vcframe run's")
    args = parser.parse_args(argv)
    if args.clips < 1:
        raise SystemExit(f"--clips must be at least 1, got {args.clips}")

    from vcframe_hifigan.data import SPACE_KEY

    from vcframe.config import load_settings
    from vcframe.datasets import find_clips
    from vcframe.pipeline import Pipeline

    by_speaker: dict[str, list[Path]] = defaultdict(list)
    for source in args.sources:
        for clip in find_clips(source):
            if clip.audio not in by_speaker[clip.speaker] and len(by_speaker[clip.speaker]) < args.clips:
                by_speaker[clip.speaker].append(clip.audio)
    pipeline = Pipeline(encoder=args.encoder, device="cpu", settings=load_settings(args.option), threads=args.threads)
    vectors: dict[str, np.ndarray] = {}
    space = ""
    for rank, (speaker, clips) in enumerate(sorted(by_speaker.items())):
        embedding = pipeline.embed(clips)
        vectors[speaker] = embedding.vector[0].cpu().numpy().astype(np.float32)
        space = embedding.spec.space
        print(f"{rank + 1}/{len(by_speaker)} {speaker}: {len(clips)} clip(s)", flush=True)
    for folder in args.unpaired_mels:
        for voice in sorted(path.name for path in folder.iterdir() if path.is_dir()):
            source = f"librispeech-{voice}"
            if source not in vectors:
                raise SystemExit(f"{folder / voice}: no training voice {source!r} to take its embedding from")
            vectors[voice] = vectors[source]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, "wb") as stream:
        np.savez(stream, **{SPACE_KEY: np.array(space)}, **vectors)
    print(f"{len(vectors)} embeddings ({space}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
