"""vcframe's own hook implementations, registered first (plugins registered later take precedence)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vcframe.hookspecs import hookimpl

if TYPE_CHECKING:
    from vcframe.specs import MelSpec
    from vcframe.types import Mel


@hookimpl(trylast=True)
def vcframe_mel_adapter(source: MelSpec, target: MelSpec) -> Callable[[Mel], Mel] | None:
    """Re-map mel bands and value scale between specs with the same sample rate and hop length.

    The source mel is turned back into amplitudes, spread onto linear frequency bins with the pseudo-inverse
    of its filterbank, and projected onto the target filterbank and scale. It cannot change the frame rate.
    """
    if source.sample_rate != target.sample_rate or source.hop_length != target.hop_length:
        return None
    from vcframe._adapters import MelRemapper

    return MelRemapper(source, target)
