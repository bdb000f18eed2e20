"""Spec and configuration of the Tacotron synthesizer. Imports pydantic and vcframe.specs only (no torch)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vcframe.specs import (
    API_VERSION,
    GE2E_RTVC_EMBEDDING,
    RTVC_SYNTHESIZER_MEL,
    ComponentSpec,
    EmbeddingSpec,
    MelSpec,
    TextSpec,
)

#: Model sizes by preset. "rtvc" = RTVC's hparams (30.9 M parameters, loads RTVC's synthesizer.pt);
#: "small" = the CPU-trainable size of the design's budget table (~8.8 M); "tiny" = for tests.
PRESETS: dict[str, dict[str, Any]] = {
    "rtvc": dict(
        embed_dims=512,
        encoder_dims=256,
        decoder_dims=128,
        postnet_dims=512,
        encoder_K=5,
        postnet_K=5,
        lstm_dims=1024,
        num_highways=4,
        r=2,
    ),
    "small": dict(
        embed_dims=256,
        encoder_dims=128,
        decoder_dims=128,
        postnet_dims=256,
        encoder_K=5,
        postnet_K=5,
        lstm_dims=512,
        num_highways=4,
        r=3,
    ),
    "tiny": dict(
        embed_dims=16,
        encoder_dims=16,
        decoder_dims=16,
        postnet_dims=16,
        encoder_K=3,
        postnet_K=3,
        lstm_dims=32,
        num_highways=1,
        r=2,
    ),
}
SIZE_FIELDS = tuple(PRESETS["rtvc"])


class TacotronConfig(BaseModel):
    """Options of the Tacotron synthesizer. Size fields left at None take the preset's value."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["auto", "rtvc", "small", "tiny"] = Field(
        "auto",
        description="Model sizes: 'auto' (the sizes a vcframe checkpoint records; RTVC's for an RTVC .pt or no "
        "checkpoint), 'rtvc' (RTVC's, loads its synthesizer.pt), 'small' (CPU-trainable), 'tiny' (tests).",
    )
    checkpoint: str | None = Field(
        "default",
        description="'default', 'registry:<id>', or a path to an RTVC synthesizer.pt or a vcframe safetensors "
        "export; None = random weights (tests only).",
    )
    embed_dims: int | None = Field(None, gt=0, description="Character embedding size (RTVC 512).")
    encoder_dims: int | None = Field(
        None, gt=0, description="Encoder pre-net/CBHG width; even, the BiGRU halves it (RTVC 256)."
    )
    decoder_dims: int | None = Field(
        None, gt=0, description="Attention RNN and attention size; pre-net is twice it (RTVC 128)."
    )
    postnet_dims: int | None = Field(None, gt=0, description="Post-net CBHG width; even (RTVC 512).")
    encoder_K: int | None = Field(None, gt=0, description="Conv-bank kernels 1..K of the encoder CBHG (RTVC 5).")
    postnet_K: int | None = Field(None, gt=0, description="Conv-bank kernels 1..K of the post-net CBHG (RTVC 5).")
    lstm_dims: int | None = Field(None, gt=0, description="Width of the two residual decoder LSTMs (RTVC 1024).")
    num_highways: int | None = Field(None, gt=0, description="Highway layers in each CBHG (RTVC 4).")
    r: int | None = Field(
        None,
        gt=0,
        le=20,
        description="Reduction factor: mel frames per decoder step (RTVC 2). None with an RTVC "
        "checkpoint keeps the checkpoint's decoder.r.",
    )
    max_r: int = Field(
        20, gt=0, description="Frames the mel projection is sized for (RTVC 20; keep it for RTVC weights)."
    )
    dropout: float = Field(0.5, ge=0, lt=1, description="Pre-net dropout used in training (RTVC 0.5).")
    inference_dropout: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Pre-net dropout at synthesis. None: the value the checkpoint recommends (its metadata's "
        "synthesis.inference_dropout), else 0.5 as RTVC (its weights expect it; output then depends on the "
        "seed); 0 = deterministic.",
    )
    masking: Literal["rtvc", "clean"] = Field(
        "clean",
        description="'clean': padded characters get -inf attention energy, padding is masked in the CBHGs and "
        "each item stops on its own, so a batch equals one-at-a-time synthesis. 'rtvc': padded characters get "
        "energy 0 (RTVC's multiplicative mask) and the batch stops when all items stop.",
    )
    max_frames: int = Field(2000, gt=0, description="Cap on generated mel frames per item (RTVC 2000 = 25 s).")
    stop_threshold: float = Field(
        0.5, gt=0, lt=1, description="A decoder step stops an item when sigmoid(stop) exceeds this."
    )
    min_decoder_frames: int = Field(10, ge=0, description="No stop before this frame index (RTVC: t > 10).")
    trim_threshold: float | None = Field(
        -3.4, description="Trailing frames whose maximum is below this are trimmed (RTVC -3.4); None keeps them."
    )
    batch_size: int = Field(16, gt=0, description="Texts synthesized together (RTVC 16).")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Arithmetic of the decoder's large products on CPU (LSTM cells, rnn_input, mel_proj): "
        "'auto' = bfloat16 where the CPU computes it natively (AMX / AVX-512 BF16), else float32; 'float32' = "
        "RTVC's arithmetic (within the RTVC fixtures' tolerances); 'bfloat16' = about 2x faster than float32 "
        "at batch 1 at RTVC's size on such CPUs, 1.1x at the small preset (1.3-1.5x for a batch on busy cores) "
        "(emulated and slower elsewhere). 'auto' is the default because bfloat16 measured no loss of words heard "
        'right or speaker similarity beyond the noise on the demo weights (README, "Fast decoding"). CUDA runs '
        "float32.",
    )
    frontend: str = Field("rtvc-english", description="Text frontend (text-frontend hook); checkpoints record theirs.")
    embedding: EmbeddingSpec = Field(GE2E_RTVC_EMBEDDING, description="Speaker embedding space the model reads.")
    mel: MelSpec = Field(RTVC_SYNTHESIZER_MEL, description="Mel spec the model writes (RTVC's by default).")
    num_chars: int = Field(66, gt=2, description="Size of the frontend's symbol table (RTVC 66).")

    @model_validator(mode="after")
    def _check(self) -> TacotronConfig:
        sizes = self.sizes()
        for name in ("encoder_dims", "postnet_dims"):
            if sizes[name] % 2:
                raise ValueError(f"{name} ({sizes[name]}) must be even: the bidirectional GRU uses half per direction")
        if sizes["r"] > self.max_r:
            raise ValueError(f"r ({sizes['r']}) must not exceed max_r ({self.max_r})")
        return self

    def sizes(self) -> dict[str, int]:
        """The preset's sizes with the explicit fields applied."""
        values = dict(PRESETS["rtvc" if self.preset == "auto" else self.preset])
        for name in SIZE_FIELDS:
            if getattr(self, name) is not None:
                values[name] = getattr(self, name)
        return values


def resolve_io(config: TacotronConfig) -> tuple[EmbeddingSpec, MelSpec]:
    """The synthesizer reads the embedding space its config names and writes its config's mel."""
    return config.embedding, config.mel


SPEC = ComponentSpec(
    name="tacotron",
    kind="synthesizer",
    api_version=API_VERSION,
    summary="Tacotron with CBHG encoder/post-net and location-sensitive attention (RTVC's, loads synthesizer.pt)",
    factory="vcframe_tacotron.model:TacotronSynthesizer",
    config_model=TacotronConfig,
    input=GE2E_RTVC_EMBEDDING,
    output=RTVC_SYNTHESIZER_MEL,
    text=TextSpec(language="en", frontend="rtvc-english", max_chars=2000),
    io_resolver="vcframe_tacotron.spec:resolve_io",
    capabilities=frozenset({"batched", "alignment", "seeded", "trainable"}),
    test_config={"preset": "tiny", "checkpoint": None, "inference_dropout": 0.0, "masking": "clean", "max_frames": 40},
    test_instance="placeholder",  # random weights
    trainer="vcframe_tacotron.train:app",
    license="MIT",
    homepage="https://github.com/CorentinJ/Real-Time-Voice-Cloning",
)
