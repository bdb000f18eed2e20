"""Text with nothing to speak (only punctuation, emoji or control characters) is refused before any model runs,
in the Python API and the CLI, naming the characters that were dropped (issue 21, section 2)."""

from __future__ import annotations

import pytest

from tests._cli import DUMMIES
from vcframe.errors import InputError

NOTHING_TO_SPEAK = {
    "punctuation": ("?!... ;; --", "no letter or digit"),
    "emoji": ("\U0001f600\U0001f600 \U0001f389", "U+1F600 '\U0001f600', U+1F389"),
    "control characters": ("\x07\x01\x02", "U+0007, U+0001, U+0002"),
    "emoji with a zero-width joiner": ("\U0001f469\u200d\U0001f4bb !", "U+200D"),
}


@pytest.mark.parametrize("case", NOTHING_TO_SPEAK)
def test_speakable_text_refuses_text_with_nothing_to_speak(case: str) -> None:
    from vcframe.text import speakable_text

    text, needle = NOTHING_TO_SPEAK[case]
    with pytest.raises(InputError, match="nothing to speak") as raised:
        speakable_text(text)
    assert needle in str(raised.value) and "\n" not in str(raised.value)


def test_speakable_text_drops_unspoken_characters_and_keeps_words_in_any_script() -> None:
    from vcframe.text import speakable_text

    kept = speakable_text("Hello \U0001f44d\U0001f3fd there\x07! \u00bfQu\u00e9? \u4f60\u597d 42")
    assert kept.text == "Hello  there! \u00bfQu\u00e9? \u4f60\u597d 42"
    assert kept.dropped == ("\U0001f44d", "\U0001f3fd", "\x07")
    assert kept.dropped_note() == (
        "dropped 3 characters that cannot be spoken: U+1F44D '\U0001f44d', U+1F3FD '\U0001f3fd', U+0007"
    )
    assert speakable_text("Plain text.\n\tNext line.").dropped == ()  # whitespace is not dropped


@pytest.mark.parametrize("case", NOTHING_TO_SPEAK)
def test_cli_refuses_text_with_nothing_to_speak_and_writes_nothing(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path, case: str
) -> None:
    text, needle = NOTHING_TO_SPEAK[case]
    out, reference = tmp_path / "out.wav", speech_like_wav()
    result = vcframe_cli("run", *DUMMIES, "-r", reference, "--text", text, "--out", out)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the text has nothing to speak"), result.stderr
    assert needle in lines[0]
    assert [path.name for path in tmp_path.iterdir()] == [reference.name]  # nothing written


def test_cli_speaks_the_words_and_notes_the_dropped_characters(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path
) -> None:
    out = tmp_path / "out.wav"
    result = vcframe_cli(
        "run", *DUMMIES, "-r", speech_like_wav(), "--text", "Hello \U0001f389 there.", "--out", out, "--metadata"
    )
    assert result.exit_code == 0, result.stderr
    assert "note: dropped 1 character that cannot be spoken: U+1F389" in result.stderr
    assert out.is_file()
    import json

    assert json.loads((tmp_path / "out.wav.json").read_text())["dropped_characters"] == ["U+1F389"]


def test_pipeline_refuses_before_embedding_and_records_dropped_characters(dummy_registry, speech_like_wav) -> None:
    from vcframe.pipeline import Pipeline

    pipeline = Pipeline("test-tone", "test-constant", "test-sine", device="cpu")
    with pytest.raises(InputError, match="nothing to speak"):
        pipeline.clone("\U0001f600", reference="missing.wav")  # refused before the reference is even read
    with pytest.raises(InputError, match="nothing to speak"):
        pipeline.sentences("...!?")
    assert pipeline.sentences("Hi \x07there. Bye \U0001f600.") == ["Hi there.", "Bye ."]
    waveform = pipeline.clone("Hi \x07there.", reference=speech_like_wav(), seed=1)
    assert waveform.metadata["dropped_characters"] == ["U+0007"]
    assert "dropped_characters" not in pipeline.clone("Hi there.", reference=speech_like_wav(), seed=1).metadata
