"""Spec and configuration of the GE2E speaker encoder. Imports pydantic and vcframe.specs only (no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vcframe.specs import API_VERSION, GE2E_RTVC_EMBEDDING, AudioSpec, ComponentSpec, EmbeddingSpec

#: Network sizes of each preset: (hidden_size, num_layers, embedding_size).
PRESETS: dict[str, tuple[int, int, int]] = {
    "rtvc": (256, 3, 256),  # RTVC / resemblyzer: 1,423,618 parameters
    "small": (128, 3, 256),  # trainable on a CPU in minutes to hours: 384 k parameters
    "tiny": (16, 1, 256),  # unit tests only
}

SAMPLE_RATE = 16000
HOP_LENGTH = 160  # 10 ms, RTVC's mel_window_step


class GE2EConfig(BaseModel):
    """Options of the GE2E speaker encoder.

    The defaults reproduce RTVC's ``encoder.inference.embed_utterance`` with the pretrained resemblyzer weights.
    """

    model_config = ConfigDict(extra="forbid")

    preset: Literal["rtvc", "small", "tiny"] = Field(
        "rtvc",
        description="Network size: 'rtvc' (RTVC's 3x256 LSTM), 'small' (3x128, CPU-trainable), 'tiny' (tests).",
    )
    hidden_size: int | None = Field(None, gt=0, description="LSTM width; overrides the preset.")
    num_layers: int | None = Field(None, gt=0, description="Stacked LSTM layers; overrides the preset.")
    embedding_size: int | None = Field(None, gt=0, description="Output dimension; overrides the preset (RTVC: 256).")
    checkpoint: str | None = Field(
        "default",
        description="'default' (the pretrained resemblyzer weights), 'registry:<id>', a path to an RTVC encoder.pt "
        "or to a safetensors export; None = random weights (tests only).",
    )
    embedding_space: str = Field(
        GE2E_RTVC_EMBEDDING.space,
        description="Name of the embedding space the weights produce; a synthesizer is trained for one space.",
    )
    partials: bool = Field(
        True,
        description="Embed 1.6 s partials and average them (RTVC's inference); False embeds the whole clip at once.",
    )
    partial_frames: int = Field(160, ge=2, description="Mel frames per partial (RTVC: 160 = 1.6 s).")
    partial_overlap: float = Field(0.5, ge=0, lt=1, description="Overlap between consecutive partials (RTVC: 0.5).")
    min_pad_coverage: float = Field(
        0.75,
        gt=0,
        le=1,
        description="A last partial that is less than this fraction of real audio is dropped (RTVC: 0.75).",
    )
    normalize_volume: bool = Field(True, description="Raise quiet clips to target_dbfs before embedding (RTVC: on).")
    target_dbfs: float = Field(
        -30.0, le=0, description="Volume normalisation target in dBFS, increase only (RTVC: -30)."
    )
    vad: Literal["auto", "webrtc", "energy", "off"] = Field(
        "auto",
        description="Silence trimming: 'webrtc' (RTVC's webrtcvad trim; needs the [vad] extra), 'energy' (frame-energy "
        "trim), 'auto' (webrtc if installed, else energy with a warning), 'off'.",
    )
    require_speech: bool = Field(
        True,
        description="Refuse a clip in which the voice-activity detector finds under 0.15 s of speech (noise-like "
        "sound): its embedding would not be a voice. Uses the vad method ('energy' when vad is 'off').",
    )
    max_batch_partials: int = Field(
        512, gt=0, description="Most partials run through the LSTM in one forward pass (bounds memory)."
    )

    @model_validator(mode="after")
    def _check(self) -> GE2EConfig:
        if self.embedding_space == GE2E_RTVC_EMBEDDING.space and self.sizes[2] != GE2E_RTVC_EMBEDDING.dim:
            raise ValueError(
                f"embedding_size {self.sizes[2]} does not fit the space {self.embedding_space!r} "
                f"(dim {GE2E_RTVC_EMBEDDING.dim}); set embedding_space to a name of your own"
            )
        return self

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(hidden_size, num_layers, embedding_size) after applying overrides to the preset."""
        hidden, layers, embedding = PRESETS[self.preset]
        return (self.hidden_size or hidden, self.num_layers or layers, self.embedding_size or embedding)

    @property
    def min_duration_s(self) -> float:
        """Shortest clip whose single partial is at least ``min_pad_coverage`` real audio (1.2 s by default)."""
        if not self.partials:
            return HOP_LENGTH / SAMPLE_RATE
        return self.min_pad_coverage * self.partial_frames * HOP_LENGTH / SAMPLE_RATE


def resolve_io(config: GE2EConfig) -> tuple[AudioSpec, EmbeddingSpec]:
    """16 kHz audio of at least ``config.min_duration_s`` in, unit-norm embeddings of the configured size out."""
    return (
        AudioSpec(sample_rate=SAMPLE_RATE, min_duration_s=config.min_duration_s),
        EmbeddingSpec(space=config.embedding_space, dim=config.sizes[2], l2_normalized=True),
    )


SPEC = ComponentSpec(
    name="ge2e",
    kind="encoder",
    api_version=API_VERSION,
    summary="GE2E speaker encoder (RTVC architecture; pretrained resemblyzer weights, offline): audio -> 256-d",
    factory="vcframe_ge2e.model:GE2EEncoder",
    config_model=GE2EConfig,
    input=AudioSpec(sample_rate=SAMPLE_RATE, min_duration_s=GE2EConfig().min_duration_s),
    output=GE2E_RTVC_EMBEDDING,
    io_resolver="vcframe_ge2e.spec:resolve_io",
    capabilities=frozenset({"batched", "trainable", "cuda", "speaker_embedding"}),
    test_config={"preset": "tiny", "checkpoint": None, "vad": "energy"},
    test_instance="placeholder",  # random weights
    trainer="vcframe_ge2e.train:app",
    license="MIT",
    homepage="https://github.com/CorentinJ/Real-Time-Voice-Cloning",
)
