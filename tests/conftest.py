from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VCFRAME_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "rtvc" / "fixtures"


@pytest.fixture
def rtvc_fixtures() -> Path:
    if not (FIXTURES / "features_ref.safetensors").is_file():
        pytest.skip(f"RTVC fixtures not found at {FIXTURES} (set VCFRAME_SHARED to the shared folder)")
    return FIXTURES


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "covers_hook(name): the test exercises the named hookspec")
