"""A dummy vocoder that takes a while per row, for tests that stop a run while its rows are running."""

from __future__ import annotations

import time

from vcframe.testing._dummy_models import SineVocoder
from vcframe.testing.dummy_specs import SINE_VOCODER

#: Seconds each vocode call sleeps before the sine dummy's work.
SLOW_SECONDS = 0.3

SLOW_VOCODER = SINE_VOCODER.model_copy(
    update={"name": "test-slow", "summary": "test-sine, slowly", "factory": "tests._slow_vocoder:SlowVocoder"}
)


class SlowVocoder(SineVocoder):
    """test-sine after a ``SLOW_SECONDS`` pause."""

    spec = SLOW_VOCODER

    def _vocode(self, mel, seed):  # type: ignore[no-untyped-def]
        time.sleep(SLOW_SECONDS)
        return super()._vocode(mel, seed)
