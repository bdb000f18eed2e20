"""Distributed training with ``torchrun`` and DistributedDataParallel: the plumbing every trainer shares.

A trainer runs unchanged as one process or under ``torchrun --nproc_per_node=N [--nnodes ...]``::

    with training_session(device) as session:       # reads torchrun's environment; gloo on CPU, NCCL on GPU
        model = session.wrap(network)                # DDP (+ batch norm synchronised across ranks)
        for batch in ShardedBatchSampler(sampler, session):   # every rank: the same global batch, its share
            with session.batch_randomness(batch):    # dropout masks drawn for the global batch, sliced
                loss = criterion(model(...)) * batch.weight
            ...
            session.on_main(save_checkpoint)         # rank 0 writes (atomically), then every rank waits

Design (why each piece exists):

* **Global batch.** ``--batch-size`` and friends mean the *global* batch. Every rank draws the same global
  batch from the same seeded sampler and keeps a contiguous share (:meth:`TrainingSession.shard`), so the
  data order, the checkpointed sampler state and ``--resume`` are those of a single-process run, whatever
  the number of ranks. DDP averages gradients over ranks; :attr:`BatchShard.weight` rescales a per-item
  mean loss so that average equals the single-process gradient even when shares are unequal.
* **Batch norm** statistics are computed over the global batch (:class:`SyncedBatchNorm`, which unlike
  ``torch.nn.SyncBatchNorm`` works with gloo on CPU too).
* **Randomness.** All ranks keep the same torch/numpy/python streams (the single-process seed). Random masks
  shaped by the batch (dropout, zoneout) are drawn for the whole global batch and sliced to the rank's rows
  inside :meth:`TrainingSession.batch_randomness` (:func:`bernoulli_mask`, :func:`dropout`), so a
  distributed run draws exactly the masks of the single-process run. Outside that context both functions
  are plain torch calls, so single-process runs and their checkpoints are unchanged.
* **Rank 0 only** writes logs, plots, samples and checkpoints (:meth:`TrainingSession.on_main`, which is
  followed by a barrier so no rank runs ahead of a checkpoint being written). Checkpoints of a distributed
  run also hold every rank's random states (``rng_ranks``) and a digest of every rank's parameters, checked
  equal at each save (:meth:`TrainingSession.checkpoint_extras`).
* **Restarts.** ``torchrun --max-restarts=K`` restarts every rank when one dies; a restarted rank resumes
  from the last checkpoint by itself (:meth:`TrainingSession.should_resume`), which gives exactly the
  uninterrupted result. torchrun keeps its key-value store across restarts, so each attempt's process group
  uses its own key prefix (else a new rank may read the address of a killed one and fail to connect).
* **Shutdown.** With torch 2.13 and gloo, a finished DDP run aborts at interpreter exit in about a third of
  runs if the DDP object outlives ``destroy_process_group()`` (its reducer is torn down after the process
  group). :meth:`TrainingSession.close` drops the wrapped models, garbage-collects, and only then destroys
  the group; :func:`training_session` does this on every exit path.

Testing aid: ``VCFRAME_KILL_RANK_AT_STEP=RANK:STEP`` makes that rank SIGKILL itself when
:meth:`TrainingSession.fault_point` is reached for ``STEP`` in the first attempt (``torchrun`` restart 0).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import gc
import hashlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vcframe.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

#: Testing aid: ``RANK:STEP`` -> that rank kills itself (SIGKILL) at that step in torchrun's first attempt.
KILL_ENV = "VCFRAME_KILL_RANK_AT_STEP"

#: (global batch size, first row, end row) of the batch being processed, inside ``batch_randomness``.
_BATCH_ROWS: contextvars.ContextVar[tuple[int, int, int] | None] = contextvars.ContextVar(
    "vcframe_batch_rows", default=None
)


# -- batches ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchShard(Generic[T]):
    """One rank's share of a global batch.

    Attributes:
        items: this rank's items (a contiguous slice of ``batch``).
        batch: the whole global batch, identical on every rank.
        start, stop: the slice of ``batch`` that is ``items``.
        world_size: number of ranks.
        index: position of the batch in its epoch (from :class:`ShardedBatchSampler`).
    """

    items: list[T]
    batch: list[T]
    start: int
    stop: int
    world_size: int = 1
    index: int = 0

    @property
    def weight(self) -> float:
        """Factor for a loss that is a mean over this rank's items, so that DDP's average over ranks equals
        the mean over the global batch: ``len(items) * world_size / len(batch)`` (1.0 for equal shares)."""
        return len(self.items) * self.world_size / len(self.batch)

    def __len__(self) -> int:
        return len(self.items)


def shard_bounds(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous, as-equal-as-possible share ``[start, stop)`` of ``total`` items for ``rank``."""
    return (rank * total) // world_size, ((rank + 1) * total) // world_size


