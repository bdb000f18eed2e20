"""Vocoder speed (WaveRNN, HiFi-GAN): samples per second and real-time factor on the same mel.

Run by hand:  .venv/bin/python benchmarks/vocoder.py [--seconds 2] [--threads 2] [--skip-baseline]
              [--family wavernn|hifigan|all] [--repeats 5]

HiFi-GAN rows (``--family hifigan``): the released V1 and V3 generators on HiFi-GAN's 22,050 Hz mel (the
fixtures' LJ001-0001 mel, repeated), and a V3-like generator for RTVC's 16 kHz hop-200 mel (upsample 8 x 5 x 5,
the size demo weights at RTVC's mel would take), each through the plugin's vocoder (weight norm folded) at
batch 1 on 1 and ``--threads`` threads, V1 and V3 in bfloat16 autocast, V3 at batch 4, V3 with weight norm
kept (the training form), and the time to the first chunk of ``vocode_stream``. Each row is the minimum over
``--repeats`` timed calls after a warm-up call (the machine is shared: the minimum is the least disturbed
run), with the median beside it.

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


def hifigan_mel(seconds: float) -> Mel:
    """HiFi-GAN's 22,050 Hz mel of LJ001-0001 (the fixtures' 86 frames, repeated), else random values."""
    from vcframe.specs import HIFIGAN_MEL

    frames = int(seconds * 22050) // 256
    shared = Path(os.environ.get("VCFRAME_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
    path = shared / "hifigan" / "fixtures" / "generator_ref.safetensors"
    if path.is_file():
        from safetensors.torch import load_file

        source = load_file(str(path))["mel"][0]
        values = source.repeat(1, frames // source.shape[1] + 1)[:, :frames]
    else:
        values = torch.rand(80, frames, generator=torch.Generator().manual_seed(0)) * 10 - 11
    return Mel(values.unsqueeze(0).contiguous(), HIFIGAN_MEL)


def hifigan_rows(seconds: float, threads: int, repeats: int) -> None:
    """Print the HiFi-GAN table (see the module docstring)."""
    import statistics

    from vcframe_hifigan.generator import Generator
    from vcframe_hifigan.model import HiFiGANVocoder
    from vcframe_hifigan.spec import HiFiGANConfig

    rows: list[tuple[str, float, float, float]] = []
    rtvc_hop = {"preset": "v3", "upsample_rates": (8, 5, 5), "upsample_kernel_sizes": (16, 11, 11)}
    mels = {"hifigan": hifigan_mel(seconds), "rtvc": benchmark_mel(seconds)}

    def timed(run) -> tuple[float, float]:
        run()  # warm-up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        return min(times), statistics.median(times)

    def measure(name: str, mel: Mel, vocoder: HiFiGANVocoder, batch: int = 1) -> None:
        batched = Mel(mel.frames.repeat(batch, 1, 1), mel.spec)
        audio_s = batch * mel.frames.shape[-1] * mel.spec.hop_length / mel.spec.sample_rate
        best, median = timed(lambda: vocoder.vocode(batched))
        first, _ = timed(lambda: next(iter(vocoder.vocode_stream(mel))))
        rows.append((name, best / audio_s, median / audio_s, first))
        print(f"  {name}: RTF {best / audio_s:.3f}, first chunk {first * 1000:.0f} ms", flush=True)

    for label, options, mel_name in (
        ("V1", {"preset": "v1"}, "hifigan"),
        ("V3", {"preset": "v3"}, "hifigan"),
        ("V3-like, 16 kHz hop 200", {**rtvc_hop, "mel": RTVC_SYNTHESIZER_MEL}, "rtvc"),
    ):
        mel = mels[mel_name]
        for count in sorted({1, threads}):
            torch.manual_seed(0)
            vocoder = HiFiGANVocoder(HiFiGANConfig(checkpoint=None, threads=count, **options))
            measure(f"{label}, batch 1, {count} thread(s)", mel, vocoder)
            if count == 1 and label in ("V1", "V3"):
                fast = HiFiGANVocoder(vocoder.config.model_copy(update={"precision": "bfloat16"}))
                measure(f"{label}, batch 1, 1 thread, bfloat16 autocast", mel, fast)
            if label == "V3" and count == 1:
                measure(f"{label}, batch 4, 1 thread", mel, vocoder, batch=4)
                folded = vocoder.network
                vocoder.network = Generator(folded.config, weight_norm=True).eval().requires_grad_(False)
                measure(f"{label}, batch 1, 1 thread, weight norm kept (training form)", mel, vocoder)
                vocoder.network = folded
    print(
        f"\nHiFi-GAN: {seconds:.2f} s mels; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} CPUs; RTF = compute seconds per second of audio (min and median of {repeats})\n"
    )
    print("| generator | RTF (min) | RTF (median) | first streamed chunk (ms) |")
    print("|---|---|---|---|")
    for name, best, median, first in rows:
        print(f"| {name} | {best:.3f} | {median:.3f} | {first * 1000:.0f} |")


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
    parser.add_argument("--family", choices=("wavernn", "hifigan", "all"), default="all", help="which vocoders to time")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per HiFi-GAN row (the minimum counts)")
    args = parser.parse_args()
    if args.family in ("hifigan", "all"):
        hifigan_rows(args.seconds, args.threads, args.repeats)
    if args.family == "hifigan":
        return
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
