"""Spec and configuration of the HiFi-GAN vocoder. Imports pydantic, json and vcframe (no torch).

Two models live here: :class:`GeneratorConfig`, the generator's sizes with the field names of the original
``config.json`` (V1, V2, V3 or custom), and :class:`HiFiGANConfig`, the component's options (checkpoint,
preset, size overrides, mel spec, threads, streaming).

The component's mel spec comes from its checkpoint: a vcframe safetensors file records it in its metadata
(``mel_spec``); an original ``g_XXXXXXXX`` file reads the mel its ``config.json`` describes (HiFi-GAN's,
:data:`~vcframe.specs.HIFIGAN_MEL`, for every released model). ``resolve_io`` reads only the safetensors
header or the JSON file, so ``vcframe check`` stays cheap and torch-free.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vcframe.errors import CheckpointError, ConfigError
from vcframe.specs import API_VERSION, HIFIGAN_MEL, AudioSpec, ComponentSpec, MelSpec

#: Format tag of vcframe HiFi-GAN safetensors files (metadata ``format``).
CHECKPOINT_FORMAT = "vcframe-hifigan-v1"


class GeneratorConfig(BaseModel):
    """Sizes of a HiFi-GAN generator, named as in the original ``config.json`` (SPEC section 2).

    The product of ``upsample_rates`` is the hop length of the mel the generator reads (256 for V1-V3). Each
    transposed convolution has padding ``(k - s) / 2``, so ``k - s`` must be even and non-negative; each
    resblock kernel must be odd ("same" padding ``d (k - 1) / 2``). ``resblock`` is ``"1"`` (ResBlock1: two
    convolutions per dilation, V1 and V2) or ``"2"`` (ResBlock2: one per dilation, V3).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    resblock: Literal["1", "2"] = Field(description="'1': ResBlock1 (V1, V2); '2': ResBlock2 (V3).")
    upsample_rates: tuple[int, ...] = Field(min_length=1, description="Stride of each upsampling stage.")
    upsample_kernel_sizes: tuple[int, ...] = Field(min_length=1, description="Kernel of each upsampling stage.")
    upsample_initial_channel: int = Field(gt=0, description="Channels after conv_pre (C0), halved per stage.")
    resblock_kernel_sizes: tuple[int, ...] = Field(min_length=1, description="Kernel of each MRF resblock (odd).")
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = Field(
        min_length=1, description="Dilations of each MRF resblock, one tuple per kernel."
    )
    num_mels: int = Field(80, gt=0, description="Mel bands the generator reads (conv_pre's input channels).")
    speaker_embedding_dim: int = Field(
        0,
        ge=0,
        description="Length of the speaker embedding the generator reads beside the mel (0: none, the original; "
        "not in the original config.json). A linear map of it is added to conv_pre's output.",
    )

    @model_validator(mode="after")
    def _check(self) -> GeneratorConfig:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError(
                f"upsample_rates has {len(self.upsample_rates)} stages but upsample_kernel_sizes has "
                f"{len(self.upsample_kernel_sizes)}"
            )
        for rate, kernel in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True):
            if rate < 1 or kernel < rate or (kernel - rate) % 2:
                raise ValueError(
                    f"upsample kernel {kernel} with rate {rate}: kernel - rate must be even and >= 0 (padding "
                    "(kernel - rate) / 2 keeps the output exactly rate times longer)"
                )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError(
                f"resblock_kernel_sizes has {len(self.resblock_kernel_sizes)} kernels but resblock_dilation_sizes "
                f"has {len(self.resblock_dilation_sizes)} dilation lists"
            )
        for kernel, dilations in zip(self.resblock_kernel_sizes, self.resblock_dilation_sizes, strict=True):
            if kernel < 1 or kernel % 2 == 0:
                raise ValueError(f"resblock kernel {kernel} must be odd (same padding d (k - 1) / 2)")
            if not dilations or min(dilations) < 1:
                raise ValueError(f"resblock dilations {list(dilations)} must be a non-empty list of positive ints")
        channels = self.upsample_initial_channel >> len(self.upsample_rates)
        if channels < 1 or self.upsample_initial_channel % (1 << len(self.upsample_rates)):
            raise ValueError(
                f"upsample_initial_channel ({self.upsample_initial_channel}) must be divisible by "
                f"2 ** stages ({1 << len(self.upsample_rates)}): each stage halves the channels"
            )
        return self

    @property
    def hop_length(self) -> int:
        """Output samples per mel frame: the product of the upsample rates."""
        return math.prod(self.upsample_rates)

    @classmethod
    def from_original(cls, values: dict[str, Any]) -> GeneratorConfig:
        """The generator fields of an original ``config.json`` dict (other keys ignored).

        As in the original code, exactly the string ``"1"`` selects ResBlock1 and anything else ResBlock2.
        """
        names = ("upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock_kernel_sizes")
        missing = [name for name in (*names, "resblock", "resblock_dilation_sizes") if name not in values]
        if missing:
            raise ValueError(f"not a HiFi-GAN config: missing {missing}")
        return cls(
            resblock="1" if values["resblock"] == "1" else "2",
            resblock_dilation_sizes=tuple(tuple(d) for d in values["resblock_dilation_sizes"]),
            num_mels=int(values.get("num_mels", 80)),
            speaker_embedding_dim=int(values.get("speaker_embedding_dim", 0)),
            **{name: values[name] for name in names},
        )

    def to_original(self) -> dict[str, Any]:
        """The generator fields as the original ``config.json`` spells them (lists, ``resblock`` a string)."""
        return {
            "resblock": self.resblock,
            "upsample_rates": list(self.upsample_rates),
            "upsample_kernel_sizes": list(self.upsample_kernel_sizes),
            "upsample_initial_channel": self.upsample_initial_channel,
            "resblock_kernel_sizes": list(self.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in self.resblock_dilation_sizes],
            "num_mels": self.num_mels,
            **({"speaker_embedding_dim": self.speaker_embedding_dim} if self.speaker_embedding_dim else {}),
        }

    def describe(self) -> str:
        """``'V3'`` when the sizes are a released config's, else the sizes in one line."""
        for name, preset in PRESETS.items():
            if preset == self:
                return name.upper()
        speaker = f", speaker_embedding_dim {self.speaker_embedding_dim}" if self.speaker_embedding_dim else ""
        return (
            f"resblock {self.resblock}, upsample_rates {list(self.upsample_rates)}, upsample_kernel_sizes "
            f"{list(self.upsample_kernel_sizes)}, upsample_initial_channel {self.upsample_initial_channel}, "
            f"resblock_kernel_sizes {list(self.resblock_kernel_sizes)}, resblock_dilation_sizes "
            f"{[list(d) for d in self.resblock_dilation_sizes]}{speaker}"
        )


