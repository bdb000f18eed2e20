"""Recognised transcripts for the real recordings that come without any: the input of real-voice GTA mels.

    python recipes/demo/transcribe_real.py ../shared/data --out /work/corpus/real_asr
    vcframe train synthesizer preprocess /work/corpus/real_asr --format librispeech --max-frames 1400 \
        --out /work/runs/real_asr_prep
    vcframe train synthesizer gta --data /work/runs/real_asr_prep --checkpoint default --out /work/runs/gta_real

The LibriSpeech clips in ``../shared/data`` have no transcripts, so the synthesizer cannot be teacher-forced on
them. Teacher forcing only needs a text whose sounds follow the audio's; pocketsphinx's transcript (26-46 % word
errors on real read speech) gives that well enough for the attention to stay on the frames, and the GTA mels it
yields show a vocoder what the synthesizer makes of a voice it never heard, paired with that voice's real audio.

This writes a LibriSpeech tree under ``--out``: ``<split>/<speaker>/<chapter>/<id>.flac`` as symbolic links to the
recordings (nothing is copied) and ``<speaker>-<chapter>.trans.txt`` with the recognised words in upper case, as
LibriSpeech writes them. Only ``--split`` (default ``train-clean-100``) is read: the test-other speakers are the
evaluation voices and are refused. A clip in which nothing is heard is left out and counted. Each chapter's
transcript file is written atomically once its clips are done, so an interrupted run is simply run again and
skips the chapters it finished (about 10 minutes of one core for the 251 clips).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from vcframe._io import atomic_write

EVALUATION_SPLITS = ("test-other",)


def chapters(librispeech: Path, split: str) -> dict[Path, list[Path]]:
    """``{chapter folder: its flac files by name}`` under ``<librispeech>/<split>``, sorted by path."""
    if split in EVALUATION_SPLITS:
        raise SystemExit(f"--split {split} holds the evaluation voices; transcribe a training split instead")
    split_root = librispeech / split
    if not split_root.is_dir():
        raise SystemExit(f"{split_root} does not exist; give ../shared/data or a LibriSpeech root holding {split}/")
    found: dict[Path, list[Path]] = {}
    for flac in sorted(split_root.glob("*/*/*.flac")):
        found.setdefault(flac.parent, []).append(flac)
    if not found:
        raise SystemExit(f"no <speaker>/<chapter>/*.flac under {split_root}")
    return found


def transcribe_chapter(flacs: Iterable[Path], out_chapter: Path, transcribe: Callable[[Path], str]) -> tuple[int, int]:
    """Link each clip into ``out_chapter`` and write its ``<speaker>-<chapter>.trans.txt`` (upper case, one
    ``<id> <WORDS>`` line per clip heard). Returns (clips written, clips in which nothing was heard)."""
    out_chapter.mkdir(parents=True, exist_ok=True)
    lines = []
    silent = 0
    for flac in flacs:
        words = " ".join(transcribe(flac).split()).upper()
        if not words:
            silent += 1
            continue
        link = out_chapter / flac.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(flac.resolve())
        lines.append(f"{flac.stem} {words}\n")
    speaker, chapter = out_chapter.parent.name, out_chapter.name
    with atomic_write(out_chapter / f"{speaker}-{chapter}.trans.txt", "w") as stream:
        stream.writelines(lines)
    return len(lines), silent


def transcribe_tree(
    librispeech: Path, out: Path, split: str, transcribe: Callable[[Path], str], log: Callable[[str], None]
) -> dict[str, int]:
    """Every chapter of ``split`` not yet done under ``out``; returns counts of clips written, silent, skipped."""
    counts = {"written": 0, "silent": 0, "skipped": 0}
    for chapter, flacs in chapters(librispeech, split).items():
        out_chapter = out / split / chapter.parent.name / chapter.name
        if (out_chapter / f"{chapter.parent.name}-{chapter.name}.trans.txt").is_file():
            counts["skipped"] += len(flacs)
            continue
        written, silent = transcribe_chapter(flacs, out_chapter, transcribe)
        counts["written"] += written
        counts["silent"] += silent
        log(f"{chapter.parent.name}/{chapter.name}: {written} clip(s), {silent} silent")
    return counts


def librispeech_root(data: Path) -> Path:
    """``../shared/data`` or a LibriSpeech root itself (the folder holding the split folders)."""
    for candidate in (data / "librispeech" / "LibriSpeech", data / "LibriSpeech", data):
        if candidate.is_dir() and any(
            child.name.startswith(("train-", "dev-", "test-")) for child in candidate.iterdir()
        ):
            return candidate
    raise SystemExit(f"no LibriSpeech split folders under {data}; give ../shared/data or a LibriSpeech root")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="../shared/data or a LibriSpeech root")
    parser.add_argument("--out", type=Path, required=True, help="output LibriSpeech tree (links + transcripts)")
    parser.add_argument("--split", default="train-clean-100", help="the split to transcribe (not test-other)")
    args = parser.parse_args(argv)
    from vcframe.metrics.asr import default_recognizer

    recognizer = default_recognizer()
    counts = transcribe_tree(
        librispeech_root(args.data),
        args.out,
        args.split,
        lambda flac: recognizer.transcribe(os.fspath(flac)),
        lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(
        f"{args.out}: {counts['written']} clips transcribed, {counts['silent']} silent (left out), "
        f"{counts['skipped']} already done"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
