"""Spec and configuration of the WaveRNN vocoder. Imports pydantic and vcframe.specs only (no torch)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vcframe.specs import API_VERSION, RTVC_SYNTHESIZER_MEL, AudioSpec, ComponentSpec

#: Size presets. "rtvc" reproduces RTVC's vocoder.pt (4.5 M parameters), "small" is the CPU-trainable demo
#: size (1.5 M, rnn/fc 256), "tiny" is for tests (random weights, fast on any machine).
PRESETS: dict[str, dict[str, int]] = {
    "rtvc": {"rnn_dims": 512, "fc_dims": 512, "compute_dims": 128, "res_out_dims": 128, "res_blocks": 10},
    "small": {"rnn_dims": 256, "fc_dims": 256, "compute_dims": 128, "res_out_dims": 128, "res_blocks": 10},
    "tiny": {"rnn_dims": 32, "fc_dims": 32, "compute_dims": 16, "res_out_dims": 16, "res_blocks": 1},
}

#: RTVC's upsampling factors; their product must equal the mel's hop length (200).
UPSAMPLE_FACTORS = (5, 5, 8)


class WaveRNNConfig(BaseModel):
    """Options of the WaveRNN vocoder. Size fields left at None take the preset's value."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["auto", "rtvc", "small", "tiny"] = Field(
        "auto",
        description="Size preset: 'auto' (the sizes a vcframe checkpoint records; RTVC's for an RTVC vocoder.pt or "
        "no checkpoint), 'rtvc' (RTVC's sizes, loads vocoder.pt), 'small' (CPU demo), 'tiny' (tests).",
    )
    checkpoint: str | None = Field(
        "default",
        description="'default' (registry default), 'registry:<id>', a path to an RTVC vocoder.pt or our "
        ".safetensors; None = random weights (tests only).",
    )
    rnn_dims: int | None = Field(None, ge=1, description="GRU width (RTVC: 512); overrides the preset.")
    fc_dims: int | None = Field(None, ge=1, description="Width of fc1/fc2 (RTVC: 512); overrides the preset.")
    compute_dims: int | None = Field(None, ge=1, description="Channels of the mel ResNet (RTVC: 128).")
    res_out_dims: int | None = Field(
        None, ge=4, description="Aux channels out of the mel ResNet, split in 4 slices (RTVC: 128; multiple of 4)."
    )
    res_blocks: int | None = Field(None, ge=0, description="Residual blocks in the mel ResNet (RTVC: 10).")
    bits: int = Field(9, ge=2, le=16, description="Mu-law bits: 2**bits output classes (RTVC: 9 -> 512).")
    pad: int = Field(
        2, ge=1, description="Mel frames of context padded on each side (RTVC: 2; conv_in kernel 2*pad+1)."
    )
    batched: bool = Field(
        True, description="Fold the sequence into overlapping segments generated in parallel (RTVC's batched mode)."
    )
    target: int | None = Field(
        None,
        ge=1,
        description="Samples per fold, without overlap (RTVC's infer_waveform: 8000). None: chosen from the length "
        "(generate.choose_folding: up to 16 folds, which one step computes for the cost of a few, target 2000-8000).",
    )
    overlap: int | None = Field(
        None,
        ge=0,
        description="Samples cross-faded between folds (RTVC's infer_waveform: 800). None: target // 10 (RTVC's "
        "ratio).",
    )
    sampler: Literal["sample", "argmax", "inverse_cdf"] = Field(
        "inverse_cdf",
        description="'inverse_cdf': RTVC's distribution drawn from one uniform number per fold and step (the first "
        "class whose cumulative probability exceeds it), 3-4x cheaper per generation than 'sample' at the small "
        "preset, but a seed gives other audio than RTVC's; 'sample': RTVC's draw (argmax(p / Exp(1)), one random "
        "number per class): with precision 'float32' a seed gives RTVC's audio (the rtvc bundle sets both); "
        "'argmax': the most likely class (deterministic). Engine 'reference' is RTVC's own loop, which has only "
        "RTVC's draw: with it the default is 'sample' and 'inverse_cdf' is refused.",
    )
    rtvc_quirks: bool = Field(
        True,
        description="RTVC-exact output: mel padded with zeros (mid-scale) instead of silence, audio cropped to "
        "(T-1)*hop then zero-padded to T*hop, last 4000 samples faded out. False: silence padding, all T*hop "
        "generated samples, no fade.",
    )
    rtvc_rng: bool = Field(
        True,
        description="Sampler 'sample' only (the other samplers ignore it): draw (and discard) the random numbers of "
        "RTVC's two throwaway GRUCells before sampling, so a seed gives RTVC's exact waveform.",
    )
    engine: Literal["auto", "cpp", "torch", "reference"] = Field(
        "auto",
        description="Generation loop: 'cpp' (JIT-compiled C++ kernel), 'torch' (same algorithm in PyTorch), "
        "'reference' (plain transcription of RTVC's loop, slow; float32 and RTVC's sampler only, so with it "
        "precision and sampler default to 'float32' and 'sample'); 'auto' = cpp, else torch without a compiler.",
    )
    precision: Literal["auto", "float32", "bfloat16", "int8"] = Field(
        "auto",
        description="Weights of the recurrent and output layers in the generation loop: 'auto' = bfloat16 where the "
        "C++ kernel runs on a CPU that computes it natively (AMX / AVX-512 BF16), else float32 (the PyTorch loop "
        "computes every precision with float32 products, so a reduced one saves nothing there); 'float32' (RTVC's "
        "arithmetic, within the fixtures' tolerances; the rtvc bundle sets it), 'bfloat16' (half the bytes a step "
        "reads), 'int8' (a quarter: per-column scales, activations quantised per fold). Engine 'reference' computes "
        "in float32 only: with it the default is 'float32' and bfloat16 / int8 are refused. What each costs in "
        "quality: see the README.",
    )
    isa: Literal["auto", "amx", "avx512", "avx2", "generic"] = Field(
        "auto",
        description="Instruction set of the C++ kernel: 'auto' = the best this CPU has (the environment variable "
        "VCFRAME_WAVERNN_ISA overrides it); one the CPU or the precision lacks falls back to the next one down.",
    )
    threads: int | None = Field(
        None, ge=1, le=256, description="CPU threads for generation (None: torch.get_num_threads())."
    )
    block_steps: int = Field(
        400,
        ge=1,
        le=100000,
        description="Steps whose input projections are precomputed at once (also the streaming chunk).",
    )
    first_block_steps: int = Field(
        100,
        ge=1,
        le=100000,
        description="Steps of the first block (at most block_steps): the first streamed chunk comes after them.",
    )

    @model_validator(mode="before")
    @classmethod
    def _reference_engine_defaults(cls, data: Any) -> Any:
        """Engine 'reference' is RTVC's own loop: float32 and RTVC's sampler are all it computes, so with it an
        unset precision and sampler mean 'float32' and 'sample' (the fast defaults would only be refused)."""
        if isinstance(data, dict) and data.get("engine") == "reference":
            return {"precision": "float32", "sampler": "sample", **data}
        return data

    @model_validator(mode="after")
    def _check(self) -> WaveRNNConfig:
        conflict = reference_engine_conflict(self)
        if conflict:
            raise ValueError(conflict)
        dims = self.sizes()
        if dims["res_out_dims"] % 4:
            raise ValueError(f"res_out_dims ({dims['res_out_dims']}) must be a multiple of 4 (four aux slices)")
        if self.overlap is not None and self.target is not None and self.overlap > self.target:
            raise ValueError(f"overlap ({self.overlap}) must not exceed target ({self.target})")
        return self

    def sizes(self) -> dict[str, int]:
        """The effective model sizes: the preset's, with explicit fields taking precedence."""
        sizes = dict(PRESETS["rtvc" if self.preset == "auto" else self.preset])
        for name in sizes:
            value = getattr(self, name)
            if value is not None:
                sizes[name] = value
        return sizes