_RESBLOCK1_DILATIONS = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

#: The released generator sizes (config_v1.json, config_v2.json, config_v3.json; SPEC section 2).
#: V1: 13.9 M parameters (best quality), V2: 0.93 M, V3: 1.46 M (fastest on a CPU).
PRESETS: dict[str, GeneratorConfig] = {
    "v1": GeneratorConfig(
        resblock="1",
        upsample_rates=(8, 8, 2, 2),
        upsample_kernel_sizes=(16, 16, 4, 4),
        upsample_initial_channel=512,
        resblock_kernel_sizes=(3, 7, 11),
        resblock_dilation_sizes=_RESBLOCK1_DILATIONS,
    ),
    "v2": GeneratorConfig(
        resblock="1",
        upsample_rates=(8, 8, 2, 2),
        upsample_kernel_sizes=(16, 16, 4, 4),
        upsample_initial_channel=128,
        resblock_kernel_sizes=(3, 7, 11),
        resblock_dilation_sizes=_RESBLOCK1_DILATIONS,
    ),
    "v3": GeneratorConfig(
        resblock="2",
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=256,
        resblock_kernel_sizes=(3, 5, 7),
        resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
    ),
}
SIZE_FIELDS = (
    "resblock",
    "upsample_rates",
    "upsample_kernel_sizes",
    "upsample_initial_channel",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
)


def mel_of_original_config(values: dict[str, Any]) -> MelSpec:
    """The mel an original ``config.json`` describes (SPEC section 3): HIFIGAN_MEL with its sizes."""
    try:
        sample_rate, n_fft, hop = int(values["sampling_rate"]), int(values["n_fft"]), int(values["hop_size"])
        fmax = values.get("fmax")
        return HIFIGAN_MEL.model_validate(
            {
                **HIFIGAN_MEL.model_dump(),
                "sample_rate": sample_rate,
                "n_fft": n_fft,
                "win_length": int(values.get("win_size", n_fft)),
                "hop_length": hop,
                "n_mels": int(values.get("num_mels", 80)),
                "fmin": float(values.get("fmin", 0)),
                "fmax": float(fmax) if fmax is not None else sample_rate / 2,
                "pad_length": (n_fft - hop) // 2,
            }
        )
    except (KeyError, TypeError, ValueError) as error:
        detail = str(error).splitlines()[0]
        raise ValueError(f"its mel settings are incomplete or invalid ({detail})") from error


