"""Golden tests against RTVC's own outputs (../shared/rtvc/fixtures, README sections 3, 5.1, 5.2, 7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from vcframe_ge2e.loss import ge2e_eer, ge2e_loss, similarity_matrix
from vcframe_ge2e.model import GE2EEncoder, load_weights
from vcframe_ge2e.network import SpeakerEncoderNet
from vcframe_ge2e.preprocess import (
    compute_partial_slices,
    normalize_volume,
    preprocess_wav,
    wav_to_mel,
    webrtcvad_available,
)
from vcframe_ge2e.spec import GE2EConfig

from vcframe.testing import load_rtvc_state
from vcframe.testing.golden import POWER_MEL_RTOL, SAMPLES_RTOL

EMBED_ATOL = 1e-6  # README section 7: encoder embeddings
SIM_ATOL, LOSS_RTOL = 2e-5, 1e-5


@pytest.fixture(scope="module")
def refs(fixtures_dir):
    return load_file(str(fixtures_dir / "encoder_ref.safetensors"))


@pytest.fixture(scope="module")
def features(fixtures_dir):
    return load_file(str(fixtures_dir / "features_ref.safetensors"))


@pytest.fixture(scope="module")
def encoder(fixtures_dir):
    config = GE2EConfig(checkpoint=str(fixtures_dir / "encoder.pt"), vad="off")
    return GE2EEncoder(config)


def test_rtvc_checkpoint_loads_strictly_and_matches_compact_form(fixtures_dir):
    raw = torch.load(fixtures_dir / "encoder.pt", weights_only=True)
    assert set(raw) == {"step", "model_state", "optimizer_state"}
    network = SpeakerEncoderNet()
    resolved = load_weights(network, str(fixtures_dir / "encoder.pt"))
    assert resolved.metadata["checkpoint"]["step"] == 1
    compact = load_rtvc_state(fixtures_dir / "encoder_weights.safetensors")
    assert list(compact) == list(network.state_dict())
    for key, value in network.state_dict().items():
        assert torch.equal(value, compact[key]), key


def test_volume_normalisation_and_mel(features):
    wav = features["wav_16k"].numpy()
    normalised = normalize_volume(wav, -30.0, increase_only=True)
    np.testing.assert_allclose(normalised, features["enc_normalize_volume"].numpy(), rtol=SAMPLES_RTOL, atol=0)
    novad = preprocess_wav(wav, vad="off")
    np.testing.assert_allclose(novad, features["enc_preprocess_wav_novad"].numpy(), rtol=SAMPLES_RTOL, atol=0)
    mel = wav_to_mel(novad)
    assert mel.shape == features["enc_mel_40"].shape
    np.testing.assert_allclose(mel, features["enc_mel_40"].numpy(), rtol=POWER_MEL_RTOL, atol=0)


@pytest.mark.skipif(not webrtcvad_available(), reason="webrtcvad is not installed (pip install 'vcframe-ge2e[vad]')")
def test_webrtcvad_trim_matches(features):
    trimmed = preprocess_wav(features["wav_16k"].numpy(), vad="webrtc")
    assert trimmed.shape == features["enc_preprocess_wav_vad"].shape  # the voice decisions are exact
    np.testing.assert_allclose(trimmed, features["enc_preprocess_wav_vad"].numpy(), rtol=SAMPLES_RTOL, atol=0)


@pytest.mark.parametrize("name", ["3x160", "1x80", "2x237"])
def test_forward(encoder, refs, name):
    with torch.no_grad():
        embeds = encoder.network(refs[f"mels_{name}"])
    torch.testing.assert_close(embeds, refs[f"embeds_{name}"], atol=EMBED_ATOL, rtol=0)
    if name == "3x160":
        with torch.no_grad():
            _, (hidden, _) = encoder.network.lstm(refs["mels_3x160"])
            raw = encoder.network.relu(encoder.network.linear(hidden[-1]))
        torch.testing.assert_close(raw, refs["embeds_raw_3x160"], atol=EMBED_ATOL, rtol=0)


def test_forward_with_lengths_ignores_padding(encoder, refs):
    mels = torch.zeros(3, 237, 40)
    mels[0, :80] = refs["mels_1x80"][0]
    mels[1:] = refs["mels_2x237"]
    embeds = encoder.embed_frames(mels, torch.tensor([80, 237, 237]))
    torch.testing.assert_close(embeds[:1], refs["embeds_1x80"], atol=EMBED_ATOL, rtol=0)
    torch.testing.assert_close(embeds[1:], refs["embeds_2x237"], atol=EMBED_ATOL, rtol=0)


@pytest.mark.parametrize("prefix", ["ge2e", "ge2e_synth"])
def test_ge2e_similarity_loss_eer(encoder, refs, prefix):
    if prefix == "ge2e":
        with torch.no_grad():
            embeds = encoder.network(refs["ge2e_mels_20x160"]).view(4, 5, 256)
        torch.testing.assert_close(embeds, refs["ge2e_embeds_4x5"], atol=EMBED_ATOL, rtol=0)
    else:
        embeds = refs["ge2e_synth_embeds_4x5"]
    weight, bias = encoder.network.similarity_weight, encoder.network.similarity_bias
    with torch.no_grad():
        sim = similarity_matrix(embeds, weight, bias)
        loss, _ = ge2e_loss(embeds, weight, bias)
    torch.testing.assert_close(sim, refs[f"{prefix}_sim_matrix"], atol=SIM_ATOL, rtol=LOSS_RTOL)
    torch.testing.assert_close(loss, refs[f"{prefix}_loss"], atol=SIM_ATOL, rtol=LOSS_RTOL)
    assert ge2e_eer(refs[f"{prefix}_sim_matrix"]) == pytest.approx(float(refs[f"{prefix}_eer"]), abs=1e-6)
    assert ge2e_eer(sim) == pytest.approx(float(refs[f"{prefix}_eer"]), abs=1e-6)


@pytest.mark.parametrize("n_samples", [4000, 16000, 25600, 40000, 41000, 100000])
def test_partial_slices(refs, n_samples):
    slices = compute_partial_slices(n_samples)
    np.testing.assert_array_equal(slices.wav, refs[f"partial_slices.{n_samples}.wav"].numpy())
    np.testing.assert_array_equal(slices.mel, refs[f"partial_slices.{n_samples}.mel"].numpy())


def test_embed_utterance(encoder, refs):
    wav = refs["embed_utterance_input_wav"].numpy()
    (result,) = encoder.embed_utterances([wav], preprocess=False)
    np.testing.assert_array_equal(result.wav_slices, refs["embed_utterance_wav_slices"].numpy())
    torch.testing.assert_close(result.partial_embeddings, refs["embed_utterance_partials"], atol=EMBED_ATOL, rtol=0)
    torch.testing.assert_close(result.embedding, refs["embed_utterance"], atol=EMBED_ATOL, rtol=0)
    whole = encoder.embed_whole([wav], preprocess=False)
    torch.testing.assert_close(whole[0], refs["embed_utterance_no_partials"], atol=EMBED_ATOL, rtol=0)
