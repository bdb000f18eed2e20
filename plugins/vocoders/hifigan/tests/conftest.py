import os
from pathlib import Path

import pytest
import torch


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def hifigan_fixtures() -> Path:
    """``../shared/hifigan/fixtures``: the original code's random-weight generators and outputs."""
    shared = os.environ.get("VCFRAME_SHARED")
    root = Path(shared) if shared else Path(__file__).resolve().parents[4] / ".." / "shared"
    folder = root / "hifigan" / "fixtures"
    if not (folder / "generator_ref.safetensors").is_file():
        pytest.skip(f"HiFi-GAN fixtures not found at {folder} (set VCFRAME_SHARED to the shared folder)")
    return folder
