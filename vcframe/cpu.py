"""What the CPU offers a run: native bfloat16, the precision a run uses, its threads, how freed memory is kept.

One place for the vocoder trainers (HiFi-GAN, WaveRNN) and the HiFi-GAN vocoder: :func:`cpu_has_bf16` checks at
run time whether bfloat16 pays (AMX or AVX-512 BF16), :func:`resolve_precision` turns a ``--precision
auto|fp32|bf16`` option into ``fp32`` or ``bf16``, :func:`limit_threads` holds torch and numpy's BLAS to
``--threads``, and :func:`keep_freed_memory` stops glibc from handing large freed blocks back to the kernel,
which a training step otherwise pays for as page faults on every activation it writes (measured on RTVC's
WaveRNN step, batch 32, 1 thread: 3.26 CPU s with glibc's default, 2.81 with freed memory kept).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from pathlib import Path

import torch

from vcframe.errors import ConfigError

#: The values ``--precision`` accepts.
PRECISIONS = ("auto", "fp32", "bf16")

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AMX tiles or AVX-512 BF16), where bfloat16 autocast pays."""
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(torch.cpu, name, None)
        if check is not None:
            with contextlib.suppress(Exception):
                if check():
                    return True
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text().split()
        return "amx_bf16" in flags or "avx512_bf16" in flags
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``--precision`` (``auto``: bf16 where the device computes it natively).

    Raises ConfigError for anything but ``auto``, ``fp32`` and ``bf16``. ``bf16`` asked for explicitly is
    honoured everywhere (emulated, and slower, where the CPU lacks it)."""
    if requested not in PRECISIONS:
        raise ConfigError(f"--precision must be auto, fp32 or bf16, got {requested!r}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def limit_threads(count: int) -> None:
    """``count`` threads for torch and for the BLAS numpy uses (through threadpoolctl, when installed): loading
    computes every clip's mel with numpy, whose OpenBLAS would otherwise spin a thread per core."""
    torch.set_num_threads(count)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=count)


def keep_freed_memory() -> bool:
    """Keep freed memory in the process for reuse instead of returning it to the kernel (glibc only).

    glibc serves blocks over 32 MB with ``mmap`` and unmaps them when freed, so every large activation a training
    step writes lands on fresh pages, each one faulted in (zeroed by the kernel) on first touch; the next step
    does it all again. With ``mmap`` off for allocations and the heap never trimmed, the second step reuses the
    first step's pages. The process keeps its peak memory until it exits, which a training run does anyway.
    Returns False where the C library has no ``mallopt`` (not glibc), changing nothing.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trimmed = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # never give the top of the heap back
    unmapped = mallopt(_M_MMAP_MAX, 0)  # large blocks from the heap too, so they are reused
    return bool(trimmed and unmapped)
