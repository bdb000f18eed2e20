"""Text helpers shared by the pipeline and by text frontends.

* ``split_sentences``: long text -> sentences (the pipeline synthesizes them one by one and joins the audio).
* English normalisation used by frontends (numbers, abbreviations, transliteration) lives here too, so that
  every frontend spells "$3.50" the same way.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")
_ABBREVIATION_END = re.compile(
    r"(?:^|\s)(?:mrs|mr|ms|dr|drs|st|jr|sr|co|ltd|maj|gen|rev|lt|hon|sgt|capt|esq|col|ft|prof|vs|etc|no|[a-z])\.$",
    re.IGNORECASE,
)


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
