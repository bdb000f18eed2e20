"""The tests import the demo recipes with the recipes' own by-path loader (``recipes/demo/_recipe_import.py``),
so a test and a script that loads a sibling share one module object per recipe."""

from __future__ import annotations

from recipes.demo._recipe_import import DEMO, load

__all__ = ["DEMO", "load"]
