from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from vcframe.testing import load_rtvc_state, write_tone_corpus
from vcframe.testing.shared import shared_path

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def rtvc_fixtures() -> Path:
    return shared_path("rtvc", "fixtures", needs="synthesizer_weights.safetensors", anchor=__file__)


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


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A preprocessed tone corpus (four short texts, random per-speaker embeddings) for the training tests; read
    only, shared by the files that train on it."""
    from vcframe_tacotron.train import app

    corpus = write_tone_corpus(
        tmp_path_factory.mktemp("corpus"), ["Hello there.", "One two three.", "A cat sat.", "Good morning to you."]
    )
    out = tmp_path_factory.mktemp("prepared")
    result = CliRunner().invoke(app, ["preprocess", str(corpus), "--out", str(out), "--encoder", "random-per-speaker"])
    assert result.exit_code == 0, result.output
    return out
