"""What the Tacotron's bfloat16 decoder changes against float32 on ``benchmarks/quality.py``'s items: stop frames,
alignments, mels and synthesis speed.

    .venv/bin/python plugins/synthesizers/tacotron/benchmarks/precision.py --sentences 6 --real 6 --synthetic 5 \\
        --threads 1 --out /tmp/precision.json

The items are the quality benchmark's (its helpers pick them): the default bundle's synthesizer, the first
``--synthetic`` sample voices and ``--real`` real clips of ../shared/data, the first ``--sentences`` held-out
sentences of the demo corpus recipe, each split and seeded as ``Pipeline.clone`` does (``--seed`` + sentence
index). Every item is synthesized with ``precision=float32`` and ``precision=bfloat16`` on the same network, timed
interleaved (the order alternates item by item, after one warm-up call each). Per item and precision:

* ``stop_frame``: frames the decoder generated before the stop head fired (decoder steps x ``r``, before the
  trailing-silence trim), and ``capped`` when it never fired (``max_frames`` reached);
* ``final_position``: the character the attention weighs most at the last decoder step, against the text's
  ``characters`` (ids, end-of-text symbol included); ``reached_end`` when it is within ``--end-tolerance``
  characters of the last one and the stop fired: an alignment that did not get there skipped or repeated words
  or stopped early;
* between the precisions: the stop frame's move and the mean absolute difference of the output mels (log-mel
  units, over the frames both have), over the whole item and over its second half (a rendition that drifts apart
  after its middle shows there).

Prints a summary (per voice group: stop frames moved, alignments failed, mel differences; frames per second of
each precision and their per-item ratio, with the CPU and the load average; with ``--batched`` also each voice's
sentences synthesized in one call, as a multi-sentence ``vcframe run`` batches them) and writes every row to
``--out``.
Words heard right are ``benchmarks/quality.py``'s job (``-o synthesizer.tacotron.precision=...``).
"""

from __future__ import annotations

from vcframe.cli import _prefer_passive_openmp_wait

_prefer_passive_openmp_wait()  # idle OpenMP threads sleep, as in `vcframe run` (set before torch loads)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from vcframe._io import atomic_write  # noqa: E402
from vcframe.config import load_settings  # noqa: E402
from vcframe.pipeline import Pipeline  # noqa: E402
from vcframe.types import Mel  # noqa: E402
from vcframe.voices import sample_voices  # noqa: E402

ROOT = Path(__file__).resolve().parents[4]
PRECISIONS = ("float32", "bfloat16")


