"""Where the tests find ``../shared`` (fixtures and real speech): one rule for the core's and every plugin's tests."""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable that names the shared folder (default: ``shared`` beside the repository).
SHARED_ENV = "VCFRAME_SHARED"


def shared_path(*parts: str, needs: str | None = None, anchor: str | os.PathLike[str] | None = None) -> Path:
    """``$VCFRAME_SHARED/<parts>``, or ``<repository>/../shared/<parts>``; skips the calling test when the folder
    (or the file ``needs`` inside it) is missing, with a message saying how to point at it.

    ``anchor`` is any path inside the repository (a test module's ``__file__``); the repository is the nearest
    folder above it that holds ``.git`` or ``pyproject.toml`` with a ``vcframe`` folder beside it. Without one
    the installed ``vcframe`` package's location is used.
    """
    import pytest

    override = os.environ.get(SHARED_ENV)
    root = Path(override) if override else _repository(Path(anchor) if anchor else Path(__file__)).parent / "shared"
    folder = root.joinpath(*parts)
    wanted = folder / needs if needs else folder
    if not wanted.exists():
        pytest.skip(f"{'/'.join(parts) or 'shared'} not found at {wanted} (set {SHARED_ENV} to the shared folder)")
    return folder


def _repository(start: Path) -> Path:
    for folder in start.resolve().parents:
        if (folder / "vcframe").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return Path(__file__).resolve().parents[2]
