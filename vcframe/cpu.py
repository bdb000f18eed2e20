"""What the CPU offers a run: native bfloat16, the precision a run uses, its threads, how freed memory is kept.

One place for the vocoder trainers (HiFi-GAN, WaveRNN), the HiFi-GAN vocoder and the Tacotron synthesizer:
:func:`cpu_has_bf16` checks at run time whether bfloat16 pays (AMX or AVX-512 BF16), :func:`resolve_precision`
turns a ``--precision auto|fp32|bf16`` option into ``fp32`` or ``bf16``, :func:`inference_dtype` a component's
``precision = "auto" | "float32" | "bfloat16"`` option into a dtype, :func:`limit_threads` holds torch and
numpy's BLAS to ``--threads``, :func:`apply_torch_threads` gives a pipeline (``vcframe run``, ``vcframe serve``,
``Pipeline``) its torch thread count (:data:`DEFAULT_TORCH_THREADS` unless the user chose one), and
:func:`keep_freed_memory` stops glibc from handing large freed blocks back to the kernel, which a training step
otherwise pays for as page faults on every activation it writes (measured on RTVC's WaveRNN step, batch 32, 1
thread: 3.26 CPU s with glibc's default, 2.81 with freed memory kept).
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

#: torch's thread count for a pipeline when the user chose none (torch's own default is one per core). Measured on
#: a 2-core Intel Xeon (AVX-512, AMX), quiet machine (load 1.1-1.3), commit 0eb09df: through the server
#: (``benchmarks/serve.py --first-audio``, 3 sentences, 7.4 s of audio) 1 thread against 2 gave the first audio after
#: 175 / 258 ms (Griffin-Lim), 143 / 239 (HiFi-GAN), 265 / 332 (WaveRNN small), the whole stream in 1.04 / 1.23,
#: 0.53 / 0.83, 5.16 / 5.29 s; a cold one-sentence ``vcframe run`` took 2.66 / 2.75 s wall. The pipeline already
#: runs two threads of its own (synthesis of the next sentences beside the vocoder), so a second torch thread per
#: product only waits for a core.
DEFAULT_TORCH_THREADS = 1
#: Environment variables through which a user chooses torch's thread count (torch reads them when it starts).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

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


def torch_threads(requested: int | None = None) -> int | None:
    """The torch thread count a pipeline runs with: ``requested`` (``--threads``, the ``threads`` setting,
    ``Pipeline(threads=...)``) when given; None (torch's count left as it is) when ``OMP_NUM_THREADS`` or
    ``MKL_NUM_THREADS`` is set, which torch has read at start; else :data:`DEFAULT_TORCH_THREADS`.

    Raises ConfigError for a ``requested`` count under 1."""
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"threads must be at least 1, got {requested}")
        return requested
    if any(os.environ.get(name, "").strip() for name in THREAD_VARIABLES):
        return None
    return DEFAULT_TORCH_THREADS


def apply_torch_threads(requested: int | None = None) -> int:
    """Set torch's thread count to :func:`torch_threads` (``requested``) and return the count torch now has.

    The count holds for the calling thread and for every thread that runs its first torch operation later (torch
    keeps the count per thread from then on), so a pipeline sets it on the thread that builds it, before its
    worker threads start. A component that reads ``torch.get_num_threads()`` when it is built (WaveRNN's kernel
    without its own ``threads`` option) follows it; a component's own thread option (WaveRNN's and HiFi-GAN's
    ``threads``) still wins for that component."""
    count = torch_threads(requested)
    if count is not None and torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return torch.get_num_threads()


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
