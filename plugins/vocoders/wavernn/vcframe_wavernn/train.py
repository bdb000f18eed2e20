"""Training of the WaveRNN vocoder: ``vcframe train vocoder fit ...`` or ``python -m vcframe_wavernn.train fit ...``.

RTVC's recipe: random 1000-sample segments (9-frame mel windows), cross-entropy on the mu-law classes, Adam,
no clipping or schedule. Checkpoints (``run_dir/checkpoint.pt``) are written atomically and hold the model,
the optimizer, the step and every random state (torch, numpy, python, and the data sampler), so ``--resume``
continues exactly where the run stopped. ``export`` writes the weights as safetensors with their metadata.

The step runs the fused training path by default (``--fused``: :meth:`WaveRNN.forward` with ``fused=True``,
the GRUs and the loss in :mod:`vcframe_wavernn.fused`), under bfloat16 autocast where the CPU computes it
natively (``--precision auto``); ``--reference --precision fp32`` is RTVC's step as it was. ``--mel-smoothing``
(not RTVC's) smooths some segments' input mels across frequency, the HiFi-GAN trainer's augmentation
(:class:`vcframe.datasets.MelSmoothing`): robustness to a synthesizer's smooth mels.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
import typer
from torch.profiler import record_function

from vcframe.checkpoints import init_lineage, init_source, load_torch, save_safetensors, save_torch
from vcframe.datasets import MelCache, MelSmoothing, manifest_command, record_smoothing
from vcframe.errors import CheckpointError, ConfigError
from vcframe_wavernn.data import VocoderItem, collate, load_items, max_offset
from vcframe_wavernn.spec import SPEC, WaveRNNConfig

if TYPE_CHECKING:
    from vcframe.distributed import TrainingSession
    from vcframe_wavernn.network import WaveRNN

#: Adam learning rate of a new run when --lr is not given (RTVC's).
DEFAULT_LR = 1e-4

#: What must agree between an --init checkpoint and the run: the sizes, the mu-law bits and the mel padding.
LAYOUT_FIELDS = ("rnn_dims", "fc_dims", "compute_dims", "res_out_dims", "res_blocks", "bits", "pad")

app = typer.Typer(add_completion=False, help="Train the WaveRNN vocoder (RTVC recipe) and export its weights.")
app.command("manifest")(manifest_command)  # the vocoder trainers' shared data manifest (vcframe.datasets)


def _rng_states(sampler: np.random.Generator) -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [
            kind,
            torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            int(position),
            int(has_gauss),
            float(cached),
        ],
        "python": _to_lists(random.getstate()),
        "sampler": json.dumps(sampler.bit_generator.state),
    }


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, tuple | list) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


def _restore_rng(states: dict[str, Any], sampler: np.random.Generator) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(_to_tuples(states["python"]))
    sampler.bit_generator.state = json.loads(states["sampler"])


class SegmentSampler:
    """RTVC's random segments as an endless batch sampler: each batch is ``batch_size`` (item index, mel offset)
    pairs drawn from ``rng`` (items with replacement, then one offset per item), the draws RTVC's loader makes."""

    def __init__(
        self, items: list[VocoderItem], rng: np.random.Generator, batch_size: int, seq_len: int, hop: int, pad: int
    ) -> None:
        self.items, self.rng, self.batch_size = items, rng, batch_size
        self.seq_len, self.hop, self.pad = seq_len, hop, pad

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        while True:
            indices = self.rng.integers(0, len(self.items), self.batch_size)
            offsets = [
                int(self.rng.integers(0, max_offset(self.items[i], self.seq_len, self.hop, self.pad))) for i in indices
            ]
            yield [(int(i), offset) for i, offset in zip(indices, offsets, strict=True)]


