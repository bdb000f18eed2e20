"""PNG plots of mels and attention alignments (matplotlib, Agg backend, atomic writes)."""

from __future__ import annotations

import os
from typing import Any

from vcframe._io import atomic_path
from vcframe.errors import VcframeError
from vcframe.types import Mel


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise VcframeError("plots need matplotlib", hint="pip install 'vcframe-core[plot]'") from error
    return plt


def save_synthesis_plot(mel: Mel, path: str | os.PathLike[str], title: str = "") -> None:
    """Mel spectrogram (and the attention alignment if the mel carries one) of item 0."""
    plt = _pyplot()
    panels = 2 if mel.alignment is not None else 1
    figure, axes = plt.subplots(panels, 1, figsize=(10, 3.2 * panels), squeeze=False)
    values = mel.item(0)
    image = axes[0][0].imshow(values, origin="lower", aspect="auto", interpolation="none")
    axes[0][0].set_title(f"mel ({mel.spec.n_mels} bands, hop {mel.spec.hop_length}) {title[:80]}")
    axes[0][0].set_xlabel("frame")
    figure.colorbar(image, ax=axes[0][0])
    if mel.alignment is not None:
        alignment = mel.alignment[0].detach().cpu().numpy().T
        image = axes[1][0].imshow(alignment, origin="lower", aspect="auto", interpolation="none")
        axes[1][0].set_title("attention alignment")
        axes[1][0].set_xlabel("decoder step")
        axes[1][0].set_ylabel("character")
        figure.colorbar(image, ax=axes[1][0])
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)
