"""Named voices: predefined sample voices shipped with vcframe, voices users register, and dataset references.

A *sample voice* is a short synthetic clip made by ``recipes/demo/make_voices.py`` from speakers held out of
the demo training corpus; the clips ship inside the package (``vcframe.registry/voices``) with their
provenance in ``voices.json``. A *user voice* is registered with ``vcframe voices add NAME clip.wav`` (or
:meth:`VoiceStore.add`): its embedding (from the encoder that registered it) and the clip, resampled to 16 kHz
FLAC, are stored under the user data directory, so a voice works with any encoder and can be previewed.
Registered with speaker adaptation (``vcframe voices add --adapt-speaker``), a voice also stores the adapted
embedding and what it is valid for (synthesizer, checkpoint, embedding space): ``--voice NAME`` uses it with those
weights and the plain embedding with any other synthesizer. With ``--adapt-target output`` the adapted embedding
carries the synthesizer's fitted output layer (:class:`vcframe.adaptation.OutputAdapter`), used only where the
synthesizer also finds it fits its weights (their sha256: a checkpoint replaced under the same path does not).

``librispeech:<speaker>-<chapter>-<utterance>`` names an utterance of a LibriSpeech tree found under an
explicit dataset root or ``$VCFRAME_LIBRISPEECH``; nothing is downloaded.
"""

from __future__ import annotations

import builtins
import functools
import importlib.resources
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vcframe.errors import InputError

if TYPE_CHECKING:
    from vcframe.adaptation import SpeakerAdaptation
    from vcframe.pipeline import Pipeline
    from vcframe.types import SpeakerEmbedding, Waveform

#: Where user voices live unless ``VCFRAME_DATA_DIR`` says otherwise.
DATA_DIR_ENV = "VCFRAME_DATA_DIR"
LIBRISPEECH_ENV = "VCFRAME_LIBRISPEECH"
LIBRISPEECH_PREFIX = "librispeech:"
#: Voice names: lower-case letters, digits, ``-`` and ``_``; never a path.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_LIBRISPEECH_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
#: Longest clip kept for a user voice (the encoder needs seconds, not minutes).
MAX_STORED_SECONDS = 30.0
STORED_SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Voice:
    """A named voice.

    Attributes:
        name: what ``--voice`` takes.
        kind: ``"sample"`` (shipped, read-only) or ``"user"`` (registered, removable).
        description: one line for listings.
        clip: the reference audio (for previews and for encoders other than the one that registered it).
        duration_s, sample_rate: of ``clip``.
        created: ISO time of registration (user voices).
        embedding_file: the stored embedding (``.npy`` with a ``.npy.json`` spec sidecar), user voices only.
        adapted_embedding_file: the embedding after speaker adaptation, when the voice was registered with it;
            ``details["speaker_adaptation"]`` says for which synthesizer and weights, and how it went.
        details: provenance (engine settings and licence of sample voices; encoder of user voices).
    """

    name: str
    kind: Literal["sample", "user"]
    description: str
    clip: Path
    duration_s: float
    sample_rate: int
    created: str | None = None
    embedding_file: Path | None = None
    adapted_embedding_file: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no filesystem paths: safe to show to web clients)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "duration_s": round(self.duration_s, 2),
            "sample_rate": self.sample_rate,
            "created": self.created,
        }


def default_data_dir() -> Path:
    """``$VCFRAME_DATA_DIR`` or the platform's user data directory for vcframe."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    import platformdirs

    return Path(platformdirs.user_data_dir("vcframe", appauthor=False))


@functools.lru_cache(maxsize=1)
def sample_voices() -> tuple[Voice, ...]:
    """The predefined sample voices shipped in ``vcframe.registry/voices``."""
    folder = importlib.resources.files("vcframe.registry").joinpath("voices")
    catalog = json.loads(folder.joinpath("voices.json").read_text(encoding="utf-8"))
    voices = []
    for entry in catalog["voices"]:
        clip = Path(str(folder.joinpath(entry["file"])))
        voices.append(
            Voice(
                name=entry["name"],
                kind="sample",
                description=entry["description"],
                clip=clip,
                duration_s=float(entry["duration_s"]),
                sample_rate=int(entry["sample_rate"]),
                details={key: entry[key] for key in ("speaker", "text", "engine", "licence", "sha256") if key in entry},
            )
        )
    return tuple(voices)


def check_voice_name(name: str) -> str:
    """``name`` if it is a valid voice name, else :class:`InputError`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(
            f"{name!r} is not a valid voice name",
            hint="use 1-40 lower-case letters, digits, '-' or '_', starting with a letter or digit",
        )
    return name


