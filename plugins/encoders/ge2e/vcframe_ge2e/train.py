"""GE2E training: ``vcframe train encoder <command> ...`` or ``python -m vcframe_ge2e.train <command> ...``.

Commands:

* ``preprocess ROOT... --out MELS``: LibriSpeech, VoxCeleb-style or ``<speaker>/*.wav`` trees -> mel files.
* ``fit --data MELS --run-dir RUN``: GE2E training (RTVC's loss, optimiser and gradient handling). Saves
  ``RUN/checkpoint.pt`` atomically every ``--save-every`` steps and at the end; ``--resume`` continues exactly
  (step, model, Adam state, torch/numpy/python RNG states and the batch sampler's state); stops at
  ``--max-steps``. Every ``--eval-every`` steps: EER on held-out speakers and a 2-D projection PNG.
* ``export RUN/checkpoint.pt OUT.safetensors``: final weights with their config, specs and provenance.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import torch
import typer

from vcframe.checkpoints import load_state, load_torch, save_safetensors, save_torch
from vcframe_ge2e.data import LAYOUTS, MelCorpus, SpeakerBatchSampler, preprocess_corpus
from vcframe_ge2e.evaluation import evaluate_speakers, projection_plot
from vcframe_ge2e.loss import ge2e_eer, ge2e_loss
from vcframe_ge2e.spec import PRESETS, GE2EConfig

if TYPE_CHECKING:
    from vcframe.distributed import TrainingSession

app = typer.Typer(help="Train the GE2E speaker encoder.", no_args_is_help=True, add_completion=False)

CHECKPOINT_NAME = "checkpoint.pt"


@app.command()
def preprocess(
    roots: Annotated[list[Path], typer.Argument(help="Corpus folders.")],
    out: Annotated[Path, typer.Option(help="Output folder of per-utterance mel files.")],
    layout: Annotated[str, typer.Option(help=f"Corpus layout: {', '.join(LAYOUTS)}.")] = "auto",
    workers: Annotated[int, typer.Option(min=1, help="Parallel processes.")] = 1,
    vad: Annotated[str, typer.Option(help="Silence trimming: auto, webrtc, energy, off.")] = "auto",
) -> None:
    """Volume-normalise, trim and turn every utterance into a (frames, 40) mel file; skips files already done."""
    counts = preprocess_corpus([str(r) for r in roots], out, layout=layout, workers=workers, vad=vad)
    typer.echo(
        f"preprocessed {counts['done']}, already done {counts['existing']}, skipped {counts['skipped']} -> {out}"
    )


# -- state capture -------------------------------------------------------------------------------------


def rng_states(sampler: SpeakerBatchSampler) -> dict[str, Any]:
    """Every random stream the run uses, in types that ``torch.load(weights_only=True)`` accepts."""
    # the legacy (MT19937) state is a tuple; numpy's stub types the argument-less call as the dict form
    numpy_state = np.random.get_state(legacy=True)
    assert isinstance(numpy_state, tuple)
    return {
        "torch": torch.get_rng_state(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "python": random.getstate(),
        "sampler": sampler.state(),
    }


def restore_rng_states(states: dict[str, Any], sampler: SpeakerBatchSampler) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    sampler.set_state(states["sampler"])


def make_config(preset: str, hidden_size: int | None, num_layers: int | None) -> GE2EConfig:
    return GE2EConfig(preset=preset, hidden_size=hidden_size, num_layers=num_layers, checkpoint=None)


@app.command()
def fit(
    data: Annotated[Path, typer.Option(help="Preprocessed mel folder (from 'preprocess').")],
    run_dir: Annotated[Path, typer.Option(help="Where checkpoints, logs and plots go.")],
    preset: Annotated[str, typer.Option(help=f"Model size: {', '.join(PRESETS)}.")] = "small",
    hidden_size: Annotated[int | None, typer.Option(help="LSTM width (overrides the preset).")] = None,
    num_layers: Annotated[int | None, typer.Option(help="LSTM layers (overrides the preset).")] = None,
    speakers_per_batch: Annotated[int, typer.Option(help="N speakers per batch (RTVC: 64).")] = 64,
    utterances_per_speaker: Annotated[int, typer.Option(help="M utterances per speaker (RTVC: 10).")] = 10,
    partial_frames: Annotated[int, typer.Option(help="Frames per training crop (RTVC: 160).")] = 160,
    lr: Annotated[float, typer.Option(help="Adam learning rate (RTVC: 1e-4).")] = 1e-4,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps in total.")] = 10000,
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 500,
    eval_every: Annotated[int, typer.Option(help="Held-out EER and projection plot every N steps (0: never).")] = 100,
    val_speakers: Annotated[int, typer.Option(help="Speakers held out for evaluation.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the model init, the sampler and the speaker split.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from RUN_DIR/checkpoint.pt exactly.")] = False,
    init_from: Annotated[
        str | None,
        typer.Option(
            help="Fine-tune: start from these weights ('default' = pretrained resemblyzer; needs preset rtvc)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N.")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch's default).")] = 0,
) -> None:
    """GE2E training (RTVC's encoder/train.py without visdom, with held-out evaluation and exact resume).

    Runs as one process or under ``torchrun --nproc_per_node=N`` (DDP; the batch of N speakers x M utterances is
    the global batch, shared by the ranks, with the GE2E loss computed over all of it).
    """
    arguments = dict(locals())
    from vcframe.distributed import run_fit

    run_fit(_fit, device, arguments)


def _fit(
    session: TrainingSession,
    *,
    data: Path,
    run_dir: Path,
    preset: str,
    hidden_size: int | None,
    num_layers: int | None,
    speakers_per_batch: int,
    utterances_per_speaker: int,
    partial_frames: int,
    lr: float,
    max_steps: int,
    save_every: int,
    eval_every: int,
    val_speakers: int,
    seed: int,
    resume: bool,
    init_from: str | None,
    device: str,
    threads: int,
) -> None:
    from vcframe.distributed import ShardedBatchSampler, TrainingClock, prepare_run_folder
    from vcframe_ge2e.model import build_network, load_weights

    if threads:
        torch.set_num_threads(threads)
    if (speakers_per_batch * utterances_per_speaker) % session.world_size:
        raise typer.BadParameter(
            f"{speakers_per_batch} x {utterances_per_speaker} utterances per batch cannot be split evenly over "
            f"{session.world_size} processes; choose sizes whose product is a multiple of it"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    corpus = MelCorpus(data)
    train_corpus, val_corpus = corpus.split(val_speakers, seed=seed)
    settings = {
        "preset": preset,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "partial_frames": partial_frames,
        "speakers_per_batch": speakers_per_batch,
        "utterances_per_speaker": utterances_per_speaker,
        "lr": lr,
        "seed": seed,
        "val_speakers": val_speakers,
        "data": str(data),
    }
    config = make_config(preset, hidden_size, num_layers)
    torch.manual_seed(seed)
    network = build_network(config)
    sampler = SpeakerBatchSampler(train_corpus, speakers_per_batch, utterances_per_speaker, partial_frames, seed)
    history: list[dict[str, Any]] = []
    step = 0
    saved: dict[str, Any] | None = None
    resume = session.should_resume(resume, checkpoint_path)
    if resume:
        if not checkpoint_path.is_file():
            raise typer.BadParameter(f"--resume: no {checkpoint_path}")
        saved = load_torch(checkpoint_path, what="training checkpoint")
        if saved["settings"] != settings:
            changed = {k: (saved["settings"].get(k), v) for k, v in settings.items() if saved["settings"].get(k) != v}
            raise typer.BadParameter(f"--resume with different settings (saved, given): {changed}")
        network.load_state_dict(saved["model_state"])
    elif init_from is not None:
        load_weights(network, init_from)
    elif checkpoint_path.exists():
        raise typer.BadParameter(f"{checkpoint_path} exists: pass --resume to continue, or use another --run-dir")
    training_device = session.device
    network.to(training_device)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    if resume:
        assert saved is not None
        optimizer.load_state_dict(saved["optimizer_state"])
        restore_rng_states(session.rng_state_of(saved), sampler)
        step, history = int(saved["step"]), list(saved["history"])
        session.echo(f"resumed at step {step}")
    for note in session.on_main(prepare_run_folder, run_dir, step) or []:
        session.echo(note)
    val_mels = [[np.asarray(val_corpus.mel(p)) for p in val_corpus.files[s]] for s in val_corpus.speakers]
    model = session.wrap(network)

    def save() -> None:
        states = rng_states(sampler)
        payload = {
            "step": step,
            "model_state": network.state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "settings": settings,
            "config": config.model_dump(),
            "rng": states,
            "history": history,
            "train_seconds": clock.seconds(),
            **session.checkpoint_extras(states, network),
        }
        session.on_main(save_torch, payload, checkpoint_path)

    params = list(network.parameters())
    network.train()
    clock = TrainingClock(saved)
    clock.pause_on_sigtstp()
    batches = iter(ShardedBatchSampler(sampler, session))
    while step < max_steps:
        session.fault_point(step + 1)
        shard = next(batches)
        batch = torch.from_numpy(sampler.load(shard.items)).to(training_device)
        # every rank embeds its share; the loss needs every speaker's embeddings (gathered with gradients)
        embeds = session.gather_rows(model(batch)).view(speakers_per_batch, utterances_per_speaker, -1)
        loss, sim = ge2e_loss(embeds, network.similarity_weight, network.similarity_bias)
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        # RTVC's do_gradient_ops: the similarity scale and bias learn 100x slower; clip the global norm at 3
        weight_grad, bias_grad = network.similarity_weight.grad, network.similarity_bias.grad
        assert weight_grad is not None and bias_grad is not None
        weight_grad *= 0.01
        bias_grad *= 0.01
        torch.nn.utils.clip_grad_norm_(params, 3.0)
        optimizer.step()
        step += 1
        record: dict[str, Any] = {
            "step": step,
            "loss": round(float(loss.detach()), 5),
            "train_eer": round(ge2e_eer(sim), 5),
        }
        if session.is_main and eval_every and (step % eval_every == 0 or step == max_steps) and val_mels:
            network.eval()
            eer, enrol, test = evaluate_speakers(network, val_mels, training_device)
            network.train()
            record["val_eer"] = round(eer, 5)
            speakers = np.arange(len(val_mels))
            projection_plot(
                torch.cat([enrol, test]),
                np.r_[speakers, speakers],
                str(run_dir / f"projection_{step:06d}.png"),
                f"held-out speakers, step {step} (EER {eer:.1%})",
            )
        history.append(record)
        if eval_every and "val_eer" in record or step % 10 == 0:
            session.echo(json.dumps(record) + f"  ({clock.seconds():.0f} s)")
        if step % save_every == 0 or step == max_steps:
            save()
    session.echo(f"stopped at step {step} (--max-steps {max_steps}); checkpoint {checkpoint_path}")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A training checkpoint.pt.")],
    out: Annotated[Path, typer.Argument(help="Output .safetensors file.")],
    training_data: Annotated[str, typer.Option(help="What the weights were trained on (recorded in the metadata).")],
    license: Annotated[str, typer.Option(help="Licence of the weights.")] = "CC-BY-4.0",
) -> None:
    """Final weights as safetensors with JSON metadata: config, mel and embedding specs, steps, data, licence."""
    from vcframe.specs import RTVC_ENCODER_MEL
    from vcframe_ge2e.spec import resolve_io

    state, metadata = load_state(checkpoint)
    saved = metadata["checkpoint"]
    config = GE2EConfig.model_validate({**saved.get("config", {}), "checkpoint": None})
    _, embedding_spec = resolve_io(config)
    hidden, layers, embedding = config.sizes
    save_safetensors(
        state,
        out,
        {
            "format": "vcframe-ge2e-v1",
            "config": {
                "preset": config.preset,
                "hidden_size": hidden,
                "num_layers": layers,
                "embedding_size": embedding,
            },
            "mel_spec": RTVC_ENCODER_MEL.model_dump(),
            "embedding_spec": embedding_spec.model_dump(),
            "steps": int(saved.get("step", 0)),
            "training_data": training_data,
            "training_settings": saved.get("settings", {}),
            "license": license,
        },
    )
    typer.echo(f"exported step {saved.get('step', 0)} -> {out}")


if __name__ == "__main__":
    app()
