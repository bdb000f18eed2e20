"""The vcframe conformance kit on the tiny test configuration: one test per property of the contract."""

from __future__ import annotations

from vcframe_hifigan.spec import SPEC

from vcframe.testing import parametrize_with_checks


@parametrize_with_checks([SPEC])
def test_conformance(check) -> None:
    check()
