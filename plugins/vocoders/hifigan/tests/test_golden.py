"""Golden tests against the original jik876/hifi-gan outputs (``../shared/hifigan/fixtures``).

Tolerances are the fixtures README's section 7 acceptance criteria: generator audio atol 2e-5, int16 output
within 1 LSB, short-case intermediates 5e-6 of each tensor's max-abs, folded weights 1e-6 of max-abs.
V1 (13.9 M parameters) runs on the fixtures' 1 s clip only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from vcframe_hifigan.generator import Generator, to_module_state
from vcframe_hifigan.model import HiFiGANVocoder
from vcframe_hifigan.spec import PRESETS, GeneratorConfig, HiFiGANConfig

from vcframe.specs import HIFIGAN_MEL
from vcframe.testing.rtvc import load_rtvc_state
from vcframe.types import Mel

AUDIO_ATOL = 2e-5
INTERMEDIATE_RTOL_OF_MAX = 5e-6
FOLD_RTOL_OF_MAX = 1e-6
VERSIONS = ("v1", "v2", "v3")


@pytest.fixture(scope="module")
def reference(hifigan_fixtures: Path) -> dict[str, torch.Tensor]:
    return load_file(str(hifigan_fixtures / "generator_ref.safetensors"))


def _weights(folder: Path, version: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(original state dict with weight norm, original config.json) of a fixture generator."""
    path = folder / f"generator_{version}_weights.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        config = json.loads(handle.metadata()["config"])
    return load_rtvc_state(path), config


def _close_to_max(actual: torch.Tensor, expected: torch.Tensor, fraction: float, what: str) -> None:
    assert actual.shape == expected.shape, what
    error = float((actual - expected).abs().max())
    assert error <= fraction * float(expected.abs().max()), f"{what}: {error:.3g}"


@pytest.mark.parametrize("version", VERSIONS)
def test_generator_with_and_without_weight_norm(hifigan_fixtures, reference, version) -> None:
    state, original_config = _weights(hifigan_fixtures, version)
    config = GeneratorConfig.from_original(original_config)
    assert config == PRESETS[version]
    network = Generator(config)  # weight norm, as training holds it
    network.load_state_dict(to_module_state(state, weight_norm=True))
    with torch.inference_mode():
        audio_wn = network(reference["mel"])
        network.remove_weight_norm()
        audio = network(reference["mel"])
    torch.testing.assert_close(audio_wn, reference[f"gen_{version}.audio_wn"], rtol=0, atol=AUDIO_ATOL)
    torch.testing.assert_close(audio, reference[f"gen_{version}.audio"], rtol=0, atol=AUDIO_ATOL)
    # inference.py's int16: truncation toward zero, within 1 LSB of the original's file
    as_int16 = (audio.squeeze() * 32768).numpy().astype(np.int32)
    assert np.abs(as_int16 - reference[f"gen_{version}.wav_int16"].numpy().astype(np.int32)).max() <= 1


@pytest.mark.parametrize("version", VERSIONS)
def test_short_case_intermediates(hifigan_fixtures, reference, version) -> None:
    state, _ = _weights(hifigan_fixtures, version)
    network = Generator(PRESETS[version], weight_norm=False)
    network.load_state_dict(to_module_state(state, weight_norm=False))
    record: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        audio = network(reference[f"short_{version}.mel"], record=record)
    names = [key.removeprefix(f"short_{version}.") for key in reference if key.startswith(f"short_{version}.")]
    compared = [name for name in names if name not in ("mel", "audio")]
    assert {"conv_pre", "conv_post", "ups.0", "mrf.0", "resblock.2"} <= set(compared)
    for name in compared:
        _close_to_max(record[name], reference[f"short_{version}.{name}"], INTERMEDIATE_RTOL_OF_MAX, name)
    torch.testing.assert_close(audio, reference[f"short_{version}.audio"], rtol=0, atol=AUDIO_ATOL)


def test_folded_weights_match_remove_weight_norm(hifigan_fixtures, reference) -> None:
    """g per output channel for Conv1d, per *input* channel for ConvTranspose1d (ups.2)."""
    state, _ = _weights(hifigan_fixtures, "v3")
    folded = to_module_state(state, weight_norm=False)
    network = Generator(PRESETS["v3"])
    network.load_state_dict(to_module_state(state, weight_norm=True))
    network.remove_weight_norm()
    removed = network.state_dict()
    keys = [key.removeprefix("wn_fold_v3.") for key in reference if key.startswith("wn_fold_v3.")]
    assert "ups.2.weight" in keys and len(keys) == 4
    for key in keys:
        _close_to_max(folded[key], reference[f"wn_fold_v3.{key}"], FOLD_RTOL_OF_MAX, key)
        _close_to_max(removed[key], reference[f"wn_fold_v3.{key}"], FOLD_RTOL_OF_MAX, key)


def _mel(reference: dict[str, torch.Tensor]) -> Mel:
    return Mel(reference["mel"].clone(), HIFIGAN_MEL)


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_original_checkpoint_loads_with_its_config_json(hifigan_fixtures, reference, tmp_path, version) -> None:
    """A g_ file ({"generator": weight-normalised state}) with config.json beside it, loaded weights_only."""
    _, original_config = _weights(hifigan_fixtures, version)
    checkpoint = tmp_path / "g_00000001"
    shutil.copyfile(hifigan_fixtures / f"generator_{version}.pt", checkpoint)
    (tmp_path / "config.json").write_text(json.dumps(original_config))
    vocoder = HiFiGANVocoder(HiFiGANConfig(checkpoint=str(checkpoint), precision="float32"))
    assert vocoder.network.config == PRESETS[version] and vocoder.input_spec == HIFIGAN_MEL
    assert not vocoder.network.has_weight_norm  # folded at load
    waveform = vocoder.vocode(_mel(reference))
    assert waveform.sample_rate == 22050 and int(waveform.lengths[0]) == 22016
    torch.testing.assert_close(waveform.samples[:1], reference[f"gen_{version}.audio"][0], rtol=0, atol=AUDIO_ATOL)


def test_original_checkpoint_without_config_json_is_recognised_by_shape(hifigan_fixtures, reference, tmp_path) -> None:
    checkpoint = tmp_path / "g_02500000"
    shutil.copyfile(hifigan_fixtures / "generator_v3.pt", checkpoint)
    vocoder = HiFiGANVocoder(HiFiGANConfig(checkpoint=str(checkpoint), precision="float32"))
    assert vocoder.network.config == PRESETS["v3"]
    torch.testing.assert_close(
        vocoder.vocode(_mel(reference)).samples, reference["gen_v3.audio"][0], rtol=0, atol=AUDIO_ATOL
    )


def test_folded_checkpoint_loads(hifigan_fixtures, reference, tmp_path) -> None:
    """Third-party exports hold folded ``weight`` keys instead of weight_g / weight_v."""
    state, _ = _weights(hifigan_fixtures, "v2")
    torch.save({"generator": to_module_state(state, weight_norm=False)}, tmp_path / "g_folded")
    vocoder = HiFiGANVocoder(HiFiGANConfig(checkpoint=str(tmp_path / "g_folded"), preset="v2", precision="float32"))
    torch.testing.assert_close(
        vocoder.vocode(_mel(reference)).samples, reference["gen_v2.audio"][0], rtol=0, atol=AUDIO_ATOL
    )
