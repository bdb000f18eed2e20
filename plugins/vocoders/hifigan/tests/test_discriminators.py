"""Golden tests of the discriminators and losses against the original's one-step V3 training references
(``../shared/hifigan/fixtures``: ``train_v3_ref``, ``mpd_weights``, ``msd_weights``; README sections 6 and 7).

Acceptance criteria (README section 7): logits, feature-map channel means and samples, fm_terms within
2e-5 * max|ref| per tensor; spectral-norm u, v within 1e-6; losses within rtol 1e-5; the loss mel within 1e-3
(2e-4 where the reference is above -9).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from vcframe_hifigan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from vcframe_hifigan.losses import discriminator_loss, feature_loss, feature_terms, generator_loss, mel_loss
from vcframe_hifigan.melspec import MelFrontEnd, loss_mel_spec

from vcframe.specs import HIFIGAN_MEL
from vcframe.testing import load_compact_state

RELATIVE = 2e-5  # logits, chmean, sample, fm_terms: per tensor, relative to the reference's max-abs
SPECTRAL_ATOL = 1e-6
LOSS_RTOL = 1e-5


@pytest.fixture(scope="module")
def ref(hifigan_fixtures: Path) -> dict[str, torch.Tensor]:
    return load_file(str(hifigan_fixtures / "train_v3_ref.safetensors"))


@pytest.fixture(scope="module")
def signals(ref):
    """(y, y_hat): the real clip and the reference generator output, (1, 1, 22016)."""
    return ref["train_item.audio"].view(1, 1, -1), ref["train.y_g_hat"]


def build(folder: Path, kind: str, train: bool = False) -> torch.nn.Module:
    state, metadata = load_compact_state(folder / f"{kind}_weights.safetensors")
    assert metadata["checkpoint_key"] == kind
    model = MultiPeriodDiscriminator() if kind == "mpd" else MultiScaleDiscriminator()
    assert list(model.state_dict()) == list(state)  # the original's keys, in the original's order
    model.load_state_dict(state)
    return model.train(train)


@pytest.fixture(scope="module")
def outputs(signals, hifigan_fixtures):
    y, y_hat = signals
    with torch.no_grad():
        return {kind: build(hifigan_fixtures, kind)(y, y_hat) for kind in ("mpd", "msd")}


def assert_relative(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    error = (actual.double() - expected.double()).abs().max().item()
    assert error <= RELATIVE * expected.double().abs().max().item(), (name, error)


def assert_loss(actual: float | torch.Tensor, expected: torch.Tensor, name: str) -> None:
    assert float(actual) == pytest.approx(float(expected), rel=LOSS_RTOL), name


def sample_of(feature_map: torch.Tensor) -> torch.Tensor:
    """The README's 64-point sample: the map flattened row-major at round(linspace(0, numel - 1, 64))."""
    flat = feature_map.reshape(-1)
    return flat[np.round(np.linspace(0, flat.numel() - 1, 64)).astype(np.int64)]


def channel_means(feature_map: torch.Tensor) -> torch.Tensor:
    dims = [d for d in range(feature_map.dim()) if d != 1]
    return feature_map.double().mean(dim=dims)


@pytest.mark.parametrize("kind", ["mpd", "msd"])
def test_logits_and_feature_maps_match_the_original(kind, outputs, ref):
    real_logits, generated_logits, real_maps, generated_maps = outputs[kind]
    count = 5 if kind == "mpd" else 3
    assert len(real_logits) == len(generated_logits) == count
    for index in range(count):
        assert_relative(real_logits[index], ref[f"{kind}.logits_r.{index}"], f"{kind}.logits_r.{index}")
        assert_relative(generated_logits[index], ref[f"{kind}.logits_g.{index}"], f"{kind}.logits_g.{index}")
        shapes = ref[f"{kind}.fmap_shapes"][index]
        for side, maps in (("r", real_maps[index]), ("g", generated_maps[index])):
            assert len(maps) == shapes.shape[0]
            for layer, feature_map in enumerate(maps):
                expected_shape = [int(v) for v in shapes[layer]][: 4 if kind == "mpd" else 3]
                assert list(feature_map.shape) == expected_shape
                prefix = f"{kind}.fmap_{side}.{index}.{layer}"
                assert_relative(channel_means(feature_map), ref[prefix + ".chmean"], prefix + ".chmean")
                assert_relative(sample_of(feature_map), ref[prefix + ".sample"], prefix + ".sample")


