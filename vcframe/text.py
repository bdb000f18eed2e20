"""Text helpers shared by the pipeline and by text frontends.

* ``speakable_text``: the text without the characters no voice speaks (control characters, emoji), or an
  InputError when nothing is left to speak (no letter or digit): the pipeline, the CLI and the server refuse
  such text before any model runs.
* ``split_sentences``: long text -> sentences (the pipeline synthesizes them one by one and joins the audio).
* English normalisation used by frontends (numbers, abbreviations, transliteration) lives here too, so that
  every frontend spells "$3.50" the same way.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from vcframe.errors import InputError

_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")
_ABBREVIATION_END = re.compile(
    r"(?:^|\s)(?:mrs|mr|ms|dr|drs|st|jr|sr|co|ltd|maj|gen|rev|lt|hon|sgt|capt|esq|col|ft|prof|vs|etc|no|[a-z])\.$",
    re.IGNORECASE,
)


#: Code point ranges of emoji and pictographs (with their skin-tone modifiers, variation selectors, keycap and
#: tag characters): symbols a voice does not read out.
EMOJI_RANGES: tuple[tuple[int, int], ...] = (
    (0x1F000, 0x1FAFF),  # mahjong .. symbols and pictographs extended-A (faces, objects, flags, skin tones)
    (0x2600, 0x27BF),  # miscellaneous symbols, dingbats
    (0x2B00, 0x2BFF),  # miscellaneous symbols and arrows (stars, squares)
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
    (0x20E3, 0x20E3),  # combining enclosing keycap
    (0xE0000, 0xE007F),  # tags (subdivision flags)
)
#: Unicode categories no voice reads: control (whitespace excepted), format (zero-width joiners, bidi marks),
#: private use, surrogates, unassigned.
UNSPOKEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})


def is_unspoken(character: str) -> bool:
    """True for a character that no voice speaks: a control or format character (whitespace excepted), a
    private-use, surrogate or unassigned code point, or an emoji/pictograph (:data:`EMOJI_RANGES`)."""
    if character.isspace():
        return False
    code = ord(character)
    if any(low <= code <= high for low, high in EMOJI_RANGES):
        return True
    return unicodedata.category(character) in UNSPOKEN_CATEGORIES


def describe_characters(characters: list[str] | tuple[str, ...], limit: int = 8) -> str:
    """``U+0007, U+1F600 '😀'``: code points (with the glyph when it prints), at most ``limit`` of them."""
    shown = [
        f"U+{ord(c):04X} {c!r}" if c.isprintable() and unicodedata.category(c)[0] != "M" else f"U+{ord(c):04X}"
        for c in characters[:limit]
    ]
    more = f" and {len(characters) - limit} more" if len(characters) > limit else ""
    return ", ".join(shown) + more


@dataclass(frozen=True)
class SpeakableText:
    """``text`` with the unspoken characters removed, and those characters (distinct, in order of appearance)."""

    text: str
    dropped: tuple[str, ...]

    def dropped_note(self) -> str | None:
        """One line naming the dropped characters, or None when none were dropped."""
        if not self.dropped:
            return None
        count = len(self.dropped)
        plural = "s" if count > 1 else ""
        return f"dropped {count} character{plural} that cannot be spoken: {describe_characters(self.dropped)}"


def speakable_text(text: str) -> SpeakableText:
    """``text`` without the characters no voice speaks (:func:`is_unspoken`), checked to have something to say.

    Raises InputError when the text is empty, or when no letter or digit (in any script) remains: text of only
    punctuation, emoji or control characters would be synthesized into babble. The message names the dropped
    characters when there were any.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError("the text is empty", hint="give some words to say")
    dropped = tuple(dict.fromkeys(c for c in text if is_unspoken(c)))
    kept = "".join(c for c in text if not is_unspoken(c)) if dropped else text
    if not any(c.isalnum() for c in kept):
        note = f"; {SpeakableText(kept, dropped).dropped_note()}" if dropped else ""
        raise InputError(
            f"the text has nothing to speak: no letter or digit{' remains' if dropped else ''}{note}",
            hint="give some words to say",
        )
    return SpeakableText(kept, dropped)


def split_sentences(text: str, max_chars: int = 200) -> list[str]:
    """Split ``text`` at sentence ends (and blank lines); sentences over ``max_chars`` are split further at
    commas, then at spaces, so that no piece exceeds ``max_chars``. Empty pieces are dropped."""
    if max_chars < 10:
        raise ValueError(f"max_chars must be at least 10, got {max_chars}")
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        sentences: list[str] = []
        for sentence in _SENTENCE_END.split(paragraph):
            if sentences and _ABBREVIATION_END.search(sentences[-1]):
                sentences[-1] = f"{sentences[-1]} {sentence}"
            else:
                sentences.append(sentence)
        for sentence in sentences:
            pieces.extend(_limit(sentence.strip(), max_chars))
    return [piece for piece in pieces if piece]


def _limit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    out: list[str] = []
    current = ""
    for clause in _CLAUSE_BREAK.split(sentence):
        for word in clause.split(" ") if len(clause) > max_chars else [clause]:
            candidate = f"{current} {word}".strip()
            if len(candidate) <= max_chars:
                current = candidate
                continue
            if current:
                out.append(current)
            while len(word) > max_chars:
                out.append(word[:max_chars])
                word = word[max_chars:]
            current = word
    if current:
        out.append(current)
    return out


# -- English normalisation (RTVC's / keithito's tacotron cleaners, reproduced exactly) ------------------------
#
# ``english_cleaners`` = unidecode -> lowercase -> number expansion -> 18 abbreviations -> whitespace collapse,
# as in RTVC's ``synthesizer/utils/cleaners.py`` and ``numbers.py``. Quirk kept on purpose: unidecode runs
# first and turns "£" into "PS", so the pound rule of ``normalize_numbers`` never fires inside
# ``english_cleaners`` ("£5" -> "ps5" -> "psfive"), exactly as in RTVC.

