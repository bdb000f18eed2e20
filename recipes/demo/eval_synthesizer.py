#!/usr/bin/env python3
"""Teacher-forced losses of Tacotron checkpoints over valid frames only, on fixed clips of a preprocessed corpus.

    python recipes/demo/eval_synthesizer.py --data /work/corpus/demo_prep \\
        /work/runs/taco/checkpoint_before_gpu.pt /work/runs/taco/checkpoint.pt [registry:tacotron-demo] \\
        [--clips 64] [--batch-size 16] [--seed 1] [--threads N] [--json OUT.json]

The trainer's logged losses are means over every frame of a padded batch (as RTVC's), so they move with the
share of padding, that is with the batch size and the lengths in the batch. This measures every checkpoint on
the same clips and counts only the valid frames (``length_mask``), so the numbers compare across checkpoints:

* clips: ``random.seed(SEED)``, the corpus' clips sorted by frame count (stable), ``random.sample`` of
  ``--clips`` positions in that order, cut in sorted order into batches of ``--batch-size``;
* the network in train mode, as it trains: the checkpoint's pre-net dropout, zoneout and batch norm with batch
  statistics, ``torch.manual_seed(0)`` before the first batch of every checkpoint (so a checkpoint gives the
  same numbers every time), no gradients; the batches padded as the trainer pads them, with the checkpoint's
  config ``r``;
* decoder and post-net MSE and L1 against the target mels over valid frames and all mel bands, per batch, then
  the mean over the batches.

A CHECKPOINT is a trainer checkpoint (``RUN/checkpoint.pt``, loaded with ``weights_only=True``; its config,
step and training masking apply) or anything the Tacotron synthesizer loads (``registry:<id>``, ``default``,
a safetensors export, an RTVC ``synthesizer.pt``): those run with clean masking (exports do not record the
training masking; the demo weights were trained with it) and the default training dropout 0.5, and must fit
the corpus' speaker embedding and mel spec. Prints a markdown table; ``--json`` also writes the numbers.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from vcframe.cli import handle_errors
from vcframe.errors import CheckpointError, ConfigError, InputError

COLUMNS = ("decoder_mse", "decoder_l1", "postnet_mse", "postnet_l1")
HEADERS = ("checkpoint", "step", "decoder MSE", "decoder L1", "post-net MSE", "post-net L1")

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0], pretty_exceptions_enable=False)


@dataclass
class Model:
    """A network ready to measure: the config's r, its training dropout and masking."""

    network: Any
    config: Any
    step: int | None
    clean: bool


def pick_batches(frames: list[int], clips: int, batch_size: int, seed: int) -> list[list[int]]:
    """Manifest indices of the measured clips, in batches (see the module docstring)."""
    if clips < 1 or batch_size < 1:
        raise ConfigError(f"--clips and --batch-size must be positive (got {clips} and {batch_size})")
    if clips > len(frames):
        raise InputError(f"--clips {clips} is more than the corpus' {len(frames)} clips", hint="ask for fewer")
    order = sorted(range(len(frames)), key=lambda index: frames[index])
    picks = sorted(random.Random(seed).sample(range(len(order)), clips))
    return [
        [order[position] for position in picks[start : start + batch_size]] for start in range(0, clips, batch_size)
    ]


def resolve_checkpoint(reference: str) -> Path:
    """The file of a checkpoint reference (a path, ``registry:<id>``, ``default``; registry files verified)."""
    from vcframe_tacotron.spec import SPEC

    from vcframe.checkpoints import resolve

    return resolve("synthesizer", SPEC.name, reference).path


def load_model(reference: str, path: Path, data_info: dict[str, Any]) -> Model:
    """The Tacotron of ``reference`` (file ``path``: a trainer checkpoint, or weights the synthesizer loads),
    checked against the corpus' speaker embedding and mel spec (``data_info``: its info.json)."""
    from vcframe_tacotron.model import TacotronSynthesizer, build_network, check_state_against
    from vcframe_tacotron.spec import SPEC, TacotronConfig
    from vcframe_tacotron.train import embedding_spec_of

    from vcframe.checkpoints import load_state
    from vcframe.specs import RTVC_SYNTHESIZER_MEL, MelSpec

    embedding = embedding_spec_of(data_info)
    mel = MelSpec.model_validate(data_info["mel_spec"]) if "mel_spec" in data_info else RTVC_SYNTHESIZER_MEL
    state, metadata = load_state(path)  # torch.load(weights_only=True) for .pt files
    saved = metadata.get("checkpoint", {})
    if "train" in saved or "config" in saved:  # a trainer checkpoint (RUN/checkpoint.pt) or another trainer's
        try:
            config = TacotronConfig.model_validate(saved["config"])
            masking = saved["train"]["masking"]
            step = int(saved["step"])
        except (KeyError, TypeError, ValueError) as error:
            detail = f"{type(error).__name__}: {error}".split("\n")[0]
            raise CheckpointError(
                f"{reference!r} is not a Tacotron training checkpoint ({detail})",
                hint="give a 'vcframe train synthesizer fit' run's checkpoint.pt",
            ) from None
        if config.embedding != embedding or config.mel != mel:
            raise ConfigError(
                f"{reference!r} was trained on another speaker embedding or mel spec than the corpus' info.json",
                hint="give the preprocessed folder the run trained on",
            )
        network = build_network(config)
        check_state_against(network, state, reference)
        network.load_state_dict(state)
        return Model(network, config, step, masking == "clean")
    overrides = {"checkpoint": str(path), "embedding": embedding.model_dump(), "mel": mel.model_dump(mode="json")}
    synthesizer = TacotronSynthesizer(SPEC.make_config(overrides))
    found = synthesizer.checkpoint_metadata
    step = found.get("steps", found.get("checkpoint", {}).get("step"))
    return Model(synthesizer.network, synthesizer.config, None if step is None else int(step), clean=True)


