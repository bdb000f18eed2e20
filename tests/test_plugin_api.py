"""What plugin authors use beyond the contract: the generated API page, per-item seeding, moving a component."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from vcframe.interfaces import BaseVocoder
from vcframe.seeding import item_generators
from vcframe.testing.dummy_specs import SINE_VOCODER

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _generator_module():
    spec = importlib.util.spec_from_file_location("gen_api", DOCS / "gen_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_page_is_generated_from_the_current_docstrings() -> None:
    generator = _generator_module()
    committed, generated = (DOCS / "api.md").read_text(), generator.render()
    if committed != generated:
        pytest.fail(
            f"docs/api.md is out of date with the docstrings ({generator.first_difference(committed, generated)}); "
            "run python docs/gen_api.py and commit docs/api.md",
            pytrace=False,
        )


def test_the_generator_turns_docstring_markup_into_markdown() -> None:
    generator = _generator_module()
    docstring = """Sum of :func:`~vcframe.audio.mel_basis` rows, ``(n_mels,)``.

    Args:
        spec: the mel spec
            read twice.
        scale: a factor.

    The formula::

        y = sum(x)
    """
    assert generator.markdown(docstring).splitlines() == [
        "Sum of `vcframe.audio.mel_basis` rows, `(n_mels,)`.",
        "",
        "**Args:**",
        "",
        "- spec: the mel spec read twice.",
        "- scale: a factor.",
        "",
        "The formula:",
        "",
        "```",
        "y = sum(x)",
        "```",
    ]
    assert generator.type_name(dict[str, int] | None) == "dict[str, int] | None"


class _TensorHoldingVocoder(BaseVocoder):
    spec = SINE_VOCODER

    def __init__(self) -> None:
        super().__init__()
        self.network = torch.nn.Linear(2, 2)
        self.window = torch.hann_window(8)  # a tensor outside any module
        self.windows = [torch.ones(2)]  # in a container: the component's own business

    def _vocode(self, mel, seed):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def test_to_moves_modules_and_tensor_attributes() -> None:
    component = _TensorHoldingVocoder().to("meta")
    assert component.device == torch.device("meta")
    assert component.network.weight.device.type == "meta" and component.window.device.type == "meta"
    assert component.windows[0].device.type == "cpu"


def test_item_generators_give_each_item_what_a_batch_of_one_draws() -> None:
    batch = [torch.rand(4, generator=generator) for generator in item_generators(5, 3)]
    single = torch.rand(4, generator=item_generators(5, 1)[0])
    assert all(torch.equal(item, single) for item in batch)
    torch.manual_seed(1)
    unseeded = [torch.rand(4, generator=generator) for generator in item_generators(None, 2)]
    torch.manual_seed(1)
    again = [torch.rand(4, generator=generator) for generator in item_generators(None, 2)]
    assert all(torch.equal(a, b) for a, b in zip(unseeded, again, strict=True))  # follows torch.manual_seed
    assert not torch.equal(unseeded[0], unseeded[1])  # items draw different numbers when unseeded
    assert item_generators(7, 0) == []
    with pytest.raises(ValueError, match="count must be >= 0, got -1"):
        item_generators(None, -1)
