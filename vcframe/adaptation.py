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
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from vcframe.errors import AudioInputError, ConfigError, InputError

if TYPE_CHECKING:  # this module imports no torch: the CLI reads its defaults
    from vcframe.specs import MelSpec
    from vcframe.types import Mel, SpeakerEmbedding, Waveform

#: Gradient steps when ``--adapt-speaker`` is given without a number.
DEFAULT_ADAPTATION_STEPS = 30
#: Wall-clock bound of one adaptation, seconds.
DEFAULT_ADAPTATION_SECONDS = 120.0
#: Shortest reference clip adaptation accepts: under it a few dozen steps fit the clip's noise, not the voice.
MIN_ADAPTATION_SECONDS = 2.0


@dataclass(frozen=True)
class SpeakerAdaptation:
    """How to adapt: off unless one is given (``Pipeline.clone(..., adapt_speaker=...)``).

    Args:
        steps: gradient steps at most (default 30), >= 1.
        max_seconds: wall-clock bound (default 120.0), > 0; the step that crosses it is the last.
        learning_rate: Adam's step size on the embedding (default 0.005), > 0.
        seed: seeds the synthesizer's random draws (pre-net dropout) during adaptation (default 0).
        min_reference_s: shortest reference clip accepted, seconds (default 2.0), >= 0.
    """

    steps: int = DEFAULT_ADAPTATION_STEPS
    max_seconds: float = DEFAULT_ADAPTATION_SECONDS
    learning_rate: float = 0.005
    seed: int = 0
    min_reference_s: float = MIN_ADAPTATION_SECONDS

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"adaptation steps must be a whole number >= 1, got {self.steps!r}")
        if not self.max_seconds > 0:
            raise ConfigError(f"adaptation max_seconds must be > 0, got {self.max_seconds!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"adaptation learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"adaptation seed must be in [0, 2**63), got {self.seed!r}")
        if not self.min_reference_s >= 0:
            raise ConfigError(f"adaptation min_reference_s must be >= 0, got {self.min_reference_s!r}")

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
        embedding: the adapted SpeakerEmbedding (1, D), same spec as the one it started from.
        steps: gradient steps done (fewer than asked when the clock stopped it).
        seconds: wall time of the adaptation (the loss measurements included).
        loss_before, loss_after: the synthesizer's teacher-forced loss on the clip with the starting and the
            adapted embedding, measured with the same random draws.
        stopped_by: ``"steps"`` or ``"time"``.
        transcript: the text the clip was fitted to; transcript_source: ``"given"`` or ``"recognised"``.
    """

    embedding: SpeakerEmbedding
    steps: int
    seconds: float
    loss_before: float
    loss_after: float
    stopped_by: Literal["steps", "time"]
    transcript: str = ""
    transcript_source: Literal["given", "recognised", ""] = ""

    def summary(self) -> dict[str, Any]:
        """JSON-ready record (for output metadata and stored voices); no embedding."""
        return {
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
    """A synthesizer with the optional ``adapt_embedding`` method."""

    def adapt_embedding(
        self, text: str, mel: Mel, embedding: SpeakerEmbedding, adaptation: SpeakerAdaptation
    ) -> AdaptedEmbedding: ...


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
        synthesizer: a built synthesizer; without ``adapt_embedding`` a ConfigError refuses.
        reference: Waveform (1, T), any sample rate.
        embedding: the encoder's SpeakerEmbedding (1, D) of the clip (or of the speaker).
        adaptation: steps, time bound, learning rate, seed.
        mel_spec: the synthesizer's output mel spec (the clip's mel is computed with it).
        transcript: the words of the clip (default None: recognised with pocketsphinx).

    Raises AudioInputError for a clip shorter than ``adaptation.min_reference_s`` and InputError for an empty
    transcript, before any gradient step.
    """
    if not isinstance(synthesizer, AdaptableSynthesizer):
        name = getattr(getattr(synthesizer, "spec", None), "name", type(synthesizer).__name__)
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
    result = synthesizer.adapt_embedding(text, reference_mel(reference, mel_spec), embedding, adaptation)
    return replace(result, transcript=text, transcript_source=source)
