"""A re-weighted view of a preprocessed synthesizer folder: each utterance listed as often as its voice's engine asks.

    python recipes/demo/reweight_prep.py /work/corpus/many_all_prep --out /work/corpus/many_bal_prep \
        --speakers /work/corpus/many/speakers.json --speakers /work/corpus/many_v3/speakers.json \
        --repeat flite=4 --repeat festival=4

The corpus recipe's voices are mostly espeak-ng based (90 of the 123 training voices, 73 % of the clips), and
pocketsphinx hears few words of them (about 12 % against 73-80 % for the flite and festival based voices, on 2 held-out
clips per voice): a synthesizer that trains on them learns their articulation. Listing the utterances of the
other engines' voices N times brings the mix back to what the first demo corpus had (41 % espeak-ng) without
dropping a voice. The new folder holds ``manifest.jsonl`` (rows in the original order, each repeated in place),
``info.json`` (copied, with the weights recorded under ``reweighted``) and symlinks to the original ``mels`` and
``embeds`` folders; nothing is recomputed. ``vcframe train synthesizer fit --data`` reads it like any prepared folder
(a repeated row is one more draw of that utterance per epoch).

``--heard FILE`` (written by ``measure_intelligibility.py``) weights each voice by how many words pocketsphinx
hears of its own clips instead of by engine alone: a voice is listed ``max(1, round(SCALE * heard))`` times
(``--heard-scale``, default 10; times its engine's ``--repeat`` when both are given), so no voice is dropped and
the formant-warped voices the recogniser cannot follow stop dominating what the synthesizer learns to say.

``--add PREP=N`` appends another prepared folder's utterances, each listed N times (their ``mel`` and ``embed``
paths made absolute; its mel settings and embedding space must equal the main folder's): e.g. the real-voice pieces
of ``segment_real.py`` beside the synthetic corpus. Its speakers need no ``--speakers`` entry; they count as the
engine ``added:<folder name>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path


def engine_repeats(specs: Sequence[str]) -> dict[str, int]:
    """``["flite=4", ...]`` -> ``{"flite": 4}``; refuses a malformed item or a count below 1."""
    repeats: dict[str, int] = {}
    for spec in specs:
        engine, separator, count = spec.partition("=")
        if not separator or not engine or not count.isdigit() or int(count) < 1:
            raise SystemExit(f"--repeat {spec!r}: expected ENGINE=N with N >= 1, e.g. flite=4")
        repeats[engine] = int(count)
    return repeats


def speaker_engines(paths: Sequence[Path]) -> dict[str, str]:
    """speaker id -> engine from the corpus recipe's speakers.json files (later files win)."""
    engines: dict[str, str] = {}
    for path in paths:
        for speaker, meta in json.loads(path.read_text()).items():
            engines[speaker] = str(meta.get("engine", "?"))
    return engines


def heard_repeats(path: Path, scale: float) -> dict[str, int]:
    """speaker -> ``max(1, round(scale * heard))`` from a ``measure_intelligibility.py`` report."""
    if scale <= 0:
        raise SystemExit(f"--heard-scale {scale:g}: expected a positive number, e.g. 10")
    try:
        voices = json.loads(path.read_text())["voices"]
        return {speaker: max(1, round(scale * float(result["heard"]))) for speaker, result in voices.items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"--heard {path}: not a measure_intelligibility.py report ({error})") from None


def reweighted_rows(
    rows: Sequence[dict[str, object]],
    engines: dict[str, str],
    repeats: dict[str, int],
    voice_repeats: dict[str, int] | None = None,
) -> list[dict[str, object]]:
    """Each row repeated ``repeats[engine of its speaker]`` times (1 for engines not named), times
    ``voice_repeats[speaker]`` when given, in place; refuses a row whose speaker has no engine or no voice repeat."""
    result: list[dict[str, object]] = []
    for row in rows:
        speaker = str(row["speaker"])
        if speaker not in engines:
            raise SystemExit(f"speaker {speaker!r} is in no --speakers file; pass the corpus's speakers.json")
        count = repeats.get(engines[speaker], 1)
        if voice_repeats is not None:
            if speaker not in voice_repeats:
                raise SystemExit(f"speaker {speaker!r} is not in the --heard report; measure every training voice")
            count *= voice_repeats[speaker]
        result.extend([row] * count)
    return result


