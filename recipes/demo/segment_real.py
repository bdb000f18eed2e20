"""Real-voice synthesizer training data from recordings without transcripts: the phrases the recogniser is sure of.

    python recipes/demo/segment_real.py ../shared/data --out /work/corpus/real_seg
    vcframe train synthesizer preprocess /work/corpus/real_seg --out /work/corpus/real_seg_prep --encoder ge2e

The demo synthesizer has heard synthetic voices only, and real voices it never heard land near the nearest of them
(GE2E similarity about 0.6 to the reference, issue 24). ``../shared/data`` holds 251 real LibriSpeech
train-clean-100 speakers, one 10-15 s clip each, without transcripts; pocketsphinx's whole-clip transcripts are
26-46 % wrong, and a synthesizer taught on them learns to misplace its attention (the real-voice GTA of
``transcribe_real.py``). Its lattice also says how sure it is of each word: on a LibriSpeech clip the misheard words
scored 0.007-0.34 and most right ones 0.8-1.0. So this cuts each clip at the pauses the recogniser found into
phrases, keeps a phrase only when every word in it reached ``--min-confidence`` (default 0.2), joins neighbouring
kept phrases across short pauses up to ``--max-seconds``, and writes each piece of at least ``--min-seconds`` with the
words heard in it: a corpus in the generic layout (``<speaker>/<id>.wav`` + ``<id>.txt``) that the synthesizer
preprocess reads, in which the text mostly says what the audio says.

The bar was chosen on the 32 LJSpeech-mini clips, whose true transcripts are known (``timed_words`` on each, the
kept pieces' words compared with the transcript as the longest common subsequence): with no bar, 77 % of the
recognised words are in the true transcript in order; a bar of 0.2 keeps 44 % of the audio with 89 % of its words
right, 0.5 keeps 19 % at 90 %, 0.6 13 % at 97 %. 0.2 keeps more than twice the speech of 0.5 at the same accuracy.

Only ``--split`` (default ``train-clean-100``) is read; the test-other speakers are the evaluation voices and are
refused. Each clip's pieces are written atomically, then a ``.<clip>.done`` marker: an interrupted run is run
again and skips the clips it finished (about 10 minutes of one core for the 251 clips).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vcframe._io import atomic_path, atomic_write
from vcframe.metrics.asr import HeardWord

sys.path.insert(0, str(Path(__file__).resolve().parent))  # when imported by path, not run as a script
from _recipe_import import load  # noqa: E402

#: silence kept on each side of a piece, at most (and at most half the pause that bounds it)
EDGE_SECONDS = 0.1


@dataclass(frozen=True)
class Piece:
    """A stretch of a recording and the words heard in it (lower case, space-separated)."""

    start: float
    end: float
    text: str


def confident_pieces(
    heard: Sequence[HeardWord],
    *,
    min_confidence: float = 0.2,
    min_words: int = 2,
    min_seconds: float = 1.0,
    max_seconds: float = 8.0,
    max_join_gap: float = 0.6,
) -> list[Piece]:
    """The phrases of ``heard`` (runs of words between pauses or noises) in which every word reached
    ``min_confidence``, neighbours joined while the pause between them is at most ``max_join_gap`` s and the
    result at most ``max_seconds`` long, then those of at least ``min_words`` words and ``min_seconds``; each piece
    padded into its bounding pauses by up to ``EDGE_SECONDS``. A phrase that fails the confidence drops out and
    breaks the chain, so no kept piece spans a doubtful word."""
    phrases: list[list[HeardWord]] = []
    current: list[HeardWord] = []
    for item in heard:
        if item.is_word:
            current.append(item)
        elif current:
            phrases.append(current)
            current = []
    if current:
        phrases.append(current)

    pieces: list[list[HeardWord]] = []
    previous_kept = False
    for phrase in phrases:
        if min(word.confidence for word in phrase) < min_confidence:
            previous_kept = False
            continue
        if (
            previous_kept
            and phrase[0].start - pieces[-1][-1].end <= max_join_gap
            and phrase[-1].end - pieces[-1][0].start <= max_seconds
        ):
            pieces[-1].extend(phrase)
        else:
            pieces.append(list(phrase))
        previous_kept = True

    result = []
    for words in pieces:
        start, end = words[0].start, words[-1].end
        if len(words) < min_words or not min_seconds <= end - start <= max_seconds:
            continue
        pause_before = start - max((item.start for item in heard if item.end <= start), default=start)
        pause_after = min((item.end for item in heard if item.start >= end), default=end) - end
        result.append(
            Piece(
                start=max(0.0, start - min(EDGE_SECONDS, pause_before / 2)),
                end=end + min(EDGE_SECONDS, pause_after / 2),
                text=" ".join(word.text for word in words),
            )
        )
    return result


def write_clip(
    flac: Path, out: Path, timed_words: Callable[[Path], list[HeardWord]], **options: float
) -> tuple[int, float, bool]:
    """The confident pieces of one clip as ``<out>/<speaker>/<clip>-NN.wav`` + ``.txt``; returns (pieces, seconds,
    made now). When its done marker exists the clip is skipped and the marker's counts are returned (made now
    False), so a resumed run reports the whole corpus."""
    import soundfile

    speaker_folder = out / flac.stem.split("-")[0]
    marker = speaker_folder / f".{flac.stem}.done"
    if marker.is_file():
        recorded = re.fullmatch(r"(\d+) piece\(s\), ([\d.]+) s", marker.read_text().strip())
        return (int(recorded[1]), float(recorded[2]), False) if recorded else (0, 0.0, False)
    speaker_folder.mkdir(parents=True, exist_ok=True)
    samples, sample_rate = soundfile.read(flac, dtype="float32", always_2d=True)
    samples = np.ascontiguousarray(samples.mean(axis=1))
    pieces = confident_pieces(timed_words(flac), **options)  # type: ignore[arg-type]
    seconds = 0.0
    for index, piece in enumerate(pieces):
        name = f"{flac.stem}-{index:02d}"
        audio = samples[int(round(piece.start * sample_rate)) : int(round(piece.end * sample_rate))]
        with atomic_path(speaker_folder / f"{name}.wav") as temporary:
            soundfile.write(temporary, audio, sample_rate, format="WAV", subtype="PCM_16")
        with atomic_write(speaker_folder / f"{name}.txt", "w") as stream:
            stream.write(piece.text + "\n")
        seconds += len(audio) / sample_rate
    marker.write_text(f"{len(pieces)} piece(s), {seconds:.2f} s\n")
    return len(pieces), seconds, True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="../shared/data or a LibriSpeech root")
    parser.add_argument("--out", type=Path, required=True, help="output corpus (generic layout)")
    parser.add_argument("--split", default="train-clean-100", help="the split to read (not test-other)")
    parser.add_argument("--min-confidence", type=float, default=0.2, help="every word of a kept phrase reaches it")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    if not 0.0 <= args.min_confidence <= 1.0:
        raise SystemExit(f"--min-confidence must be within 0-1, got {args.min_confidence}")
    if not 0.0 < args.min_seconds < args.max_seconds:
        raise SystemExit(f"need 0 < --min-seconds < --max-seconds, got {args.min_seconds} and {args.max_seconds}")
    transcribe_real = load("transcribe_real")
    chapters = transcribe_real.chapters(transcribe_real.librispeech_root(args.data), args.split)
    from vcframe.metrics.asr import default_recognizer

    recognizer = default_recognizer()
    clips = pieces = made = 0
    kept = 0.0
    for flacs in chapters.values():
        for flac in flacs:
            count, seconds, made_now = write_clip(
                flac,
                args.out,
                lambda path: recognizer.timed_words(str(path)),
                min_confidence=args.min_confidence,
                min_seconds=args.min_seconds,
                max_seconds=args.max_seconds,
            )
            clips += 1
            made += made_now
            pieces += count
            kept += seconds
            earlier = "" if made_now else " (segmented by an earlier run)"
            print(f"{flac.stem}: {count} piece(s), {seconds:.1f} s{earlier}", file=sys.stderr, flush=True)
    print(
        f"{args.out}: {pieces} pieces, {kept / 60:.1f} min of speech from {clips} clips "
        f"({made} segmented now, {clips - made} by an earlier run)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
