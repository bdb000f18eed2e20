"""Word error rate with an offline recogniser (PyPI ``pocketsphinx`` and its bundled US English model).

    >>> recognizer = Recognizer()                      # needs: pip install 'vcframe-core[asr]'
    >>> hypothesis = recognizer.transcribe("generated.wav")
    >>> word_error_rate("Dr. Smith paid $3.50!", hypothesis)

Both texts are normalised the same way before counting (:func:`normalize_transcript`): ASCII, lower case,
numbers and RTVC's abbreviations spelled out as the synthesizers' text frontends read them, hyphens split,
punctuation dropped (apostrophes inside words kept). pocketsphinx is a small 2015-era model: on real read
speech it scores 25-45 % WER, so compare systems with it rather than quoting it as an absolute quality.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from vcframe.errors import InputError, VcframeError
from vcframe.metrics._audio import mono_samples
from vcframe.metrics.spec import MetricInputs, MetricResult, NoOptions

#: The rate pocketsphinx's bundled acoustic model was trained for; audio is resampled to it.
RECOGNIZER_SAMPLE_RATE = 16000

#: pocketsphinx's frame rate: segment times are counted in 10 ms frames.
_FRAME_SECONDS = 0.01
_NOT_WORD = re.compile(r"[^a-z0-9' ]+")
_LOOSE_APOSTROPHE = re.compile(r"(?<![a-z0-9])'|'(?![a-z0-9])")
_FILLER = re.compile(r"\[[^\]]*\]|<[^>]*>|\(\d+\)")


def normalize_transcript(text: str) -> str:
    """Text in the form word error rates are counted on.

    ``"Dr. Smith paid $3.50 -- in 1999!"`` -> ``"doctor smith paid three dollars fifty cents in nineteen
    ninety nine"``.
    """
    from vcframe.text import expand_abbreviations, normalize_numbers, transliterate

    text = _FILLER.sub(" ", transliterate(text).lower())
    text = text.replace("&", " and ").replace("%", " percent ")
    text = expand_abbreviations(normalize_numbers(text))
    text = _NOT_WORD.sub(" ", text.replace("-", " "))
    text = _LOOSE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class WordErrors:
    """Edit operations between a reference and a hypothesis word sequence (Levenshtein alignment)."""

    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def hits(self) -> int:
        """Reference words heard right (N - S - D): unlike the rate, extra words do not count against it, so
        it tells a recogniser that hears nothing from one that hears the wrong words."""
        return self.reference_words - self.substitutions - self.deletions

    @property
    def rate(self) -> float:
        """(S + D + I) / N; 0 is perfect, and it can exceed 1 when the hypothesis has extra words."""
        return self.errors / self.reference_words


def word_errors(reference: str, hypothesis: str, *, normalize: bool = True) -> WordErrors:
    """Count substitutions, deletions and insertions turning ``reference`` into ``hypothesis``."""
    if normalize:
        reference, hypothesis = normalize_transcript(reference), normalize_transcript(hypothesis)
    expected, heard = reference.split(), hypothesis.split()
    if not expected:
        raise InputError("the reference text has no words", hint="give the text the audio should say")
    # cost[j] = (total, substitutions, deletions, insertions) for expected[:i] vs heard[:j]
    previous = [(j, 0, 0, j) for j in range(len(heard) + 1)]
    for i, word in enumerate(expected, start=1):
        current = [(i, 0, i, 0)]
        for j, other in enumerate(heard, start=1):
            diagonal = previous[j - 1]
            substitute = (diagonal[0] + (word != other), diagonal[1] + (word != other), diagonal[2], diagonal[3])
            delete = (previous[j][0] + 1, previous[j][1], previous[j][2] + 1, previous[j][3])
            insert = (current[j - 1][0] + 1, current[j - 1][1], current[j - 1][2], current[j - 1][3] + 1)
            current.append(min(substitute, delete, insert))
        previous = current
    _, substitutions, deletions, insertions = previous[-1]
    return WordErrors(substitutions, deletions, insertions, len(expected))


def word_error_rate(reference: str, hypothesis: str, *, normalize: bool = True) -> float:
    """(S + D + I) / N of ``hypothesis`` against ``reference``, after :func:`normalize_transcript`."""
    return word_errors(reference, hypothesis, normalize=normalize).rate


@dataclass(frozen=True)
class HeardWord:
    """One item of a recognised utterance, with its time span and the recogniser's confidence in it.

    Attributes:
        text: the word in lower case (pocketsphinx's pronunciation variant mark ``(2)`` removed), or the marker of a
            pause or noise (``<sil>``, ``<s>``, ``</s>``, ``[NOISE]``) when ``is_word`` is False.
        start: seconds from the start of the audio.
        end: seconds from the start of the audio (inclusive end of its last 10 ms frame).
        confidence: posterior probability of the item in the recogniser's lattice, 0-1: wrong words mostly score
            low (on a LibriSpeech clip, 0.007-0.34 for the misheard words against 0.8-1.0 for most right ones).
        is_word: False for pauses and noises.
    """

    text: str
    start: float
    end: float
    confidence: float
    is_word: bool


class Recognizer:
    """Offline speech recognition with pocketsphinx's bundled US English model (16 kHz).

    Each ``transcribe`` call is independent of the previous ones (the feature front end is reset), so results
    do not depend on the order in which a comparison's workers meet the items.

    Args:
        options: extra pocketsphinx ``Config`` options (``{"beam": 1e-60}``); the defaults are the package's.
    """

    def __init__(self, **options: Any) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as error:
            raise VcframeError(
                "word error rates need the pocketsphinx recogniser", hint="pip install 'vcframe-core[asr]'"
            ) from error
        self._decoder = Decoder(samprate=RECOGNIZER_SAMPLE_RATE, loglevel="FATAL", **options)

    def transcribe(self, audio: str | os.PathLike[str] | Any, sample_rate: int | None = None) -> str:
        """The words heard in ``audio``: a file, a :class:`~vcframe.types.Waveform` (item 0), or a 1-D array
        with its ``sample_rate``. Returns lower-case words separated by spaces ('' when nothing is heard)."""
        samples = mono_samples(audio, sample_rate, RECOGNIZER_SAMPLE_RATE, array_name="transcribing an array")
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
        # The feature front end (cepstral mean, noise estimates) adapts from one utterance to the next, so the
        # same clip was heard differently after different predecessors; a reset makes every call independent.
        self._decoder.reinit_feat()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return " ".join(_FILLER.sub(" ", hypothesis.hypstr).split()) if hypothesis is not None else ""

    def timed_words(self, audio: str | os.PathLike[str] | Any, sample_rate: int | None = None) -> list[HeardWord]:
        """What :meth:`transcribe` hears, item by item with time spans and confidences, pauses and noises
        included (``is_word`` False): where to cut a recording into phrases, and which phrases were heard
        with confidence. Empty when nothing is heard."""
        self.transcribe(audio, sample_rate)
        heard = []
        for segment in self._decoder.seg():
            marker = segment.word.startswith(("<", "["))
            heard.append(
                HeardWord(
                    text=segment.word if marker else _FILLER.sub("", segment.word).lower(),
                    start=segment.start_frame * _FRAME_SECONDS,
                    end=(segment.end_frame + 1) * _FRAME_SECONDS,
                    confidence=float(min(max(segment.prob, 0.0), 1.0)),
                    is_word=not marker,
                )
            )
        return heard


@functools.lru_cache(maxsize=1)
def default_recognizer() -> Recognizer:
    """One recogniser per process (loading the model takes about half a second)."""
    return Recognizer()


class WordErrorRateMetric:
    """The ``wer`` metric: pocketsphinx transcript of the output against the item's text."""

    def __init__(self, config: NoOptions, context: Any) -> None:
        self.config = config
        self.recognizer = default_recognizer()

    def compute(self, inputs: MetricInputs) -> MetricResult:
        if inputs.generated is None:
            return MetricResult({"wer": None, "words_right": None, "transcript": None}, note="no output")
        transcript = self.recognizer.transcribe(inputs.generated)
        errors = word_errors(inputs.text, transcript)
        return MetricResult(
            {"wer": errors.rate, "words_right": errors.hits / errors.reference_words, "transcript": transcript}
        )