class VoiceStore:
    """Sample voices plus the user's registered voices (under ``root``, default :func:`default_data_dir`/voices).

    Each user voice is a folder ``<root>/<name>/`` holding ``voice.json``, ``clip.flac`` and ``embedding.npy``
    (+ ``embedding.npy.json``); a voice is written into a temporary folder and renamed into place, so a
    listing never sees half a voice.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_data_dir() / "voices"

    # -- reading -------------------------------------------------------------------------------------

    def _user_voice(self, folder: Path) -> Voice | None:
        try:
            info = json.loads((folder / "voice.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # an unreadable or foreign folder is not a voice
        clip = folder / "clip.flac"
        if not clip.is_file():
            return None
        embedding_file = folder / "embedding.npy"
        adapted_file = folder / "adapted_embedding.npy"
        details = {"encoder": info.get("encoder"), "source": info.get("source")}
        if "speaker_adaptation" in info:
            details["speaker_adaptation"] = info["speaker_adaptation"]
        return Voice(
            name=folder.name,
            kind="user",
            description=str(info.get("description", "")),
            clip=clip,
            duration_s=float(info.get("duration_s", 0.0)),
            sample_rate=int(info.get("sample_rate", STORED_SAMPLE_RATE)),
            created=info.get("created"),
            embedding_file=embedding_file if embedding_file.is_file() else None,
            adapted_embedding_file=adapted_file if adapted_file.is_file() and "speaker_adaptation" in info else None,
            details=details,
        )

    def user_voices(self) -> list[Voice]:
        """Registered voices, sorted by name."""
        if not self.root.is_dir():
            return []
        voices = [self._user_voice(folder) for folder in sorted(self.root.iterdir()) if _NAME.fullmatch(folder.name)]
        return [voice for voice in voices if voice is not None]

    def list(self) -> list[Voice]:
        """Sample voices, then user voices."""
        return [*sample_voices(), *self.user_voices()]

    def names(self) -> builtins.list[str]:
        return [voice.name for voice in self.list()]

    def get(self, name: str | Voice) -> Voice:
        """The voice called ``name`` (sample voices win over user voices of the same name, which add refuses)."""
        if isinstance(name, Voice):
            return name
        for voice in sample_voices():
            if voice.name == name:
                return voice
        if isinstance(name, str) and _NAME.fullmatch(name):
            found = self._user_voice(self.root / name)
            if found is not None:
                return found
        known = ", ".join(self.names()) or "none"
        raise InputError(
            f"unknown voice {name!r} (known: {known})",
            hint="see 'vcframe voices list', or register one with 'vcframe voices add NAME CLIP'",
        )

    # -- writing -------------------------------------------------------------------------------------

    def check_new(self, name: str, *, consent: bool, replace: bool = False) -> Path:
        """The folder a new voice ``name`` would get, or :class:`InputError` if it cannot be added.

        Cheap (no audio, no model): callers check before loading an encoder.
        """
        check_voice_name(name)
        if not consent:
            raise InputError(
                "registering a voice needs the speaker's consent",
                hint="confirm that the speaker agreed to have their voice cloned (--consent)",
            )
        if name in {voice.name for voice in sample_voices()}:
            raise InputError(f"{name!r} is a sample voice", hint="choose another name")
        target = self.root / name
        if target.exists() and not replace:
            raise InputError(f"voice {name!r} already exists", hint="choose another name or remove it first")
        return target

    def add(
        self,
        name: str,
        clip: str | os.PathLike[str] | Waveform,
        *,
        pipeline: Pipeline,
        consent: bool,
        description: str = "",
        replace: bool = False,
        adaptation: SpeakerAdaptation | None = None,
        reference_text: str | None = None,
    ) -> Voice:
        """Register ``clip`` as voice ``name``: embed it with ``pipeline``'s encoder and store clip + embedding.

        ``consent`` must be True: the caller confirms the speaker agreed to have their voice cloned. With
        ``adaptation`` (default None: none) the embedding is also adapted to the clip through ``pipeline``'s
        synthesizer (``reference_text``: the clip's words, default recognised offline) and stored beside it.
        """
        from vcframe._io import to_jsonable
        from vcframe.audio import save_audio
        from vcframe.types import Waveform as WaveformType

        target = self.check_new(name, consent=consent, replace=replace)
        reference = pipeline.load_reference(clip if isinstance(clip, WaveformType) else Path(clip))
        embedding = pipeline.embed([reference])
        adapted = None
        if adaptation is not None:
            adapted = pipeline.adapt_embedding(reference, adaptation, embedding=embedding, transcript=reference_text)
        stored = _clip_for_storage(reference)
        source = "waveform" if isinstance(clip, WaveformType) else Path(clip).name
        info = {
            "name": name,
            "description": description,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": round(stored.durations[0], 3),
            "sample_rate": stored.sample_rate,
            "encoder": pipeline.specs["encoder"].name,
            "source": source,
            "consent": True,
        }
        if adapted is not None:
            info["speaker_adaptation"] = {**adapted.summary(), "valid_for": pipeline.synthesizer_identity()}
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
        try:
            save_audio(stored, staging / "clip.flac")
            embedding.save(str(staging / "embedding.npy"))
            if adapted is not None:
                adapted.embedding.save(str(staging / "adapted_embedding.npy"))
            (staging / "voice.json").write_text(json.dumps(to_jsonable(info), indent=2) + "\n", encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        voice = self._user_voice(target)
        assert voice is not None
        return voice

    def remove(self, name: str) -> None:
        """Delete user voice ``name``; sample voices cannot be removed."""
        if name in {voice.name for voice in sample_voices()}:
            raise InputError(f"{name!r} is a sample voice and cannot be removed", hint="remove a voice you added")
        voice = self.get(name)
        shutil.rmtree(voice.clip.parent)


def _clip_for_storage(waveform: Waveform) -> Waveform:
    from vcframe.audio import resample_waveform

    stored = resample_waveform(waveform, STORED_SAMPLE_RATE)
    limit = round(MAX_STORED_SECONDS * STORED_SAMPLE_RATE)
    if stored.samples.shape[1] > limit:
        stored = type(stored)(stored.samples[:, :limit].contiguous(), stored.sample_rate)
    return stored


def voice_embedding(voice: Voice, pipeline: Pipeline, *, adapted: bool = True) -> SpeakerEmbedding:
    """The embedding of ``voice`` in the space of ``pipeline``'s encoder.

    With ``adapted`` (default True), a voice's adapted embedding is used when ``pipeline``'s synthesizer,
    checkpoint and embedding space are the ones it was adapted with and, for one carrying an output adapter, when
    the synthesizer finds that the adapter fits its weights (``check_output_adapter``). Else the stored embedding
    is used when its spec equals the encoder's output spec; otherwise the clip is embedded.
    """
    from vcframe.types import SpeakerEmbedding

    adaptation = voice.details.get("speaker_adaptation")
    if adapted and voice.adapted_embedding_file is not None and isinstance(adaptation, dict):
        if not pipeline.embedding_only and adaptation.get("valid_for") == pipeline.synthesizer_identity():
            stored = SpeakerEmbedding.load(str(voice.adapted_embedding_file))
            if stored.spec == pipeline.embedding_spec() and _output_adapter_fits(stored, pipeline):
                return stored
    if voice.embedding_file is not None:
        stored = SpeakerEmbedding.load(str(voice.embedding_file))
        if stored.spec == pipeline.embedding_spec():
            return stored
    return pipeline.embed([voice.clip])


def _output_adapter_fits(embedding: SpeakerEmbedding, pipeline: Pipeline) -> bool:
    """True unless ``embedding`` carries an output adapter that ``pipeline``'s synthesizer cannot apply to its
    weights (the voice then falls back to its plain embedding, as it does with other weights)."""
    from vcframe.adaptation import OutputAdaptableSynthesizer, output_adapter

    if output_adapter(embedding) is None:
        return True
    synthesizer = pipeline.synthesizer
    if not isinstance(synthesizer, OutputAdaptableSynthesizer):
        return False
    try:
        synthesizer.check_output_adapter(embedding)
    except InputError:
        return False
    return True


def resolve_reference(reference: str | os.PathLike[str], *, dataset_root: str | os.PathLike[str] | None = None) -> Path:
    """A reference clip's path: ``librispeech:<speaker>-<chapter>-<utterance>`` looked up, anything else as is.

    The LibriSpeech root is ``dataset_root`` or ``$VCFRAME_LIBRISPEECH``: a folder holding split folders
    (``train-clean-100/`` ...), a ``LibriSpeech/`` folder holding them, or one split folder.
    """
    text = os.fspath(reference)
    if not text.startswith(LIBRISPEECH_PREFIX):
        return Path(text)
    utterance = text[len(LIBRISPEECH_PREFIX) :]
    match = _LIBRISPEECH_ID.fullmatch(utterance)
    if not match:
        raise InputError(
            f"{text!r} is not a LibriSpeech utterance id",
            hint="write librispeech:<speaker>-<chapter>-<utterance>, e.g. librispeech:1089-134686-0000",
        )
    root_text = os.fspath(dataset_root) if dataset_root is not None else os.environ.get(LIBRISPEECH_ENV)
    if not root_text:
        raise InputError(
            f"{text!r} needs a LibriSpeech folder",
            hint=f"pass --dataset-root DIR or set {LIBRISPEECH_ENV}=DIR",
        )
    root = Path(root_text)
    if not root.is_dir():
        raise InputError(
            f"LibriSpeech folder {root_text!r} not found", hint="check --dataset-root / $VCFRAME_LIBRISPEECH"
        )
    speaker, chapter, _ = match.groups()
    relative = Path(speaker, chapter, f"{utterance}.flac")
    for base in (root, *sorted(root.glob("*")), *sorted(root.glob("LibriSpeech/*"))):
        candidate = base / relative
        if candidate.is_file():
            return candidate
    raise InputError(
        f"LibriSpeech utterance {utterance} not found under {root_text!r}",
        hint="check the id and that the folder holds <split>/<speaker>/<chapter>/<id>.flac",
    )