def _write_sample(network: WaveRNN, item: VocoderItem, path: Path, seconds: float, seed: int) -> None:
    from vcframe.audio import save_audio
    from vcframe.specs import RTVC_SYNTHESIZER_MEL
    from vcframe.types import Waveform
    from vcframe_wavernn.generate import Generator

    frames = max(1, min(item.mel.shape[1], int(seconds * RTVC_SYNTHESIZER_MEL.sample_rate) // network.hop_length))
    generator = Generator(network, engine="auto", block_steps=2000)
    chunks = []
    for pieces in generator.run(
        [torch.from_numpy(item.mel[:, :frames])],
        batched=True,
        target=2000,
        overlap=200,
        sampler="sample",
        generators=[torch.Generator().manual_seed(seed)],
        preemphasis=RTVC_SYNTHESIZER_MEL.preemphasis,
        quirks=False,
        rtvc_rng=False,
    ):
        chunks.append(pieces[0])
    wave = np.clip(np.concatenate(chunks), -1, 1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_audio(Waveform.from_numpy(wave, RTVC_SYNTHESIZER_MEL.sample_rate), path)


def training_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    samples: torch.Tensor,
    labels: torch.Tensor,
    mels: torch.Tensor,
    *,
    fused: bool,
    engine: str,
    precision: str,
    weight: float = 1.0,
) -> torch.Tensor:
    """One optimiser step on a collated batch; returns the batch's loss (detached).

    Args:
        model: the :class:`~vcframe_wavernn.network.WaveRNN` (or its DDP wrapper).
        samples, labels, mels: :func:`~vcframe_wavernn.data.collate`'s x (B, S), y (B, S), mels (B, n_mels, F).
        fused: the fused training path (``WaveRNN.forward(fused=True)`` and
            :func:`~vcframe_wavernn.fused.cross_entropy`) or RTVC's forward and ``F.cross_entropy``.
        engine: the fused path's 'auto', 'cpp' or 'torch'.
        precision: 'fp32', or 'bf16' for the forward pass under bfloat16 autocast.
        weight: factor on the loss before the backward pass (DDP's unequal shares; default 1).
    """
    from vcframe_wavernn.fused import cross_entropy

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits = model(samples, mels, fused=True, engine=engine) if fused else model(samples, mels)
    with record_function("wavernn.loss"):
        if fused:
            loss = cross_entropy(logits, labels, engine=engine)  # type: ignore[arg-type]
        else:  # RTVC's: classes on dim 1 of a 4-D input
            loss = F.cross_entropy(logits.float().transpose(1, 2).unsqueeze(-1), labels.unsqueeze(-1))
    optimizer.zero_grad()
    torch.autograd.backward(loss * weight if weight != 1.0 else loss)
    with record_function("wavernn.optimizer"):
        optimizer.step()
    return loss.detach()


def describe_layout(layout: dict[str, Any]) -> str:
    """``rnn_dims 256, fc_dims 256, ...`` of a WaveRNN's sizes, bits and pad (the fields of :data:`LAYOUT_FIELDS`
    present in ``layout``)."""
    return ", ".join(f"{name} {layout[name]}" for name in LAYOUT_FIELDS if name in layout)


def initialise(network: torch.nn.Module, config: WaveRNNConfig, reference: str) -> dict[str, Any]:
    """Load the weights of ``reference`` (see :func:`~vcframe_wavernn.model.read_checkpoint`) into the new run's
    ``network`` (built from ``config``); returns where they came from, recorded in the run's checkpoints and its
    export: ``{"source": "REFERENCE (NAME, N steps)", "steps": N}``, N the steps the file records (0 when it records
    none, e.g. RTVC's ``vocoder.pt``), so that the steps the network has seen are its run's plus ``steps``.

    Raises CheckpointError, in one line naming both layouts, when the file records other sizes, bits or pad than
    the run's, or a mel spec other than the trained one; an RTVC ``vocoder.pt`` (no recorded layout) is checked
    tensor by tensor (:func:`~vcframe_wavernn.model.load_weights`).
    """
    from vcframe.specs import RTVC_SYNTHESIZER_MEL, MelSpec
    from vcframe_wavernn.model import load_weights, read_checkpoint

    state, metadata, path = read_checkpoint(reference)
    recorded = metadata.get("config")
    wanted = {**config.sizes(), "bits": config.bits, "pad": config.pad}
    if isinstance(recorded, dict) and any(name in recorded and recorded[name] != wanted[name] for name in wanted):
        raise CheckpointError(
            f"--init {reference!r} is a WaveRNN of {describe_layout(recorded)} (preset "
            f"{recorded.get('preset', '?')}), but this run builds {describe_layout(wanted)} (preset {config.preset})",
            hint="give the --preset (or --config-json sizes) the checkpoint was trained with",
        )
    recorded_mel = metadata.get("mel_spec")
    try:  # through the model, so fields added to MelSpec since the file was written take their defaults
        same_mel = not isinstance(recorded_mel, dict) or MelSpec.model_validate(recorded_mel) == RTVC_SYNTHESIZER_MEL
    except ValueError:  # pydantic's ValidationError
        same_mel = False
    if not same_mel:
        raise CheckpointError(
            f"--init {reference!r} was trained at another mel spec than the trainer's (RTVC's synthesizer mel)",
            hint="give a WaveRNN checkpoint of RTVC's 16 kHz, hop 200 mel",
        )
    load_weights(network, state, str(path))  # type: ignore[arg-type]
    steps = int(metadata.get("steps", 0) or 0)
    return {"source": init_source(reference, path.name, steps), "steps": steps}


def init_record(saved_init: Any) -> dict[str, Any] | None:
    """A checkpoint's ``init`` as ``{"source", "steps"}``: runs begun before the record was a dict stored the
    source string alone, whose ``N steps`` is read back from it."""
    if not saved_init:
        return None
    if isinstance(saved_init, dict):
        return saved_init
    counted = re.search(r", (\d+) steps\)$", str(saved_init))
    return {"source": str(saved_init), "steps": int(counted.group(1)) if counted else 0}


@app.command()
def fit(
    data: Annotated[
        Path,
        typer.Option(
            help="Folder of audio (with optional .npy (80, T) GTA mels beside it) or a manifest of "
            "'audio|mel|speaker' lines (see the manifest command)."
        ),
    ],
    run_dir: Annotated[Path, typer.Option(help="Where checkpoint.pt, log.csv and samples/ go.")],
    preset: Annotated[str, typer.Option(help="Model size: rtvc, small or tiny.")] = "small",
    config_json: Annotated[str, typer.Option(help="Extra WaveRNNConfig fields as JSON (sizes).")] = "{}",
    batch_size: Annotated[int, typer.Option(min=1, help="Segments per step (RTVC: 100).")] = 32,
    seq_len: Annotated[
        int, typer.Option(min=200, help="Samples per segment, a multiple of the hop (RTVC: 1000).")
    ] = 1000,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Adam learning rate (default 1e-4, RTVC's). With --resume: replaces the checkpoint's from its "
            "step on; without it the checkpoint's goes on."
        ),
    ] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Stop after this many steps in total.")] = 10000,
    save_every: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps (and at the end).")] = 500,
    sample_every: Annotated[int, typer.Option(min=0, help="Write a sample wav every K steps (0: never).")] = 1000,
    sample_seconds: Annotated[float, typer.Option(help="Length of the sample wavs.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the initial weights and the data sampler.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from run_dir/checkpoint.pt exactly.")] = False,
    init: Annotated[
        str | None,
        typer.Option(
            help="Start a new run from these weights: registry:<id> (e.g. registry:wavernn-demo), default, or a "
            "vcframe-wavernn .safetensors / RTVC vocoder.pt path; its layout must be the run's (--preset, "
            "--config-json). Fresh optimizer, step 0. Not used with --resume (the checkpoint's weights go on)."
        ),
    ] = None,
    mel_cache: Annotated[
        Path | None,
        typer.Option(
            help="Keep the ground-truth mels here between runs (default: RUN_DIR/mel_cache); the HiFi-GAN trainer "
            "reads the same entries at the same mel spec."
        ),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="torch threads.")] = 2,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (bf16 where the CPU has AMX / AVX-512 BF16, else fp32), fp32 or bf16: the forward pass under "
            "bfloat16 autocast (weights, optimizer and loss stay float32)."
        ),
    ] = "auto",
    fused: Annotated[
        bool,
        typer.Option(
            "--fused/--reference",
            help="The fused training path (same function, engineered for the CPU) or RTVC's forward with nn.GRU.",
        ),
    ] = True,
    engine: Annotated[
        str, typer.Option(help="The fused path's GRUs and loss: auto (C++ kernel if it builds), cpp or torch.")
    ] = "auto",
    mel_smoothing: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Smooth some input mels across frequency (Gaussian, sigma drawn from [0, this] mel bands), the "
            "target samples unchanged: robustness to a synthesizer's smooth mels. Not RTVC's (0). A change on "
            "--resume is recorded in the checkpoint.",
        ),
    ] = 0.0,
    mel_smoothing_probability: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The share of segments --mel-smoothing smooths.")
    ] = 0.5,
) -> None:
    """Train on ground-truth or GTA mels with RTVC's random segments and cross-entropy on mu-law classes.

    Runs as one process or under ``torchrun --nproc_per_node=N`` (DDP; ``--batch-size`` is the global batch,
    shared by the ranks).
    """
    arguments = dict(locals())
    from vcframe.distributed import run_fit

    run_fit(_fit, "cpu", arguments)


