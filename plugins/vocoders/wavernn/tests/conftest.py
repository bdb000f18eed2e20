from pathlib import Path

import pytest
import torch

from vcframe.testing.shared import shared_path


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return shared_path("rtvc", "fixtures", needs="vocoder_ref.safetensors", anchor=__file__)
