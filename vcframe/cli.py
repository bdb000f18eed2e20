"""The ``vcframe`` command line (typer + rich; rich is used here only).

Every command reports user errors as one line ``error: ...`` on stderr and exits with code 2; ``--debug``
shows the traceback. Output files are written atomically, so a failed run leaves none behind.
Nothing here imports torch until a command needs a model (``vcframe plugins list`` never does).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vcframe import __version__
from vcframe.adaptation import (
    ADAPTATION_TARGETS,
    DEFAULT_ADAPTATION_SECONDS,
    DEFAULT_ADAPTATION_STEPS,
    SpeakerAdaptation,
)
from vcframe.config import Settings, load_settings
from vcframe.discovery import (
    DISABLE_ENV,
    GROUPS,
    Registry,
    default_registry,
    disabled_from_environment,
    hook_errors,
    plugin_manager,
    unknown_plugin_names,
)
from vcframe.errors import InputError, OutputError, PluginError, VcframeError
from vcframe.specs import KINDS, ComponentSpec

app = typer.Typer(
    name="vcframe",
    help="Voice cloning from swappable plugins: speaker encoder -> synthesizer -> vocoder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
plugins_app = typer.Typer(help="List, inspect and validate installed plugins.", no_args_is_help=True)
config_app = typer.Typer(help="Show the merged configuration.", no_args_is_help=True)
app.add_typer(plugins_app, name="plugins")
app.add_typer(config_app, name="config")

#: Emoji codes are not replaced: a ``:name:`` in a path, a text or a voice name is printed as given (and a run does
#: not load rich's emoji table). Messages are never hard-wrapped: one message is one line, on a terminal or in a
#: log file.
stdout = Console(emoji=False)
stderr = Console(stderr=True, soft_wrap=True, emoji=False)


class _State:
    debug = False
    config_file: str | None = None
    disabled: list[str] = []
    warned_disabled: set[str] = set()


F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(function: F) -> F:
    """Turn VcframeErrors into one line + exit 2, and unexpected errors into one line + exit 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except VcframeError as error:
            if _State.debug:
                traceback.print_exc()
            stderr.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            stderr.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as error:  # noqa: BLE001 - the last line of defence
            if _State.debug:
                traceback.print_exc()
            first_line = str(error).split("\n")[0]
            stderr.print(
                f"[bold red]error:[/] unexpected {type(error).__name__}: {escape(first_line)} "
                "(run with --debug for the traceback, and please report it)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        stdout.print(f"vcframe-core {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    config: Annotated[str | None, typer.Option("--config", help="Settings file (default: ./vcframe.toml).")] = None,
    disable: Annotated[
        list[str] | None, typer.Option("--disable", help="Do not load this plugin (repeatable).")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _State.debug = debug
    _State.config_file = config
    _State.disabled = list(disable or [])
    _State.warned_disabled = set()
    _warn_unknown_disabled(_State.disabled, "--disable")
    _warn_unknown_disabled(disabled_from_environment(), DISABLE_ENV)


def _warn_unknown_disabled(names: list[str], given_by: str) -> None:
    """Warn (once per name) about a plugin name to disable that no installed plugin has: a typo disables nothing."""
    if not names:
        return
    for name in unknown_plugin_names(names):
        if name not in _State.warned_disabled:
            _State.warned_disabled.add(name)
            stderr.print(
                f"[yellow]warning:[/] {given_by} {escape(name)!r}: no installed plugin has this name, so it disables "
                "nothing (see 'vcframe plugins list')",
                highlight=False,
                soft_wrap=True,
            )


def _settings(overrides: list[str] | None = None, **explicit: Any) -> Settings:
    settings = load_settings(overrides or [], config_file=_State.config_file, explicit=explicit)
    _warn_unknown_disabled(settings.disable_plugins, "disable_plugins")
    if _State.disabled:
        settings.disable_plugins = [*settings.disable_plugins, *_State.disabled]
    return settings


def _registry(settings: Settings | None = None) -> Registry:
    disabled = list(settings.disable_plugins) if settings else list(_State.disabled)
    return default_registry(disabled)


# -- run / embed / check ------------------------------------------------------------------------------

ReferenceOption = Annotated[
    list[str] | None, typer.Option("--reference", "-r", help="Reference clip of the voice (repeatable).")
]
OverrideOption = Annotated[
    list[str] | None, typer.Option("-o", "--option", help="Setting KEY=VALUE, e.g. vocoder.griffinlim.n_iter=100.")
]
EncoderOption = Annotated[str | None, typer.Option("--encoder", help="Speaker encoder plugin.")]
SynthesizerOption = Annotated[str | None, typer.Option("--synthesizer", help="Synthesizer plugin.")]
VocoderOption = Annotated[str | None, typer.Option("--vocoder", help="Vocoder plugin.")]
DeviceOption = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="torch's CPU threads (default: the threads setting, else OMP_NUM_THREADS when set, else 1).",
    ),
]
VoiceOption = Annotated[
    str | None, typer.Option("--voice", "-v", help="A named voice (see 'vcframe voices list') instead of --reference.")
]
DatasetRootOption = Annotated[
    str | None,
    typer.Option(
        "--dataset-root", help="LibriSpeech folder for --reference librispeech:<id> (or $VCFRAME_LIBRISPEECH)."
    ),
]
AllowMismatchOption = Annotated[bool, typer.Option("--allow-mismatch", help="Run incompatible components anyway.")]
BundleOption = Annotated[
    str | None,
    typer.Option("--bundle", help="Named bundle of components, options and weights (see 'vcframe bundles list')."),
]
PullOption = Annotated[
    bool, typer.Option("--pull", help="Download the published checkpoints the run needs first (vcframe models pull).")
]
AdaptOption = Annotated[bool, typer.Option("--adapt", help="Convert mismatched mels with an adapter hook.")]
MatchSpectrumOption = Annotated[
    float | None,
    typer.Option(
        "--match-spectrum",
        min=0,
        max=2,
        help="Move the synthesized speech's long-term spectrum toward the reference clip's by this much (0 off, "
        "1 matched; the match_spectrum setting). Default: 1 with --reference, --voice or an --embedding that stores "
        "its clips' spectrum (vcframe embed does), else off.",
    ),
]
MelCorrectionOption = Annotated[
    float | None,
    typer.Option(
        "--mel-correction",
        min=0,
        max=1,
        help="Move the vocoder's output toward the spectral envelope of the mel it was given, frame by frame, by "
        "this much (0 off, 1 the whole difference; the mel_correction setting, default 0).",
    ),
]
AdaptSpeakerOption = Annotated[
    bool,
    typer.Option(
        "--adapt-speaker",
        help="Fit the speaker embedding to the reference clip through the synthesizer first "
        f"({DEFAULT_ADAPTATION_STEPS} steps unless --adapt-steps, at most {DEFAULT_ADAPTATION_SECONDS:.0f} s). "
        "Off by default.",
    ),
]
AdaptStepsOption = Annotated[
    int | None, typer.Option("--adapt-steps", min=1, help="Gradient steps of --adapt-speaker (implies it).")
]
ReferenceTextOption = Annotated[
    str | None,
    typer.Option(
        "--reference-text", help="The words the reference clip says, for --adapt-speaker (default: recognised)."
    ),
]
AdaptTargetOption = Annotated[
    str | None,
    typer.Option(
        "--adapt-target",
        metavar="embedding|output",
        help="What --adapt-speaker fits: the speaker embedding (default) or the synthesizer's output layer, a small "
        "per-speaker adapter carried with the embedding (tacotron: post_proj). Read with --adapt-speaker only.",
    ),
]


def _prefer_passive_openmp_wait() -> None:
    """Let torch's idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless the user
    chose a policy; it must be set before torch loads, which the CLI module does not import.

    A one-sentence ``vcframe run`` on the 2-core machine with another job on it took 3.9-7.4 s wall with the
    spinning default and 2.3-2.6 s with sleeping threads (same two threads, the same output bytes): a spinning
    thread holds a core the other job needs, and the next parallel region waits for it.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _single_threaded_numpy_blas() -> None:
    """Give numpy's OpenBLAS one thread (``OPENBLAS_NUM_THREADS=1``) unless the user chose a count; like the wait
    policy it must be set before numpy loads, which the CLI module does not import (torch's threads, from MKL and
    OpenMP, are not affected).

    A run's numpy products are small (Griffin-Lim's pseudo-inverse of the 80 x 401 mel basis, one 401 x 80 product
    per sentence, the encoder's mel filterbank), and with two OpenBLAS threads on the shared 2-core machine the
    pseudo-inverse alone took 0.50-0.54 s wall and 0.16 s CPU against 0.002 s with one thread: the second thread
    waits for a core another job holds, and spins when idle. Same output bytes.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _thread_defaults_for_models() -> None:
    """The thread defaults of every command that runs models (``run``, ``embed``, ``serve``, ``batch``, ``compare``,
    ``voices add``), each a default the user's own variable overrides: idle OpenMP threads sleep
    (:func:`_prefer_passive_openmp_wait`) and numpy's OpenBLAS has one thread (:func:`_single_threaded_numpy_blas`).
    Called first in those commands, before anything loads torch or numpy; worker processes inherit them (a batch
    worker's OpenMP and OpenBLAS thread counts are still its ``--threads``, batch.thread_environment)."""
    _prefer_passive_openmp_wait()
    _single_threaded_numpy_blas()


def _check_one_voice(reference: list[str] | None, voice: str | None, embedding: Path | None = None) -> None:
    sources = (("--reference", reference), ("--voice", voice), ("--embedding", embedding))
    given = [name for name, value in sources if value]
    if not given:
        hint = "pass --reference FILE (repeatable), --voice NAME (see 'vcframe voices list')"
        raise InputError("no voice given", hint=hint + (" or --embedding FILE" if embedding is None else ""))
    if len(given) > 1:
        raise InputError(f"give one voice source, not {' and '.join(given)}", hint="keep one of them")


def _read_text(text: str | None, text_file: Path | None) -> str:
    if (text is None) == (text_file is None):
        raise InputError("give exactly one of --text and --text-file")
    if text_file is not None:
        if not text_file.is_file():
            raise InputError(f"text file {str(text_file)!r} not found", hint="check the path")
        try:
            return text_file.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise InputError(f"text file {str(text_file)!r} is not UTF-8 text", hint="save it as UTF-8") from error
    return text or ""


class _ProgressReporter:
    """Maps pipeline progress callbacks onto a transient rich progress bar on stderr."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}", markup=False),  # plain text: no markup, no emoji codes
            BarColumn(),
            TextColumn("{task.completed}/{task.total}", markup=False),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _ProgressReporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


@app.command()
@handle_errors
def run(
    text: Annotated[str | None, typer.Option("--text", "-t", help="Text to speak.")] = None,
    text_file: Annotated[Path | None, typer.Option("--text-file", help="UTF-8 file with the text to speak.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output audio file (.wav, .flac, .ogg).")] = Path("output.wav"),
    reference: ReferenceOption = None,
    voice: VoiceOption = None,
    embedding: Annotated[
        Path | None,
        typer.Option(
            "--embedding",
            help="Saved embedding (.npy, from vcframe embed) instead of clips; spectrum-matched from "
            "the clips' spectrum it stores.",
        ),
    ] = None,
    dataset_root: DatasetRootOption = None,
    bundle: BundleOption = None,
    pull: PullOption = False,
    encoder: EncoderOption = None,
    synthesizer: SynthesizerOption = None,
    vocoder: VocoderOption = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for reproducible output.")] = None,
    device: DeviceOption = None,
    threads: ThreadsOption = None,
    option: OverrideOption = None,
    allow_mismatch: AllowMismatchOption = False,
    adapt: AdaptOption = False,
    adapt_speaker: AdaptSpeakerOption = False,
    adapt_steps: AdaptStepsOption = None,
    adapt_target: AdaptTargetOption = None,
    reference_text: ReferenceTextOption = None,
    match_spectrum: MatchSpectrumOption = None,
    mel_correction: MelCorrectionOption = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save the mel and attention alignment as a PNG.")] = None,
    metadata: Annotated[bool, typer.Option("--metadata", help="Write OUT.json with the run's metadata.")] = False,
) -> None:
    """Clone a voice: speak TEXT in the voice of the reference clip(s)."""
    _thread_defaults_for_models()
    from vcframe._io import check_output_path
    from vcframe.audio import check_audio_output_path

    spoken = _read_text(text, text_file)
    check_audio_output_path(out)
    if plot is not None:
        check_output_path(plot)
    _check_one_voice(reference, voice, embedding)
    adaptation = _speaker_adaptation(adapt_speaker, adapt_steps, reference_text, adapt_target)
    settings = _settings(
        option,
        dataset_root=dataset_root,
        bundle=bundle,
        encoder=encoder,
        synthesizer=synthesizer,
        vocoder=vocoder,
        device=device,
        threads=threads,
        seed=seed,
        allow_mismatch=allow_mismatch or None,
        adapt=adapt or None,
        match_spectrum=match_spectrum,
        mel_correction=mel_correction,
    )
    from vcframe.audio import save_audio
    from vcframe.pipeline import Pipeline
    from vcframe.text import speakable_text
    from vcframe.types import SpeakerEmbedding

    pipeline = Pipeline(settings=settings, registry=_registry(settings))
    pipeline.sentences(spoken)  # refuse bad text before loading any model
    _get_published_weights(pipeline, pull)
    dropped_note = speakable_text(spoken).dropped_note()
    if dropped_note:
        stderr.print(f"note: {dropped_note}", highlight=False, markup=False)
    saved = SpeakerEmbedding.load(str(embedding)) if embedding is not None else None
    with _ProgressReporter() as progress:
        waveform = pipeline.clone(
            spoken,
            reference or None,
            embedding=saved,
            voice=voice,
            progress=progress,
            adapt_speaker=adaptation,
            reference_text=reference_text,
        )
    save_audio(waveform, out)
    if metadata:
        from vcframe._io import atomic_write, to_jsonable

        with atomic_write(f"{out}.json", "w") as stream:
            json.dump(to_jsonable(dict(waveform.metadata)), stream, indent=2)
    if plot is not None:
        _save_plot(pipeline, spoken, plot)
    seconds = waveform.durations[0]
    bridged = f" (bridged: {'; '.join(pipeline.bridged)})" if pipeline.bridged else ""
    adapted = waveform.metadata.get("speaker_adaptation")
    if adapted:
        stderr.print(f"speaker adaptation: {_adaptation_line(adapted)}", highlight=False, markup=False)
    stored_adapter = waveform.metadata.get("output_adapter")
    if stored_adapter and not adapted:
        stderr.print(
            f"output adapter: {stored_adapter['synthesizer']} {stored_adapter['layer']} fitted in "
            f"{stored_adapter['steps']} steps (stored with the voice or the embedding)",
            highlight=False,
            markup=False,
        )
    matched = waveform.metadata.get("spectrum_match")
    if matched:
        gains = matched["gain_db"]
        source = " (the reference spectrum stored in the embedding)" if matched.get("source") == "embedding" else ""
        stderr.print(
            f"spectrum matching: strength {matched['strength']:g}, mean gain per band "
            f"{sum(gains) / max(len(gains), 1):.1f} dB over {len(gains)} sentence(s){source}",
            highlight=False,
            markup=False,
        )
    corrected = waveform.metadata.get("mel_correction")
    if corrected:
        before, after = corrected["before_db"], corrected["after_db"]
        stderr.print(
            f"mel correction: strength {corrected['strength']:g}, output-to-mel distance "
            f"{sum(before) / len(before):.2f} -> {sum(after) / len(after):.2f} dB over {len(before)} sentence(s)",
            highlight=False,
            markup=False,
        )
    unmatched = waveform.metadata.get("spectrum_unmatched")
    if unmatched:
        stderr.print(f"note: not spectrum-matched: {unmatched}", highlight=False, markup=False)
    stderr.print(
        f"wrote {out} ({seconds:.2f} s at {waveform.sample_rate} Hz){bridged}; weights: {_weights_summary(pipeline)}",
        highlight=False,
        markup=False,
    )


def _adaptation_steps(adapt_speaker: bool, adapt_steps: int | None, reference_text: str | None) -> int | None:
    """Steps of speaker adaptation asked with --adapt-speaker / --adapt-steps (None: off); --reference-text
    without either is refused."""
    if adapt_steps is not None:
        return adapt_steps
    if adapt_speaker:
        return DEFAULT_ADAPTATION_STEPS
    if reference_text is not None:
        raise InputError("--reference-text is read by speaker adaptation only", hint="add --adapt-speaker")
    return None


def _speaker_adaptation(
    adapt_speaker: bool, adapt_steps: int | None, reference_text: str | None, adapt_target: str | None
) -> SpeakerAdaptation | None:
    """The speaker adaptation asked with --adapt-speaker / --adapt-steps and --adapt-target (None: off);
    --reference-text or --adapt-target without either is refused, and so is a target other than those known."""
    steps = _adaptation_steps(adapt_speaker, adapt_steps, reference_text)
    if adapt_target is None:
        return None if steps is None else SpeakerAdaptation(steps=steps)
    if steps is None:
        raise InputError("--adapt-target is read by speaker adaptation only", hint="add --adapt-speaker")
    if adapt_target not in ADAPTATION_TARGETS:
        raise InputError(
            f"--adapt-target takes {' or '.join(ADAPTATION_TARGETS)}, got {adapt_target!r}",
            hint="embedding fits the speaker embedding, output the synthesizer's output layer",
        )
    return SpeakerAdaptation(steps=steps, target=adapt_target)


def _adaptation_line(summary: dict[str, Any]) -> str:
    """``"embedding, 30 steps in 41.2 s, loss 1.234 -> 0.987, transcript recognised: 'words'"`` (``output layer``
    for target output; records made before targets existed fitted the embedding)."""
    clock = " (time bound reached)" if summary["stopped_by"] == "time" else ""
    fitted = "output layer" if summary.get("target") == "output" else "embedding"
    return (
        f"{fitted}, {summary['steps']} steps in {summary['seconds']:.1f} s{clock}, loss "
        f"{summary['loss_before']:.3f} -> {summary['loss_after']:.3f}, transcript {summary['transcript_source']}: "
        f"{summary['transcript']!r}"
    )


def _get_published_weights(pipeline: Any, pull: bool) -> None:
    """Refuse, in one line naming 'vcframe models pull', a run whose published checkpoints are not downloaded
    (before any model loads); with ``pull``, download them instead."""
    from vcframe.bundles import configured_entry
    from vcframe.downloads import is_downloaded, not_downloaded_error

    entries = [configured_entry(kind, spec.name, pipeline.configs[kind]) for kind, spec in pipeline.specs.items()]
    missing = [entry for entry in entries if entry is not None and entry.downloadable and not is_downloaded(entry)]
    if not missing:
        return
    if not pull:
        raise not_downloaded_error(missing, pipeline.settings.bundle, pull_option=True)
    from vcframe._cli_models import pull_entries

    pull_entries(missing)


def _weights_summary(pipeline: Any) -> str:
    """``"ge2e [published], tacotron [demo: 71.4 % words heard right, ...], griffinlim [no weights]"``."""
    from vcframe.bundles import weights_label

    labels = {kind: weights_label(kind, spec.name, pipeline.configs[kind]) for kind, spec in pipeline.specs.items()}
    return ", ".join(f"{spec.name} [{labels[kind]}]" for kind, spec in pipeline.specs.items())


def _save_plot(pipeline: Any, text: str, path: Path) -> None:
    from vcframe._plots import save_synthesis_plot

    if not pipeline.last_mels:
        raise InputError("nothing was synthesized to plot")
    save_synthesis_plot(pipeline.last_mels[0], path, title=pipeline.sentences(text)[0])


@app.command()
@handle_errors
def embed(
    reference: ReferenceOption = None,
    voice: VoiceOption = None,
    dataset_root: DatasetRootOption = None,
    out: Annotated[
        Path, typer.Option("--out", help="Output .npy (a .npy.json sidecar holds the spec and the clips' spectrum).")
    ] = Path("embedding.npy"),
    bundle: BundleOption = None,
    encoder: EncoderOption = None,
    synthesizer: Annotated[
        str | None,
        typer.Option(
            "--synthesizer", help="Synthesizer whose mel spec the clips' spectrum is stored at (from its spec)."
        ),
    ] = None,
    device: DeviceOption = None,
    option: OverrideOption = None,
) -> None:
    """Compute one speaker embedding from reference clips (for reuse with run --embedding).

    The sidecar also stores the clips' long-term spectrum at the synthesizer's mel spec (read from its spec; no
    synthesizer weights load), so that run --embedding is spectrum-matched as run --reference with the same clips."""
    _thread_defaults_for_models()
    from vcframe._io import check_output_path

    check_output_path(out)
    _check_one_voice(reference, voice)
    settings = _settings(
        option, bundle=bundle, encoder=encoder, synthesizer=synthesizer, device=device, dataset_root=dataset_root
    )
    from vcframe.pipeline import Pipeline

    pipeline = Pipeline(settings=settings, registry=_registry(settings), embedding_only=True)
    with _ProgressReporter() as progress:
        if voice:
            speaker = pipeline.voice_embedding(voice, with_spectrum=True)
        else:
            speaker = pipeline.embed(reference or [], progress, with_spectrum=True)
    speaker.save(str(out))
    from vcframe.spectrum import STORED_SPECTRUM_KEY, UNSTORED_SPECTRUM_KEY

    stored = " and the clips' spectrum" if STORED_SPECTRUM_KEY in speaker.metadata else ""
    stderr.print(f"wrote {out} ({speaker.spec.space}, dim {speaker.spec.dim}{stored})", highlight=False, markup=False)
    unavailable = speaker.metadata.get(UNSTORED_SPECTRUM_KEY)
    if unavailable:
        stderr.print(
            f"note: saved without the clips' spectrum ({unavailable}); runs from it are not spectrum-matched",
            highlight=False,
            markup=False,
        )


@app.command()
@handle_errors
def check(
    encoder: EncoderOption = None,
    synthesizer: SynthesizerOption = None,
    vocoder: VocoderOption = None,
    option: OverrideOption = None,
) -> None:
    """Check from specs (no weights loaded) whether three components fit together."""
    from vcframe.compat import check as check_specs
    from vcframe.discovery import make_config

    settings = _settings(option, encoder=encoder, synthesizer=synthesizer, vocoder=vocoder)
    registry = _registry(settings)
    chosen = {kind: registry.get(kind, getattr(settings, kind)) for kind in KINDS}
    configs = {kind: make_config(spec, settings.component_options(kind, spec.name)) for kind, spec in chosen.items()}
    report = check_specs(*((chosen[kind], configs[kind]) for kind in KINDS))
    table = Table(title=f"{report.encoder} -> {report.synthesizer} -> {report.vocoder}")
    for column in ("link", "field", "producer gives", "consumer expects"):
        table.add_column(column)
    for link, mismatches in report.links().items():
        if not mismatches:
            table.add_row(link, "all fields", "[green]match[/]", "")
        for mismatch in mismatches:
            table.add_row(link, mismatch.field, repr(mismatch.producer_value), repr(mismatch.consumer_value))
    stdout.print(table)
    if not report.ok:
        from vcframe.errors import IncompatibleComponentsError

        raise IncompatibleComponentsError(
            f"incompatible components: {report.summary()}",
            hint="pick components that fit; 'vcframe run --allow-mismatch' runs them anyway",
        )
    stdout.print("[green]compatible[/]")


# -- plugins ----------------------------------------------------------------------------------------


def _catalog() -> list[dict[str, Any]]:
    from vcframe.catalog import catalog_entries

    return [entry.model_dump() for entry in catalog_entries()]


@plugins_app.command("list")
@handle_errors
def plugins_list(
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    requirements: Annotated[bool, typer.Option("--requirements", help="Show each plugin's requirements.")] = False,
    available: Annotated[bool, typer.Option("--available", help="Also list catalog plugins not installed.")] = False,
) -> None:
    """List installed plugins (reads entry points and specs only; imports no model code)."""
    if format not in ("table", "json"):
        raise InputError(f"unknown format {format!r}", hint="use table or json")
    registry = _registry()
    rows: list[dict[str, Any]] = []
    for row in registry:
        rows.append(
            {
                "kind": row.kind,
                "name": row.name,
                "distribution": row.distribution,
                "version": row.version,
                "status": row.status,
                "summary": row.spec.summary if row.spec else None,
                "api_version": row.spec.api_version if row.spec else None,
                "error": row.error,
                "hint": row.hint,
                "warning": row.warning,
                **({"requirements": row.requirements} if requirements else {}),
            }
        )
    duplicates = {
        f"{kind}:{name}": [r.qualified_name for r in rows_] for (kind, name), rows_ in registry.duplicates().items()
    }
    broken_hooks = [vars(error) for error in hook_errors()]
    extra: list[dict[str, Any]] = []
    if available:
        installed = {(row.kind, row.name) for row in registry}
        extra = [entry for entry in _catalog() if (entry["kind"], entry["name"]) not in installed]
    if format == "json":
        payload = {"plugins": rows, "duplicates": duplicates, "hook_errors": broken_hooks}
        if available:
            payload["available"] = extra
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title="vcframe plugins")
    for column in ("kind", "name", "distribution", "version", "status", "summary / error"):
        table.add_column(column)
    if requirements:
        table.add_column("requirements")
    for item in rows:
        status = {
            "ok": "[green]ok[/]",
            "error": "[red]error[/]",
            "disabled": "[dim]disabled[/]",
            "warning": "[yellow]warning[/]",
        }[item["status"]]
        detail = item["summary"] or ""
        if item["error"]:
            detail = f"[red]{item['error']}[/] [dim]({item['hint']})[/]"
        elif item["warning"]:
            detail += f" [yellow]({item['warning']})[/]"
        cells = [item["kind"], item["name"], item["distribution"] or "", item["version"] or "", status, detail]
        if requirements:
            cells.append(", ".join(item.get("requirements", [])))
        table.add_row(*cells)
    stdout.print(table)
    for key, names in duplicates.items():
        stdout.print(f"[yellow]duplicate[/] {key} provided by {', '.join(names)}: select one as DISTRIBUTION:NAME")
    for error in broken_hooks:
        stdout.print(f"[red]hook plugin {error['name']} failed to load:[/] {error['error']}")
    if available:
        table = Table(title="available (not installed)")
        for column in ("kind", "name", "distribution", "status", "summary", "install"):
            table.add_column(column)
        for entry in extra:
            table.add_row(
                entry["kind"],
                entry["name"],
                entry["distribution"],
                entry["status"],
                entry["summary"],
                f"pip install {entry['distribution']}",
            )
        stdout.print(table)


def _find_spec(registry: Registry, name: str, kind: str | None) -> tuple[str, ComponentSpec]:
    kinds = [kind] if kind else list(KINDS)
    found: list[tuple[str, ComponentSpec]] = []
    errors: list[VcframeError] = []
    for candidate in kinds:
        try:
            found.append((candidate, registry.get(candidate, name)))
        except PluginError as error:
            errors.append(error)
    if not found:
        broken = [e for e in errors if "unknown" not in e.message]
        raise broken[0] if broken else PluginError(f"no plugin named {name!r}", hint="see 'vcframe plugins list'")
    if len(found) > 1:
        raise PluginError(f"{name!r} names a {' and a '.join(k for k, _ in found)}", hint="add --kind")
    return found[0]


def _schema_rows(spec: ComponentSpec) -> list[tuple[str, str, str, str]]:
    schema = spec.config_model.model_json_schema()
    rows = []
    for field_name, field_info in spec.config_model.model_fields.items():
        prop = schema.get("properties", {}).get(field_name, {})
        kind = (
            prop.get("type")
            or " | ".join(str(p.get("type", p.get("$ref", "?")).split("/")[-1]) for p in prop.get("anyOf", []))
            or str(prop.get("$ref", "object")).split("/")[-1]
        )
        default = field_info.get_default(call_default_factory=True)
        rendered = json.dumps(default.model_dump() if hasattr(default, "model_dump") else default, default=str)
        rows.append(
            (field_name, kind, rendered if len(rendered) < 60 else rendered[:57] + "...", field_info.description or "")
        )
    return rows


@plugins_app.command("show")
@handle_errors
def plugins_show(
    name: Annotated[str, typer.Argument(help="Plugin name (or DISTRIBUTION:NAME).")],
    kind: Annotated[str | None, typer.Option("--kind", help="encoder, synthesizer or vocoder.")] = None,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Show a plugin's spec and its config schema."""
    found_kind, spec = _find_spec(_registry(), name, kind)
    if format == "json":
        payload = spec.model_dump(mode="json", exclude={"config_model"})
        payload["config_schema"] = spec.config_model.model_json_schema()
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    stdout.print(f"[bold]{spec.name}[/] ({found_kind}, API {spec.api_version}): {spec.summary}")
    stdout.print(f"input:  {spec.input!r}", highlight=False)
    stdout.print(f"output: {spec.output!r}", highlight=False)
    stdout.print(f"capabilities: {', '.join(sorted(spec.capabilities)) or 'none'}; trainer: {spec.trainer or 'none'}")
    table = Table(title="options (-o " + f"{found_kind}.{spec.name}.OPTION=VALUE)")
    for column in ("option", "type", "default", "description"):
        table.add_column(column)
    for row in _schema_rows(spec):
        table.add_row(*row)
    stdout.print(table)
    from vcframe.checkpoints import registry_entries

    entries = [e for e in registry_entries() if e.component == f"{found_kind}/{spec.name}"]
    if entries:
        from vcframe._cli_models import styled_status
        from vcframe.downloads import is_downloaded

        table = Table(title="registered checkpoints (status: docs/models.md)")
        for column in ("id", "default", "status", "measured", "steps", "training data", "licence", "here"):
            table.add_column(column)
        for entry in entries:
            here = "shipped" if not entry.downloadable else "vcframe models pull"
            if entry.downloadable and is_downloaded(entry):
                here = "downloaded"
            table.add_row(
                f"registry:{entry.id}",
                "yes" if entry.default else "",
                styled_status(entry.status),
                escape(entry.figures()),
                str(entry.steps or ""),
                entry.training_data,
                entry.license,
                here,
            )
        stdout.print(table)


@plugins_app.command("validate")
@handle_errors
def plugins_validate(
    name: Annotated[str, typer.Argument(help="Plugin name (or DISTRIBUTION:NAME).")],
    kind: Annotated[str | None, typer.Option("--kind", help="encoder, synthesizer or vocoder.")] = None,
    device: Annotated[str, typer.Option("--device", help="Device to build and run the instance on.")] = "cpu",
) -> None:
    """Run the conformance kit on a plugin's tiny test instance (no download): one row per check."""
    from rich.markup import escape

    from vcframe.testing.checks import check_component

    registry = _registry()
    found_kind, spec = _find_spec(registry, name, kind)
    report = check_component(f"{found_kind}/{name}", registry=registry, device=device, raise_on_failure=False)
    table = Table(title=f"conformance of {found_kind} {spec.name}")
    for column in ("check", "result", "seconds", "detail"):
        table.add_column(column)
    styles = {"passed": "green", "failed": "red", "xpassed": "red", "xfailed": "yellow", "skipped": "dim"}
    for result in report.results:
        status = f"[{styles[result.status]}]{result.status}[/]"
        table.add_row(result.check, status, f"{result.seconds:.2f}", escape(result.detail))
    stdout.print(table)
    if not report.ok:
        failed = ", ".join(result.check for result in report.failures)
        raise PluginError(f"{found_kind} {spec.name!r} fails {failed}", hint="see the table above and docs/plugins.md")


# -- config -----------------------------------------------------------------------------------------


@config_app.command("show")
@handle_errors
def config_show(
    option: OverrideOption = None,
    format: Annotated[str, typer.Option("--format", help="toml or json.")] = "toml",
) -> None:
    """Print the merged settings (defaults < vcframe.toml < environment < -o); component options are checked
    against the installed components' config models (unknown options and plugins are refused)."""
    import os

    from vcframe.config import is_setting_variable
    from vcframe.discovery import make_config

    settings = _settings(option)
    registry = _registry(settings)
    for kind, components in settings.components.items():
        if kind not in KINDS:
            raise InputError(f"components.{kind}: unknown component kind", hint=f"use one of {', '.join(KINDS)}")
        for name, options in components.items():
            make_config(registry.get(kind, name), options)
    ignored = sorted(key for key in os.environ if key.startswith("VCFRAME_") and not is_setting_variable(key))
    if ignored:
        stderr.print(f"note: not settings (left to the tools that read them): {', '.join(ignored)}", highlight=False)
    dumped = settings.model_dump(mode="json", exclude_none=True)
    if format == "json":
        typer.echo(json.dumps(dumped, indent=2))
        return
    import tomli_w

    typer.echo(tomli_w.dumps(dumped))


# -- train ------------------------------------------------------------------------------------------


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@handle_errors
def train(
    context: typer.Context,
    kind: Annotated[str, typer.Argument(help="encoder, synthesizer or vocoder.")],
    plugin: Annotated[
        str | None, typer.Option("--plugin", help="Which plugin's trainer (default: the setting).")
    ] = None,
) -> None:
    """Train a component: the remaining arguments go to the plugin's trainer (try: vcframe train KIND --help)."""
    if kind not in GROUPS:
        raise InputError(f"unknown component kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    settings = _settings()
    spec = _registry(settings).get(kind, plugin or getattr(settings, kind))
    if spec.trainer is None:
        raise PluginError(f"{kind} {spec.name!r} has no trainer", hint="pick a trainable plugin with --plugin")
    from vcframe.specs import import_string

    trainer = import_string(spec.trainer)
    trainer(args=list(context.args), prog_name=f"vcframe train {kind}", standalone_mode=True)


def _load_cli_hooks() -> None:
    try:
        plugin_manager().hook.vcframe_cli_commands(app=app)
    except Exception as error:  # noqa: BLE001 - a broken hook must not break the CLI
        print(f"warning: a plugin failed to add CLI commands: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    _load_cli_hooks()
    app(args=argv, prog_name="vcframe")


from vcframe import _cli_batch as _cli_batch  # noqa: E402,F401  (registers 'vcframe batch')
from vcframe import _cli_compare as _cli_compare  # noqa: E402,F401  (registers 'vcframe compare', 'metrics')
from vcframe import _cli_models as _cli_models  # noqa: E402,F401  (registers 'vcframe models', 'bundles')
from vcframe import _cli_plugin as _cli_plugin  # noqa: E402,F401  (registers 'vcframe plugins new', 'plugin new')
from vcframe import _cli_serve as _cli_serve  # noqa: E402,F401  (registers 'vcframe serve')
from vcframe import _cli_voices as _cli_voices  # noqa: E402,F401  (registers 'vcframe voices')

__all__ = ["app", "main", "OutputError"]
