"""Training of the Tacotron synthesizer: ``vcframe train synthesizer <command> ...`` or
``python -m vcframe_tacotron.train <command> ...``.

Commands: ``preprocess`` (corpus -> mels, embeddings, manifest), ``fit`` (teacher-forced training with
exact ``--resume`` and ``--max-steps``; ``--precision``: the CBHGs in bfloat16 where the CPU computes it
natively), ``gta`` (teacher-forced mels for vocoder training), ``export`` (safetensors with metadata).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import torch
import typer

from vcframe.checkpoints import load_torch, save_torch
from vcframe.config import parse_json_options
from vcframe.cpu import resolve_precision
from vcframe.datasets import load_array
from vcframe.distributed import ShardedBatchSampler, TrainingClock, prepare_run_folder
from vcframe.errors import CheckpointError, ConfigError
from vcframe.specs import RTVC_SYNTHESIZER_MEL, EmbeddingSpec, MelSpec
from vcframe_tacotron.frontend import get_frontend
from vcframe_tacotron.loss import guided_attention_loss, tacotron_loss
from vcframe_tacotron.preprocess import preprocess as run_preprocess
from vcframe_tacotron.preprocess import read_manifest
from vcframe_tacotron.spec import PRESETS, TacotronConfig

if TYPE_CHECKING:
    from vcframe.distributed import TrainingSession
    from vcframe_tacotron.tacotron import Tacotron

app = typer.Typer(help="Train the Tacotron synthesizer.", no_args_is_help=True, add_completion=False)

#: RTVC's tts_schedule (r, lr, until step, batch size), r = 2 throughout. The small preset uses r = 3.
RTVC_SCHEDULE = "2,1e-3,20000,12;2,5e-4,40000,12;2,2e-4,80000,12;2,1e-4,160000,12;2,3e-5,320000,12;2,1e-5,640000,12"
SMALL_SCHEDULE = "3,1e-3,20000,16;3,5e-4,40000,16;3,2e-4,80000,16;3,1e-4,160000,16"


def parse_schedule(text: str) -> list[tuple[int, float, int, int]]:
    """``"r,lr,until,batch;..."`` -> [(r, lr, until_step, batch_size)], until steps increasing."""
    stages = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        try:
            r, lr, until, batch = part.split(",")
            stages.append((int(r), float(lr), int(float(until)), int(batch)))
        except ValueError as error:
            raise ConfigError(f"bad schedule stage {part!r}", hint="write r,lr,until_step,batch_size;...") from error
    if not stages or any(b[2] <= a[2] for a, b in zip(stages, stages[1:], strict=False)):
        raise ConfigError(f"schedule {text!r} needs stages with increasing until-steps")
    return stages


def stage_at(schedule: list[tuple[int, float, int, int]], step: int) -> tuple[int, float, int, int]:
    for stage in schedule:
        if step < stage[2]:
            return stage
    return schedule[-1]


def format_schedule(schedule: list[tuple[int, float, int, int]] | list[list[Any]]) -> str:
    """A schedule as ``--schedule`` text (``"r,lr,until,batch;..."``; :func:`parse_schedule` reads it back)."""
    return ";".join(f"{r},{lr:g},{until},{batch}" for r, lr, until, batch in schedule)


def set_epoch_batch_size(checkpoint: dict[str, Any], batch_size: int) -> bool:
    """Make ``batch_size`` the batch size of a training checkpoint's running epoch. The order of an epoch's
    batches depends on its batch size (:func:`bucketed_batches`), so the running epoch cannot go on at another
    size: a changed size starts a fresh epoch (``epoch`` + 1, ``batch_in_epoch`` 0). Returns whether it did.

    Used by ``fit --resume --schedule`` and by recipes/demo/device_trip.py's ``--batch-size``."""
    if checkpoint.get("epoch_batch_size") == batch_size:
        return False
    checkpoint["epoch"] = checkpoint.get("epoch", 0) + 1
    checkpoint["batch_in_epoch"] = 0
    checkpoint["epoch_batch_size"] = batch_size
    return True


def apply_schedule_on_resume(saved: dict[str, Any], schedule: list[tuple[int, float, int, int]]) -> str | None:
    """Give a resumed training checkpoint (``saved``, changed in place) a new schedule from its step on.

    The schedule replaces the saved one (``train.schedule``) and is added to ``train.schedule_changes``
    (step, old, new). If its batch size at the step differs from the running epoch's, a fresh epoch starts at
    that size (:func:`set_epoch_batch_size`). Returns ``None`` when the schedule is the saved one (nothing
    changes: an exact resume), else the line that says what changed."""
    old = [tuple(stage) for stage in saved["train"]["schedule"]]
    if old == schedule:
        return None
    step = int(saved["step"])
    change = {"step": step, "old": [list(stage) for stage in old], "new": [list(stage) for stage in schedule]}
    saved["train"] = {
        **saved["train"],
        "schedule": change["new"],
        "schedule_changes": [*saved["train"].get("schedule_changes", []), change],
    }
    batch_size = stage_at(schedule, step)[3]
    if set_epoch_batch_size(saved, batch_size):
        epoch_note = f"fresh epoch {saved['epoch']} at batch {batch_size}"
    else:
        epoch_note = f"epoch {saved['epoch']} goes on at batch {batch_size}"
    return (
        f"schedule changed at step {step}: {format_schedule(old)} -> {format_schedule(schedule)} "
        f"(lr {stage_at(schedule, step)[1]:g}; {epoch_note})"
    )


