"""More real-sounding training voices: each real speaker's pieces resynthesized with WORLD at another pitch and
vocal-tract length.

    python recipes/demo/vary_real.py /work/corpus/real_seg --out /work/corpus/real_var --variants 2
    vcframe train synthesizer preprocess /work/corpus/real_var --out /work/corpus/real_var_prep --encoder ge2e

The real pieces of ``segment_real.py`` (202 LibriSpeech speakers, 16 minutes) raised the demo synthesizer's
similarity to unseen real voices where 154 synthetic voices did not (recipes/demo/README.md, "Real voices without
transcripts"); there are no more real recordings on these machines. Each speaker here becomes ``--variants`` new
voices: WORLD analysis of every piece (``make_corpus.world_analyse`` with Harvest, which finds real voices'
F0 where DIO does not), F0 multiplied and the spectral envelope
warped in frequency (``world_resynthesize``) by factors drawn once per voice, both up or both down together (a
higher voice with a shorter vocal tract, as from one speaker to a younger or smaller one, or the reverse), so the
new voice keeps the speaker's accent, rhythm and recording but not its identity. The text is the piece's own.

Factors: F0 x 1.15-1.35 or its inverse, formants x 1.05-1.12 or its inverse, drawn from ``--seed`` and the speaker's
name; variant k goes up when k is even and down when odd, unless that would take the speaker's median F0 outside
80-320 Hz, in which case it goes the other way. ``voices.json`` records each voice's factors and median F0s.

Output: ``<out>/<speaker>w<k>/<piece>.wav`` + ``.txt`` (the generic layout); each file is written atomically, and a
piece whose ``.txt`` exists is skipped, so an interrupted run is run again to finish.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vcframe._io import atomic_path, atomic_write

sys.path.insert(0, str(Path(__file__).resolve().parent))  # when imported by path, not run as a script
from _recipe_import import load  # noqa: E402

#: the range a new voice's F0 factor is drawn from (its inverse when the voice goes down)
F0_FACTORS = (1.15, 1.35)
#: the range of the formant (frequency-axis) warp, drawn the same way
WARP_FACTORS = (1.05, 1.12)
#: a new voice's median F0 stays within these (Hz); outside it WORLD's voices sound strained or growled
F0_LIMITS_HZ = (80.0, 320.0)


@dataclass(frozen=True)
class Variant:
    """One new voice made from a real speaker: its folder name, the factors, and the median F0 before and after."""

    speaker: str
    source: str
    f0_factor: float
    warp_factor: float
    median_f0_hz: float
    target_median_f0_hz: float


def draw_variant(source: str, index: int, median_f0_hz: float, seed: int = 0) -> Variant:
    """The factors of variant ``index`` of speaker ``source`` (deterministic in ``seed``, ``source`` and ``index``).

    Even indices go up (higher F0, shorter vocal tract), odd ones down, unless the speaker's ``median_f0_hz`` times
    the factor would leave ``F0_LIMITS_HZ``; then the variant goes the other way."""
    if median_f0_hz <= 0:
        raise ValueError(f"median_f0_hz must be positive, got {median_f0_hz}")
    rng = np.random.default_rng([seed, zlib.crc32(source.encode()), index])
    f0_step = float(rng.uniform(*F0_FACTORS))
    warp_step = float(rng.uniform(*WARP_FACTORS))
    up = index % 2 == 0
    low, high = F0_LIMITS_HZ
    if up and median_f0_hz * f0_step > high:
        up = False
    elif not up and median_f0_hz / f0_step < low:
        up = True
    f0_factor, warp_factor = (f0_step, warp_step) if up else (1.0 / f0_step, 1.0 / warp_step)
    return Variant(
        speaker=f"{source}w{index}",
        source=source,
        f0_factor=round(f0_factor, 4),
        warp_factor=round(warp_factor, 4),
        median_f0_hz=round(median_f0_hz, 1),
        target_median_f0_hz=round(median_f0_hz * f0_factor, 1),
    )


def median_f0(f0_tracks: Sequence[np.ndarray]) -> float:
    """The median F0 (Hz) over the voiced frames (F0 > 0) of all tracks; ValueError when none is voiced."""
    voiced = np.concatenate([track[track > 0] for track in f0_tracks]) if f0_tracks else np.zeros(0)
    if voiced.size == 0:
        raise ValueError("no voiced frame in the speaker's pieces")
    return float(np.median(voiced))


def vary_speaker(folder: Path, out: Path, variants: int, seed: int = 0) -> list[Variant]:
    """Write ``variants`` new voices of the speaker in ``folder`` (``<piece>.wav`` + ``.txt``) under ``out``."""
    import soundfile

    make_corpus = load("make_corpus")
    pieces = sorted(path for path in folder.glob("*.wav") if path.with_suffix(".txt").is_file())
    analyses = []
    for wav in pieces:
        waveform, sample_rate = soundfile.read(wav, dtype="float32", always_2d=True)
        analyses.append(make_corpus.world_analyse(waveform.mean(axis=1), sample_rate, f0_method="harvest"))
    if not analyses:
        return []
    try:
        median = median_f0([analysis.f0 for analysis in analyses])
    except ValueError:
        print(f"{folder.name}: no voiced frame found, no variant made", file=sys.stderr)
        return []
    made = [draw_variant(folder.name, index, median, seed) for index in range(variants)]
    for variant in made:
        target = out / variant.speaker
        target.mkdir(parents=True, exist_ok=True)
        for wav, analysis in zip(pieces, analyses, strict=True):
            text_path = target / f"{wav.stem}.txt"
            if text_path.is_file():
                continue  # finished in an earlier run (the text is written after the audio)
            audio = make_corpus.world_resynthesize(
                analysis, f0_factor=variant.f0_factor, warp_factor=variant.warp_factor
            )
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if peak > 0.99:  # WORLD can overshoot the source's level; keep the 16-bit file unclipped
                audio = audio * (0.99 / peak)
            with atomic_path(target / wav.name) as temporary:
                soundfile.write(temporary, audio, analysis.sample_rate, format="WAV", subtype="PCM_16")
            with atomic_path(text_path) as temporary:
                shutil.copyfile(wav.with_suffix(".txt"), temporary)
    return made


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="a generic-layout corpus of real speech (segment_real.py's output)")
    parser.add_argument("--out", type=Path, required=True, help="the new corpus (generic layout)")
    parser.add_argument("--variants", type=int, default=2, help="new voices per real speaker")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.variants < 1:
        raise SystemExit(f"--variants must be at least 1, got {args.variants}")
    speakers = sorted(path for path in args.corpus.iterdir() if path.is_dir())
    if not speakers:
        raise SystemExit(f"{args.corpus} holds no speaker folders: pass segment_real.py's output folder")
    args.out.mkdir(parents=True, exist_ok=True)
    voices: list[Variant] = []
    for number, folder in enumerate(speakers, 1):
        made = vary_speaker(folder, args.out, args.variants, args.seed)
        voices += made
        factors = ", ".join(f"F0 x{v.f0_factor:g} formants x{v.warp_factor:g}" for v in made)
        print(f"[{number}/{len(speakers)}] {folder.name}: {factors}", file=sys.stderr, flush=True)
    with atomic_write(args.out / "voices.json", "w") as stream:
        json.dump([asdict(voice) for voice in voices], stream, indent=1)
    print(f"{args.out}: {len(voices)} voices from {len(speakers)} speakers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
