"""RTVC's English text frontend: ``english_cleaners`` and the 66-symbol character table.

Light module (no torch): the ``vcframe.hooks`` entry point and ``vcframe plugins list`` import it.
``text_to_ids`` is RTVC's ``text_to_sequence(text, ["english_cleaners"])``: cleaned characters that are
not symbols are dropped, the end-of-sequence id 1 (``~``) is appended. ARPAbet in curly braces
(``{HH AH0}``) is parsed as RTVC does, and, as in RTVC, its ``@``-symbols are not in the table, so the
braced part is silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import cast

from vcframe.text import CLEANERS

PAD = "_"
EOS = "~"
#: RTVC's symbol table: pad, EOS, then the characters. Pad = 0, EOS = 1, 'a' = 28, space = 65.
RTVC_SYMBOLS: tuple[str, ...] = (PAD, EOS, *"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!'\"(),-.:;? ")

_CURLY = re.compile(r"(.*?)\{(.+?)\}(.*)")


class CharacterFrontend:
    """Cleaner + character table. Implements vcframe.hookspecs.TextFrontend.

    Args:
        name: recorded in checkpoints (a checkpoint trained with another frontend is refused).
        symbols: the id -> character table; index 0 must be the pad symbol, index 1 the EOS symbol.
        cleaner: text -> cleaned text.
    """

    def __init__(self, name: str, symbols: Sequence[str], cleaner: Callable[[str], str]) -> None:
        if len(symbols) < 3 or symbols[0] != PAD or symbols[1] != EOS:
            raise ValueError(f"symbols must start with pad {PAD!r} and EOS {EOS!r}, got {list(symbols[:2])}")
        self.name = name
        self.symbols = tuple(symbols)
        self.cleaner = cleaner
        self._ids = {symbol: index for index, symbol in enumerate(self.symbols)}
        self.pad_id = 0
        self.eos_id = 1

    def normalize(self, text: str) -> str:
        return self.cleaner(text)

    def _symbol_ids(self, cleaned: str) -> list[int]:
        return [self._ids[s] for s in cleaned if s in self._ids and s not in (PAD, EOS)]

    def text_to_ids(self, text: str) -> list[int]:
        ids: list[int] = []
        while text:
            match = _CURLY.match(text)
            if not match:
                ids += self._symbol_ids(self.cleaner(text))
                break
            ids += self._symbol_ids(self.cleaner(match.group(1)))
            # ARPAbet: RTVC maps each phone to '@PHONE', which is not in its table, so nothing is kept
            text = match.group(3)
        ids.append(self.eos_id)
        return ids

    def ids_to_text(self, ids: Sequence[int]) -> str:
        return "".join(self.symbols[i] for i in ids if 1 < i < len(self.symbols))


def rtvc_english() -> CharacterFrontend:
    """The frontend of RTVC's pretrained synthesizer."""
    return CharacterFrontend("rtvc-english", RTVC_SYMBOLS, CLEANERS["english_cleaners"])


#: Frontends this plugin provides, by name.
FRONTENDS: dict[str, Callable[[], CharacterFrontend]] = {
    "rtvc-english": rtvc_english,
    "rtvc-basic": lambda: CharacterFrontend("rtvc-basic", RTVC_SYMBOLS, CLEANERS["basic_cleaners"]),
    "rtvc-transliteration": lambda: CharacterFrontend(
        "rtvc-transliteration", RTVC_SYMBOLS, CLEANERS["transliteration_cleaners"]
    ),
}


def get_frontend(name: str) -> CharacterFrontend:
    """This plugin's frontend ``name``; other names are looked up through the text-frontend hook."""
    if name in FRONTENDS:
        return FRONTENDS[name]()
    from vcframe.errors import ConfigError

    try:
        from vcframe.discovery import plugin_manager

        found = plugin_manager().hook.vcframe_text_frontend(name=name)
    except Exception:  # noqa: BLE001 - core discovery may be absent; the error below says what to do
        found = None
    if found is None:
        raise ConfigError(f"no text frontend named {name!r}", hint=f"known here: {', '.join(FRONTENDS)}")
    return cast(CharacterFrontend, found)
