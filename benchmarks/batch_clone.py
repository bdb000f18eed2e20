"""Batch cloning speed: ``vcframe batch`` (local processes, Dask local cluster) against a plain loop.

Run by hand from the repository root:

    .venv/bin/python benchmarks/batch_clone.py --rows 24 --workers 2

The pipeline is GE2E (pretrained weights from resemblyzer) + Tacotron (``small`` preset, *random* weights
drawn with seed 0 and saved as a checkpoint, so every worker loads the same ones: no trained default
checkpoint ships yet, so the speech is noise, but the compute per row is the real one; ``max_frames`` bounds
each row) + Griffin-Lim (32 iterations). Each row clones one sentence with its own
seed from one of two reference clips. The three ways to run the same manifest:

* plain loop: one process, one pipeline, ``Pipeline.clone`` + ``save_audio`` row after row, once with torch
  and BLAS on every core and once on one thread (the speed-up is over the faster of the two);
* ``vcframe batch`` with the local executor: ``--workers`` processes, one torch thread each;
* ``vcframe batch`` on a Dask local cluster of ``--workers`` single-threaded worker processes.

Every time includes loading the models (once in the loop, once per worker in the batch runs) and, for the
batch runs, starting the worker processes. The outputs of the three runs are checked to be byte-identical.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
]


def make_clip(path: Path, f0: float) -> None:
    t = np.arange(3 * 16000) / 16000
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    soundfile.write(path, (0.3 * envelope * voiced / np.abs(voiced).max()).astype(np.float32), 16000)


def random_tacotron(path: Path) -> Path:
    """A ``small`` Tacotron with seed-0 random weights, exported like a trained one."""
    import json

    import torch
    from vcframe_tacotron.frontend import get_frontend
    from vcframe_tacotron.model import build_network, checkpoint_metadata
    from vcframe_tacotron.spec import SPEC

    from vcframe.checkpoints import save_safetensors

    config = SPEC.make_config({"preset": "small", "checkpoint": None})
    torch.manual_seed(0)
    network = build_network(config)
    metadata = checkpoint_metadata(
        config, get_frontend(config.frontend).symbols, steps=0, training_data="none (random)", license="MIT"
    )
    save_safetensors(
        network.state_dict(), path, {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    )
    return path


CHECKPOINT: Path | None = None


def settings(max_frames: int):  # noqa: ANN201 - vcframe.config.Settings
    from vcframe.config import load_settings

    chosen = {"encoder": "ge2e", "synthesizer": "tacotron", "vocoder": "griffinlim", "device": "cpu"}
    loaded = load_settings([], environ={}, explicit=chosen)
    loaded.components = {
        "synthesizer": {"tacotron": {"checkpoint": str(CHECKPOINT), "preset": "small", "max_frames": max_frames}},
        "vocoder": {"griffinlim": {"n_iter": 32}},
    }
    return loaded


def plain_loop(manifest_rows: list[tuple[str, Path, int]], out: Path, max_frames: int, threads: int) -> float:
    import torch
    from threadpoolctl import threadpool_limits

    from vcframe.audio import save_audio
    from vcframe.pipeline import Pipeline

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    started = time.perf_counter()
    pipeline = Pipeline(settings=settings(max_frames))
    for index, (text, clip, seed) in enumerate(manifest_rows, 1):
        save_audio(pipeline.clone(text, str(clip), seed=seed), out / f"row{index}.wav")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-frames", type=int, default=200)
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    from vcframe.batch import DaskExecutor, LocalExecutor, run_batch

    global CHECKPOINT
    folder = Path(tempfile.mkdtemp(prefix="vcframe-batch-bench-"))
    CHECKPOINT = random_tacotron(folder / "tacotron-random.safetensors")
    clips = [folder / "a.wav", folder / "b.wav"]
    make_clip(clips[0], 190.0)
    make_clip(clips[1], 110.0)
    rows = [(SENTENCES[i % len(SENTENCES)], clips[i % 2], i) for i in range(args.rows)]
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "text,reference,seed,out\n"
        + "".join(f'"{text}",{clip.name},{seed},row{i}.wav\n' for i, (text, clip, seed) in enumerate(rows, 1))
    )
    print(f"{args.rows} rows, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before starting")
    cores = os.cpu_count() or 1
    times = {
        f"plain loop, 1 process, {cores} threads": plain_loop(rows, _fresh(folder / "loop"), args.max_frames, cores),
        "plain loop, 1 process, 1 thread": plain_loop(rows, _fresh(folder / "loop1"), args.max_frames, 1),
    }
    started = time.perf_counter()
    local = run_batch(
        manifest, _fresh(folder / "local"), settings=settings(args.max_frames), executor=LocalExecutor(args.workers)
    )
    times[f"vcframe batch, {args.workers} local processes"] = time.perf_counter() - started
    assert local.counts["done"] == args.rows, local.counts
    outputs = {"local": folder / "local"}
    if not args.skip_dask:
        started = time.perf_counter()
        executor = DaskExecutor(workers=args.workers)
        try:
            report = run_batch(manifest, _fresh(folder / "dask"), settings=settings(args.max_frames), executor=executor)
        finally:
            executor.close()
        times[f"vcframe batch, Dask local cluster of {args.workers}"] = time.perf_counter() - started
        assert report.counts["done"] == args.rows, report.counts
        outputs["dask"] = folder / "dask"
    baseline = min(list(times.values())[:2])  # the faster plain loop
    print("| run | seconds | rows/min | speed-up over the faster loop |\n|---|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.1f} | {60 * args.rows / seconds:.1f} | {baseline / seconds:.2f}x |")
    # the executors agree byte for byte (one torch thread per worker each); the loop runs torch on every core,
    # whose reductions round differently: report how far its samples are from the batch outputs
    batch_outputs = [{p.name: p.read_bytes() for p in output.glob("*.wav")} for output in outputs.values()]
    assert all(output == batch_outputs[0] for output in batch_outputs), "the executors' outputs differ"
    largest = max(
        float(np.abs(soundfile.read(folder / "loop" / name)[0] - soundfile.read(folder / "local" / name)[0]).max())
        for name in batch_outputs[0]
    )
    print(
        f"batch outputs byte-identical across executors; plain loop within {largest:.2g} of them (thread count); "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    shutil.rmtree(folder)


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    main()