class HiFiGANConfig(BaseModel):
    """Options of the HiFi-GAN vocoder. Size fields left at None take the preset's (or the checkpoint's) value."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str | None = Field(
        "default",
        description="'default' (registry default), 'registry:<id>', a path to an original generator checkpoint "
        "(g_XXXXXXXX, with its config.json beside it) or to a vcframe-hifigan .safetensors; None = random "
        "weights (tests only).",
    )
    config_json: str | None = Field(
        None, description="The original config.json of an original checkpoint (default: the one beside it)."
    )
    preset: Literal["auto", "v1", "v2", "v3"] = Field(
        "auto",
        description="Generator sizes: 'auto' (the checkpoint's: its config.json or metadata; V1 without a "
        "checkpoint), or a released config 'v1' (13.9 M parameters), 'v2' (0.93 M), 'v3' (1.46 M).",
    )
    resblock: Literal["1", "2"] | None = Field(None, description="'1' ResBlock1 or '2' ResBlock2; overrides preset.")
    upsample_rates: tuple[int, ...] | None = Field(None, description="Upsampling strides (product = hop length).")
    upsample_kernel_sizes: tuple[int, ...] | None = Field(None, description="Upsampling kernels (k - s even).")
    upsample_initial_channel: int | None = Field(None, gt=0, description="Channels after conv_pre (V1: 512).")
    resblock_kernel_sizes: tuple[int, ...] | None = Field(None, description="MRF resblock kernels (odd).")
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] | None = Field(None, description="MRF dilations per kernel.")
    mel: MelSpec | None = Field(
        None,
        description="Mel spec the vocoder reads; None: the checkpoint's (its metadata, or its config.json's "
        "HiFi-GAN mel), HIFIGAN_MEL without a checkpoint.",
    )
    threads: int | None = Field(
        1,
        ge=1,
        le=256,
        description="CPU threads while vocoding (1: measured fastest on a shared 2-core machine, see the README); "
        "None: leave torch's setting.",
    )
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="'auto': bfloat16 where the CPU computes it natively (AMX / AVX-512 BF16), else float32; "
        "'float32': the original's arithmetic (within the fixtures' tolerances; streaming within "
        "streaming_tolerance); 'bfloat16': 2-4x faster than the original on CPUs with AMX once warm, the "
        "waveform 45 dB off float32's (emulated and slow elsewhere; see the README).",
    )
    stream_first_chunk_frames: int = Field(
        4, ge=1, description="Mel frames in vocode_stream's first chunk (then doubling up to stream_chunk_frames)."
    )
    stream_chunk_frames: int = Field(32, ge=1, description="Largest number of mel frames a streamed chunk holds.")
    stream_context_frames: int | None = Field(
        None,
        ge=0,
        description="Mel frames of context on each side of a streamed chunk; None: the generator's receptive field.",
    )

    def generator_config(self, base: GeneratorConfig | None = None, *, num_mels: int | None = None) -> GeneratorConfig:
        """The generator sizes: the preset's (for 'auto': ``base``, the checkpoint's, else V1), with the explicit
        size fields taking precedence, and ``num_mels`` when given.

        Raises ConfigError naming the problem when the combination is invalid.
        """
        if self.preset != "auto":
            base = PRESETS[self.preset]
        elif base is None:
            base = PRESETS["v1"]
        values = base.model_dump()
        values.update({name: getattr(self, name) for name in SIZE_FIELDS if getattr(self, name) is not None})
        if num_mels is not None:
            values["num_mels"] = num_mels
        try:
            return GeneratorConfig.model_validate(values)
        except ValidationError as error:
            message = "; ".join(str(item["msg"]) for item in error.errors())
            raise ConfigError(f"invalid HiFi-GAN generator sizes: {message}", hint="fix the size options") from error


def check_fits(generator: GeneratorConfig, mel: MelSpec) -> None:
    """ConfigError unless the generator's upsampling factor equals the mel's hop length and the bands agree."""
    if generator.hop_length != mel.hop_length:
        raise ConfigError(
            f"the generator upsamples by {generator.hop_length} (upsample_rates {list(generator.upsample_rates)}) "
            f"but the mel's hop length is {mel.hop_length}",
            hint="choose upsample_rates whose product is the hop length",
        )
    if generator.num_mels != mel.n_mels:
        raise ConfigError(
            f"the generator reads {generator.num_mels} mel bands but the mel has {mel.n_mels}",
            hint="use a mel spec with the generator's number of bands",
        )


def original_config_path(checkpoint: Path, config_json: str | None) -> Path:
    """The config.json of an original checkpoint: ``config_json`` when given, else the one beside the file."""
    return Path(config_json).expanduser() if config_json else checkpoint.parent / "config.json"


def read_original_config(path: Path) -> dict[str, Any]:
    """The JSON object of an original ``config.json``; CheckpointError (one line) when unreadable."""
    try:
        values = json.loads(path.read_text())
    except OSError as error:
        raise CheckpointError(
            f"cannot read the HiFi-GAN config {str(path)!r} ({error.strerror or error})",
            hint="put the checkpoint's config.json beside it or give -o vocoder.hifigan.config_json=PATH",
        ) from error
    except ValueError as error:
        raise CheckpointError(
            f"{str(path)!r} is not valid JSON ({error})", hint="give the original config.json"
        ) from error
    if not isinstance(values, dict):
        raise CheckpointError(f"{str(path)!r} holds no JSON object", hint="give the original config.json")
    return values


def checkpoint_mel(config: HiFiGANConfig) -> MelSpec:
    """The mel the configured checkpoint reads, without loading it (see the module docstring).

    Raises CheckpointError when the checkpoint cannot be found (for ``default``: no shipped weights yet).
    """
    if config.mel is not None:
        return config.mel
    if config.checkpoint is None:
        return HIFIGAN_MEL
    from vcframe.checkpoints import read_safetensors_metadata, resolve

    try:
        resolved = resolve("vocoder", "hifigan", config.checkpoint, verify=False)
    except CheckpointError as error:
        if config.checkpoint == "default":
            raise CheckpointError(
                "the HiFi-GAN vocoder has no default checkpoint yet",
                hint="give one with -o vocoder.hifigan.checkpoint=PATH (an original g_XXXXXXXX with its "
                "config.json beside it, or a vcframe-hifigan .safetensors)",
            ) from error
        raise
    metadata = read_safetensors_metadata(resolved.path)
    if metadata is not None:
        recorded = metadata.get("mel_spec")
        if not isinstance(recorded, dict):
            return HIFIGAN_MEL
        try:
            return MelSpec.model_validate(recorded)
        except ValidationError as error:
            raise CheckpointError(
                f"checkpoint {str(resolved.path)!r} records an invalid mel spec ({error.errors()[0]['msg']})",
                hint="re-export it",
            ) from error
    path = original_config_path(resolved.path, config.config_json)
    if not path.is_file():
        return HIFIGAN_MEL  # no config.json: the released models' mel; building names the missing file if needed
    try:
        return mel_of_original_config(read_original_config(path))
    except ValueError as error:
        raise CheckpointError(
            f"HiFi-GAN config {str(path)!r}: {error}", hint="give the original config.json"
        ) from error


def resolve_io(config: HiFiGANConfig) -> tuple[MelSpec, AudioSpec]:
    """The vocoder reads its checkpoint's mel (or the configured one) and writes audio at that mel's rate."""
    mel = checkpoint_mel(config)
    return mel, AudioSpec(sample_rate=mel.sample_rate)


#: A generator small enough for tests (random weights): V3's layout (hop 256, ResBlock2) with 16 channels.
TINY_SIZES: dict[str, Any] = {"preset": "v3", "upsample_initial_channel": 16}

SPEC = ComponentSpec(
    name="hifigan",
    kind="vocoder",
    api_version=API_VERSION,
    summary="HiFi-GAN (jik876/hifi-gan V1/V2/V3 or custom sizes): loads the original generator checkpoints, "
    "parallel and fast on a CPU",
    factory="vcframe_hifigan.model:HiFiGANVocoder",
    config_model=HiFiGANConfig,
    input=HIFIGAN_MEL,
    output=AudioSpec(sample_rate=HIFIGAN_MEL.sample_rate),
    io_resolver="vcframe_hifigan.spec:resolve_io",
    capabilities=frozenset({"batched", "streaming", "trainable"}),
    test_config={"checkpoint": None, **TINY_SIZES, "stream_chunk_frames": 8},
    test_instance="placeholder",  # random weights
    streaming_tolerance=1e-5,
    trainer="vcframe_hifigan.train:app",
    license="MIT",
    homepage="https://github.com/jik876/hifi-gan",
)