def benchmark_module(name: str) -> Any:
    """``benchmarks/<name>.py`` as a module (the quality benchmark's item choice, the CPU description)."""
    spec = importlib.util.spec_from_file_location(f"vcframe_benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def decoder_steps(mel: Mel) -> int:
    """Decoder steps of a one-item ``mel``: its alignment's rows, less a batch's padding rows (all zero)."""
    if mel.alignment is None:
        raise ValueError("the synthesizer gave no alignment")
    return int((mel.alignment[0].sum(dim=1) > 0.5).sum())


def alignment_summary(mel: Mel, characters: int, r: int, max_frames: int, tolerance: int) -> dict[str, Any]:
    """Stop frame and final attention position of a one-item ``mel`` whose text has ``characters`` ids.

    Args:
        mel: one item with ``alignment`` (1, steps, L); rows of a batch's padding (all zero) are not steps.
        characters: the item's id count (the attention's columns past it are padding).
        r: frames per decoder step; max_frames: the synthesizer's cap; tolerance: characters short of the last one
            that still count as the end.
    """
    steps = decoder_steps(mel)
    assert mel.alignment is not None
    attention = mel.alignment[0, :, :characters].float()
    final_position = int(attention[steps - 1].argmax())
    stop_frame = steps * r
    capped = stop_frame >= max_frames
    return {
        "characters": characters,
        "decoder_steps": steps,
        "stop_frame": stop_frame,
        "frames": int(mel.lengths[0]),
        "final_position": final_position,
        "capped": capped,
        "reached_end": not capped and final_position >= characters - 1 - tolerance,
    }


def mel_difference(first: Mel, second: Mel) -> tuple[float, float]:
    """Mean absolute difference of two one-item mels over the frames both have: whole, and second half."""
    frames = min(int(first.lengths[0]), int(second.lengths[0]))
    difference = (first.frames[0, :, :frames] - second.frames[0, :, :frames]).abs()
    return float(difference.mean()), float(difference[:, frames // 2 :].mean())


def batched_speed(
    pipelines: dict[str, Pipeline],
    embeddings: dict[str, Any],
    voices: list[tuple[str, str, Path]],
    sentences: list[str],
    seed: int,
    r: int,
) -> dict[str, Any]:
    """Frames per second with each voice's sentences synthesized in one call (batches of the settings'
    ``synthesis_batch_size``, as a multi-sentence ``vcframe run``), precisions interleaved voice by voice."""
    pieces = [piece for text in sentences for piece in pipelines["float32"].sentences(text)]
    seconds = dict.fromkeys(PRECISIONS, 0.0)
    frames = dict.fromkeys(PRECISIONS, 0)
    for item, (_, name, _) in enumerate(voices):
        for precision in PRECISIONS if item % 2 == 0 else PRECISIONS[::-1]:
            started = time.perf_counter()
            mels = pipelines[precision].synthesize(pieces, embeddings[name], seed=seed)
            seconds[precision] += time.perf_counter() - started
            frames[precision] += sum(decoder_steps(mel) for mel in mels) * r
    return {
        "batch_size": pipelines["float32"].settings.synthesis_batch_size,
        "pieces": len(pieces),
        "frames_per_second": {precision: frames[precision] / seconds[precision] for precision in PRECISIONS},
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    quality = benchmark_module("quality")
    synthesizer_benchmark = benchmark_module("synthesizer")
    torch.set_num_threads(args.threads)
    recipe = quality.load_recipe()
    sentences = quality.held_out_sentences(recipe, args.sentences)
    voices = [("synthetic held-out", voice.name, voice.clip) for voice in sample_voices()[: args.synthetic]]
    voices += [("real", name, clips[0]) for name, clips in quality.real_voice_clips(args.shared)[: args.real]]
    pipelines = {
        precision: Pipeline(
            device="cpu", settings=load_settings([*(args.option or []), f"synthesizer.tacotron.precision={precision}"])
        )
        for precision in PRECISIONS
    }
    synthesizers = {precision: pipeline.synthesizer for precision, pipeline in pipelines.items()}
    for precision, synthesizer in synthesizers.items():
        if synthesizer.dtype != getattr(torch, precision):
            raise SystemExit(f"error: precision={precision} resolved to {synthesizer.dtype}")
    reference = synthesizers["float32"]
    r, max_frames = reference.network.r, reference.config.max_frames
    print(synthesizer_benchmark.cpu_description())
    print(
        f"synthesizer: {reference.config.checkpoint} (preset {reference.config.preset}, r={r}, inference dropout "
        f"{reference.inference_dropout}), {len(voices)} voices x {len(sentences)} sentences, {args.threads} thread(s)"
    )
    embeddings = {name: pipelines["float32"].embed([clip]) for _, name, clip in voices}
    warm = sentences[0]
    for pipeline in pipelines.values():
        pipeline.synthesize([warm], embeddings[voices[0][1]], seed=args.seed)
    rows: list[dict[str, Any]] = []
    seconds = dict.fromkeys(PRECISIONS, 0.0)
    loads = [synthesizer_benchmark.load()]
    items = [(group, name, index) for group, name, _ in voices for index in range(len(sentences))]
    for item, (group, name, index) in enumerate(items):
        text = sentences[index]
        pieces = pipelines["float32"].sentences(text)
        seed = args.seed + index
        order = PRECISIONS if item % 2 == 0 else PRECISIONS[::-1]
        mels: dict[str, list[Mel]] = {}
        elapsed: dict[str, float] = {}
        for precision in order:
            started = time.perf_counter()
            mels[precision] = pipelines[precision].synthesize(pieces, embeddings[name], seed=seed)
            elapsed[precision] = time.perf_counter() - started
            seconds[precision] += elapsed[precision]
        loads.append(synthesizer_benchmark.load())
        for piece_index, piece in enumerate(pieces):
            characters = len(reference.texts_to_ids([piece])[0])
            summaries = {
                precision: alignment_summary(
                    mels[precision][piece_index], characters, r, max_frames, args.end_tolerance
                )
                for precision in PRECISIONS
            }
            whole, second_half = mel_difference(mels["float32"][piece_index], mels["bfloat16"][piece_index])
            rows.append(
                {
                    "group": group,
                    "voice": name,
                    "sentence": index,
                    "piece": piece_index,
                    "text": piece,
                    **{precision: summaries[precision] for precision in PRECISIONS},
                    "seconds": elapsed if piece_index == 0 else None,
                    "stop_moved_frames": summaries["bfloat16"]["stop_frame"] - summaries["float32"]["stop_frame"],
                    "mel_mean_abs": whole,
                    "mel_mean_abs_second_half": second_half,
                }
            )
            row = rows[-1]
            print(
                f"{name} {index}.{piece_index}: stop {row['float32']['stop_frame']} -> {row['bfloat16']['stop_frame']} "
                f"end {row['float32']['final_position']}/{row['bfloat16']['final_position']} of {characters - 1} "
                f"mel {whole:.3f} (second half {second_half:.3f})",
                flush=True,
            )
    batched = batched_speed(pipelines, embeddings, voices, sentences, args.seed, r) if args.batched else None
    if batched is not None:
        loads.append(synthesizer_benchmark.load())
    frames = {precision: sum(row[precision]["stop_frame"] for row in rows) for precision in PRECISIONS}
    ratios = [row["seconds"]["float32"] / row["seconds"]["bfloat16"] for row in rows if row["seconds"] is not None]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return {
        "commit": commit.stdout.strip(),
        "cpu": synthesizer_benchmark.cpu_description(),
        "load": [min(loads), max(loads)],
        "threads": args.threads,
        "end_tolerance": args.end_tolerance,
        "sentences": sentences,
        "frames_per_second": {precision: frames[precision] / seconds[precision] for precision in PRECISIONS},
        "speedup_median": statistics.median(ratios),
        "batched": batched,
        "rows": rows,
    }


def summary(report: dict[str, Any]) -> str:
    """Per voice group and overall: items, stop frames moved, alignments that did not reach the end, mel
    differences; then the speed line."""
    lines = [
        "| voices | items | stop frame moved | mean abs move (frames) | largest move | end not reached float32 "
        "| end not reached bfloat16 | mel mean abs median (max) | second half median (max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = report["rows"]
    for group in [*sorted({row["group"] for row in rows}), "all"]:
        chosen = [row for row in rows if group in ("all", row["group"])]
        moves = [abs(row["stop_moved_frames"]) for row in chosen]
        moved = sum(move > 0 for move in moves)
        failed = {precision: sum(not row[precision]["reached_end"] for row in chosen) for precision in PRECISIONS}
        whole = [row["mel_mean_abs"] for row in chosen]
        second = [row["mel_mean_abs_second_half"] for row in chosen]
        lines.append(
            f"| {group} | {len(chosen)} | {moved} | {statistics.mean(moves):.1f} | {max(moves)} "
            f"| {failed['float32']} | {failed['bfloat16']} "
            f"| {statistics.median(whole):.3f} ({max(whole):.3f}) "
            f"| {statistics.median(second):.3f} ({max(second):.3f}) |"
        )
    speed = report["frames_per_second"]
    lines.append(
        f"\nsynthesis, {report['threads']} thread(s): float32 {speed['float32']:.0f} frames/s, bfloat16 "
        f"{speed['bfloat16']:.0f} frames/s (median per-item ratio {report['speedup_median']:.2f}x); load average "
        f"{report['load'][0]:.2f}-{report['load'][1]:.2f}; {report['cpu']}; commit {report['commit']}"
    )
    batched = report.get("batched")
    if batched:
        speed = batched["frames_per_second"]
        lines.append(
            f"each voice's {batched['pieces']} sentences in one call (batches of {batched['batch_size']}): float32 "
            f"{speed['float32']:.0f} frames/s, bfloat16 {speed['bfloat16']:.0f} frames/s "
            f"({speed['bfloat16'] / speed['float32']:.2f}x)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=6, help="held-out sentences per voice")
    parser.add_argument("--real", type=int, default=6, help="real clips from ../shared/data (0 = none)")
    parser.add_argument("--synthetic", type=int, default=None, help="sample voices (default: all; 0 = none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--end-tolerance", type=int, default=2, help="characters short of the last one that still count as the end"
    )
    parser.add_argument("--batched", action="store_true", help="also time each voice's sentences as one call")
    parser.add_argument("-o", "--option", action="append", help="KEY=VALUE as in vcframe run -o (not the precision)")
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("VCFRAME_SHARED", ROOT.parent / "shared")))
    parser.add_argument("--out", type=Path, help="results JSON (every row)")
    parser.add_argument("--table-from", type=Path, help="print the summary of an earlier --out and stop")
    args = parser.parse_args()
    if args.table_from:
        print(summary(json.loads(args.table_from.read_text())))
        return
    if args.threads < 1 or args.sentences < 1 or args.end_tolerance < 0:
        parser.error("--threads and --sentences take a number >= 1, --end-tolerance >= 0")
    report = measure(args)
    print("\n" + summary(report))
    if args.out is not None:
        with atomic_write(args.out, "w") as handle:
            handle.write(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
