"""Helpers for testing trainers under ``torchrun`` (see :mod:`vcframe.distributed`).

* :func:`torchrun` launches ``python -m vcframe ARGS`` as N CPU processes (gloo) on this machine, optionally
  with ``--max-restarts`` and a rank killed at a given step (``kill_rank_at_step``), and returns the result.
* :func:`compare_states` gives the largest absolute difference between two state dicts (and checks keys and
  shapes), :func:`load_checkpoint` reads a training checkpoint safely.
* :func:`fit_args` / :func:`cli_options` build a trainer's ``fit`` arguments, :func:`torchrun_ok` launches and
  checks the exit code, :func:`check_equals_single_process` and :func:`check_killed_rank_resumes_exactly` are the
  two checks every trainer's distributed test makes (plugins add their own on the checkpoints they return).

Example (a plugin's test)::

    result = torchrun(["train", "encoder", "fit", "--data", data, "--run-dir", run, ...], nproc=2)
    assert result.returncode == 0, result.output
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcframe.distributed import KILL_ENV


@dataclass
class TorchrunResult:
    returncode: int
    output: str
    """stdout and stderr of torchrun and every rank, interleaved."""
    seconds: float


def torchrun(
    args: list[Any],
    *,
    nproc: int = 2,
    max_restarts: int = 0,
    kill_rank_at_step: tuple[int, int] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 300.0,
) -> TorchrunResult:
    """Run ``torchrun --standalone --nproc_per_node=NPROC --max-restarts=K -m vcframe ARGS`` with one CPU thread
    per rank. ``kill_rank_at_step=(rank, step)`` SIGKILLs that rank when it starts that step (first attempt)."""
    import time

    environment = {key: value for key, value in os.environ.items() if not key.startswith("VCFRAME_")}
    environment.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    if "VCFRAME_SHARED" in os.environ:
        environment["VCFRAME_SHARED"] = os.environ["VCFRAME_SHARED"]
    if kill_rank_at_step is not None:
        environment[KILL_ENV] = f"{kill_rank_at_step[0]}:{kill_rank_at_step[1]}"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        f"--max-restarts={max_restarts}",
        "--monitor-interval=0.1",
        "-m",
        "vcframe",
        *(str(arg) for arg in args),
    ]
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return TorchrunResult(completed.returncode, completed.stdout, time.perf_counter() - started)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A training checkpoint, loaded with ``weights_only=True``."""
    import torch

    loaded: dict[str, Any] = torch.load(Path(path), map_location="cpu", weights_only=True)
    return loaded


def compare_states(expected: dict[str, Any], actual: dict[str, Any]) -> float:
    """Largest absolute difference over every floating tensor of two state dicts (0.0 = bit-identical values);
    integer tensors (step counters) must be equal. Raises AssertionError on different keys or shapes."""
    import torch

    if sorted(expected) != sorted(actual):
        raise AssertionError(f"state keys differ: {sorted(set(expected) ^ set(actual))}")
    largest = 0.0
    for name, value in expected.items():
        other = actual[name]
        if value.shape != other.shape:
            raise AssertionError(f"{name}: shape {tuple(value.shape)} != {tuple(other.shape)}")
        if value.is_floating_point():
            largest = max(largest, float((value.double() - other.double()).abs().max()) if value.numel() else 0.0)
        elif not torch.equal(value, other):
            raise AssertionError(f"{name}: {value} != {other}")
    return largest


def cli_options(**options: Any) -> list[str]:
    """``--name value`` pairs for a CLI call, in the order given: ``cli_options(max_steps=6, preset="tiny")`` is
    ``["--max-steps", "6", "--preset", "tiny"]`` (underscores become dashes)."""
    pairs: list[str] = []
    for name, value in options.items():
        pairs += [f"--{name.replace('_', '-')}", str(value)]
    return pairs


def fit_args(data: str | os.PathLike[str], run_dir: str | os.PathLike[str], **options: Any) -> list[str]:
    """Arguments of a trainer's ``fit`` command: ``fit --data DATA --run-dir RUN_DIR`` and then ``options`` as
    :func:`cli_options` writes them."""
    return ["fit", "--data", str(data), "--run-dir", str(run_dir), *cli_options(**options)]


def torchrun_ok(args: list[Any], **kwargs: Any) -> TorchrunResult:
    """:func:`torchrun`, raising AssertionError (with every rank's output) unless it exits with 0."""
    result = torchrun(args, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"torchrun exited with {result.returncode}:\n{result.output}")
    return result


def check_equals_single_process(
    app: Any,
    args: list[str],
    single_dir: Path,
    distributed_dir: Path,
    *,
    tolerance: float,
    nproc: int = 2,
    state_keys: tuple[str, ...] = ("model_state",),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the trainer's typer ``app`` with ``args`` (writing to ``single_dir``) in this process and compare its
    checkpoint with the ``nproc``-process run's one in ``distributed_dir``: every rank's parameters must be identical
    (``replica_sha256``) and the state dicts under ``state_keys`` (a GAN's checkpoint holds several) differ from the
    single process's by at most ``tolerance``. Returns both checkpoints (single, distributed) for the plugin's own
    checks."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise AssertionError(f"single-process run exited with {result.exit_code}:\n{result.output}")
    single = load_checkpoint(Path(single_dir) / "checkpoint.pt")
    distributed = load_checkpoint(Path(distributed_dir) / "checkpoint.pt")
    digests = distributed["distributed"]["replica_sha256"]
    if len(digests) != nproc or len(set(digests)) != 1:
        raise AssertionError(f"ranks hold different parameters: {digests}")
    difference = max(compare_states(single[key], distributed[key]) for key in state_keys)
    if difference > tolerance:
        raise AssertionError(f"parameters differ from one process's by {difference:.3g} > {tolerance:.3g}")
    return single, distributed


def check_killed_rank_resumes_exactly(
    args: list[Any],
    run_dir: Path,
    uninterrupted_dir: Path,
    *,
    steps: int,
    kill_rank_at_step: tuple[int, int] = (1, 4),
    nproc: int = 2,
    state_keys: tuple[str, ...] = ("model_state",),
) -> tuple[TorchrunResult, dict[str, Any], dict[str, Any]]:
    """Run ``torchrun`` with ``args`` (writing to ``run_dir``), one restart allowed and a rank killed at a step,
    and check that it resumed (``restart 1: resuming``), reached ``steps`` and ended with exactly the state dicts
    (under ``state_keys``) of the uninterrupted run in ``uninterrupted_dir``. Returns the result and both
    checkpoints (killed, uninterrupted)."""
    result = torchrun_ok(args, nproc=nproc, max_restarts=1, kill_rank_at_step=kill_rank_at_step)
    if "restart 1: resuming" not in result.output:
        raise AssertionError(f"no restart after the killed rank:\n{result.output}")
    killed = load_checkpoint(Path(run_dir) / "checkpoint.pt")
    uninterrupted = load_checkpoint(Path(uninterrupted_dir) / "checkpoint.pt")
    if killed["step"] != steps:
        raise AssertionError(f"the resumed run stopped at step {killed['step']}, not {steps}")
    difference = max(compare_states(uninterrupted[key], killed[key]) for key in state_keys)
    if difference != 0.0:
        raise AssertionError(f"resumed parameters differ from the uninterrupted run's by {difference:.3g}")
    return result, killed, uninterrupted
