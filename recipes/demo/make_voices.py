#!/usr/bin/env python
"""Make the predefined sample voices: short clips of synthetic speakers held out from the training corpus.

    python recipes/demo/make_voices.py --out registry/voices

Writes ``<out>/<name>.flac`` (16 kHz mono 16-bit FLAC, 5-8 s, peak-normalised, ~0.1 s silence at each end) and
``<out>/voices.json`` (name, description, file, sha256, duration, text, engine settings, licence). The clips come
from the held-out ("eval") speakers of ``make_corpus.py``, so no shipped model was trained on these identities.
The texts are the project's own sentences (not from the training text). Deterministic: the same run gives the
same bytes (for the same engine, sox and libsndfile versions).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # when imported by path, not run as a script
from _recipe_import import load  # noqa: E402

corpus = load("make_corpus")

MIN_SECONDS, MAX_SECONDS = 5.0, 8.0


@dataclass(frozen=True)
class SampleVoice:
    name: str  # what `vcframe voices list` shows and `--voice NAME` takes
    speaker_id: str  # a make_corpus.SPEAKERS id
    text: str


VOICES: tuple[SampleVoice, ...] = (
    SampleVoice(
        "clara",
        "festival-slt-hts-up500",
        "The morning train was late again, so we walked along the river and talked about the weather and the birds.",
    ),
    SampleVoice(
        "duncan",
        "flite-rms-down300",
        "Please put the heavy boxes near the back door; I will carry them upstairs after dinner.",
    ),
    SampleVoice(
        "martha",
        "espeak-grandma",
        "When I was young, the summers seemed much longer, and the warm evenings were full of music and laughter.",
    ),
    SampleVoice(
        "angus",
        "espeak-scotland-m3",
        "The old lighthouse keeper counted every ship that passed the rocks, "
        "and wrote their names in a book on stormy winter nights.",
    ),
    SampleVoice(
        "fiona",
        "espeak-f1",
        "Our little garden grows tomatoes, beans and sweet peas, "
        "and on sunny afternoons the neighbours often come over to look.",
    ),
)


def make_voice(voice: SampleVoice, out: Path) -> dict[str, object]:
    speaker = corpus.SPEAKERS_BY_ID[voice.speaker_id]
    clip = corpus.trim_and_normalise(corpus.synthesize(speaker, voice.text))
    seconds = len(clip) / corpus.SAMPLE_RATE
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise SystemExit(
            f"voice {voice.name!r} came out {seconds:.2f} s long, outside {MIN_SECONDS}..{MAX_SECONDS} s; "
            "change its text"
        )
    payload = corpus.wav_bytes(clip, audio_format="FLAC")
    path = out / f"{voice.name}.flac"
    corpus.atomic_write_bytes(path, payload)
    settings = speaker.describe()
    return {
        "name": voice.name,
        "description": speaker.description,
        "file": path.name,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "duration_s": round(seconds, 3),
        "sample_rate": corpus.SAMPLE_RATE,
        "text": voice.text,
        "speaker": speaker.id,
        "held_out_from_training": speaker.split == "eval",
        "engine": {
            key: settings[key]
            for key in (
                "engine",
                "voice",
                "engine_pitch",
                "engine_rate",
                "sox_pitch_cents",
                "sox_tempo",
                "engine_command",
                "sox_effects",
            )
        },
        "licence": speaker.licence,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make the predefined sample voices (short synthetic clips).")
    parser.add_argument("--out", required=True, type=Path, help="folder for <name>.flac and voices.json")
    parser.add_argument("--voices", type=lambda text: text.split(","), help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    chosen = [voice for voice in VOICES if not args.voices or voice.name in args.voices]
    unknown = set(args.voices or []) - {voice.name for voice in VOICES}
    if unknown:
        raise SystemExit(f"unknown voice(s) {', '.join(sorted(unknown))}; known: {', '.join(v.name for v in VOICES)}")
    missing = corpus.missing_tools(corpus.SPEAKERS_BY_ID[voice.speaker_id] for voice in chosen)
    if missing:
        raise SystemExit(f"missing programs: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    entries = [make_voice(voice, args.out) for voice in chosen]
    corpus.atomic_write_text(args.out / "voices.json", json.dumps({"voices": entries}, indent=2) + "\n")
    total = sum((args.out / str(entry["file"])).stat().st_size for entry in entries)
    for entry in entries:
        print(f"{entry['name']:8s} {entry['duration_s']:5.2f} s  {entry['speaker']}")
    print(f"{len(entries)} voices, {total / 1024:.0f} kB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
