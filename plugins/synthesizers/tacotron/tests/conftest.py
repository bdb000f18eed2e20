from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[4]
SHARED = Path(os.environ.get("VCFRAME_SHARED", REPO / ".." / "shared"))
FIXTURES = SHARED / "rtvc" / "fixtures"


def load_rtvc_state(path: Path) -> dict[str, torch.Tensor]:
    """The fixtures' compact int8 weights -> RTVC's model_state (README section 3.2)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata, names = handle.metadata(), set(handle.keys())
        state = {}
        for name in json.loads(metadata["state_dict_keys"]):
            if "q/" + name in names:
                exponent = int(handle.get_tensor("k/" + name))
                state[name] = handle.get_tensor("q/" + name).to(torch.float32) * 2.0**-exponent
            else:
                state[name] = handle.get_tensor("raw/" + name)
    return state


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
