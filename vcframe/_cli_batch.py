"""``vcframe batch MANIFEST --out DIR``: clone every row of a CSV/JSONL manifest (see :mod:`vcframe.batch`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vcframe.cli import (
    DatasetRootOption,
    DeviceOption,
    EncoderOption,
    OverrideOption,
    SynthesizerOption,
    VocoderOption,
    _registry,
    _settings,
    _thread_defaults_for_models,
    app,
    handle_errors,
    stderr,
)
from vcframe.errors import InputError


@app.command()
@handle_errors
def batch(
    manifest: Annotated[Path, typer.Argument(help="CSV (with header) or JSONL manifest: text, reference|voice, ...")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created); outputs that exist are skipped.")],
    executor: Annotated[
        str, typer.Option("--executor", help="local (worker processes), dask, or inline (this process).")
    ] = "local",
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Worker processes (default: CPU cores).")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="torch threads per worker (default: cores/workers; dask: 1)."),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address tcp://host:port (implies dask).")
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", help="Do only shard I of N (rows I, I+N, ...), e.g. 0/4.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of rows without one (default 0).")] = None,
    audio_format: Annotated[
        str, typer.Option("--format", help="Audio format of outputs without an out name: wav, flac, ogg.")
    ] = "wav",
    results: Annotated[
        Path | None, typer.Option("--results", help="Results file (default: OUT/results[.shard-I-of-N].jsonl).")
    ] = None,
    encoder: EncoderOption = None,
    synthesizer: SynthesizerOption = None,
    vocoder: VocoderOption = None,
    device: DeviceOption = None,
    dataset_root: DatasetRootOption = None,
    option: OverrideOption = None,
) -> None:
    """Clone every row of MANIFEST into OUT: skips existing outputs, records each row's status and error in a
    results file, and keeps going past bad rows (exit 2 at the end if any row failed). Ctrl+C or SIGTERM stops
    the workers, writes the results (unfinished rows 'interrupted') and exits 130 or 143."""
    _thread_defaults_for_models()
    import signal

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vcframe.batch import make_executor, parse_shard, read_manifest, run_batch, sigterm_as_interrupt

    chosen_shard = parse_shard(shard) if shard else (0, 1)
    settings = _settings(
        option,
        encoder=encoder,
        synthesizer=synthesizer,
        vocoder=vocoder,
        device=device,
        seed=seed,
        dataset_root=dataset_root,
    )
    read_manifest(manifest, audio_format=audio_format)  # refuse a bad manifest before starting any worker
    registry = _registry(settings)
    from vcframe.discovery import _current_registry

    runner = make_executor(executor, workers=workers, scheduler=scheduler, threads=threads)
    failures: list[str] = []
    try:
        with (
            sigterm_as_interrupt(),
            Progress(
                TextColumn("[bold]batch[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                console=stderr,
                transient=True,
            ) as bar,
        ):
            task = bar.add_task("rows", total=None, failed=0)

            def progress(done: int, total: int, result: object) -> None:
                status = getattr(result, "status", "")
                if status == "failed":
                    failures.append(f"row {getattr(result, 'row', '?')}: {getattr(result, 'error', '')}")
                bar.update(task, completed=done, total=total, failed=len(failures))

            report = run_batch(
                manifest,
                out,
                settings=settings,
                executor=runner,
                # workers rebuild the registry from entry points, unless a test or notebook installed one
                registry=registry if _current_registry is not None else None,
                shard=chosen_shard,
                audio_format=audio_format,
                results_path=results,
                progress=progress,
            )
    finally:
        runner.close()
    counts = report.counts
    stderr.print(
        f"{counts['done']} cloned, {counts['skipped']} already there, {counts['failed']} failed "
        f"in {report.seconds:.1f} s ({report.executor}); results in {report.results_path}",
        highlight=False,
    )
    for line in failures[:5]:
        stderr.print(f"  {line}", highlight=False, markup=False)
    if report.interrupted is not None:
        finished = counts["done"] + counts["skipped"]
        where = escape(str(report.results_path))
        stderr.print(
            f"[bold red]error:[/] interrupted by {report.interrupted}: {finished} of {len(report.results)} rows "
            f"done, {counts['interrupted']} not finished; results in {where} (run the same command to finish "
            "them: done rows are skipped)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(128 + (signal.SIGTERM if report.interrupted == "SIGTERM" else signal.SIGINT))
    if counts["failed"]:
        raise InputError(
            f"{counts['failed']} of {len(report.results)} rows failed",
            hint=f"see {report.results_path}; fix them and rerun (done rows are skipped)",
        )