class ShardedBatchSampler(Generic[T]):
    """Rank-aware wrapper of any batch sampler: every rank iterates the same global batches and gets its share.

    ``batch_sampler`` is any iterable of batches (sequences of indices or items): a ``torch`` BatchSampler,
    a length-bucketing sampler, an endless random sampler. Its ``set_epoch`` (if it has one) is forwarded,
    so epoch-seeded samplers give every rank the same order; ``skip`` starts mid-epoch (for ``--resume``).
    A batch with fewer items than ranks (the short last batch of an epoch) cannot be shared: every rank skips
    it, and rank 0 says so. Each shard's ``index`` is its batch's position in the epoch (skipped ones count).
    """

    def __init__(self, batch_sampler: Iterable[Sequence[T]], session: TrainingSession) -> None:
        self.batch_sampler = batch_sampler
        self.session = session
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch (forwarded to the wrapped sampler) and skip its first ``skip`` batches."""
        set_epoch = getattr(self.batch_sampler, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        self.skip = skip

    def __len__(self) -> int:
        return len(self.batch_sampler) - self.skip  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[BatchShard[T]]:
        for index, batch in enumerate(self.batch_sampler):
            if index < self.skip:
                continue
            if len(batch) < self.session.world_size:
                self.session.echo(
                    f"batch {index} ({len(batch)} items) skipped: fewer items than the {self.session.world_size} "
                    "processes"
                )
                continue
            yield dataclasses.replace(self.session.shard(batch), index=index)


# -- randomness shaped by the batch ----------------------------------------------------------------------


def _global_rows(local_rows: int) -> tuple[int, int, int] | None:
    rows = _BATCH_ROWS.get()
    if rows is None:
        return None
    total, start, stop = rows
    if stop - start != local_rows:
        raise RuntimeError(
            f"a random mask for {local_rows} rows was asked for inside batch_randomness of a {stop - start}-row "
            "shard; only tensors whose first dimension is the batch can use the batch-sliced masks"
        )
    return rows


def bernoulli_mask(size: Sequence[int], p: float, *, device: torch.device | str | None = None) -> torch.Tensor:
    """``torch.zeros(size).bernoulli_(p)``; inside :meth:`TrainingSession.batch_randomness` the mask is drawn
    for the whole global batch (first dimension) and this rank's rows are returned."""
    rows = _global_rows(int(size[0]))
    if rows is None:
        return torch.zeros(tuple(size), device=device).bernoulli_(p)
    total, start, stop = rows
    return torch.zeros((total, *size[1:]), device=device).bernoulli_(p)[start:stop]


