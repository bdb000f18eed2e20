from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from vcframe.specs import (
    API_VERSION,
    GE2E_RTVC_EMBEDDING,
    RTVC_ENCODER_MEL,
    RTVC_SYNTHESIZER_MEL,
    AudioSpec,
    ComponentSpec,
    EmbeddingSpec,
    MelSpec,
    TextSpec,
    api_compatibility,
)


class EmptyConfig(BaseModel):
    pass


def _spec(**changes: object) -> ComponentSpec:
    fields: dict[str, object] = dict(
        name="demo",
        kind="vocoder",
        api_version=API_VERSION,
        summary="demo",
        factory="pkg.mod:Cls",
        config_model=EmptyConfig,
        input=RTVC_SYNTHESIZER_MEL,
        output=AudioSpec(sample_rate=16000),
    )
    fields.update(changes)
    return ComponentSpec(**fields)  # type: ignore[arg-type]


def test_mel_diff_lists_each_field_with_both_values() -> None:
    other = RTVC_SYNTHESIZER_MEL.model_copy(update={"hop_length": 256, "fmax": 8000.0})
    assert RTVC_SYNTHESIZER_MEL.diff(other) == [("hop_length", 200, 256), ("fmax", 7600.0, 8000.0)]
    assert RTVC_SYNTHESIZER_MEL.diff(RTVC_SYNTHESIZER_MEL) == []


def test_mel_spec_invariants_name_both_values() -> None:
    with pytest.raises(ValidationError, match=r"win_length \(900\) must not exceed n_fft \(800\)"):
        MelSpec(sample_rate=16000, n_fft=800, win_length=900, hop_length=200, n_mels=80, fmin=0, fmax=8000)
    with pytest.raises(ValidationError, match="Nyquist"):
        MelSpec(sample_rate=16000, n_fft=800, win_length=800, hop_length=200, n_mels=80, fmin=0, fmax=9000)


def test_silence_values() -> None:
    assert RTVC_SYNTHESIZER_MEL.silence_value == -4.0
    assert RTVC_ENCODER_MEL.silence_value == 0.0


def test_specs_are_frozen() -> None:
    with pytest.raises(ValidationError):
        RTVC_SYNTHESIZER_MEL.hop_length = 100  # type: ignore[misc]


def test_same_dimension_is_not_same_space() -> None:
    other = EmbeddingSpec(space="other/encoder", dim=256)
    assert GE2E_RTVC_EMBEDDING.diff(other) == [("space", "ge2e/rtvc", "other/encoder")]


def test_component_spec_validates_io_kind_and_name() -> None:
    assert _spec().name == "demo"
    with pytest.raises(ValidationError, match="consumes MelSpec"):
        _spec(input=AudioSpec(sample_rate=16000))
    with pytest.raises(ValidationError, match="must match"):
        _spec(name="Bad Name")
    with pytest.raises(ValidationError, match="import string"):
        _spec(factory="not an import string")
    with pytest.raises(ValidationError, match="unknown capabilities"):
        _spec(capabilities=frozenset({"telepathy"}))
    with pytest.raises(ValidationError, match="must declare the text"):
        _spec(kind="synthesizer", input=GE2E_RTVC_EMBEDDING, output=RTVC_SYNTHESIZER_MEL)
    synthesizer = _spec(
        kind="synthesizer", input=GE2E_RTVC_EMBEDDING, output=RTVC_SYNTHESIZER_MEL, text=TextSpec(frontend="chars")
    )
    assert synthesizer.text is not None


def test_api_compatibility() -> None:
    major, minor = (int(p) for p in API_VERSION.split("."))
    assert api_compatibility(API_VERSION) == (True, None)
    accepted, message = api_compatibility(f"{major}.{minor + 1}")
    assert accepted and message and "newer" in message
    accepted, message = api_compatibility(f"{major + 1}.0")
    assert not accepted and message and f"API {major + 1}.x" in message


def test_resolve_io_uses_resolver() -> None:
    from vcframe_griffinlim.spec import SPEC

    config = SPEC.make_config({"mel": RTVC_ENCODER_MEL.model_copy(update={"amplitude_scale": "db"}).model_dump()})
    mel_in, audio_out = SPEC.resolve_io(config)
    assert mel_in.n_mels == 40 and audio_out.sample_rate == 16000
