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
