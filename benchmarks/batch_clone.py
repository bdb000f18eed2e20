"""Batch cloning speed: ``vcframe batch`` (local processes, Dask local cluster) against a plain loop.

Run by hand from the repository root:

    .venv/bin/python benchmarks/batch_clone.py --rows 24 --workers 2

The pipeline is GE2E (pretrained weights from resemblyzer) + Tacotron (``small`` preset, *random* weights
drawn with seed 0 and saved as a checkpoint, so every process loads the same ones: no trained default
checkpoint ships yet, so the speech is noise, but the compute per row is the real one; every row runs to
``--frames`` mel frames) + Griffin-Lim (32 iterations). Each row clones one sentence with its own seed from
one of two 3-second reference clips. Every run starts cold, in its own process, from the same folder
(manifest + ``vcframe.toml``), and is timed from start to exit, start-up and model loading included:

* plain loop: ``python benchmarks/batch_clone.py --loop THREADS``: one process, one pipeline,
  ``Pipeline.clone`` + ``save_audio`` row after row, with torch and BLAS on THREADS threads (every core, and
  one); the speed-up is over the faster of the two;
* ``vcframe batch manifest.csv --out local --workers N`` (local processes);
* ``vcframe batch manifest.csv --out dask --executor dask --workers N`` (Dask local cluster).

The outputs of the batch runs are checked to be byte-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
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
VCFRAME = [sys.executable, "-m", "vcframe"]


def make_clip(path: Path, f0: float) -> None:
    t = np.arange(3 * 16000) / 16000
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    soundfile.write(path, (0.3 * envelope * voiced / np.abs(voiced).max()).astype(np.float32), 16000)


def random_tacotron(path: Path) -> Path:
    """A ``small`` Tacotron with seed-0 random weights, exported like a trained one."""
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
    strings = {key: value if isinstance(value, str) else json.dumps(value) for key, value in metadata.items()}
    save_safetensors(network.state_dict(), path, strings)
    return path


def prepare(folder: Path, rows: int, frames: int) -> None:
    """Clips, the random checkpoint, manifest.csv and the vcframe.toml every run reads."""
    make_clip(folder / "a.wav", 190.0)
    make_clip(folder / "b.wav", 110.0)
    checkpoint = random_tacotron(folder / "tacotron-random.safetensors")
    (folder / "manifest.csv").write_text(
        "text,reference,seed,out\n"
        + "".join(f'"{SENTENCES[i % len(SENTENCES)]}",{"ab"[i % 2]}.wav,{i},row{i}.wav\n' for i in range(rows))
    )
    (folder / "vcframe.toml").write_text(
        f"""encoder = "ge2e"
synthesizer = "tacotron"
vocoder = "griffinlim"
device = "cpu"
[components.synthesizer.tacotron]
checkpoint = "{checkpoint}"
preset = "small"
max_frames = {frames}
min_decoder_frames = {frames}
[components.vocoder.griffinlim]
n_iter = 32
"""
    )


def loop(threads: int, out: str) -> None:
    """The plain loop (run in a fresh process, in the benchmark folder)."""
    import csv

    import torch
    from threadpoolctl import threadpool_limits

    from vcframe.audio import save_audio
    from vcframe.pipeline import Pipeline

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    Path(out).mkdir()
    pipeline = Pipeline(threads=threads)
    with open("manifest.csv", newline="") as stream:
        for row in csv.DictReader(stream):
            waveform = pipeline.clone(row["text"], row["reference"], seed=int(row["seed"]))
            save_audio(waveform, Path(out) / row["out"])


def timed(command: list[str], folder: Path) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=300, help="Mel frames per row (Tacotron runs to this).")
    parser.add_argument(
        "--skip-all-cores-loop", action="store_true", help="Time the plain loop on one thread only (it is the faster)."
    )
    parser.add_argument("--loop", type=int, metavar="THREADS", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop is not None:
        loop(args.loop, args.out)
        return
    folder = Path(tempfile.mkdtemp(prefix="vcframe-batch-bench-"))
    prepare(folder, args.rows, args.frames)
    cores = os.cpu_count() or 1
    script = str(Path(__file__).resolve())
    print(f"{args.rows} rows of {args.frames} frames, {cores} cores, load average {os.getloadavg()[0]:.1f}")
    times: dict[str, float] = {}
    if not args.skip_all_cores_loop:
        command = [sys.executable, script, "--loop", str(cores), "--out", "loop"]
        times[f"plain loop, 1 process, {cores} threads"] = timed(command, folder)
    times["plain loop, 1 process, 1 thread"] = timed([sys.executable, script, "--loop", "1", "--out", "loop1"], folder)
    loops = list(times.values())
    command = [*VCFRAME, "batch", "manifest.csv", "--out", "local", "--workers", str(args.workers)]
    times[f"vcframe batch, {args.workers} local processes"] = timed(command, folder)
    command = [*VCFRAME, "batch", "manifest.csv", "--out", "dask", "--executor", "dask", "--workers", str(args.workers)]
    times[f"vcframe batch, Dask local cluster of {args.workers}"] = timed(command, folder)
    baseline = min(loops)
    print("| run | seconds | rows/min | speed-up over the faster loop |\n|---|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.1f} | {60 * args.rows / seconds:.1f} | {baseline / seconds:.2f}x |")
    local = {p.name: p.read_bytes() for p in (folder / "local").glob("*.wav")}
    dask = {p.name: p.read_bytes() for p in (folder / "dask").glob("*.wav")}
    assert len(local) == args.rows and local == dask, "the executors' outputs differ"
    durations = [soundfile.info(folder / "local" / name).duration for name in local]
    print(
        f"local and Dask outputs byte-identical ({sum(durations):.0f} s of audio); "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