def bucketed_batches(frames: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Length bucketing: sort by length (ties shuffled), cut into batches, shuffle the batches.
    Deterministic in (seed, epoch), so a resumed run sees the same order."""
    rng = np.random.RandomState((seed * 1000003 + epoch) % 2**32)
    noise = rng.permutation(len(frames))
    order = sorted(range(len(frames)), key=lambda i: (frames[i], noise[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def note_change(
    saved_train: dict[str, Any],
    train_info: dict[str, Any],
    field: str,
    default: Any,
    step: int,
    echo: Callable[[str], None],
    label: str | None = None,
) -> None:
    """On resume: carry ``<field>_changes`` over from the checkpoint's ``train`` record into ``train_info``, and
    add one (and say so, naming it ``label``, default the field) when ``train_info[field]`` differs from the saved
    value (``default`` for checkpoints saved before the field existed; None there means nothing to compare)."""
    before = saved_train.get(field, default)
    changes = list(saved_train.get(f"{field}_changes", []))
    if before is not None and before != train_info[field]:
        changes.append({"step": step, "old": before, "new": train_info[field]})
        echo(f"{label or field} changed at step {step}: {before} -> {train_info[field]}")
    if changes:
        train_info[f"{field}_changes"] = changes


class LengthBucketSampler:
    """:func:`bucketed_batches` as a batch sampler: ``set_epoch`` picks the epoch, ``batch_size`` may change
    between epochs (the schedule's), iteration yields the epoch's batches of manifest indices."""

    def __init__(self, frames: list[int], batch_size: int, seed: int) -> None:
        self.frames, self.batch_size, self.seed, self.epoch = frames, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.frames) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(bucketed_batches(self.frames, self.batch_size, self.seed, self.epoch))


class Dataset:
    """Manifest rows with their ids; loads mels and embeddings on demand."""

    def __init__(self, folder: Path, frontend_name: str) -> None:
        self.folder = folder
        self.rows, self.info = read_manifest(folder)
        self.frontend = get_frontend(frontend_name)
        self.ids = [self.frontend.text_to_ids(row["text"]) for row in self.rows]
        self.frames = [int(row["frames"]) for row in self.rows]

    def collate(
        self, indices: list[int], r: int, silence: float, pad_like: list[int] | None = None
    ) -> dict[str, torch.Tensor]:
        """RTVC's collate: text padded with 0, mels with silence to ``max_len + 1`` rounded up to r.

        ``pad_like``: pad as the batch of these indices would be (a rank's share of a global batch is padded
        like the whole batch, so every item is computed as in a single-process run)."""
        texts = [self.ids[i] for i in indices]
        mels = [load_array(self.folder / self.rows[i]["mel"], what="mel") for i in indices]
        embeds = np.stack([load_array(self.folder / self.rows[i]["embed"], what="embedding") for i in indices])
        if pad_like is None:
            text_len, mel_len = None, None
        else:
            text_len = max(len(self.ids[i]) for i in pad_like)
            mel_len = max(self.frames[i] for i in pad_like) + 1
        return collate_items(texts, mels, embeds.astype(np.float32), r, silence, text_len=text_len, mel_len=mel_len)


def collate_items(
    texts: list[list[int]],
    mels: list[np.ndarray],
    embeds: np.ndarray,
    r: int,
    silence: float,
    *,
    text_len: int | None = None,
    mel_len: int | None = None,
) -> dict[str, torch.Tensor]:
    """RTVC's collate of B items: ids padded with 0, mels with ``silence`` to ``max_len + 1`` rounded up to r.

    Args:
        texts: B id sequences; mels: B (n_mels, T_i) float32 arrays; embeds: (B, D) float32.
        r: frames per decoder step; silence: the mel spec's silence value.
        text_len, mel_len: pad to these (default None: the longest item, and its frame count + 1).

    Returns chars (B, L) int64, mels (B, n_mels, T), embeds (B, D), stop_target (B, T) (0 before each item's
    last frame, 1 from it on), text_lengths (B,), mel_lengths (B,).
    """
    text_len = max(len(t) for t in texts) if text_len is None else text_len
    mel_len = max(m.shape[1] for m in mels) + 1 if mel_len is None else mel_len
    mel_len = mel_len + (-mel_len) % r
    chars = torch.zeros(len(texts), text_len, dtype=torch.long)
    mel_batch = torch.full((len(texts), mels[0].shape[0], mel_len), silence, dtype=torch.float32)
    stop = torch.ones(len(texts), mel_len)
    for row, (text, mel) in enumerate(zip(texts, mels, strict=True)):
        chars[row, : len(text)] = torch.tensor(text)
        mel_batch[row, :, : mel.shape[1]] = torch.from_numpy(mel)
        stop[row, : mel.shape[1] - 1] = 0
    return {
        "chars": chars,
        "mels": mel_batch,
        "embeds": torch.from_numpy(embeds),
        "stop_target": stop,
        "text_lengths": torch.tensor([len(t) for t in texts]),
        "mel_lengths": torch.tensor([m.shape[1] for m in mels]),
    }


def mel_spec_of(info: dict[str, Any]) -> MelSpec:
    """The mel spec a preprocessed folder's ``info.json`` records (RTVC's synthesizer mel when it records none)."""
    return MelSpec.model_validate(info["mel_spec"]) if "mel_spec" in info else RTVC_SYNTHESIZER_MEL


def embedding_spec_of(info: dict[str, Any]) -> EmbeddingSpec:
    if "embedding_spec" in info:
        return EmbeddingSpec.model_validate(info["embedding_spec"])
    return EmbeddingSpec(
        space=info.get("embedding_space") or "random/per-speaker", dim=info.get("embedding_dim") or 256
    )


@dataclass
class HeldOutSet:
    """A held-out preprocessed corpus the trainer measures (``fit --valid-data``): fixed clips, valid frames."""

    path: Path
    dataset: Dataset
    batches: list[list[int]]
    config: TacotronConfig
    clean: bool  # the run's masking is 'clean' (the network sees each item's lengths), as in training

    def measure(self, network: torch.nn.Module, step: int, device: torch.device) -> dict[str, Any]:
        """One valid.jsonl record. Leaves the training run as it was: the torch random state is forked and the
        batch norm running statistics are put back (the measure runs in train mode, see ``validation``)."""
        from vcframe_tacotron.validation import preserved_buffers, valid_frame_losses

        forked = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked), preserved_buffers(network):
            losses = valid_frame_losses(
                network,
                self.dataset,
                self.batches,
                dropout=self.config.dropout,
                silence_value=self.config.mel.silence_value,
                clean=self.clean,
                device=device,
            )
        network.train()
        clips = sum(len(batch) for batch in self.batches)
        return {"step": step, "data": str(self.path), "clips": clips, **{k: round(v, 5) for k, v in losses.items()}}


VALID_SEED = 1  # the clip pick of recipes/demo/eval_synthesizer.py's default, so the two report the same clips
VALID_BATCH_SIZE = 16


def held_out_set(path: Path, config: TacotronConfig, clips: int, *, clean: bool) -> HeldOutSet:
    """``path`` (a preprocessed folder) checked against the run's speaker embedding and mel spec; measured with
    the run's masking (``clean``)."""
    from vcframe_tacotron.validation import pick_batches

    dataset = Dataset(path, config.frontend)
    embedding = embedding_spec_of(dataset.info)
    mel = mel_spec_of(dataset.info)
    if embedding != config.embedding:
        raise ConfigError(
            f"--valid-data {str(path)!r} has {embedding.space} embeddings (dim {embedding.dim}) but the run trains "
            f"on {config.embedding.space} (dim {config.embedding.dim})",
            hint="preprocess the held-out corpus with the training data's --encoder",
        )
    if mel != config.mel:
        raise ConfigError(
            f"--valid-data {str(path)!r} has another mel spec than the training data: "
            + ", ".join(f"{name} {mine!r} vs {theirs!r}" for name, mine, theirs in mel.diff(config.mel)),
            hint="preprocess the held-out corpus with the training data's settings",
        )
    batches = pick_batches(dataset.frames, min(clips, len(dataset.frames)), VALID_BATCH_SIZE, VALID_SEED)
    return HeldOutSet(path, dataset, batches, config, clean)


def rng_states() -> dict[str, Any]:
    """torch / numpy / python RNG states as tensors and ints (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    return {
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64), "gauss": python_gauss},
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    numpy_state = states["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["gauss"],
        )
    )
    python_state = states["python"]
    random.setstate(
        (python_state["version"], tuple(int(v) for v in python_state["state"].tolist()), python_state["gauss"])
    )


def build_config(
    preset: str, overrides: dict[str, Any], embedding: EmbeddingSpec, mel: MelSpec, frontend: str
) -> TacotronConfig:
    return TacotronConfig.model_validate(
        {
            "preset": preset,
            "checkpoint": None,
            "embedding": embedding.model_dump(),
            "mel": mel.model_dump(mode="json"),
            "frontend": frontend,
            "num_chars": len(get_frontend(frontend).symbols),
            **overrides,
        }
    )


TRAIN_ONLY = ("all", "speaker", "voice")
#: what "voice" trains whole besides the speaker path: the decoder after attention (the projection of context and
#: attention state, the two residual LSTMs, the mel projection) and the post-net; text encoding, the attention
#: (its GRU, location-sensitive energies, the pre-net) and the stop projection's other inputs stay frozen
VOICE_MODULES = (
    "decoder.rnn_input.",
    "decoder.res_rnn1.",
    "decoder.res_rnn2.",
    "decoder.mel_proj.",
    "postnet.",
    "post_proj.",
)


def speaker_path_columns(network: Tacotron) -> dict[str, slice]:
    """The weights that read the speaker embedding, each with the slice of its input columns that does.

    The embedding enters the Tacotron only by concatenation: to the encoder outputs (``encoder_proj``, the attention
    keys) and so to every attention context, which ``decoder.attn_rnn``, ``decoder.rnn_input`` and
    ``decoder.stop_proj`` read. These column blocks are the linear map from the embedding into the decoder, so a
    run that trains only them (``--train-only speaker``) changes how an embedding is spoken and nothing else: text
    encoding, attention dynamics, the decoder's recurrences and the post-net stay as they were."""
    speaker = network.speaker_embedding_size
    memory = network.encoder_proj.in_features  # encoder outputs + speaker: every context has this width
    lstm = network.decoder.res_rnn1.hidden_size
    return {
        "encoder_proj.weight": slice(memory - speaker, memory),
        "decoder.attn_rnn.weight_ih": slice(memory - speaker, memory),
        "decoder.rnn_input.weight": slice(memory - speaker, memory),
        "decoder.stop_proj.weight": slice(lstm + memory - speaker, lstm + memory),
    }


def restrict_training(network: Tacotron, train_only: str) -> int:
    """Freeze what ``train_only`` leaves out: "all" trains every weight; "speaker" only the columns of
    ``speaker_path_columns`` (other parameters get ``requires_grad=False``; the four weights' other columns get a
    zero gradient, so Adam never moves them; the batch norms of frozen modules still normalise by batch, as in
    training, but their running statistics, which inference uses, stay as they were: momentum 0); "voice" the
    speaker path and the whole of ``VOICE_MODULES``, so how a voice sounds can change while how text is read
    and aligned cannot. Returns the number of trainable weights."""
    if train_only not in TRAIN_ONLY:
        raise ConfigError(f"train_only must be one of {', '.join(TRAIN_ONLY)}, got {train_only!r}")
    parameters = dict(network.named_parameters())
    if train_only == "all":
        return sum(parameter.numel() for parameter in parameters.values())
    columns = speaker_path_columns(network)
    whole = {name for name in parameters if train_only == "voice" and name.startswith(VOICE_MODULES)}
    for name, module in network.named_modules():
        trains = train_only == "voice" and f"{name}.".startswith(VOICE_MODULES)
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not trains:
            module.momentum = 0.0
    for name, parameter in parameters.items():
        parameter.requires_grad_(name in columns or name in whole)
    trainable = sum(parameters[name].numel() for name in whole)
    for name, kept in columns.items():
        if name in whole:
            continue
        weight = parameters[name]
        mask = torch.zeros_like(weight)
        mask[:, kept] = 1.0
        # torch leaves Tensor.register_hook unannotated
        weight.register_hook(lambda gradient, mask=mask: gradient * mask)  # type: ignore[no-untyped-call]
        trainable += int(mask.sum())
    return trainable


def anchor_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A float32 copy of the trainable weights, on their device: where ``--anchor-decay`` pulls them back to."""
    return {
        name: parameter.detach().float().clone()
        for name, parameter in network.named_parameters()
        if parameter.requires_grad
    }


@torch.no_grad()
def pull_toward_anchor(network: torch.nn.Module, anchor: dict[str, torch.Tensor], fraction: float) -> None:
    """Move every anchored weight ``fraction`` of the way back to its anchor value (``w += fraction * (a - w)``):
    decoupled from the loss and from Adam's scaling, as AdamW's weight decay is (which pulls toward zero). With the
    step's ``fraction = lr * decay``, a weight that Adam pushes the same way at every step (each step moves it about
    ``lr``) settles about ``1 / decay`` from its anchor; weights the loss does not keep pushing drift back. Frozen
    weights equal their anchor and stay. ``fraction`` must be in [0, 1]."""
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"the anchor pull per step (lr x anchor decay) must be in [0, 1], got {fraction}")
    for name, parameter in network.named_parameters():
        if name in anchor:
            parameter.lerp_(anchor[name], fraction)


@torch.no_grad()
def anchor_distance(network: torch.nn.Module, anchor: dict[str, torch.Tensor]) -> float:
    """Root mean square difference of the anchored weights from their anchor values (logged as ``anchor_rms``)."""
    total, count = 0.0, 0
    for name, parameter in network.named_parameters():
        if name in anchor:
            total += float(((parameter - anchor[name]) ** 2).sum())
            count += parameter.numel()
    return math.sqrt(total / max(count, 1))


def training_precision(requested: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``fit --precision``: on a CPU :func:`vcframe.cpu.resolve_precision` (``auto``:
    bf16 where the CPU computes it natively, AMX or AVX-512 BF16); on CUDA ``auto`` is fp32 (the gain was measured
    on CPUs only). Raises ConfigError for anything but ``auto``, ``fp32`` and ``bf16``."""
    if requested == "auto" and device.type != "cpu":
        return "fp32"
    return resolve_precision(requested, device)


