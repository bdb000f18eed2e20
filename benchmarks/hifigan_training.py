#!/usr/bin/env python3
"""Seconds per HiFi-GAN training step on this machine, and what each piece costs.

Runs the trainer's own step (:class:`vcframe_hifigan.train.GANStep`) on random data of the trained shape for
each combination of generator width, discriminator width, precision, batch size and thread count, and prints a
markdown table: the generator's forward + backward (mel loss only), each discriminator's forward + backward on
(real, generated), a warm-up step (``--adversarial-start``: the generator alone) and a full GAN step.

    python benchmarks/hifigan_training.py                               # the defaults below
    python benchmarks/hifigan_training.py --disc-width 1 0.25 --precision fp32 bf16 --threads 1 2

With one thread the figures are CPU seconds (``time.process_time``), which other processes on the machine do not
inflate; with more threads they are wall seconds (the CPU time would add the threads up). Each figure is the best
of ``--repeat`` timed calls after one warm-up call.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import torch


def best_seconds(function: Callable[[], object], repeat: int, threads: int) -> float:
    clock = time.process_time if threads == 1 else time.perf_counter
    function()
    best = float("inf")
    for _ in range(repeat):
        started = clock()
        function()
        best = min(best, clock() - started)
    return best


def measure(
    channels: int,
    width: float,
    precision: str,
    batch: int,
    frames: int,
    threads: int,
    repeat: int,
    bf16_generator: bool,
) -> dict:
    from vcframe_hifigan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
    from vcframe_hifigan.generator import Generator
    from vcframe_hifigan.melspec import MelFrontEnd, loss_mel_spec
    from vcframe_hifigan.spec import PRESETS
    from vcframe_hifigan.train import ADAM_BETAS, LEARNING_RATE, GANStep

    from vcframe.specs import RTVC_SYNTHESIZER_MEL as spec

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sizes = PRESETS["v3"].model_copy(
        update={
            "upsample_rates": (8, 5, 5),
            "upsample_kernel_sizes": (16, 11, 11),
            "upsample_initial_channel": channels,
        }
    )
    generator = Generator(sizes)
    mpd, msd = MultiPeriodDiscriminator(width=width), MultiScaleDiscriminator(width=width)
    optim_g = torch.optim.AdamW(generator.parameters(), LEARNING_RATE, betas=ADAM_BETAS)
    optim_d = torch.optim.AdamW([*msd.parameters(), *mpd.parameters()], LEARNING_RATE, betas=ADAM_BETAS)
    step = GANStep(generator, mpd, msd, optim_g, optim_d, MelFrontEnd(loss_mel_spec(spec)), precision, bf16_generator)
    mels = torch.randn(batch, spec.n_mels, frames)
    audio = 0.3 * torch.randn(batch, 1, frames * spec.hop_length)

    def generator_pass() -> None:
        generator.zero_grad(set_to_none=True)
        with step._autocast(bf16_generator):
            generated = generator(mels)
        step.loss_front_end(generated.float()).mean().backward()

    def discriminator_pass(discriminator: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            discriminator.zero_grad(set_to_none=True)
            with step._autocast(True):
                real, generated, _, _ = discriminator(audio, audio.flip(-1))
            sum(t.float().mean() for t in real + generated).backward()

        return run

    return {
        "generator": best_seconds(generator_pass, repeat, threads),
        "mpd": best_seconds(discriminator_pass(mpd), repeat, threads),
        "msd": best_seconds(discriminator_pass(msd), repeat, threads),
        "warm-up step": best_seconds(lambda: step(mels, audio, adversarial=False), repeat, threads),
        "GAN step": best_seconds(lambda: step(mels, audio), repeat, threads),
        "parameters": (
            sum(p.numel() for p in generator.parameters()),
            sum(p.numel() for m in (mpd, msd) for p in m.parameters()),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--generator-channels", type=int, nargs="+", default=[256, 128], help="upsample_initial_channel (V3: 256)"
    )
    parser.add_argument("--disc-width", type=float, nargs="+", default=[1.0, 0.5, 0.25])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16])
    parser.add_argument("--segment-frames", type=int, default=32, help="mel frames per segment (hop 200)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--bf16-generator", action="store_true", help="with bf16: the generator under autocast too")
    args = parser.parse_args()
    print(
        f"HiFi-GAN training step, 16 kHz hop-200 mel (RTVC's), V3 layout with upsample_rates [8, 5, 5], "
        f"{args.segment_frames}-frame segments ({args.segment_frames * 200} samples); torch {torch.__version__}\n"
    )
    columns = ["G channels", "D width", "precision", "batch", "threads", "G fwd+bwd", "MPD fwd+bwd", "MSD fwd+bwd"]
    print("| " + " | ".join([*columns, "warm-up step", "GAN step"]) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for channels, width, precision, batch, threads in itertools.product(
        args.generator_channels, args.disc_width, args.precision, args.batch_size, args.threads
    ):
        bf16_generator = args.bf16_generator and precision == "bf16"
        row = measure(channels, width, precision, batch, args.segment_frames, threads, args.repeat, bf16_generator)
        generator_m, discriminator_m = (count / 1e6 for count in row["parameters"])
        print(
            f"| {channels} ({generator_m:.2f} M) | {width:g} ({discriminator_m:.1f} M) | "
            f"{precision}{' (G too)' if bf16_generator else ''} | {batch} | "
            f"{threads} | {row['generator']:.2f} | {row['mpd']:.2f} | {row['msd']:.2f} | {row['warm-up step']:.2f} | "
            f"{row['GAN step']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
