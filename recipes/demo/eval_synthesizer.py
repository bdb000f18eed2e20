#!/usr/bin/env python3
"""Teacher-forced losses of Tacotron checkpoints over valid frames only, on fixed clips of a preprocessed corpus.

    python recipes/demo/eval_synthesizer.py --data /work/corpus/demo_prep \\
        /work/runs/taco/checkpoint_before_gpu.pt /work/runs/taco/checkpoint.pt [registry:tacotron-demo] \\
        [--clips 64] [--batch-size 16] [--seed 1] [--threads N] [--json OUT.json]

The measure (fixed clips, train mode, valid frames only, so the numbers compare across checkpoints) is
``vcframe_tacotron.validation``'s, the one the trainer logs for ``fit --valid-data``.

A CHECKPOINT is a trainer checkpoint (``RUN/checkpoint.pt``, loaded with ``weights_only=True``; its config,
step and training masking apply) or anything the Tacotron synthesizer loads (``registry:<id>``, ``default``,
a safetensors export, an RTVC ``synthesizer.pt``): those run with clean masking (exports do not record the
training masking; the demo weights were trained with it) and the default training dropout 0.5, and must fit
the corpus' speaker embedding and mel spec. Prints a markdown table; ``--json`` also writes the numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from vcframe_tacotron.validation import LOSS_NAMES

from vcframe.cli import handle_errors
from vcframe.errors import CheckpointError, ConfigError, InputError

HEADERS = ("checkpoint", "step", "decoder MSE", "decoder L1", "post-net MSE", "post-net L1")

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0], pretty_exceptions_enable=False)


@dataclass
class Model:
    """A network ready to measure: the config's r, its training dropout and masking."""

    network: Any
    config: Any
    step: int | None
    clean: bool


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
    from vcframe_tacotron.train import embedding_spec_of, mel_spec_of

    from vcframe.checkpoints import load_state

    embedding = embedding_spec_of(data_info)
    mel = mel_spec_of(data_info)
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
    from vcframe_tacotron.validation import valid_frame_losses

    config = model.config
    return valid_frame_losses(
        model.network,
        dataset,
        batches,
        dropout=config.dropout,
        silence_value=config.mel.silence_value,
        clean=model.clean,
    )


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
    from vcframe_tacotron.validation import pick_batches

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
        typer.echo(markdown_row([reference, step, *(f"{losses[name]:.4f}" for name in LOSS_NAMES)]))
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
