"""Settings and manifests that used to slip through or break commands (issue 21, section 2): unknown component
options in ``config show``, the ``none`` spelling, environment variables that are not settings, the hint of
``vcframe check``, and batch messages and manifests."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import BaseModel

from tests._cli import DUMMIES, one_line_error

# -- config show ------------------------------------------------------------------------------------------


def test_config_show_refuses_unknown_component_options_and_plugins(vcframe_cli) -> None:
    result = vcframe_cli("config", "show", "-o", "vocoder.griffinlim.colour=red")
    line = one_line_error(result, "invalid options for vocoder 'griffinlim': colour")
    assert "n_iter" in line  # the valid ones are listed
    one_line_error(vcframe_cli("config", "show", "-o", "vocoder.nosuch.colour=red"), "unknown vocoder 'nosuch'")
    shown = vcframe_cli("config", "show", "-o", "vocoder.griffinlim.n_iter=5", "--format", "json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["components"]["vocoder"]["griffinlim"] == {"n_iter": 5}


# -- none ---------------------------------------------------------------------------------------------------


def test_none_sets_options_and_settings_that_accept_none(tmp_path, monkeypatch) -> None:
    from vcframe_griffinlim.spec import SPEC as GRIFFINLIM

    from vcframe.config import load_settings
    from vcframe.discovery import make_config

    assert make_config(GRIFFINLIM, {}).peak_normalize is not None  # the default normalises
    for spelling in ("none", "None", "NONE"):
        settings = load_settings([f"vocoder.griffinlim.peak_normalize={spelling}", f"seed={spelling}"], environ={})
        assert settings.seed is None
        assert make_config(GRIFFINLIM, settings.component_options("vocoder", "griffinlim")).peak_normalize is None
    toml = tmp_path / "vcframe.toml"
    toml.write_text('seed = "none"\n[vocoder.griffinlim]\npeak_normalize = "none"\n')
    from_file = load_settings([], config_file=toml, environ={})
    assert from_file.seed is None
    assert make_config(GRIFFINLIM, from_file.component_options("vocoder", "griffinlim")).peak_normalize is None
    from_environment = load_settings([], environ={"VCFRAME_VOCODER__GRIFFINLIM__PEAK_NORMALIZE": "none"})
    options = from_environment.component_options("vocoder", "griffinlim")
    assert make_config(GRIFFINLIM, options).peak_normalize is None


def test_none_stays_a_string_where_the_string_is_a_valid_value() -> None:
    from typing import Literal

    from vcframe.config import none_spelled

    class Options(BaseModel):
        normalization: Literal["none", "symmetric"] | None = "symmetric"
        label: str = "x"
        count: int | None = 3

    spelled = Options.model_validate(none_spelled(Options, {"normalization": "none", "label": "none", "count": "none"}))
    assert (spelled.normalization, spelled.label, spelled.count) == ("none", "none", None)


def test_none_for_an_option_that_does_not_accept_none_is_refused(vcframe_cli) -> None:
    one_line_error(vcframe_cli("config", "show", "-o", "vocoder.griffinlim.n_iter=none"), "n_iter")


# -- environment ------------------------------------------------------------------------------------------


def test_environment_variables_that_are_not_settings_break_nothing(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("VCFRAME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VCFRAME_WAVERNN_NO_CPP", "1")
    monkeypatch.setenv("VCFRAME_SOMEPLUGIN_THREADS", "4")
    result = vcframe_cli("run", *DUMMIES, "-r", speech_like_wav(), "-t", "Hello.", "--out", tmp_path / "o.wav")
    assert result.exit_code == 0, result.stderr


def test_config_show_takes_setting_variables_and_names_the_others(vcframe_cli, monkeypatch) -> None:
    monkeypatch.setenv("VCFRAME_CACHE", "/tmp/vcframe-cache")
    monkeypatch.setenv("VCFRAME_WAVERNN_NO_CPP", "1")
    monkeypatch.setenv("VCFRAME_SEED", "3")
    monkeypatch.setenv("VCFRAME_VOCODER__GRIFFINLIM__N_ITER", "5")
    shown = vcframe_cli("config", "show", "--format", "json")
    assert shown.exit_code == 0, shown.stderr
    settings = json.loads(shown.stdout)
    assert settings["seed"] == 3 and settings["components"]["vocoder"]["griffinlim"] == {"n_iter": 5}
    others = sorted(key for key in os.environ if key.startswith("VCFRAME_") and "SEED" not in key and "__" not in key)
    assert "VCFRAME_CACHE" in others and "VCFRAME_WAVERNN_NO_CPP" in others
    assert shown.stderr.strip() == f"note: not settings (left to the tools that read them): {', '.join(others)}"


def test_the_naming_rule_for_setting_variables() -> None:
    from vcframe.config import is_setting_variable

    for setting in ("VCFRAME_DEVICE", "VCFRAME_MAX_TEXT_CHARS", "VCFRAME_VOCODER__GRIFFINLIM__N_ITER"):
        assert is_setting_variable(setting), setting
    for other in ("VCFRAME_CACHE", "VCFRAME_WAVERNN_NO_CPP", "VCFRAME_SHARED", "VCFRAME_DISABLE_PLUGINS", "HOME"):
        assert not is_setting_variable(other), other


# -- check --------------------------------------------------------------------------------------------------


def test_check_does_not_suggest_an_option_it_does_not_take(dummy_registry, vcframe_cli) -> None:
    from vcframe_griffinlim.spec import SPEC

    dummy_registry.register(SPEC)
    result = vcframe_cli("check", "--encoder", "test-tone", "--synthesizer", "test-constant", "--vocoder", "griffinlim")
    line = one_line_error(result, "incompatible components")
    assert "'vcframe run --allow-mismatch'" in line and ", or --allow-mismatch" not in line
    assert vcframe_cli("check", "--allow-mismatch").exit_code == 2  # check has no such option


# -- batch --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_manifest_without_a_text_column_is_one_error_up_front(dummy_registry, vcframe_cli, tmp_path, suffix) -> None:
    manifest = tmp_path / f"rows.{suffix}"
    if suffix == "csv":
        manifest.write_text("reference\nvoice.wav\nvoice.wav\nvoice.wav\n")
    else:
        manifest.write_text('{"reference": "voice.wav"}\n{"reference": "voice.wav"}\n')
    result = vcframe_cli("batch", manifest, "--out", tmp_path / "out", "--executor", "inline", *DUMMIES)
    one_line_error(result, "has no text column")
    assert not (tmp_path / "out").exists()


def test_batch_messages_are_not_hard_wrapped_when_not_on_a_terminal(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path
) -> None:
    missing = tmp_path / ("a-reference-clip-with-a-long-name-that-would-not-fit-in-eighty-columns" + "-x" * 20 + ".wav")
    manifest = tmp_path / "rows.csv"
    manifest.write_text(f"text,reference\nHello there.,{missing}\nHi.,{speech_like_wav()}\n")
    result = vcframe_cli("batch", manifest, "--out", tmp_path / "out", "--executor", "inline", *DUMMIES)
    assert result.exit_code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 3, lines  # summary, the bad row, the error: one line each
    assert lines[0].endswith("results.jsonl") and str(missing) in lines[1] and lines[2].startswith("error: 1 of 2")