def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """``F.dropout(x, p, training=True)`` (``p = 0`` draws nothing); inside
    :meth:`TrainingSession.batch_randomness` the mask is drawn for the global batch (first dimension of ``x``)
    and sliced, which on CPU gives exactly the single-process masks."""
    if p <= 0:
        return x
    rows = _global_rows(x.size(0))
    if rows is None:
        return F.dropout(x, p, training=True)
    total, start, stop = rows
    # what F.dropout computes on CPU: noise = bernoulli(1 - p) / (1 - p); x * noise
    noise = torch.empty((total, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1 - p)[start:stop]
    noise.div_(1 - p)
    return x * noise


# -- collectives with gradients --------------------------------------------------------------------------


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of every rank's input is the sum of the ranks' output gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        summed = tensor.clone()
        dist.all_reduce(summed)
        return summed

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        summed = grad_output.clone()
        dist.all_reduce(summed)
        return summed


class _GatherRows(torch.autograd.Function):
    """Concatenate every rank's rows (equal counts) in rank order; the gradient of a rank's rows is the sum over
    ranks of the gradient of those rows."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        world_size, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rows = (rank * tensor.size(0), (rank + 1) * tensor.size(0))
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        summed = grad_output.contiguous().clone()
        dist.all_reduce(summed)
        start, stop = ctx.rows
        return summed[start:stop]


def _synchronised() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over ranks, differentiable (identity when not distributed)."""
    return _AllReduceSum.apply(tensor) if _synchronised() else tensor  # type: ignore[no-untyped-call]


# -- batch norm over the global batch ---------------------------------------------------------------------


class SyncedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics (and their gradients) cover the global batch of all ranks.

    Same parameters, buffers and state-dict keys as the ``BatchNorm1d/2d/3d`` it replaces; in eval mode or
    without a process group of 2+ ranks it is exactly ``_BatchNorm.forward``. Works with gloo (CPU) and NCCL.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and _synchronised()):
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.size(1)
        dims = [0, *range(2, input.dim())]
        shape = [1, channels] + [1] * (input.dim() - 2)
        local_count = input.new_tensor([input.numel() / channels])
        totals = all_reduce_sum(torch.cat([input.sum(dims), local_count]))
        count = totals[-1]
        mean = totals[:-1] / count
        centered = input - mean.view(shape)
        variance = all_reduce_sum(centered.pow(2).sum(dims)) / count
        output = centered * torch.rsqrt(variance + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked.item())
                unbiased = variance.detach() * (count / (count - 1).clamp_min(1))
                self.running_mean.mul_(1 - factor).add_(mean.detach() * factor)
                self.running_var.mul_(1 - factor).add_(unbiased * factor)
        return output


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm1d/2d/3d`` inside ``module`` by a :class:`SyncedBatchNorm` sharing its parameter
    and buffer tensors (so an optimizer built before keeps working and state-dict keys do not change)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, SyncedBatchNorm | nn.SyncBatchNorm
    ):
        synced = SyncedBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            synced.weight = module.weight
            synced.bias = module.bias
        synced.running_mean = module.running_mean
        synced.running_var = module.running_var
        synced.num_batches_tracked = module.num_batches_tracked
        synced.train(module.training)
        return synced
    for name, child in list(module.named_children()):
        converted = convert_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module


def prepare_run_folder(run_dir: Path, step: int, logs: Sequence[str] = ()) -> list[str]:
    """Get a trainer's run folder ready to train from ``step`` (0, or the step of the checkpoint it resumes).

    * Temporaries of checkpoint writes that a kill cut short (``.checkpoint*.pt.*``: up to a whole checkpoint
      each, left beside ``checkpoint.pt`` and its ``checkpoint_<step>.pt`` backups) are deleted.
    * Each log of ``logs`` (names in ``run_dir``: JSON lines with a ``step`` field, or CSV with a header and
      the step in its first column) keeps only its rows up to ``step``: the rows after the checkpoint come from a
      run that died before saving them, and training from ``step`` writes them again. A torn last row (no
      newline: killed mid-write) goes too. A log that needs no cut is not touched; a cut one is rewritten
      atomically.

    Runs on the main rank only (``session.on_main(prepare_run_folder, ...)``). Returns one line per change.
    """
    from vcframe._io import atomic_write, remove_temporaries

    notes = []
    removed = remove_temporaries(run_dir, ["checkpoint*.pt"], patterns=True)
    if removed:
        notes.append(f"removed {removed} stale checkpoint temporar{'y' if removed == 1 else 'ies'} of a killed run")
    for name in logs:
        path = run_dir / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        csv = path.suffix == ".csv"
        header = lines[:1] if csv else []
        rows = lines[len(header) :]
        kept = [row for row in rows if row.endswith("\n") and _log_step(row, csv) is not None]
        kept = [row for row in kept if (_log_step(row, csv) or 0) <= step]
        if len(kept) == len(rows):
            continue
        with atomic_write(path, "w") as stream:
            stream.write("".join([*header, *kept]))
        notes.append(f"{name}: {len(rows) - len(kept)} rows after step {step} removed (training writes them again)")
    return notes


