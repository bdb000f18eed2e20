"""Helpers for testing trainers under ``torchrun`` (see :mod:`vcframe.distributed`).

* :func:`torchrun` launches ``python -m vcframe ARGS`` as N CPU processes (gloo) on this machine, optionally
  with ``--max-restarts`` and a rank killed at a given step (``kill_rank_at_step``), and returns the result.
* :func:`compare_states` gives the largest absolute difference between two state dicts (and checks keys and
  shapes), :func:`load_checkpoint` reads a training checkpoint safely.

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
