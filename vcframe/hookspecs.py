"""Cross-cutting hooks (pluggy). Components are found through entry points; hooks are for everything that
cuts across components. A hook plugin is a module or object with functions decorated ``@vcframe.hookimpl``,
registered through the ``vcframe.hooks`` entry-point group.

Each hookspec below has one docstring; ``docs/plugins.md`` documents each with an example, and the test
suite fails if a hookspec lacks either a documentation entry or a test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    import typer

    from vcframe.specs import ComponentSpec, MelSpec
    from vcframe.types import Mel, Waveform

PROJECT = "vcframe"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@runtime_checkable
class TextFrontend(Protocol):
    """Turns text into the integer ids a synthesizer reads.

    ``name`` and ``symbols`` are recorded in synthesizer checkpoints; a checkpoint trained with another
    frontend or symbol table is refused.
    """

    name: str
    symbols: Sequence[str]

    def normalize(self, text: str) -> str:
        """Cleaned text (numbers spelled out, abbreviations expanded, ...)."""
        ...

    def text_to_ids(self, text: str) -> list[int]:
        """Ids of ``normalize(text)``, unknown characters dropped, end-of-sequence appended if any."""
        ...


class AudioProcessor(Protocol):
    """A named step that transforms a waveform; ``order`` sorts steps (ascending, then by name)."""

    name: str
    order: int

    def __call__(self, waveform: Waveform) -> Waveform: ...


@hookspec(firstresult=True)
def vcframe_text_frontend(name: str) -> TextFrontend | None:
    """Return the text frontend called ``name``, or None if this plugin does not provide it.

    The first non-None result wins. Synthesizers ask for the frontend their checkpoint was trained with.
    """


@hookspec
def vcframe_reference_processors() -> Sequence[AudioProcessor]:
    """Return processors applied to each reference clip after loading and resampling, before embedding.

    All results are collected and applied in ascending ``order`` (then by ``name``); the pipeline's
    ``reference_processors`` setting may restrict them to a list of names.
    """
    return ()


@hookspec
def vcframe_output_processors() -> Sequence[AudioProcessor]:
    """Return processors applied to the final waveform before it is returned or written.

    Collected and ordered like the reference processors; restricted by the ``output_processors`` setting.
    """
    return ()


@hookspec(firstresult=True)
def vcframe_mel_adapter(source: MelSpec, target: MelSpec) -> Callable[[Mel], Mel] | None:
    """Return a function converting mels of ``source`` spec to ``target`` spec, or None if unsupported.

    Consulted only when the user opts in (``--adapt``) and the synthesizer's mel does not match the
    vocoder's. The first non-None result wins; the run's metadata records that an adapter was used.
    """


@hookspec(firstresult=True)
def vcframe_resolve_checkpoint(component: ComponentSpec, reference: str) -> str | None:
    """Return a local file path for the checkpoint ``reference`` of ``component``, or None.

    ``reference`` is what the component's config says (``default``, ``registry:<id>``, a path, or a scheme
    of the plugin's own). The first non-None result wins; vcframe's own implementation handles registry ids
    and plain paths, and never downloads.
    """


@hookspec
def vcframe_run_start(run: dict[str, Any]) -> None:
    """Observe the start of a cloning run: ``run`` holds the components, their configs, the text and seed."""


@hookspec
def vcframe_run_chunk(run: dict[str, Any], index: int, chunk: Waveform) -> None:
    """Observe each audio chunk as it is produced (sentence by sentence, or fold by fold when streaming)."""


@hookspec
def vcframe_run_end(run: dict[str, Any], waveform: Waveform | None, error: BaseException | None) -> None:
    """Observe the end of a run, with the final waveform, or the error that stopped it."""


@hookspec
def vcframe_cli_commands(app: typer.Typer) -> None:
    """Add commands or sub-applications to the ``vcframe`` command line (``app.command()(...)``)."""
