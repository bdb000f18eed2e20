"""``vcframe plugins new KIND NAME`` (also spelled ``vcframe plugin new``): scaffold a plugin package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vcframe.cli import app, handle_errors, plugins_app, stderr, stdout

#: ``vcframe plugin new`` is an alias of ``vcframe plugins new`` (the singular reads well for creating one).
plugin_alias_app = typer.Typer(help="Alias of 'vcframe plugins' for 'plugin new'.", no_args_is_help=True)
app.add_typer(plugin_alias_app, name="plugin", hidden=True)


@plugins_app.command("new")
@plugin_alias_app.command("new")
@handle_errors
def plugins_new(
    kind: Annotated[str, typer.Argument(help="encoder, synthesizer or vocoder.")],
    name: Annotated[str, typer.Argument(help="Component name (lowercase, digits, '-', '_'), e.g. my-vocoder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to create vcframe-NAME in.")] = Path("."),
) -> None:
    """Write a complete plugin package: pyproject with entry points, spec, model, tests using the kit, README."""
    from vcframe._scaffold import write_plugin

    target, files = write_plugin(kind, name, out)
    for relative in files:
        stdout.print(f"  {target / relative}", highlight=False, markup=False)
    stderr.print(
        f"wrote {target}: cd {target} && pip install -e '.[test]' && pytest   (guide: docs/plugins.md)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