_COMMA_NUMBER = re.compile(r"([0-9][0-9\,]+[0-9])")
_DECIMAL_NUMBER = re.compile(r"([0-9]+\.[0-9]+)")
_POUNDS = re.compile(r"£([0-9\,]*[0-9]+)")
_DOLLARS = re.compile(r"\$([0-9\.\,]*[0-9]+)")
_ORDINAL = re.compile(r"[0-9]+(st|nd|rd|th)")
_NUMBER = re.compile(r"[0-9]+")
_WHITESPACE = re.compile(r"\s+")

#: RTVC's 18 abbreviations, matched case-insensitively at a word start and followed by a full stop.
ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("mrs", "misess"),
    ("mr", "mister"),
    ("dr", "doctor"),
    ("st", "saint"),
    ("co", "company"),
    ("jr", "junior"),
    ("maj", "major"),
    ("gen", "general"),
    ("drs", "doctors"),
    ("rev", "reverend"),
    ("lt", "lieutenant"),
    ("hon", "honorable"),
    ("sgt", "sergeant"),
    ("capt", "captain"),
    ("esq", "esquire"),
    ("ltd", "limited"),
    ("col", "colonel"),
    ("ft", "fort"),
)
_ABBREVIATION_PATTERNS = [(re.compile(rf"\b{short}\.", re.IGNORECASE), long) for short, long in ABBREVIATIONS]


@functools.lru_cache(maxsize=1)
def _inflect_engine() -> Any:
    import inflect  # imported on first use: inflect is slow to import

    return inflect.engine()


def _remove_commas(match: re.Match[str]) -> str:
    return match.group(1).replace(",", "")


def _expand_decimal_point(match: re.Match[str]) -> str:
    return match.group(1).replace(".", " point ")


def _expand_dollars(match: re.Match[str]) -> str:
    amount = match.group(1)
    parts = amount.split(".")
    if len(parts) > 2:
        return amount + " dollars"  # unexpected format, as RTVC
    dollars = int(parts[0]) if parts[0] else 0
    cents = int(parts[1]) if len(parts) > 1 and parts[1] else 0
    dollar_unit = "dollar" if dollars == 1 else "dollars"
    cent_unit = "cent" if cents == 1 else "cents"
    if dollars and cents:
        return f"{dollars} {dollar_unit}, {cents} {cent_unit}"
    if dollars:
        return f"{dollars} {dollar_unit}"
    if cents:
        return f"{cents} {cent_unit}"
    return "zero dollars"


def _expand_ordinal(match: re.Match[str]) -> str:
    return str(_inflect_engine().number_to_words(match.group(0)))


def _expand_number(match: re.Match[str]) -> str:
    engine = _inflect_engine()
    number = int(match.group(0))
    if 1000 < number < 3000:
        if number == 2000:
            return "two thousand"
        if 2000 < number < 2010:
            return "two thousand " + str(engine.number_to_words(number % 100))
        if number % 100 == 0:
            return str(engine.number_to_words(number // 100)) + " hundred"
        return str(engine.number_to_words(number, andword="", zero="oh", group=2)).replace(", ", " ")
    return str(engine.number_to_words(number, andword=""))


def normalize_numbers(text: str) -> str:
    """Spell out numbers as RTVC's ``numbers.py``: thousands commas dropped, "£n" -> "n pounds",
    "$x.y" -> "x dollars, y cents", decimals with "point", ordinals, 1001-2999 read as years
    (2001-2009 as "two thousand n"), everything else through inflect without "and"."""
    text = _COMMA_NUMBER.sub(_remove_commas, text)
    text = _POUNDS.sub(r"\1 pounds", text)
    text = _DOLLARS.sub(_expand_dollars, text)
    text = _DECIMAL_NUMBER.sub(_expand_decimal_point, text)
    text = _ORDINAL.sub(_expand_ordinal, text)
    return _NUMBER.sub(_expand_number, text)


def expand_abbreviations(text: str) -> str:
    """Replace RTVC's 18 abbreviations ("Dr." -> "doctor", "Mrs." -> "misess", ...)."""
    for pattern, replacement in _ABBREVIATION_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def collapse_whitespace(text: str) -> str:
    """Every run of whitespace becomes one space (leading and trailing spaces are kept, as RTVC)."""
    return _WHITESPACE.sub(" ", text)


def transliterate(text: str) -> str:
    """Unicode -> closest ASCII (unidecode): "café" -> "cafe", "—" -> "--"."""
    from unidecode import unidecode

    return str(unidecode(text))


def basic_cleaners(text: str) -> str:
    """Lowercase and collapse whitespace (no transliteration): for non-English text in ASCII."""
    return collapse_whitespace(text.lower())


def transliteration_cleaners(text: str) -> str:
    """Transliterate to ASCII, lowercase, collapse whitespace: for non-English text."""
    return collapse_whitespace(transliterate(text).lower())


def english_cleaners(text: str) -> str:
    """RTVC's ``english_cleaners``: transliterate, lowercase, spell out numbers, expand abbreviations,
    collapse whitespace. ``"Dr. Smith paid $3.50"`` -> ``"doctor smith paid three dollars, fifty cents"``."""
    text = transliterate(text).lower()
    text = normalize_numbers(text)
    text = expand_abbreviations(text)
    return collapse_whitespace(text)


#: Cleaners by the names RTVC's hparams use (``tts_cleaner_names``).
CLEANERS = {
    "english_cleaners": english_cleaners,
    "basic_cleaners": basic_cleaners,
    "transliteration_cleaners": transliteration_cleaners,
}
