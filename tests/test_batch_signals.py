"""``vcframe batch`` stopped from outside: its workers die with it, and SIGTERM ends the run with its results.

The batch runs in a child process (``vcframe.cli.main`` over the dummy components and a vocoder that takes
0.3 s a row) with two local worker processes; the test signals the child and watches its workers in /proc.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc"),
    pytest.mark.slow,  # a child process starting two spawned workers: about 7 s each
]

REPO = Path(__file__).resolve().parents[1]
ROWS = 40
SCRIPT = textwrap.dedent(
    """
    import sys
    from vcframe.discovery import Registry, use_registry
    from vcframe.testing.dummy_specs import DUMMY_SPECS
    from tests._slow_vocoder import SLOW_VOCODER

    if __name__ == "__main__":  # the spawned workers import this file too
        registry = Registry()
        for spec in (*DUMMY_SPECS, SLOW_VOCODER):
            registry.register(spec, distribution="vcframe-core")
        use_registry(registry)
        from vcframe.cli import main

        main(["batch", sys.argv[1], "--out", sys.argv[2], "--workers", "2", "--threads", "1",
              "--encoder", "test-tone", "--synthesizer", "test-constant", "--vocoder", "test-slow"])
    """
)


@pytest.fixture
def start_batch(tmp_path: Path, speech_like_wav) -> Callable[[], tuple[subprocess.Popen[str], Path]]:
    def start() -> tuple[subprocess.Popen[str], Path]:
        speech_like_wav("voice.wav", seconds=1.0)
        manifest = tmp_path / "manifest.csv"
        manifest.write_text("text,reference\n" + "".join(f"Row number {i}.,voice.wav\n" for i in range(ROWS)))
        script = tmp_path / "batch.py"
        script.write_text(SCRIPT)
        environment = {key: value for key, value in os.environ.items() if not key.startswith("VCFRAME_")}
        environment.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", VCFRAME_DATA_DIR=str(tmp_path / "data"))
        out = tmp_path / "out"
        process = subprocess.Popen(
            [sys.executable, str(script), str(manifest), str(out)],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while len(_outputs(out)) < 2:  # the workers are up and cloning
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no row finished within 60 s"
            time.sleep(0.05)
        return process, out

    return start


def _outputs(out: Path) -> list[Path]:
    """Finished outputs: a worker's temporary (a dot-file ending in .wav, renamed when whole) is not one."""
    return sorted(path for path in out.glob("*.wav") if not path.name.startswith(".")) if out.is_dir() else []


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_workers_die_with_a_killed_batch(start_batch) -> None:
    process, out = start_batch()
    workers = _children(process.pid)
    assert len(workers) >= 2, workers
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    try:
        assert _gone_within(workers, 5.0), [pid for pid in workers if _alive(pid)]
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    written = len(_outputs(out))
    time.sleep(1.0)
    assert len(_outputs(out)) == written < ROWS  # nobody writes after the kill


def test_sigterm_ends_the_run_with_its_results_written(start_batch) -> None:
    process, out = start_batch()
    workers = _children(process.pid)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    seconds = time.monotonic() - started
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert seconds < 10 and _gone_within(workers, 5.0)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "interrupted by SIGTERM" in errors[0] and "Traceback" not in stderr, stderr
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [row["row"] for row in results] == list(range(1, ROWS + 1))
    done = [row for row in results if row["status"] == "done"]
    assert {row["status"] for row in results} == {"done", "interrupted"} and 2 <= len(done) < ROWS
    assert sorted(path.name for path in _outputs(out)) == sorted(row["out"] for row in done)
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")]  # no temporary left
    assert f"{len(done)} of {ROWS} rows done" in errors[0]