def _log_step(row: str, csv: bool) -> int | None:
    """The step of one log row (None for a row that cannot be read: torn by a kill)."""
    try:
        step = int(row.split(",", 1)[0]) if csv else json.loads(row)["step"]
    except (ValueError, KeyError, TypeError):
        return None
    return step if isinstance(step, int) else None


class TrainingClock:
    """Training wall time that adds up over resumed runs and leaves out pauses.

    Args:
        saved: the resumed checkpoint (its ``train_seconds`` is where this run's count starts), or None.

    A trainer logs :meth:`seconds` and stores it as ``train_seconds`` in every checkpoint, so the time a run
    stretched over several sessions took is read from its last log line. After :meth:`pause_on_sigtstp`, a
    run paused with ``kill -TSTP PID`` (or Ctrl-Z) and resumed with ``kill -CONT PID`` (or ``fg``) does not
    count the pause; ``kill -STOP`` cannot be caught, so a pause made with it is counted.
    """

    def __init__(self, saved: Mapping[str, Any] | None = None) -> None:
        self.before = float((saved or {}).get("train_seconds", 0.0))
        self.started = time.perf_counter()
        self.paused = 0.0

    def seconds(self) -> float:
        """Seconds of training so far: the checkpoint's plus this process's, less its pauses."""
        return self.before + time.perf_counter() - self.started - self.paused

    def pause_on_sigtstp(self) -> None:
        """Handle SIGTSTP by stopping the process and, once it is continued, subtracting the pause.

        The handler stops the process as SIGTSTP's default action does, so it may stay installed after
        training. Python signal handlers live in the main thread: called from another thread, or where the
        platform has no SIGTSTP (Windows), this does nothing. The handler runs between Python operations, so a
        pause starts when the running torch operation returns.
        """
        if not hasattr(signal, "SIGTSTP") or threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTSTP, self._stop_until_continued)

    def _stop_until_continued(self, signum: int, frame: object) -> None:
        stopped = time.perf_counter()
        os.kill(os.getpid(), signal.SIGSTOP)  # returns after SIGCONT; the monotonic clock ran meanwhile
        self.paused += time.perf_counter() - stopped


# -- the session ------------------------------------------------------------------------------------------


