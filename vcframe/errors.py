"""Errors that reach users. Each carries a one-line message that says what is wrong and what to do.

The CLI prints ``error: <message>`` for any :class:`VcframeError` and exits with code 2, without a traceback
(``--debug`` shows it). Bad *values* (empty text, a too-short clip) also derive from :class:`ValueError`, so
plain Python callers can catch them the usual way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class VcframeError(Exception):
    """Base class of every error vcframe raises on purpose. ``str(error)`` is one line."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = " ".join(message.split())
        self.hint = " ".join(hint.split()) if hint else None
        super().__init__(self.message if not self.hint else f"{self.message}; {self.hint}")


class InputError(VcframeError, ValueError):
    """Input that cannot be used: empty or huge text, silent or too-short audio, bad shapes."""


class AudioInputError(InputError):
    """An audio file that is missing, unreadable, empty, silent or too short."""


class PluginError(VcframeError):
    """An unknown, ambiguous, disabled or broken plugin."""


class IncompatibleComponentsError(VcframeError):
    """Components whose specs do not fit together (see vcframe.compat)."""


class CheckpointError(VcframeError):
    """A checkpoint that is missing, corrupt, unsafe, of the wrong checksum or for another model."""


class ConfigError(VcframeError, ValueError):
    """An invalid configuration value or an unknown configuration key."""


class OutputError(VcframeError):
    """An output that cannot be written (missing directory, no permission)."""


class DownloadError(CheckpointError):
    """A published checkpoint that is not downloaded yet, cannot be downloaded (offline, timeout, not found), or
    arrives with the wrong size or checksum (see vcframe.downloads)."""


def validation_problems(error: ValidationError, empty_location: str = "") -> str:
    """A pydantic ValidationError as one line: ``loc.path: message`` for each issue, joined by ``"; "``; an issue
    without a location is named ``empty_location``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or empty_location}: {issue['msg']}" for issue in error.errors()
    )
