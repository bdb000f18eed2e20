"""``vcframe compare``: a grid of systems over voices and texts -> metrics, plots and report.html;
``vcframe metrics list``: installed metric plugins (see :mod:`vcframe.compare`, :mod:`vcframe.metrics`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from vcframe.cli import (
    DatasetRootOption,
    DeviceOption,
    OverrideOption,
    _settings,
    _thread_defaults_for_models,
    app,
    handle_errors,
    stderr,
    stdout,
)
from vcframe.errors import InputError

if TYPE_CHECKING:
    from vcframe.compare.grid import ComponentKind

metrics_app = typer.Typer(help="Metric plugins used by 'vcframe compare'.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")


def _system_options(values: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """``NAME.KIND.OPTION=VALUE`` flags -> {system: {kind: {option: value}}}."""
    from vcframe.config import parse_value

    parsed: dict[str, dict[str, dict[str, Any]]] = {}
    for item in values:
        key, separator, value = item.partition("=")
        parts = key.strip().split(".")
        if not separator or len(parts) != 3 or parts[1] not in ("encoder", "synthesizer", "vocoder"):
            raise InputError(
                f"--system-option {item!r} is not SYSTEM.KIND.OPTION=VALUE",
                hint="e.g. --system-option gl.vocoder.n_iter=32",
            )
        parsed.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = parse_value(value.strip())
    return parsed


def _ground_truth(values: list[str]) -> dict[str, dict[str, str]]:
    """``VOICE:TEXT_ID=PATH`` flags -> {text_id: {voice: path}}."""
    parsed: dict[str, dict[str, str]] = {}
    for item in values:
        key, separator, path = item.partition("=")
        voice, colon, text_id = key.partition(":")
        if not separator or not colon or not voice or not text_id or not path:
            raise InputError(
                f"--ground-truth {item!r} is not VOICE:TEXT_ID=PATH", hint="e.g. --ground-truth ann:t1=truth/ann_t1.wav"
            )
        parsed.setdefault(text_id.strip(), {})[voice.strip()] = path.strip()
    return parsed


def _build_grid(
    grid_file: Path | None,
    systems: list[str],
    system_options: list[str],
    voices: list[str],
    texts: list[str],
    texts_file: Path | None,
    ground_truth: list[str],
    metrics: list[str],
    judge: str | None,
    seed: int | None,
    device: str | None,
    warmup: bool | None,
) -> Any:
    from vcframe.compare.grid import Grid, TextEntry, load_grid, parse_grid, parse_system_flag

    grid: Grid = load_grid(grid_file) if grid_file is not None else parse_grid({}, base_dir=Path.cwd())
    updates: dict[str, Any] = {}
    if systems:
        updates["systems"] = [parse_system_flag(value) for value in systems]
    if voices:
        updates["voices"] = list(voices)
    if texts or texts_file is not None:
        updates["texts"] = list(texts)
        updates["texts_file"] = str(texts_file.resolve()) if texts_file is not None else None
    if metrics:
        updates["metrics"] = list(metrics)
    for key, value in (("judge", judge), ("seed", seed), ("device", device), ("warmup", warmup)):
        if value is not None:
            updates[key] = value
    grid = grid.model_copy(update=updates)
    for name, options in _system_options(system_options).items():
        matching = [entry for entry in grid.systems if entry.name == name]
        if not matching:
            known = ", ".join(entry.name or "(unnamed)" for entry in grid.systems) or "none"
            raise InputError(f"--system-option names unknown system {name!r}", hint=f"systems: {known}")
        for kind, values in options.items():
            matching[0].options.setdefault(cast("ComponentKind", kind), {}).update(values)
    truths = _ground_truth(ground_truth)
    if truths:
        entries = [TextEntry(text=entry) if isinstance(entry, str) else entry for entry in grid.texts]
        if grid.texts_file is not None:
            from vcframe.compare.grid import _read_texts_file

            entries += [TextEntry(text=line) for line in _read_texts_file(Path(grid.texts_file))]
        for index, entry in enumerate(entries, start=1):
            text_id = entry.id or f"t{index}"
            if text_id in truths:
                paths = {voice: str(Path(path).resolve()) for voice, path in truths.pop(text_id).items()}
                entries[index - 1] = entry.model_copy(
                    update={"id": text_id, "ground_truth": {**entry.ground_truth, **paths}}
                )
        if truths:
            raise InputError(f"--ground-truth names unknown text ids: {', '.join(sorted(truths))}")
        grid = grid.model_copy(update={"texts": entries, "texts_file": None})
    return grid


def _summary_table(plan: Any, summary: list[dict[str, Any]]) -> Table:
    table = Table(title="comparison summary (mean ± 95% CI)")
    table.add_column("system")
    table.add_column("ok / failed / refused")
    shown = [
        column
        for column in plan.metric_columns
        if column.numeric and any(column.name == spec.name for spec in plan.metrics)
    ]
    for column in shown:
        arrow = {True: " ↑", False: " ↓", None: ""}[column.higher_is_better]
        table.add_column(f"{column.name}{arrow}", justify="right")
    for entry in summary:
        cells = [entry["system"], f"{entry['ok']} / {entry['failed']} / {entry['refused']}"]
        for column in shown:
            stats = entry["metrics"].get(column.name) or {}
            if stats.get("mean") is None:
                cells.append("–")
            elif stats.get("ci_high") is None:
                cells.append(f"{stats['mean']:.3g}")
            else:
                cells.append(f"{stats['mean']:.3g} ± {stats['ci_high'] - stats['mean']:.2g}")
        table.add_row(*cells)
    return table


@app.command()
@handle_errors
def compare(
    grid_file: Annotated[Path | None, typer.Argument(help="Grid TOML file (see docs/compare.md).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder (created; reruns resume in it).")] = Path(
        "comparison"
    ),
    system: Annotated[
        list[str] | None,
        typer.Option("--system", "-s", help="[NAME=]ENCODER/SYNTHESIZER/VOCODER (repeatable; replaces the grid's)."),
    ] = None,
    system_option: Annotated[
        list[str] | None,
        typer.Option("--system-option", help="SYSTEM.KIND.OPTION=VALUE, e.g. gl.vocoder.n_iter=32 (repeatable)."),
    ] = None,
    voice: Annotated[
        list[str] | None,
        typer.Option(
            "--voice",
            "-v",
            "--reference",
            "-r",
            help="Audio file, voice name or librispeech:<id> (repeatable; replaces the grid's).",
        ),
    ] = None,
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="A text (repeatable).")] = None,
    texts_file: Annotated[Path | None, typer.Option("--texts-file", help="UTF-8 file, one text per line.")] = None,
    ground_truth: Annotated[
        list[str] | None, typer.Option("--ground-truth", help="VOICE:TEXT_ID=PATH recording for MCD (repeatable).")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="Metric to compute (repeatable; default: all).")
    ] = None,
    judge: Annotated[
        str | None, typer.Option("--judge", help="Speaker encoder judging similarity (default ge2e).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Base seed (each item's seed derives from it).")] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: one per core; 1 = here).")
    ] = None,
    device: DeviceOption = None,
    option: OverrideOption = None,
    dataset_root: DatasetRootOption = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw PNG plots (needs matplotlib).")] = True,
    warmup: Annotated[
        bool | None, typer.Option("--warmup/--no-warmup", help="One untimed run per system and worker first.")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title of report.html.")] = None,
) -> None:
    """Compare systems: every system speaks every text in every voice; metrics, plots and report.html in OUT."""
    _thread_defaults_for_models()
    from vcframe.compare import plan_comparison, run_comparison, write_report
    from vcframe.compare.report import metric_warnings, summarize

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file", hint="give a folder")
    if plots:
        from vcframe._plots import _pyplot

        _pyplot()  # fail now, not after hours of generation, when matplotlib is missing
    grid = _build_grid(
        grid_file,
        list(system or []),
        list(system_option or []),
        list(voice or []),
        list(text or []),
        texts_file,
        list(ground_truth or []),
        list(metric or []),
        judge,
        seed,
        device,
        warmup,
    )
    settings = _settings(option, dataset_root=dataset_root)
    plan = plan_comparison(grid, settings=settings)
    for note in plan.warnings:
        stderr.print(f"[yellow]warning:[/] {note}", highlight=False, soft_wrap=True)
    for planned in plan.systems:
        if planned.refused:
            stderr.print(f"[yellow]refused:[/] {planned.name}: {planned.refused}", highlight=False, soft_wrap=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        task = progress.add_task("compare", total=len(plan.items))

        def advance(done: int, total: int, record: dict[str, Any]) -> None:
            progress.update(task, completed=done, total=total, description=f"{record['item']} [{record['status']}]")

        try:
            outcome = run_comparison(plan, out, jobs=jobs, progress=advance, plots=plots)
        except KeyboardInterrupt:
            progress.stop()
            stderr.print("interrupted: finished items are cached in OUT/.cache; run the same command to resume")
            raise typer.Exit(130) from None
    files = write_report(plan, outcome, out, plots=plots, title=title)
    stdout.print(_summary_table(plan, summarize(plan, outcome.records)))
    failures: dict[tuple[str, str], list[str]] = {}
    for record in outcome.records:
        if record["status"] == "failed":
            failures.setdefault((record["system"], str(record["error"])), []).append(record["item"])
    for (name, error), items in failures.items():
        where = items[0] if len(items) == 1 else f"{name} ({len(items)} items)"
        stderr.print(f"[red]failed:[/] {where}: {error}", highlight=False, soft_wrap=True)
    for note in metric_warnings(plan, outcome.records):
        stderr.print(f"[yellow]warning:[/] {escape(note)}", highlight=False, soft_wrap=True)
    stderr.print(
        f"wrote {files.report_html} and {files.results_csv} ({len(outcome.records)} items: {outcome.generated} "
        f"generated, {outcome.reused} reused, {outcome.rescored} rescored, {outcome.refused} refused, "
        f"{outcome.failed} failed"
        + (f", {outcome.recordings} ground-truth recordings scored)" if outcome.recordings else ")"),
        highlight=False,
    )
    failed = sum(record["status"] == "failed" for record in outcome.records)
    if failed:
        raise InputError(
            f"{failed} of {len(outcome.records)} items failed",
            hint=f"see {files.results_csv}; fix them and run the same command again (finished items are cached)",
        )


@metrics_app.command("list")
@handle_errors
def metrics_list(
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Installed metrics (reads entry points and specs only; imports no metric code)."""
    from vcframe.metrics.registry import default_metric_registry

    if format not in ("table", "json"):
        raise InputError(f"unknown format {format!r}", hint="use table or json")
    settings = _settings()
    registry = default_metric_registry(settings.disable_plugins)
    rows: list[dict[str, Any]] = [
        {
            "name": row.name,
            "distribution": row.distribution,
            "version": row.version,
            "status": row.status,
            "summary": row.spec.summary if row.spec else None,
            "needs": sorted(row.spec.needs) if row.spec else None,
            "columns": [column.name for column in row.spec.columns] if row.spec else None,
            "error": row.error,
            "hint": row.hint,
            "warning": row.warning,
        }
        for row in registry
    ]
    duplicates = {name: [row.qualified_name for row in found] for name, found in registry.duplicates().items()}
    if format == "json":
        typer.echo(json.dumps({"metrics": rows, "duplicates": duplicates}, indent=2))
        return
    table = Table(title="vcframe metrics")
    for column in ("name", "distribution", "status", "needs", "columns", "summary / error"):
        table.add_column(column)
    for item in rows:
        status = {"ok": "[green]ok[/]", "error": "[red]error[/]", "disabled": "[dim]disabled[/]"}.get(
            item["status"], "[yellow]warning[/]"
        )
        detail = item["summary"] or ""
        if item["error"]:
            detail = f"[red]{item['error']}[/] [dim]({item['hint']})[/]"
        elif item["warning"]:
            detail += f" [yellow]({item['warning']})[/]"
        table.add_row(
            item["name"],
            item["distribution"] or "",
            status,
            ", ".join(item["needs"] or []),
            ", ".join(item["columns"] or []),
            detail,
        )
    stdout.print(table)
    for name, names in duplicates.items():
        stdout.print(
            f"[yellow]duplicate[/] metric {name} provided by {', '.join(names)}: select one as DISTRIBUTION:NAME"
        )
