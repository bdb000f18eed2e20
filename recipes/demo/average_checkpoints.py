"""The mean of several checkpoints' model weights, as a run folder that ``export`` and ``ship_weights.py`` read.

    python recipes/demo/average_checkpoints.py /work/runs/export/taco_2500/checkpoint.pt \
        /work/runs/export/taco_3000/checkpoint.pt /work/runs/export/taco_3500/checkpoint.pt --out /work/runs/taco_avg
    vcframe train synthesizer export --run-dir /work/runs/taco_avg --out taco_avg.safetensors --inference-dropout 0

Fine-tuning the Tacotron on the many-voice corpus at lr 5e-4, the words pocketsphinx hears swing by about 10 points
from one checkpoint to the next, more than the trend (recipes/demo/README.md, taco_v4, session 22); the plain
mean of the last few checkpoints' weights (the same run, so the same basin) steadied them: steps 2,500/3,000/3,500
averaged heard 66.4 % against 55.1-64.8 % for the three alone. Every floating-point tensor of ``model_state`` is
averaged (integer ones, such as a step counter, come from the last); everything else (optimizer state, data
position, config) comes from the last checkpoint given, and ``averaged_from`` records the inputs' paths and steps.
The result is for export and measurement; resuming training from it would continue from the last checkpoint's
optimizer state with averaged weights. The model's weights are ``model_state`` in the Tacotron's and WaveRNN's
checkpoints and ``generator`` in HiFi-GAN's (whose discriminators, ``mpd`` and ``msd``, come from the last
checkpoint: ``vcframe train vocoder --plugin hifigan export --run-dir OUT`` reads the averaged generator).

``--weights`` makes it a weighted mean (normalised to sum to 1), and an input may be exported weights
(``.safetensors``, such as the shipped file) instead of a checkpoint: the last input must still be a checkpoint.
Together they interpolate between the weights a fine-tuning run started from and where it went (WiSE-FT,
Wortsman et al. 2022), which can keep most of what fine-tuning gained while giving back less of what it cost:

    python recipes/demo/average_checkpoints.py \
        plugins/synthesizers/tacotron/vcframe_tacotron/weights/tacotron-demo.safetensors \
        /work/runs/taco_avg2/checkpoint.pt --weights 0.5 0.5 --out /work/runs/taco_wise50

Written atomically (temp file + rename) as ``<out>/checkpoint.pt``, with the
last checkpoint's ``config.json`` beside it when its folder has one.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vcframe._io import atomic_path

#: Where a trainer's checkpoint keeps the weights to average: the Tacotron's and WaveRNN's, HiFi-GAN's generator.
STATE_KEYS = ("model_state", "generator")


def state_key(checkpoint: dict[str, Any]) -> str:
    """Which of :data:`STATE_KEYS` ``checkpoint`` holds (SystemExit when none)."""
    for key in STATE_KEYS:
        if isinstance(checkpoint.get(key), dict):
            return key
    raise SystemExit(
        f"every checkpoint must hold its weights as {' or '.join(map(repr, STATE_KEYS))} (a trainer's checkpoint.pt)"
    )


def average_model_states(
    checkpoints: Sequence[dict[str, Any]], weights: Sequence[float] | None = None, key: str = "model_state"
) -> dict[str, Any]:
    """The mean of ``checkpoint[key]`` (``model_state``, or HiFi-GAN's ``generator``) over ``checkpoints`` (dicts
    as the trainers save them), weighted by ``weights`` (positive, normalised to sum to 1; equal when None): float
    tensors averaged in float32 and cast back, other tensors taken from the last. SystemExit names the key where they
    do not fit."""
    if len(checkpoints) < 2:
        raise SystemExit(f"give at least two checkpoints to average, got {len(checkpoints)}")
    if weights is None:
        weights = [1.0] * len(checkpoints)
    if len(weights) != len(checkpoints):
        raise SystemExit(f"give one weight per checkpoint: {len(weights)} weights for {len(checkpoints)} checkpoints")
    if any(not weight > 0 for weight in weights):
        raise SystemExit(f"weights must be positive numbers, got {list(weights)}")
    fractions = torch.tensor([weight / sum(weights) for weight in weights], dtype=torch.float32)
    states = [checkpoint.get(key) for checkpoint in checkpoints]
    if any(not isinstance(state, dict) for state in states):
        raise SystemExit(f"every checkpoint must hold a {key!r} (a trainer's checkpoint.pt of one kind)")
    first = states[0]
    averaged: dict[str, Any] = {}
    for index, state in enumerate(states[1:], start=2):
        if set(state) != set(first):
            missing = sorted(set(first) ^ set(state))[:3]
            raise SystemExit(f"checkpoint {index} has other weights than checkpoint 1 (e.g. {missing}): not one model")
    for name in first:
        values = [state[name] for state in states]
        last = values[-1]  # the dtype to write: exported weights may be float16, a checkpoint's are float32
        if not torch.is_tensor(last):
            averaged[name] = last
            continue
        shapes = {tuple(tensor.shape) for tensor in values}
        if len(shapes) != 1:
            raise SystemExit(f"{name}: shapes differ between checkpoints ({sorted(shapes)}): not one model")
        if last.is_floating_point():
            stacked = torch.stack([tensor.float() for tensor in values])
            mean = (stacked * fractions.view(-1, *([1] * last.dim()))).sum(dim=0)
            averaged[name] = mean.to(last.dtype)
        else:
            averaged[name] = last
    return averaged


def _load(path: Path, key: str = "model_state") -> dict[str, Any]:
    """A trainer's checkpoint, or exported ``.safetensors`` weights as a checkpoint with only ``key`` (and the step
    its metadata records)."""
    if path.suffix == ".safetensors":
        from vcframe.checkpoints import load_state

        state, metadata = load_state(path)
        step = metadata.get("step", metadata.get("steps"))
        return {key: state, "step": int(step) if isinstance(step, int) else None}
    # the trainers' own checkpoints carry RNG state and config objects, so this trusted-input recipe loads them
    # in full; never point it at a downloaded file
    return torch.load(path, map_location="cpu", weights_only=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint.pt files of one run, oldest first")
    parser.add_argument("--out", type=Path, required=True, help="folder for the averaged checkpoint.pt")
    parser.add_argument(
        "--weights", type=float, nargs="+", help="one positive weight per input (normalised); equal by default"
    )
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        if not path.is_file():
            raise SystemExit(f"checkpoint {str(path)!r} not found")
    if args.checkpoints[-1].suffix == ".safetensors":
        raise SystemExit("the last input must be a trainer's checkpoint.pt (its config and step are kept)")
    last = _load(args.checkpoints[-1])
    key = state_key(last)
    loaded = [_load(path, key) for path in args.checkpoints[:-1]] + [last]
    weights = args.weights or [1.0] * len(loaded)
    result = dict(last)
    result[key] = average_model_states(loaded, weights, key)
    result["averaged_from"] = [
        {"path": str(path), "step": checkpoint.get("step"), "weight": weight / sum(weights)}
        for path, checkpoint, weight in zip(args.checkpoints, loaded, weights, strict=True)
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "checkpoint.pt") as temporary:
        torch.save(result, temporary)
    config = args.checkpoints[-1].parent / "config.json"
    if config.is_file() and config.resolve() != (args.out / "config.json").resolve():
        shutil.copyfile(config, args.out / "config.json")
    steps = ", ".join(str(entry["step"]) for entry in result["averaged_from"])
    shares = ", ".join(f"{entry['weight']:.3g}" for entry in result["averaged_from"])
    print(
        f"wrote {args.out / 'checkpoint.pt'}: the mean of {len(loaded)} checkpoints' weights "
        f"(steps {steps}; weights {shares})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
