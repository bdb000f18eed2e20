"""The comparison grid: systems x voices x texts, read from TOML or built from command-line flags.

    seed = 1                       # base seed; each (voice, text) pair gets its own fixed seed from it
    device = "cpu"
    judge = "ge2e"                 # speaker encoder that judges similarity (independent of the systems)
    metrics = ["speaker_similarity", "wer", "mcd", "rtf", "peak_memory"]   # default: every installed metric

    [[systems]]
    name = "griffinlim"
    vocoder = "griffinlim"         # encoder and synthesizer default to the settings (default bundle)
    [systems.options.vocoder]      # per-component options of this system
    n_iter = 60

    [[systems]]
    name = "wavernn"
    vocoder = "wavernn"

    voices = ["clara", "speakers/ann.wav", "librispeech:1089-134686-0000"]  # or [[voices]] name=, reference=

    texts = ["The birch canoe slid on the smooth planks."]
    texts_file = "sentences.txt"   # one text per line; blank lines and lines starting with # are skipped

    [[texts]]                      # a text with ground-truth recordings, by voice name
    id = "harvard1"
    text = "Glue the sheet to the dark blue background."
    ground_truth = { ann = "truth/ann_harvard1.wav" }

Relative paths are relative to the grid file. Voices may be audio files, registered voice names
(``vcframe voices list``) or ``librispeech:`` utterance ids (see :func:`vcframe.voices.resolve_reference`).
"""

from __future__ import annotations

import os
import re
import tomllib
import zlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vcframe.errors import ConfigError, InputError, validation_problems

ComponentKind = Literal["encoder", "synthesizer", "vocoder"]
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".oga", ".opus", ".aiff", ".aif"}


def _check_label(value: str | None, what: str) -> str | None:
    if value is not None and not _LABEL.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be 1-64 letters, digits or '_.+-', starting with a letter or digit")
    return value


class SystemEntry(BaseModel):
    """One system: an encoder/synthesizer/vocoder triple with its own component options."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Label in tables and folders; default ENCODER+SYNTH+VOCODER.")
    encoder: str | None = Field(default=None, description="Speaker encoder plugin; default: the setting.")
    synthesizer: str | None = Field(default=None, description="Synthesizer plugin; default: the setting.")
    vocoder: str | None = Field(default=None, description="Vocoder plugin; default: the setting.")
    options: dict[ComponentKind, dict[str, Any]] = Field(
        default_factory=dict, description="Per-component options of this system: {kind: {option: value}}."
    )
    allow_mismatch: bool = Field(default=False, description="Run the triple even if its specs do not fit.")
    adapt: bool = Field(default=False, description="Bridge a mel mismatch with a mel-adapter hook.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _check_label(value, "system name")


class VoiceEntry(BaseModel):
    """One voice: one or more reference clips of one speaker."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Label; default: the voice name, file stem or utterance id.")
    reference: str | list[str] = Field(
        description="Audio file(s), a registered voice name, or librispeech:<speaker>-<chapter>-<utterance>."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _check_label(value, "voice name")

    @property
    def references(self) -> list[str]:
        return [self.reference] if isinstance(self.reference, str) else list(self.reference)


class TextEntry(BaseModel):
    """One text, optionally with ground-truth recordings of some voices saying it."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="Label; default t1, t2, ... in grid order.")
    text: str = Field(min_length=1, description="What every system says.")
    ground_truth: dict[str, str] = Field(
        default_factory=dict, description="Voice name -> recording of that voice saying this text (for MCD)."
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return _check_label(value, "text id")


class Grid(BaseModel):
    """A comparison: every system speaks every text in every voice."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=0, ge=0, description="Base seed; item seeds derive from it and the (voice, text) pair.")
    device: str = Field(default="cpu", description="Device for the systems and the judge: cpu, cuda, auto.")
    judge: str = Field(default="ge2e", description="Speaker encoder judging similarity (independent of the systems).")
    judge_options: dict[str, Any] = Field(default_factory=dict, description="Options of the judge encoder.")
    metrics: list[str] | None = Field(default=None, description="Metric names; default: every installed metric.")
    metric_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per metric: {metric: {option: value}}."
    )
    systems: list[SystemEntry] = Field(default_factory=list, description="The systems compared.")
    voices: list[VoiceEntry | str] = Field(default_factory=list, description="Reference voices.")
    texts: list[TextEntry | str] = Field(default_factory=list, description="Texts, inline.")
    texts_file: str | None = Field(default=None, description="A UTF-8 file with one text per line.")
    warmup: bool = Field(
        default=True, description="Run each system once, untimed, in each worker before measuring (fairer RTF)."
    )
    score_ground_truth: bool = Field(
        default=True,
        description="Add 'ground-truth' rows scoring the recordings themselves (calibrates WER and similarity).",
    )
    sample_voice: str | None = Field(default=None, description="Voice of the item plotted per system (default: first).")
    sample_text: str | None = Field(default=None, description="Text id of the item plotted (default: first).")
    base_dir: Path = Field(
        default=Path("."), exclude=True, description="Where relative paths start (the grid's folder)."
    )


