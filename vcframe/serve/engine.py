"""The server's models: pipelines by component triple, sharing built components, used on the worker thread.

Building a :class:`~vcframe.pipeline.Pipeline` is cheap (specs and a compatibility check); its components
load their weights on first use. :class:`Engine` keeps one pipeline per (encoder, synthesizer, vocoder)
triple, and one built component per (kind, component, options, device), so a model loads once per process
however many triples use it. Only the inference worker calls into the components.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile

from vcframe.config import Settings
from vcframe.discovery import Registry
from vcframe.errors import AudioInputError, InputError
from vcframe.pipeline import Pipeline
from vcframe.specs import KINDS
from vcframe.types import Waveform

if TYPE_CHECKING:
    from vcframe.serve.uploads import AudioUpload
    from vcframe.types import Mel, SpeakerEmbedding
    from vcframe.voices import Voice

Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


class _ServedPipeline(Pipeline):
    """A pipeline whose components come from the engine's shared cache."""

    def __init__(self, *args: Any, shared: dict[tuple[str, ...], Any], **kwargs: Any) -> None:
        self._shared = shared
        super().__init__(*args, **kwargs)

    def component(self, kind: str) -> Any:
        if kind not in self.specs:
            return super().component(kind)  # raises the pipeline's own error
        spec = self.specs[kind]
        options = json.dumps(self.configs[kind].model_dump(mode="json"), sort_keys=True, default=str)
        key = (kind, spec.name, spec.factory, options, str(self.device))
        built = self._shared.get(key)
        if built is None:
            built = super().component(kind)
            self._shared[key] = built
        return built


class Engine:
    """Pipelines for the triples requests ask for (at most ``max_pipelines`` kept, least recently used out)."""

    def __init__(self, settings: Settings, registry: Registry, *, max_pipelines: int = 8) -> None:
        self.settings = settings
        self.registry = registry
        self.max_pipelines = max_pipelines
        self._pipelines: OrderedDict[tuple[str, str, str], Pipeline] = OrderedDict()
        self._encoders: dict[str, Pipeline] = {}
        self._shared: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    def defaults(self) -> dict[str, str]:
        """The components used when a request names none."""
        return {kind: str(getattr(self.settings, kind)) for kind in KINDS}

    def names(self, encoder: str | None, synthesizer: str | None, vocoder: str | None) -> tuple[str, str, str]:
        """The triple a request asks for, defaults filled in."""
        defaults = self.defaults()
        return (encoder or defaults["encoder"], synthesizer or defaults["synthesizer"], vocoder or defaults["vocoder"])

    def pipeline(
        self, encoder: str | None = None, synthesizer: str | None = None, vocoder: str | None = None
    ) -> Pipeline:
        """The pipeline of a triple: PluginError (unknown) or IncompatibleComponentsError at once, no weights."""
        key = self.names(encoder, synthesizer, vocoder)
        with self._lock:
            found = self._pipelines.get(key)
            if found is not None:
                self._pipelines.move_to_end(key)
                return found
            built = _ServedPipeline(*key, settings=self.settings, registry=self.registry, shared=self._shared)
            self._pipelines[key] = built
            while len(self._pipelines) > self.max_pipelines:
                self._pipelines.popitem(last=False)
            return built

    def encoder_pipeline(self, encoder: str | None = None) -> Pipeline:
        """An embedding-only pipeline of ``encoder`` (sharing its built model with the full pipelines)."""
        name = encoder or self.defaults()["encoder"]
        with self._lock:
            found = self._encoders.get(name)
            if found is None:
                found = _ServedPipeline(
                    encoder=name,
                    settings=self.settings,
                    registry=self.registry,
                    embedding_only=True,
                    shared=self._shared,
                )
                self._encoders[name] = found
            return found

    def preload(self) -> None:
        """Build the default triple's components (loads their weights). Runs on the worker thread."""
        pipeline = self.pipeline()
        for kind in KINDS:
            pipeline.component(kind)


@dataclass
class SpeechResult:
    """A finished synthesis."""

    waveform: Waveform
    seed: int
    components: dict[str, str]
    similarity: float | None
    mels: list[Mel] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.waveform.durations[0]

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the result (no audio)."""
        return {
            "seed": self.seed,
            "components": self.components,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "duration_s": round(self.duration_s, 3),
            "sample_rate": self.waveform.sample_rate,
            "sentences": len(self.mels),
            "dropped_characters": list(self.waveform.metadata.get("dropped_characters", [])),
        }


def wav_bytes(waveform: Waveform) -> bytes:
    """Item 0 of ``waveform`` as a 16-bit PCM WAV file (clipped to [-1, 1], as vcframe.audio.save_audio writes)."""
    buffer = io.BytesIO()
    samples = np.clip(waveform.item(0), -1.0, 1.0)
    soundfile.write(buffer, samples, waveform.sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


#: The RIFF and data chunk sizes of a WAV stream whose length is not known when its header is sent.
UNKNOWN_WAV_SIZE = 0xFFFFFFFF


def streaming_wav_header(sample_rate: int) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV stream of unknown length (both chunk sizes 0xFFFFFFFF, as
    ffmpeg writes to a pipe): libsndfile, ffmpeg and browsers' WAV readers take the data up to the end."""
    if sample_rate < 1:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return (
        b"RIFF"
        + struct.pack("<I", UNKNOWN_WAV_SIZE)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", UNKNOWN_WAV_SIZE)
    )


