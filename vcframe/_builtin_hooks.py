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
    """Convert mels between any two specs whose frequencies overlap (:class:`vcframe._adapters.MelRemapper`).

    The source mel is turned back into amplitudes, spread onto linear frequency bins with the pseudo-inverse
    of its filterbank, moved to the target's bins by frequency in Hz (with the pre-emphasis and window gains
    of both specs), projected onto the target filterbank and scale, and resampled in time to the target's frame
    rate (RTVC's 16 kHz hop-200 mel, 80 frames/s, to HiFi-GAN's 22,050 Hz hop-256 mel, 86.13 frames/s). Target
    bands above the source's fmax or Nyquist get the target's silence floor. Tried last, so a plugin's adapter
    wins; when no target band lies within the source's frequencies it refuses in one line naming both specs.
    """
    from vcframe._adapters import MelRemapper
    from vcframe.errors import IncompatibleComponentsError

    try:
        return MelRemapper(source, target)
    except ValueError as error:
        raise IncompatibleComponentsError(
            str(error), hint="pick a vocoder whose mel covers the synthesizer's frequencies (vcframe check)"
        ) from error
