"""Widening a generator (vcframe_hifigan.widen, ``train widen``): the same function at more channels, copies that
training tells apart, a CLI that writes a file ``fit --init`` takes, and refusals."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner
from vcframe_hifigan.generator import Generator
from vcframe_hifigan.spec import PRESETS, GeneratorConfig
from vcframe_hifigan.train import app
from vcframe_hifigan.widen import widen_generator, widen_state, widened_config

from vcframe.checkpoints import load_state
from vcframe.errors import InputError

#: V3's layout at hop 200 (the demo's), 16 channels: small enough for a test.
TINY = PRESETS["v3"].model_copy(
    update={"upsample_rates": (8, 5, 5), "upsample_kernel_sizes": (16, 11, 11), "upsample_initial_channel": 16}
)


def trained_like(config: GeneratorConfig, *, weight_norm: bool = True, seed: int = 0) -> Generator:
    """A generator with weights far from their initialisation (biases too), so that a wrong share shows."""
    torch.manual_seed(seed)
    network = Generator(config, weight_norm=weight_norm)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return network


@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("resblock", ["1", "2"])
def test_widened_generator_computes_the_same_function(factor, resblock):
    config = TINY.model_copy(
        update={"resblock": resblock}
        | ({"resblock_dilation_sizes": ((1, 3, 5), (1, 3, 5), (1, 3, 5))} if resblock == "1" else {})
    )
    network = trained_like(config)
    wide = widen_generator(network, factor, seed=1)
    assert wide.config.upsample_initial_channel == 16 * factor and wide.has_weight_norm
    assert sum(p.numel() for p in wide.parameters()) > 2 * sum(p.numel() for p in network.parameters())
    mel = torch.randn(2, 80, 12) - 4.0
    with torch.no_grad():
        reference, widened = network(mel), wide(mel)
    assert widened.shape == reference.shape
    assert torch.allclose(widened, reference, atol=1e-5), (widened - reference).abs().max()


def test_folded_and_speaker_conditioned_generators_widen_too():
    config = TINY.model_copy(update={"speaker_embedding_dim": 4})
    network = trained_like(config, weight_norm=False)
    wide = widen_generator(network, 2)
    assert not wide.has_weight_norm
    assert torch.equal(wide.speaker_embedding_mean, network.speaker_embedding_mean)
    mel, embedding = torch.randn(1, 80, 10) - 4.0, torch.randn(1, 4)
    with torch.no_grad():
        assert torch.allclose(wide(mel, embedding), network(mel, embedding), atol=1e-5)


def test_copies_get_different_gradients_so_training_pulls_them_apart():
    network = trained_like(TINY)
    wide = widen_generator(network, 2, seed=3)
    wide.zero_grad()
    wide(torch.randn(2, 80, 10) - 4.0).pow(2).sum().backward()
    # conv_pre writes copies c and c + 16 with identical weights: their gradients differ (unequal outgoing shares)
    gradient = wide.conv_pre.parametrizations.weight.original1.grad
    assert gradient is not None
    assert not torch.allclose(gradient[:16], gradient[16:])
    # with even shares the copies would stay identical: the same check fails at spread 0
    even = widen_generator(network, 2, spread=0.0)
    even.zero_grad()
    even(torch.randn(2, 80, 10) - 4.0).pow(2).sum().backward()
    even_gradient = even.conv_pre.parametrizations.weight.original1.grad
    assert even_gradient is not None
    assert torch.allclose(even_gradient[:16], even_gradient[16:], atol=1e-7)


def test_shares_depend_on_the_seed_and_the_refusals_name_the_values():
    network = trained_like(TINY, weight_norm=False)
    one, two = widen_generator(network, 2, seed=0), widen_generator(network, 2, seed=1)
    assert not torch.equal(one.conv_post.weight, two.conv_post.weight)
    with pytest.raises(ValueError, match="factor must be 2 or more to widen, got 1"):
        widened_config(TINY, 1)
    with pytest.raises(ValueError, match=r"spread must be in \[0, 1\), got 1.0"):
        widen_state(network.state_dict(), 2, spread=1.0)
    with pytest.raises(ValueError, match="cannot widen 'extra.weight'"):
        widen_state({"extra.weight": torch.zeros(1)}, 2)


def test_widen_command_writes_a_file_fit_and_the_vocoder_take(tmp_path):
    from vcframe_hifigan.model import HiFiGANVocoder, save_generator
    from vcframe_hifigan.spec import HiFiGANConfig

    from vcframe.specs import RTVC_SYNTHESIZER_MEL

    network = trained_like(TINY)
    source, out = tmp_path / "small.safetensors", tmp_path / "wide.safetensors"
    save_generator(network, RTVC_SYNTHESIZER_MEL, source, steps=7, training_data="tones", license="MIT")
    result = CliRunner().invoke(app, ["widen", "--init", str(source), "--out", str(out), "--factor", "2"])
    assert result.exit_code == 0, result.output
    assert "upsample_initial_channel 32" in result.output and "the same function" in result.output
    _, metadata = load_state(out)
    assert metadata["steps"] == 7 and metadata["training_data"] == "tones" and metadata["license"] == "MIT"
    assert metadata["widened"] == {"source": str(source), "factor": 2, "seed": 0}
    small = HiFiGANVocoder(HiFiGANConfig(checkpoint=str(source), precision="float32"))
    wide = HiFiGANVocoder(HiFiGANConfig(checkpoint=str(out), precision="float32"))
    mel = torch.randn(1, 80, 9) - 4.0
    with torch.no_grad():
        assert torch.allclose(wide.network(mel), small.network(mel), atol=1e-5)


def test_widen_command_refuses_a_file_without_sizes(tmp_path):
    original = tmp_path / "g_00000001"
    torch.save({"generator": trained_like(TINY).state_dict()}, original)
    result = CliRunner().invoke(app, ["widen", "--init", str(original), "--out", str(tmp_path / "w.safetensors")])
    # an InputError: the vcframe CLI prints it in one line and exits with 2
    assert isinstance(result.exception, InputError)
    assert "is not a vcframe-hifigan safetensors file" in str(result.exception)
    assert not (tmp_path / "w.safetensors").exists()
