"""Make a synthetic multi-speaker corpus (<speaker>/<utt>.wav + .txt) with flite and espeak-ng voices.

    python make_synthetic_corpus.py OUT --utterances 40

Sentences are drawn from a fixed word list with a seeded RNG, so the corpus is reproducible. Speakers:
flite voices (kal16, awb, rms, slt) and espeak-ng voices (en-us, en+f3, en-gb+m3), whichever are installed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
from pathlib import Path

WORDS = (
    "the a one two three four five six seven eight nine ten cat dog house garden river morning evening "
    "little big green red blue yellow quick slow happy quiet loud water bread apple window table chair "
    "walked saw found gave took made opened closed painted carried followed listened remembered "
    "under over near behind before after with without into across today tomorrow yesterday always never"
).split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 10))]
    return " ".join(words).capitalize() + rng.choice([".", ".", "!", "?"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--utterances", type=int, default=40, help="Utterances per speaker.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    speakers: dict[str, list[str]] = {}
    if shutil.which("flite"):
        for voice in ("kal16", "awb", "rms", "slt"):
            speakers[f"flite-{voice}"] = ["flite", "-voice", voice, "-t", "{text}", "-o", "{wav}"]
    if shutil.which("espeak-ng"):
        for voice in ("en-us", "en+f3", "en-gb+m3"):
            speakers[f"espeak-{voice.replace('+', '-')}"] = ["espeak-ng", "-v", voice, "-w", "{wav}", "{text}"]
    rng = random.Random(args.seed)
    for speaker, command in speakers.items():
        folder = args.out / speaker
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(args.utterances):
            text = sentence(rng)
            wav = folder / f"{index:04d}.wav"
            if not wav.is_file():
                subprocess.run([part.format(text=text, wav=wav) for part in command], check=True, capture_output=True)
            (folder / f"{index:04d}.txt").write_text(text + "\n")
    print(f"{len(speakers)} speakers x {args.utterances} utterances in {args.out}")


if __name__ == "__main__":
    main()
