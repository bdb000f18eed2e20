"""Unit tests of the WaveRNN vocoder component with tiny random weights."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from vcframe_wavernn.model import WaveRNNVocoder, build_network
from vcframe_wavernn.signal import fold_with_overlap, xfade_and_unfold
from vcframe_wavernn.spec import SPEC, WaveRNNConfig

from vcframe.checkpoints import save_safetensors
from vcframe.errors import CheckpointError, InputError
from vcframe.specs import RTVC_SYNTHESIZER_MEL
from vcframe.types import Mel

HOP = RTVC_SYNTHESIZER_MEL.hop_length


def tiny(**overrides) -> WaveRNNVocoder:
    torch.manual_seed(0)
    return WaveRNNVocoder(SPEC.make_config({**SPEC.test_config, "engine": "torch", **overrides}))


def random_mel(frames: int, seed: int = 0, batch: int = 1) -> Mel:
    generator = torch.Generator().manual_seed(seed)
    return Mel(torch.rand(batch, 80, frames, generator=generator) * 8 - 4, RTVC_SYNTHESIZER_MEL)


def test_spec_module_imports_no_torch():
    code = "import sys, vcframe_wavernn.spec as s; s.SPEC; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_presets_and_checks():
    assert WaveRNNConfig().sizes()["rnn_dims"] == 512
    assert WaveRNNConfig(preset="small").sizes()["rnn_dims"] == 256
    assert WaveRNNConfig(preset="small", rnn_dims=128).sizes()["rnn_dims"] == 128
    with pytest.raises(ValueError, match="overlap"):
        WaveRNNConfig(target=100, overlap=200)
    with pytest.raises(ValueError, match="multiple of 4"):
        WaveRNNConfig(res_out_dims=30)
    with pytest.raises(ValueError):
        WaveRNNConfig(unknown_field=1)
    assert "streaming" in SPEC.capabilities and SPEC.trainer == "vcframe_wavernn.train:app"


def test_rtvc_preset_parameter_count():
    network = build_network(WaveRNNConfig(checkpoint=None))
    counts = {
        name: sum(p.numel() for p in getattr(network, name).parameters())
        for name in ("I", "rnn1", "rnn2", "fc1", "fc3")
    }
    assert counts == {"I": 58368, "rnn1": 1575936, "rnn2": 1625088, "fc1": 279040, "fc3": 262656}
    assert sum(p.numel() for p in network.upsample.parameters()) == 400807


@pytest.mark.parametrize("quirks", [True, False])
def test_output_length_lengths_and_device(quirks):
    vocoder = tiny(rtvc_quirks=quirks)
    frames = torch.rand(2, 80, 12) * 8 - 4
    mel = Mel(frames, RTVC_SYNTHESIZER_MEL, torch.tensor([12, 7]))
    before = frames.clone()
    wave = vocoder.vocode(mel, seed=1)
    assert wave.samples.shape == (2, 12 * HOP) and wave.lengths.tolist() == [12 * HOP, 7 * HOP]
    assert wave.sample_rate == 16000 and wave.samples.device == vocoder.device
    assert torch.equal(frames, before)
    assert np.isfinite(wave.samples.numpy()).all() and float(wave.samples.abs().max()) <= 1.0
    if quirks:  # RTVC gives (T - 1) * hop samples: the last hop is zeros
        assert not wave.item(0)[-HOP:].any()


@pytest.mark.parametrize("engine", ["torch", "cpp"])
@pytest.mark.parametrize("sampler", ["sample", "inverse_cdf"])
def test_batch_equals_single_calls_and_seeding(sampler, engine):
    if engine == "cpp":
        from vcframe_wavernn.kernel import load_kernel

        if load_kernel() is None:
            pytest.skip("no C++ compiler: the kernel cannot be built here")
    vocoder = tiny(sampler=sampler, engine=engine)
    mel = random_mel(9, batch=2)
    batch = vocoder.vocode(mel, seed=3)
    for index in range(2):
        single = vocoder.vocode(mel.select(index), seed=3)
        assert np.array_equal(single.item(0), batch.item(index))
    again = vocoder.vocode(mel, seed=3)
    assert torch.equal(again.samples, batch.samples)
    other = vocoder.vocode(mel, seed=4)
    assert not torch.equal(other.samples, batch.samples)
    state = torch.get_rng_state()
    vocoder.vocode(mel, seed=5)
    assert torch.equal(state, torch.get_rng_state())  # a seeded call leaves the global stream alone


@pytest.mark.parametrize("frames", [1, 2, 5])
def test_short_mels_work(frames):
    for batched in (True, False):
        wave = tiny(batched=batched).vocode(random_mel(frames), seed=0)
        assert wave.samples.shape == (1, frames * HOP)


def test_empty_and_mismatched_input():
    vocoder = tiny()
    with pytest.raises(InputError):
        vocoder.vocode(Mel(torch.zeros(1, 80, 4), RTVC_SYNTHESIZER_MEL, torch.tensor([0])))
    other = RTVC_SYNTHESIZER_MEL.model_copy(update={"fmax": 8000.0})
    with pytest.raises(InputError, match="fmax"):
        vocoder.vocode(Mel(torch.zeros(1, 80, 4), other))


@pytest.mark.parametrize("sampler", ["sample", "inverse_cdf"])
@pytest.mark.parametrize("batched", [True, False])
def test_stream_concatenation_equals_vocode(batched, sampler):
    vocoder = tiny(batched=batched, block_steps=60, sampler=sampler)
    mel = random_mel(40)  # 8000 samples: the first 3800 are not under RTVC's final 4000-sample fade
    chunks = list(vocoder.vocode_stream(mel, seed=2))
    assert len(chunks) > 2
    assert chunks[0].samples.shape[1] < 10 * HOP  # audio arrives before the end
    streamed = np.concatenate([c.item(0) for c in chunks])
    assert np.array_equal(streamed, vocoder.vocode(mel, seed=2).item(0))


def test_argmax_is_deterministic_and_engines_agree_on_shape():
    vocoder = tiny(sampler="argmax")
    mel = random_mel(6)
    assert torch.equal(vocoder.vocode(mel).samples, vocoder.vocode(mel, seed=9).samples)


@pytest.mark.parametrize("engine", ["torch", "cpp"])
def test_reference_engine_matches_fast_engine_on_tiny_model(engine):
    if engine == "cpp":
        from vcframe_wavernn.kernel import load_kernel

        if load_kernel() is None:
            pytest.skip("no C++ compiler: the kernel cannot be built here")
    mel = random_mel(25)
    rtvc_exact = {"target": 1000, "overlap": 200, "precision": "float32", "sampler": "sample"}
    fast = tiny(**rtvc_exact, engine=engine, threads=2).generate_float64(mel, seed=11)[0]
    reference = tiny(target=1000, overlap=200, engine="reference").generate_float64(mel, seed=11)[0]
    assert np.array_equal(fast, reference)


def test_inverse_cdf_is_not_rtvcs_random_stream_and_the_reference_loop_refuses_it():
    mel = random_mel(6)
    sampled, inverse = (tiny(sampler=name).vocode(mel, seed=1).samples for name in ("sample", "inverse_cdf"))
    assert not torch.equal(sampled, inverse)  # another use of the seed's numbers: other audio
    with pytest.raises(ValueError, match="engine='reference' is RTVC's loop, which has no sampler 'inverse_cdf'"):
        tiny(sampler="inverse_cdf", engine="reference")


def test_defaults_are_the_fast_settings_and_the_rtvc_bundle_is_rtvc_exact():
    """Without options: bfloat16 where the CPU computes it natively and the inverse-CDF draw. The rtvc bundle's
    options (read through vcframe.bundles; no weights loaded) give RTVC's float32 arithmetic and RTVC's sampler
    with its random stream, so ``--bundle rtvc`` stays RTVC-exact."""
    from vcframe.bundles import get_bundle

    defaults = WaveRNNConfig()
    assert (defaults.precision, defaults.sampler, defaults.engine) == ("auto", "inverse_cdf", "auto")
    rtvc = SPEC.make_config(get_bundle("rtvc").components["vocoder"]["wavernn"])
    assert (rtvc.precision, rtvc.sampler, rtvc.rtvc_rng, rtvc.rtvc_quirks) == ("float32", "sample", True, True)
    assert (rtvc.checkpoint, rtvc.preset, rtvc.batched, rtvc.target, rtvc.overlap) == (
        "registry:rtvc-vocoder",
        "rtvc",
        True,
        8000,
        800,
    )


def test_reference_engine_alone_runs_rtvcs_sampler_in_float32():
    """RTVC's loop has only RTVC's draw in float32: picking the engine alone gives those instead of the fast
    defaults, and what it cannot compute, asked for explicitly, is refused in one line naming both options."""
    picked = WaveRNNConfig(engine="reference")
    assert (picked.precision, picked.sampler) == ("float32", "sample")
    assert WaveRNNConfig(engine="reference", sampler="argmax").sampler == "argmax"  # explicit values stay
    mel = random_mel(25)  # RTVC's loop fails under 21 frames (its final fade), as RTVC does
    alone = tiny(engine="reference").vocode(mel, seed=1).samples
    explicit = tiny(engine="reference", precision="float32", sampler="sample").vocode(mel, seed=1).samples
    assert torch.equal(alone, explicit)
    with pytest.raises(ValueError, match="engine='reference' is RTVC's float32 loop, which has no precision 'int8'"):
        WaveRNNConfig(engine="reference", precision="int8")
    assert WaveRNNConfig(engine="reference", precision="auto").precision == "auto"  # auto: float32 there


def test_checkpoint_roundtrip_and_shape_mismatch(tmp_path):
    vocoder = tiny()
    path = tmp_path / "tiny.safetensors"
    save_safetensors(vocoder.network.state_dict(), path, {"config": {"preset": "tiny"}})
    loaded = tiny(checkpoint=str(path))
    for key, value in vocoder.network.state_dict().items():
        assert torch.equal(value, loaded.network.state_dict()[key])
    with pytest.raises(CheckpointError, match=r"I.weight has shape \(32, 85\) in the file but \(64, 85\)"):
        tiny(checkpoint=str(path), rnn_dims=64)
    with pytest.raises(CheckpointError):
        tiny(checkpoint=str(tmp_path / "missing.pt"))


def test_a_checkpoint_loads_into_an_uninitialised_network_with_the_same_waveform(tmp_path):
    """No random initialisation for weights about to load (cold start, issue 26): no random numbers drawn, the
    same state, and the same waveform (same seed) as the randomly initialised network the weights came from."""
    source = tiny()
    path = tmp_path / "tiny.safetensors"
    save_safetensors(source.network.state_dict(), path, {"config": {"preset": "tiny"}})
    random_state = torch.get_rng_state()
    loaded = WaveRNNVocoder(SPEC.make_config({**SPEC.test_config, "engine": "torch", "checkpoint": str(path)}))
    assert torch.equal(torch.get_rng_state(), random_state)
    for key, value in source.network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[key], value), key
    mel = random_mel(6, seed=3)
    torch.testing.assert_close(loaded.vocode(mel, seed=5).samples, source.vocode(mel, seed=5).samples)


def test_fold_and_xfade_roundtrip_shapes():
    sequence = torch.arange(10.0).view(1, 10, 1)
    assert fold_with_overlap(sequence, 2, 1)[:, :, 0].tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert fold_with_overlap(torch.ones(1, 3, 2), 8, 4).shape == (1, 16, 2)  # shorter than the overlap
    ones = np.ones((3, 14))
    unfolded = xfade_and_unfold(ones, 10, 2)
    assert unfolded.shape == (38,) and np.array_equal(ones, np.ones((3, 14)))


def test_kernel_threads_follow_the_pipeline_default_unless_set(vcframe_registry, torch_threads):
    """In a pipeline the kernel runs torch's count, which the pipeline sets to 1 when nothing is chosen (not one
    per core); the ``threads`` option wins."""
    from vcframe.config import Settings
    from vcframe.pipeline import Pipeline

    selection = vcframe_registry.register_with_partners(SPEC)
    names = dict(zip(selection[::2], selection[1::2], strict=True))
    components = {flag.lstrip("-"): name for flag, name in names.items()}

    def kernel_threads(**vocoder_options) -> int:
        pipeline = Pipeline(
            **components, settings=Settings(), device="cpu", options={"vocoder": {"engine": "torch", **vocoder_options}}
        )
        return pipeline.vocoder.generator.threads

    torch_threads(8)  # torch's default on an 8-core machine
    assert kernel_threads() == 1
    torch_threads(8)
    assert kernel_threads(threads=2) == 2