def _fit(
    session: TrainingSession,
    *,
    data: Path,
    run_dir: Path,
    preset: str,
    config_json: str,
    batch_size: int,
    seq_len: int,
    lr: float | None,
    max_steps: int,
    save_every: int,
    sample_every: int,
    sample_seconds: float,
    seed: int,
    resume: bool,
    init: str | None,
    mel_cache: Path | None,
    threads: int,
    precision: str,
    fused: bool,
    engine: str,
    mel_smoothing: float,
    mel_smoothing_probability: float,
) -> None:
    from vcframe.cpu import keep_freed_memory, limit_threads, resolve_precision
    from vcframe.distributed import ShardedBatchSampler, TrainingClock, prepare_run_folder
    from vcframe.specs import RTVC_SYNTHESIZER_MEL
    from vcframe_wavernn.fused import training_kernel
    from vcframe_wavernn.model import build_network

    limit_threads(threads)
    keep_freed_memory()
    precision = resolve_precision(precision, torch.device("cpu"))
    if engine not in ("auto", "cpp", "torch"):
        raise ConfigError(f"--engine must be auto, cpp or torch, got {engine!r}")
    if fused:
        try:
            kernel = training_kernel(engine)  # type: ignore[arg-type]
        except RuntimeError as error:
            raise ConfigError(str(error), hint="use --engine torch (or auto)") from None
        engine = "cpp" if kernel is not None else "torch"
    spec = RTVC_SYNTHESIZER_MEL
    config = WaveRNNConfig.model_validate({**json.loads(config_json), "preset": preset, "checkpoint": None})
    hop = spec.hop_length
    if seq_len % hop:
        raise typer.BadParameter(f"seq_len ({seq_len}) must be a multiple of the hop length ({hop})")
    if batch_size < session.world_size:
        raise typer.BadParameter(f"--batch-size {batch_size} is smaller than the {session.world_size} processes")
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / "checkpoint.pt"
    torch.manual_seed(seed)  # the network first: a bad --init is refused before the data loads
    network = build_network(config)
    saved: dict[str, Any] | None = None
    initialised_from: dict[str, Any] | None = None
    if session.should_resume(resume, checkpoint_path):
        if not checkpoint_path.is_file():
            raise CheckpointError(f"nothing to resume: {str(checkpoint_path)!r} does not exist", hint="drop --resume")
        saved = load_torch(checkpoint_path, what="training checkpoint")
        initialised_from = init_record(saved.get("init"))
    elif init is not None:
        initialised_from = initialise(network, config, init)
        session.echo(f"initialised from {initialised_from['source']}")
    cache = MelCache(mel_cache or run_dir / "mel_cache")
    items, description = load_items(data, spec, config.bits, mel_cache=cache)
    session.echo(f"training data: {description} ({cache.describe()})")
    usable = [item for item in items if max_offset(item, seq_len, hop, config.pad) > 0]
    if not usable:
        raise typer.BadParameter(f"every utterance is shorter than a {seq_len}-sample segment plus context")
    optimizer = torch.optim.Adam(network.parameters(), lr=DEFAULT_LR if lr is None else lr)
    sampler = np.random.default_rng(seed)
    step = 0
    lr_changes: list[dict[str, Any]] = []
    smoothing_changes, _ = record_smoothing([], mel_smoothing, mel_smoothing_probability, 0)
    if saved is not None:
        network.load_state_dict(saved["model_state"])
        optimizer.load_state_dict(saved["optimizer_state"])  # brings the saved learning rate
        step = int(saved["step"])
        lr_changes = list(saved.get("lr_changes", []))
        _restore_rng(session.rng_state_of(saved), sampler)
        session.echo(f"resumed at step {step}")
        saved_lr = float(optimizer.param_groups[0]["lr"])
        if lr is not None and lr != saved_lr:  # an explicit --lr replaces the saved one from this step on
            for group in optimizer.param_groups:
                group["lr"] = lr
            lr_changes.append({"step": step, "old": saved_lr, "new": lr})
            session.echo(f"learning rate changed at step {step}: {saved_lr:g} -> {lr:g}")
        smoothing_changes, note = record_smoothing(
            saved.get("smoothing_changes", []), mel_smoothing, mel_smoothing_probability, step
        )
        if note:
            session.echo(note)
    # drawn per segment from (seed, item index, offset): the same on resume and for any number of processes
    smoothing = MelSmoothing(mel_smoothing, mel_smoothing_probability, seed) if mel_smoothing else None
    model = session.wrap(network)
    path = f"fused ({'C++ kernel' if engine == 'cpp' else 'PyTorch'})" if fused else "reference (nn.GRU)"
    session.echo(f"training path: {path}, {precision}")

    def save() -> None:
        states = _rng_states(sampler)
        payload = {
            "model_state": network.state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "step": step,
            "config": config.model_dump_json(),
            "training_data": description,
            "train_seconds": clock.seconds(),
            "rng": states,
            **({"lr_changes": lr_changes} if lr_changes else {}),
            **({"smoothing_changes": smoothing_changes} if smoothing_changes else {}),
            **({"init": initialised_from} if initialised_from else {}),
            **session.checkpoint_extras(states, network),
        }
        session.on_main(save_torch, payload, checkpoint_path)

    for note in session.on_main(prepare_run_folder, run_dir, step, ["log.csv"]) or []:
        session.echo(note)
    log = (run_dir / "log.csv").open("a") if session.is_main else None
    if log is not None and log.tell() == 0:
        log.write("step,loss,seconds\n")
    network.train()
    clock = TrainingClock(saved)
    clock.pause_on_sigtstp()
    batches = iter(ShardedBatchSampler(SegmentSampler(usable, sampler, batch_size, seq_len, hop, config.pad), session))
    while step < max_steps:
        session.fault_point(step + 1)
        shard = next(batches)
        x, y, mels = collate(
            [usable[i] for i, _ in shard.items],
            [offset for _, offset in shard.items],
            seq_len,
            hop,
            config.pad,
            config.bits,
            smoothing,
            [index for index, _ in shard.items],
        )
        # DDP averages over ranks; the weight makes that the mean over the global batch for unequal shares
        loss = training_step(
            model, optimizer, x, y, mels, fused=fused, engine=engine, precision=precision, weight=shard.weight
        )
        step += 1
        mean_loss = session.weighted_mean({"loss": loss}, len(shard))["loss"]
        if log is not None:
            log.write(f"{step},{mean_loss:.6f},{clock.seconds():.2f}\n")
            log.flush()
        session.echo(f"step {step} loss {mean_loss:.4f}")
        if step % save_every == 0 or step == max_steps:
            save()
        if sample_every and step % sample_every == 0 and session.is_main:
            state = torch.get_rng_state()
            _write_sample(network, usable[0], run_dir / "samples" / f"step_{step:07d}.wav", sample_seconds, seed)
            torch.set_rng_state(state)
            network.train()
    if log is not None:
        log.close()


