"""The three component contracts, as protocols, plus small optional base classes.

A component is built by its spec's factory as ``Factory(config, device=torch.device)``: ``config`` is an
instance of the spec's config model, and the factory loads whatever weights the config names. All calls are
batched (batch-first, with lengths); single items are batches of one.

Units and shapes:

* ``SpeakerEncoder.embed(Waveform (B, T) at spec.input.sample_rate) -> SpeakerEmbedding (B, D)``
* ``SpeakerEncoder.embed_speaker(Waveform (B, T)) -> SpeakerEmbedding (1, D)``: B clips of one speaker.
* ``Synthesizer.synthesize(texts (B strings), SpeakerEmbedding (B, D) or (1, D), seed) -> Mel (B, n_mels, T)``
* optional: ``Synthesizer.adapt_embedding(text, Mel (1, n_mels, T), SpeakerEmbedding (1, D), SpeakerAdaptation)
  -> AdaptedEmbedding``: speaker adaptation (:mod:`vcframe.adaptation`); without it ``--adapt-speaker`` is refused.
  ``adapt_output`` (same arguments) and ``check_output_adapter(SpeakerEmbedding)``: output-layer adaptation
  (``--adapt-target output``), an adapter carried in the embedding's metadata and applied by ``synthesize``.
* ``Vocoder.vocode(Mel (B, n_mels, T), seed) -> Waveform (B, T * hop_length)`` at the mel's sample rate.
* ``StreamingVocoder.vocode_stream(Mel (1, n_mels, T), seed) -> Iterator[Waveform (1, chunk)]`` whose
  concatenation equals ``vocode`` within the component's declared tolerance.

Empty or too-short input raises :class:`vcframe.errors.InputError` (a ``ValueError``). Inputs are never
modified in place. Outputs live on the component's device.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from pydantic import BaseModel

from vcframe.adaptation import refuse_foreign_output_adapter
from vcframe.errors import InputError
from vcframe.specs import AudioSpec, ComponentSpec, EmbeddingSpec, MelSpec
from vcframe.types import Mel, SpeakerEmbedding, Waveform


@runtime_checkable
class Component(Protocol):
    spec: ComponentSpec
    config: BaseModel
    device: torch.device

    def to(self, device: torch.device) -> Component: ...


@runtime_checkable
class SpeakerEncoder(Component, Protocol):
    def embed(self, waveform: Waveform) -> SpeakerEmbedding: ...

    def embed_speaker(self, waveform: Waveform) -> SpeakerEmbedding: ...


@runtime_checkable
class Synthesizer(Component, Protocol):
    def synthesize(self, texts: Sequence[str], embedding: SpeakerEmbedding, *, seed: int | None = None) -> Mel: ...


@runtime_checkable
class Vocoder(Component, Protocol):
    def vocode(self, mel: Mel, *, seed: int | None = None) -> Waveform: ...


def stream_chunks(total: int, first: int, largest: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` frames of each chunk a streaming vocoder yields: ``first`` frames, then twice as many
    each time up to ``largest`` (a small first chunk starts playback early; larger ones later cost less context,
    or fewer look-ahead frames, per frame). For plugin authors; HiFi-GAN and Griffin-Lim use it.

    >>> stream_chunks(40, 4, 16)
    [(0, 4), (4, 12), (12, 28), (28, 40)]
    """
    if first < 1 or largest < 1:
        raise ValueError(f"chunk sizes must be at least one frame, got first={first} and largest={largest}")
    chunks, start, size = [], 0, min(first, largest)
    while start < total:
        end = min(total, start + size)
        chunks.append((start, end))
        start, size = end, min(largest, 2 * size)
    return chunks


@runtime_checkable
class StreamingVocoder(Vocoder, Protocol):
    def vocode_stream(self, mel: Mel, *, seed: int | None = None) -> Iterator[Waveform]:
        """Mel (1, n_mels, T) -> Waveform (1, n) chunks, in order, as soon as each is ready. Concatenated they
        equal ``vocode``'s output within ``spec.streaming_tolerance``, or, for a vocoder that declares
        ``spec.streaming_spectrum_db`` (a stream that is another estimate of the same audio, as Griffin-Lim's
        blockwise phase), have its length and a mel within that many dB of it in every frame."""
        ...


