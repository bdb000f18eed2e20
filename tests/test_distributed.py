"""vcframe.distributed helpers that need no process group (the multi-process behaviour is tested by each
trainer's test_distributed.py)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vcframe import distributed
from vcframe.distributed import TrainingClock, TrainingSession, shard_bounds


def test_training_clock_starts_from_the_checkpoint() -> None:
    fresh = TrainingClock(None)
    resumed = TrainingClock({"train_seconds": 3600.0, "step": 100})
    older = TrainingClock({"step": 100})  # checkpoints written before the clock existed count from zero
    time.sleep(0.05)
    assert 0.05 <= fresh.seconds() < 5
    assert 3600.05 <= resumed.seconds() < 3605
    assert 0.05 <= older.seconds() < 5


def test_shard_bounds_cover_the_batch_once() -> None:
    for total in (1, 5, 16):
        for world_size in (1, 2, 3):
            spans = [shard_bounds(total, rank, world_size) for rank in range(world_size)]
            covered = [index for start, stop in spans for index in range(start, stop)]
            assert covered == list(range(total)), (total, world_size, spans)


@pytest.mark.skipif(not hasattr(signal, "SIGTSTP"), reason="SIGTSTP is POSIX-only")
def test_training_clock_leaves_out_a_sigtstp_pause() -> None:
    """A run paused with SIGTSTP and continued with SIGCONT does not count the pause; the process did stop."""
    script = (
        "import sys, time\n"
        "from vcframe.distributed import TrainingClock\n"
        "clock = TrainingClock(None)\n"
        "clock.pause_on_sigtstp()\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "print(f'{clock.seconds():.3f} {time.perf_counter() - clock.started:.3f}', flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTSTP)
        # the handler runs once the interpreter gets control back (readline is interrupted by the signal)
        deadline = time.monotonic() + 10
        while Path("/proc").is_dir() and _process_state(child.pid) != "T":
            assert time.monotonic() < deadline, "SIGTSTP did not stop the process"
            time.sleep(0.01)
        time.sleep(1.0)
        child.send_signal(signal.SIGCONT)
        child.stdin.write("\n")
        child.stdin.flush()
        counted, elapsed = (float(value) for value in child.stdout.readline().split())
    finally:
        child.kill()
        child.wait()
    assert elapsed >= 1.0
    assert counted < elapsed - 0.9, (counted, elapsed)


def _process_state(pid: int) -> str:
    """The one-letter state in /proc/PID/stat ('T' = stopped), or '' where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("fails", [False, True])
def test_ranks_leave_the_group_together_after_a_normal_end(monkeypatch: pytest.MonkeyPatch, fails: bool) -> None:
    """A finished job's ranks meet at a barrier before the group is destroyed (no rank tears its connections down
    while a peer still uses them); after an error there is none (the peer may be gone), and the group is still
    destroyed."""
    calls: list[str] = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append("destroy"))
    session = TrainingSession(rank=1, world_size=2, backend="gloo")
    monkeypatch.setattr(distributed, "start_session", lambda device: session)
    with pytest.raises(RuntimeError, match="a failed step") if fails else contextlib.nullcontext():
        with distributed.training_session("cpu"):
            if fails:
                raise RuntimeError("a failed step")
    assert calls == (["destroy"] if fails else ["barrier", "destroy"]) and session.backend is None