@pytest.mark.parametrize("kind, short", [("mpd", "f"), ("msd", "s")])
def test_losses_match_the_original(kind, short, outputs, ref):
    real_logits, generated_logits, real_maps, generated_maps = outputs[kind]
    terms = torch.stack([torch.stack(layers) for layers in feature_terms(real_maps, generated_maps)])
    assert_relative(terms, ref[f"{kind}.fm_terms"], f"{kind}.fm_terms")
    loss, real_terms, generated_terms = discriminator_loss(real_logits, generated_logits)
    assert_loss(loss, ref[f"loss.disc_{short}"], "disc")
    for actual, expected in zip(
        real_terms + generated_terms,
        ref[f"loss.disc_{short}_r_terms"].tolist() + ref[f"loss.disc_{short}_g_terms"].tolist(),
        strict=True,
    ):
        assert actual == pytest.approx(expected, rel=LOSS_RTOL)
    adversarial, adversarial_terms = generator_loss(generated_logits)
    assert_loss(adversarial, ref[f"loss.gen_{short}"], "gen")
    assert torch.allclose(torch.stack(adversarial_terms), ref[f"loss.gen_{short}_terms"], rtol=LOSS_RTOL, atol=0)
    assert_loss(feature_loss(real_maps, generated_maps), ref[f"loss.fm_{short}"], "fm")


def test_mel_loss_and_step_totals_match_the_original(outputs, ref, signals):
    _, y_hat = signals
    front_end = MelFrontEnd(loss_mel_spec(HIFIGAN_MEL))
    assert loss_mel_spec(HIFIGAN_MEL) == HIFIGAN_MEL.model_copy(update={"fmax": 11025.0})
    generated_mel = front_end(y_hat)
    expected = ref["train.y_g_hat_mel"]
    assert generated_mel.shape == expected.shape
    error = (generated_mel - expected).abs()
    assert error.max() <= 1e-3 and error[expected > -9].max() <= 2e-4
    target = ref["train_item.mel_loss"].unsqueeze(0)
    mel = mel_loss(target, generated_mel)
    assert_loss(mel, ref["loss.mel"], "mel")
    assert_loss(mel / 45, ref["loss.mel_error"], "mel_error")
    mpd, msd = outputs["mpd"], outputs["msd"]
    disc_all = discriminator_loss(msd[0], msd[1])[0] + discriminator_loss(mpd[0], mpd[1])[0]
    assert_loss(disc_all, ref["loss.disc_all"], "disc_all")
    gen_all = (
        generator_loss(msd[1])[0]
        + generator_loss(mpd[1])[0]
        + feature_loss(msd[2], msd[3])
        + feature_loss(mpd[2], mpd[3])
        + mel
    )
    assert_loss(gen_all, ref["loss.gen_all"], "gen_all")


