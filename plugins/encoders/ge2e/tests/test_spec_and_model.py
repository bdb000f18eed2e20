"""Unit tests of the GE2E component: spec, config, batched inference, input checks, weight loading."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from vcframe_ge2e.model import GE2EEncoder
from vcframe_ge2e.spec import SPEC, GE2EConfig, resolve_io

from vcframe.errors import CheckpointError, InputError
from vcframe.specs import GE2E_RTVC_EMBEDDING, AudioSpec
from vcframe.types import Waveform


def speechlike(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Harmonic tone with a syllabic envelope and noise: a cheap stand-in for speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.1 * voiced * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def tiny(**overrides) -> GE2EEncoder:
    torch.manual_seed(0)
    return GE2EEncoder(SPEC.make_config({**SPEC.test_config, **overrides}))


def test_spec_module_imports_no_torch():
    code = "import sys, vcframe_ge2e.spec as s; s.SPEC; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_spec_and_config():
    assert SPEC.kind == "encoder" and SPEC.output == GE2E_RTVC_EMBEDDING
    assert SPEC.input == AudioSpec(sample_rate=16000, min_duration_s=1.2)
    assert GE2EConfig().sizes == (256, 3, 256)
    assert GE2EConfig(preset="small", hidden_size=64).sizes == (64, 3, 256)
    with pytest.raises(ValueError):
        GE2EConfig(unknown=1)
    with pytest.raises(ValueError, match="embedding_size 64"):
        GE2EConfig(embedding_size=64)
    audio, embedding = resolve_io(GE2EConfig(embedding_size=64, embedding_space="mine"))
    assert embedding.dim == 64 and audio.min_duration_s == pytest.approx(1.2)
    assert resolve_io(GE2EConfig(partials=False))[0].min_duration_s == pytest.approx(0.01)


def test_batched_equals_one_at_a_time_and_unit_norm():
    encoder = tiny()
    clips = [speechlike(1.3, 110, 0), speechlike(3.7, 180, 1), speechlike(2.2, 140, 2)]
    waveform = Waveform.from_numpy(clips, 16000)
    before = waveform.samples.clone()
    batched = encoder.embed(waveform)
    assert torch.equal(waveform.samples, before), "input was modified"
    assert batched.vector.shape == (3, 256) and batched.spec == GE2E_RTVC_EMBEDDING
    assert batched.vector.device == encoder.device
    torch.testing.assert_close(batched.vector.norm(dim=1), torch.ones(3))
    single = torch.cat([encoder.embed(Waveform.from_numpy(clip, 16000)).vector for clip in clips])
    assert (batched.vector - single).abs().max() < 1e-5


def test_whole_utterance_mode_batched_equals_single():
    encoder = tiny(partials=False)
    clips = [speechlike(0.5, 120, 3), speechlike(1.9, 200, 4)]
    batched = encoder.embed(Waveform.from_numpy(clips, 16000)).vector
    single = torch.cat([encoder.embed(Waveform.from_numpy(clip, 16000)).vector for clip in clips])
    assert (batched - single).abs().max() < 1e-5


def test_small_max_batch_partials_gives_same_result():
    clips = [speechlike(4.0, 150, 5), speechlike(2.0, 100, 6)]
    full = tiny().embed(Waveform.from_numpy(clips, 16000)).vector
    chunked = tiny(max_batch_partials=3).embed(Waveform.from_numpy(clips, 16000)).vector
    assert (full - chunked).abs().max() < 1e-5


def test_embed_speaker_is_normalised_mean():
    encoder = tiny()
    waveform = Waveform.from_numpy([speechlike(1.5, 120, 7), speechlike(2.5, 125, 8)], 16000)
    speaker = encoder.embed_speaker(waveform)
    assert speaker.vector.shape == (1, 256)
    expected = encoder.embed(waveform).vector.mean(dim=0)
    torch.testing.assert_close(speaker.vector[0], expected / expected.norm())


def test_bad_input():
    encoder = tiny()
    with pytest.raises(InputError, match="empty batch"):
        encoder.embed(Waveform(torch.zeros(0, 16000), 16000))
    with pytest.raises(InputError, match="1.20 s"):
        encoder.embed(Waveform.from_numpy(speechlike(0.5, 120, 0), 16000))
    with pytest.raises(InputError, match="16000 Hz"):
        encoder.embed(Waveform.from_numpy(speechlike(2.0, 120, 0), 22050))
    with pytest.raises(InputError):
        encoder.embed_utterances([])


def test_checkpoint_shape_mismatch_names_key_and_shapes(tmp_path):
    path = tmp_path / "other.pt"
    source = tiny(hidden_size=8).network
    torch.save({"step": 3, "model_state": source.state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"lstm.weight_ih_l0 has shape \(32, 40\).*\(64, 40\)"):
        tiny(checkpoint=str(path))
    loaded = tiny(hidden_size=8, checkpoint=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[key], value)


def test_checkpoint_with_wrong_keys_and_pickled_code(tmp_path):
    path = tmp_path / "wrong.pt"
    torch.save({"model_state": {"foo": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="missing keys"):
        tiny(checkpoint=str(path))
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model_state": {"x": torch.zeros(1)}, "obj": np.random.RandomState(0)}, unsafe)
    with pytest.raises(CheckpointError):
        tiny(checkpoint=str(unsafe))


def test_default_checkpoint_is_the_resemblyzer_file():
    import importlib.util

    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("resemblyzer is not installed (pip install 'vcframe-ge2e[pretrained]')")
    encoder = GE2EEncoder(GE2EConfig(vad="energy"))
    assert encoder.checkpoint is not None and encoder.checkpoint.entry is not None
    assert encoder.checkpoint.entry.id == "ge2e-resemblyzer"
    assert encoder.checkpoint.metadata["checkpoint"]["step"] == 1564501
    assert "resemblyzer" not in sys.modules or "resemblyzer.voice_encoder" not in sys.modules


def test_a_checkpoint_loads_into_an_uninitialised_network_with_the_same_embeddings(tmp_path):
    """No random initialisation for weights about to load (cold start, issue 26): no random numbers drawn, and the
    same embeddings as the randomly initialised network the weights were loaded into."""
    source = tiny()
    path = tmp_path / "encoder.pt"
    torch.save({"step": 1, "model_state": source.network.state_dict()}, path)
    random_state = torch.get_rng_state()
    loaded = GE2EEncoder(SPEC.make_config({**SPEC.test_config, "checkpoint": str(path)}))
    assert torch.equal(torch.get_rng_state(), random_state)
    clips = Waveform.from_numpy([speechlike(2.0, 120, 1), speechlike(2.5, 210, 2)], 16000)
    torch.testing.assert_close(loaded.embed(clips).vector, source.embed(clips).vector, rtol=1e-6, atol=1e-6)
