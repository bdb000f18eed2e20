"""Reproducible randomness without leaking global state.

Components that draw random numbers (prenet dropout, sampling) accept ``seed``. ``seeded(seed)`` forks
torch's global RNG, seeds it, and restores the previous state on exit, so a seeded call is reproducible and
leaves the caller's random stream untouched. RTVC draws from the *global* generator, so bit-exact RTVC
behaviour needs the global stream, which is why this forks it rather than passing a Generator around.

torch's, numpy's and Python's global generators are shared by every thread of the process, so seeded blocks
hold one process-wide lock: a seeded block in one thread (a synthesizer in ``Pipeline.stream``'s worker thread)
and one in another (the vocoder in the caller's thread) run one after the other, never interleaved, and each
draws what it would draw alone. Components that draw from their own ``torch.Generator`` run in parallel freely.

A batch must give the same items as one call per item (the conformance kit checks it), so a component whose
items draw random numbers gives each item its own stream: :func:`item_generators`.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator

import numpy as np
import torch

#: held by every seeded block (re-entrant: seeded blocks nest within one thread)
_GLOBAL_RANDOM_STATE = threading.RLock()


@contextlib.contextmanager
def seeded(seed: int | None, *, devices: list[torch.device] | None = None) -> Iterator[None]:
    """Run the block with torch (CPU and given CUDA devices), numpy and random seeded to ``seed``.

    Args:
        seed: in [0, 2**63); numpy gets ``seed % 2**32``. With ``None`` nothing is changed: the block draws
            from the current streams.
        devices: CUDA devices whose generators are forked and seeded too (default: none, CPU only).

    On exit every generator is back where it was, so the caller's random stream is untouched::

        with seeded(seed):
            mask = torch.rand(frames.shape) < dropout   # the same mask for the same seed

    A seeded block holds a process-wide lock, so seeded blocks of other threads wait until it ends.
    """
    if seed is None:
        yield
        return
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    cuda_devices = [d for d in (devices or []) if d.type == "cuda"]
    with _GLOBAL_RANDOM_STATE:
        numpy_state = np.random.get_state()
        python_state = random.getstate()
        with torch.random.fork_rng(devices=[d.index or 0 for d in cuda_devices], enabled=True):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            try:
                yield
            finally:
                np.random.set_state(numpy_state)
                random.setstate(python_state)


def item_generators(seed: int | None, count: int, *, device: str | torch.device = "cpu") -> list[torch.Generator]:
    """One random generator per item of a batch, so that item ``i`` draws what a batch of one would draw.

    Args:
        seed: with a seed, every generator is seeded with it: a batch equals item-by-item calls with the same
            seed. ``None`` draws a fresh seed per item from torch's global generator (one draw of ``count``
            values), so unseeded calls differ from call to call and follow the caller's ``torch.manual_seed``.
        count: the batch size B (>= 0).
        device: where the generators live (default ``"cpu"``; CUDA sampling needs a generator on its device).

    Returns:
        B ``torch.Generator`` objects; draw item ``i``'s numbers with ``generator=generators[i]``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if seed is not None and not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    seeds = [seed] * count if seed is not None else [int(value) for value in torch.randint(0, 2**62, (count,))]
    return [torch.Generator(device=device).manual_seed(item_seed) for item_seed in seeds]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` picks CUDA when available, else CPU; other values are passed to ``torch.device``."""
    from vcframe.errors import ConfigError

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"unknown device {device!r}", hint="use auto, cpu, cuda or cuda:N") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available", hint="use --device cpu")
    return resolved
