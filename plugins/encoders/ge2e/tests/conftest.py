from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vcframe.testing.shared import shared_path

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return shared_path("rtvc", "fixtures", needs="encoder_ref.safetensors", anchor=__file__)


@pytest.fixture(scope="session")
def librispeech_dir() -> Path:
    return shared_path("data", "librispeech", "LibriSpeech", anchor=__file__)