def read_prepared(folder: Path, what: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    """(manifest rows, info.json or {}) of a folder written by the synthesizer preprocess; SystemExit naming
    ``what`` (the argument it came from) when it has no manifest."""
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"{what}{manifest} does not exist; run 'vcframe train synthesizer preprocess' first")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    info = json.loads((folder / "info.json").read_text()) if (folder / "info.json").is_file() else {}
    return rows, info


def added_rows(spec: str, info: dict[str, object]) -> tuple[Path, int, list[dict[str, object]]]:
    """``--add PREP=N``: (folder, N, its rows each N times with absolute mel/embed paths). Refuses a folder whose mel
    settings or embedding space differ from ``info``'s, naming the field and both values."""
    folder_text, separator, count = spec.rpartition("=")
    if not separator or not folder_text or not count.isdigit() or int(count) < 1:
        raise SystemExit(f"--add {spec!r}: expected PREP=N with N >= 1, e.g. /work/corpus/real_seg_prep=8")
    folder = Path(folder_text)
    rows, added_info = read_prepared(folder, f"--add {spec!r}: ")
    for field in ("mel_spec", "embedding_spec"):
        if added_info.get(field) != info.get(field):
            raise SystemExit(
                f"--add {spec!r}: its {field} {added_info.get(field)} differs from the main folder's {info.get(field)}"
            )
    for row in rows:
        for key in ("mel", "embed"):
            row[key] = str((folder / str(row[key])).resolve())
    return folder, int(count), [row for row in rows for _ in range(int(count))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prep", type=Path, help="a folder written by 'vcframe train synthesizer preprocess'")
    parser.add_argument("--out", type=Path, required=True, help="the re-weighted folder (created; must not exist)")
    parser.add_argument("--speakers", type=Path, action="append", required=True, help="speakers.json (repeatable)")
    parser.add_argument("--repeat", action="append", default=[], help="ENGINE=N: list that engine's clips N times")
    parser.add_argument("--heard", type=Path, help="measure_intelligibility.py's report: repeat voices by it")
    parser.add_argument("--heard-scale", type=float, default=10.0, help="repeats = max(1, round(SCALE * heard))")
    parser.add_argument("--add", action="append", default=[], help="PREP=N: append that prepared folder's rows N times")
    args = parser.parse_args(argv)
    rows, info = read_prepared(args.prep, "")
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose a new folder (or remove it)")
    repeats = engine_repeats(args.repeat)
    engines = speaker_engines(args.speakers)
    voice_repeats = heard_repeats(args.heard, args.heard_scale) if args.heard is not None else None
    result = reweighted_rows(rows, engines, repeats, voice_repeats)
    info["reweighted"] = {"from": str(args.prep.resolve()), "repeat": repeats, "rows": len(result)}
    if args.heard is not None:
        info["reweighted"]["heard"] = {"report": str(args.heard.resolve()), "scale": args.heard_scale}
    added = [added_rows(spec, info) for spec in args.add]
    for folder, _, extra in added:
        result.extend(extra)
        engines.update({str(row["speaker"]): f"added:{folder.name}" for row in extra})
    if added:
        info["reweighted"]["added"] = [
            {"from": str(folder.resolve()), "repeat": count, "rows": len(extra)} for folder, count, extra in added
        ]
        info["reweighted"]["rows"] = len(result)

    partial = args.out.with_name(f".{args.out.name}.part")
    partial.mkdir(parents=True)
    for folder in ("mels", "embeds"):
        (partial / folder).symlink_to((args.prep / folder).resolve(), target_is_directory=True)
    (partial / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in result))
    (partial / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    partial.rename(args.out)

    before = Counter(engines[str(row["speaker"])] for row in rows)
    for _, count, extra in added:
        before.update(engines[str(row["speaker"])] for row in extra[::count])
    after = Counter(engines[str(row["speaker"])] for row in result)
    for engine in sorted(before):
        print(
            f"{engine}: {before[engine]} clips = {100 * before[engine] / sum(before.values()):.1f} % -> "
            f"{after[engine]} rows = {100 * after[engine] / len(result):.1f} %"
        )
    utterances = len(rows) + sum(len(extra) // count for _, count, extra in added)
    print(f"wrote {args.out}: {len(result)} rows from {utterances} utterances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
