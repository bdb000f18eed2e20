"""WaveRNN vocoder speed: samples per second and real-time factor on the same mel.

Run by hand:  .venv/bin/python benchmarks/vocoder.py [--seconds 2] [--threads 2] [--skip-baseline]

Rows: RTVC's per-sample loop transcribed (the baseline, RTVC's defaults: folded 8000/800, and unbatched), and
this plugin's generator at the RTVC preset (unbatched and folded, 1 and 2 threads, C++ kernel and PyTorch
loop) and at the small preset. Weights are random (speed does not depend on them); the mel is the fixtures'
synthetic utterance when ../shared is present (repeated to the requested length), else random. RTF =
generation time / audio duration (below 1 = faster than real time). Prints a markdown table and the load.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from vcframe_wavernn.generate import reference_generate, steps_for
from vcframe_wavernn.model import WaveRNNVocoder
from vcframe_wavernn.spec import WaveRNNConfig

from vcframe.specs import RTVC_SYNTHESIZER_MEL
from vcframe.types import Mel


def benchmark_mel(seconds: float) -> Mel:
    frames = int(seconds * 16000) // 200
    shared = Path(os.environ.get("VCFRAME_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
    path = shared / "rtvc" / "fixtures" / "features_ref.safetensors"
    if path.is_file():
        from safetensors.torch import load_file

        source = load_file(str(path))["syn_mel_80"]
        values = source.repeat(1, frames // source.shape[1] + 1)[:, :frames]
    else:
        values = torch.rand(80, frames, generator=torch.Generator().manual_seed(0)) * 8 - 4
    return Mel(values.unsqueeze(0).contiguous(), RTVC_SYNTHESIZER_MEL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="audio length of the benchmark mel")
    parser.add_argument(
        "--baseline-threads",
        type=int,
        default=1,
        help="torch threads for RTVC's loop (1: its per-step ops do not gain from more, and 2 threads on a busy "
        "machine were 11x slower in our measurement)",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for the multi-threaded rows")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out RTVC's loop (slow)")
    parser.add_argument("--skip-unbatched-baseline", action="store_true", help="leave out RTVC's unbatched loop")
    args = parser.parse_args()
    mel = benchmark_mel(args.seconds)
    frames = mel.frames.shape[-1]
    audio_s = frames * 200 / 16000
    rows: list[tuple[str, str, float]] = []

    def record(name: str, config: dict, run) -> float:
        folds, steps = steps_for(
            frames, 200, config.get("batched", True), config.get("target", 8000), config.get("overlap", 800)
        )
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        rows.append((name, f"{folds} x {steps}", elapsed))
        print(f"  {name}: {elapsed:.2f} s", flush=True)
        return elapsed

    def ours(name: str, threads: int, **overrides) -> None:
        torch.set_num_threads(threads)
        config = {"checkpoint": None, "threads": threads, **overrides}
        torch.manual_seed(0)
        vocoder = WaveRNNVocoder(WaveRNNConfig(**config))
        vocoder.vocode(Mel(mel.frames[:, :, :30], mel.spec), seed=0)  # build / load the kernel, warm up
        record(name, config, lambda: vocoder.vocode(mel, seed=0))

    if not args.skip_baseline:
        torch.set_num_threads(args.baseline_threads)
        torch.manual_seed(0)
        network = WaveRNNVocoder(WaveRNNConfig(checkpoint=None)).network
        model_mel = mel.frames / 4
        record(
            f"baseline: RTVC loop, folded 8000/800, {args.baseline_threads} thread(s)",
            {},
            lambda: reference_generate(network, model_mel, batched=True, target=8000, overlap=800),
        )
        if not args.skip_unbatched_baseline:
            record(
                f"baseline: RTVC loop, unbatched, {args.baseline_threads} thread(s)",
                {"batched": False},
                lambda: reference_generate(network, model_mel, batched=False, target=8000, overlap=800),
            )
    ours("rtvc preset, unbatched, cpp, 1 thread", 1, batched=False)
    ours(f"rtvc preset, unbatched, cpp, {args.threads} threads", args.threads, batched=False)
    ours("rtvc preset, folded 8000/800, cpp, 1 thread", 1)
    ours(f"rtvc preset, folded 8000/800, cpp, {args.threads} threads", args.threads)
    ours(f"rtvc preset, folded 4000/400, cpp, {args.threads} threads", args.threads, target=4000, overlap=400)
    ours(f"rtvc preset, folded 2000/200, cpp, {args.threads} threads", args.threads, target=2000, overlap=200)
    ours(f"rtvc preset, folded 8000/800, torch loop, {args.threads} threads", args.threads, engine="torch")
    ours(f"small preset, folded 8000/800, cpp, {args.threads} threads", args.threads, preset="small")
    ours(
        f"small preset, folded 2000/200, cpp, {args.threads} threads",
        args.threads,
        preset="small",
        target=2000,
        overlap=200,
    )

    baseline = rows[0][2] if not args.skip_baseline else None
    print(
        f"\nmel: {frames} frames = {audio_s:.2f} s of audio; torch {torch.__version__}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n"
    )
    print("| generator | folds x steps | time (s) | samples/s | RTF | speed-up vs baseline |")
    print("|---|---|---|---|---|---|")
    for name, shape, elapsed in rows:
        speedup = f"{baseline / elapsed:.1f}x" if baseline else "-"
        print(
            f"| {name} | {shape} | {elapsed:.2f} | {frames * 200 / elapsed:,.0f} | {elapsed / audio_s:.2f} "
            f"| {speedup} |"
        )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
