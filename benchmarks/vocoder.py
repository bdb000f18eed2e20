"""Vocoder speed (WaveRNN, HiFi-GAN): samples per second and real-time factor on the same mel.

Run by hand:  .venv/bin/python benchmarks/vocoder.py [--seconds 2] [--threads 2] [--skip-baseline]
              [--family wavernn|hifigan|all] [--rounds 5]

HiFi-GAN rows (``--family hifigan``): the released V1 and V3 generators on HiFi-GAN's 22,050 Hz mel (the
fixtures' LJ001-0001 mel, repeated), and the demo size for RTVC's 16 kHz hop-200 mel (V3 layout, 128 channels,
upsample 8 x 5 x 5), each beside the original jik876 generator as ``inference_e2e.py`` runs it (transcribed here
from SPEC section 4: built with weight norm, the same random weights loaded, ``eval()``, ``remove_weight_norm()``,
``no_grad``), at batch 1 on 1 and ``--threads`` threads, and batch 4 for V3 and the demo size. The plugin runs
at its default precision (``auto``: bfloat16 where the CPU has AMX / AVX-512 BF16) and at ``float32``. The
rows are timed interleaved: each of ``--rounds`` rounds times every row's original, plugin and first streamed
chunk once (after one warm-up call each), so a busy moment on the shared machine hits both sides of a ratio;
the table gives median RTFs, the median of the per-round ratios original / vcframe, and the load average range.

WaveRNN rows (``--family wavernn``): RTVC's per-sample loop transcribed (the baseline, RTVC's defaults: folded
8000/800, ``--baseline-threads``), and this plugin at the RTVC and small presets, each precision (float32,
bfloat16, int8) with the fold count chosen from the length, with RTVC's sampler and with the inverse-CDF sampler
(``sampler="inverse_cdf"``: one uniform number per fold and step), and float32 with RTVC's 8000/800, on 1 and
``--threads`` threads, timed interleaved over ``--wavernn-rounds`` rounds (wall and the process's CPU time), with the
first chunk of ``vocode_stream``. Weights are random (speed does not depend on them); the mel is the fixtures'
synthetic utterance when ../shared is present (repeated to the requested length), else random. RTF =
generation time / audio duration (below 1 = faster than real time). Prints the CPU model and flags, a markdown
table and the load average.
"""

from __future__ import annotations

import os

from vcframe.cli import _prefer_passive_openmp_wait

_prefer_passive_openmp_wait()  # idle OpenMP threads sleep, as in `vcframe run` (set before torch loads)
# The HiFi-GAN rows hold 3 generators x 2 precisions x 2 thread counts, each at several lengths: more oneDNN
# convolution primitives than its default cache keeps (1,024), so every call would build its primitives again
# (measured: V3 in bfloat16 0.21 instead of 0.02 s a call). A process vocoding with one generator stays within it.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from vcframe_hifigan.model import torch_threads  # noqa: E402
from vcframe_wavernn.generate import reference_generate, steps_for  # noqa: E402
from vcframe_wavernn.model import WaveRNNVocoder  # noqa: E402
from vcframe_wavernn.spec import WaveRNNConfig  # noqa: E402

from vcframe.specs import RTVC_SYNTHESIZER_MEL  # noqa: E402
from vcframe.types import Mel  # noqa: E402


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


