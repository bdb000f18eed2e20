"""``vcframe voices``: list, show, add and remove named voices (see :mod:`vcframe.voices`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vcframe.cli import (
    AdaptSpeakerOption,
    AdaptStepsOption,
    AdaptTargetOption,
    DatasetRootOption,
    DeviceOption,
    EncoderOption,
    OverrideOption,
    ReferenceTextOption,
    SynthesizerOption,
    _adaptation_line,
    _registry,
    _settings,
    _speaker_adaptation,
    _thread_defaults_for_models,
    app,
    handle_errors,
    stderr,
    stdout,
)
from vcframe.errors import InputError

voices_app = typer.Typer(help="Named voices: shipped samples and the ones you register.", no_args_is_help=True)
app.add_typer(voices_app, name="voices")


@voices_app.command("list")
@handle_errors
def voices_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Sample voices (shipped) and your registered voices; use a name with --voice."""
    from vcframe.voices import VoiceStore

    store = VoiceStore()
    voices = store.list()
    if as_json:
        stdout.print_json(json.dumps([voice.summary() for voice in voices]))
        return
    table = Table(title=f"voices (yours are stored in {store.root})")
    for column in ("name", "kind", "seconds", "description"):
        table.add_column(column)
    for voice in voices:
        table.add_row(voice.name, voice.kind, f"{voice.duration_s:.1f}", voice.description)
    stdout.print(table)


@voices_app.command("show")
@handle_errors
def voices_show(name: Annotated[str, typer.Argument(help="Voice name.")]) -> None:
    """Everything recorded about one voice (provenance, licence, files)."""
    from vcframe._io import to_jsonable
    from vcframe.voices import VoiceStore

    voice = VoiceStore().get(name)
    details = {
        **voice.summary(),
        "clip": str(voice.clip),
        "embedding_file": str(voice.embedding_file) if voice.embedding_file else None,
        **voice.details,
    }
    stdout.print_json(json.dumps(to_jsonable(details)))


@voices_app.command("add")
@handle_errors
def voices_add(
    name: Annotated[str, typer.Argument(help="New voice name (lower-case letters, digits, - and _).")],
    clip: Annotated[str, typer.Argument(help="Reference clip (wav/flac/ogg/mp3) or librispeech:<id>.")],
    consent: Annotated[
        bool, typer.Option("--consent", help="Confirm the speaker agreed to have their voice cloned.")
    ] = False,
    description: Annotated[str, typer.Option("--description", "-d", help="One line shown in listings.")] = "",
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an existing voice of that name.")] = False,
    encoder: EncoderOption = None,
    device: DeviceOption = None,
    dataset_root: DatasetRootOption = None,
    option: OverrideOption = None,
    adapt_speaker: AdaptSpeakerOption = False,
    adapt_steps: AdaptStepsOption = None,
    adapt_target: AdaptTargetOption = None,
    reference_text: ReferenceTextOption = None,
    synthesizer: SynthesizerOption = None,
) -> None:
    """Register a clip as a named voice (stores its embedding and a 16 kHz copy of the clip; with
    --adapt-speaker also the embedding adapted to the clip through the synthesizer, used with those weights;
    with --adapt-target output that embedding carries the synthesizer's output layer fitted to the clip)."""
    _thread_defaults_for_models()
    from vcframe.pipeline import Pipeline
    from vcframe.voices import VoiceStore, resolve_reference

    store = VoiceStore()
    store.check_new(name, consent=consent, replace=replace)  # before loading the encoder
    adaptation = _speaker_adaptation(adapt_speaker, adapt_steps, reference_text, adapt_target)
    if synthesizer is not None and adaptation is None:
        raise InputError("--synthesizer is used by speaker adaptation only", hint="add --adapt-speaker")
    settings = _settings(option, encoder=encoder, synthesizer=synthesizer, device=device, dataset_root=dataset_root)
    path = resolve_reference(clip, dataset_root=settings.dataset_root)
    pipeline = Pipeline(settings=settings, registry=_registry(settings), embedding_only=adaptation is None)
    voice = store.add(
        name,
        path,
        pipeline=pipeline,
        consent=consent,
        description=description,
        replace=replace,
        adaptation=adaptation,
        reference_text=reference_text,
    )
    stderr.print(f"added voice {voice.name!r} ({voice.duration_s:.1f} s, {voice.details['encoder']})", highlight=False)
    if "speaker_adaptation" in voice.details:
        summary = voice.details["speaker_adaptation"]
        used_with = summary["valid_for"]["synthesizer"]
        stderr.print(f"speaker adaptation ({used_with}): {_adaptation_line(summary)}", highlight=False, markup=False)


@voices_app.command("remove")
@handle_errors
def voices_remove(name: Annotated[str, typer.Argument(help="A voice you registered.")]) -> None:
    """Delete a registered voice (sample voices cannot be removed)."""
    from vcframe.voices import VoiceStore

    VoiceStore().remove(name)
    stderr.print(f"removed voice {name!r}", highlight=False)


@voices_app.command("export")
@handle_errors
def voices_export(
    name: Annotated[str, typer.Argument(help="Voice name.")],
    out: Annotated[Path, typer.Option("--out", help="Where to copy the voice's clip (.flac).")],
) -> None:
    """Copy a voice's reference clip to a file (to listen to it or use it elsewhere)."""
    from vcframe._io import atomic_path, check_output_path
    from vcframe.voices import VoiceStore

    voice = VoiceStore().get(name)
    check_output_path(out)
    if out.suffix.lower() != voice.clip.suffix.lower():
        raise InputError(
            f"the clip is {voice.clip.suffix} audio; {out} has another suffix",
            hint=f"use --out NAME{voice.clip.suffix}",
        )
    with atomic_path(out) as staging:
        shutil.copyfile(voice.clip, staging)
    stderr.print(f"wrote {out}", highlight=False)
