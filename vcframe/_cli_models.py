"""``vcframe models`` (list, pull, verify, remove, path) and ``vcframe bundles list``: published checkpoints
in the user cache and the bundles that use them (see :mod:`vcframe.downloads` and :mod:`vcframe.bundles`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from vcframe.checkpoints import CheckpointEntry
from vcframe.cli import app, handle_errors, stderr, stdout
from vcframe.downloads import DEFAULT_TIMEOUT_S
from vcframe.errors import CheckpointError, VcframeError

models_app = typer.Typer(
    help="Published checkpoints: list, download (pull), verify and remove them in the user cache.",
    no_args_is_help=True,
)
bundles_app = typer.Typer(
    help="Named component bundles (registry/bundles.toml) and their status.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(bundles_app, name="bundles")

#: How each quality status is coloured.
STATUS_STYLES = {"demo": "yellow", "usable": "green", "published": "cyan"}
NamesArgument = Annotated[list[str], typer.Argument(help="Checkpoint ids (rtvc-synthesizer) or bundle names (rtvc).")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds without an answer before a download gives up.")
]


def styled_status(status: str | None) -> str:
    """A status word in its colour (rich markup); an em dash for None."""
    if status is None:
        return "—"
    return f"[{STATUS_STYLES.get(status, 'white')}]{status}[/]"


def _availability(entry: CheckpointEntry) -> dict[str, Any]:
    """Where a checkpoint's file is, whether it is there, and its receipt (published files)."""
    from vcframe.checkpoints import locate_source
    from vcframe.downloads import cached_path, is_downloaded, read_receipt

    if not entry.downloadable:
        try:
            return {"available": True, "path": str(locate_source(entry.source)), "receipt": None}
        except CheckpointError:
            return {"available": False, "path": None, "receipt": None}
    receipt = read_receipt(entry)
    return {
        "available": is_downloaded(entry),
        "path": str(cached_path(entry)),
        "receipt": receipt.model_dump() if receipt is not None else None,
    }


