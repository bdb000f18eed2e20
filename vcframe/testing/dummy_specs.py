"""Specs of the dummy test components (pydantic only, no torch).

Each dummy reads and writes the test specs below by default; their configs can name other specs
(``embedding``, ``mel``), which is how :func:`vcframe.testing.variants.partners_for` builds partners that fit
a third-party component for end-to-end tests.
"""

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
    embedding: EmbeddingSpec = Field(
        TEST_EMBEDDING, description="Embedding space written; its dim is the number of frequency bands."
    )


class ConstantSynthesizerConfig(BaseModel):
    """Options of the constant synthesizer."""

    model_config = ConfigDict(extra="forbid")

    frames_per_char: int = Field(4, ge=1, le=50, description="Mel frames generated per input character.")
    noise: float = Field(0.1, ge=0, le=1, description="Amplitude of the seeded noise added to every frame.")
    embedding: EmbeddingSpec = Field(TEST_EMBEDDING, description="Embedding space read.")
    mel: MelSpec = Field(TEST_MEL, description="Mel spec written.")


class SineVocoderConfig(BaseModel):
    """Options of the sine vocoder."""

    model_config = ConfigDict(extra="forbid")

    amplitude: float = Field(0.3, gt=0, le=1, description="Peak amplitude of the output.")
    chunk_frames: int = Field(16, ge=1, description="Mel frames per streamed chunk.")
    mel: MelSpec = Field(TEST_MEL, description="Mel spec read; the output sample rate is its sample rate.")


def tone_encoder_io(config: ToneEncoderConfig) -> tuple[AudioSpec, EmbeddingSpec]:
    """16 kHz audio of at least ``min_duration_s`` in, the configured embedding out."""
    return AudioSpec(sample_rate=TEST_SAMPLE_RATE, min_duration_s=config.min_duration_s), config.embedding


def constant_synthesizer_io(config: ConstantSynthesizerConfig) -> tuple[EmbeddingSpec, MelSpec]:
    """The configured embedding in, the configured mel out."""
    return config.embedding, config.mel


def sine_vocoder_io(config: SineVocoderConfig) -> tuple[MelSpec, AudioSpec]:
    """The configured mel in, audio at its sample rate out."""
    return config.mel, AudioSpec(sample_rate=config.mel.sample_rate)


TONE_ENCODER = ComponentSpec(
    name="test-tone",
    kind="encoder",
    api_version=API_VERSION,
    summary="Test encoder: L2-normalised log energies of 8 frequency bands (no model)",
    factory="vcframe.testing._dummy_models:ToneEncoder",
    config_model=ToneEncoderConfig,
    input=AudioSpec(sample_rate=TEST_SAMPLE_RATE, min_duration_s=0.1),
    output=TEST_EMBEDDING,
    io_resolver="vcframe.testing.dummy_specs:tone_encoder_io",
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
    io_resolver="vcframe.testing.dummy_specs:constant_synthesizer_io",
    capabilities=frozenset({"batched", "seeded", "alignment"}),
    test_instance="placeholder",  # a fixed pattern, not speech
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
    io_resolver="vcframe.testing.dummy_specs:sine_vocoder_io",
    capabilities=frozenset({"batched", "streaming"}),
    test_instance="placeholder",  # one sine per frame: keeps neither the spectrum nor the level
    license="MIT",
)

DUMMY_SPECS = (TONE_ENCODER, CONSTANT_SYNTHESIZER, SINE_VOCODER)