class BaseComponent(abc.ABC):
    """Keeps ``spec``, ``config`` and ``device``; subclasses set the class attribute ``spec``.

    Args:
        config: an instance of ``spec.config_model`` (default: the model's defaults); a config of another
            type raises TypeError.
        device: where the component computes and returns outputs (default ``"cpu"``).

    Subclasses build their networks in ``__init__`` after calling ``super().__init__(config, device=device)``,
    on ``self.device``. :meth:`to` moves every ``torch.nn.Module`` and ``torch.Tensor`` attribute; tensors kept
    elsewhere (in a list, a dict, another object) need :meth:`_modules_to` overridden.
    """

    spec: ClassVar[ComponentSpec]

    def __init__(self, config: BaseModel | None = None, *, device: torch.device | str = "cpu") -> None:
        self.config = config if config is not None else self.spec.make_config()
        if not isinstance(self.config, self.spec.config_model):
            raise TypeError(
                f"{type(self).__name__} needs a {self.spec.config_model.__name__} config, "
                f"got {type(self.config).__name__}"
            )
        self.device = torch.device(device)

    def to(self, device: torch.device | str) -> BaseComponent:
        """Move the component to ``device`` (a ``torch.device`` or a name such as ``"cuda:0"``); returns it.

        Sets ``self.device`` and calls :meth:`_modules_to`, so later outputs live on ``device``.
        """
        self.device = torch.device(device)
        self._modules_to(self.device)
        return self

    def _modules_to(self, device: torch.device) -> None:
        """Move what the component computes with to ``device``: every attribute that is a ``torch.nn.Module``
        (in place) or a ``torch.Tensor`` (replaced by its copy on ``device``: a mel basis, a window, a lookup
        table kept outside any module). Override it, calling ``super()._modules_to(device)``, for tensors held
        in containers or for caches to drop."""
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.nn.Module):
                value.to(device)
            elif isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))

    @property
    def input_spec(self) -> Any:
        """What the component reads, resolved from its config: AudioSpec, EmbeddingSpec or MelSpec."""
        return self.spec.resolve_io(self.config)[0]

    @property
    def output_spec(self) -> Any:
        """What the component writes, resolved from its config: EmbeddingSpec, MelSpec or AudioSpec."""
        return self.spec.resolve_io(self.config)[1]


class BaseSpeakerEncoder(BaseComponent):
    """Validates input, then calls :meth:`_embed`. ``embed_speaker`` averages the item embeddings."""

    def embed(self, waveform: Waveform) -> SpeakerEmbedding:
        """Waveform (B, T) at ``input_spec.sample_rate`` -> SpeakerEmbedding (B, D).

        Raises InputError for another sample rate, an empty batch, or a clip shorter than
        ``input_spec.min_duration_s``; then calls :meth:`_embed` with the waveform on ``self.device``.
        """
        audio_spec: AudioSpec = self.input_spec
        if waveform.sample_rate != audio_spec.sample_rate:
            raise InputError(
                f"{self.spec.name} reads audio at {audio_spec.sample_rate} Hz, got {waveform.sample_rate} Hz",
                hint="resample first (vcframe.audio.resample); the pipeline does it for you",
            )
        if waveform.batch_size == 0:
            raise InputError("no audio to embed (empty batch)")
        shortest = min(waveform.durations)
        if shortest <= 0 or shortest < audio_spec.min_duration_s:
            raise InputError(
                f"{self.spec.name} needs at least {audio_spec.min_duration_s:.2f} s of audio per clip, "
                f"got {shortest:.2f} s",
                hint="use a longer reference clip",
            )
        return self._embed(waveform.to(self.device))

    def embed_speaker(self, waveform: Waveform) -> SpeakerEmbedding:
        """B clips of one speaker -> one SpeakerEmbedding (1, D): the mean of their embeddings, re-normalised."""
        return self.embed(waveform).mean()

    @abc.abstractmethod
    def _embed(self, waveform: Waveform) -> SpeakerEmbedding:
        """(B, T) audio at the input rate, on this device, every item long enough -> (B, D)."""


