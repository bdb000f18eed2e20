from __future__ import annotations

from vcframe.compat import check
from vcframe.specs import RTVC_SYNTHESIZER_MEL
from vcframe.testing.dummy_specs import CONSTANT_SYNTHESIZER, SINE_VOCODER, TONE_ENCODER


def test_dummies_fit() -> None:
    report = check((TONE_ENCODER, None), (CONSTANT_SYNTHESIZER, None), (SINE_VOCODER, None))
    assert report.ok and "compatible" in report.summary()


def test_mel_mismatch_lists_every_field_with_both_values() -> None:
    from vcframe_griffinlim.spec import SPEC as GRIFFINLIM

    report = check((TONE_ENCODER, None), (CONSTANT_SYNTHESIZER, None), (GRIFFINLIM, GRIFFINLIM.make_config()))
    fields = {m.field: (m.producer_value, m.consumer_value) for m in report.mel_mismatches()}
    assert fields["hop_length"] == (64, RTVC_SYNTHESIZER_MEL.hop_length)
    assert fields["n_mels"] == (20, 80)
    assert "hop_length: test-constant gives 64, griffinlim expects 200" in report.summary()


def test_embedding_mismatch() -> None:
    from vcframe.specs import GE2E_RTVC_EMBEDDING

    spec = CONSTANT_SYNTHESIZER.model_copy(update={"input": GE2E_RTVC_EMBEDDING})
    report = check((TONE_ENCODER, None), (spec, None), (SINE_VOCODER, None))
    assert {m.field for m in report.mismatches} == {"space", "dim"}
