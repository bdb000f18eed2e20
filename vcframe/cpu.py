"""What the CPU offers a run: native bfloat16, the precision a run uses, its threads, how freed memory is kept.

One place for the vocoder trainers (HiFi-GAN, WaveRNN), the HiFi-GAN vocoder and the Tacotron synthesizer:
:func:`cpu_has_bf16` checks at run time whether bfloat16 pays (AMX or AVX-512 BF16), :func:`resolve_precision`
turns a ``--precision auto|fp32|bf16`` option into ``fp32`` or ``bf16``, :func:`inference_dtype` a component's
``precision = "auto" | "float32" | "bfloat16"`` option into a dtype, :func:`limit_threads` holds torch and
numpy's BLAS to ``--threads``, and :func:`keep_freed_memory` stops glibc from handing large freed blocks back to
the kernel, which a training step otherwise pays for as page faults on every activation it writes (measured on RTVC's
WaveRNN step, batch 32, 1 thread: 3.26 CPU s with glibc's default, 2.81 with freed memory kept).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

import torch

from vcframe.errors import ConfigError

#: The values ``--precision`` accepts.
PRECISIONS = ("auto", "fp32", "bf16")

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def _torch_cpu_flags() -> set[str]:
    """The flags torch's own CPU checks vouch for, in Linux's names (where /proc/cpuinfo cannot be read)."""
    checks = {
        "_is_avx2_supported": ("avx2", "fma"),
        "_is_avx512_supported": ("avx512f", "avx512bw", "avx512vl", "avx512dq"),
        "_is_vnni_supported": ("avx512_vnni",),
        "_is_avx512_bf16_supported": ("avx512_bf16",),
        "_is_amx_tile_supported": ("amx_tile", "amx_bf16", "amx_int8"),
    }
    flags: set[str] = set()
    for name, names in checks.items():
        check = getattr(torch.cpu, name, None)
        if check is not None:
            with contextlib.suppress(Exception):
                if check():
                    flags.update(names)
    return flags


@functools.lru_cache(maxsize=1)
def _detected_cpu_flags() -> frozenset[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    return frozenset(_torch_cpu_flags())


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (``"unknown CPU"`` where it cannot be read), for the
    benchmarks' reports."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return "unknown CPU"


def cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags in Linux's names (``avx2``, ``fma``, ``avx512f``, ``avx512_vnni``,
    ``avx512_bf16``, ``amx_tile``, ``amx_bf16``, ``amx_int8``, ...): /proc/cpuinfo's, else those torch's checks
    report. Flags listed in the environment variable ``VCFRAME_CPU_DISABLE`` (comma-separated) are left out, so a
    run (or a test) can take the path a CPU without them would take."""
    disabled = {name.strip().lower() for name in os.environ.get("VCFRAME_CPU_DISABLE", "").split(",") if name.strip()}
    return frozenset(flag for flag in _detected_cpu_flags() if flag not in disabled)


def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AMX tiles or AVX-512 BF16), where bfloat16 autocast pays."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


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


def inference_dtype(precision: str) -> torch.dtype:
    """The dtype a CPU inference path computes in for a component's ``precision`` option: ``float32``,
    ``bfloat16``, or ``auto`` = bfloat16 where the CPU computes it natively (:func:`cpu_has_bf16`), else float32.

    Raises ConfigError for any other value."""
    if precision not in ("auto", "float32", "bfloat16"):
        raise ConfigError(f"precision must be auto, float32 or bfloat16, got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if cpu_has_bf16() else torch.float32
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


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
