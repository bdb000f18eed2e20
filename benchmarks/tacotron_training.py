#!/usr/bin/env python3
"""Tacotron training step: CPU seconds per step with ``fit --precision fp32`` and ``bf16``, and where they go.

Run by hand (the demo run's size and data, as ``recipes/demo/train.sh synthesizer`` trains it):

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/tacotron_training.py --data /work/corpus/demo_prep \\
        [--preset small --option r=4 --batch-size 16] [--warmup 3 --steps 20] [--precisions fp32 bf16] \\
        [--threads 1] [--profile fp32 bf16]

Each precision trains its own copy of the same network (same seed, so the same initial weights) with its own Adam
on the same batches (the trainer's length-bucketed order, epoch 0, ``--seed``), clean masking and the guided
attention loss (``--guided-attention``), through the trainer's own step (:func:`vcframe_tacotron.train.training_step`,
the batch's collate included). Every batch is run by each precision in turn, the order alternating batch by batch,
so a busy moment on a shared machine hits both; each precision keeps its own torch random stream, so its dropout
and zoneout masks are those of a run of its own. After ``--warmup`` steps, ``--steps`` steps are timed: CPU seconds
(the process's own time; with one thread what the step costs, whatever else runs) and wall seconds. The table gives
the median per step, the median of the per-batch ratios to the first precision (the same batch, so the ratio is
paired), each precision's mean loss over the timed steps, the load average seen and the CPU.

``--profile PRECISION ...`` instead profiles one step (the batch after the warm-up) of each with torch.profiler and
prints where the time goes by part: the encoder's embedding and pre-net, each CBHG's layers (conv bank, max-pool,
projections, highways) and its bidirectional GRU, the decoder's attention loop (attention GRU cell, location
sensitive attention, context) and its LSTM loop (two residual cells), the rest of the decoder (pre-net, projections),
the loss, the optimizer (zero_grad, clipping, Adam). The backward pass of each operation counts for the part whose
forward created it (the profiler's sequence numbers). The profiler's times are wall times and it adds a cost per
operation (the loops are made of many small ones), so the table gives shares of the profiled step.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

PARTS = (
    "encoder input",
    "encoder CBHG layers",
    "encoder CBHG GRU",
    "attention loop",
    "LSTM loop",
    "decoder other",
    "post-net CBHG layers",
    "post-net CBHG GRU",
    "loss",
    "optimizer",
    "data",
    "other",
)


def label_module(module: torch.nn.Module, part: str) -> None:
    """The module's forward calls inside a ``part`` profiler scope."""
    from torch.profiler import record_function

    opened: list[Any] = []

    def enter(_module: torch.nn.Module, _inputs: Any) -> None:
        scope = record_function(f"part.{part}")
        scope.__enter__()
        opened.append(scope)

    def leave(_module: torch.nn.Module, _inputs: Any, _output: Any) -> None:
        opened.pop().__exit__(None, None, None)

    module.register_forward_pre_hook(enter)
    module.register_forward_hook(leave)


def labelled(function: Callable[..., Any], part: str) -> Callable[..., Any]:
    from torch.profiler import record_function

    def call(*args: Any, **kwargs: Any) -> Any:
        with record_function(f"part.{part}"):
            return function(*args, **kwargs)

    return call


def label_functions() -> None:
    """Profiler scopes on the decoder's loops and the step's loss and clipping (once per process)."""
    import vcframe_tacotron.train as train
    from vcframe_tacotron.tacotron import Decoder

    Decoder._attend = labelled(Decoder._attend, "attention loop")  # type: ignore[method-assign]
    Decoder._lstm_sequence = labelled(Decoder._lstm_sequence, "LSTM loop")  # type: ignore[method-assign]
    train.tacotron_loss = labelled(train.tacotron_loss, "loss")
    train.guided_attention_loss = labelled(train.guided_attention_loss, "loss")
    torch.nn.utils.clip_grad_norm_ = labelled(torch.nn.utils.clip_grad_norm_, "optimizer")