def pcm16_bytes(waveform: Waveform) -> bytes:
    """Item 0 of ``waveform`` as little-endian 16-bit PCM samples, converted exactly as :func:`wav_bytes` does
    (clipped to [-1, 1], libsndfile's rounding), so the chunks of a stream add up to the whole file's data."""
    buffer = io.BytesIO()
    samples = np.clip(waveform.item(0), -1.0, 1.0)
    soundfile.write(buffer, samples, waveform.sample_rate, format="RAW", subtype="PCM_16", endian="LITTLE")
    return buffer.getvalue()


def joined_mel(mels: list[Mel]) -> np.ndarray | None:
    """The sentences' mels side by side, (n_mels, frames), or None when there are none."""
    if not mels:
        return None
    return np.concatenate([mel.item(0) for mel in mels], axis=1)


def cosine_similarity(first: SpeakerEmbedding, second: SpeakerEmbedding) -> float:
    """Cosine similarity of two single embeddings of the same space."""
    a = first.vector[0].detach().cpu().double()
    b = second.vector[0].detach().cpu().double()
    return float((a @ b) / (a.norm() * b.norm()).clamp_min(1e-12))


def output_similarity(pipeline: Pipeline, speaker: SpeakerEmbedding, waveform: Waveform) -> float | None:
    """How close the output's embedding lies to the reference voice's (None if the output is too short)."""
    try:
        produced = pipeline.embed([waveform])
    except AudioInputError:
        return None
    if produced.spec != speaker.spec:
        return None
    return cosine_similarity(speaker, produced)


def reference_embedding(
    pipeline: Pipeline, *, voice: Voice | None, upload: AudioUpload | None, progress: Progress = _no_progress
) -> SpeakerEmbedding:
    """The speaker embedding of a stored voice or of an uploaded clip, in ``pipeline``'s encoder space."""
    if (voice is None) == (upload is None):
        raise InputError("give exactly one of a voice and a reference upload", hint="send 'voice' or 'reference'")
    if voice is not None:
        from vcframe.voices import voice_embedding

        progress("embed", 0, 1)
        embedding = voice_embedding(voice, pipeline)
        progress("embed", 1, 1)
        return embedding
    assert upload is not None
    return pipeline.embed([upload.waveform()], progress)


def matching_clip(pipeline: Pipeline, *, voice: Voice | None, upload: AudioUpload | None) -> Any:
    """The clip spectrum matching reads (the ``match_spectrum`` setting, on by default): the upload or the
    stored voice's clip; None when the setting is 0."""
    if pipeline.settings.match_spectrum == 0:
        return None
    return upload.waveform() if upload is not None else (voice.clip if voice is not None else None)


def speak(
    pipeline: Pipeline,
    text: str,
    *,
    voice: Voice | None,
    upload: AudioUpload | None,
    seed: int,
    progress: Progress = _no_progress,
) -> SpeechResult:
    """Clone: text in the voice, with the output's similarity to the reference. Runs on the worker thread."""
    pipeline.sentences(text)  # refuse bad text before embedding anything
    speaker = reference_embedding(pipeline, voice=voice, upload=upload, progress=progress)
    clip = matching_clip(pipeline, voice=voice, upload=upload)
    waveform = pipeline.clone(text, clip, embedding=speaker, seed=seed, progress=progress)
    return _result(pipeline, speaker, waveform, seed)


def _result(pipeline: Pipeline, speaker: SpeakerEmbedding, waveform: Waveform, seed: int) -> SpeechResult:
    mels = list(pipeline.last_mels)
    similarity = output_similarity(pipeline, speaker, waveform)
    components = {kind: spec.name for kind, spec in pipeline.specs.items()}
    return SpeechResult(waveform, seed, components, similarity, mels)


def speak_stream(
    pipeline: Pipeline,
    text: str,
    *,
    voice: Voice | None,
    upload: AudioUpload | None,
    seed: int,
    on_chunk: Callable[[Waveform], None],
    progress: Progress = _no_progress,
) -> SpeechResult:
    """:func:`speak`, handing each chunk of audio to ``on_chunk`` as soon as it is made
    (:meth:`Pipeline.stream <vcframe.pipeline.Pipeline.stream>`: fold by fold with a streaming vocoder, else
    sentence by sentence, the next sentences synthesized meanwhile). Runs on the worker thread.

    An exception from ``on_chunk`` or ``progress`` (a cancellation) stops the stream at once: no more chunk is
    made and the synthesis thread ends. The result's waveform is the chunks joined: the audio that was handed
    out (output processors are not applied to streamed audio).
    """
    from vcframe.text import speakable_text

    pipeline.sentences(text)  # refuse bad text before embedding anything
    speaker = reference_embedding(pipeline, voice=voice, upload=upload, progress=progress)
    chunks: list[Waveform] = []
    clip = matching_clip(pipeline, voice=voice, upload=upload)
    stream = pipeline.stream(text, clip, embedding=speaker, seed=seed, progress=progress)
    try:
        for chunk in stream:
            chunks.append(chunk)
            on_chunk(chunk)
    finally:
        if isinstance(stream, Generator):  # stop the synthesis thread now, not when the generator is collected
            stream.close()
    dropped = [f"U+{ord(character):04X}" for character in speakable_text(text).dropped]
    waveform = Waveform.concatenate(chunks).with_metadata(dropped_characters=dropped)
    return _result(pipeline, speaker, waveform, seed)
