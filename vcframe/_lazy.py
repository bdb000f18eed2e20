"""Lazy package attributes: names a package re-exports from modules it imports only on first access.

Packages whose public names include torch-backed classes (``vcframe``, ``vcframe.metrics``,
``vcframe.testing``) stay cheap to import this way::

    _LAZY = {"Pipeline": "vcframe.pipeline"}
    __getattr__ = lazy_attributes(__name__, _LAZY)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, providers: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``: a name in ``providers`` (name -> module) is taken from its
    module, imported on first use; any other name is an AttributeError."""

    def __getattr__(name: str) -> Any:
        if name in providers:
            return getattr(import_module(providers[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
