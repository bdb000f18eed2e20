"""Audio as metrics read it: one mono float32 signal at the rate the metric's model expects."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vcframe.errors import InputError


def mono_samples(audio: Any, sample_rate: int | None, target_rate: int, *, array_name: str) -> np.ndarray:
    """The samples of ``audio`` at ``target_rate``: a file, a :class:`~vcframe.types.Waveform` (item 0), or a 1-D
    array with its ``sample_rate`` (InputError "``array_name`` needs its sample_rate" without one)."""
    from vcframe.audio import load_audio, resample
    from vcframe.types import Waveform

    if isinstance(audio, (str, os.PathLike)):
        return load_audio(audio, sample_rate=target_rate).item(0)
    if isinstance(audio, Waveform):
        return resample(audio.item(0), audio.sample_rate, target_rate)
    if sample_rate is None:
        raise InputError(f"{array_name} needs its sample_rate")
    return resample(np.asarray(audio, dtype=np.float32).reshape(-1), sample_rate, target_rate)
