"""vcframe.cpu: the precision a trainer runs at, and the allocator setting that keeps freed memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vcframe.cpu as cpu
from vcframe.errors import ConfigError


def test_precision_resolves_and_auto_follows_the_cpu(monkeypatch):
    assert cpu.resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert cpu.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert cpu.resolve_precision("auto", torch.device("cpu")) == ("bf16" if cpu.cpu_has_bf16() else "fp32")
    monkeypatch.setattr(cpu, "cpu_has_bf16", lambda: False)
    assert cpu.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(cpu, "cpu_has_bf16", lambda: True)
    assert cpu.resolve_precision("auto", torch.device("cpu")) == "bf16"
    with pytest.raises(ConfigError, match="--precision must be auto, fp32 or bf16, got 'fp16'"):
        cpu.resolve_precision("fp16", torch.device("cpu"))


def test_cpu_model_names_the_cpu_and_says_so_where_it_cannot(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Test CPU 9000 @ 3.00GHz\nflags\t\t: fpu avx2\n")
    monkeypatch.setattr(cpu, "Path", lambda path: cpuinfo if path == "/proc/cpuinfo" else Path(path))
    assert cpu.cpu_model() == "Test CPU 9000 @ 3.00GHz"
    cpuinfo.unlink()
    assert cpu.cpu_model() == "unknown CPU"


FAULTS_OF_A_SECOND_ALLOCATION = """
import resource, sys, torch
from vcframe.cpu import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
first = torch.ones(16 * 2**20)  # 64 MB, written
del first
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
second = torch.ones(12 * 2**20)  # 48 MB: fits in the freed block whatever was allocated after it
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt; elsewhere nothing changes")
def test_kept_memory_is_reused_without_page_faults():
    """A 64 MB tensor freed, then a 48 MB one: glibc unmaps the first and the second faults every page in again
    (12,288 pages of 4 KB); with freed memory kept, the second reuses the first's pages (observed: 0 faults in 10
    runs; an allocation as large as the freed block can miss it when a small one was made after it)."""
    faults = {
        mode: int(subprocess.check_output([sys.executable, "-c", FAULTS_OF_A_SECOND_ALLOCATION, mode], text=True))
        for mode in ("default", "keep")
    }
    assert faults["default"] > 6000, faults
    assert faults["keep"] < faults["default"] / 10, faults


def test_torch_threads_default_to_one_unless_the_user_chose(monkeypatch):
    for name in cpu.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert cpu.torch_threads() == cpu.DEFAULT_TORCH_THREADS == 1
    assert cpu.torch_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # torch has read it: leave its count alone
    assert cpu.torch_threads() is None
    assert cpu.torch_threads(2) == 2  # an explicit count still wins
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    assert cpu.torch_threads() is None
    with pytest.raises(ConfigError, match="threads must be at least 1, got 0"):
        cpu.torch_threads(0)


def test_apply_torch_threads_sets_the_count_torch_then_has(torch_threads, monkeypatch):
    calls = torch_threads(8)  # torch's default on an 8-core machine, whatever this one has
    assert cpu.apply_torch_threads() == 1 and calls == [1]
    assert cpu.apply_torch_threads(3) == 3 and calls == [1, 3]
    assert cpu.apply_torch_threads(3) == 3 and calls == [1, 3]  # already so: not set again
    calls = torch_threads(6)
    monkeypatch.setenv("OMP_NUM_THREADS", "6")
    assert cpu.apply_torch_threads() == 6 and calls == []
