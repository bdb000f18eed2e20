"""The vcframe conformance kit: one test per property of the contract.

The tiny test configuration uses the clean behaviour (masked padding, no dropout at synthesis) and passes
every check. RTVC's own behaviour (``masking="rtvc"``, pre-net dropout 0.5 at synthesis) is kept on purpose
for RTVC-exact output and documented in the README: with it a batch differs from one-at-a-time synthesis.
"""

from __future__ import annotations

from vcframe_tacotron.spec import SPEC

from vcframe.testing import parametrize_with_checks

RTVC_BEHAVIOUR = {**SPEC.test_config, "masking": "rtvc", "inference_dropout": 0.5}


@parametrize_with_checks([SPEC])
def test_conformance(check) -> None:
    check()


@parametrize_with_checks(
    [SPEC],
    overrides=RTVC_BEHAVIOUR,
    expected_failures={
        "batched_equals_item_by_item": "RTVC quirks: padded characters get attention energy 0 and the batch stops "
        "when all items stop; pre-net dropout masks depend on the batch (README: masking, inference_dropout)",
    },
)
def test_conformance_with_rtvc_behaviour(check) -> None:
    check()
