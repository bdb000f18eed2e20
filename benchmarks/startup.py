"""Cold start of ``vcframe run``: one sentence with the default bundle, every run a fresh process.

Run by hand:  .venv/bin/python benchmarks/startup.py [--runs 5] [--threads 2,1] [--reference clip.wav]

For each thread count (``OMP_NUM_THREADS``; torch's default is one thread per core) the runs are interleaved, so
that a background job slows every configuration alike. Per process: wall seconds, CPU seconds (user + sys, the
robust figure on a shared machine), peak resident memory, and the load average when it started. Then one run
under ``python -X importtime``: the summed cumulative time of the top-level imports, the number of modules, and
which heavy packages the run loaded (librosa, numba and scipy should not be among them). Prints markdown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("VCFRAME_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
DEFAULT_REFERENCE = SHARED / "data" / "ljspeech" / "LJSpeech-mini" / "wavs" / "LJ001-0002.wav"
#: Packages whose presence in a run is worth a line: the ones the run path used to import, and torch.
WATCHED = ("torch", "librosa", "numba", "scipy", "soxr", "safetensors")


def run_command(reference: Path, text: str, out: Path) -> list[str]:
    """The ``vcframe run`` command line of one cold run."""
    return [sys.executable, "-m", "vcframe", "run", "--reference", str(reference), "--text", text, "--out", str(out)]


def timed_run(command: list[str], threads: int) -> dict[str, float]:
    """Wall and CPU seconds, peak RSS (MiB) and starting load average of one process running ``command``."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"vcframe run failed: {process.stderr.read().decode() if process.stderr else ''}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "rss_mib": usage.ru_maxrss / 1024, "load": load}


def import_summary(command: list[str], threads: int) -> tuple[float, int, list[str]]:
    """(summed cumulative seconds of the top-level imports, modules imported, watched packages loaded)."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], env=environment, capture_output=True, text=True, check=True
    )
    rows = [line.split("|") for line in result.stderr.splitlines() if line.startswith("import time:")][1:]
    top_level = [row for row in rows if not row[2].startswith("  ")]
    seconds = sum(int(row[1]) for row in top_level) / 1e6
    names = {row[2].strip().split(".")[0] for row in rows}
    return seconds, len(rows), [name for name in WATCHED if name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold processes per thread count")
    parser.add_argument("--threads", default="2,1", help="comma-separated OMP_NUM_THREADS values")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="reference clip")
    parser.add_argument("--text", default="Hello there, this is a test.", help="the sentence")
    args = parser.parse_args()
    if not args.reference.is_file():
        raise SystemExit(f"reference {args.reference} not found; pass --reference CLIP")
    thread_counts = [int(value) for value in args.threads.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        command = run_command(args.reference, args.text, Path(folder) / "out.wav")
        timed_run(command, thread_counts[0])  # warm the page cache: the first read of torch's libraries is slower
        results: dict[int, list[dict[str, float]]] = {threads: [] for threads in thread_counts}
        for _ in range(args.runs):
            for threads in thread_counts:
                results[threads].append(timed_run(command, threads))
        imports = import_summary(command, thread_counts[0])
    print(f"`vcframe run` of {args.text!r} with the default bundle, {args.runs} cold processes per row, medians")
    print(
        f"(CPU: {os.cpu_count()} cores; load average {min(r['load'] for rs in results.values() for r in rs):.2f}-"
        f"{max(r['load'] for rs in results.values() for r in rs):.2f} over the runs)\n"
    )
    print("| OMP_NUM_THREADS | wall s | CPU s (user + sys) | peak RSS MiB | walls |")
    print("|---|---|---|---|---|")
    for threads, runs in results.items():
        walls = ", ".join(f"{run['wall']:.2f}" for run in runs)
        print(
            f"| {threads} | {statistics.median(r['wall'] for r in runs):.2f} "
            f"| {statistics.median(r['cpu'] for r in runs):.2f} "
            f"| {statistics.median(r['rss_mib'] for r in runs):.0f} | {walls} |"
        )
    seconds, modules, watched = imports
    print(
        f"\nimports (python -X importtime): {seconds:.2f} s summed over top-level imports, {modules} modules; "
        f"loaded: {', '.join(watched) or 'none of ' + ', '.join(WATCHED)}"
    )


if __name__ == "__main__":
    main()
