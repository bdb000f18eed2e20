from __future__ import annotations

import pytest

from vcframe.config import Settings, load_settings, parse_value
from vcframe.errors import ConfigError


def test_layers_in_order(tmp_path) -> None:
    config = tmp_path / "vcframe.toml"
    config.write_text('vocoder = "from-file"\nseed = 1\n[components.vocoder.griffinlim]\nn_iter = 10\npower = 1.2\n')
    environ = {"VCFRAME_SEED": "2", "VCFRAME_VOCODER__GRIFFINLIM__N_ITER": "20", "VCFRAME_LIBRISPEECH": "/x"}
    settings = load_settings(["vocoder.griffinlim.n_iter=30"], config_file=config, environ=environ)
    assert settings.vocoder == "from-file"
    assert settings.seed == 2
    assert settings.component_options("vocoder", "griffinlim") == {"n_iter": 30, "power": 1.2}
    assert load_settings(config_file=config, environ={}, explicit={"vocoder": "flag"}).vocoder == "flag"


def test_defaults_come_from_the_default_bundle() -> None:
    settings = Settings()
    assert (settings.encoder, settings.synthesizer, settings.vocoder) == ("ge2e", "tacotron", "griffinlim")


def test_unknown_and_bad_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="valid keys"):
        load_settings(["colour=blue"], environ={})
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        load_settings(["novalue"], environ={})
    with pytest.raises(ConfigError, match="incomplete"):
        load_settings(["vocoder.griffinlim=3"], environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        bad = __import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "bad.toml"
        bad.write_text("= = =")
        load_settings(config_file=bad, environ={})


def test_values_parse_as_toml_or_string() -> None:
    assert parse_value("3") == 3
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("/some/path.pt") == "/some/path.pt"


def test_parse_json_options_reads_json_values_and_refuses_items_without_a_key() -> None:
    from vcframe.config import parse_json_options
    from vcframe.errors import ConfigError

    parsed = parse_json_options(["upsample_rates=[8,5,5]", "width=128", "masking=clean", "flag=true", "empty="])
    assert parsed == {"upsample_rates": [8, 5, 5], "width": 128, "masking": "clean", "flag": True, "empty": ""}
    assert parse_json_options(None) == {}
    for bad in ("width", "=3"):
        with pytest.raises(ConfigError, match="is not key=value"):
            parse_json_options([bad], example="-o width=128")
