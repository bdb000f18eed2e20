from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


def shared_dir() -> Path:
    override = os.environ.get("VCFRAME_SHARED")
    return Path(override) if override else (Path(__file__).resolve().parents[4] / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    path = shared_dir() / "rtvc" / "fixtures"
    if not (path / "encoder_ref.safetensors").is_file():
        pytest.skip(f"RTVC fixtures not found at {path} (set VCFRAME_SHARED to the folder holding rtvc/fixtures)")
    return path


@pytest.fixture(scope="session")
def librispeech_dir() -> Path:
    path = shared_dir() / "data" / "librispeech" / "LibriSpeech"
    if not path.is_dir():
        pytest.skip(f"real LibriSpeech clips not found at {path} (set VCFRAME_SHARED)")
    return path
