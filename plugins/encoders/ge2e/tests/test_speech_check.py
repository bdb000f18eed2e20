"""A reference with no detectable speech (full-scale noise) is refused instead of embedded as a voice (issue 21,
section 2): the voice-activity detector's windows count only when their spectrum is not noise-like."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile
import torch
from vcframe_ge2e.model import GE2EEncoder
from vcframe_ge2e.spec import SPEC

from vcframe.errors import AudioInputError
from vcframe.testing import speech_like
from vcframe.types import Waveform

RATE = 16000


def full_scale_noise(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, int(seconds * RATE)).astype(np.float32)


def tiny(**overrides) -> GE2EEncoder:
    torch.manual_seed(0)
    return GE2EEncoder(SPEC.make_config({**SPEC.test_config, **overrides}))


@pytest.mark.parametrize("method", ["energy", "auto"])
def test_speech_seconds_finds_no_voice_in_noise_and_the_voice_in_speech(method: str) -> None:
    from vcframe_ge2e.preprocess import MIN_SPEECH_S, normalize_volume, speech_seconds

    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # auto without webrtcvad: the energy fallback's warning
        assert speech_seconds(full_scale_noise(), method) == 0.0
    gaussian = np.clip(rng.normal(0, 0.3, 3 * RATE), -1, 1).astype(np.float32)
    assert speech_seconds(gaussian, method) < MIN_SPEECH_S
    speech = speech_like(3.0)
    assert speech_seconds(normalize_volume(speech), method) > 2.0
    # speech under white noise at 10 dB SNR is still speech
    noise = rng.normal(0, 1, speech.size)
    noisy = speech + noise * np.sqrt(np.mean(speech**2) / np.mean(noise**2)) / 10 ** (10 / 20)
    assert speech_seconds(normalize_volume(noisy.astype(np.float32)), method) > 1.0


def test_the_encoder_refuses_noise_and_names_the_clip() -> None:
    encoder = tiny()
    with pytest.raises(AudioInputError, match="the reference clip has no detectable speech") as raised:
        encoder.embed(Waveform.from_numpy(full_scale_noise(), RATE))
    assert "\n" not in str(raised.value) and "require_speech=false" in str(raised.value)
    batch = Waveform.from_numpy([speech_like(2.0), full_scale_noise(2.0)], RATE)
    with pytest.raises(AudioInputError, match="reference clip 2 of 2 has no detectable speech"):
        encoder.embed_speaker(batch)
    assert encoder.embed(Waveform.from_numpy(speech_like(2.0), RATE)).vector.shape == (1, 256)
    allowed = tiny(require_speech=False).embed(Waveform.from_numpy(full_scale_noise(), RATE))
    assert torch.isfinite(allowed.vector).all()


def test_real_speech_passes(shared_speech_clip) -> None:
    from vcframe.audio import load_audio

    clip = load_audio(shared_speech_clip, sample_rate=RATE)
    assert tiny().embed(clip).vector.shape == (1, 256)


def test_cli_refuses_a_noise_reference_and_writes_nothing(vcframe_cli, tmp_path) -> None:
    noise = tmp_path / "noise.wav"
    soundfile.write(noise, full_scale_noise(), RATE)
    result = vcframe_cli("embed", "--encoder", "ge2e", "-r", noise, "--out", tmp_path / "voice.npy")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the reference clip has no detectable speech"), lines
    assert sorted(path.name for path in tmp_path.iterdir()) == ["noise.wav"]


def test_speaker_similarity_of_an_output_without_speech_is_a_note_not_a_crash(tmp_path) -> None:
    from vcframe.metrics.context import MetricContext
    from vcframe.metrics.speaker import SpeakerSimilarityMetric
    from vcframe.metrics.spec import MetricInputs, NoOptions

    reference = tmp_path / "reference.wav"
    soundfile.write(reference, speech_like(2.0), RATE)
    metric = SpeakerSimilarityMetric(NoOptions(), MetricContext(device="cpu"))
    result = metric.compute(
        MetricInputs(text="Hi.", references=(reference,), generated=Waveform.from_numpy(full_scale_noise(2.0), RATE))
    )
    assert result.values == {"speaker_similarity": None}
    assert result.note is not None and "no detectable speech" in result.note


@pytest.fixture
def shared_speech_clip(librispeech_dir):
    """The quietest-voiced of the shared clips checked while choosing the thresholds (49 % of it voiced)."""
    found = sorted(librispeech_dir.rglob("412-126975-0000.flac")) or sorted(librispeech_dir.rglob("*.flac"))[:1]
    if not found:
        pytest.skip(f"no LibriSpeech clip under {librispeech_dir}")
    return found[0]
