from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from vcframe.testing import load_rtvc_state

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[4]
SHARED = Path(os.environ.get("VCFRAME_SHARED", REPO / ".." / "shared"))
FIXTURES = SHARED / "rtvc" / "fixtures"


@pytest.fixture(scope="session")
def rtvc_fixtures() -> Path:
    if not (FIXTURES / "synthesizer_weights.safetensors").is_file():
        pytest.skip(f"RTVC fixtures not found at {FIXTURES} (set VCFRAME_SHARED to the shared folder)")
    return FIXTURES


@pytest.fixture(scope="session")
def rtvc_synthesizer_pt(rtvc_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RTVC-format synthesizer.pt rebuilt from the compact fixture weights (as RTVC's torch.save writes it)."""
    path = tmp_path_factory.mktemp("rtvc") / "synthesizer.pt"
    torch.save({"model_state": load_rtvc_state(rtvc_fixtures / "synthesizer_weights.safetensors")}, path)
    return path


@pytest.fixture(scope="session")
def synthesizer_ref(rtvc_fixtures: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(rtvc_fixtures / "synthesizer_ref.safetensors"))