@models_app.command("list")
@handle_errors
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every registry checkpoint: status and measured figures, source, size, and whether it is here."""
    from vcframe.checkpoints import registry_entries
    from vcframe.downloads import cache_root

    rows = [(entry, _availability(entry)) for entry in registry_entries()]
    if as_json:
        payload = [{**entry.model_dump(), "downloadable": entry.downloadable, **where} for entry, where in rows]
        typer.echo(json.dumps({"cache": str(cache_root()), "checkpoints": payload}, indent=2))
        return
    table = Table(title=f"checkpoints (downloads are cached in {cache_root()})")
    for column in ("id", "component", "status", "measured", "source", "MB", "here", "sha256"):
        table.add_column(column)
    for entry, where in rows:
        receipt = where["receipt"]
        if not entry.downloadable:
            here, checksum = ("shipped" if where["available"] else "[red]package missing[/]"), "pinned"
        elif where["available"]:
            commit = f" ({receipt['commit'][:7]})" if receipt and receipt.get("commit") else ""
            here, checksum = f"[green]downloaded[/]{commit}", "pinned" if entry.sha256 else "recorded"
        else:
            here, checksum = "[dim]no[/]", "pinned" if entry.sha256 else "at first pull"
        source = entry.source + (f"@{entry.revision}" if entry.revision else "")
        size = f"{entry.size / 1e6:.1f}" if entry.size else ""
        table.add_row(
            entry.id,
            entry.component,
            styled_status(entry.status),
            escape(entry.figures()),
            escape(source),
            size,
            here,
            checksum,
        )
    stdout.print(table)
    stdout.print(
        "pull a published checkpoint or a bundle's: vcframe models pull NAME (bundles: vcframe bundles list)",
        highlight=False,
        markup=False,
    )


def pull_entries(
    entries: Sequence[CheckpointEntry], *, force: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S
) -> None:
    """Download ``entries``, with a rich progress bar on stderr when it is a terminal, and one line per file."""
    from vcframe.downloads import pull

    for entry in entries:
        with _download_bar(f"registry:{entry.id}", entry.size) as report:
            path, receipt, downloaded = pull(entry, force=force, timeout_s=timeout_s, progress=report)
        how = "pinned" if receipt.sha256_pinned else "recorded at this download"
        if downloaded:
            commit = f", commit {receipt.commit[:12]}" if receipt.commit else ""
            stderr.print(
                f"pulled registry:{entry.id} ({receipt.size / 1e6:.1f} MB{commit}; sha256 {receipt.sha256[:16]}... "
                f"{how}) to {path}",
                highlight=False,
                markup=False,
            )
        else:
            stderr.print(f"registry:{entry.id} is already here, verified: {path}", highlight=False, markup=False)


@contextlib.contextmanager
def _download_bar(description: str, total: int | None) -> Iterator[Any]:
    """A transient rich download bar on a terminal (bytes, speed); nothing elsewhere (logs stay one line)."""
    if not stderr.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def report(done: int, size: int | None) -> None:
            bar.update(task, completed=done, total=size or total)

        yield report


@models_app.command("pull")
@handle_errors
def models_pull(
    names: NamesArgument,
    force: Annotated[bool, typer.Option("--force", help="Download again even when a verified copy is here.")] = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_S,
) -> None:
    """Download published checkpoints (or a bundle's) into the cache, checking size and sha256; a download that
    broke off resumes when run again."""
    from vcframe.downloads import entries_named

    entries = entries_named(names)
    if not entries:
        stderr.print(f"nothing to download: {', '.join(names)} loads only shipped weights", highlight=False)
        return
    pull_entries(entries, force=force, timeout_s=timeout)


@models_app.command("verify")
@handle_errors
def models_verify(
    names: Annotated[list[str] | None, typer.Argument(help="Checkpoint ids or bundles (default: all).")] = None,
) -> None:
    """Check every checkpoint that is here against its sha256 (pinned, or recorded at its first download)."""
    from vcframe.checkpoints import registry_entries, resolve
    from vcframe.downloads import entries_named, is_downloaded, verify_download

    if names:
        chosen = entries_named(names)
    else:
        chosen = list(registry_entries())
    table = Table(title="verification")
    for column in ("id", "result", "detail"):
        table.add_column(column)
    failed: list[str] = []
    for entry in chosen:
        kind, _, name = entry.component.partition("/")
        try:
            if entry.downloadable:
                if not is_downloaded(entry):
                    table.add_row(entry.id, "[dim]not downloaded[/]", "")
                    continue
                receipt = verify_download(entry)
                detail = f"sha256 {receipt.sha256[:16]}... {'pinned' if receipt.sha256_pinned else 'recorded'}"
            else:
                resolved = resolve(kind, name, f"registry:{entry.id}", rehash=True)
                detail = f"sha256 {entry.sha256 and entry.sha256[:16]}... pinned ({resolved.path.name})"
            table.add_row(entry.id, "[green]ok[/]", escape(detail))
        except VcframeError as error:
            failed.append(entry.id)
            table.add_row(entry.id, "[red]failed[/]", escape(error.message))
    stdout.print(table)
    if failed:
        raise CheckpointError(
            f"{len(failed)} checkpoint(s) failed verification: {', '.join(failed)}",
            hint=f"download again: vcframe models pull {' '.join(failed)} --force",
        )


@models_app.command("remove")
@handle_errors
def models_remove(names: NamesArgument) -> None:
    """Delete downloaded checkpoints (and any partial download) from the cache."""
    from vcframe.downloads import entries_named, remove_download

    for entry in entries_named(names):
        removed = remove_download(entry)
        message = f"removed registry:{entry.id}" if removed else f"registry:{entry.id} was not downloaded"
        stderr.print(message, highlight=False, markup=False)


@models_app.command("path")
@handle_errors
def models_path(name: Annotated[str, typer.Argument(help="Checkpoint id.")]) -> None:
    """Print the local file of a checkpoint (refused, naming the pull command, when it is not downloaded)."""
    from vcframe.checkpoints import locate_source, registry_entries
    from vcframe.downloads import cached_checkpoint

    by_id = {entry.id: entry for entry in registry_entries()}
    entry = by_id.get(name.removeprefix("registry:"))
    if entry is None:
        raise CheckpointError(f"no checkpoint registry:{name}", hint=f"known: {', '.join(by_id)}")
    path = cached_checkpoint(entry, verify=False) if entry.downloadable else locate_source(entry.source)
    typer.echo(str(path))


@bundles_app.command("list")
@handle_errors
def bundles_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Named bundles: components, the checkpoints they load with their status, and whether those are here."""
    from vcframe.bundles import bundles
    from vcframe.downloads import is_downloaded

    rows: list[dict[str, Any]] = []
    for bundle in bundles().values():
        entries = bundle.checkpoint_entries()
        missing = [e.id for e in entries.values() if e is not None and e.downloadable and not is_downloaded(e)]
        rows.append(
            {
                "name": bundle.name,
                **bundle.component_names(),
                "status": bundle.status(),
                "checkpoints": {kind: (entry.id if entry else None) for kind, entry in entries.items()},
                "not_downloaded": missing,
                "notes": bundle.notes,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="bundles (vcframe run --bundle NAME)")
    for column in ("name", "encoder", "synthesizer", "vocoder", "status", "ready", "notes"):
        table.add_column(column)
    for row in rows:
        parts = [
            f"{row[kind]}" + (f" ({row['checkpoints'][kind]})" if row["checkpoints"][kind] else "")
            for kind in ("encoder", "synthesizer", "vocoder")
        ]
        ready = f"[yellow]vcframe models pull {row['name']}[/]" if row["not_downloaded"] else "[green]yes[/]"
        table.add_row(row["name"], *map(escape, parts), styled_status(row["status"]), ready, escape(row["notes"]))
    stdout.print(table)
