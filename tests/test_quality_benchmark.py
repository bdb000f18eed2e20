"""benchmarks/quality.py's choice of items: ``--first-sentence`` gives a window of the recipe's held-out sentences,
so a vocoder picked on the usual 20 can be confirmed on 20 it was never measured on."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def quality() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
    spec = importlib.util.spec_from_file_location("quality_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_later_first_sentence_is_a_window_of_the_same_held_out_list(quality: ModuleType) -> None:
    recipe = quality.load_recipe()
    usual = quality.held_out_sentences(recipe, 6)
    assert quality.held_out_sentences(recipe, 6, first=0) == usual
    assert quality.held_out_sentences(recipe, 3, first=3) == usual[3:]
    fresh = quality.held_out_sentences(recipe, 4, first=20)
    assert len(fresh) == 4 and not set(fresh) & set(quality.held_out_sentences(recipe, 20))


def test_a_window_past_the_held_out_sentences_is_refused_naming_both(quality: ModuleType) -> None:
    recipe = quality.load_recipe()
    with pytest.raises(SystemExit, match=r"sentences 95 to 104 asked, but the recipe holds out 100"):
        quality.held_out_sentences(recipe, 10, first=95)
    with pytest.raises(SystemExit, match="holds out"):
        quality.held_out_sentences(recipe, 1, first=-1)
