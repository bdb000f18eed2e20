"""The HiFi-GAN trainer: exact resume, logs and temporaries on resume, data changes (GTA fine-tuning), bfloat16
against float32, export (vcframe safetensors and the original's files), bad input."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner
from vcframe_hifigan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from vcframe_hifigan.generator import Generator
from vcframe_hifigan.melspec import MelFrontEnd, loss_mel_spec
from vcframe_hifigan.spec import PRESETS
from vcframe_hifigan.train import GANStep, app, resolve_precision

from vcframe.cpu import cpu_has_bf16
from vcframe.errors import VcframeError
from vcframe.specs import RTVC_SYNTHESIZER_MEL
from vcframe.testing import write_tone_corpus
from vcframe.testing.distributed import compare_states, load_checkpoint

#: A generator of V3's layout for the 16 kHz hop-200 mel, 16 channels (tests only).
TINY = ["-o", "upsample_rates=[8,5,5]", "-o", "upsample_kernel_sizes=[16,11,11]", "-o", "upsample_initial_channel=16"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 clips of 2 speakers (0.4-0.7 s, 16 kHz)."""
    return write_tone_corpus(tmp_path_factory.mktemp("corpus") / "tones", ["a", "b", "c", "d"])


def fit_arguments(data: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--data",
        str(data),
        "--run-dir",
        str(run_dir),
        *TINY,
        "--disc-width",
        "0.125",
        "--batch-size",
        "2",  # 7 clips: 3 batches an epoch
        "--segment-frames",
        "8",
        "--adversarial-start",
        "1",
        "--checkpoint-every",
        "2",
        "--log-every",
        "1",
        "--sample-every",
        "0",
        "--precision",
        "fp32",
        "--threads",
        "1",
        *extra,
    ]


