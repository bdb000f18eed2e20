"""Mel-to-mel conversion used by the built-in mel adapter hook."""

from __future__ import annotations

import numpy as np

from vcframe.audio import amplitude_to_mel_values, mel_basis, mel_values_to_amplitude
from vcframe.specs import MelSpec
from vcframe.types import Mel


class MelRemapper:
    """Converts mels of ``source`` spec to ``target`` spec (same sample rate and hop length)."""

    def __init__(self, source: MelSpec, target: MelSpec) -> None:
        if source.sample_rate != target.sample_rate or source.hop_length != target.hop_length:
            raise ValueError(
                f"cannot remap {source.sample_rate} Hz / hop {source.hop_length} to "
                f"{target.sample_rate} Hz / hop {target.hop_length}"
            )
        self.source, self.target = source, target
        source_basis = mel_basis(source).astype(np.float64)
        target_basis = mel_basis(target).astype(np.float64)
        inverse = np.linalg.pinv(source_basis)  # (bins_source, n_mels_source)
        bins_source, bins_target = source_basis.shape[1], target_basis.shape[1]
        # map linear bins of the source FFT size onto those of the target FFT size by frequency
        frequency_map = (
            np.interp(np.linspace(0, 1, bins_target), np.linspace(0, 1, bins_source), np.arange(bins_source))
            .round()
            .astype(int)
        )
        self._matrix = target_basis @ inverse[frequency_map]
        self.__name__ = f"mel-remap({source.n_mels}->{target.n_mels})"

    def __call__(self, mel: Mel) -> Mel:
        if mel.spec != self.source:
            raise ValueError("mel does not have the adapter's source spec")
        items = []
        for index in range(mel.batch_size):
            amplitude = mel_values_to_amplitude(mel.item(index), self.source)
            if self.source.magnitude_power != self.target.magnitude_power:
                amplitude = amplitude ** (self.target.magnitude_power / self.source.magnitude_power)
            remapped = np.maximum(self._matrix @ amplitude, 0.0)
            items.append(np.asarray(amplitude_to_mel_values(remapped, self.target), dtype=np.float32))
        adapted = Mel.from_numpy(items, self.target)
        return Mel(
            adapted.frames.to(mel.frames.device),
            self.target,
            mel.lengths,
            mel.alignment,
            {**mel.metadata, "adapted_from": self.source.model_dump()},
        )