class BaseSynthesizer(BaseComponent):
    """Validates texts and the embedding, then calls :meth:`_synthesize`.

    Optionally, a synthesizer supports speaker adaptation (``--adapt-speaker``) with a method
    ``adapt_embedding(text, mel, embedding, adaptation) -> AdaptedEmbedding``
    (:class:`vcframe.adaptation.AdaptableSynthesizer`): fit the (1, D) embedding to the clip's Mel (1, n_mels, T)
    of this synthesizer's output spec and its transcript, within ``adaptation.steps`` and
    ``adaptation.max_seconds``, seeded by ``adaptation.seed``, changing nothing but the embedding. With the
    methods of :class:`vcframe.adaptation.OutputAdaptableSynthesizer` it also fits its output layer
    (``adapt_output``) and applies the adapter an embedding carries in ``_synthesize``.
    """

    def synthesize(self, texts: Sequence[str], embedding: SpeakerEmbedding, *, seed: int | None = None) -> Mel:
        """B texts and a SpeakerEmbedding (B, D) or (1, D) -> Mel (B, n_mels, T) with per-item lengths.

        Raises InputError for no texts, an empty or blank text, embeddings of another space, a count of
        embeddings that is neither 1 nor B, or an embedding carrying an output adapter another synthesizer made
        (:func:`vcframe.adaptation.refuse_foreign_output_adapter`); a single embedding is repeated for every text.
        Then calls :meth:`_synthesize` with the embedding on ``self.device`` and ``seed`` (default None: unseeded).
        """
        if isinstance(texts, str):
            raise TypeError("synthesize takes a sequence of texts, not one string")
        if not texts:
            raise InputError("no text to synthesize (empty list)")
        for index, text in enumerate(texts):
            if not text or not text.strip():
                raise InputError(f"text {index} is empty", hint="give some words to say")
        expected: EmbeddingSpec = self.input_spec
        if embedding.spec != expected:
            fields = ", ".join(
                f"{name}: {mine!r} vs {theirs!r}" for name, mine, theirs in expected.diff(embedding.spec)
            )
            raise InputError(f"{self.spec.name} expects embeddings in {expected.space}; got ({fields})")
        refuse_foreign_output_adapter(self.spec.name, embedding)
        if embedding.batch_size == 1 and len(texts) > 1:
            embedding = embedding.repeat(len(texts))
        if embedding.batch_size != len(texts):
            raise InputError(f"{len(texts)} texts but {embedding.batch_size} embeddings; give one or one per text")
        return self._synthesize(list(texts), embedding.to(self.device), seed)

    @abc.abstractmethod
    def _synthesize(self, texts: list[str], embedding: SpeakerEmbedding, seed: int | None) -> Mel:
        """B non-empty texts and (B, D) embeddings on this device -> Mel (B, n_mels, T) with lengths."""


class BaseVocoder(BaseComponent):
    """Validates the mel's spec, then calls :meth:`_vocode`.

    ``vocode_stream`` defaults to one chunk (the whole utterance); streaming vocoders override it and declare
    the ``streaming`` capability.
    """

    def _check_mel(self, mel: Mel) -> Mel:
        """``mel`` on ``self.device``; InputError if its spec is not ``input_spec`` (naming every differing field
        with both values) or it has no frames. Streaming vocoders call it at the top of ``vocode_stream``."""
        expected: MelSpec = self.input_spec
        if mel.spec != expected:
            fields = ", ".join(
                f"{name}: {theirs!r} (mel) vs {mine!r} (vocoder)" for name, mine, theirs in expected.diff(mel.spec)
            )
            raise InputError(f"{self.spec.name} cannot read this mel: {fields}")
        if mel.batch_size == 0 or int(mel.lengths.min()) == 0:
            raise InputError("no mel frames to vocode")
        return mel.to(self.device)

    def vocode(self, mel: Mel, *, seed: int | None = None) -> Waveform:
        """Mel (B, n_mels, T) of ``input_spec`` -> Waveform (B, T * hop_length) at the mel's sample rate.

        Checks the mel (:meth:`_check_mel`), then calls :meth:`_vocode` with ``seed`` (default None: unseeded).
        """
        return self._vocode(self._check_mel(mel), seed)

    def vocode_stream(self, mel: Mel, *, seed: int | None = None) -> Iterator[Waveform]:
        """Mel (1, n_mels, T) -> Waveform (1, n) chunks; this default yields ``vocode``'s output as one chunk."""
        yield self.vocode(mel, seed=seed)

    @abc.abstractmethod
    def _vocode(self, mel: Mel, seed: int | None) -> Waveform:
        """Mel (B, n_mels, T) on this device, spec checked -> Waveform (B, T * hop_length) with lengths."""