@app.command()
def export(
    run_dir: Annotated[Path, typer.Option(help="The training run (reads run_dir/checkpoint.pt).")],
    out: Annotated[Path, typer.Option(help="Output .safetensors file.")],
    license: Annotated[str, typer.Option(help="Licence of the weights.")] = "CC-BY-4.0",
) -> None:
    """Write the trained weights as safetensors with config, mel spec, steps, training data and licence.
    ``steps`` counts those of the run's ``--init`` too (recorded as ``init``; ``run_steps`` is the run's alone)."""
    from vcframe.specs import RTVC_SYNTHESIZER_MEL

    saved = load_torch(run_dir / "checkpoint.pt", what="training checkpoint")
    config = WaveRNNConfig.model_validate_json(saved["config"])
    step = int(saved["step"])
    lineage = init_lineage(init_record(saved.get("init")), step)
    metadata = {
        "component": f"vocoder/{SPEC.name}",
        "config": {"preset": config.preset, **config.sizes(), "bits": config.bits, "pad": config.pad},
        "mel_spec": RTVC_SYNTHESIZER_MEL.model_dump(),
        "steps": lineage.steps,
        "training_data": saved["training_data"],
        **({"smoothing_changes": saved["smoothing_changes"]} if saved.get("smoothing_changes") else {}),
        **lineage.metadata,
        "license": license,
    }
    save_safetensors(saved["model_state"], out, metadata)
    print(f"wrote {out} (step {step}{lineage.note})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