def measure(model: Model, dataset: Any, batches: list[list[int]]) -> dict[str, float]:
    """Mean over the batches of each batch's decoder/post-net MSE and L1 over valid frames."""
    from vcframe_tacotron.tacotron import length_mask

    network, config = model.network, model.config
    network.train()
    torch.manual_seed(0)
    sums = dict.fromkeys(COLUMNS, 0.0)
    with torch.no_grad():
        for batch in batches:
            collated = dataset.collate(batch, network.r, config.mel.silence_value)
            target = collated["mels"]
            decoder, postnet, _, _ = network(
                collated["chars"],
                target,
                collated["embeds"],
                p=config.dropout,
                text_lengths=collated["text_lengths"] if model.clean else None,
                mel_lengths=collated["mel_lengths"] if model.clean else None,
            )
            valid = length_mask(collated["mel_lengths"], target.size(2))[:, None, :].float()
            count = valid.sum() * target.size(1)
            for name, output in (("decoder", decoder), ("postnet", postnet)):
                error = output - target
                sums[f"{name}_mse"] += float((error**2 * valid).sum() / count)
                sums[f"{name}_l1"] += float((error.abs() * valid).sum() / count)
    return {name: total / len(batches) for name, total in sums.items()}


def markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


@app.command()
@handle_errors
def main(
    checkpoints: Annotated[
        list[str],
        typer.Argument(
            metavar="CHECKPOINT", help="Trainer checkpoints (RUN/checkpoint.pt), registry:<id> or safetensors."
        ),
    ],
    data: Annotated[Path, typer.Option(help="Preprocessed folder ('vcframe train synthesizer preprocess').")],
    clips: Annotated[int, typer.Option(help="Clips measured.")] = 64,
    batch_size: Annotated[int, typer.Option(help="Clips per batch.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the clip pick.")] = 1,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch's default).")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the numbers here (JSON).")] = None,
) -> None:
    """Teacher-forced decoder and post-net MSE/L1 over valid frames, one table row per checkpoint."""
    from vcframe_tacotron.train import Dataset

    from vcframe._io import atomic_write, check_output_path

    if threads:
        torch.set_num_threads(threads)
    if json_out is not None:
        check_output_path(json_out)
    if not (data / "manifest.jsonl").is_file():
        raise InputError(
            f"no manifest.jsonl in {str(data)!r}", hint="give a 'vcframe train synthesizer preprocess' folder"
        )
    paths = [resolve_checkpoint(reference) for reference in checkpoints]  # every one found before the first runs
    info = json.loads((data / "info.json").read_text()) if (data / "info.json").is_file() else {}
    datasets: dict[str, Any] = {}
    batches: list[list[int]] | None = None
    rows = []
    for reference, path in zip(checkpoints, paths, strict=True):
        model = load_model(reference, path, info)
        if model.config.frontend not in datasets:
            datasets[model.config.frontend] = Dataset(data, model.config.frontend)
        dataset = datasets[model.config.frontend]
        if batches is None:
            batches = pick_batches(dataset.frames, clips, batch_size, seed)
            typer.echo(
                f"Teacher-forced, valid frames only: {clips} clips of {data} (seed {seed}) in batches of "
                f"{batch_size}, train mode (training dropout, torch seed 0)\n"
            )
            typer.echo(markdown_row(list(HEADERS)))
            typer.echo(markdown_row(["---"] * len(HEADERS)))
        losses = measure(model, dataset, batches)
        step = "?" if model.step is None else f"{model.step:,}"
        typer.echo(markdown_row([reference, step, *(f"{losses[name]:.4f}" for name in COLUMNS)]))
        rows.append({"checkpoint": reference, "step": model.step, **losses})
    if json_out is not None and batches is not None:
        dataset = next(iter(datasets.values()))
        report = {
            "data": str(data),
            "clips": clips,
            "batch_size": batch_size,
            "seed": seed,
            "clip_ids": [dataset.rows[index]["id"] for batch in batches for index in batch],
            "measure": "teacher-forced, train mode (training dropout, torch seed 0), valid frames only",
            "results": rows,
        }
        with atomic_write(json_out, "w") as stream:
            stream.write(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    app()
