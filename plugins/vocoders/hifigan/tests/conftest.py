from pathlib import Path

import pytest
import torch

from vcframe.testing.shared import shared_path


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def hifigan_fixtures() -> Path:
    """``../shared/hifigan/fixtures``: the original code's random-weight generators and outputs."""
    return shared_path("hifigan", "fixtures", needs="generator_ref.safetensors", anchor=__file__)