def label_parts(network: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Profiler scopes on the network's parts and the optimizer's calls (for ``--profile``)."""
    for name, cbhg in (("encoder", network.encoder.cbhg), ("post-net", network.postnet)):
        layers = [*cbhg.conv1d_bank, cbhg.maxpool, cbhg.conv_project1, cbhg.conv_project2, *cbhg.highways]
        for layer in [*layers, *([cbhg.pre_highway] if cbhg.highway_mismatch else [])]:
            label_module(layer, f"{name} CBHG layers")
        label_module(cbhg.rnn, f"{name} CBHG GRU")
    for module in (network.encoder.embedding, network.encoder.pre_net):
        label_module(module, "encoder input")
    decoder = network.decoder
    for module in (network.encoder_proj, decoder.prenet, decoder.rnn_input, decoder.stop_proj, network.post_proj):
        label_module(module, "decoder other")
    optimizer.zero_grad = labelled(optimizer.zero_grad, "optimizer")  # type: ignore[method-assign]
    optimizer.step = labelled(optimizer.step, "optimizer")  # type: ignore[method-assign]


def profile_table(prof: Any) -> dict[str, list[float]]:
    """Milliseconds per part, [forward, backward]: each operation's own time counts for the innermost part
    around it; a backward function's whole time for the part of the forward operation that created it."""
    events = list(prof.events())

    def part_of(event: Any) -> str | None:
        while event is not None:
            if event.name.startswith("part."):
                return str(event.name.removeprefix("part."))
            event = event.cpu_parent
        return None

    def in_backward(event: Any) -> bool:
        while event is not None:
            if event.name.startswith("autograd::engine"):
                return True
            event = event.cpu_parent
        return False

    part_of_sequence: dict[int, str] = {}
    for event in events:
        if event.sequence_nr >= 0 and not event.name.startswith("autograd::engine"):
            part = part_of(event)
            if part is not None:
                part_of_sequence.setdefault(event.sequence_nr, part)
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for event in events:
        if event.name.startswith("autograd::engine::evaluate_function"):
            totals[part_of_sequence.get(event.sequence_nr, "other")][1] += event.cpu_time_total / 1e3
        elif not in_backward(event):
            totals[part_of(event) or "other"][0] += event.self_cpu_time_total / 1e3
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/work/corpus/demo_prep"), help="a preprocessed folder")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--option", "-o", action="append", default=None, help="model key=JSON (default r=4)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--guided-attention", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", nargs="+", default=None, choices=["fp32", "bf16"], help="profile instead")
    args = parser.parse_args()

    from vcframe_tacotron.model import build_network
    from vcframe_tacotron.train import (
        Dataset,
        bucketed_batches,
        build_config,
        embedding_spec_of,
        mel_spec_of,
        training_step,
    )

    from vcframe.config import parse_json_options
    from vcframe.cpu import cpu_flags, cpu_model, limit_threads

    limit_threads(args.threads)
    overrides = parse_json_options(args.option or ["r=4"], example="-o r=4")
    dataset = Dataset(args.data, overrides.get("frontend", "rtvc-english"))
    config = build_config(
        args.preset, overrides, embedding_spec_of(dataset.info), mel_spec_of(dataset.info), dataset.frontend.name
    )
    torch.manual_seed(args.seed)
    initial = build_network(config).train()
    r, silence = initial.r, config.mel.silence_value
    batches = bucketed_batches(dataset.frames, args.batch_size, args.seed, 0)
    precisions = args.profile or args.precisions
    torch.manual_seed(args.seed)
    runs = {}
    for precision in precisions:
        network = copy.deepcopy(initial)
        optimizer = torch.optim.Adam(network.parameters(), lr=args.lr)
        runs[precision] = {"network": network, "optimizer": optimizer, "rng": torch.get_rng_state()}

    def step(precision: str, index: int) -> float:
        from torch.profiler import record_function

        run = runs[precision]
        torch.set_rng_state(run["rng"])
        with record_function("part.data"):
            batch = dataset.collate(batches[index % len(batches)], r, silence)
        result = training_step(
            run["network"],
            run["network"],
            run["optimizer"],
            batch,
            dropout=config.dropout,
            clean=True,
            silence=silence,
            clip=1.0,
            guided_weight=args.guided_attention,
            precision=precision,
        )
        run["rng"] = torch.get_rng_state()
        return float(result.losses["loss"].detach())

    for index in range(args.warmup):
        for precision in precisions if index % 2 == 0 else precisions[::-1]:
            step(precision, index)
    flags = sorted({"avx2", "avx512f", "avx512_bf16", "amx_bf16"} & cpu_flags())
    machine = f"{cpu_model()} ({', '.join(flags)}), torch {torch.__version__}, {args.threads} thread(s)"
    shape = f"{args.preset} {overrides}, batch {args.batch_size}, {len(dataset.frames)} clips of {args.data}"
    if args.profile:
        from torch.profiler import profile

        print(f"{machine}\n{shape}, batch {args.warmup} of the epoch")
        label_functions()
        for precision in precisions:
            label_parts(runs[precision]["network"], runs[precision]["optimizer"])
        for precision in precisions:
            started = time.process_time()
            with profile() as prof:
                step(precision, args.warmup)
            cpu_seconds = time.process_time() - started
            table = profile_table(prof)
            total = sum(forward + backward for forward, backward in table.values())
            print(f"\n{precision}: profiled step {cpu_seconds:.2f} CPU s, load average {os.getloadavg()[0]:.1f}")
            print("| part | forward ms | backward ms | share |\n|---|---|---|---|")
            for name in [*PARTS, *(n for n in table if n not in PARTS)]:
                if name in table:
                    forward, backward = table[name]
                    print(f"| {name} | {forward:.0f} | {backward:.0f} | {(forward + backward) / total:.0%} |")
        return

    cpu: dict[str, list[float]] = {precision: [] for precision in precisions}
    wall: dict[str, list[float]] = {precision: [] for precision in precisions}
    losses: dict[str, list[float]] = {precision: [] for precision in precisions}
    loads = []
    for index in range(args.warmup, args.warmup + args.steps):
        loads.append(os.getloadavg()[0])
        for precision in precisions if index % 2 == 0 else precisions[::-1]:
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            losses[precision].append(step(precision, index))
            cpu[precision].append(time.process_time() - started_cpu)
            wall[precision].append(time.perf_counter() - started_wall)
        print(f"batch {index}: " + ", ".join(f"{p} {cpu[p][-1]:.2f} CPU s" for p in precisions), flush=True)
    first = precisions[0]
    load = f"load average {min(loads):.1f}-{max(loads):.1f}"
    print(f"\n{machine}\n{shape}; {args.steps} steps after {args.warmup} warm-up, {load}")
    print("| precision | CPU s/step | wall s/step | speed-up (CPU, paired) | mean loss |\n|---|---|---|---|---|")
    for precision in precisions:
        ratios = [base / own for base, own in zip(cpu[first], cpu[precision], strict=True)]
        print(
            f"| {precision} | {statistics.median(cpu[precision]):.2f} | {statistics.median(wall[precision]):.2f} | "
            f"{statistics.median(ratios):.2f}x | {statistics.mean(losses[precision]):.4f} |"
        )


if __name__ == "__main__":
    main()
