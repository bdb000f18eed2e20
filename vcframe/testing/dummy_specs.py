"""Specs of the dummy test components (pydantic only, no torch)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vcframe.specs import API_VERSION, AudioSpec, ComponentSpec, EmbeddingSpec, MelSpec, TextSpec

TEST_SAMPLE_RATE = 16000
#: A small mel for tests: 16 kHz, 20 bands, hop 64.
TEST_MEL = MelSpec(
    sample_rate=TEST_SAMPLE_RATE,
    n_fft=256,
    win_length=256,
    hop_length=64,
    n_mels=20,
    fmin=50.0,
    fmax=7000.0,
    normalization="symmetric",
    max_abs_value=4.0,
)
TEST_EMBEDDING = EmbeddingSpec(space="vcframe-test/tone", dim=8, l2_normalized=True)


class ToneEncoderConfig(BaseModel):
    """Options of the tone encoder."""

    model_config = ConfigDict(extra="forbid")

    min_duration_s: float = Field(0.1, ge=0, description="Shortest clip accepted, in seconds.")


class ConstantSynthesizerConfig(BaseModel):
    """Options of the constant synthesizer."""

    model_config = ConfigDict(extra="forbid")

    frames_per_char: int = Field(4, ge=1, le=50, description="Mel frames generated per input character.")
    noise: float = Field(0.1, ge=0, le=1, description="Amplitude of the seeded noise added to every frame.")


class SineVocoderConfig(BaseModel):
    """Options of the sine vocoder."""

    model_config = ConfigDict(extra="forbid")

    amplitude: float = Field(0.3, gt=0, le=1, description="Peak amplitude of the output.")
    chunk_frames: int = Field(16, ge=1, description="Mel frames per streamed chunk.")


TONE_ENCODER = ComponentSpec(
    name="test-tone",
    kind="encoder",
    api_version=API_VERSION,
    summary="Test encoder: L2-normalised log energies of 8 frequency bands (no model)",
    factory="vcframe.testing._dummy_models:ToneEncoder",
    config_model=ToneEncoderConfig,
    input=AudioSpec(sample_rate=TEST_SAMPLE_RATE, min_duration_s=0.1),
    output=TEST_EMBEDDING,
    capabilities=frozenset({"batched", "speaker_embedding"}),
    license="MIT",
)

CONSTANT_SYNTHESIZER = ComponentSpec(
    name="test-constant",
    kind="synthesizer",
    api_version=API_VERSION,
    summary="Test synthesizer: a mel pattern set by the embedding, length set by the text (no model)",
    factory="vcframe.testing._dummy_models:ConstantSynthesizer",
    config_model=ConstantSynthesizerConfig,
    input=TEST_EMBEDDING,
    output=TEST_MEL,
    text=TextSpec(frontend="characters", max_chars=500),
    capabilities=frozenset({"batched", "seeded", "alignment"}),
    license="MIT",
)

SINE_VOCODER = ComponentSpec(
    name="test-sine",
    kind="vocoder",
    api_version=API_VERSION,
    summary="Test vocoder: one sine per frame at the loudest band's frequency (no model)",
    factory="vcframe.testing._dummy_models:SineVocoder",
    config_model=SineVocoderConfig,
    input=TEST_MEL,
    output=AudioSpec(sample_rate=TEST_SAMPLE_RATE),
    capabilities=frozenset({"batched", "streaming"}),
    license="MIT",
)

DUMMY_SPECS = (TONE_ENCODER, CONSTANT_SYNTHESIZER, SINE_VOCODER)