def run(arguments: list[str]) -> str:
    result = CliRunner().invoke(app, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


STATES = ("generator", "mpd", "msd")


def test_resume_is_exact(corpus, tmp_path):
    """4 steps straight == 2 steps, then a resumed run to 4: crossing an epoch (3 batches) and the adversarial
    start, with a killed run's leftovers (a log record past the checkpoint, a half-written checkpoint) removed."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    shared = tmp_path / "mels"
    output = run(fit_arguments(corpus, straight, "--max-steps", "4", "--mel-cache", str(shared)))
    assert f"mel cache {shared}: 0 read, 7 computed" in output and len(list(shared.glob("*.npy"))) == 7
    run(fit_arguments(corpus, resumed, "--max-steps", "2"))
    with open(resumed / "log.jsonl", "a") as log:  # a run killed after logging step 3, before checkpointing it
        log.write(json.dumps({"step": 3, "gen": 0.0}) + "\n" + '{"step": 4, "ge')
    (resumed / ".checkpoint.pt.k1ll3d_x.pt").write_bytes(b"half-written")
    output = run(fit_arguments(corpus, resumed, "--max-steps", "4", "--resume"))
    assert "resumed at step 2 (epoch 0, batch 2)" in output and "log.jsonl: 2 rows after step 2 removed" in output
    assert f"mel cache {resumed / 'mel_cache'}: 7 read, 0 computed" in output  # the first start's mels
    assert "removed 1 stale checkpoint temporary" in output and not list(resumed.glob(".checkpoint.pt.*"))
    first, second = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    assert first["step"] == second["step"] == 4 and first["epoch"] == second["epoch"] == 1
    for key in STATES:
        assert compare_states(first[key], second[key]) == 0.0, key  # spectral-norm u, v included
    for key in ("optim_g", "optim_d"):
        pairs = zip(first[key]["state"].values(), second[key]["state"].values(), strict=True)
        assert max(compare_states(one, other) for one, other in pairs) == 0.0, key  # AdamW's moments
    assert first["sched_g"] == second["sched_g"] and first["sched_g"]["last_epoch"] == 1  # stepped once per epoch
    assert torch.equal(first["rng"]["torch"], second["rng"]["torch"])
    assert records(straight / "log.jsonl") == [
        {**record, "seconds": record_straight["seconds"]}
        for record, record_straight in zip(records(resumed / "log.jsonl"), records(straight / "log.jsonl"), strict=True)
    ]
    logged = records(straight / "log.jsonl")
    assert "disc" not in logged[0] and "disc" in logged[1]  # step 1 is the generator-only warm-up
    assert [r["lr"] for r in logged] == [2e-4, 2e-4, 2e-4, pytest.approx(2e-4 * 0.999)]  # decayed per epoch


def test_changed_data_on_resume_starts_a_new_epoch_over_gta_mels(corpus, tmp_path):
    """Fine-tuning on GTA mels: the same run resumed with a manifest of (audio, mel) pairs."""
    from vcframe.audio import mel_spectrogram
    from vcframe.datasets import find_clips, load_training_audio

    run_dir = tmp_path / "run"
    run(fit_arguments(corpus, run_dir, "--max-steps", "2"))
    lines = []
    for clip in find_clips(corpus):
        mel = mel_spectrogram(load_training_audio(clip, 16000), RTVC_SYNTHESIZER_MEL) * 0.9  # stands in for GTA
        np.save(tmp_path / f"{clip.speaker}_{clip.audio.stem}.npy", mel.T)  # (T, 80), as RTVC exports them
        lines.append(f"{clip.audio}|{clip.speaker}_{clip.audio.stem}.npy|{clip.speaker}")
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    output = run(fit_arguments(tmp_path / "pairs.txt", run_dir, "--max-steps", "3", "--resume"))
    assert "training data: 7 clips of 2 speakers" in output and "(7 given mels, 0 ground truth)" in output
    assert "the training data changed at step 2: epoch 1 starts over the new clips" in output
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    assert (checkpoint["step"], checkpoint["epoch"], checkpoint["batch_in_epoch"]) == (3, 1, 1)
    assert [change["step"] for change in checkpoint["data_changes"]] == [2]


def tiny_step(precision: str) -> tuple[GANStep, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    sizes = PRESETS["v3"].model_copy(
        update={"upsample_rates": (8, 5, 5), "upsample_kernel_sizes": (16, 11, 11), "upsample_initial_channel": 32}
    )
    generator = Generator(sizes)
    mpd, msd = MultiPeriodDiscriminator(width=0.25), MultiScaleDiscriminator(width=0.25)
    optim_g = torch.optim.AdamW(generator.parameters(), 2e-4, betas=(0.8, 0.99))
    optim_d = torch.optim.AdamW([*msd.parameters(), *mpd.parameters()], 2e-4, betas=(0.8, 0.99))
    front_end = MelFrontEnd(loss_mel_spec(RTVC_SYNTHESIZER_MEL))
    step = GANStep(generator, mpd, msd, optim_g, optim_d, front_end, precision, bf16_generator=True)
    rng = np.random.default_rng(1)
    audio = torch.from_numpy((0.3 * rng.standard_normal((2, 1, 16 * 200))).astype(np.float32))
    mels = torch.from_numpy(rng.standard_normal((2, 80, 16)).astype(np.float32))
    return step, mels, audio


#: Largest relative difference between a bfloat16 step's losses and the float32 step's on the same weights and
#: batch, generator under autocast too (measured on an Intel Xeon with AMX: 7.6e-4, on fm_f; 2.4e-4 with the
#: generator in float32): about 6x that, for CPUs that compute bfloat16 another way.
BF16_LOSS_RTOL = 5e-3


def test_bf16_losses_equal_fp32_within_tolerance():
    reference, mels, audio = tiny_step("fp32")
    expected = reference(mels, audio)
    step, _, _ = tiny_step("bf16")
    losses = step(mels, audio)
    assert sorted(losses) == sorted(expected)
    for name, value in expected.items():
        assert float(losses[name]) == pytest.approx(float(value), rel=BF16_LOSS_RTOL), name
    for parameter in (*step.generator.parameters(), *step.mpd.parameters()):
        assert parameter.dtype == torch.float32  # autocast: float32 weights and gradients
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if cpu_has_bf16() else "fp32")


def numpy_stft_magnitude(signal: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    """|STFT| written out: reflect-padded by n_fft // 2, periodic Hann of ``win`` centred in ``n_fft``."""
    padded = np.pad(signal, n_fft // 2, mode="reflect")
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left : left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    frames = [padded[start : start + n_fft] * window for start in range(0, len(padded) - n_fft + 1, hop)]
    return np.sqrt(np.maximum(np.abs(np.fft.rfft(np.array(frames), axis=1)) ** 2, 1e-7)).T


def test_stft_loss_matches_its_definition_and_weighs_loud_cells():
    from vcframe_hifigan.losses import stft_loss

    rng = np.random.default_rng(3)
    time = np.arange(3200) / 16000
    loud = 0.5 * np.sin(2 * np.pi * 220 * time)
    quiet = 0.005 * rng.standard_normal(3200)
    target = (loud + quiet).astype(np.float32)
    softer_loud = (0.5 * loud + quiet).astype(np.float32)  # the loud part 6 dB down
    softer_quiet = (loud + 0.5 * quiet).astype(np.float32)  # the quiet part 6 dB down
    resolution = (512, 50, 240)
    real = numpy_stft_magnitude(target.astype(np.float64), *resolution)
    fake = numpy_stft_magnitude(softer_loud.astype(np.float64), *resolution)
    convergence, log_magnitude = stft_loss(
        torch.from_numpy(target)[None, None], torch.from_numpy(softer_loud)[None, None], [resolution]
    )
    assert float(convergence) == pytest.approx(np.linalg.norm(real - fake) / np.linalg.norm(real), rel=1e-4)
    assert float(log_magnitude) == pytest.approx(np.mean(np.abs(np.log(real) - np.log(fake))), rel=1e-4)
    same = stft_loss(torch.from_numpy(target)[None], torch.from_numpy(target)[None])
    assert float(same[0]) == 0.0 and float(same[1]) == 0.0
    loud_down = stft_loss(torch.from_numpy(target)[None], torch.from_numpy(softer_loud)[None])
    quiet_down = stft_loss(torch.from_numpy(target)[None], torch.from_numpy(softer_quiet)[None])
    assert float(loud_down[0]) > 0.4 and float(quiet_down[0]) < 0.05  # spectral convergence: the loud cells
    with pytest.raises(ValueError, match=r"shape \(1, 3200\) but the generated one \(1, 3000\)"):
        stft_loss(torch.from_numpy(target)[None], torch.from_numpy(target[:3000])[None])


def test_stft_weight_adds_the_stft_loss_to_the_generator_objective():
    step, mels, audio = tiny_step("fp32")
    step.stft_weight = 2.5
    losses = step(mels, audio)
    original = sum(float(losses[name]) for name in ("gen_s", "gen_f", "fm_s", "fm_f", "mel"))
    added = 2.5 * (float(losses["stft_sc"]) + float(losses["stft_mag"]))
    assert added > 0 and float(losses["gen"]) == pytest.approx(original + added, rel=1e-6)
    plain, _, _ = tiny_step("fp32")
    assert "stft_sc" not in plain(mels, audio)  # off by default: the original recipe


def test_stft_weight_change_on_resume_is_recorded(corpus, tmp_path):
    run_dir = tmp_path / "run"
    run(fit_arguments(corpus, run_dir, "--max-steps", "2"))
    output = run(fit_arguments(corpus, run_dir, "--max-steps", "3", "--resume", "--stft-weight", "2.5"))
    assert "the STFT loss weight changed at step 2: 0 -> 2.5" in output
    output = run(fit_arguments(corpus, run_dir, "--max-steps", "4", "--resume", "--stft-weight", "2.5"))
    assert "STFT loss weight changed" not in output  # the same weight again: nothing to record
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    assert checkpoint["loss_changes"] == [
        {
            "step": 2,
            "stft_weight": 2.5,
            "frame_sync_weight": 0.0,
            "unpaired_weight": 0.0,
            "unpaired_frame_sync_weight": 0.0,
            "smoothed_targets": 0.0,
            "speaker_loss_weight": 0.0,
            "periodicity_weight": 0.0,
            "unpaired_speaker_loss_weight": 0.0,
        }
    ]
    assert json.loads((run_dir / "config.json").read_text())["loss_changes"] == checkpoint["loss_changes"]
    logged = records(run_dir / "log.jsonl")
    assert "stft_sc" not in logged[1] and logged[2]["stft_sc"] > 0 and logged[3]["stft_mag"] > 0
    run(["export", "--run-dir", str(run_dir), "--out", str(tmp_path / "g.safetensors")])
    from safetensors import safe_open

    with safe_open(str(tmp_path / "g.safetensors"), "pt") as exported:  # the shipped file says how it was trained
        assert json.loads(exported.metadata()["loss_changes"]) == checkpoint["loss_changes"]
    output = run(fit_arguments(corpus, run_dir, "--max-steps", "5", "--resume", "--frame-sync-weight", "4"))
    assert "the frame-sync loss weight changed at step 4: 0 -> 4" in output and "STFT" in output  # 2.5 -> 0 too
    assert load_checkpoint(run_dir / "checkpoint.pt")["loss_changes"][-1] == {
        "step": 4,
        "stft_weight": 0.0,
        "frame_sync_weight": 4.0,
        "unpaired_weight": 0.0,
        "unpaired_frame_sync_weight": 0.0,
        "smoothed_targets": 0.0,
        "speaker_loss_weight": 0.0,
        "periodicity_weight": 0.0,
        "unpaired_speaker_loss_weight": 0.0,
    }
    assert records(run_dir / "log.jsonl")[4]["frame_sync"] >= 0
    output = run(fit_arguments(corpus, run_dir, "--max-steps", "6", "--resume", "--periodicity-weight", "3"))
    assert "the periodicity loss weight changed at step 5: 0 -> 3" in output
    assert load_checkpoint(run_dir / "checkpoint.pt")["loss_changes"][-1]["periodicity_weight"] == 3.0
    assert records(run_dir / "log.jsonl")[5]["periodicity"] > 0
    short = fit_arguments(corpus, tmp_path / "short", "--max-steps", "1", "--periodicity-weight", "3")
    result = CliRunner().invoke(app, [*short, "--segment-frames", "3"])
    assert result.exit_code != 0 and not (tmp_path / "short" / "checkpoint.pt").exists()
    assert "compares frames of 800 samples, longer than a segment of 3 frames (600 samples)" in str(result.exception)


def test_learning_rates_set_a_new_run_and_a_change_on_resume_keeps_the_decay(corpus, tmp_path):
    """--generator-lr / --discriminator-lr: the base rates of a new run; on --resume a new rate is recorded and
    scales the decayed rate (here past one epoch: 3 batches), the same rate again changes nothing."""
    run_dir = tmp_path / "run"
    run(fit_arguments(corpus, run_dir, "--max-steps", "4", "--generator-lr", "5e-5"))
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    assert checkpoint["lr_changes"] == [{"step": 0, "generator_lr": 5e-5, "discriminator_lr": 2e-4}]
    assert [group["lr"] for group in checkpoint["optim_g"]["param_groups"]] == [pytest.approx(5e-5 * 0.999)]
    assert [group["lr"] for group in checkpoint["optim_d"]["param_groups"]] == [pytest.approx(2e-4 * 0.999)]
    assert [r["lr"] for r in records(run_dir / "log.jsonl")] == [5e-5, 5e-5, 5e-5, pytest.approx(5e-5 * 0.999)]
    output = run(fit_arguments(corpus, run_dir, "--max-steps", "5", "--resume"))  # no flag: the run's own rates
    assert "learning rate changed" not in output
    assert records(run_dir / "log.jsonl")[-1]["lr"] == pytest.approx(5e-5 * 0.999)
    output = run(fit_arguments(corpus, run_dir, "--max-steps", "6", "--resume", "--discriminator-lr", "1e-4"))
    assert "the discriminators' learning rate changed at step 5: 0.0002 -> 0.0001" in output
    assert "generator's learning rate changed" not in output
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    assert checkpoint["lr_changes"][-1] == {"step": 5, "generator_lr": 5e-5, "discriminator_lr": 1e-4}
    assert checkpoint["optim_d"]["param_groups"][0]["lr"] == pytest.approx(1e-4 * 0.999**2)  # 2 epochs done
    assert checkpoint["sched_d"]["base_lrs"] == [1e-4]
    assert json.loads((run_dir / "config.json").read_text())["lr_changes"] == checkpoint["lr_changes"]
    run(["export", "--run-dir", str(run_dir), "--out", str(tmp_path / "g.safetensors")])
    from safetensors import safe_open

    with safe_open(str(tmp_path / "g.safetensors"), "pt") as exported:  # the shipped file says how it was trained
        assert json.loads(exported.metadata()["lr_changes"]) == checkpoint["lr_changes"]


def test_record_learning_rates_reads_runs_older_than_the_option():
    from vcframe_hifigan.train import record_learning_rates

    assert record_learning_rates([], {}, 900) == ([], {"generator_lr": 2e-4, "discriminator_lr": 2e-4}, [])
    changes, rates, notes = record_learning_rates([], {"generator_lr": 1e-4, "discriminator_lr": None}, 900)
    assert changes == [{"step": 900, "generator_lr": 1e-4, "discriminator_lr": 2e-4}] and rates == {
        "generator_lr": 1e-4,
        "discriminator_lr": 2e-4,
    }
    assert notes == ["the generator's learning rate changed at step 900: 0.0002 -> 0.0001"]


def test_record_loss_weights_reads_records_older_than_a_loss():
    from vcframe_hifigan.train import record_loss_weights

    old = [{"step": 800, "stft_weight": 25.0}]  # a checkpoint from before --frame-sync-weight existed
    unchanged = {
        "stft_weight": 25.0,
        "frame_sync_weight": 0.0,
        "unpaired_weight": 0.0,
        "unpaired_frame_sync_weight": 0.0,
        "smoothed_targets": 0.0,
        "speaker_loss_weight": 0.0,
        "periodicity_weight": 0.0,
        "unpaired_speaker_loss_weight": 0.0,
    }
    same, notes = record_loss_weights(old, unchanged, 900)
    assert same == old and notes == []
    # a record from before --unpaired-speaker-loss-weight: the unpaired step had the paired weight
    speaking = [{"step": 800, **unchanged, "speaker_loss_weight": 2.0}]
    del speaking[0]["unpaired_speaker_loss_weight"]
    same, notes = record_loss_weights(
        speaking, {**unchanged, "speaker_loss_weight": 2.0, "unpaired_speaker_loss_weight": 2.0}, 900
    )
    assert same == speaking and notes == []
    changed, notes = record_loss_weights(old, {**unchanged, "frame_sync_weight": 10.0}, 900)
    assert notes == ["the frame-sync loss weight changed at step 900: 0 -> 10"]
    assert changed == [*old, {"step": 900, **unchanged, "frame_sync_weight": 10.0}]


def test_frame_sync_ratio_tells_a_frame_rate_buzz_from_noise_and_speech_like_tones():
    from vcframe_hifigan.losses import frame_sync_loss, frame_sync_ratio

    rng = np.random.default_rng(5)
    hop, frames = 200, 32
    noise = rng.standard_normal((64, frames * hop))
    ratios = frame_sync_ratio(torch.from_numpy(noise), hop).numpy()
    assert abs(float(np.mean(ratios))) < 0.15  # white noise: ratio 1 in expectation
    pattern = np.tile(rng.standard_normal(hop), frames)  # the same samples in every frame
    assert float(frame_sync_ratio(torch.from_numpy(pattern)[None], hop)) == pytest.approx(np.log(frames), rel=1e-3)
    time = np.arange(frames * hop) / 16000
    tone = np.sin(2 * np.pi * 123.0 * time)  # a pitch off the 80 Hz frame-rate grid: not synchronous
    assert float(frame_sync_ratio(torch.from_numpy(tone)[None], hop)) < 0
    buzzing = torch.from_numpy(tone + 0.3 * pattern)[None, None]
    clean = torch.from_numpy(tone)[None, None]
    loss = frame_sync_loss(clean, buzzing, hop)
    assert float(loss) > 1.0 and float(frame_sync_loss(clean, clean, hop)) == 0.0
    assert float(frame_sync_loss(buzzing, clean, hop)) == 0.0  # never pushes below the real segment's
    generated = buzzing.clone().requires_grad_(True)
    frame_sync_loss(clean, generated, hop).backward()
    stepped = (generated - 0.05 * generated.grad).detach()  # one gradient step lowers the buzz
    assert float(frame_sync_loss(clean, stepped, hop)) < float(loss)
    assert float(frame_sync_ratio(torch.zeros(1, 2 * hop), hop)) == 0.0  # silence: finite
    with pytest.raises(ValueError, match="not two or more whole frames of hop_length 200"):
        frame_sync_ratio(torch.zeros(1, 3 * hop + 1), hop)
    with pytest.raises(ValueError, match=r"shape \(1, 1, 6400\) but the generated one \(1, 1, 6000\)"):
        frame_sync_loss(clean, clean[..., :6000], hop)


def test_frame_sync_weight_adds_its_loss_to_the_generator_objective():
    step, mels, audio = tiny_step("fp32")
    step.frame_sync_weight, step.hop_length = 3.0, 200
    losses = step(mels, audio)
    original = sum(float(losses[name]) for name in ("gen_s", "gen_f", "fm_s", "fm_f", "mel"))
    assert float(losses["gen"]) == pytest.approx(original + 3.0 * float(losses["frame_sync"]), rel=1e-6)
    plain, _, _ = tiny_step("fp32")
    assert "frame_sync" not in plain(mels, audio)  # off by default: the original recipe
    with pytest.raises(ValueError, match="needs the hop_length, got 0"):
        dataclasses.replace(plain, frame_sync_weight=1.0)


def test_periodicity_weight_adds_its_loss_and_smoothed_segments_match_the_strength_only():
    """periodicity_weight: the periodicity loss joins the paired objective, logged as ``periodicity``; segments
    with ``sigmas`` > 0 (input smoothed across bands) are charged by the strength of their periodicity only."""
    from vcframe_hifigan.losses import periodicity_loss

    step, mels, audio = tiny_step("fp32")
    step.periodicity_weight, step.hop_length, step.sample_rate = 4.0, 200, 16000
    sigmas = torch.tensor([0.0, 1.5])
    losses = step(mels, audio, sigmas=sigmas)
    original = sum(float(losses[name]) for name in ("gen_s", "gen_f", "fm_s", "fm_f", "mel"))
    assert float(losses["gen"]) == pytest.approx(original + 4.0 * float(losses["periodicity"]), rel=1e-6)
    assert float(losses["periodicity"]) > 0
    plain, _, _ = tiny_step("fp32")
    assert "periodicity" not in plain(mels, audio)  # off by default: the original recipe
    with pytest.raises(ValueError, match="needs the hop_length and the sample_rate, got 200 and 0"):
        dataclasses.replace(plain, periodicity_weight=1.0, hop_length=200)
    # what the sigmas select: the same pair charged as a pitch-known and as a smoothed segment
    time = torch.arange(3200) / 16000
    real = torch.sin(2 * torch.pi * 150 * time)[None, None]
    octave_up = torch.sin(2 * torch.pi * 300 * time)[None, None]  # as periodic, at half the period
    known = float(periodicity_loss(real, octave_up, 16000, 200, torch.tensor([True])))
    smoothed = float(periodicity_loss(real, octave_up, 16000, 200, torch.tensor([False])))
    assert known > 0.3 and smoothed < 0.02, (known, smoothed)


def test_unpaired_step_fits_the_output_to_the_mel_given_and_trains_the_discriminators():
    """GANStep.unpaired: the losses it reports make its objective, it moves the generator and the discriminators,
    and repeated on one batch it brings the output's mel (the input spec's) toward the mel given."""
    plain, _, audio = tiny_step("fp32")
    step = dataclasses.replace(plain, input_front_end=MelFrontEnd(RTVC_SYNTHESIZER_MEL), unpaired_weight=2.0)
    mels = step.input_front_end(audio)[..., :16].detach()  # a mel some audio has: the generator can reach it
    generator_before = [parameter.detach().clone() for parameter in step.generator.parameters()]
    mpd_before = [parameter.detach().clone() for parameter in step.mpd.parameters()]
    losses = step.unpaired(mels, audio)
    assert sorted(losses) == sorted(
        f"unpaired_{name}" for name in ("disc", "disc_f", "disc_s", "mel", "gen_f", "gen_s", "gen")
    )
    objective = 2.0 * sum(float(losses[f"unpaired_{name}"]) for name in ("mel", "gen_f", "gen_s"))
    assert float(losses["unpaired_gen"]) == pytest.approx(objective, rel=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, step.generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(mpd_before, step.mpd.parameters(), strict=True))
    for group in step.optim_g.param_groups:
        group["lr"] = 2e-3
    first = float(losses["unpaired_mel"])
    for _ in range(20):
        last = float(step.unpaired(mels, audio)["unpaired_mel"])
    assert last < 0.8 * first, (first, last)
    with pytest.raises(ValueError, match="needs the input_front_end, got None"):
        dataclasses.replace(plain, unpaired_weight=1.0)
    with pytest.raises(ValueError, match="unpaired steps need"):
        plain.unpaired(mels, audio)


def test_unpaired_frame_sync_weight_adds_the_loss_inside_the_unpaired_objective():
    """unpaired_frame_sync_weight: the frame-sync loss of the output for the unpaired mels against the batch's
    real segments joins the unpaired objective (scaled by unpaired_weight); a buzzing output pays, and the
    weight needs the hop length and unpaired steps."""
    from vcframe_hifigan.losses import frame_sync_loss

    plain, _, audio = tiny_step("fp32")
    step = dataclasses.replace(
        plain, input_front_end=MelFrontEnd(RTVC_SYNTHESIZER_MEL), unpaired_weight=2.0, hop_length=200
    )
    mels = step.input_front_end(audio)[..., :16].detach()
    assert "unpaired_frame_sync" not in step.unpaired(mels, audio)  # off unless asked for
    step = dataclasses.replace(step, unpaired_frame_sync_weight=3.0)
    losses = step.unpaired(mels, audio)
    names = ("mel", "gen_f", "gen_s")
    objective = 2.0 * (sum(float(losses[f"unpaired_{n}"]) for n in names) + 3.0 * float(losses["unpaired_frame_sync"]))
    assert float(losses["unpaired_gen"]) == pytest.approx(objective, rel=1e-6)
    hop = 200
    buzz = torch.sin(2 * torch.pi * torch.arange(audio.shape[-1]) / hop).reshape(1, 1, -1).repeat(audio.shape[0], 1, 1)
    assert float(frame_sync_loss(audio, buzz, hop)) > 1.0  # what the term charges an output locked to the frame rate
    with pytest.raises(ValueError, match="needs the hop_length and an unpaired_weight, got 200 and 0.0"):
        dataclasses.replace(plain, hop_length=200, unpaired_frame_sync_weight=1.0)
    with pytest.raises(ValueError, match="needs the hop_length and an unpaired_weight, got 0 and 2.0"):
        dataclasses.replace(step, hop_length=0)


def write_unpaired_mels(corpus: Path, folder: Path) -> Path:
    """The corpus clips' mels, scaled, as synthesizer mels without audio ((80, T) .npy, as free_mels.py writes)."""
    from vcframe.audio import mel_spectrogram
    from vcframe.datasets import find_clips, load_training_audio

    folder.mkdir()
    for clip in find_clips(corpus):
        mel = mel_spectrogram(load_training_audio(clip, 16000), RTVC_SYNTHESIZER_MEL) * 0.9
        np.save(folder / f"{clip.speaker}_{clip.audio.stem}.npy", mel)
    return folder


def test_unpaired_mels_resume_exactly_and_are_recorded(corpus, tmp_path):
    """--unpaired-mels: a step on them after each GAN step, exact on resume, logged, recorded when it changes."""
    unpaired = ("--unpaired-mels", str(write_unpaired_mels(corpus, tmp_path / "free")), "--unpaired-weight", "1")
    plain, straight, resumed = tmp_path / "plain", tmp_path / "straight", tmp_path / "resumed"
    run(fit_arguments(corpus, plain, "--max-steps", "3"))
    output = run(fit_arguments(corpus, straight, "--max-steps", "3", *unpaired))
    assert "unpaired mels: 7 unpaired mels" in output
    run(fit_arguments(corpus, resumed, "--max-steps", "2", *unpaired))
    output = run(fit_arguments(corpus, resumed, "--max-steps", "3", "--resume", *unpaired))
    assert "unpaired mels changed" not in output and "unpaired-mel loss weight changed" not in output
    first, second = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    for key in (*STATES, "optim_g"):
        if key == "optim_g":
            pairs = zip(first[key]["state"].values(), second[key]["state"].values(), strict=True)
            assert max(compare_states(one, other) for one, other in pairs) == 0.0, key
        else:
            assert compare_states(first[key], second[key]) == 0.0, key
    assert compare_states(first["generator"], load_checkpoint(plain / "checkpoint.pt")["generator"]) > 0
    logged = records(straight / "log.jsonl")
    assert "unpaired_mel" not in logged[0] and logged[1]["unpaired_mel"] > 0  # step 1: the warm-up, no GAN yet
    config = json.loads((straight / "config.json").read_text())
    assert config["unpaired_mels"].startswith("7 unpaired mels") and config["unpaired_weight"] == 1.0
    assert first["loss_changes"] == [
        {
            "step": 0,
            "stft_weight": 0.0,
            "frame_sync_weight": 0.0,
            "unpaired_weight": 1.0,
            "unpaired_frame_sync_weight": 0.0,
            "smoothed_targets": 0.0,
            "speaker_loss_weight": 0.0,
            "periodicity_weight": 0.0,
            "unpaired_speaker_loss_weight": 0.0,
        }
    ]
    output = run(fit_arguments(corpus, resumed, "--max-steps", "4", "--resume"))  # turned off at step 3
    assert "the unpaired mels changed at step 3: none" in output
    assert "the unpaired-mel loss weight changed at step 3: 1 -> 0" in output
    checkpoint = load_checkpoint(resumed / "checkpoint.pt")
    assert checkpoint["data_changes"][-1] == {"step": 3, "unpaired": None}
    assert "unpaired_mel" not in records(resumed / "log.jsonl")[-1]
    np.save(tmp_path / "free" / "wrong.npy", np.zeros((40, 20), np.float32))
    result = CliRunner().invoke(app, fit_arguments(corpus, tmp_path / "bad", "--max-steps", "1", *unpaired))
    assert result.exit_code != 0 and "wrong.npy' has shape (40, 20); the trained mel has 80 bands" in str(
        result.exception
    )


def test_mel_smoothing_changes_the_inputs_resumes_exactly_and_is_recorded(corpus, tmp_path):
    """--mel-smoothing: another run than without it, exact on resume, and its changes are recorded and exported."""
    smooth = ("--mel-smoothing", "2.5", "--mel-smoothing-probability", "1.0")
    plain, straight, resumed = tmp_path / "plain", tmp_path / "straight", tmp_path / "resumed"
    run(fit_arguments(corpus, plain, "--max-steps", "3"))
    run(fit_arguments(corpus, straight, "--max-steps", "3", *smooth))
    run(fit_arguments(corpus, resumed, "--max-steps", "2", *smooth))
    output = run(fit_arguments(corpus, resumed, "--max-steps", "3", "--resume", *smooth))
    assert "mel smoothing changed" not in output  # the same settings again: nothing to record
    first, second = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    for key in STATES:
        assert compare_states(first[key], second[key]) == 0.0, key
    assert compare_states(first["generator"], load_checkpoint(plain / "checkpoint.pt")["generator"]) > 0
    assert second["smoothing_changes"] == [{"step": 0, "mel_smoothing": 2.5, "mel_smoothing_probability": 1.0}]
    output = run(fit_arguments(corpus, resumed, "--max-steps", "4", "--resume"))  # turned off at step 3
    assert "the mel smoothing changed at step 3: 2.5 -> 0 bands (probability 0.5)" in output
    checkpoint = load_checkpoint(resumed / "checkpoint.pt")
    assert checkpoint["smoothing_changes"][-1] == {"step": 3, "mel_smoothing": 0.0, "mel_smoothing_probability": 0.5}
    assert json.loads((resumed / "config.json").read_text())["smoothing_changes"] == checkpoint["smoothing_changes"]
    assert load_checkpoint(plain / "checkpoint.pt")["smoothing_changes"] == []
    run(["export", "--run-dir", str(resumed), "--out", str(tmp_path / "g.safetensors")])
    from safetensors import safe_open

    with safe_open(str(tmp_path / "g.safetensors"), "pt") as exported:
        assert json.loads(exported.metadata()["smoothing_changes"]) == checkpoint["smoothing_changes"]


def test_smoothed_target_mel_loss_binds_the_envelope_and_not_the_fine_structure():
    from vcframe_hifigan.losses import mel_loss, smoothed_target_mel_loss

    from vcframe.datasets import band_smoothing

    rng = np.random.default_rng(5)
    target = torch.from_numpy(rng.standard_normal((3, 80, 6)).astype(np.float32))
    ripple = torch.from_numpy(np.tile(np.where(np.arange(80) % 2 == 0, 0.5, -0.5), (6, 1)).T.astype(np.float32))
    rippled = target + ripple  # the same envelope, other fine structure (alternating bands +-0.5)
    sigmas = torch.tensor([0.0, 2.0, 1.5])
    sharp = mel_loss(target, rippled)
    assert float(sharp) == pytest.approx(45 * 0.5, rel=1e-5)
    assert float(smoothed_target_mel_loss(target, rippled, sigmas, 0.0)) == float(sharp)
    assert float(smoothed_target_mel_loss(target, rippled, torch.zeros(3), 1.0)) == float(sharp)
    full = smoothed_target_mel_loss(target, rippled, sigmas, 1.0)
    # by definition: segment 0 (not smoothed) sharp, segments 1 and 2 on band-smoothed mels
    expected = [0.5] + [float(np.abs(band_smoothing(80, sigma) @ ripple.numpy()).mean()) for sigma in (2.0, 1.5)]
    assert float(full) == pytest.approx(45 * np.mean(expected), rel=1e-5)
    assert float(full) < 0.4 * float(sharp)  # the ripple averages out across bands
    half = smoothed_target_mel_loss(target, rippled, sigmas, 0.5)
    assert float(half) == pytest.approx((float(sharp) + float(full)) / 2, rel=1e-5)
    shifted = target + 0.5  # a wrong envelope costs as much either way
    assert float(smoothed_target_mel_loss(target, shifted, sigmas, 1.0)) == pytest.approx(45 * 0.5, rel=1e-5)
    with pytest.raises(ValueError, match=r"share must be in \[0, 1\], got 1.5"):
        smoothed_target_mel_loss(target, rippled, sigmas, 1.5)
    with pytest.raises(ValueError, match=r"\(2,\) sigmas for a batch of 3 mels"):
        smoothed_target_mel_loss(target, rippled, sigmas[:2], 1.0)


def test_smoothing_sigmas_are_the_draws_collate_smoothed_by(corpus):
    from vcframe_hifigan.data import collate, load_clips, smoothing_sigmas

    from vcframe.datasets import MelSmoothing, band_smoothing

    clips, _, _ = load_clips([corpus], RTVC_SYNTHESIZER_MEL, min_frames=8)
    picks = [(clip, start) for clip in range(len(clips)) for start in (0, 4)]
    smoothing = MelSmoothing(3.0, 0.5, seed=7)
    mels, _ = collate(clips, picks, 8, 200, smoothing)
    sigmas = smoothing_sigmas(clips, picks, smoothing)
    assert sigmas.shape == (len(picks),) and 0 < int((sigmas > 0).sum()) < len(picks)
    for index, (clip, start) in enumerate(picks):
        window = clips[clip].mel[:, start : start + 8]
        sigma = float(sigmas[index])
        expected = band_smoothing(80, sigma) @ window if sigma > 0 else window
        np.testing.assert_allclose(mels[index].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert float(smoothing_sigmas(clips, picks, None).abs().sum()) == 0.0


def test_smoothed_targets_leave_smoothed_segments_out_of_the_stft_loss():
    step, mels, audio = tiny_step("fp32")
    step.stft_weight = 1.0
    state = {name: value.clone() for name, value in step.generator.state_dict().items()}
    plain = step(mels, audio, adversarial=False)
    step.generator.load_state_dict(state)
    step.smoothed_targets = 1.0
    # segment 0 smoothed: its STFT loss is left out, segment 1's weighs its half of the batch
    sigmas = torch.tensor([2.0, 0.0])
    shared = step(mels, audio, adversarial=False, sigmas=sigmas)
    step.generator.load_state_dict(state)
    from vcframe_hifigan.losses import stft_loss

    with torch.no_grad():
        generated = step.generator(mels)
    second = stft_loss(audio[1:], generated[1:])
    assert float(shared["stft_sc"]) == pytest.approx(0.5 * float(second[0]), rel=1e-4)
    assert float(shared["stft_mag"]) == pytest.approx(0.5 * float(second[1]), rel=1e-4)
    assert float(shared["mel"]) != float(plain["mel"])
    unsmoothed = step(mels, audio, adversarial=False, sigmas=torch.zeros(2))  # nothing smoothed: the original
    assert float(unsmoothed["stft_sc"]) == pytest.approx(float(plain["stft_sc"]), rel=1e-5)
    with pytest.raises(ValueError, match=r"\(3,\) smoothing sigmas for a batch of 2 segments"):
        step(mels, audio, adversarial=False, sigmas=torch.ones(3))


def test_smoothed_targets_train_record_and_refuse_without_smoothing(corpus, tmp_path):
    smooth = ("--mel-smoothing", "2.5", "--mel-smoothing-probability", "1.0")
    plain, shared = tmp_path / "plain", tmp_path / "shared"
    run(fit_arguments(corpus, plain, "--max-steps", "2", "--stft-weight", "1", *smooth))
    run(fit_arguments(corpus, shared, "--max-steps", "2", "--stft-weight", "1", "--smoothed-targets", "1", *smooth))
    assert (
        compare_states(
            load_checkpoint(plain / "checkpoint.pt")["generator"],
            load_checkpoint(shared / "checkpoint.pt")["generator"],
        )
        > 0
    )
    checkpoint = load_checkpoint(shared / "checkpoint.pt")
    assert checkpoint["loss_changes"][-1]["smoothed_targets"] == 1.0
    assert json.loads((shared / "config.json").read_text())["smoothed_targets"] == 1.0
    assert records(shared / "log.jsonl")[-1]["stft_sc"] == 0.0  # every segment smoothed: no STFT loss left
    assert records(plain / "log.jsonl")[-1]["stft_sc"] > 0
    output = run(fit_arguments(corpus, shared, "--max-steps", "3", "--resume", "--stft-weight", "1", *smooth))
    assert "the smoothed-target share changed at step 2: 1 -> 0" in output
    result = CliRunner().invoke(
        app, fit_arguments(corpus, tmp_path / "bad", "--max-steps", "1", "--smoothed-targets", "1")
    )
    assert result.exit_code != 0
    assert "--smoothed-targets 1 acts on the segments --mel-smoothing smooths, and it smooths none" in str(
        result.exception
    )


def test_auto_precision_falls_back_to_fp32_without_native_bf16(monkeypatch):
    import vcframe_hifigan.train as train

    import vcframe.cpu

    monkeypatch.setattr(vcframe.cpu, "cpu_has_bf16", lambda: False)  # the one detection, shared by the trainers
    assert train.resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert train.resolve_precision("bf16", torch.device("cpu")) == "bf16"  # asked for: emulated, slower


def test_export_safetensors_loads_as_the_vocoder_and_original_files_load_back(corpus, tmp_path):
    from vcframe_hifigan.model import HiFiGANVocoder
    from vcframe_hifigan.spec import HiFiGANConfig

    from vcframe.checkpoints import load_state
    from vcframe.types import Mel

    run_dir = tmp_path / "run"
    run(fit_arguments(corpus, run_dir, "--max-steps", "2", "--sample-every", "2", "--valid-data", str(corpus)))
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_0000002.png", "step_0000002.wav"]
    valid = records(run_dir / "valid.jsonl")
    assert [r["step"] for r in valid] == [] and not (run_dir / "valid.jsonl").read_text()  # --valid-every 1000
    out = tmp_path / "demo.safetensors"
    output = run(["export", "--run-dir", str(run_dir), "--out", str(out), "--original-dir", str(tmp_path / "cp")])
    assert "wrote" in output
    _, metadata = load_state(out)
    assert (
        metadata["steps"] == 2 and metadata["mel_spec"]["hop_length"] == 200 and "7 clips" in metadata["training_data"]
    )
    vocoder = HiFiGANVocoder(HiFiGANConfig(checkpoint=str(out)))
    mel = Mel(torch.zeros(1, 80, 5) - 4.0, RTVC_SYNTHESIZER_MEL)
    assert vocoder.vocode(mel).samples.shape == (1, 1000)
    saved = load_checkpoint(run_dir / "checkpoint.pt")
    generator = Generator(vocoder.network.config)
    generator.load_state_dict(saved["generator"])
    generator.remove_weight_norm()
    with torch.no_grad():
        assert torch.allclose(vocoder.network(mel.frames), generator(mel.frames), atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "cp").iterdir()) == ["config.json", "do_00000002", "g_00000002"]
    original = torch.load(tmp_path / "cp" / "g_00000002", weights_only=True)
    assert "conv_pre.weight_g" in original["generator"]
    config = json.loads((tmp_path / "cp" / "config.json").read_text())
    assert config["upsample_rates"] == [8, 5, 5] and config["hop_size"] == 200 and config["resblock"] == "2"
    # a new run starts from the original files: g_ for the generator, do_ for both discriminators
    restarted = tmp_path / "restarted"
    arguments = [
        "--init",
        str(tmp_path / "cp" / "g_00000002"),
        "--init-discriminators",
        str(tmp_path / "cp" / "do_00000002"),
    ]
    output = run(fit_arguments(corpus, restarted, "--max-steps", "1", "--adversarial-start", "5", *arguments))
    assert (
        f"initialised from {tmp_path / 'cp' / 'g_00000002'} (g_00000002) and {tmp_path / 'cp' / 'do_00000002'}"
        in output
    )
    first_step = load_checkpoint(restarted / "checkpoint.pt")
    assert compare_states(saved["mpd"], first_step["mpd"]) == 0.0  # the warm-up step leaves the discriminators
    assert compare_states(saved["msd"], first_step["msd"]) == 0.0
    assert first_step["init"]["steps"] == 0 and first_step["init"]["discriminators"].endswith("do_00000002")


def test_a_run_from_exported_weights_records_them_and_counts_their_steps(corpus, tmp_path):
    """--init from a vcframe export: the lineage goes into the checkpoints, config.json and the next export, whose
    steps are the init's plus the run's; --resume keeps it."""
    from vcframe.checkpoints import load_state

    first, second = tmp_path / "first", tmp_path / "second"
    run(fit_arguments(corpus, first, "--max-steps", "2"))
    exported = tmp_path / "first.safetensors"
    run(["export", "--run-dir", str(first), "--out", str(exported)])
    output = run(fit_arguments(corpus, second, "--max-steps", "2", "--init", str(exported)))
    assert f"initialised from {exported} (first.safetensors, 2 steps)" in output
    output = run(fit_arguments(corpus, second, "--max-steps", "3", "--resume"))
    assert "initialised from" not in output
    record = load_checkpoint(second / "checkpoint.pt")["init"]
    assert record == {"source": f"{exported} (first.safetensors, 2 steps)", "steps": 2, "discriminators": None}
    assert json.loads((second / "config.json").read_text())["init"] == record
    output = run(["export", "--run-dir", str(second), "--out", str(tmp_path / "second.safetensors")])
    assert "(step 3, 5 steps with its --init's," in output
    _, metadata = load_state(tmp_path / "second.safetensors")
    assert metadata["steps"] == 5 and metadata["run_steps"] == 3 and metadata["init"] == record
    _, plain = load_state(exported)
    assert plain["steps"] == 2 and "run_steps" not in plain and "init" not in plain


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--mel", "22k"], "unknown mel '22k'"),
        (
            ["-o", "upsample_rates=[8,8,4]", "-o", "upsample_kernel_sizes=[16,16,8]"],
            "upsamples by 256 but the mel's hop",
        ),
        (["-o", "colour=1"], "unknown generator size option 'colour'"),
        (["--disc-width", "0.3"], "multiple of"),
        (["--resume"], "nothing to resume"),
        (["--batch-size", "8"], "7 usable clips cannot fill a batch of 8"),
        (["--segment-frames", "500"], "none of the 7 clips"),
        (["--precision", "fp16"], "--precision must be auto, fp32 or bf16"),
        (["--unpaired-weight", "1"], "--unpaired-mels and --unpaired-weight go together"),
        (["--unpaired-frame-sync-weight", "2"], "--unpaired-frame-sync-weight 2 acts in the unpaired steps"),
        (["--generator-lr", "0"], "--generator-lr must be above 0, got 0"),
    ],
)
def test_bad_input_is_one_line(corpus, tmp_path, extra, message):
    result = CliRunner().invoke(app, fit_arguments(corpus, tmp_path / "run", "--max-steps", "1", *extra))
    assert result.exit_code != 0
    assert isinstance(result.exception, VcframeError | ValueError) and message in str(result.exception)