class OriginalResBlock1(torch.nn.Module):
    """jik876/hifi-gan ``ResBlock1`` as SPEC section 4.3 describes it (old-style ``weight_norm`` hooks)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        wn = torch.nn.utils.weight_norm
        self.convs1 = torch.nn.ModuleList(
            wn(torch.nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=(kernel_size * d - d) // 2))
            for d in dilations
        )
        self.convs2 = torch.nn.ModuleList(
            wn(torch.nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=(kernel_size - 1) // 2))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = torch.nn.functional.leaky_relu(x, 0.1)
            xt = c1(xt)
            xt = torch.nn.functional.leaky_relu(xt, 0.1)
            xt = c2(xt)
            x = xt + x
        return x

    def remove_weight_norm(self) -> None:
        for conv in [*self.convs1, *self.convs2]:
            torch.nn.utils.remove_weight_norm(conv)


class OriginalResBlock2(torch.nn.Module):
    """jik876/hifi-gan ``ResBlock2`` (SPEC section 4.3)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = torch.nn.ModuleList(
            torch.nn.utils.weight_norm(
                torch.nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=(kernel_size * d - d) // 2)
            )
            for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c in self.convs:
            xt = torch.nn.functional.leaky_relu(x, 0.1)
            xt = c(xt)
            x = xt + x
        return x

    def remove_weight_norm(self) -> None:
        for conv in self.convs:
            torch.nn.utils.remove_weight_norm(conv)


class OriginalGenerator(torch.nn.Module):
    """jik876/hifi-gan ``Generator``, transcribed from SPEC section 4.2 (the baseline, as ``inference_e2e.py`` runs
    it: built with weight norm, the checkpoint loaded, ``eval()``, ``remove_weight_norm()``, ``no_grad``)."""

    def __init__(self, h) -> None:
        super().__init__()
        wn = torch.nn.utils.weight_norm
        self.num_kernels = len(h.resblock_kernel_sizes)
        self.num_upsamples = len(h.upsample_rates)
        self.conv_pre = wn(torch.nn.Conv1d(80, h.upsample_initial_channel, 7, 1, padding=3))
        resblock = OriginalResBlock1 if h.resblock == "1" else OriginalResBlock2
        self.ups = torch.nn.ModuleList()
        for i, (u, k) in enumerate(zip(h.upsample_rates, h.upsample_kernel_sizes, strict=True)):
            channels = h.upsample_initial_channel // (2**i)
            self.ups.append(wn(torch.nn.ConvTranspose1d(channels, channels // 2, k, u, padding=(k - u) // 2)))
        self.resblocks = torch.nn.ModuleList()
        for i in range(len(self.ups)):
            ch = h.upsample_initial_channel // (2 ** (i + 1))
            for k, d in zip(h.resblock_kernel_sizes, h.resblock_dilation_sizes, strict=True):
                self.resblocks.append(resblock(ch, k, d))
        self.conv_post = wn(torch.nn.Conv1d(ch, 1, 7, 1, padding=3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = torch.nn.functional.leaky_relu(x, 0.1)
            x = self.ups[i](x)
            xs = None
            for j in range(self.num_kernels):
                if xs is None:
                    xs = self.resblocks[i * self.num_kernels + j](x)
                else:
                    xs += self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = torch.nn.functional.leaky_relu(x)
        x = self.conv_post(x)
        return torch.tanh(x)

    def remove_weight_norm(self) -> None:
        for layer in self.ups:
            torch.nn.utils.remove_weight_norm(layer)
        for block in self.resblocks:
            block.remove_weight_norm()
        torch.nn.utils.remove_weight_norm(self.conv_pre)
        torch.nn.utils.remove_weight_norm(self.conv_post)


def original_generator(config, state: dict[str, torch.Tensor]) -> OriginalGenerator:
    """The baseline loaded as ``inference_e2e.py`` does, from a ``weight_g`` / ``weight_v`` state dict."""
    network = OriginalGenerator(config)
    network.load_state_dict(state)
    network.eval()
    network.remove_weight_norm()
    return network


def hifigan_rows(seconds: float, threads: int, rounds: int) -> None:
    """Print the HiFi-GAN table (see the module docstring)."""
    import statistics

    from vcframe_hifigan.generator import Generator, to_original_layout
    from vcframe_hifigan.model import HiFiGANVocoder
    from vcframe_hifigan.spec import HiFiGANConfig

    rtvc_hop = {"preset": "v3", "upsample_rates": (8, 5, 5), "upsample_kernel_sizes": (16, 11, 11)}
    demo = {**rtvc_hop, "upsample_initial_channel": 128, "mel": RTVC_SYNTHESIZER_MEL}
    mels = {"hifigan": hifigan_mel(seconds), "rtvc": benchmark_mel(seconds)}
    # per row: the timed call for the original (None: no baseline) and for the plugin, the audio seconds per call
    rows: dict[str, tuple] = {}
    loads: list[float] = []
    # per generator: (label, mel, the original, the plugin at its default precision) for the new-length call
    fresh: list[tuple[str, Mel, OriginalGenerator, HiFiGANVocoder]] = []

    def add(name: str, mel: Mel, count: int, baseline, vocoder: HiFiGANVocoder | None, batch: int = 1) -> None:
        batched = Mel(mel.frames.repeat(batch, 1, 1), mel.spec)
        audio_s = batch * mel.frames.shape[-1] * mel.spec.hop_length / mel.spec.sample_rate

        def original() -> None:
            with torch_threads(count), torch.no_grad():
                baseline(batched.frames)

        ours = (lambda: vocoder.vocode(batched)) if vocoder is not None else None
        stream = (lambda: next(iter(vocoder.vocode_stream(mel)))) if vocoder is not None and batch == 1 else None
        rows[name] = (original if baseline is not None else None, ours, stream, audio_s)

    for label, options, mel_name in (
        ("V1", {"preset": "v1"}, "hifigan"),
        ("V3", {"preset": "v3"}, "hifigan"),
        ("demo size (V3 layout, 128 ch, 8x5x5, 16 kHz hop 200)", demo, "rtvc"),
    ):
        mel = mels[mel_name]
        torch.manual_seed(0)
        config = HiFiGANConfig(checkpoint=None, threads=1, **options)
        weights = Generator(config.generator_config(num_mels=80), weight_norm=True)
        state = to_original_layout(weights.state_dict())
        baseline = original_generator(config.generator_config(num_mels=80), state)
        for count in sorted({1, threads}):
            for precision in ("auto", "float32"):
                vocoder = HiFiGANVocoder(HiFiGANConfig(checkpoint=None, threads=count, precision=precision, **options))
                vocoder.network.load_state_dict(_folded(weights))  # the baseline's weights
                vocoder.repack()
                name = f"{label}, batch 1, {count} thread(s), precision {precision} ({vocoder.dtype})"
                add(name, mel, count, baseline, vocoder)
                if count == 1 and precision == "auto" and label != "V1":
                    add(f"{label}, batch 4, 1 thread, precision auto", mel, count, baseline, vocoder, batch=4)
                if count == 1 and precision == "auto":
                    fresh.append((label, mel, baseline, vocoder))

    def timed(run) -> float:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    # interleaved: every round times each row's original, plugin and first chunk once, after one warm-up each
    samples: dict[str, tuple[list[float], list[float], list[float]]] = {name: ([], [], []) for name in rows}
    for calls in rows.values():
        for call in calls[:3]:
            if call is not None:
                call()
    for _ in range(rounds):
        for name, (original, ours, stream, _audio_s) in rows.items():
            for times, call in zip(samples[name], (original, ours, stream), strict=True):
                if call is not None:
                    times.append(timed(call))
            loads.append(os.getloadavg()[0])
    print(
        f"\nHiFi-GAN: {seconds:.2f} s mels; torch {torch.__version__}; load average {min(loads):.2f}-{max(loads):.2f} "
        f"on {os.cpu_count()} CPUs; RTF = compute seconds per second of audio, median of {rounds} interleaved "
        "rounds (min in brackets); ratio = original / vcframe (median of per-round ratios)\n"
    )
    print("| generator | original RTF | vcframe RTF | speed-up vs original | first streamed chunk (ms) |")
    print("|---|---|---|---|---|")
    for name, (original_times, our_times, stream_times) in samples.items():
        audio_s = rows[name][3]
        cells = [
            f"{statistics.median(t) / audio_s:.3f} ({min(t) / audio_s:.3f})" if t else "-"
            for t in (original_times, our_times)
        ]
        ratio = (
            f"{statistics.median(o / v for o, v in zip(original_times, our_times, strict=True)):.2f}x"
            if original_times
            else "-"
        )
        first = f"{statistics.median(stream_times) * 1000:.0f}" if stream_times else "-"
        print(f"| {name} | {cells[0]} | {cells[1]} | {ratio} | {first} |")

    # oneDNN creates a convolution primitive for each new input length: the first call at a length pays for it
    print("\nFirst call at a length not seen before (1 thread; the plugin pads lengths to 8 per octave, so a process")
    print("meets few), and the second call at that length:\n")
    print("| generator | original: first, second call (ms) | vcframe: first, second call (ms) |")
    print("|---|---|---|")
    for label, mel, baseline, vocoder in fresh:
        frames = mel.frames.shape[-1] + mel.frames.shape[-1] // 2  # 1.5x: a length (and a bucket) not used above
        longer = Mel(mel.frames.repeat(1, 1, 2)[:, :, :frames].contiguous(), mel.spec)
        with torch_threads(1), torch.no_grad():
            original = [timed(lambda b=baseline, m=longer: b(m.frames)) * 1000 for _ in range(2)]
        ours = [timed(lambda v=vocoder, m=longer: v.vocode(m)) * 1000 for _ in range(2)]
        print(f"| {label}, {frames} frames | {original[0]:.0f}, {original[1]:.0f} | {ours[0]:.0f}, {ours[1]:.0f} |")


def _folded(network) -> dict[str, torch.Tensor]:
    from vcframe_hifigan.generator import to_module_state

    return to_module_state(network.state_dict(), weight_norm=False)


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
    parser.add_argument("--family", choices=("wavernn", "hifigan", "all"), default="all", help="which vocoders to time")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the HiFi-GAN rows")
    parser.add_argument("--wavernn-rounds", type=int, default=1, help="interleaved rounds of the WaveRNN rows")
    args = parser.parse_args()
    if args.family in ("hifigan", "all"):
        hifigan_rows(args.seconds, args.threads, args.rounds)
    if args.family == "hifigan":
        return
    wavernn_rows(args)


def cpu_description() -> str:
    """The CPU model and the instruction-set flags the WaveRNN kernel chooses from."""
    from vcframe.cpu import cpu_flags, cpu_model

    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
    return f"{cpu_model()}, {os.cpu_count()} CPUs, flags: {' '.join(f for f in wanted if f in cpu_flags())}"


def wavernn_rows(args: argparse.Namespace) -> None:
    """WaveRNN: RTVC's loop (the baseline) beside the plugin at the RTVC and small presets, each precision, 1 and
    ``--threads`` threads, the fold count chosen from the length (and RTVC's 8000/800 for float32), timed
    interleaved over ``--rounds`` rounds; wall and CPU seconds, first streamed chunk."""
    import statistics

    mel = benchmark_mel(args.seconds)
    frames = mel.frames.shape[-1]
    audio_s = frames * 200 / 16000
    rows: dict[str, tuple] = {}  # name -> (call, folds x steps, stream call or None)

    def add(name: str, preset: str, threads: int, **options) -> None:
        torch.manual_seed(0)
        vocoder = WaveRNNVocoder(WaveRNNConfig(checkpoint=None, preset=preset, threads=threads, **options))
        target, overlap = vocoder.folding(frames)
        folds, steps = steps_for(frames, 200, True, target, overlap)
        label = f"{name} [{vocoder.generator.isa}, {target}/{overlap}]"
        vocoder.vocode(Mel(mel.frames[:, :, :30], mel.spec), seed=0)  # build / load the kernel, warm up

        def stream(v=vocoder) -> None:
            next(iter(v.vocode_stream(mel, seed=0)))

        rows[label] = (lambda v=vocoder: v.vocode(mel, seed=0), f"{folds} x {steps}", stream, threads)

    if not args.skip_baseline:
        torch.manual_seed(0)
        network = WaveRNNVocoder(WaveRNNConfig(checkpoint=None)).network
        model_mel = mel.frames / 4
        folds, steps = steps_for(frames, 200, True, 8000, 800)

        def baseline() -> None:
            with torch_threads(args.baseline_threads):
                reference_generate(network, model_mel, batched=True, target=8000, overlap=800)

        rows[f"baseline: RTVC's loop, folded 8000/800, {args.baseline_threads} thread(s)"] = (
            baseline,
            f"{folds} x {steps}",
            None,
            args.baseline_threads,
        )
    for preset in ("rtvc", "small"):
        for count in sorted({1, args.threads}):
            rtvc_sampler = {"sampler": "sample"}  # RTVC's draw: the plugin's default is inverse_cdf (issue 26)
            name = f"{preset}, float32, RTVC's folding, {count} thread(s)"
            add(name, preset, count, target=8000, overlap=800, precision="float32", **rtvc_sampler)
            for precision in ("float32", "bfloat16", "int8"):
                add(f"{preset}, {precision}, {count} thread(s)", preset, count, precision=precision, **rtvc_sampler)
            for precision in ("float32", "bfloat16", "int8"):
                name = f"{preset}, {precision}, inverse_cdf sampler, {count} thread(s)"
                add(name, preset, count, precision=precision, sampler="inverse_cdf")

    def timed(call, threads: int) -> tuple[float, float]:
        with torch_threads(threads):
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            return time.perf_counter() - wall, time.process_time() - cpu

    samples: dict[str, tuple[list[float], list[float], list[float]]] = {name: ([], [], []) for name in rows}
    loads: list[float] = [os.getloadavg()[0]]
    for round_index in range(args.wavernn_rounds):
        for name, (call, _shape, stream, threads) in rows.items():
            wall, cpu = timed(call, threads)
            samples[name][0].append(wall)
            samples[name][1].append(cpu)
            if stream is not None:
                samples[name][2].append(timed(stream, threads)[0])
            loads.append(os.getloadavg()[0])
            print(f"  round {round_index + 1}: {name}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    baseline_name = next((name for name in rows if name.startswith("baseline")), None)
    print(
        f"\nWaveRNN: {frames} frames = {audio_s:.2f} s of audio; {cpu_description()}; torch {torch.__version__}; "
        f"load average {min(loads):.2f}-{max(loads):.2f}; median of {args.wavernn_rounds} interleaved round(s). "
        "RTF = seconds per second of audio (wall; CPU = the process's user+system time, what the work costs when "
        "another job holds a core); speed-up = baseline wall / row wall, median of per-round ratios\n"
    )
    print("| generator [instruction set, folding] | folds x steps | RTF wall | RTF CPU | vs RTVC | first chunk (s) |")
    print("|---|---|---|---|---|---|")
    for name, (walls, cpus, streams) in samples.items():
        speedup = "-"
        if baseline_name is not None:
            ratios = [b / w for b, w in zip(samples[baseline_name][0], walls, strict=True)]
            speedup = f"{statistics.median(ratios):.1f}x"
        first = f"{statistics.median(streams):.2f}" if streams else "-"
        print(
            f"| {name} | {rows[name][1]} | {statistics.median(walls) / audio_s:.2f} | "
            f"{statistics.median(cpus) / audio_s:.2f} | {speedup} | {first} |"
        )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
