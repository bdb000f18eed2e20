"""Build fake installed distributions (dist-info + modules) in a folder put on sys.path."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from textwrap import dedent


def install_fake_distribution(
    site: Path, distribution: str, modules: dict[str, str], entry_points: dict[str, dict[str, str]]
) -> None:
    """Write ``modules`` (dotted name -> source) and a dist-info with ``entry_points`` into ``site``."""
    for dotted, source in modules.items():
        parts = dotted.split(".")
        folder = site.joinpath(*parts[:-1])
        folder.mkdir(parents=True, exist_ok=True)
        for depth in range(1, len(parts)):
            init = site.joinpath(*parts[:depth], "__init__.py")
            if not init.exists():
                init.write_text("")
        site.joinpath(*parts[:-1], f"{parts[-1]}.py").write_text(dedent(source))
    info = site / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    info.joinpath("METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\nRequires-Dist: vcframe-core\n"
    )
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in entries.items()]
    info.joinpath("entry_points.txt").write_text("\n".join(lines) + "\n")
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
    importlib.invalidate_caches()


GOOD_VOCODER = """
from pydantic import BaseModel, ConfigDict, Field
from vcframe.specs import API_VERSION, AudioSpec, ComponentSpec
from vcframe.testing.dummy_specs import TEST_MEL

class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gain: float = Field(1.0, description="Output gain.")

SPEC = ComponentSpec(
    name="{name}", kind="vocoder", api_version="{api}", summary="third-party test vocoder",
    factory="{module}_model:Vocoder", config_model=Config, input=TEST_MEL,
    output=AudioSpec(sample_rate=16000),
)
"""

GOOD_VOCODER_MODEL = """
import torch
from vcframe.interfaces import BaseVocoder
from vcframe.types import Waveform
from {module} import SPEC

class Vocoder(BaseVocoder):
    spec = SPEC
    def _vocode(self, mel, seed):
        frames = mel.frames.shape[2] * mel.spec.hop_length
        samples = torch.full((mel.batch_size, frames), 0.1 * self.config.gain)
        return Waveform(samples, 16000, mel.lengths * mel.spec.hop_length)
"""
