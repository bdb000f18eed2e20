from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vcframe.testing.shared import shared_path

torch.set_num_threads(1)


@pytest.fixture
def rtvc_fixtures() -> Path:
    return shared_path("rtvc", "fixtures", needs="features_ref.safetensors", anchor=__file__)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "covers_hook(name): the test exercises the named hookspec")


@pytest.fixture(scope="session")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory):
    """A throwaway virtual environment (one per session) that sees this environment's packages, for
    installing plugin packages offline (tests/_venv.py)."""
    from tests._venv import PluginVenv

    return PluginVenv.create(tmp_path_factory.mktemp("plugin-venv"))
