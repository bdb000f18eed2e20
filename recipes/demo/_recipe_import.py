"""The demo recipes are scripts, not a package: one imports another by path with ``load``, once each, under the
module name ``vcframe_recipes_demo_<name>``, so a script run from the shell, another script and the tests all
share one module object per recipe (one set of classes, one catalogue).

A script finds this file because Python puts the script's own folder first on ``sys.path``; a script that is
itself imported by path (the tests do) inserts that folder first, see ``make_voices.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DEMO = Path(__file__).resolve().parent


def load(name: str) -> ModuleType:
    """``recipes/demo/<name>.py`` as a module (the one already imported, if any)."""
    module_name = "vcframe_recipes_demo_" + name
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, DEMO / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"recipes/demo/{name}.py cannot be imported (looked in {DEMO})")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
