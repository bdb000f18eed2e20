"""Free-running synthesizer mels of real voices, without audio: what a vocoder is given when it clones.

    python recipes/demo/free_mels.py ../shared/data --out /work/runs/free_mels --per-speaker 4

A vocoder trained on recordings' mels meets something else when it clones: the synthesizer's own mels of a voice
it never heard, smooth across bands and unlike any recording's. GTA mels (teacher-forced) would pair such mels with
audio, but for voices the synthesizer does not know they do not describe the audio they are paired with (the
HiFi-GAN README, "Session 27"), and a generator taught on them learns to follow its input less. These mels come
without audio: the HiFi-GAN trainer's ``--unpaired-mels`` teaches the generator on them with what needs no audio
(its output's mel must be the mel it was given, and the discriminators must take it for speech).

For each real LibriSpeech ``--split`` speaker (default ``train-clean-100``; the test-other speakers are the
evaluation voices and are refused), ``--per-speaker`` training sentences of the demo corpus recipe (never its
held-out sentences, which the quality benchmark reads) are synthesized with the default bundle's synthesizer
(``--synthesizer``, options with ``-o``) in that speaker's voice, spectrum-matched to the clip as ``vcframe run``
does by default, and written as ``<out>/<speaker>/<speaker>_<k>.npy`` ((n_mels, frames) float32 of the
synthesizer's mel spec) with the text beside it (``.txt``). Deterministic (seed per speaker and sentence);
each file is written atomically, so an interrupted run is run again and skips what exists. About 1 s a mel on one
core with the demo Tacotron.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from vcframe._io import atomic_write

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _recipe_import import load  # noqa: E402

#: LibriSpeech splits that hold the evaluation voices: never synthesized here.
EVALUATION_SPLITS = ("test-other", "test-clean")


def training_sentences() -> list[str]:
    """The demo corpus recipe's training sentences in its dealing order, without any whose text is one of its
    held-out sentences (the sentence file repeats a few: 7 of the training pool's 7,154 are held-out texts)."""
    recipe = load("make_corpus")
    scratch = tempfile.gettempdir()
    held_out, train_pool = recipe.split_sentences(
        recipe.build_parser().parse_args(["--out", scratch, "--eval-out", scratch])
    )
    held_out_texts = {text for _, text in held_out}
    return [text for _, text in train_pool if text not in held_out_texts]


def speaker_clips(shared: Path, split: str) -> list[tuple[str, Path]]:
    """(speaker, first clip) of each speaker of a LibriSpeech split under ``shared``, sorted by speaker."""
    root = shared / "librispeech" / "LibriSpeech" / split
    if not root.is_dir():
        raise SystemExit(f"no LibriSpeech split {split!r} under {shared} (looked for {root})")
    found = []
    for speaker in sorted(root.iterdir(), key=lambda path: path.name):
        clips = sorted(speaker.rglob("*.flac"))
        if clips:
            found.append((speaker.name, clips[0]))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shared_data", type=Path, help="../shared/data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="train-clean-100")
    parser.add_argument("--per-speaker", type=int, default=4)
    parser.add_argument("--speakers", type=int, default=None, help="only the first N speakers")
    parser.add_argument("--synthesizer", default=None)
    parser.add_argument("-o", "--option", action="append", default=[], help="KEY=VALUE settings, as vcframe run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.split in EVALUATION_SPLITS:
        raise SystemExit(f"{args.split} holds the evaluation voices: synthesize another split")
    if args.per_speaker < 1:
        raise SystemExit(f"--per-speaker must be at least 1, got {args.per_speaker}")

    from vcframe.audio import load_audio
    from vcframe.config import load_settings
    from vcframe.pipeline import Pipeline
    from vcframe.spectrum import clips_spectrum, match_spectrum

    sentences = training_sentences()
    speakers = speaker_clips(args.shared_data, args.split)[: args.speakers]
    settings = load_settings(args.option)
    pipeline = Pipeline(synthesizer=args.synthesizer, device="cpu", settings=settings, threads=args.threads)
    strength = 1.0 if settings.match_spectrum is None else settings.match_spectrum  # vcframe run's default: 1
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for rank, (speaker, clip) in enumerate(speakers):
        folder = args.out / speaker
        wanted = [folder / f"{speaker}_{turn}.npy" for turn in range(args.per_speaker)]
        if all(path.is_file() for path in wanted):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        embedding = pipeline.embed([clip])
        reference = load_audio(clip)
        spectrum: np.ndarray | None = None  # the clip's, at the synthesizer's mel spec (one per run)
        for turn, path in enumerate(wanted):
            if path.is_file():
                continue
            text = sentences[(rank * args.per_speaker + turn) % len(sentences)]
            (mel,) = pipeline.synthesize([text], embedding, seed=args.seed + rank * 1000 + turn)
            if strength:
                spectrum = clips_spectrum([reference], mel.spec) if spectrum is None else spectrum
                mel, _ = match_spectrum(mel, spectrum, strength)
            frames = mel.frames[0, :, : int(mel.lengths[0])].numpy().astype(np.float32)
            with atomic_write(path.with_suffix(".txt"), "w") as stream:
                stream.write(text + "\n")
            with atomic_write(path, "wb") as stream:
                np.save(stream, frames)
            written += 1
        print(f"{rank + 1}/{len(speakers)} {speaker}: {args.per_speaker} mels", flush=True)
    spec = pipeline.synthesizer_mel_spec()
    with atomic_write(args.out / "mel_spec.json", "w") as stream:
        json.dump(spec.model_dump(mode="json"), stream, indent=1)
    print(f"{written} mels written to {args.out}")


if __name__ == "__main__":
    main()
