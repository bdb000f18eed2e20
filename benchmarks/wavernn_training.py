"""WaveRNN training throughput: seconds per step and samples per second of the trainer's step (issue 23).

Run by hand:  .venv/bin/python benchmarks/wavernn_training.py [--data /work/corpus/demo] [--clips 200]
              [--configs baseline:fp32:32 fused:bf16:32 ...] [--steps 4] [--rounds 3] [--threads 1]
              [--profile fused:bf16:32]

A configuration is ``PATH:PRECISION:BATCH`` (1,000-sample segments, ``--seq-len``):

* ``baseline``: the trainer as it was before the fused path: RTVC's forward (nn.GRU), float32, glibc's default
  allocator (every large activation on fresh pages);
* ``reference``: RTVC's forward in today's trainer (freed memory kept, :func:`vcframe.cpu.keep_freed_memory`);
* ``fused`` (the C++ kernel) and ``fused-torch`` (PyTorch operations): the fused training path.

Each configuration runs in its own process (the allocator setting is per process) on the same clips, the same
model (small preset, seed 0) and the same batches (the trainer's sampler, seed 0): one warm-up step (the
kernel builds or loads there), then ``--steps`` timed steps of :func:`vcframe_wavernn.train.training_step`
including the batch's collate. ``--rounds`` rounds run every configuration once each, interleaved, so a busy
moment on the shared machine hits all of them; the table gives the median over all timed steps of the CPU
seconds (the process's own time: what the step costs) and of the wall seconds (what it takes on a loaded
machine), samples per CPU second, the ratio to the first configuration, and the load average seen.

``--profile CONFIG`` profiles one step of a configuration with torch.profiler and prints where the time goes
(forward and backward, by part: mel ResNet, upsampling, input layer, each GRU, output layers; the loss, the
optimizer, the data). The backward pass of each operation is attributed to the part whose forward created it
(the profiler's sequence numbers); profiling adds a fixed cost per operation, which inflates the parts made of
many small ones (the reference GRUs), so the table gives shares of the profiled step beside its total.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

SEQ_LEN = 1000
PARTS = ("data", "mel_resnet", "upsample", "input", "gru1", "gru2", "output", "loss", "optimizer")


def prepare_items(data: str, clips: int, cache: Path) -> str:
    """The first ``clips`` clips of ``data`` as training items, stored once for every worker (no pickle)."""
    from vcframe_wavernn.data import load_items

    from vcframe.datasets import find_clips, write_manifest
    from vcframe.specs import RTVC_SYNTHESIZER_MEL

    manifest = cache / "clips.txt"
    write_manifest(find_clips(data)[:clips], manifest)
    items, description = load_items(manifest, RTVC_SYNTHESIZER_MEL, 9)
    np.savez(
        cache / "items.npz",
        mels=np.concatenate([item.mel for item in items], axis=1),
        frames=np.array([item.mel.shape[1] for item in items]),
        labels=np.concatenate([item.labels for item in items]),
    )
    return description


def load_cached_items(cache: Path) -> list:
    from vcframe_wavernn.data import VocoderItem

    stored = np.load(cache / "items.npz")
    items, start = [], 0
    for index, frames in enumerate(stored["frames"]):
        mel = stored["mels"][:, start : start + frames]
        labels = stored["labels"][start * 200 : (start + frames) * 200]
        items.append(VocoderItem(f"clip{index}", np.ascontiguousarray(mel), labels))
        start += frames
    return items


def parse(config: str) -> tuple[str, str, int]:
    path, precision, batch = config.split(":")
    if path not in ("baseline", "reference", "fused", "fused-torch"):
        raise SystemExit(f"unknown path {path!r} in {config!r}")
    return path, precision, int(batch)


class Scopes:
    """Forward hooks that label the reference forward's modules like the fused forward labels its parts."""

    def __init__(self, network) -> None:
        from torch.profiler import record_function

        self.open: dict[int, object] = {}
        modules = {
            "mel_resnet": network.upsample.resnet,
            "input": network.I,
            "gru1": network.rnn1,
            "gru2": network.rnn2,
            "output": [network.fc1, network.fc2, network.fc3],
        }
        for name, found in modules.items():
            for module in found if isinstance(found, list) else [found]:
                module.register_forward_pre_hook(self._enter(f"wavernn.{name}", record_function))
                module.register_forward_hook(self._exit())
        # the mel path: the upsampler's stretch and smoothing layers
        for module in network.upsample.up_layers:
            module.register_forward_pre_hook(self._enter("wavernn.upsample", record_function))
            module.register_forward_hook(self._exit())

    def _enter(self, name, record_function):
        def hook(module, inputs):
            scope = record_function(name)
            scope.__enter__()
            self.open[id(module)] = scope

        return hook

    def _exit(self):
        def hook(module, inputs, output):
            self.open.pop(id(module)).__exit__(None, None, None)

        return hook


