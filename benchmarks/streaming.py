"""Streaming latency: when the first audio comes, and whether every chunk is ready before playback needs it.

    python benchmarks/streaming.py [--vocoders griffinlim,hifigan,wavernn] [--threads 2] [--rounds 3]
                                   [--batch-size 8] [--first-batch-sizes 8,1]

With the default bundle's encoder and synthesizer (GE2E, the shipped tacotron-demo weights) and each vocoder on
its shipped weights (Griffin-Lim; hifigan-demo; wavernn-demo, the small preset), models loaded and warmed up:

* ``vocode_stream``: the vocoder alone on one synthesized sentence's mel: seconds from the call to the first
  chunk, and the smallest slack over the chunks when playback starts at the first chunk (chunk ``k`` is needed
  at ``first + audio before k / sample rate``; slack = needed - ready; negative = the player would stall).
* ``vocode``: the same mel whole, one chunk (the reference: ``vocode_stream``'s total against it is what
  streaming costs; equal by construction for vocoders whose stream is their vocode, not for Griffin-Lim).
* ``Pipeline.stream``: a three-sentence text read with a sample voice, from the call (embedding known) to the
  first chunk, and the same slack over the whole stream, with the synthesis overlapped (``overlap=True``, the
  default) and sequential (``overlap=False``).
* ``Pipeline.clone``: the same text whole (first audio = total), which synthesizes the same batches.

``--first-batch-sizes 8,1`` measures each case at each ``synthesis_first_batch_size`` (8 with batch size 8: the
whole text in one batch, as before issue 26's first-sentence batch; 1: the first sentence alone, the default),
interleaved round by round so that both see the same load.

Each figure is the median over ``--rounds`` runs; prints the CPU model and the load average range. The shared
machine's other jobs make absolute figures upper bounds.
"""

from __future__ import annotations

import os

from vcframe.cli import _prefer_passive_openmp_wait

_prefer_passive_openmp_wait()  # idle OpenMP threads sleep, as in `vcframe run` (set before torch loads)

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import torch  # noqa: E402

from vcframe.config import Settings  # noqa: E402
from vcframe.cpu import cpu_flags, cpu_model  # noqa: E402
from vcframe.pipeline import Pipeline  # noqa: E402
from vcframe.types import Mel, SpeakerEmbedding, Waveform  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs back home again."
TEXT = (
    "Streaming should start at once. The next sentence is synthesized while this one plays. "
    "And the last one follows without a gap."
)
VOICE = "clara"


def cpu_line() -> str:
    """The CPU model, the flags that decide the fast paths, and the CPU count."""
    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return f"{cpu_model()} ({', '.join(f for f in wanted if f in flags)}), {os.cpu_count()} CPUs"


def timed(chunks: Iterator[Waveform]) -> tuple[float, float, float, float, int]:
    """(seconds to the first chunk, smallest slack, seconds to the end, seconds of audio, chunks) of a chunk
    iterator started now."""
    started = time.perf_counter()
    first = None
    audio = 0.0
    slack = float("inf")
    count = 0
    for chunk in chunks:
        ready = time.perf_counter() - started
        if first is None:
            first = ready
        slack = min(slack, first + audio - ready)
        audio += chunk.durations[0]
        count += 1
    assert first is not None
    return first, slack, time.perf_counter() - started, audio, count


def _whole(pipeline: Pipeline, speaker: SpeakerEmbedding) -> Iterator[Waveform]:
    """``clone`` of the text as one chunk, made when the iterator is first advanced."""
    yield pipeline.clone(TEXT, embedding=speaker, seed=0)


def _vocoded(pipeline: Pipeline, mel: Mel) -> Iterator[Waveform]:
    """``vocode`` of the mel as one chunk, made when the iterator is first advanced."""
    yield pipeline.vocoder.vocode(mel, seed=0)


def measure(
    vocoder: str, rounds: int, loads: list[float], batch_size: int, first_batch_sizes: list[int]
) -> dict[str, list[float]]:
    """Case -> median (first audio, smallest slack, total, audio seconds, chunks) for one vocoder; the pipeline
    cases once per first batch size (named ``... (first batch N)``), rounds interleaved."""
    pipeline = Pipeline(
        vocoder=vocoder,
        settings=Settings(synthesis_batch_size=batch_size),
        device="cpu",
        threads=torch.get_num_threads(),  # --threads
    )
    speaker = pipeline.voice_embedding(VOICE)
    with torch.inference_mode():
        mel = pipeline.synthesize([SENTENCE], speaker, seed=0)[0]
    list(pipeline.stream(TEXT, embedding=speaker, seed=0))  # warm-up: builds every component
    cases: dict[str, tuple[int | None, Callable[[], Iterator[Waveform]]]] = {
        "vocode_stream (one sentence)": (None, lambda: pipeline.vocoder.vocode_stream(mel, seed=0)),
        "vocode (one sentence, whole)": (None, lambda: _vocoded(pipeline, mel)),
    }
    for first in first_batch_sizes:
        cases |= {
            f"Pipeline.stream, overlap (first batch {first})": (
                first,
                lambda: pipeline.stream(TEXT, embedding=speaker, seed=0),
            ),
            f"Pipeline.stream, sequential (first batch {first})": (
                first,
                lambda: pipeline.stream(TEXT, embedding=speaker, seed=0, overlap=False),
            ),
            f"Pipeline.clone (first batch {first})": (first, lambda: _whole(pipeline, speaker)),
        }
    results: dict[str, list[tuple[float, float, float, float, int]]] = {what: [] for what in cases}
    for _ in range(rounds):
        for what, (first, make) in cases.items():
            if first is not None:
                pipeline.settings.synthesis_first_batch_size = first
            with torch.inference_mode():
                results[what].append(timed(make()))
            loads.append(os.getloadavg()[0])
    return {what: [statistics.median(values) for values in zip(*rows, strict=True)] for what, rows in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Streaming: first audio and chunk slack per vocoder.")
    parser.add_argument("--vocoders", default="griffinlim,hifigan,wavernn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batch-size", type=int, default=8, help="synthesis_batch_size (8, the default, puts the text in one batch)"
    )
    parser.add_argument(
        "--first-batch-sizes",
        default="1",
        help="comma-separated synthesis_first_batch_size values to compare (1, the default: the first sentence "
        "alone; 8: the whole first batch at once, as before)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}; {cpu_line()}; {args.threads} torch threads; synthesis_batch_size "
        f"{args.batch_size}; {args.rounds} rounds (median)"
    )
    print("| vocoder | what | first audio (s) | smallest slack (s) | total (s) | audio (s) | chunks |")
    print("|---|---|---|---|---|---|---|")
    loads = [os.getloadavg()[0]]
    first_batch_sizes = [int(size) for size in args.first_batch_sizes.split(",") if size]
    for vocoder in args.vocoders.split(","):
        medians = measure(vocoder, args.rounds, loads, args.batch_size, first_batch_sizes)
        for what, (first, slack, total, audio, count) in medians.items():
            print(f"| {vocoder} | {what} | {first:.3f} | {slack:+.3f} | {total:.2f} | {audio:.2f} | {int(count)} |")
    print(f"load average (1 min) during the run: {min(loads):.2f}-{max(loads):.2f}")


if __name__ == "__main__":
    main()
