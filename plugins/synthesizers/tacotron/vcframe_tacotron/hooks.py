"""vcframe hooks of the Tacotron plugin (light: no torch). Provides RTVC's English text frontends."""

from __future__ import annotations

from vcframe.hookspecs import hookimpl
from vcframe_tacotron.frontend import FRONTENDS, CharacterFrontend


@hookimpl
def vcframe_text_frontend(name: str) -> CharacterFrontend | None:
    """'rtvc-english' (RTVC's english_cleaners + 66 symbols), 'rtvc-basic', 'rtvc-transliteration'."""
    factory = FRONTENDS.get(name)
    return factory() if factory is not None else None
