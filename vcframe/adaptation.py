"""Speaker adaptation: fit the speaker embedding to the reference clip itself through the synthesizer.

The encoder's embedding places an unseen voice near the voices the synthesizer was trained on. Adaptation
starts from it and runs a few dozen gradient steps of the synthesizer's teacher-forced training loss on the
reference clip (its mel at the synthesizer's mel spec, and its transcript), changing only the embedding: the
synthesizer's weights and buffers stay as they were. The result is a :class:`~vcframe.types.SpeakerEmbedding`
in the same space, valid for that synthesizer's weights only.

    >>> adapted = adapt_speaker(synthesizer, reference, embedding, SpeakerAdaptation(steps=30), mel_spec,
    ...                         transcript="What the clip says.")
    >>> adapted.embedding, adapted.steps, adapted.seconds, adapted.loss_before, adapted.loss_after

The transcript is the one given (``--reference-text``) or, failing that, what the offline recogniser
(pocketsphinx, :mod:`vcframe.metrics.asr`) hears in the clip. Time is bounded twice: ``steps`` and a wall-clock
``max_seconds`` (the loop stops after the step that crosses it). With the same seed and the same number of steps
the result is the same; a run stopped by the clock may do fewer steps than another.

A synthesizer supports adaptation by having the optional method ``adapt_embedding`` (:class:`AdaptableSynthesizer`);
asking another one is a one-line :class:`~vcframe.errors.ConfigError`.

``SpeakerAdaptation(target="output")`` fits the synthesizer's output layer instead (``adapt_output``,
:class:`OutputAdaptableSynthesizer`; the Tacotron's ``post_proj``, 20,480 weights in the demo): the embedding's vector
stays the encoder's, and its metadata carries the fitted layer as an :class:`OutputAdapter` (under
:data:`OUTPUT_ADAPTER_KEY`, kept by ``SpeakerEmbedding.save``/``load``) with the fingerprint of the weights it was
fitted through. The synthesizer that made it applies it to each synthesis with that embedding and refuses it for
other weights; any other synthesizer refuses an embedding that carries one (:func:`refuse_foreign_output_adapter`)
rather than silently speak the unadapted voice; :func:`without_output_adapter` gives the plain embedding.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args, runtime_checkable

from vcframe.errors import AudioInputError, ConfigError, InputError

if TYPE_CHECKING:  # this module imports no torch (nor numpy): the CLI reads its defaults
    import numpy as np

    from vcframe.specs import MelSpec
    from vcframe.types import Mel, SpeakerEmbedding, Waveform

#: Gradient steps when ``--adapt-speaker`` is given without a number.
DEFAULT_ADAPTATION_STEPS = 30
#: Wall-clock bound of one adaptation, seconds.
DEFAULT_ADAPTATION_SECONDS = 120.0
#: Shortest reference clip adaptation accepts: under it a few dozen steps fit the clip's noise, not the voice.
MIN_ADAPTATION_SECONDS = 2.0

#: What adaptation fits: the speaker embedding (``adapt_embedding``) or the synthesizer's output layer
#: (``adapt_output``: a per-speaker replacement of its last projection, carried in the embedding's metadata).
AdaptationTarget = Literal["embedding", "output"]
ADAPTATION_TARGETS: tuple[AdaptationTarget, ...] = get_args(AdaptationTarget)
#: Adam's step size per target when ``SpeakerAdaptation.learning_rate`` is None. The output layer's: lr 1e-3 moved
#: GE2E similarity +0.041 for -2.7 points of words heard right over 24 items (an exploratory script), 3e-3 moved it
#: +0.058 for -5.8 points.
DEFAULT_LEARNING_RATES: dict[AdaptationTarget, float] = {"embedding": 0.005, "output": 0.001}
#: The key of an embedding's metadata that holds its output adapter (:meth:`OutputAdapter.to_metadata`).
OUTPUT_ADAPTER_KEY = "output_adapter"
#: What to do about an output adapter that does not fit the synthesizer.
OUTPUT_ADAPTER_HINT = (
    "adapt again with these weights (--adapt-speaker --adapt-target output), or use the plain embedding "
    "(vcframe.adaptation.without_output_adapter)"
)


@dataclass(frozen=True)
class SpeakerAdaptation:
    """How to adapt: off unless one is given (``Pipeline.clone(..., adapt_speaker=...)``).

    Args:
        steps: gradient steps at most (default 30), >= 1.
        max_seconds: wall-clock bound (default 120.0), > 0; the step that crosses it is the last.
        learning_rate: Adam's step size, > 0 (default None: the target's, :data:`DEFAULT_LEARNING_RATES`: 0.005 on
            the embedding, 0.001 on the output layer; :attr:`effective_learning_rate` resolves it). It stays None
            here, so ``dataclasses.replace(adaptation, target=...)`` takes the new target's default.
        seed: seeds the synthesizer's random draws (pre-net dropout) during adaptation (default 0).
        min_reference_s: shortest reference clip accepted, seconds (default 2.0), >= 0.
        target: what is fitted (default ``"embedding"``): ``"embedding"``, the speaker embedding
            (``adapt_embedding``), or ``"output"``, the synthesizer's output layer (``adapt_output``: an
            :class:`OutputAdapter` carried in the embedding's metadata, the vector unchanged).
    """

    steps: int = DEFAULT_ADAPTATION_STEPS
    max_seconds: float = DEFAULT_ADAPTATION_SECONDS
    learning_rate: float | None = None
    seed: int = 0
    min_reference_s: float = MIN_ADAPTATION_SECONDS
    target: AdaptationTarget = "embedding"

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"adaptation steps must be a whole number >= 1, got {self.steps!r}")
        if not self.max_seconds > 0:
            raise ConfigError(f"adaptation max_seconds must be > 0, got {self.max_seconds!r}")
        if self.target not in ADAPTATION_TARGETS:
            allowed = " or ".join(repr(target) for target in ADAPTATION_TARGETS)
            raise ConfigError(f"adaptation target must be {allowed}, got {self.target!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"adaptation learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"adaptation seed must be in [0, 2**63), got {self.seed!r}")
        if not self.min_reference_s >= 0:
            raise ConfigError(f"adaptation min_reference_s must be >= 0, got {self.min_reference_s!r}")

    @property
    def effective_learning_rate(self) -> float:
        """Adam's step size: ``learning_rate``, or the target's default when it is None."""
        return DEFAULT_LEARNING_RATES[self.target] if self.learning_rate is None else float(self.learning_rate)

    @classmethod
    def from_value(cls, value: int | SpeakerAdaptation | None) -> SpeakerAdaptation | None:
        """None or 0 (off), a number of steps, or a SpeakerAdaptation (returned as is)."""
        if value is None or isinstance(value, SpeakerAdaptation):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"adapt_speaker takes a number of steps or a SpeakerAdaptation, got {value!r}")
        return None if value == 0 else cls(steps=value)


@dataclass(frozen=True)
class AdaptedEmbedding:
    """What one adaptation gave.

    Attributes:
        embedding: the adapted SpeakerEmbedding (1, D), same spec as the one it started from; with target
            ``"output"`` the starting vector, its metadata carrying the :class:`OutputAdapter`.
        steps: gradient steps done (fewer than asked when the clock stopped it).
        seconds: wall time of the adaptation (the loss measurements included).
        loss_before, loss_after: the synthesizer's teacher-forced loss on the clip before and after adaptation
            (the starting and the adapted embedding, or the output layer's own and the adapted weight), measured
            with the same random draws.
        stopped_by: ``"steps"`` or ``"time"``.
        transcript: the text the clip was fitted to; transcript_source: ``"given"`` or ``"recognised"``.
        target: what was fitted, ``"embedding"`` (default) or ``"output"``.
    """

    embedding: SpeakerEmbedding
    steps: int
    seconds: float
    loss_before: float
    loss_after: float
    stopped_by: Literal["steps", "time"]
    transcript: str = ""
    transcript_source: Literal["given", "recognised", ""] = ""
    target: AdaptationTarget = "embedding"

    def summary(self) -> dict[str, Any]:
        """JSON-ready record (for output metadata and stored voices); no embedding (nor adapter weights)."""
        return {
            "target": self.target,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "loss_before": round(self.loss_before, 5),
            "loss_after": round(self.loss_after, 5),
            "stopped_by": self.stopped_by,
            "transcript": self.transcript,
            "transcript_source": self.transcript_source,
        }


@runtime_checkable
class AdaptableSynthesizer(Protocol):
    """A synthesizer with the optional ``adapt_embedding`` method (``SpeakerAdaptation(target="embedding")``)."""

    def adapt_embedding(
        self, text: str, mel: Mel, embedding: SpeakerEmbedding, adaptation: SpeakerAdaptation
    ) -> AdaptedEmbedding: ...


@runtime_checkable
class OutputAdaptableSynthesizer(Protocol):
    """A synthesizer with the optional output-layer adaptation (``SpeakerAdaptation(target="output")``).

    ``adapt_output`` takes what ``adapt_embedding`` takes and returns the starting embedding (vector unchanged)
    whose metadata carries an :class:`OutputAdapter` under :data:`OUTPUT_ADAPTER_KEY`, the network unchanged;
    ``synthesize`` applies an adapter it finds in the embedding for that call only. ``check_output_adapter``
    raises a one-line InputError (naming both sides) when the embedding's adapter does not fit this synthesizer's
    weights and returns None when it fits or there is none.
    """

    def adapt_output(
        self, text: str, mel: Mel, embedding: SpeakerEmbedding, adaptation: SpeakerAdaptation
    ) -> AdaptedEmbedding: ...

    def check_output_adapter(self, embedding: SpeakerEmbedding) -> None: ...


@dataclass(frozen=True)
class OutputAdapter:
    """A replacement for a synthesizer's output layer, fitted to one speaker (``adapt_output``).

    Carried in a SpeakerEmbedding's metadata under :data:`OUTPUT_ADAPTER_KEY` (:meth:`to_metadata`), so it is saved
    in the embedding's ``.npy.json`` sidecar and stored with a voice.

    Attributes:
        synthesizer: the name of the synthesizer that fitted it and alone applies it (e.g. ``"tacotron"``).
        layer: the layer whose weight it replaces (e.g. ``"post_proj"``).
        weight: (out_features, in_features) float32 numpy array, e.g. (n_mels, postnet_dims) = (80, 256).
        weights_sha256: the fingerprint of the synthesizer weights it was fitted through (64 hex digits; the
            synthesizer defines it, e.g. the sha256 of the Tacotron's state dict): it fits those weights only.
        checkpoint: the checkpoint those weights came from, as the synthesizer's config named it (None: random
            weights); for messages, not compared.
        steps: gradient steps it was fitted with.
    """

    synthesizer: str
    layer: str
    weight: np.ndarray
    weights_sha256: str
    checkpoint: str | None
    steps: int

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON values: the weight as base64 of its little-endian float32 bytes, with its ``shape`` and
        ``encoding`` (``base64-float32-le``). Exact by construction, one line, and a fifth of the size of nested
        lists of decimal numbers in the indented sidecar (109 kB for the demo's 80 x 256, not 506 kB)."""
        import numpy as np

        weight = np.ascontiguousarray(self.weight, dtype="<f4")
        return {
            "synthesizer": self.synthesizer,
            "layer": self.layer,
            "shape": [int(size) for size in weight.shape],
            "encoding": "base64-float32-le",
            "weight": base64.b64encode(weight.tobytes()).decode("ascii"),
            "weights_sha256": self.weights_sha256,
            "checkpoint": self.checkpoint,
            "steps": self.steps,
        }

    @classmethod
    def from_metadata(cls, value: Any) -> OutputAdapter:
        """Read what :meth:`to_metadata` wrote; ValueError (one line, saying what is wrong) unless every field is
        there, the weight decodes to ``shape`` (two sizes >= 1) and its values are finite."""
        import numpy as np

        fields = {"synthesizer", "layer", "shape", "encoding", "weight", "weights_sha256", "checkpoint", "steps"}
        if not isinstance(value, Mapping) or not fields <= set(value):
            missing = sorted(fields - set(value)) if isinstance(value, Mapping) else sorted(fields)
            raise ValueError(f"it is not an object with {', '.join(sorted(fields))} (missing {', '.join(missing)})")
        if value["encoding"] != "base64-float32-le":
            raise ValueError(f"its weight encoding is {value['encoding']!r}, not 'base64-float32-le'")
        shape = value["shape"]
        if not (
            isinstance(shape, list)
            and len(shape) == 2
            and all(isinstance(size, int) and not isinstance(size, bool) and size >= 1 for size in shape)
        ):
            raise ValueError(f"its shape is {shape!r}, not two sizes >= 1")
        for name in ("synthesizer", "layer", "weights_sha256", "weight"):
            if not isinstance(value[name], str) or not value[name]:
                raise ValueError(f"its {name} is {value[name]!r}, not a non-empty string")
        if not (value["checkpoint"] is None or isinstance(value["checkpoint"], str)):
            raise ValueError(f"its checkpoint is {value['checkpoint']!r}, not a string or null")
        steps = value["steps"]
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"its steps are {steps!r}, not a whole number >= 0")
        try:
            raw = base64.b64decode(value["weight"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValueError(f"its weight is not base64 ({error})") from None
        needed = 4 * shape[0] * shape[1]
        if len(raw) != needed:
            raise ValueError(f"its weight has {len(raw)} bytes; shape {shape} of float32 needs {needed}")
        weight = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
        if not np.all(np.isfinite(weight)):
            raise ValueError("its weight has values that are not finite")
        return cls(value["synthesizer"], value["layer"], weight, value["weights_sha256"], value["checkpoint"], steps)


def output_adapter(embedding: SpeakerEmbedding | Mapping[str, Any]) -> OutputAdapter | None:
    """The :class:`OutputAdapter` an embedding (or its metadata) carries; None when it carries none, a one-line
    InputError when it is unreadable."""
    metadata = embedding if isinstance(embedding, Mapping) else embedding.metadata
    if OUTPUT_ADAPTER_KEY not in metadata:
        return None
    try:
        return OutputAdapter.from_metadata(metadata[OUTPUT_ADAPTER_KEY])
    except ValueError as error:
        raise InputError(
            f"the embedding's output adapter is unreadable: {error}",
            hint="adapt again (--adapt-speaker --adapt-target output), or use the plain embedding "
            "(vcframe.adaptation.without_output_adapter)",
        ) from error


def without_output_adapter(embedding: SpeakerEmbedding) -> SpeakerEmbedding:
    """``embedding`` without its output adapter (the same object when it carries none): the encoder's voice."""
    if OUTPUT_ADAPTER_KEY not in embedding.metadata:
        return embedding
    metadata = {key: value for key, value in embedding.metadata.items() if key != OUTPUT_ADAPTER_KEY}
    return replace(embedding, metadata=metadata)


def refuse_foreign_output_adapter(synthesizer_name: str, embedding: SpeakerEmbedding) -> None:
    """InputError when ``embedding`` carries an output adapter made by another synthesizer than
    ``synthesizer_name`` (or an unreadable one): that synthesizer cannot apply it, and ignoring it would speak
    the unadapted voice while the caller asked for the adapted one. The synthesizer that made it checks the rest
    (its weights and shape) itself."""
    adapter = output_adapter(embedding)
    if adapter is not None and adapter.synthesizer != synthesizer_name:
        raise InputError(
            f"the embedding carries an output adapter fitted to {adapter.synthesizer}'s {adapter.layer}; "
            f"synthesizer {synthesizer_name!r} cannot apply it",
            hint=f"synthesize with {adapter.synthesizer}, or use the plain embedding "
            "(vcframe.adaptation.without_output_adapter: the vector is the encoder's)",
        )


def reference_mel(waveform: Waveform, spec: MelSpec) -> Mel:
    """Item 0 of ``waveform`` as a Mel (1, n_mels, T) of ``spec``: resampled to ``spec.sample_rate`` and
    peak-normalised as the synthesizers' training data is (:func:`vcframe.audio.rescale_peak`)."""
    from vcframe.audio import mel_spectrogram, resample_waveform, rescale_peak
    from vcframe.types import Mel, Waveform

    clip = Waveform.from_numpy([waveform.item(0)], waveform.sample_rate)
    samples = rescale_peak(resample_waveform(clip, spec.sample_rate).item(0))
    return Mel.from_numpy([mel_spectrogram(samples, spec)], spec)


def reference_transcript(waveform: Waveform, text: str | None) -> tuple[str, Literal["given", "recognised"]]:
    """(transcript, source): ``text`` when given, else what pocketsphinx hears in item 0 of ``waveform``.

    An empty or blank transcript (given, or nothing heard) is an InputError.
    """
    if text is not None:
        if not text.strip():
            raise InputError("the reference text is empty", hint="give the words the reference clip says")
        return " ".join(text.split()), "given"
    from vcframe.metrics.asr import default_recognizer

    heard = default_recognizer().transcribe(waveform)
    if not heard.strip():
        raise InputError(
            "no words were recognised in the reference clip, so it has no transcript to adapt to",
            hint="pass --reference-text with the words the clip says",
        )
    return heard, "recognised"


def adapt_speaker(
    synthesizer: Any,
    reference: Waveform,
    embedding: SpeakerEmbedding,
    adaptation: SpeakerAdaptation,
    mel_spec: MelSpec,
    *,
    transcript: str | None = None,
) -> AdaptedEmbedding:
    """Fit ``embedding`` (1, D) to ``reference`` (one clip) through ``synthesizer``; see the module docstring.

    Args:
        synthesizer: a built synthesizer; without ``adapt_embedding`` (target ``"embedding"``) or ``adapt_output``
            (target ``"output"``) a ConfigError refuses.
        reference: Waveform (1, T), any sample rate.
        embedding: the encoder's SpeakerEmbedding (1, D) of the clip (or of the speaker); an output adapter it
            carries is dropped first (adaptation starts from the synthesizer's own weights).
        adaptation: target, steps, time bound, learning rate, seed.
        mel_spec: the synthesizer's output mel spec (the clip's mel is computed with it).
        transcript: the words of the clip (default None: recognised with pocketsphinx).

    Raises AudioInputError for a clip shorter than ``adaptation.min_reference_s`` and InputError for an empty
    transcript, before any gradient step.
    """
    name = getattr(getattr(synthesizer, "spec", None), "name", type(synthesizer).__name__)
    if adaptation.target == "output":
        if not isinstance(synthesizer, OutputAdaptableSynthesizer):
            raise ConfigError(
                f"synthesizer {name!r} cannot adapt its output layer to a speaker (it has no adapt_output method)",
                hint="use --adapt-target embedding, or a synthesizer that supports it (tacotron)",
            )
    elif not isinstance(synthesizer, AdaptableSynthesizer):
        raise ConfigError(
            f"synthesizer {name!r} cannot adapt to a speaker (it has no adapt_embedding method)",
            hint="drop --adapt-speaker, or use a synthesizer that supports it (tacotron)",
        )
    if reference.batch_size != 1:
        raise InputError(f"speaker adaptation fits one reference clip; got {reference.batch_size}")
    if embedding.batch_size != 1:
        raise InputError(f"speaker adaptation starts from one embedding; got {embedding.batch_size}")
    duration = reference.durations[0]
    if duration < adaptation.min_reference_s:
        raise AudioInputError(
            f"the reference clip is {duration:.2f} s long; speaker adaptation needs at least "
            f"{adaptation.min_reference_s:.2f} s",
            hint="use a longer clip (5-10 s of speech), or leave adaptation off",
        )
    text, source = reference_transcript(reference, transcript)
    mel = reference_mel(reference, mel_spec)
    start = without_output_adapter(embedding)
    adapt = synthesizer.adapt_output if adaptation.target == "output" else synthesizer.adapt_embedding
    result: AdaptedEmbedding = adapt(text, mel, start, adaptation)
    return replace(result, transcript=text, transcript_source=source, target=adaptation.target)
