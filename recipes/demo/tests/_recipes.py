"""The demo recipes are scripts, not a package: the tests import them by path, once each, under the module
names ``make_voices.py`` uses for ``make_corpus.py`` (``vcframe_recipes_demo_<name>``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DEMO = Path(__file__).resolve().parents[1]


def load(name: str) -> ModuleType:
    """``recipes/demo/<name>.py`` as a module (the one already imported, if any)."""
    module_name = "vcframe_recipes_demo_" + name
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, DEMO / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
