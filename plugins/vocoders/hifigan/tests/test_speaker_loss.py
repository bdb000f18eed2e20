"""The speaker-identity loss (``fit --speaker-loss-weight``): it embeds a segment as the GE2E encoder's own
inference does, is the cross-entropy of the own voice over the table, sends gradients to the waveform and none to
the frozen encoder, leaves pauses out, and refuses what it cannot measure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from vcframe_hifigan.speaker_loss import SpeakerIdentityLoss, chance_loss, load_ge2e_network

RATE = 16000


@pytest.fixture(scope="module")
def ge2e() -> tuple[torch.nn.Module, dict[str, str]]:
    """The shipped default GE2E weights (resemblyzer's), as the trainer loads them."""
    return load_ge2e_network("default", torch.device("cpu"))


def _voiced(pitches: list[float], seconds: float = 0.4, level: float = 0.05) -> torch.Tensor:
    """(B, 1, L) harmonic tones with a little noise, one pitch per row: distinct 'voices' for the encoder."""
    rng = np.random.default_rng(7)
    time = np.arange(int(seconds * RATE)) / RATE
    rows = []
    for pitch in pitches:
        wave = sum(np.sin(2 * np.pi * pitch * k * time) / k for k in range(1, 20) if pitch * k < 7500)
        wave = wave + 0.05 * rng.standard_normal(time.shape)
        rows.append(level * wave / np.sqrt(np.mean(wave**2)))
    return torch.from_numpy(np.stack(rows)).float().unsqueeze(1)


def test_a_segment_is_embedded_as_the_encoders_inference_embeds_it(ge2e) -> None:
    from vcframe_ge2e.model import GE2EEncoder
    from vcframe_ge2e.preprocess import normalize_volume, wav_to_mel
    from vcframe_ge2e.spec import GE2EConfig

    network, record = ge2e
    assert record["space"] == "ge2e/rtvc" and len(record["sha256"]) == 64
    loss = SpeakerIdentityLoss(network, torch.eye(256)[:3], RATE)
    waveform = _voiced([110.0, 220.0])
    embeddings, loud = loss.embed(waveform)
    assert loud.tolist() == [True, True] and embeddings.shape == (2, 256)
    encoder = GE2EEncoder(GE2EConfig())
    for row in range(2):  # the encoder's level normalisation (both ways here) and its numpy mel
        segment = normalize_volume(waveform[row, 0].numpy(), -30.0, increase_only=False)
        expected = encoder.embed_frames(torch.from_numpy(wav_to_mel(segment)).unsqueeze(0))[0]
        assert torch.allclose(embeddings[row], expected, atol=1e-4)


def test_the_loss_is_the_own_voices_cross_entropy_over_the_table(ge2e) -> None:
    network, _ = ge2e
    waveform = _voiced([100.0, 180.0, 260.0])
    with torch.no_grad():
        own = SpeakerIdentityLoss(network, torch.eye(256)[:2], RATE).embed(waveform)[0]
    table = torch.cat([own, F.normalize(torch.rand(4, 256), dim=1)])  # the segments' own embeddings, and others
    loss = SpeakerIdentityLoss(network, table * 3.0, RATE)  # rows are normalised
    voice = torch.tensor([0, 1, 2])
    value, accuracy = loss(waveform, voice)
    logits = network.similarity_weight * own @ table.T + network.similarity_bias
    assert float(value) == pytest.approx(float(F.cross_entropy(logits, voice)), rel=1e-4)
    assert float(accuracy) == 1.0 and float(value) < chance_loss(7) == pytest.approx(math.log(7))
    wrong, wrong_accuracy = loss(waveform, torch.tensor([1, 2, 0]))
    assert float(wrong) > float(value) and float(wrong_accuracy) == 0.0


def test_gradients_reach_the_waveform_and_never_the_frozen_encoder(ge2e) -> None:
    network, _ = ge2e
    loss = SpeakerIdentityLoss(network, F.normalize(torch.rand(5, 256), dim=1), RATE)
    assert list(loss.parameters()) == [] and "voices" not in loss.state_dict()
    assert all(not parameter.requires_grad for parameter in network.parameters())
    waveform = _voiced([120.0, 200.0]).requires_grad_(True)
    value, _ = loss(waveform, torch.tensor([3, 1]))
    value.backward()
    assert waveform.grad is not None and float(waveform.grad.abs().max()) > 0
    assert all(parameter.grad is None for parameter in network.parameters())


def test_pauses_are_left_out_and_a_batch_of_pauses_costs_nothing(ge2e) -> None:
    network, _ = ge2e
    loss = SpeakerIdentityLoss(network, F.normalize(torch.rand(4, 256), dim=1), RATE)
    speech = _voiced([150.0])
    pause = _voiced([150.0], level=1e-4)  # -80 dBFS: below the -50 floor
    alone, _ = loss(speech, torch.tensor([2]))
    mixed, _ = loss(torch.cat([speech, pause]), torch.tensor([2, 0]))
    assert float(mixed) == pytest.approx(float(alone), rel=1e-5)
    silent = pause.clone().requires_grad_(True)
    value, accuracy = loss(silent, torch.tensor([1]))
    value.backward()
    assert float(value.detach()) == 0.0 and float(accuracy) == 0.0 and torch.isfinite(silent.grad).all()


def test_what_it_cannot_measure_is_refused(ge2e) -> None:
    network, _ = ge2e
    with pytest.raises(ValueError, match="embeds 16000 Hz audio .* makes 22050 Hz"):
        SpeakerIdentityLoss(network, torch.eye(256)[:2], 22050)
    with pytest.raises(ValueError, match=r"voices must be \(V >= 2, D\), got \(1, 256\)"):
        SpeakerIdentityLoss(network, torch.eye(256)[:1], RATE)
    with pytest.raises(ValueError, match="have 6 values, the encoder makes 256"):
        SpeakerIdentityLoss(network, torch.eye(6)[:2], RATE)
    loss = SpeakerIdentityLoss(network, torch.eye(256)[:2], RATE)
    with pytest.raises(ValueError, match=r"lie in \[0, 2\), got \[0, 2\]"):
        loss(_voiced([100.0, 200.0]), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"voice must be \(2,\), got \(1,\)"):
        loss(_voiced([100.0, 200.0]), torch.tensor([0]))