def profile_table(prof) -> dict[str, dict[str, float]]:
    """CPU milliseconds per part, forward and backward (a backward operation counts for its forward's part);
    ``other``: what no part holds (the optimizer's zero_grad, the aux features' repetition in the reference)."""
    events = list(prof.events())
    part_of_sequence: dict[int, str] = {}
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"forward": 0.0, "backward": 0.0})

    def scope(event) -> str | None:
        while event is not None:
            if event.name.startswith("wavernn."):
                return event.name.removeprefix("wavernn.")
            event = event.cpu_parent
        return None

    step = 0.0
    for event in events:
        if event.cpu_parent is None:
            step += event.cpu_time_total / 1e3
            if event.name.startswith("wavernn."):
                totals[event.name.removeprefix("wavernn.")]["forward"] += event.cpu_time_total / 1e3
        if event.sequence_nr >= 0 and not event.name.startswith("autograd::engine"):
            part = scope(event)
            if part is not None:
                part_of_sequence.setdefault(event.sequence_nr, part)
    for event in events:
        if event.name.startswith("autograd::engine::evaluate_function") and event.cpu_parent is None:
            part = part_of_sequence.get(event.sequence_nr)
            if part is not None:
                totals[part]["backward"] += event.cpu_time_total / 1e3
    totals["other"]["forward"] = step - sum(part["forward"] + part["backward"] for part in totals.values())
    return totals


def worker(args: argparse.Namespace) -> None:
    path, precision, batch = parse(args.worker)
    from vcframe.cpu import keep_freed_memory

    if path != "baseline":
        keep_freed_memory()
    import torch
    from vcframe_wavernn.data import collate, max_offset
    from vcframe_wavernn.model import build_network
    from vcframe_wavernn.spec import WaveRNNConfig
    from vcframe_wavernn.train import SegmentSampler, training_step

    torch.set_num_threads(args.threads)
    items = load_cached_items(Path(args.cache))
    config = WaveRNNConfig(preset="small", checkpoint=None)
    torch.manual_seed(0)
    network = build_network(config).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=2e-4)
    usable = [item for item in items if max_offset(item, SEQ_LEN, 200, config.pad) > 0]
    batches = iter(SegmentSampler(usable, np.random.default_rng(0), batch, SEQ_LEN, 200, config.pad))
    fused, engine = path.startswith("fused"), "torch" if path == "fused-torch" else "auto"
    if fused and engine == "auto":
        from vcframe_wavernn.kernel import load_kernel

        engine = "cpp" if load_kernel() is not None else "torch"

    def step() -> None:
        from torch.profiler import record_function

        with record_function("wavernn.data"):
            drawn = next(batches)
            x, y, mels = collate([usable[i] for i, _ in drawn], [o for _, o in drawn], SEQ_LEN, 200, config.pad, 9)
        training_step(network, optimizer, x, y, mels, fused=fused, engine=engine, precision=precision)

    step()  # warm-up: the kernel loads, the allocator settles
    if args.profile_step:
        from torch.profiler import profile

        if not fused:
            Scopes(network)
        step()
        with profile() as prof:
            started = time.process_time()
            step()
            seconds = time.process_time() - started
        print(json.dumps({"profile": profile_table(prof), "cpu_seconds": seconds, "engine": engine}))
        return
    cpu, wall = [], []
    for _ in range(args.steps):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started_wall)
    print(json.dumps({"cpu": cpu, "wall": wall, "engine": engine}))


def run_worker(args: argparse.Namespace, config: str, cache: Path, profile: bool = False) -> dict:
    command = [sys.executable, __file__, "--worker", config, "--cache", str(cache), "--steps", str(args.steps)]
    command += ["--threads", str(args.threads), *(["--profile-step"] if profile else [])]
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{config} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/work/corpus/demo")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument(
        "--configs", nargs="+", default=["baseline:fp32:32", "reference:fp32:32", "fused:fp32:32", "fused:bf16:32"]
    )
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", nargs="*", default=None, help="profile these configurations instead")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--profile-step", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder)
        print(f"data: {prepare_items(args.data, args.clips, cache)}", flush=True)
        if args.profile is not None:
            for config in args.profile:
                result = run_worker(args, config, cache, profile=True)
                table = result["profile"]
                total = sum(part["forward"] + part["backward"] for part in table.values())
                unprofiled = result["cpu_seconds"]
                print(
                    f"\n{config} ({result['engine']}): profiled step {total:.0f} ms, unprofiled {unprofiled:.2f} CPU s"
                )
                print("| part | forward ms | backward ms | share |\n|---|---|---|---|")
                for name in [*PARTS, *(n for n in table if n not in PARTS)]:
                    if name in table:
                        part = table[name]
                        share = (part["forward"] + part["backward"]) / total
                        print(f"| {name} | {part['forward']:.0f} | {part['backward']:.0f} | {share:.0%} |")
            return
        results: dict[str, dict[str, list[float]]] = {c: {"cpu": [], "wall": []} for c in args.configs}
        loads, engines = [], {}
        for round_index in range(args.rounds):
            for config in args.configs:
                loads.append(os.getloadavg()[0])
                result = run_worker(args, config, cache)
                results[config]["cpu"] += result["cpu"]
                results[config]["wall"] += result["wall"]
                engines[config] = result["engine"]
                print(
                    f"round {round_index + 1} {config}: CPU s/step {statistics.median(result['cpu']):.3f}", flush=True
                )
    first = args.configs[0]
    base = statistics.median(results[first]["cpu"])
    load = f"load average {min(loads):.1f}-{max(loads):.1f}"
    print(f"\n{args.threads} thread(s), {args.rounds} rounds x {args.steps} steps, {load}")
    print("| configuration | engine | CPU s/step | wall s/step | samples/CPU s | vs first |\n|---|---|---|---|---|---|")
    for config in args.configs:
        cpu, wall = statistics.median(results[config]["cpu"]), statistics.median(results[config]["wall"])
        batch = parse(config)[2]
        engine = engines[config] if parse(config)[0].startswith("fused") else "-"
        ratio = base / cpu * batch / parse(first)[2]
        print(f"| {config} | {engine} | {cpu:.3f} | {wall:.3f} | {batch * SEQ_LEN / cpu:,.0f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
