"""Cold start of ``vcframe run``: one sentence with the default bundle, every run a fresh process.

Run by hand:  .venv/bin/python benchmarks/startup.py [--runs 5] [--threads 2,1] [--reference clip.wav]
                 [--vocoder hifigan] [--before /tmp/old-checkout]

For each thread count (``OMP_NUM_THREADS``; torch's default is one thread per core) the runs are interleaved, so
that a background job slows every configuration alike. Per process: wall seconds, CPU seconds (user + sys, the
robust figure on a shared machine), peak resident memory, and the load average when it started. Then one run
under ``python -X importtime``: the summed cumulative time of the top-level imports, the number of modules, and
which heavy packages the run loaded (librosa, numba and scipy should not be among them). Prints markdown.

``--vocoder NAME`` runs ``vcframe run --vocoder NAME`` (the other components stay the defaults). ``--before DIR``
adds a row per thread count for another checkout of the repository (``git archive COMMIT | tar -x -C DIR``): its
``vcframe`` and plugin packages go first on ``PYTHONPATH`` (ahead of the editable installs), and its runs are
interleaved with this tree's, so that both see the same load.
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


def run_command(reference: Path, text: str, out: Path, vocoder: str | None = None) -> list[str]:
    """The ``vcframe run`` command line of one cold run (``vocoder``: ``--vocoder``, None: the default)."""
    command = [sys.executable, "-m", "vcframe", "run", "--reference", str(reference), "--text", text, "--out", str(out)]
    return command + (["--vocoder", vocoder] if vocoder else [])


def checkout_path(checkout: Path | None) -> dict[str, str]:
    """The ``PYTHONPATH`` that runs ``checkout``'s core and plugin packages instead of the installed ones ({} for
    None: the installed ones)."""
    if checkout is None:
        return {}
    folders = [checkout, *sorted(path for path in checkout.glob("plugins/*/*") if path.is_dir())]
    return {"PYTHONPATH": os.pathsep.join(str(folder) for folder in folders)}


def timed_run(command: list[str], threads: int, checkout: Path | None = None) -> dict[str, float]:
    """Wall and CPU seconds, peak RSS (MiB) and starting load average of one process running ``command`` (with
    ``checkout``'s packages, :func:`checkout_path`)."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), **checkout_path(checkout)}
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
    parser.add_argument("--vocoder", default=None, help="vcframe run --vocoder (default: the bundle's)")
    parser.add_argument("--before", type=Path, default=None, help="another checkout to time interleaved")
    args = parser.parse_args()
    if not args.reference.is_file():
        raise SystemExit(f"reference {args.reference} not found; pass --reference CLIP")
    if args.before is not None and not (args.before / "vcframe" / "cli.py").is_file():
        raise SystemExit(f"--before {args.before} is not a checkout of this repository (no vcframe/cli.py)")
    thread_counts = [int(value) for value in args.threads.split(",")]
    checkouts: dict[str, Path | None] = {"this tree": None}
    if args.before is not None:
        checkouts = {f"before ({args.before})": args.before, **checkouts}
    with tempfile.TemporaryDirectory() as folder:
        command = run_command(args.reference, args.text, Path(folder) / "out.wav", args.vocoder)
        for checkout in checkouts.values():  # warm the page cache: the first read of torch's libraries is slower
            timed_run(command, thread_counts[0], checkout)
        rows = [(name, threads) for threads in thread_counts for name in checkouts]
        results: dict[tuple[str, int], list[dict[str, float]]] = {row: [] for row in rows}
        for _ in range(args.runs):
            for name, threads in rows:
                results[name, threads].append(timed_run(command, threads, checkouts[name]))
        imports = import_summary(command, thread_counts[0])
    components = f"--vocoder {args.vocoder}" if args.vocoder else "the default bundle"
    print(f"`vcframe run` of {args.text!r} with {components}, {args.runs} cold processes per row, medians")
    print(
        f"(CPU: {os.cpu_count()} cores; load average {min(r['load'] for rs in results.values() for r in rs):.2f}-"
        f"{max(r['load'] for rs in results.values() for r in rs):.2f} over the runs)\n"
    )
    print("| code | OMP_NUM_THREADS | wall s | CPU s (user + sys) | peak RSS MiB | walls |")
    print("|---|---|---|---|---|---|")
    for (name, threads), runs in results.items():
        walls = ", ".join(f"{run['wall']:.2f}" for run in runs)
        print(
            f"| {name} | {threads} | {statistics.median(r['wall'] for r in runs):.2f} "
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
