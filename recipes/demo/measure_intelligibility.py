"""How many words pocketsphinx hears of each training voice: the data side of the synthesizer's intelligibility.

    python recipes/demo/measure_intelligibility.py /work/corpus/many_all_seen --clips 3 \
        --out /work/corpus/many_all_heard.json

A synthesizer learns its voices' articulation along with their timbre: a voice whose own clips the recogniser
cannot follow (a formant-warped WORLD voice, most espeak-ng voices) teaches speech that it cannot follow either,
and a real voice whose nearest training voice is such a voice comes out as hard to understand. This measures each
voice on ``--clips`` of its clips (a held-out folder: the ``_seen`` folder the corpus recipe writes holds unseen
sentences of every training voice) with the recogniser ``benchmarks/quality.py`` uses (``vcframe.metrics.asr``), and
writes ``{"voices": {speaker: {"clips", "words", "words_right", "heard"}}, ...}`` where ``heard`` is the share of
the reference words recognised. ``reweight_prep.py --heard FILE`` turns it into repeats per voice.

Each voice folder holds ``<id>.wav`` with its text in ``<id>.txt`` (the corpus recipe's layout); the first
``--clips`` by name are used, so the measure is deterministic. Progress goes to stderr; an interrupted run is simply
run again (a few minutes on one core for 123 voices x 3 clips).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from vcframe.metrics.asr import word_errors

Clip = TypeVar("Clip")


def voice_clips(folder: Path, clips: int) -> list[tuple[Path, str]]:
    """The first ``clips`` (wav, text) pairs of a voice folder by name; refuses a wav without its text."""
    pairs = []
    for wav in sorted(folder.glob("*.wav"))[:clips]:
        text_path = wav.with_suffix(".txt")
        if not text_path.is_file():
            raise SystemExit(f"{wav} has no transcript {text_path.name}; the corpus recipe writes one per clip")
        pairs.append((wav, text_path.read_text().strip()))
    return pairs


def measure_voice(pairs: Sequence[tuple[Clip, str]], transcribe: Callable[[Clip], str]) -> dict[str, float | int]:
    """Words and words heard right over a voice's clips (pooled, so long sentences count for more); a clip is
    whatever ``transcribe`` takes (a wav path here, samples in ``search_voices.py``)."""
    words = right = 0
    for clip, text in pairs:
        errors = word_errors(text, transcribe(clip))
        words += errors.reference_words
        right += errors.hits
    return {"clips": len(pairs), "words": words, "words_right": right, "heard": right / words if words else 0.0}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="corpus folders of voice folders (e.g. the _seen one)")
    parser.add_argument("--clips", type=int, default=3, help="clips per voice (default 3)")
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write (atomically)")
    args = parser.parse_args(argv)
    if args.clips < 1:
        raise SystemExit(f"--clips {args.clips}: expected at least 1")
    voices = sorted(
        (voice for folder in args.folders for voice in folder.iterdir() if voice.is_dir()), key=lambda p: p.name
    )
    if not voices:
        raise SystemExit(f"no voice folders in {', '.join(map(str, args.folders))}")

    from vcframe.metrics.asr import default_recognizer

    recognizer = default_recognizer()
    results: dict[str, dict[str, float | int]] = {}
    for index, voice in enumerate(voices, 1):
        pairs = voice_clips(voice, args.clips)
        if not pairs:
            raise SystemExit(f"{voice} holds no .wav clips")
        results[voice.name] = measure_voice(pairs, recognizer.transcribe)
        print(f"[{index}/{len(voices)}] {voice.name}: {100 * results[voice.name]['heard']:.0f} %", file=sys.stderr)

    report = {"folders": [str(folder) for folder in args.folders], "clips_per_voice": args.clips, "voices": results}
    partial = args.out.with_name(f".{args.out.name}.part")
    partial.write_text(json.dumps(report, indent=1) + "\n")
    partial.rename(args.out)
    heard = sorted(result["heard"] for result in results.values())
    print(
        f"wrote {args.out}: {len(results)} voices, words heard right median {100 * heard[len(heard) // 2]:.0f} %, "
        f"range {100 * heard[0]:.0f}-{100 * heard[-1]:.0f} %"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
