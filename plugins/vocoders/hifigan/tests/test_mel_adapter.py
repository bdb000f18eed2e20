"""A 16 kHz synthesizer and a HiFi-GAN at HiFi-GAN's 22,050 Hz mel: refused without --adapt, bridged with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from vcframe_hifigan.generator import Generator, to_original_layout
from vcframe_hifigan.spec import SPEC, HiFiGANConfig

from vcframe._adapters import adapted_frame_count
from vcframe.config import Settings
from vcframe.pipeline import Pipeline
from vcframe.specs import HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL

TEXT = "Hello there."
FRAMES_PER_CHAR = 4
#: Tiny sizes (V3 layout, 16 channels, upsampling 8 x 8 x 4 = HiFi-GAN's hop 256) for a random-weight generator.
TINY_SIZES = {"preset": "v3", "upsample_initial_channel": 16}


@pytest.fixture
def registry(dummy_registry):
    dummy_registry.register(SPEC)
    return dummy_registry


@pytest.fixture
def original_checkpoint(tmp_path) -> Path:
    """A generator file as the original code writes it (``g_XXXXXXXX``: weight-normalised keys) with its
    ``config.json`` at HiFi-GAN's 22,050 Hz mel, like the released UNIVERSAL_V1 / LJ_V1, tiny and random."""
    torch.manual_seed(0)
    sizes = HiFiGANConfig(**TINY_SIZES).generator_config()
    folder = tmp_path / "tiny_v3"
    folder.mkdir()
    torch.save({"generator": to_original_layout(Generator(sizes).state_dict())}, folder / "g_00000001")
    mel = {"sampling_rate": 22050, "n_fft": 1024, "win_size": 1024, "hop_size": 256, "fmin": 0, "fmax": 8000}
    (folder / "config.json").write_text(json.dumps({**sizes.to_original(), **mel}))
    return folder / "g_00000001"


def run_flags(checkpoint: Path) -> list[str]:
    """``vcframe run`` flags: the dummy encoder, the dummy synthesizer writing RTVC's 16 kHz hop-200 mel, and
    HiFi-GAN reading ``checkpoint`` in float32."""
    mel_table = ", ".join(f"{key} = {json.dumps(value)}" for key, value in RTVC_SYNTHESIZER_MEL.model_dump().items())
    options = [
        f"vocoder.hifigan.checkpoint={checkpoint}",
        "vocoder.hifigan.precision=float32",
        f"synthesizer.test-constant.mel={{{mel_table}}}",  # a TOML inline table
        f"synthesizer.test-constant.frames_per_char={FRAMES_PER_CHAR}",
    ]
    return ["--encoder", "test-tone", "--synthesizer", "test-constant", "--vocoder", "hifigan"] + [
        flag for option in options for flag in ("-o", option)
    ]


def test_cli_adapts_a_16_khz_synthesizer_to_a_22_khz_hifigan(
    registry, vcframe_cli, speech_like_wav, original_checkpoint, tmp_path
) -> None:
    out = tmp_path / "adapted.wav"
    reference = speech_like_wav()
    result = vcframe_cli("run", *run_flags(original_checkpoint), "--adapt", "-r", reference, "-t", TEXT, "--out", out)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    info = soundfile.info(str(out))
    source_frames = FRAMES_PER_CHAR * len(TEXT)  # 48 frames of 200 samples at 16 kHz: 0.600 s
    target_frames = adapted_frame_count(source_frames, RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL)  # 52 frames of 256
    assert info.samplerate == 22050 and target_frames == 52
    assert info.frames == target_frames * 256
    assert abs(info.frames / 22050 - source_frames * 200 / 16000) <= 0.5 * 256 / 22050


def test_cli_without_adapt_refuses_naming_both_specs(
    registry, vcframe_cli, speech_like_wav, original_checkpoint, tmp_path
) -> None:
    out = tmp_path / "refused.wav"
    result = vcframe_cli("run", *run_flags(original_checkpoint), "-r", speech_like_wav(), "-t", TEXT, "--out", out)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stdout + result.stderr, result.stderr
    for needle in (
        "sample_rate: test-constant gives 16000, hifigan expects 22050",
        "hop_length: test-constant gives 200, hifigan expects 256",
        "--adapt",
    ):
        assert needle in lines[0], lines[0]
    assert not out.exists()


def test_pipeline_adapts_each_sentence_and_records_it(registry, speech_like_wav) -> None:
    vocoder = {"checkpoint": None, "precision": "float32", **TINY_SIZES}  # random weights at HIFIGAN_MEL
    options = {"vocoder": vocoder, "synthesizer": {"mel": RTVC_SYNTHESIZER_MEL}}
    pipeline = Pipeline(
        "test-tone", "test-constant", "hifigan", settings=Settings(), device="cpu", options=options, adapt=True
    )
    assert pipeline.bridged == [
        "mel adapter mel-remap(16000 Hz / hop 200 / 80 bands 55-7600 Hz -> 22050 Hz / hop 256 / 80 bands 0-8000 Hz)"
    ]
    waveform = pipeline.clone("One sentence. And a second one.", speech_like_wav(), seed=1)
    assert waveform.sample_rate == 22050 and waveform.metadata["bridged"] == pipeline.bridged
    assert [mel.spec for mel in pipeline.last_mels] == [HIFIGAN_MEL, HIFIGAN_MEL]
    frames = [adapted_frame_count(FRAMES_PER_CHAR * len(text), RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL) for text in
              ("One sentence.", "And a second one.")]  # fmt: skip
    assert [int(mel.lengths[0]) for mel in pipeline.last_mels] == frames
    pause = round(pipeline.settings.sentence_pause_s * 22050)
    assert waveform.lengths.item() == sum(frames) * 256 + pause
    samples = waveform.samples[0].numpy()
    assert np.isfinite(samples).all() and float(torch.from_numpy(samples).abs().max()) > 0
