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


@pytest.fixture(scope="session")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory):
    """A throwaway virtual environment (one per session) that sees this environment's packages, for
    installing plugin packages offline (tests/_venv.py)."""
    from tests._venv import PluginVenv

    return PluginVenv.create(tmp_path_factory.mktemp("plugin-venv"))