def reference_engine_conflict(config: WaveRNNConfig) -> str | None:
    """Why ``config`` cannot run on engine 'reference' (RTVC's own float32 loop with RTVC's sampler), in one line;
    None when it can or another engine is chosen."""
    if config.engine != "reference":
        return None
    if config.sampler == "inverse_cdf":
        return (
            "engine='reference' is RTVC's loop, which has no sampler 'inverse_cdf': pass sampler='sample' (or "
            "'argmax'), or engine 'auto' for 'inverse_cdf'"
        )
    if config.precision not in ("auto", "float32"):
        return (
            f"engine='reference' is RTVC's float32 loop, which has no precision {config.precision!r}: pass "
            f"precision='float32', or engine 'auto' for {config.precision!r}"
        )
    return None


SPEC = ComponentSpec(
    name="wavernn",
    kind="vocoder",
    api_version=API_VERSION,
    summary="WaveRNN (RTVC's fatchord version, 9-bit mu-law): RTVC vocoder.pt compatible, fast folded generation",
    factory="vcframe_wavernn.model:WaveRNNVocoder",
    config_model=WaveRNNConfig,
    input=RTVC_SYNTHESIZER_MEL,
    output=AudioSpec(sample_rate=RTVC_SYNTHESIZER_MEL.sample_rate),
    capabilities=frozenset({"batched", "streaming", "seeded", "trainable"}),
    test_config={"preset": "tiny", "checkpoint": None, "target": 400, "overlap": 50, "block_steps": 100},
    test_instance="placeholder",  # random weights
    trainer="vcframe_wavernn.train:app",
    license="MIT",
)