def test_cli_dispatch_and_export_errors(corpus, tmp_path):
    from vcframe.cli import app as vcframe_app

    result = CliRunner().invoke(vcframe_app, ["train", "vocoder", "--plugin", "hifigan", "fit", "--help"])
    assert result.exit_code == 0 and "--disc-width" in result.output
    result = CliRunner().invoke(
        vcframe_app, ["train", "vocoder", "--plugin", "hifigan", "export", "--run-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "nothing to export" in result.output


def write_speaker_embeddings(path: Path, voices: list[str], dim: int = 6, space: str = "test/voices") -> Path:
    """An .npz as recipes/demo/speaker_embeddings.py writes it: a unit vector per voice and the space's name."""
    rng = np.random.default_rng(1)
    vectors = {voice: rng.standard_normal(dim).astype(np.float32) for voice in voices}
    np.savez(path, __space__=np.array(space), **{k: v / np.linalg.norm(v) for k, v in vectors.items()})
    return path


def test_speaker_embeddings_condition_the_generator_resume_exactly_and_export(corpus, tmp_path):
    """--speaker-embeddings: the generator reads each segment's voice (paired and unpaired), from unconditioned
    --init weights the same function at first; exact on resume (which needs the file again), recorded, exported with
    its space; the vocoder reads the embedding the mel comes with."""
    from vcframe_hifigan.model import HiFiGANVocoder
    from vcframe_hifigan.spec import HiFiGANConfig

    from vcframe.checkpoints import load_state
    from vcframe.specs import EmbeddingSpec
    from vcframe.types import SPEAKER_EMBEDDING_KEY, Mel, SpeakerEmbedding

    embeddings = write_speaker_embeddings(tmp_path / "voices.npz", ["alice", "bob"])
    free = tmp_path / "free"
    free.mkdir()
    for voice in ("alice", "bob"):  # free_mels.py's layout: a folder per voice
        write_unpaired_mels(corpus / voice, free / voice)
    conditioned = ("--speaker-embeddings", str(embeddings), "--unpaired-mels", str(free), "--unpaired-weight", "1")
    plain, straight, resumed = tmp_path / "plain", tmp_path / "straight", tmp_path / "resumed"
    run(fit_arguments(corpus, plain, "--max-steps", "2"))
    exported = tmp_path / "plain.safetensors"
    run(["export", "--run-dir", str(plain), "--out", str(exported)])
    init = ("--init", str(exported))
    output = run(fit_arguments(corpus, straight, "--max-steps", "3", *init, *conditioned))
    assert "speaker embeddings: test/voices, 6 values, 2 training voices" in output
    assert "speaker_embedding_dim 6" in output
    run(fit_arguments(corpus, resumed, "--max-steps", "2", *init, *conditioned))
    output = run(fit_arguments(corpus, resumed, "--max-steps", "3", "--resume", *conditioned))
    first, second = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    for key in STATES:
        assert compare_states(first[key], second[key]) == 0.0, key
    state = first["generator"]
    assert state["speaker_projection.weight"].shape == (16, 6) and state["speaker_projection.weight"].abs().max() > 0
    with np.load(embeddings) as archive:  # the training voices' mean (read without an embedding) and spread
        voices = np.stack([archive["alice"], archive["bob"]])
    mean = voices.mean(axis=0)
    assert torch.allclose(state["speaker_embedding_mean"], torch.from_numpy(mean))
    assert float(state["speaker_embedding_scale"]) == pytest.approx(float(np.sqrt(np.mean((voices - mean) ** 2))))
    groups = first["optim_g"]["param_groups"]  # the new map learns at --speaker-lr-factor (10) times the rate
    assert len(groups) == 2 and len(groups[1]["params"]) == 2 and groups[1]["lr"] == pytest.approx(10 * groups[0]["lr"])
    assert (
        first["speaker_embeddings"]["space"] == "test/voices"
        and first["train"]["generator"]["speaker_embedding_dim"] == 6
    )
    assert json.loads((straight / "config.json").read_text())["speaker_embeddings"]["path"] == str(embeddings)
    out = tmp_path / "voices.safetensors"
    run(["export", "--run-dir", str(straight), "--out", str(out)])
    _, metadata = load_state(out)
    assert metadata["speaker_embedding_space"] == "test/voices" and metadata["config"]["speaker_embedding_dim"] == 6
    vocoder = HiFiGANVocoder(HiFiGANConfig(checkpoint=str(out), precision="float32"))
    frames = torch.zeros(1, 80, 6) - 4.0
    with np.load(embeddings) as archive:
        voice = torch.from_numpy(archive["bob"]).unsqueeze(0)
    mel = Mel(
        frames,
        RTVC_SYNTHESIZER_MEL,
        metadata={SPEAKER_EMBEDDING_KEY: SpeakerEmbedding(voice, EmbeddingSpec(space="test/voices", dim=6))},
    )
    with torch.no_grad():
        assert torch.allclose(vocoder.vocode(mel).samples, vocoder.network(frames, voice)[:, 0], atol=1e-5)
    # refusals: a conditioned run resumed without its file, a voice the file lacks, an unreadable file
    result = CliRunner().invoke(app, fit_arguments(corpus, resumed, "--max-steps", "4", "--resume"))
    assert "reads speaker embeddings of 6 values (0: none) but --speaker-embeddings gives none" in str(result.exception)
    only_alice = write_speaker_embeddings(tmp_path / "alice.npz", ["alice"])
    result = CliRunner().invoke(
        app, fit_arguments(corpus, tmp_path / "bad", "--max-steps", "1", "--speaker-embeddings", str(only_alice))
    )
    assert "the speaker embeddings have no voice 'bob' of the training data" in str(result.exception)
    (tmp_path / "broken.npz").write_bytes(b"not an archive")
    result = CliRunner().invoke(
        app,
        fit_arguments(
            corpus, tmp_path / "bad2", "--max-steps", "1", "--speaker-embeddings", str(tmp_path / "broken.npz")
        ),
    )
    assert "cannot read speaker embeddings" in str(result.exception)


def test_the_speaker_identity_loss_trains_resumes_exactly_and_is_recorded(corpus, tmp_path):
    """--speaker-loss-weight: GE2E's softmax loss of the output over the training voices joins the paired and the
    unpaired step (logged beside the real segments' own loss), exact on resume, recorded with the encoder's
    weights; refused without speaker embeddings or with embeddings of another space."""
    embeddings = write_speaker_embeddings(tmp_path / "voices.npz", ["alice", "bob"], dim=256, space="ge2e/rtvc")
    free = tmp_path / "free"
    free.mkdir()
    for voice in ("alice", "bob"):
        write_unpaired_mels(corpus / voice, free / voice)
    conditioned = ("--speaker-embeddings", str(embeddings), "--unpaired-mels", str(free), "--unpaired-weight", "1")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    output = run(fit_arguments(corpus, straight, "--max-steps", "3", *conditioned, "--speaker-loss-weight", "2"))
    assert "speaker-identity loss: 2 voices (chance 0.69), encoder default (ge2e/rtvc)" in output
    run(fit_arguments(corpus, resumed, "--max-steps", "2", *conditioned, "--speaker-loss-weight", "2"))
    run(fit_arguments(corpus, resumed, "--max-steps", "3", "--resume", *conditioned, "--speaker-loss-weight", "2"))
    first, second = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    for key in STATES:
        assert compare_states(first[key], second[key]) == 0.0, key
    assert not any(key.startswith("lstm") for key in first["generator"])  # the frozen encoder is not saved
    records = [json.loads(line) for line in (straight / "log.jsonl").read_text().splitlines()]
    for name in ("speaker", "speaker_accuracy", "speaker_real", "unpaired_speaker", "unpaired_speaker_accuracy"):
        # the unpaired steps start with the adversarial ones (--adversarial-start 1: from the second step)
        assert all(math.isfinite(record[name]) for record in records[1:]), name
    assert all(0.0 <= record["speaker_accuracy"] <= 1.0 for record in records)
    record = json.loads((straight / "config.json").read_text())
    assert record["speaker_loss_weight"] == 2.0 and record["loss_changes"][0]["speaker_loss_weight"] == 2.0
    assert record["speaker_loss"]["space"] == "ge2e/rtvc" and record["speaker_loss"]["voices"] == 2
    assert len(record["speaker_loss"]["sha256"]) == 64 and first["speaker_loss"] == record["speaker_loss"]
    assert record["loss_changes"][0]["unpaired_speaker_loss_weight"] == 2.0  # by default the paired weight
    # the unpaired step's own weight: 0 keeps the loss in the paired step only
    paired_only = ("--speaker-loss-weight", "2", "--unpaired-speaker-loss-weight", "0")
    output = run(fit_arguments(corpus, resumed, "--max-steps", "4", "--resume", *conditioned, *paired_only))
    assert "the unpaired speaker-identity loss weight changed at step 3: 2 -> 0" in output
    assert "the speaker-identity loss weight changed" not in output
    last = json.loads((resumed / "log.jsonl").read_text().splitlines()[-1])
    assert math.isfinite(last["speaker"]) and "unpaired_speaker" not in last and "unpaired_mel" in last
    # a weight change on resume is recorded; 0 turns the loss off
    output = run(fit_arguments(corpus, resumed, "--max-steps", "5", "--resume", *conditioned))
    assert "the speaker-identity loss weight changed at step 4: 2 -> 0" in output
    assert "speaker" not in json.loads((resumed / "log.jsonl").read_text().splitlines()[-1])
    result = CliRunner().invoke(
        app,
        fit_arguments(
            corpus,
            tmp_path / "bad0",
            "--max-steps",
            "1",
            "--speaker-embeddings",
            str(embeddings),
            "--unpaired-speaker-loss-weight",
            "1",
        ),
    )
    assert "--unpaired-speaker-loss-weight 1 acts in the unpaired steps, and there are none" in str(result.exception)
    # refusals, one line each
    result = CliRunner().invoke(
        app, fit_arguments(corpus, tmp_path / "bad", "--max-steps", "1", "--speaker-loss-weight", "1")
    )
    assert "tells the training voices apart, and there are no speaker embeddings" in str(result.exception)
    other = write_speaker_embeddings(tmp_path / "other.npz", ["alice", "bob"], dim=256)
    result = CliRunner().invoke(
        app,
        fit_arguments(
            corpus,
            tmp_path / "bad2",
            "--max-steps",
            "1",
            "--speaker-embeddings",
            str(other),
            "--speaker-loss-weight",
            "1",
        ),
    )
    assert "encoder makes 'ge2e/rtvc' embeddings and --speaker-embeddings holds 'test/voices'" in str(result.exception)