def parameter_digest(module: nn.Module) -> str:
    """sha256 of every parameter's bytes, in order (equal digests = bit-identical replicas)."""
    digest = hashlib.sha256()
    for name, parameter in module.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class TrainingSession:
    """Where this process stands in a (possibly one-process) training job; see the module docstring.

    Attributes:
        rank, world_size, local_rank: torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (0, 1, 0 alone).
        device: the device this rank trains on (``cuda:LOCAL_RANK`` on GPU jobs).
        backend: ``gloo`` or ``nccl`` when a process group is up, else None.
        restart_count: torchrun's ``TORCHELASTIC_RESTART_COUNT`` (0 on the first attempt).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    restart_count: int = 0
    _wrapped: list[nn.Module] = field(default_factory=list, repr=False)

    @property
    def distributed(self) -> bool:
        """True when a process group is up (launched by torchrun), even with one rank."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, plots and writes checkpoints."""
        return self.rank == 0

    # -- model -------------------------------------------------------------------------------------------

    def wrap(self, module: nn.Module, *, find_unused_parameters: bool = False) -> nn.Module:
        """``module`` itself alone; under torchrun its batch norms synchronised and the whole in DDP.

        Keep using ``module`` for attributes, evaluation and ``state_dict()`` (no ``module.`` prefix); call the
        returned object for training forward passes.
        """
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        convert_batchnorm(module)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        wrapped = DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters)
        self._wrapped.append(wrapped)
        return wrapped

    # -- data --------------------------------------------------------------------------------------------

    def shard(self, batch: Sequence[T]) -> BatchShard[T]:
        """This rank's contiguous share of the global ``batch``."""
        items = list(batch)
        if len(items) < self.world_size:
            raise ConfigError(
                f"a batch of {len(items)} items cannot be shared by {self.world_size} ranks",
                hint="use a batch size of at least the number of processes (and a data set that fills it)",
            )
        start, stop = shard_bounds(len(items), self.rank, self.world_size)
        return BatchShard(items[start:stop], items, start, stop, self.world_size)

    @contextlib.contextmanager
    def batch_randomness(self, shard: BatchShard[Any]) -> Iterator[None]:
        """Inside, :func:`dropout` and :func:`bernoulli_mask` draw the global batch's masks and slice this rank's
        rows (no effect in a one-process run: the local batch is the global one)."""
        if not self.distributed:
            yield
            return
        token = _BATCH_ROWS.set((len(shard.batch), shard.start, shard.stop))
        try:
            yield
        finally:
            _BATCH_ROWS.reset(token)

    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's rows concatenated in rank order (equal row counts), differentiable: the loss can then be
        computed over the global batch (GE2E's similarity matrix needs every speaker)."""
        if not _synchronised():
            return tensor
        return _GatherRows.apply(tensor)  # type: ignore[no-untyped-call,no-any-return]

    def weighted_mean(self, values: Mapping[str, float | torch.Tensor], weight: float) -> dict[str, float]:
        """``sum_r weight_r * value_r / sum_r weight_r`` of each value over ranks (for logging global losses)."""
        names = list(values)
        local = [float(values[name]) for name in names]
        if not _synchronised():
            return dict(zip(names, local, strict=True))
        packed = torch.tensor([*(v * weight for v in local), weight], dtype=torch.float64)
        dist.all_reduce(packed)
        return {name: float(packed[i] / packed[-1]) for i, name in enumerate(names)}

    def gather_objects(self, value: Any) -> list[Any]:
        """``value`` from every rank, in rank order (``[value]`` alone)."""
        if not self.distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def on_main(self, function: Callable[..., R], *args: Any, **kwargs: Any) -> R | None:
        """Run ``function`` on rank 0 only, then wait for every rank (so a checkpoint is complete before any rank
        goes on). Every rank must call this at the same point."""
        result = function(*args, **kwargs) if self.is_main else None
        self.barrier()
        return result

    def echo(self, text: str) -> None:
        """Print on rank 0 only."""
        if self.is_main:
            print(text, flush=True)

    # -- checkpoints and restarts ------------------------------------------------------------------------

    def checkpoint_extras(self, rng_state: Any, module: nn.Module) -> dict[str, Any]:
        """Extra checkpoint entries of a distributed run (``{}`` alone, so one-process checkpoints keep their
        format): every rank's random states and parameter digest. Collective; raises if replicas differ."""
        if not self.distributed:
            return {}
        gathered = self.gather_objects((rng_state, parameter_digest(module)))
        digests = [digest for _, digest in gathered]
        if len(set(digests)) != 1:
            raise RuntimeError(f"model replicas differ between ranks (parameter sha256 per rank: {digests})")
        return {
            "rng_ranks": [state for state, _ in gathered],
            "distributed": {"world_size": self.world_size, "replica_sha256": digests},
        }

    def rng_state_of(self, saved: Mapping[str, Any], key: str = "rng") -> Any:
        """This rank's random states from a checkpoint: its own entry of ``rng_ranks`` when the checkpoint was
        written by a job of the same size, else ``saved[key]`` (rank 0's, or the one-process run's)."""
        per_rank = saved.get("rng_ranks")
        if self.distributed and per_rank is not None and len(per_rank) == self.world_size:
            return per_rank[self.rank]
        return saved[key]

    def should_resume(self, requested: bool, checkpoint: Path) -> bool:
        """``--resume`` as given, or True when torchrun restarted this job and ``checkpoint`` exists."""
        if requested:
            return True
        restarted = self.restart_count > 0 and checkpoint.is_file()
        if restarted:
            self.echo(f"restart {self.restart_count}: resuming from {checkpoint}")
        return restarted

    def fault_point(self, step: int) -> None:
        """Testing aid: SIGKILL this rank at ``step`` if ``VCFRAME_KILL_RANK_AT_STEP`` names it (first attempt)."""
        wanted = os.environ.get(KILL_ENV)
        if not wanted or self.restart_count > 0:
            return
        rank, _, at_step = wanted.partition(":")
        if int(rank) == self.rank and int(at_step) == step:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    # -- shutdown ----------------------------------------------------------------------------------------

    def close(self, *, finished: bool = False) -> None:
        """Drop the DDP wrappers, collect garbage, then destroy the process group (the order avoids gloo aborts
        at exit). ``finished``: every rank ended its work normally, so they first meet at a barrier and leave the
        group together; a rank that tears its connections down while a peer's are still in use (rank 0 still
        writing the last checkpoint) can abort that peer at exit ("terminate called without an active
        exception"). After an error there is no barrier: a peer may be gone, and torchrun stops the others."""
        self._wrapped.clear()
        gc.collect()
        if self.distributed and dist.is_initialized():
            if finished:
                dist.barrier()
            dist.destroy_process_group()
        self.backend = None


def _launched_by_torchrun() -> bool:
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def start_session(device: str | torch.device | None = "cpu") -> TrainingSession:
    """A :class:`TrainingSession`: alone, ``device`` resolved as usual; under torchrun, the process group is
    initialised (NCCL for CUDA devices, gloo otherwise) and a CUDA device becomes ``cuda:LOCAL_RANK``."""
    from vcframe.seeding import resolve_device

    restart_count = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if not _launched_by_torchrun():
        return TrainingSession(device=resolve_device(device), restart_count=restart_count)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        if resolved.index not in (None, local_rank) and world_size > 1:
            raise ConfigError(
                f"--device {device} under torchrun: each rank uses cuda:LOCAL_RANK",
                hint="pass --device cuda (choose GPUs with CUDA_VISIBLE_DEVICES)",
            )
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    if not dist.is_initialized():
        # torchrun keeps one store across restarts: keys of a killed attempt (a dead rank's address) would be read
        # by the next one, so every attempt gets its own key space
        from torch.distributed import PrefixStore, rendezvous  # type: ignore[attr-defined]

        store, _, _ = next(rendezvous("env://"))
        attempt_store = PrefixStore(f"vcframe/attempt_{restart_count}/", store)
        dist.init_process_group(backend=backend, store=attempt_store, rank=rank, world_size=world_size)
    return TrainingSession(rank, world_size, local_rank, resolved, backend, restart_count)


@contextlib.contextmanager
def training_session(device: str | torch.device | None = "cpu") -> Iterator[TrainingSession]:
    """:func:`start_session`, closed on every exit path (see :meth:`TrainingSession.close`).

    Run the training loop in a function called inside this block, so its locals (the DDP model) are gone
    before the session closes.
    """
    session = start_session(device)
    finished = False
    try:
        yield session
        finished = True
    except BaseException as error:
        # the traceback's frames hold the training loop's locals (the DDP model): release them first
        if error.__traceback__ is not None:
            traceback.clear_frames(error.__traceback__)
        raise
    finally:
        session.close(finished=finished)


def run_fit(fit: Callable[..., T], device: str | torch.device | None, arguments: Mapping[str, Any]) -> T:
    """``fit(session, **arguments)`` inside :func:`training_session` (``device``): the body of a trainer's ``fit``
    command, which passes its own parameters (``dict(locals())`` taken first) as ``arguments``."""
    with training_session(device) as session:
        return fit(session, **arguments)
