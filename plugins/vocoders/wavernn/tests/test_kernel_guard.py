"""The kernel's build guard: a build killed half-way never blocks later loads."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from vcframe_wavernn.kernel import _build_guard

fcntl = pytest.importorskip("fcntl")


def test_leftover_torch_lock_is_removed(tmp_path) -> None:
    (tmp_path / "lock").write_text("")  # what torch leaves behind when a build is killed
    with _build_guard(tmp_path):
        assert not (tmp_path / "lock").exists()


def test_guard_held_by_a_killed_process_is_released(tmp_path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"handle = open({str(tmp_path / 'build.flock')!r}, 'a')\n"
            "fcntl.flock(handle, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with open(tmp_path / "build.flock", "a") as handle:  # really held: a non-blocking attempt fails
        with pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.kill()
    holder.wait()
    started = time.monotonic()
    with _build_guard(tmp_path):
        pass
    assert time.monotonic() - started < 5


def test_the_kernel_cache_is_keyed_by_the_torch_installation(tmp_path, monkeypatch) -> None:
    """Two environments with the same torch version must not share (and rebuild) one build folder."""
    from types import ModuleType

    import torch
    import torch.utils.cpp_extension as cpp_extension
    from vcframe_wavernn import kernel

    built: list[str] = []

    def fake_build(**kwargs) -> ModuleType:
        built.append(kwargs["build_directory"])
        return ModuleType(kwargs["name"])

    monkeypatch.setattr(cpp_extension, "load_inline", fake_build)
    monkeypatch.setattr(kernel, "_cache_dir", lambda: tmp_path)
    monkeypatch.delenv("VCFRAME_WAVERNN_NO_CPP", raising=False)
    for torch_file in (torch.__file__, "/other/venv/lib/site-packages/torch/__init__.py", torch.__file__):
        monkeypatch.setattr(kernel, "_LOADED", {})
        monkeypatch.setattr(torch, "__file__", torch_file)
        assert kernel.load_kernel() is not None
    assert len(built) == 3 and built[0] != built[1] and built[0] == built[2], built
