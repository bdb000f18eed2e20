"""Speaker adaptation's refusals and CLI options, with the dummy components (the Tacotron plugin's tests cover
adaptation itself: plugins/synthesizers/tacotron/tests/test_adaptation.py)."""

from __future__ import annotations

import pytest

from tests._cli import DUMMIES, one_line_error
from vcframe.config import Settings
from vcframe.errors import ConfigError
from vcframe.pipeline import Pipeline


def test_a_synthesizer_without_adapt_embedding_is_refused(dummy_registry, speech_like_wav) -> None:
    pipeline = Pipeline("test-tone", "test-constant", "test-sine", settings=Settings(), device="cpu")
    with pytest.raises(ConfigError, match="synthesizer 'test-constant' cannot adapt to a speaker"):
        pipeline.clone("Hello.", speech_like_wav(seconds=2.5), adapt_speaker=3, reference_text="some words")
    assert "speaker_adaptation" not in pipeline.clone("Hello.", speech_like_wav(seconds=2.5)).metadata


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--adapt-speaker"], "synthesizer 'test-constant' cannot adapt to a speaker"),  # the flag without a number
        (["--adapt-steps", "5", "--reference-text", "hello"], "cannot adapt to a speaker"),
        (["--reference-text", "hello"], "--reference-text is read by speaker adaptation only"),
    ],
)
def test_run_adapt_speaker_refusals_are_one_line(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path, extra, needle
) -> None:
    out = tmp_path / "out.wav"
    result = vcframe_cli(
        "run", *DUMMIES, "--reference", speech_like_wav(seconds=2.5), "--text", "Hi.", "--out", out, *extra
    )
    one_line_error(result, needle)
    assert not out.exists() and list(tmp_path.glob("*.wav")) == [tmp_path / "voice.wav"]


def test_run_adapt_steps_takes_whole_positive_steps(dummy_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    result = vcframe_cli(
        "run", *DUMMIES, "-r", speech_like_wav(), "--text", "Hi.", "--out", tmp_path / "o.wav", "--adapt-steps", "0"
    )
    assert result.exit_code == 2 and "--adapt-steps" in result.stderr


def test_voices_add_refuses_adaptation_with_a_synthesizer_that_cannot(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("VCFRAME_DATA_DIR", str(tmp_path / "data"))
    clip = speech_like_wav(seconds=2.5)
    result = vcframe_cli(
        "voices", "add", "carol", clip, "--consent", "--encoder", "test-tone", "--synthesizer", "test-constant",
        "-o", "vocoder=test-sine", "--adapt-steps", "2", "--reference-text", "some words",
    )  # fmt: skip
    one_line_error(result, "cannot adapt to a speaker")
    assert not (tmp_path / "data" / "voices" / "carol").exists()
    result = vcframe_cli("voices", "add", "carol", clip, "--consent", "--reference-text", "some words")
    one_line_error(result, "--reference-text is read by speaker adaptation only")