@dataclass
class StepResult:
    """What :func:`training_step` leaves for logging and plots: the losses (0-d, ``guided_loss`` when it was
    on), the gradient norm before clipping, the attention (B, T/r, L) and the post-net mel (B, n_mels, T)
    (float32), and whether the optimizer stepped (not when the gradient norm is NaN: the batch is skipped)."""

    losses: dict[str, torch.Tensor]
    grad_norm: torch.Tensor
    attention: torch.Tensor
    mel_postnet: torch.Tensor
    stepped: bool


def training_step(
    model: torch.nn.Module,
    network: Tacotron,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    *,
    dropout: float,
    clean: bool,
    silence: float,
    clip: float,
    guided_weight: float = 0.0,
    guided_sigma: float = 0.2,
    precision: str = "fp32",
    loss_weight: float = 1.0,
    global_frames: list[int] | None = None,
    world_size: int = 1,
) -> StepResult:
    """One teacher-forced step of ``fit``: forward, RTVC's loss (+ the guided attention loss), backward, gradient
    norm clipping, Adam.

    Args:
        model: what the forward pass calls (the DDP wrapper in a distributed run, else ``network``).
        network: the Tacotron (its parameters are clipped; ``network.r`` is the step's r).
        optimizer: the Adam over ``network``'s parameters.
        batch: :func:`collate_items`'s tensors on the run's device.
        dropout: pre-net dropout; clean: the clean masking (lengths given to the network), else RTVC's;
        silence: the mel spec's silence value (the post-net's value after each item, clean masking only).
        clip: gradient norm clip.
        guided_weight (default 0: off): weight of the guided attention loss; guided_sigma (default 0.2): its width.
        precision (default ``fp32``): ``bf16`` runs the CBHGs' convolutions and highways under bfloat16 autocast
            (:meth:`Tacotron.forward`'s ``cbhg_dtype``); the decoder, the losses, the weights, their gradients,
            the clipping and Adam's state stay float32. ``fp32`` is the float32 step as it always was.
        loss_weight (default 1.0): factor on the loss (a distributed shard's weight: DDP's mean over ranks then
            gives the global batch's mean).
        global_frames (default None): a distributed run's frame counts of the whole global batch: the guided
            loss is divided by their decoder steps and ``world_size`` times the rank's value is added, so the
            ranks' shares add up to the global batch's loss.
    """
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be fp32 or bf16, got {precision!r}")
    mel_decoder, mel_postnet, attention, stop = model(
        batch["chars"],
        batch["mels"],
        batch["embeds"],
        p=dropout,
        text_lengths=batch["text_lengths"] if clean else None,
        mel_lengths=batch["mel_lengths"] if clean else None,
        silence_value=silence if clean else None,
        cbhg_dtype=torch.bfloat16 if precision == "bf16" else None,
    )
    losses = tacotron_loss(mel_decoder, mel_postnet, stop, batch["mels"], batch["stop_target"])
    loss = losses["loss"] * loss_weight if loss_weight != 1.0 else losses["loss"]
    if guided_weight > 0:
        r = int(network.r)
        decoder_steps = (batch["mel_lengths"] + r - 1) // r
        total_steps = None
        if global_frames is not None:
            total_steps = max(1, sum(min((frames + r - 1) // r, attention.size(1)) for frames in global_frames))
        losses["guided_loss"] = guided_attention_loss(
            attention, batch["text_lengths"], decoder_steps, guided_sigma, total_steps=total_steps
        )
        share = losses["guided_loss"] * world_size if world_size != 1 else losses["guided_loss"]
        loss = loss + guided_weight * share
    optimizer.zero_grad()
    torch.autograd.backward(loss)
    grad_norm = torch.nn.utils.clip_grad_norm_(network.parameters(), clip)
    stepped = not math.isnan(float(grad_norm))
    if stepped:
        optimizer.step()
    return StepResult(losses, grad_norm, attention, mel_postnet, stepped)


def _save_plots(
    run_dir: Path, step: int, attention: torch.Tensor, mel: torch.Tensor, target: torch.Tensor, spec: MelSpec
) -> None:
    """Attention plot, predicted/target mel plot and npy, Griffin-Lim wav (if vcframe-griffinlim is installed)."""
    folder = run_dir / "samples"
    folder.mkdir(exist_ok=True)
    np.save(folder / f"mel_{step:07d}.npy", mel.numpy())
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(1, 3, figsize=(15, 4))
        # the first step attends to one character with weight ~1; scale the colours by the other steps
        peak = float(attention[1:].max()) if attention.size(0) > 1 else 1.0
        axes[0].imshow(attention.numpy().T, aspect="auto", origin="lower", interpolation="none", vmin=0, vmax=peak)
        axes[0].set(title=f"attention, step {step}", xlabel="decoder step", ylabel="character")
        axes[1].imshow(mel.numpy(), aspect="auto", origin="lower", vmin=-4, vmax=4)
        axes[1].set(title="predicted mel (post-net)")
        axes[2].imshow(target.numpy(), aspect="auto", origin="lower", vmin=-4, vmax=4)
        axes[2].set(title="target mel")
        figure.tight_layout()
        figure.savefig(folder / f"step_{step:07d}.png")
        plt.close(figure)
    except ImportError:
        pass
    try:
        from vcframe_griffinlim.model import GriffinLimVocoder
        from vcframe_griffinlim.spec import GriffinLimConfig

        from vcframe.audio import save_audio
        from vcframe.types import Mel

        vocoder = GriffinLimVocoder(GriffinLimConfig(mel=spec, n_iter=30))
        save_audio(vocoder.vocode(Mel(mel[None].contiguous(), spec), seed=0), folder / f"step_{step:07d}.wav")
    except ImportError:
        pass


@app.command()
def preprocess(
    corpus: Annotated[Path, typer.Argument(help="Corpus root (LibriSpeech, <speaker>/<utt>.wav+.txt, or LJSpeech).")],
    out: Annotated[Path, typer.Option(help="Output folder (mels/, embeds/, manifest.jsonl, info.json).")],
    corpus_format: Annotated[str, typer.Option("--format", help="auto, librispeech, generic or ljspeech.")] = "auto",
    encoder: Annotated[
        str, typer.Option(help="Encoder plugin (entry point name) for the embeddings, or random-per-speaker.")
    ] = "ge2e",
    encoder_option: Annotated[
        list[str] | None, typer.Option("--encoder-option", "-e", help="Encoder config key=JSON value.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Parallel processes.")] = 1,
    max_frames: Annotated[int, typer.Option(help="Longer utterances are skipped (RTVC 900).")] = 900,
) -> None:
    """Compute mels and speaker embeddings for every utterance; resumable (done files are kept)."""
    overrides = parse_json_options(encoder_option, example="-e KEY=JSON")
    manifest = run_preprocess(
        str(corpus),
        str(out),
        corpus_format=corpus_format,
        encoder=encoder,
        encoder_overrides=overrides,
        workers=workers,
        max_frames=max_frames,
    )
    rows, info = read_manifest(manifest.parent)
    typer.echo(f"{len(rows)} utterances in {manifest} ({len(info.get('skipped', []))} skipped)")


@app.command()
def fit(
    data: Annotated[Path, typer.Option(help="Preprocessed folder (from 'preprocess').")],
    run_dir: Annotated[Path, typer.Option(help="Checkpoints, log.jsonl, plots and samples go here.")],
    preset: Annotated[str, typer.Option(help=f"Model size: {', '.join(PRESETS)}.")] = "small",
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Model config key=JSON value (e.g. lstm_dims=256).")
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            help="'r,lr,until_step,batch;...' (default: RTVC's, r=3 for small). With --resume: replaces the "
            "saved schedule from the checkpoint's step on (a changed batch size starts a fresh epoch); "
            "without it the saved schedule goes on."
        ),
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps in total.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue exactly from run_dir/checkpoint.pt.")] = False,
    init: Annotated[
        Path | None, typer.Option(help="Start from these weights (RTVC .pt or vcframe safetensors).")
    ] = None,
    guided_attention: Annotated[float, typer.Option(help="Weight of the guided attention loss (0 = off, RTVC).")] = 0.0,
    guided_sigma: Annotated[float, typer.Option(help="Width of the guided attention diagonal.")] = 0.2,
    guided_until: Annotated[
        int | None, typer.Option(help="Turn the guided attention loss off after this step.")
    ] = None,
    masking: Annotated[
        str, typer.Option(help="'rtvc' (multiplicative pad mask, as RTVC trained) or 'clean'.")
    ] = "rtvc",
    clip: Annotated[float, typer.Option(help="Gradient norm clip (RTVC 1.0).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, data order, dropout.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Save run_dir/checkpoint.pt every K steps (RTVC 1000).")] = 500,
    backup_every: Annotated[int, typer.Option(help="Also keep checkpoint_<step>.pt every K steps (0 = never).")] = 0,
    eval_every: Annotated[
        int, typer.Option(help="Attention plot, mel and Griffin-Lim sample every K steps (RTVC 500).")
    ] = 500,
    log_every: Annotated[int, typer.Option(help="Print and log losses every K steps.")] = 10,
    valid_data: Annotated[
        list[Path] | None,
        typer.Option(
            help=(
                "Held-out preprocessed folder (repeatable): teacher-forced losses over valid frames on fixed clips "
                "every --valid-every steps, into run_dir/valid.jsonl."
            )
        ),
    ] = None,
    valid_every: Annotated[int, typer.Option(min=0, help="Measure each --valid-data every K steps (0 = never).")] = 500,
    valid_clips: Annotated[
        int, typer.Option(min=1, help="Clips measured per --valid-data (at most all of them).")
    ] = 64,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (bf16 on a CPU with AMX / AVX-512 BF16, else fp32), fp32 or bf16: the CBHGs' convolutions "
            "and highways under bfloat16 autocast (decoder, losses, weights, gradients and Adam stay float32). "
            "A change on --resume is recorded in the checkpoint."
        ),
    ] = "auto",
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
    train_only: Annotated[
        str,
        typer.Option(
            help="all; speaker: only the weight columns that read the speaker embedding (the map from embedding "
            "to decoder; text, attention and post-net frozen), e.g. to teach --init weights new voices without "
            "touching how they read; voice: those and the decoder after attention and the post-net (text encoding "
            "and attention frozen). Kept on --resume."
        ),
    ] = "all",
    anchor_decay: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="After each step pull every trained weight back toward its --init value by lr x this of the "
            "difference (decoupled, as AdamW's decay pulls toward zero): a weight the loss keeps pushing one way "
            "settles about 1/this from its start, so new voices can be learned while the rest of what the --init "
            "weights know stays (0 = off; needs --init). Kept on --resume unless given; a change is recorded.",
        ),
    ] = None,
) -> None:
    """Teacher-forced training with RTVC's loss, schedule, clipping; atomic checkpoints; exact --resume.

    Runs as one process or under ``torchrun --nproc_per_node=N`` (DDP; the schedule's batch size is the global
    batch, shared by the ranks and padded as one batch; dropout and zoneout masks drawn for the global batch).
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
    option: list[str] | None,
    schedule: str | None,
    max_steps: int | None,
    resume: bool,
    init: Path | None,
    guided_attention: float,
    guided_sigma: float,
    guided_until: int | None,
    masking: str,
    clip: float,
    seed: int,
    checkpoint_every: int,
    backup_every: int,
    eval_every: int,
    log_every: int,
    valid_data: list[Path] | None,
    valid_every: int,
    valid_clips: int,
    precision: str,
    threads: int,
    device: str,
    train_only: str,
    anchor_decay: float | None = None,
) -> None:
    if threads:
        torch.set_num_threads(threads)
    if masking not in ("rtvc", "clean"):
        raise ConfigError(f"masking must be rtvc or clean, got {masking!r}")
    precision = training_precision(precision, session.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / "checkpoint.pt"
    overrides = parse_json_options(option, example="-o lstm_dims=256")
    given_stages = parse_schedule(schedule) if schedule is not None else None
    stages = given_stages or parse_schedule(SMALL_SCHEDULE if preset == "small" else RTVC_SCHEDULE)
    saved: dict[str, Any] | None = None
    if session.should_resume(resume, checkpoint_path):
        if not checkpoint_path.is_file():
            raise CheckpointError(f"nothing to resume: {str(checkpoint_path)!r} does not exist", hint="drop --resume")
        saved = load_torch(checkpoint_path, what="training checkpoint")
        preset, overrides = saved["train"]["preset"], saved["train"]["overrides"]
        seed, masking = saved["train"]["seed"], saved["train"]["masking"]
        train_only = saved["train"].get("train_only", "all")
        if anchor_decay is None:
            anchor_decay = saved["train"].get("anchor_decay", 0.0)
        if anchor_decay and "anchor_state" not in saved:
            raise ConfigError(
                f"--anchor-decay {anchor_decay}: this run started without an anchor (no --init and --anchor-decay "
                "at its start), so there is nothing to pull toward",
                hint="start a new run with --init WEIGHTS --anchor-decay D",
            )
        # an explicit --schedule replaces the saved one from the checkpoint's step on; without one it is kept
        if given_stages is not None:
            change = apply_schedule_on_resume(saved, given_stages)
            if change is not None:
                session.echo(change)
        stages = [tuple(s) for s in saved["train"]["schedule"]]

    dataset = Dataset(data, overrides.get("frontend", "rtvc-english"))
    mel_spec = mel_spec_of(dataset.info)
    config = build_config(preset, overrides, embedding_spec_of(dataset.info), mel_spec, dataset.frontend.name)
    from vcframe_tacotron.model import build_network, check_state_against

    valid_sets = [held_out_set(path, config, valid_clips, clean=masking == "clean") for path in valid_data or []]
    torch.manual_seed(seed)
    network = build_network(config)
    if init is not None and saved is None:
        from vcframe.checkpoints import load_state

        state, _ = load_state(init)
        check_state_against(network, state, str(init))
        network.load_state_dict(state)
    target = session.device
    network.to(target)
    trainable = restrict_training(network, train_only)
    anchor_decay = anchor_decay or 0.0
    anchor: dict[str, torch.Tensor] | None = None
    top = max(stage[1] for stage in stages)
    if anchor_decay and top * anchor_decay > 1:
        raise ConfigError(
            f"--anchor-decay {anchor_decay:g} with the schedule's largest lr {top:g} would pull a weight more than all "
            f"the way back each step (lr x decay {top * anchor_decay:g} > 1)",
            hint=f"give --anchor-decay at most {1 / top:g}",
        )
    if saved is not None and "anchor_state" in saved:
        anchor = {name: value.to(target) for name, value in saved["anchor_state"].items()}
    elif anchor_decay:
        if init is None:
            raise ConfigError(
                f"--anchor-decay {anchor_decay} pulls the weights toward the --init weights, and none were given",
                hint="add --init WEIGHTS (the shipped checkpoint, say), or drop --anchor-decay",
            )
        anchor = anchor_state(network)
    if anchor_decay:
        session.echo(
            f"anchored to the --init weights: decay {anchor_decay:g} (a weight the loss keeps pushing one way "
            f"settles about {1 / anchor_decay:.3g} from its start)"
        )
    if train_only != "all":
        what = "the speaker path" if train_only == "speaker" else "the speaker path and the decoder after attention"
        session.echo(f"training only {what}: {trainable:,} weights")
    optimizer = torch.optim.Adam(network.parameters(), lr=stages[0][1])
    step, epoch, batch_in_epoch, epoch_batch_size = 0, 0, 0, stage_at(stages, 0)[3]
    if saved is not None:
        network.load_state_dict(saved["model_state"])
        optimizer.load_state_dict(saved["optimizer_state"])
        step, epoch, batch_in_epoch = saved["step"], saved["epoch"], saved["batch_in_epoch"]
        epoch_batch_size = saved["epoch_batch_size"]
        restore_rng_states(session.rng_state_of(saved))
    else:
        random.seed(seed)
        np.random.seed(seed % 2**32)
    train_info = {
        "preset": preset,
        "overrides": overrides,
        "schedule": [list(s) for s in stages],
        "seed": seed,
        "masking": masking,
        "data": str(data.resolve()),
        "precision": precision,
    }
    if train_only != "all":
        train_info["train_only"] = train_only
    if anchor is not None:
        train_info["anchor_decay"] = anchor_decay
    if saved is not None and "schedule_changes" in saved["train"]:
        train_info["schedule_changes"] = saved["train"]["schedule_changes"]
    if saved is not None:
        # runs from before --precision trained in float32
        note_change(saved["train"], train_info, "precision", "fp32", step, session.echo)
        note_change(saved["train"], train_info, "data", None, step, session.echo, "training data")
        if anchor is not None:
            note_change(saved["train"], train_info, "anchor_decay", None, step, session.echo, "anchor decay")
    bf16_parts = " (the CBHGs' convolutions and highways in bfloat16)" if precision == "bf16" else ""
    session.echo(f"precision {precision}{bf16_parts}, {torch.get_num_threads()} thread(s)")
    if session.is_main:
        with open(run_dir / "config.json", "w") as stream:
            json.dump(
                {"model": config.model_dump(mode="json"), "train": train_info, "sizes": config.sizes()},
                stream,
                indent=1,
            )
    model = session.wrap(network)

    def save(path: Path) -> None:
        states = rng_states()
        payload = {
            "model_state": network.state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "epoch_batch_size": epoch_batch_size,
            "rng": states,
            "train": train_info,
            "config": config.model_dump(mode="json"),
            "train_seconds": clock.seconds(),
            **({"anchor_state": anchor} if anchor is not None else {}),
            **session.checkpoint_extras(states, network),
        }
        session.on_main(save_torch, payload, path)

    silence = config.mel.silence_value
    limit = max_steps if max_steps is not None else stages[-1][2]
    clock = TrainingClock(saved)
    clock.pause_on_sigtstp()
    network.train()
    for note in session.on_main(prepare_run_folder, run_dir, step, ["log.jsonl", "valid.jsonl"]) or []:
        session.echo(note)
    log = open(run_dir / "log.jsonl", "a") if session.is_main else None
    valid_log = open(run_dir / "valid.jsonl", "a") if session.is_main and valid_sets else None
    buckets = LengthBucketSampler(dataset.frames, epoch_batch_size, seed)
    sharded = ShardedBatchSampler(buckets, session)
    distributed = session.distributed
    try:
        while step < limit:
            buckets.batch_size = epoch_batch_size
            sharded.set_epoch(epoch, skip=batch_in_epoch)
            for shard in sharded:
                if step >= limit:
                    break
                session.fault_point(step + 1)
                r, lr, _, _ = stage_at(stages, step)
                network.r = r
                for group in optimizer.param_groups:
                    group["lr"] = lr
                # a rank's share is padded like the whole global batch (so each item is computed as alone)
                pad_like = shard.batch if distributed else None
                collated = dataset.collate(shard.items, r, silence, pad_like=pad_like)
                batch = {k: v.to(target) for k, v in collated.items()}
                guided = guided_attention > 0 and (guided_until is None or step < guided_until)
                with session.batch_randomness(shard):
                    result = training_step(
                        model,
                        network,
                        optimizer,
                        batch,
                        dropout=config.dropout,
                        clean=masking == "clean",
                        silence=silence,
                        clip=clip,
                        guided_weight=guided_attention if guided else 0.0,
                        guided_sigma=guided_sigma,
                        precision=precision,
                        # DDP averages over ranks: the weight turns that into the global batch's mean
                        loss_weight=shard.weight if distributed else 1.0,
                        global_frames=[dataset.frames[i] for i in shard.batch] if distributed else None,
                        world_size=session.world_size if distributed else 1,
                    )
                losses, grad_norm = result.losses, result.grad_norm
                if not result.stepped:
                    session.echo(f"step {step + 1}: gradient is NaN, batch skipped")
                elif anchor is not None and anchor_decay:
                    pull_toward_anchor(network, anchor, lr * anchor_decay)
                step += 1
                batch_in_epoch = shard.index + 1
                if step % log_every == 0 or step == limit:
                    values = {k: v.detach() for k, v in losses.items() if k != "guided_loss"}
                    means = session.weighted_mean(values, len(shard))
                    if "guided_loss" in losses:  # each rank holds its share of the global value: sum them
                        guided_times_ranks = losses["guided_loss"].detach() * session.world_size
                        summed = session.weighted_mean({"guided_loss": guided_times_ranks}, 1.0)
                        means["guided_loss"] = summed["guided_loss"]
                    record = {
                        "step": step,
                        "epoch": epoch,
                        "r": r,
                        "lr": lr,
                        "seconds": round(clock.seconds(), 2),
                        **{k: round(means[k], 5) for k in losses},
                        "grad_norm": round(float(grad_norm), 4),
                    }
                    if anchor is not None:
                        record["anchor_rms"] = round(anchor_distance(network, anchor), 6)
                    if log is not None:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    session.echo(" ".join(f"{k}={v}" for k, v in record.items()))
                if eval_every and step % eval_every == 0 and session.is_main:
                    length = int(batch["mel_lengths"][0])
                    steps_used = (length + r - 1) // r
                    _save_plots(
                        run_dir,
                        step,
                        result.attention[0, :steps_used, : int(batch["text_lengths"][0])].detach().cpu(),
                        result.mel_postnet[0, :, :length].detach().cpu(),
                        batch["mels"][0, :, :length].cpu(),
                        config.mel,
                    )
                if valid_sets and valid_every and step % valid_every == 0:
                    for held_out in valid_sets:
                        record = held_out.measure(network, step, target)
                        if valid_log is not None:
                            valid_log.write(json.dumps(record) + "\n")
                            valid_log.flush()
                        session.echo("valid " + " ".join(f"{k}={v}" for k, v in record.items()))
                if step % checkpoint_every == 0:
                    save(checkpoint_path)
                if backup_every and step % backup_every == 0:
                    save(run_dir / f"checkpoint_{step:07d}.pt")
            else:  # the epoch's batches are all done (a distributed run may have skipped a short last one)
                batch_in_epoch = len(buckets)
            if batch_in_epoch >= len(buckets):
                epoch, batch_in_epoch = epoch + 1, 0
                epoch_batch_size = stage_at(stages, step)[3]
    finally:
        if log is not None:
            log.close()
        if valid_log is not None:
            valid_log.close()
    save(checkpoint_path)
    session.echo(f"stopped at step {step}; checkpoint {checkpoint_path}")


def _load_run(run_dir: Path) -> tuple[TacotronConfig, Any, dict[str, Any]]:
    from vcframe_tacotron.model import build_network

    path = run_dir / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"no training checkpoint at {str(path)!r}", hint="run 'fit' first")
    saved = load_torch(path, what="training checkpoint")
    config = TacotronConfig.model_validate(saved["config"])
    network = build_network(config)
    network.load_state_dict(saved["model_state"])
    return config, network, saved


def _load_checkpoint(reference: str, dataset_folder: Path) -> tuple[TacotronConfig, Any]:
    """The network of a finished checkpoint ('default', 'registry:<id>', a safetensors export or an RTVC .pt),
    checked against the embedding and mel specs of the preprocessed folder it will be run on."""
    from vcframe_tacotron.model import TacotronSynthesizer

    _, info = read_manifest(dataset_folder)
    config = TacotronConfig(checkpoint=reference, embedding=embedding_spec_of(info), mel=mel_spec_of(info))
    synthesizer = TacotronSynthesizer(config)
    return synthesizer.config, synthesizer.network


@app.command()
def gta(
    data: Annotated[Path, typer.Option(help="Preprocessed folder whose utterances get GTA mels.")],
    out: Annotated[Path, typer.Option(help="Output folder: gta/<id>.npy, manifest.jsonl and pairs.txt.")],
    run_dir: Annotated[
        Path | None, typer.Option(help="Training run folder (uses its checkpoint.pt); or give --checkpoint.")
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="A finished synthesizer instead of a run: 'default', 'registry:<id>' or a safetensors export "
            "with the synthesizer's default options."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Utterances per forward pass.")] = 16,
) -> None:
    """Ground-truth-aligned mels: the teacher-forced post-net output (dropout 0) for every utterance.

    ``manifest.jsonl`` repeats each preprocessed row with its ``gta`` path; ``pairs.txt`` lists
    ``audio|gta mel`` per line, the vocoder training manifest (e.g. ``python -m vcframe_wavernn.train fit
    --data OUT/pairs.txt``).
    """
    if (run_dir is None) == (checkpoint is None):
        raise ConfigError(
            "give exactly one of --run-dir and --checkpoint",
            hint="--run-dir for a training run folder, --checkpoint for a shipped or exported synthesizer",
        )
    if run_dir is not None:
        config, network, saved = _load_run(run_dir)
        clean = saved["train"]["masking"] == "clean"
    else:
        assert checkpoint is not None
        config, network = _load_checkpoint(checkpoint, data)
        clean = config.masking == "clean"
    network.eval()
    dataset = Dataset(data, config.frontend)
    (out / "gta").mkdir(parents=True, exist_ok=True)
    from vcframe._io import atomic_path, atomic_write

    rows = []
    with torch.no_grad():
        for start in range(0, len(dataset.rows), batch_size):
            indices = list(range(start, min(start + batch_size, len(dataset.rows))))
            batch = dataset.collate(indices, network.r, config.mel.silence_value)
            _, mel_postnet, _, _ = network(
                batch["chars"],
                batch["mels"],
                batch["embeds"],
                p=0.0,
                text_lengths=batch["text_lengths"] if clean else None,
                mel_lengths=batch["mel_lengths"] if clean else None,
            )
            for row, index in enumerate(indices):
                item = dataset.rows[index]
                length = int(batch["mel_lengths"][row])
                with atomic_path(out / "gta" / f"{item['id']}.npy", suffix=".npy") as temp:
                    np.save(temp, mel_postnet[row, :, :length].numpy().astype(np.float32))
                rows.append({**item, "gta": f"gta/{item['id']}.npy", "mel": str((data / item["mel"]).resolve())})
    with atomic_write(out / "manifest.jsonl", "w") as stream:
        for entry in rows:
            stream.write(json.dumps(entry) + "\n")
    with atomic_write(out / "pairs.txt", "w") as stream:
        for entry in rows:
            stream.write(f"{Path(entry['audio']).resolve()}|{entry['gta']}\n")
    typer.echo(f"{len(rows)} GTA mels in {out / 'gta'}; vocoder manifest {out / 'pairs.txt'}")


@app.command()
def export(
    run_dir: Annotated[Path, typer.Option(help="Training run folder (uses its checkpoint.pt).")],
    out: Annotated[Path, typer.Option(help="Output .safetensors file.")],
    training_data: Annotated[str, typer.Option(help="What the model was trained on (recorded in the metadata).")] = "",
    license: Annotated[str, typer.Option(help="Licence of the weights.")] = "MIT",
    inference_dropout: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=0.99, help="Recommend this pre-net dropout at synthesis (used when the config sets none)."
        ),
    ] = None,
) -> None:
    """Final weights as safetensors, with config, mel/embedding specs, frontend, steps, data and licence."""
    from vcframe.checkpoints import save_safetensors
    from vcframe_tacotron.model import checkpoint_metadata

    config, network, saved = _load_run(run_dir)
    frontend = get_frontend(config.frontend)
    metadata = checkpoint_metadata(
        config,
        frontend.symbols,
        steps=saved["step"],
        training_data=training_data or saved["train"]["data"],
        license=license,
        r=network.r,
        **({"synthesis": {"inference_dropout": inference_dropout}} if inference_dropout is not None else {}),
    )
    save_safetensors(
        network.state_dict(), out, {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    )
    typer.echo(f"wrote {out} (step {saved['step']}, preset {config.preset}, r={network.r})")


if __name__ == "__main__":
    app()
