"""Spec variants for tests (pydantic only, no torch): other config defaults, and partners that fit a spec.

``with_defaults(SPEC, SPEC.test_config)`` gives a spec whose *default* config is the tiny test instance, so
that ``vcframe run --vocoder myvoc`` in an end-to-end test builds random weights without any option (TOML and
``-o`` cannot spell ``None``). ``partners_for(SPEC)`` gives dummy components whose specs fit ``SPEC`` on both
sides, so one component can be run end to end without the other two real ones.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, create_model

from vcframe.specs import ComponentSpec, EmbeddingSpec, MelSpec
from vcframe.testing.dummy_specs import CONSTANT_SYNTHESIZER, SINE_VOCODER, TONE_ENCODER


def with_defaults(spec: ComponentSpec, options: Mapping[str, Any]) -> ComponentSpec:
    """A copy of ``spec`` whose config model defaults to ``options`` (validated; unknown options refused).

    The new config model subclasses the original, so the component's own type checks still pass.
    """
    if not options:
        return spec
    validated = spec.make_config(dict(options))
    base = spec.config_model
    fields: dict[str, Any] = {}
    for name in options:
        info = copy.copy(base.model_fields[name])
        info.default = getattr(validated, name)
        info.default_factory = None
        fields[name] = (base.model_fields[name].annotation, info)
    variant: type[BaseModel] = create_model(base.__name__, __base__=base, __module__=base.__module__, **fields)
    variant.__doc__ = base.__doc__
    return spec.model_copy(update={"config_model": variant})


def partners_for(spec: ComponentSpec) -> dict[str, ComponentSpec]:
    """Dummy components (test-tone, test-constant, test-sine) re-specced to fit ``spec``, by kind.

    For a vocoder reading mel M: the tone encoder and a constant synthesizer writing M. For a synthesizer
    reading embedding E and writing M: a tone encoder writing E and a sine vocoder reading M. For an encoder
    writing E: a constant synthesizer reading E, and the sine vocoder.
    """
    input_spec, output_spec = spec.resolve_io(spec.make_config(spec.test_config))
    if spec.kind == "vocoder":
        assert isinstance(input_spec, MelSpec)
        return {"encoder": TONE_ENCODER, "synthesizer": with_defaults(CONSTANT_SYNTHESIZER, {"mel": input_spec})}
    if spec.kind == "synthesizer":
        assert isinstance(input_spec, EmbeddingSpec) and isinstance(output_spec, MelSpec)
        return {
            "encoder": with_defaults(TONE_ENCODER, {"embedding": input_spec}),
            "vocoder": with_defaults(SINE_VOCODER, {"mel": output_spec}),
        }
    assert isinstance(output_spec, EmbeddingSpec)
    return {"synthesizer": with_defaults(CONSTANT_SYNTHESIZER, {"embedding": output_spec}), "vocoder": SINE_VOCODER}
