"""The HiFi-GAN component: loading and refusing checkpoints, the mel spec from metadata, custom sizes at
RTVC's 16 kHz hop-200 mel, streaming against whole-utterance vocoding, threads, and the CLI without weights."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import soundfile
import torch
from vcframe_hifigan import model
from vcframe_hifigan.generator import Generator, receptive_field_frames
from vcframe_hifigan.inference import PackedGenerator
from vcframe_hifigan.model import HiFiGANVocoder, save_generator
from vcframe_hifigan.spec import PRESETS, SPEC, GeneratorConfig, HiFiGANConfig, resolve_io

from vcframe.compat import check
from vcframe.errors import CheckpointError, ConfigError
from vcframe.interfaces import stream_chunks
from vcframe.specs import HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL
from vcframe.testing.checks import probe_mel
from vcframe.testing.dummy_specs import TONE_ENCODER
from vcframe.types import Mel

#: A V3-like generator for RTVC's hop 200 (8 x 5 x 5; kernel - rate even), small enough for tests.
RTVC_HOP_SIZES = {
    "preset": "v3",
    "upsample_rates": (8, 5, 5),
    "upsample_kernel_sizes": (16, 11, 11),
    "upsample_initial_channel": 32,
}


def _one_line(error: pytest.ExceptionInfo[Exception]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_original_configs_parse_like_the_original_code() -> None:
    v1 = PRESETS["v1"].to_original()
    assert GeneratorConfig.from_original({**v1, "n_fft": 1024, "segment_size": 8192}) == PRESETS["v1"]
    # exactly the string "1" selects ResBlock1; anything else, the integer 1 included, ResBlock2 (SPEC 10.5)
    assert GeneratorConfig.from_original({**v1, "resblock": 1}).resblock == "2"
    with pytest.raises(ValueError, match=r"missing \['upsample_rates'\]"):
        GeneratorConfig.from_original({k: v for k, v in v1.items() if k != "upsample_rates"})


def test_generator_sizes_are_checked_with_both_values() -> None:
    with pytest.raises(ValueError, match="upsample kernel 15 with rate 4: kernel - rate must be even"):
        GeneratorConfig(**{**PRESETS["v3"].model_dump(), "upsample_kernel_sizes": (16, 16, 15)})
    with pytest.raises(ValueError, match="upsample_rates has 3 stages but upsample_kernel_sizes has 2"):
        GeneratorConfig(**{**PRESETS["v3"].model_dump(), "upsample_kernel_sizes": (16, 16)})
    with pytest.raises(ValueError, match="resblock kernel 4 must be odd"):
        GeneratorConfig(**{**PRESETS["v3"].model_dump(), "resblock_kernel_sizes": (3, 4, 7)})
    vocoder_config = HiFiGANConfig(checkpoint=None, preset="v3", mel=RTVC_SYNTHESIZER_MEL)
    with pytest.raises(
        ConfigError, match=r"upsamples by 256 \(upsample_rates \[8, 8, 4\]\) but the mel's hop length is 200"
    ):
        HiFiGANVocoder(vocoder_config)


def test_parameter_counts_are_the_originals() -> None:
    """SPEC 4.4: with weight norm 13,936,130 / 928,514 / 1,464,322; folded 13,926,017 / 925,985 / 1,462,273."""
    expected = {"v1": (13_936_130, 13_926_017), "v2": (928_514, 925_985), "v3": (1_464_322, 1_462_273)}
    for name, (with_norm, folded) in expected.items():
        with torch.device("meta"):
            normed, plain = Generator(PRESETS[name]), Generator(PRESETS[name], weight_norm=False)
        assert sum(p.numel() for p in normed.parameters()) == with_norm, name
        assert sum(p.numel() for p in plain.parameters()) == folded, name


def test_receptive_field_bounds_the_frames_an_output_sample_depends_on() -> None:
    """Changing one mel frame changes output samples within receptive_field_frames frames of it, no further."""
    torch.manual_seed(0)
    config = GeneratorConfig(**{**PRESETS["v3"].model_dump(), "upsample_initial_channel": 16})
    network = Generator(config, weight_norm=False).eval()
    radius = receptive_field_frames(config)
    mel = torch.randn(1, 80, 4 * radius)
    changed = mel.clone()
    frame = 2 * radius
    changed[:, :, frame] += 1.0
    with torch.inference_mode():
        difference = (network(changed) - network(mel)).abs()[0, 0].reshape(-1, network.hop_length).amax(dim=1)
    touched = torch.nonzero(difference > 0).flatten()
    assert int(touched.min()) >= frame - radius and int(touched.max()) <= frame + radius
    assert int(touched.max()) - frame >= radius - 3  # the bound is nearly tight


def test_another_configs_checkpoint_is_refused_naming_the_config_it_fits(hifigan_fixtures, tmp_path) -> None:
    checkpoint = tmp_path / "g_00000001"
    shutil.copyfile(hifigan_fixtures / "generator_v3.pt", checkpoint)
    with pytest.raises(CheckpointError) as refused:
        HiFiGANVocoder(HiFiGANConfig(checkpoint=str(checkpoint), preset="v2"))
    message = _one_line(refused)
    assert "holds V3, but the config builds V2" in message


def test_a_custom_checkpoint_without_config_json_names_its_sizes(tmp_path) -> None:
    network = Generator(HiFiGANConfig(**RTVC_HOP_SIZES).generator_config(), weight_norm=True)
    torch.save({"generator": network.state_dict()}, tmp_path / "g_00000100")
    with pytest.raises(CheckpointError) as refused:
        HiFiGANVocoder(HiFiGANConfig(checkpoint=str(tmp_path / "g_00000100")))
    message = _one_line(refused)
    assert "no config.json beside it" in message
    assert "upsample_initial_channel 32, upsample_kernel_sizes [16, 11, 11], resblock '2'" in message
    wider = HiFiGANConfig(**{**RTVC_HOP_SIZES, "upsample_initial_channel": 64}, mel=RTVC_SYNTHESIZER_MEL)
    with pytest.raises(CheckpointError, match="holds a generator with num_mels 80, upsample_initial_channel 32"):
        HiFiGANVocoder(wider.model_copy(update={"checkpoint": str(tmp_path / "g_00000100")}))


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickled_checkpoint_carrying_code_is_refused(hifigan_fixtures, tmp_path) -> None:
    state = torch.load(hifigan_fixtures / "generator_v3.pt", weights_only=True)["generator"]
    torch.save({"generator": state, "payload": _RunsCode()}, tmp_path / "g_00000001")
    with pytest.raises(CheckpointError) as refused:
        HiFiGANVocoder(HiFiGANConfig(checkpoint=str(tmp_path / "g_00000001")))
    assert "would run code when loaded; refusing it" in _one_line(refused)


def test_config_json_is_read_beside_the_checkpoint_or_where_given(hifigan_fixtures, tmp_path) -> None:
    checkpoint = tmp_path / "g_00000001"
    shutil.copyfile(hifigan_fixtures / "generator_v3.pt", checkpoint)
    elsewhere = tmp_path / "configs" / "config_v3.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text(json.dumps({**PRESETS["v3"].to_original(), "sampling_rate": 22050, "n_fft": 1024,
                                     "win_size": 1024, "hop_size": 256, "fmin": 0, "fmax": 8000}))  # fmt: skip
    config = HiFiGANConfig(checkpoint=str(checkpoint), config_json=str(elsewhere))
    assert resolve_io(config)[0] == HIFIGAN_MEL
    assert HiFiGANVocoder(config).network.config == PRESETS["v3"]
    with pytest.raises(CheckpointError, match="cannot read the HiFi-GAN config"):
        HiFiGANVocoder(HiFiGANConfig(checkpoint=str(checkpoint), config_json=str(tmp_path / "missing.json")))


@pytest.mark.parametrize("fold", [True, False])
def test_safetensors_round_trip_carries_sizes_mel_and_provenance(tmp_path, fold) -> None:
    """Custom sizes at RTVC's 16 kHz hop-200 mel: the vocoder reads that mel from the file's metadata."""
    torch.manual_seed(1)
    network = Generator(HiFiGANConfig(**RTVC_HOP_SIZES).generator_config())
    path = tmp_path / "hifigan-demo.safetensors"
    save_generator(network, RTVC_SYNTHESIZER_MEL, path, fold=fold, training_data="tones", steps=3, license="MIT")
    config = HiFiGANConfig(checkpoint=str(path), precision="float32")
    assert resolve_io(config) == (RTVC_SYNTHESIZER_MEL, SPEC.output.model_copy(update={"sample_rate": 16000}))
    vocoder = HiFiGANVocoder(config)
    assert vocoder.checkpoint_metadata["steps"] == 3 and vocoder.checkpoint_metadata["training_data"] == "tones"
    assert vocoder.network.config.upsample_rates == (8, 5, 5) and vocoder.network.hop_length == 200
    mel = probe_mel(RTVC_SYNTHESIZER_MEL, (20,))
    waveform = vocoder.vocode(mel)
    assert waveform.sample_rate == 16000 and int(waveform.lengths[0]) == 20 * 200
    with torch.inference_mode():
        expected = network(mel.frames)[0]
    torch.testing.assert_close(waveform.samples, expected, rtol=0, atol=1e-5)


def test_streaming_equals_whole_utterance_with_real_sizes(hifigan_fixtures) -> None:
    """V3 weights of the fixtures, 86 frames in chunks of 10: seams within 1e-5 of the whole-utterance output."""
    vocoder = HiFiGANVocoder(
        HiFiGANConfig(
            checkpoint=str(hifigan_fixtures / "generator_v3.pt"),
            precision="float32",
            stream_first_chunk_frames=10,
            stream_chunk_frames=10,
        )
    )
    from safetensors.torch import load_file

    mel = Mel(load_file(str(hifigan_fixtures / "generator_ref.safetensors"))["mel"], HIFIGAN_MEL)
    whole = vocoder.vocode(mel).samples[0]
    chunks = list(vocoder.vocode_stream(mel))
    assert len(chunks) == 9 and all(chunk.batch_size == 1 for chunk in chunks)
    streamed = torch.cat([chunk.samples[0] for chunk in chunks])
    assert streamed.shape == whole.shape
    assert float((streamed - whole).abs().max()) <= SPEC.streaming_tolerance
    # too little context leaves seams far above the tolerance: the context is what makes the chunks fit
    starved = HiFiGANVocoder(vocoder.config.model_copy(update={"stream_context_frames": 1}))
    seams = torch.cat([chunk.samples[0] for chunk in starved.vocode_stream(mel)])
    assert float((seams - whole).abs().max()) > 100 * SPEC.streaming_tolerance


def test_bfloat16_precision_is_close_to_float32_but_not_equal(hifigan_fixtures) -> None:
    """Measured on the V3 fixture weights: max 1.1e-2, mean 1.8e-3 (float32 is exact to 2e-5)."""
    from safetensors.torch import load_file

    mel = Mel(load_file(str(hifigan_fixtures / "generator_ref.safetensors"))["mel"], HIFIGAN_MEL)
    checkpoint = str(hifigan_fixtures / "generator_v3.pt")
    exact = HiFiGANVocoder(HiFiGANConfig(checkpoint=checkpoint, precision="float32")).vocode(mel).samples
    fast = HiFiGANVocoder(HiFiGANConfig(checkpoint=checkpoint, precision="bfloat16")).vocode(mel).samples
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    difference = (fast - exact).abs()
    assert 1e-4 < float(difference.max()) < 0.05 and float(difference.mean()) < 5e-3


def test_vocoding_uses_the_configured_threads_and_restores_them(monkeypatch) -> None:
    seen: list[int] = []
    packed_call = PackedGenerator.__call__

    def spy(self: PackedGenerator, mel: torch.Tensor, speaker_embedding: torch.Tensor | None = None) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return packed_call(self, mel, speaker_embedding)

    monkeypatch.setattr(PackedGenerator, "__call__", spy)
    before = torch.get_num_threads()
    packed = HiFiGANVocoder(SPEC.make_config({**SPEC.test_config, "threads": 2}))
    assert packed.packed is not None
    packed.vocode(probe_mel(HIFIGAN_MEL, (4,)))
    monkeypatch.setattr(model, "packed_available", lambda: False)
    plain = HiFiGANVocoder(SPEC.make_config({**SPEC.test_config, "threads": 2}))
    assert plain.packed is None
    plain.network.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    plain.vocode(probe_mel(HIFIGAN_MEL, (4,)))
    assert seen == [2, 2] and torch.get_num_threads() == before


def test_streaming_starts_small_and_grows_to_the_largest_chunk(hifigan_fixtures) -> None:
    """2 frames first, then 4, 8, 16, 16, ...: the first chunk needs little compute, and the chunks still
    concatenate to the whole utterance within the tolerance (float32) and equal it closely in bfloat16."""
    assert stream_chunks(40, 4, 16) == [(0, 4), (4, 12), (12, 28), (28, 40)]
    assert stream_chunks(3, 4, 16) == [(0, 3)] and stream_chunks(9, 8, 2) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]
    with pytest.raises(ValueError, match="first=0 and largest=16"):
        stream_chunks(40, 0, 16)
    from safetensors.torch import load_file

    mel = Mel(load_file(str(hifigan_fixtures / "generator_ref.safetensors"))["mel"], HIFIGAN_MEL)
    for precision, tolerance in (("float32", SPEC.streaming_tolerance), ("bfloat16", 1e-2)):
        vocoder = HiFiGANVocoder(
            HiFiGANConfig(
                checkpoint=str(hifigan_fixtures / "generator_v3.pt"),
                precision=precision,
                stream_first_chunk_frames=2,
                stream_chunk_frames=16,
            )
        )
        whole = vocoder.vocode(mel).samples[0]
        chunks = [chunk.samples[0] for chunk in vocoder.vocode_stream(mel)]
        assert [len(chunk) // 256 for chunk in chunks] == [2, 4, 8, 16, 16, 16, 16, 8]  # 86 frames
        assert float((torch.cat(chunks) - whole).abs().max()) <= tolerance


def test_fast_paths_fall_back_on_a_cpu_without_bfloat16_or_onednn(hifigan_fixtures, monkeypatch) -> None:
    """An AVX2-only CPU: 'auto' computes in float32, and without oneDNN the plain generator runs; both give the
    original's output within the fixtures' tolerance. With native bfloat16, 'auto' picks bfloat16."""
    from safetensors.torch import load_file

    reference = load_file(str(hifigan_fixtures / "generator_ref.safetensors"))
    mel = Mel(reference["mel"], HIFIGAN_MEL)
    config = HiFiGANConfig(checkpoint=str(hifigan_fixtures / "generator_v3.pt"))
    monkeypatch.setattr(model, "cpu_has_bf16", lambda: True)
    assert HiFiGANVocoder(config).dtype == torch.bfloat16
    monkeypatch.setattr(model, "cpu_has_bf16", lambda: False)
    packed = HiFiGANVocoder(config)
    assert packed.dtype == torch.float32 and packed.packed is not None
    monkeypatch.setattr(model, "packed_available", lambda: False)
    plain = HiFiGANVocoder(config)
    assert plain.dtype == torch.float32 and plain.packed is None
    for vocoder in (packed, plain):
        torch.testing.assert_close(vocoder.vocode(mel).samples, reference["gen_v3.audio"][0], rtol=0, atol=2e-5)


def test_hifigan_and_the_rtvc_tacotron_are_refused_with_both_values_named() -> None:
    from vcframe_tacotron.spec import SPEC as TACOTRON

    report = check(
        (TONE_ENCODER, None), (TACOTRON, TACOTRON.make_config()), (SPEC, SPEC.make_config({"checkpoint": None}))
    )
    fields = {m.field: (m.producer_value, m.consumer_value) for m in report.mel_mismatches()}
    assert fields["sample_rate"] == (16000, 22050) and fields["hop_length"] == (200, 256)
    assert fields["amplitude_scale"] == ("db", "ln") and fields["pad_length"] == (0, 384)
    assert "sample_rate: tacotron gives 16000, hifigan expects 22050" in report.summary()


def test_a_hifigan_at_rtvcs_mel_fits_the_rtvc_tacotron(tmp_path) -> None:
    path = tmp_path / "rtvc-hop.safetensors"
    save_generator(Generator(HiFiGANConfig(**RTVC_HOP_SIZES).generator_config()), RTVC_SYNTHESIZER_MEL, path)
    from vcframe_tacotron.spec import SPEC as TACOTRON

    report = check(
        (TONE_ENCODER, None), (TACOTRON, TACOTRON.make_config()), (SPEC, SPEC.make_config({"checkpoint": str(path)}))
    )
    assert report.mel_mismatches() == []


def test_run_with_the_shipped_weights_says_their_status_and_correction(vcframe_cli, speech_like_wav, tmp_path) -> None:
    from vcframe.checkpoints import find_entry

    shipped = find_entry("vocoder/hifigan", "default")
    assert shipped is not None
    out = tmp_path / "out.wav"
    result = vcframe_cli(
        "run", "--vocoder", "hifigan", "--reference", speech_like_wav(), "--text", "Hello.", "--out", out, "--metadata"
    )
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert f"hifigan [{shipped.status_line()}]" in result.stdout + result.stderr
    assert json.loads((tmp_path / "out.wav.json").read_text()).get("mel_correction", {}).get("strength") == (
        shipped.mel_correction
    )
    assert soundfile.info(str(out)).samplerate == RTVC_SYNTHESIZER_MEL.sample_rate


def test_run_without_weights_says_how_to_give_a_checkpoint(vcframe_cli, speech_like_wav, tmp_path, monkeypatch) -> None:
    from vcframe import checkpoints

    shipped = checkpoints.registry_entries()
    monkeypatch.setattr(
        checkpoints, "registry_entries", lambda: tuple(e for e in shipped if e.component != "vocoder/hifigan")
    )
    out = tmp_path / "out.wav"
    result = vcframe_cli(
        "run", "--vocoder", "hifigan", "--reference", speech_like_wav(), "--text", "Hello.", "--out", out
    )
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and "-o vocoder.hifigan.checkpoint=PATH" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout and not out.exists()


def test_vocoder_on_a_missing_file_fails_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as refused:
        HiFiGANVocoder(HiFiGANConfig(checkpoint=str(tmp_path / "g_missing")))
    assert "not found" in _one_line(refused)


def test_a_checkpoint_loads_into_an_uninitialised_generator_with_the_same_waveform(tmp_path) -> None:
    """No random initialisation for weights about to load (cold start, issue 26): no random numbers drawn, the
    same state, and the same waveform as the randomly initialised generator the weights came from."""
    torch.manual_seed(2)
    network = Generator(HiFiGANConfig(**RTVC_HOP_SIZES).generator_config(), weight_norm=False)
    path = tmp_path / "hifigan.safetensors"
    save_generator(network, RTVC_SYNTHESIZER_MEL, path, training_data="tones", steps=1, license="MIT")
    random_state = torch.get_rng_state()
    vocoder = HiFiGANVocoder(HiFiGANConfig(checkpoint=str(path), precision="float32"))
    assert torch.equal(torch.get_rng_state(), random_state)
    for key, value in network.state_dict().items():
        assert torch.equal(vocoder.network.state_dict()[key], value), key
    mel = probe_mel(RTVC_SYNTHESIZER_MEL, (12, 20))
    waveform = vocoder.vocode(mel)
    for index, frames in enumerate(mel.lengths.tolist()):
        with torch.inference_mode():
            expected = network(mel.frames[index : index + 1, :, :frames])[0, 0]
        torch.testing.assert_close(waveform.samples[index, : frames * 200], expected, rtol=0, atol=1e-5)