def load_grid(path: str | os.PathLike[str]) -> Grid:
    """Read a grid TOML file; ConfigError naming the bad keys (with the valid ones) or the TOML error."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"grid file {str(source)!r} not found", hint="check the path")
    try:
        loaded = tomllib.loads(source.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"grid file {str(source)!r} is not valid TOML ({error})") from error
    return parse_grid(loaded, base_dir=source.resolve().parent, source=str(source))


def parse_grid(data: dict[str, Any], *, base_dir: Path = Path("."), source: str = "the grid") -> Grid:
    """Validate a grid given as a mapping (parsed TOML)."""
    try:
        grid = Grid.model_validate({**data, "base_dir": base_dir})
    except ValidationError as error:
        problems = validation_problems(error, "(grid)")
        valid = ", ".join(name for name in Grid.model_fields if name != "base_dir")
        raise ConfigError(f"invalid {source}: {problems}", hint=f"valid keys: {valid}") from error
    return grid


# -- resolved grid ------------------------------------------------------------------------------------


class ResolvedVoice(BaseModel):
    """A voice with its label and the reference files found for it."""

    model_config = ConfigDict(frozen=True)

    name: str
    sources: tuple[str, ...]
    files: tuple[Path, ...]


class ResolvedText(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    ground_truth: dict[str, Path]


def _is_path_like(text: str) -> bool:
    return "/" in text or os.sep in text or Path(text).suffix.lower() in _AUDIO_SUFFIXES


def resolve_voice_reference(reference: str, base_dir: Path, dataset_root: str | None = None) -> tuple[str, Path]:
    """(default label, audio file) of one reference: a file, a ``librispeech:`` id (looked up under
    ``dataset_root`` or ``$VCFRAME_LIBRISPEECH``) or a registered voice name (``vcframe voices list``)."""
    from vcframe.voices import LIBRISPEECH_PREFIX, VoiceStore, resolve_reference

    if reference.startswith(LIBRISPEECH_PREFIX):
        return reference[len(LIBRISPEECH_PREFIX) :], resolve_reference(reference, dataset_root=dataset_root)
    candidate = Path(reference).expanduser()
    if not candidate.is_absolute():
        candidate = base_dir / candidate
    if candidate.is_file():
        return candidate.stem, candidate
    if _is_path_like(reference):
        raise InputError(
            f"reference clip {reference!r} not found (looked for {str(candidate)!r})", hint="check the path"
        )
    voice = VoiceStore().get(reference)
    return voice.name, Path(voice.clip)


def _safe_label(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-.") or "voice"
    return cleaned[:64]


def resolve_voices(grid: Grid, dataset_root: str | None = None) -> list[ResolvedVoice]:
    """Every voice with a unique label and existing reference files; InputError otherwise."""
    if not grid.voices:
        raise InputError("the grid names no voices", hint="add voices = [...] (files, voice names, librispeech: ids)")
    resolved: list[ResolvedVoice] = []
    for entry in grid.voices:
        voice = VoiceEntry(reference=entry) if isinstance(entry, str) else entry
        if not voice.references:
            raise InputError("a voice in the grid has no reference", hint="give reference = FILE or a list of files")
        found = [resolve_voice_reference(reference, grid.base_dir, dataset_root) for reference in voice.references]
        for _, path in found:
            if not path.is_file():
                raise InputError(f"reference clip {str(path)!r} not found", hint="check the path")
        label = voice.name or _safe_label(found[0][0])
        resolved.append(ResolvedVoice(name=label, sources=tuple(voice.references), files=tuple(p for _, p in found)))
    _refuse_duplicates([voice.name for voice in resolved], "voice", "give the voices distinct names")
    return resolved


def _read_texts_file(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"texts file {str(path)!r} not found", hint="check texts_file / --texts-file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise InputError(f"texts file {str(path)!r} is not UTF-8 text", hint="save it as UTF-8") from error
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def resolve_texts(grid: Grid, voice_names: list[str]) -> list[ResolvedText]:
    """Every text with a unique id and its ground-truth files (checked to exist, voices checked to be known)."""
    entries = [TextEntry(text=entry) if isinstance(entry, str) else entry for entry in grid.texts]
    if grid.texts_file is not None:
        file = Path(grid.texts_file).expanduser()
        entries += [
            TextEntry(text=line) for line in _read_texts_file(file if file.is_absolute() else grid.base_dir / file)
        ]
    if not entries:
        raise InputError("the grid names no texts", hint="add texts = [...] or texts_file = FILE")
    resolved: list[ResolvedText] = []
    for index, entry in enumerate(entries, start=1):
        if not entry.text.strip():
            raise InputError(f"text {entry.id or index} is empty", hint="give some words to say")
        truths: dict[str, Path] = {}
        for voice, recording in entry.ground_truth.items():
            if voice not in voice_names:
                raise InputError(
                    f"text {entry.id or index} has ground truth for unknown voice {voice!r}",
                    hint=f"voices are: {', '.join(voice_names)}",
                )
            path = Path(recording).expanduser()
            path = path if path.is_absolute() else grid.base_dir / path
            if not path.is_file():
                raise InputError(f"ground-truth recording {str(path)!r} not found", hint="check the path")
            truths[voice] = path
        resolved.append(ResolvedText(id=entry.id or f"t{index}", text=entry.text.strip(), ground_truth=truths))
    _refuse_duplicates([text.id for text in resolved], "text id", "give the texts distinct ids")
    return resolved


def _refuse_duplicates(labels: list[str], what: str, hint: str) -> None:
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise InputError(f"{what} {', '.join(map(repr, repeated))} appears more than once", hint=hint)


def item_seed(base_seed: int, voice: str, text: str) -> int:
    """The fixed seed of a (voice, text) pair: the same for every system, stable when the grid is reordered."""
    return base_seed + zlib.crc32(f"{voice}\x00{text}".encode()) % 1_000_000


def parse_system_flag(value: str) -> SystemEntry:
    """``[NAME=]ENCODER/SYNTHESIZER/VOCODER`` (any part may be empty for the setting's default)."""
    name, separator, triple = value.partition("=")
    if not separator:
        name, triple = "", value
    parts = triple.split("/")
    if len(parts) != 3:
        raise InputError(
            f"--system {value!r} is not [NAME=]ENCODER/SYNTHESIZER/VOCODER",
            hint="e.g. --system gl=ge2e/tacotron/griffinlim (leave a part empty for the default)",
        )
    encoder, synthesizer, vocoder = (part.strip() or None for part in parts)
    try:
        return SystemEntry(name=name.strip() or None, encoder=encoder, synthesizer=synthesizer, vocoder=vocoder)
    except ValidationError as error:
        raise InputError(f"--system {value!r}: {error.errors()[0]['msg']}") from error