def test_msd_train_mode_iterates_spectral_norm_before_each_call(signals, ref, hifigan_fixtures):
    y, y_hat = signals
    msd = build(hifigan_fixtures, "msd", train=True)
    conv = msd.discriminators[0].convs[0]
    before = conv.weight_u.clone()
    recorded = []
    msd.discriminators[0].register_forward_hook(
        lambda module, inputs, output: recorded.append((conv.weight_u.clone(), conv.weight_v.clone()))
    )
    with torch.no_grad():
        real_logits, generated_logits, real_maps, generated_maps = msd(y, y_hat)
    assert not torch.equal(before, recorded[0][0])  # train mode moved u
    for (u, v), side in zip(recorded, ("real", "gen"), strict=True):
        assert torch.allclose(u, ref[f"msd_train.conv0_u_after_{side}"], rtol=0, atol=SPECTRAL_ATOL)
        assert torch.allclose(v, ref[f"msd_train.conv0_v_after_{side}"], rtol=0, atol=SPECTRAL_ATOL)
    assert_relative(real_logits[0], ref["msd_train.logits_r.0"], "msd_train.logits_r.0")
    assert_relative(generated_logits[0], ref["msd_train.logits_g.0"], "msd_train.logits_g.0")
    assert_loss(discriminator_loss(real_logits, generated_logits)[0], ref["msd_train.loss.disc_s"], "disc_s")
    assert_loss(generator_loss(generated_logits)[0], ref["msd_train.loss.gen_s"], "gen_s")
    assert_loss(feature_loss(real_maps, generated_maps), ref["msd_train.loss.fm_s"], "fm_s")
    msd.eval()  # eval mode: u, v stay
    after = conv.weight_u.clone()
    with torch.no_grad():
        msd(y[..., :4096], y_hat[..., :4096])
    assert torch.equal(after, conv.weight_u)


def test_training_generator_output_matches_the_original(ref, hifigan_fixtures):
    from vcframe_hifigan.generator import Generator, to_module_state
    from vcframe_hifigan.spec import PRESETS

    state, _ = load_compact_state(hifigan_fixtures / "generator_v3_weights.safetensors")
    generator = Generator(PRESETS["v3"])  # weight norm kept, as in training
    generator.load_state_dict(to_module_state(state, weight_norm=True))
    with torch.no_grad():
        y_hat = generator(ref["train_item.mel"].unsqueeze(0))
    assert (y_hat - ref["train.y_g_hat"]).abs().max() <= 2e-5


def test_width_narrows_every_hidden_layer_and_rejects_bad_widths():
    narrow_mpd, narrow_msd = MultiPeriodDiscriminator(width=0.125), MultiScaleDiscriminator(width=0.125)
    full_parameters = 41_105_770 + 29_618_821  # SPEC 6.1, 6.2
    narrow = sum(p.numel() for m in (narrow_mpd, narrow_msd) for p in m.parameters())
    assert narrow < full_parameters / 40
    y = torch.randn(2, 1, 2000)
    real_logits, generated_logits, real_maps, _ = narrow_msd(y, y.flip(-1))
    assert [m.shape[1] for m in real_maps[0]] == [16, 16, 32, 64, 128, 128, 128, 1]
    assert [logits.shape for logits in real_logits] == [(2, 32), (2, 16), (2, 8)]  # 2000 -> 1001 -> 501 pooled
    with pytest.raises(ValueError, match="multiple of"):
        MultiScaleDiscriminator(width=0.3)
    with pytest.raises(ValueError, match="positive"):
        MultiPeriodDiscriminator(width=0)


def test_period_discriminator_folds_phases_into_columns():
    mpd = MultiPeriodDiscriminator(periods=(3,), width=0.125)
    y = torch.randn(1, 1, 100)  # 100 = 33 * 3 + 1: reflect-padded by 2 to 34 rows of 3 phases
    logits, _, maps, _ = mpd(y, y)
    assert [m.shape[2:] for m in maps[0]] == [(12, 3), (4, 3), (2, 3), (1, 3), (1, 3), (1, 3)]
    assert logits[0].shape == (1, 3)
    padded = torch.cat([y, y[..., [98, 97]]], dim=-1)  # the reflection: y[98], y[97]
    assert torch.equal(mpd(padded, padded)[0][0], logits[0])
    with pytest.raises(ValueError, match="too short"):
        MultiPeriodDiscriminator(periods=(11,), width=0.125)(y[..., :5], y[..., :5])
