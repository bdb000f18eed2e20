import os
from pathlib import Path

import pytest
import torch


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    shared = os.environ.get("VCFRAME_SHARED")
    root = Path(shared) if shared else Path(__file__).resolve().parents[4] / ".." / "shared"
    folder = root / "rtvc" / "fixtures"
    if not (folder / "vocoder_ref.safetensors").is_file():
        pytest.skip(f"RTVC fixtures not found at {folder} (set VCFRAME_SHARED to the shared folder)")
    return folder
