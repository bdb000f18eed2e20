"""Specs: what a component consumes and produces, as frozen pydantic models.

Specs are plain data. This module imports pydantic and the standard library only, never torch, so that
plugin spec modules (which import it) can be read by ``vcframe plugins list`` without loading any model code.

Two components fit together when the producer's output spec equals the consumer's input spec field by
field (see :mod:`vcframe.compat`). ``diff`` on each spec lists the differing fields with both values.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

#: The plugin API this core provides. A spec built for another major version is refused; a newer minor
#: version is accepted with a warning (the plugin may use features this core lacks).
API_VERSION = "1.0"

ComponentKind = Literal["encoder", "synthesizer", "vocoder"]
KINDS: tuple[ComponentKind, ...] = ("encoder", "synthesizer", "vocoder")

#: Capabilities a component may declare in ``ComponentSpec.capabilities``.
KNOWN_CAPABILITIES = frozenset(
    {
        "batched",  # a batch of B items is processed in one call, equal to B single calls
        "streaming",  # vocoder: ``vocode_stream`` yields audio before the whole utterance is done
        "alignment",  # synthesizer: returned mels carry the attention alignment
        "seeded",  # output depends on a random stream that ``seed=`` pins down
        "trainable",  # ``spec.trainer`` names a training command
        "cuda",  # runs on CUDA devices
        "speaker_embedding",  # encoder: ``embed_speaker`` averages several clips into one embedding
    }
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def diff(self, other: _Frozen) -> list[tuple[str, Any, Any]]:
        """Fields whose values differ, as ``(field, self value, other value)``, in declaration order."""
        if type(other) is not type(self):
            raise TypeError(f"cannot compare a {type(self).__name__} with a {type(other).__name__}")
        return [
            (name, getattr(self, name), getattr(other, name))
            for name in type(self).model_fields
            if getattr(self, name) != getattr(other, name)
        ]


class MelSpec(_Frozen):
    """Every setting that changes a mel spectrogram's values.

    Two mels are interchangeable only if every field matches: the same sample rate with another hop length,
    fmax or normalisation range gives numbers a vocoder trained on the other spec will misread.
    The value of one bin is computed as::

        wav' = wav - preemphasis * wav[n-1]            (skipped when preemphasis == 0)
        wav''= pad(wav', pad_length each side, pad_mode)   (when not centred and pad_length > 0)
        X    = STFT(wav'')                             (n_fft, win_length, hop_length, periodic Hann, center/pad_mode)
        S    = sqrt(Re(X)^2 + Im(X)^2 + magnitude_epsilon) ** magnitude_power
        M    = mel_basis(n_mels, fmin, fmax, mel_scale, mel_norm) @ S
        amplitude_scale == "linear": value = M
        amplitude_scale == "ln":     value = ln(max(amplitude_floor, M))   (normalization must be "none")
        amplitude_scale == "db":     D = 20 log10(max(amplitude_floor, M)) - ref_level_db, then
            normalization == "symmetric":  clip((2 max_abs)(D - min_level_db)/(-min_level_db) - max_abs)
            normalization == "asymmetric": clip(max_abs (D - min_level_db)/(-min_level_db), 0, max_abs)
            normalization == "none":       D

    RTVC's synthesizer mel is "db" and symmetric, centred with constant padding; HiFi-GAN's (NVIDIA's)
    is "ln" of the magnitude, not centred, reflect-padded by (n_fft - hop) / 2, with 1e-9 inside the root.
    The fields added for HiFi-GAN (``pad_length``, ``magnitude_epsilon``, ``"ln"``) default to values that
    leave every earlier spec, including those stored in checkpoint metadata, unchanged.
    """

    sample_rate: int = Field(gt=0, description="Sample rate of the audio the mel describes, in Hz.")
    n_fft: int = Field(gt=0, description="FFT size in samples.")
    win_length: int = Field(gt=0, description="Analysis window length in samples (Hann).")
    hop_length: int = Field(gt=0, description="Samples between frames; one mel frame per hop.")
    n_mels: int = Field(gt=0, description="Number of mel bands.")
    fmin: float = Field(ge=0, description="Lowest mel filter edge in Hz.")
    fmax: float = Field(gt=0, description="Highest mel filter edge in Hz.")
    mel_scale: Literal["slaney", "htk"] = Field("slaney", description="Mel scale formula.")
    mel_norm: Literal["slaney", "none"] = Field("slaney", description="Filter normalisation.")
    center: bool = Field(True, description="Frames centred on hop multiples (padded by n_fft/2 each side).")
    pad_mode: Literal["constant", "reflect"] = Field(
        "constant", description="Padding used when centred, or for pad_length when not."
    )
    pad_length: int = Field(
        0,
        ge=0,
        description="Samples padded on each side (pad_mode) before framing when not centred; HiFi-GAN: "
        "(n_fft - hop_length) / 2, so that frame t is centred on sample hop_length * t + hop_length / 2.",
    )
    preemphasis: float = Field(0.0, ge=0, lt=1, description="Pre-emphasis coefficient applied first; 0 = none.")
    magnitude_epsilon: float = Field(
        0.0, ge=0, description="Added to Re^2 + Im^2 inside the square root of the magnitude (HiFi-GAN: 1e-9)."
    )
    magnitude_power: float = Field(1.0, gt=0, description="1 = magnitude spectrogram, 2 = power.")
    amplitude_scale: Literal["linear", "db", "ln"] = Field(
        "db", description="Linear mel values, decibels, or the natural log of the floored amplitude (HiFi-GAN)."
    )
    amplitude_floor: float = Field(1e-5, gt=0, description="Floor applied before the logarithm.")
    ref_level_db: float = Field(20.0, description="Subtracted from the decibel values.")
    min_level_db: float = Field(-100.0, lt=0, description="Decibel value mapped to the bottom of the range.")
    normalization: Literal["none", "symmetric", "asymmetric"] = Field(
        "symmetric", description="Mapping of decibels to a fixed range."
    )
    max_abs_value: float = Field(4.0, gt=0, description="Range bound: [-v, v] symmetric, [0, v] asymmetric.")
    clip: bool = Field(True, description="Clip normalised values to the range.")

    @model_validator(mode="after")
    def _check_sizes(self) -> MelSpec:
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})")
        if self.fmax <= self.fmin:
            raise ValueError(f"fmax ({self.fmax}) must be above fmin ({self.fmin})")
        if self.fmax > self.sample_rate / 2:
            raise ValueError(f"fmax ({self.fmax}) is above the Nyquist rate ({self.sample_rate / 2})")
        if self.center and self.pad_length:
            raise ValueError(
                f"pad_length ({self.pad_length}) applies to frames that are not centred, but center is True "
                f"(which pads n_fft / 2 = {self.n_fft // 2}); set center=False or pad_length=0"
            )
        if self.amplitude_scale == "ln" and self.normalization != "none":
            raise ValueError(
                f"amplitude_scale 'ln' takes no normalization, got normalization {self.normalization!r}; "
                "set normalization='none'"
            )
        return self

    @property
    def silence_value(self) -> float:
        """The value a silent frame takes (what padding should use)."""
        if self.amplitude_scale == "linear":
            return 0.0
        if self.amplitude_scale == "ln":
            return math.log(self.amplitude_floor)
        if self.normalization == "symmetric":
            return -self.max_abs_value
        if self.normalization == "asymmetric":
            return 0.0
        return 20.0 * math.log10(self.amplitude_floor) - self.ref_level_db


#: The mel of RTVC's synthesizer and vocoder (SPEC.md 2.2): 16 kHz, 80 bands, hop 200, symmetric [-4, 4].
RTVC_SYNTHESIZER_MEL = MelSpec(
    sample_rate=16000,
    n_fft=800,
    win_length=800,
    hop_length=200,
    n_mels=80,
    fmin=55.0,
    fmax=7600.0,
    preemphasis=0.97,
    magnitude_power=1.0,
    amplitude_scale="db",
    ref_level_db=20.0,
    min_level_db=-100.0,
    normalization="symmetric",
    max_abs_value=4.0,
)

#: The mel of RTVC's speaker encoder (SPEC.md 2.1): 40-band power mel, 25 ms / 10 ms, no log.
RTVC_ENCODER_MEL = MelSpec(
    sample_rate=16000,
    n_fft=400,
    win_length=400,
    hop_length=160,
    n_mels=40,
    fmin=0.0,
    fmax=8000.0,
    magnitude_power=2.0,
    amplitude_scale="linear",
    normalization="none",
    clip=False,
)


#: The mel of HiFi-GAN (jik876/hifi-gan, NVIDIA's Tacotron 2 convention; hifigan SPEC.md section 3): 22,050 Hz,
#: hop 256, 80 Slaney mels up to 8 kHz, natural log of the magnitude floored at 1e-5, reflect-padded by 384, not
#: centred (frame t covers samples [256 t - 384, 256 t + 640)), 1e-9 inside the square root.
HIFIGAN_MEL = MelSpec(
    sample_rate=22050,
    n_fft=1024,
    win_length=1024,
    hop_length=256,
    n_mels=80,
    fmin=0.0,
    fmax=8000.0,
    center=False,
    pad_mode="reflect",
    pad_length=384,
    magnitude_epsilon=1e-9,
    magnitude_power=1.0,
    amplitude_scale="ln",
    amplitude_floor=1e-5,
    normalization="none",
    clip=False,
)


class EmbeddingSpec(_Frozen):
    """What a speaker embedding means. The same dimension is not the same space: a synthesizer trained on
    GE2E embeddings cannot read another encoder's 256-d vectors."""

    space: str = Field(description="Name of the embedding space, e.g. 'ge2e/rtvc'.", min_length=1)
    dim: int = Field(gt=0, description="Vector length.")
    l2_normalized: bool = Field(True, description="Each vector has unit L2 norm.")


#: The space of RTVC's GE2E encoder (and of the resemblyzer weights, which share the architecture).
GE2E_RTVC_EMBEDDING = EmbeddingSpec(space="ge2e/rtvc", dim=256, l2_normalized=True)


class AudioSpec(_Frozen):
    """Audio a component reads or writes: mono float32 in [-1, 1] at ``sample_rate``."""

    sample_rate: int = Field(gt=0, description="Sample rate in Hz.")
    min_duration_s: float = Field(0.0, ge=0, description="Shortest input the component can use, in seconds.")


class TextSpec(_Frozen):
    """Text a synthesizer reads."""

    language: str = Field("en", description="BCP-47 language tag.")
    frontend: str = Field(description="Name of the text frontend (text-frontend hook) that turns text into ids.")
    max_chars: int = Field(2000, gt=0, description="Longest single sentence accepted; longer input is split.")


_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_API_VERSION = re.compile(r"^\d+\.\d+$")


def must_match(pattern: re.Pattern[str], what: str) -> AfterValidator:
    """A field validator that refuses strings not matching ``pattern`` ("``what`` 'x' must match ...")."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{what} {value!r} must match {pattern.pattern}")
        return value

    return AfterValidator(check)


def _check_api_version(value: str) -> str:
    if not _API_VERSION.fullmatch(value):
        raise ValueError(f"api_version {value!r} must look like 'MAJOR.MINOR', e.g. {API_VERSION!r}")
    return value


def _check_import_string(value: str) -> str:
    if not _IMPORT_STRING.fullmatch(value):
        raise ValueError(f"{value!r} is not an import string of the form 'package.module:attribute'")
    return value


#: A plugin API version, ``'MAJOR.MINOR'`` (the type of every plugin spec's ``api_version`` field).
ApiVersionString = Annotated[str, AfterValidator(_check_api_version)]
#: An import string ``'package.module:attribute'``, resolved by :func:`import_string` when it is used.
ImportString = Annotated[str, AfterValidator(_check_import_string)]
#: A component name as used on the command line (lowercase, digits, '-', '_').
ComponentName = Annotated[str, must_match(_NAME, "name")]


class ComponentSpec(BaseModel):
    """Everything vcframe needs to know about a component before importing its model code.

    A plugin's entry point points at one of these (``vcframe_ge2e.spec:SPEC``). Its module must import no
    torch: ``factory`` and ``trainer`` are import strings resolved only when the component is used.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: ComponentName = Field(description="Short name used on the command line (lowercase, digits, '-', '_').")
    kind: ComponentKind = Field(description="encoder, synthesizer or vocoder.")
    api_version: ApiVersionString = Field(
        description="vcframe plugin API version the component was written for, 'MAJOR.MINOR'."
    )
    summary: str = Field(description="One line shown by 'vcframe plugins list'.", min_length=1, max_length=200)
    factory: ImportString = Field(
        description="'module:Class' called as Class(config, device=...) to build the component."
    )
    config_model: type[BaseModel] = Field(description="Pydantic model of the component's options.")
    input: EmbeddingSpec | MelSpec | AudioSpec = Field(
        description="What the component consumes: audio (encoder), a speaker embedding (synthesizer), a mel (vocoder)."
    )
    output: EmbeddingSpec | MelSpec | AudioSpec = Field(description="What the component produces.")
    text: TextSpec | None = Field(None, description="Synthesizers only: the text they read.")
    io_resolver: ImportString | None = Field(
        None,
        description="Optional 'module:function' (no torch) mapping a config to (input, output) when they depend "
        "on configuration; default: the static input and output above.",
    )
    capabilities: frozenset[str] = Field(frozenset(), description="Subset of KNOWN_CAPABILITIES.")
    test_config: dict[str, Any] = Field(
        default_factory=dict,
        description="Config overrides that build a tiny random-weight instance with no file or download "
        "(used by the conformance kit and tests).",
    )
    test_instance: Literal["working", "placeholder"] = Field(
        "working",
        description="What test_config builds: 'working', a component that does its job (no weights needed, or "
        "trained weights shipped with the distribution), or 'placeholder', one that only gets types and shapes "
        "right (random weights, a stand-in). The conformance kit checks what the outputs mean (a silent mel "
        "gives near-silence, a known signal is resynthesised) on working instances only.",
    )
    length_padding_samples: int = Field(
        0,
        ge=0,
        description="Vocoders: how many samples an item's output may differ from frames x hop_length (0: exact).",
    )
    streaming_tolerance: float = Field(
        1e-4,
        ge=0,
        description="Vocoders with 'streaming': largest absolute difference allowed between the concatenated "
        "chunks of vocode_stream and the output of vocode (the conformance kit checks it).",
    )
    streaming_spectrum_db: float | None = Field(
        None,
        gt=0,
        description="Vocoders with 'streaming' whose stream is another estimate of the same audio, not the same "
        "samples (Griffin-Lim's phase is estimated block by block): the kit then checks, instead of "
        "streaming_tolerance, that the stream has vocode's length and that its mel differs from vocode's output's "
        "by at most this many dB in any frame (mean over the frame's cells within 30 dB of the loudest cell, "
        "level removed; vcframe.testing.checks.frame_spectral_distance).",
    )
    trainer: ImportString | None = Field(None, description="'module:app' of a typer app run by 'vcframe train KIND'.")
    license: str = Field("unknown", description="SPDX licence of the component's code.")
    homepage: str | None = Field(None, description="Project URL.")

    @field_validator("capabilities")
    @classmethod
    def _check_capabilities(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = set(value) - KNOWN_CAPABILITIES
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {sorted(KNOWN_CAPABILITIES)}")
        return frozenset(value)

    @model_validator(mode="after")
    def _check_io(self) -> ComponentSpec:
        expected: dict[str, tuple[type, type]] = {
            "encoder": (AudioSpec, EmbeddingSpec),
            "synthesizer": (EmbeddingSpec, MelSpec),
            "vocoder": (MelSpec, AudioSpec),
        }
        want_in, want_out = expected[self.kind]
        if not isinstance(self.input, want_in) or not isinstance(self.output, want_out):
            raise ValueError(
                f"a {self.kind} consumes {want_in.__name__} and produces {want_out.__name__}; this spec declares "
                f"{type(self.input).__name__} -> {type(self.output).__name__}"
            )
        if (self.kind == "synthesizer") != (self.text is not None):
            raise ValueError("a synthesizer must declare the text it reads (text=TextSpec(...)); other kinds must not")
        return self

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def api_major(self) -> int:
        """MAJOR of ``api_version``: another major version than the core's is refused."""
        return int(self.api_version.split(".")[0])

    @property
    def api_minor(self) -> int:
        """MINOR of ``api_version``: a newer minor version than the core's loads with a warning."""
        return int(self.api_version.split(".")[1])

    def make_config(self, overrides: dict[str, Any] | None = None) -> BaseModel:
        """Validate ``overrides`` against the config model (unknown fields are refused)."""
        return self.config_model.model_validate(overrides or {})

    def resolve_io(self, config: BaseModel | None = None) -> tuple[Any, Any]:
        """(input spec, output spec) for ``config``; static unless ``io_resolver`` is set."""
        if self.io_resolver is None or config is None:
            return self.input, self.output
        resolver = import_string(self.io_resolver)
        result = resolver(config)
        return result[0], result[1]


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def with_recorded_sizes(
    config: ConfigT,
    checkpoint_metadata: Mapping[str, Any],
    size_fields: Iterable[str],
    *,
    always: Iterable[str] = (),
    fallback_preset: str = "rtvc",
) -> ConfigT:
    """``config`` with ``preset="auto"`` resolved to the sizes a checkpoint recorded in its ``"config"`` metadata.

    Size fields the user set explicitly win; fields in ``always`` are taken from the checkpoint regardless. A
    config whose preset is not ``auto``, or a checkpoint without recorded sizes (an RTVC ``.pt``), is returned
    unchanged (``auto`` then means ``fallback_preset``'s sizes, which the plugin's ``sizes()`` applies).
    """
    recorded = checkpoint_metadata.get("config")
    if getattr(config, "preset", None) != "auto" or not isinstance(recorded, dict) or not recorded:
        return config
    # a size the file does not record keeps the preset's (the shape check then names any mismatch)
    update: dict[str, Any] = {
        name: recorded[name] for name in size_fields if getattr(config, name) is None and name in recorded
    }
    update["preset"] = recorded.get("preset", fallback_preset)
    update.update({name: recorded[name] for name in always if name in recorded})
    return type(config).model_validate({**config.model_dump(), **update})


def import_string(path: str) -> Any:
    """Import ``'package.module:attribute.sub'`` and return the attribute."""
    module_name, _, attribute_path = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute_path.split("."):
        target = getattr(target, part)
    return target


def api_compatibility(spec_api_version: str) -> tuple[bool, str | None]:
    """(accepted, message) for a plugin written for ``spec_api_version``.

    A different major version is refused; a newer minor version is accepted with a warning message.
    """
    core_major, core_minor = (int(part) for part in API_VERSION.split("."))
    major, minor = (int(part) for part in spec_api_version.split("."))
    if major != core_major:
        return False, (
            f"written for vcframe plugin API {spec_api_version}, but this vcframe-core provides API {API_VERSION}; "
            f"install a vcframe-core release with API {major}.x, or a release of the plugin built for API "
            f"{core_major}.x"
        )
    if minor > core_minor:
        return True, (
            f"written for vcframe plugin API {spec_api_version}, newer than this vcframe-core's {API_VERSION}; "
            "upgrade vcframe-core if it misbehaves"
        )
    return True, None
