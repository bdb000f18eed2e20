"""Training: data discovery, exact resume, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from typer.testing import CliRunner
from vcframe_wavernn.train import app

from vcframe.checkpoints import load_state


def speechlike(seconds: float, f0: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.1 * voiced * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def make_corpus(folder):
    folder.mkdir()
    for index, f0 in enumerate((110.0, 180.0)):
        soundfile.write(folder / f"utt{index}.wav", speechlike(0.5, f0, index), 16000)
    return folder


def run(args):
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _straight_and_resumed(tmp_path: Path, common: list[str]) -> tuple[dict, dict]:
    """The checkpoints of 4 steps straight and of 2 + 2 steps with ``--resume`` (which must say it resumed)."""
    run(["fit", "--run-dir", str(tmp_path / "straight"), "--max-steps", "4", *common])
    run(["fit", "--run-dir", str(tmp_path / "resumed"), "--max-steps", "2", *common])
    output = run(["fit", "--run-dir", str(tmp_path / "resumed"), "--max-steps", "4", "--resume", *common])
    assert "resumed at step 2" in output
    straight = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    return straight, resumed


def test_resume_is_exact_and_export(tmp_path):
    data = make_corpus(tmp_path / "data")
    common = [
        "--data",
        str(data),
        "--preset",
        "tiny",
        "--batch-size",
        "2",
        "--seq-len",
        "400",
        "--save-every",
        "1",
        "--sample-every",
        "0",
        "--threads",
        "1",
    ]
    straight, resumed = _straight_and_resumed(tmp_path, common)
    assert straight["step"] == resumed["step"] == 4
    for key, value in straight["model_state"].items():
        assert torch.equal(value, resumed["model_state"][key]), key
    losses = lambda run_dir: (run_dir / "log.csv").read_text().splitlines()[1:]  # noqa: E731
    assert [row.split(",")[1] for row in losses(tmp_path / "straight")] == [
        row.split(",")[1] for row in losses(tmp_path / "resumed")
    ]
    out = tmp_path / "tiny.safetensors"
    run(["export", "--run-dir", str(tmp_path / "straight"), "--out", str(out)])
    state, metadata = load_state(out)
    assert (
        metadata["steps"] == 4 and metadata["config"]["preset"] == "tiny" and metadata["mel_spec"]["hop_length"] == 200
    )
    assert "2 utterances" in metadata["training_data"]
    from vcframe_wavernn.model import WaveRNNVocoder
    from vcframe_wavernn.spec import WaveRNNConfig

    auto = WaveRNNVocoder(WaveRNNConfig(checkpoint=str(out)))  # preset 'auto': the recorded sizes
    assert auto.config.preset == "tiny" and auto.config.sizes()["rnn_dims"] == 32


def test_resume_with_lr_applies_it_and_without_keeps_the_saved(tmp_path):
    """On resume an explicit --lr replaces the checkpoint's (Adam's state would otherwise bring the saved one
    back), says so and is recorded; without --lr the saved learning rate goes on."""
    data = make_corpus(tmp_path / "data")
    common = ["--data", str(data), "--run-dir", str(tmp_path / "run"), "--preset", "tiny", "--batch-size", "2"]
    common += ["--seq-len", "400", "--save-every", "1", "--sample-every", "0", "--threads", "1"]
    saved_checkpoint = lambda: torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)  # noqa: E731
    run(["fit", "--max-steps", "1", "--lr", "1e-3", *common])
    output = run(["fit", "--max-steps", "2", "--resume", *common])
    assert "learning rate changed" not in output
    checkpoint = saved_checkpoint()
    assert checkpoint["optimizer_state"]["param_groups"][0]["lr"] == 1e-3 and "lr_changes" not in checkpoint
    output = run(["fit", "--max-steps", "3", "--resume", "--lr", "2e-4", *common])
    assert "learning rate changed at step 2: 0.001 -> 0.0002" in output
    checkpoint = saved_checkpoint()
    assert checkpoint["optimizer_state"]["param_groups"][0]["lr"] == 2e-4
    assert checkpoint["lr_changes"] == [{"step": 2, "old": 1e-3, "new": 2e-4}]
    output = run(["fit", "--max-steps", "4", "--resume", "--lr", "2e-4", *common])  # the same: no change
    assert "learning rate changed" not in output and saved_checkpoint()["lr_changes"] == checkpoint["lr_changes"]


def test_sample_audio_written(tmp_path):
    data = make_corpus(tmp_path / "data")
    run(
        [
            "fit",
            "--data",
            str(data),
            "--run-dir",
            str(tmp_path / "run"),
            "--preset",
            "tiny",
            "--batch-size",
            "2",
            "--seq-len",
            "400",
            "--max-steps",
            "2",
            "--sample-every",
            "2",
            "--sample-seconds",
            "0.1",
            "--threads",
            "1",
        ]
    )
    samples = list((tmp_path / "run" / "samples").glob("*.wav"))
    assert len(samples) == 1 and soundfile.info(samples[0]).frames == 1600


def test_manifest_pairs_give_mels_and_wavs_are_rescaled(tmp_path):
    """A 'wav|mel' manifest (what `vcframe train synthesizer gta` writes as pairs.txt) feeds the given mels;
    wavs are peak-normalised to 0.9 as the synthesizer's preprocessing does, whatever their level."""
    from vcframe_wavernn.data import load_items, make_item

    from vcframe.audio import TRAINING_PEAK, mel_spectrogram
    from vcframe.specs import RTVC_SYNTHESIZER_MEL as spec

    data = make_corpus(tmp_path / "data")
    quiet = speechlike(0.5, 110.0, 0)  # peak about 0.1
    rescaled = quiet / np.abs(quiet).max() * TRAINING_PEAK
    given_mel = mel_spectrogram(rescaled, spec)[:, :30]  # stands in for a GTA mel
    np.save(tmp_path / "gta0.npy", given_mel)
    (tmp_path / "pairs.txt").write_text(f"{data / 'utt0.wav'}|gta0.npy\n{data / 'utt1.wav'}|\n")
    items, description = load_items(tmp_path / "pairs.txt", spec, bits=9)
    assert "2 utterances" in description and "(1 given mels, 1 ground truth)" in description
    stored = soundfile.read(data / "utt0.wav", dtype="float32")[0]
    expected = make_item("utt0", stored / np.abs(stored).max() * TRAINING_PEAK, given_mel, spec, 9)
    unscaled = make_item("utt0", stored, given_mel, spec, 9)
    assert items[0].mel.shape == (80, 30)
    assert items[0].given_mel and not items[1].given_mel  # collate smooths only the ground-truth one
    assert np.abs(items[0].labels - expected.labels).max() <= 1  # float rounding at class edges
    assert np.abs(items[0].labels - unscaled.labels).max() > 50
    assert np.allclose(items[0].mel, given_mel / spec.max_abs_value)


def test_resume_after_a_kill_cleans_temporaries_and_repeats_no_log_row(tmp_path):
    data = make_corpus(tmp_path / "data")
    run_dir = tmp_path / "run"
    common = ["--data", str(data), "--run-dir", str(run_dir), "--preset", "tiny", "--batch-size", "2"]
    common += ["--seq-len", "400", "--save-every", "2", "--sample-every", "0", "--threads", "1"]
    run(["fit", "--max-steps", "2", *common])
    # what a kill during step 4 leaves (checkpoint at step 2): a log row past the checkpoint, a torn row, and
    # the temporary of a checkpoint write cut short
    with open(run_dir / "log.csv", "a") as log:
        log.write("3,5.123456,1.00\n4,5.1")
    stale = run_dir / ".checkpoint.pt.k1ll3d.pt"
    stale.write_bytes(b"\0" * 65536)
    output = run(["fit", "--max-steps", "4", "--resume", *common])
    assert "log.csv: 2 rows after step 2 removed" in output
    rows = (run_dir / "log.csv").read_text().splitlines()
    assert rows[0] == "step,loss,seconds" and [int(row.split(",")[0]) for row in rows[1:]] == [1, 2, 3, 4]
    assert "5.123456" not in rows[3] and not stale.exists()


TINY = ["--preset", "tiny", "--batch-size", "2", "--seq-len", "400", "--sample-every", "0", "--threads", "1"]


@pytest.mark.parametrize(
    "path",
    [["--fused", "--precision", "fp32"], ["--fused", "--precision", "bf16"], ["--reference", "--precision", "fp32"]],
)
def test_resume_is_exact_on_each_training_path(tmp_path, path):
    """4 steps straight equal 2 + 2 resumed, bit for bit, on the fused path (float32 and bfloat16, the C++
    kernel where it builds) and on the reference path."""
    data = make_corpus(tmp_path / "data")
    common = ["--data", str(data), "--save-every", "1", *TINY, *path]
    straight, resumed = _straight_and_resumed(tmp_path, common)
    for key, value in straight["model_state"].items():
        assert torch.equal(value, resumed["model_state"][key]), key
    for expected, actual in zip(
        straight["optimizer_state"]["state"].values(), resumed["optimizer_state"]["state"].values(), strict=True
    ):
        assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_training_paths_log_the_same_first_loss(tmp_path):
    """The first step's loss (same weights, same batch) on each path, as the log records it: equal within the
    tolerances of test_fused.py; the path and precision are printed."""
    data = make_corpus(tmp_path / "data")
    losses = {}
    for name, path in {
        "reference": ["--reference", "--precision", "fp32"],
        "fused-torch": ["--fused", "--precision", "fp32", "--engine", "torch"],
        "fused": ["--fused", "--precision", "fp32"],
        "fused-bf16": ["--fused", "--precision", "bf16"],
    }.items():
        output = run(["fit", "--data", str(data), "--run-dir", str(tmp_path / name), "--max-steps", "1", *TINY, *path])
        assert "training path: " + ("reference (nn.GRU)" if name == "reference" else "fused (") in output
        assert output.split("training path: ")[1].split("\n")[0].endswith("bf16" if name == "fused-bf16" else "fp32")
        losses[name] = float((tmp_path / name / "log.csv").read_text().splitlines()[1].split(",")[1])
    assert losses["fused-torch"] == pytest.approx(losses["reference"], rel=1e-5, abs=2e-6)  # log: 6 decimals
    assert losses["fused"] == pytest.approx(losses["reference"], rel=1e-5, abs=2e-6)
    assert losses["fused-bf16"] == pytest.approx(losses["reference"], rel=1e-3)


@pytest.mark.parametrize(
    "option, message",
    [
        (["--precision", "fp16"], "--precision must be auto, fp32 or bf16, got 'fp16'"),
        (["--engine", "cuda"], "--engine must be auto, cpp or torch, got 'cuda'"),
    ],
)
def test_bad_training_path_options_are_one_line(tmp_path, option, message):
    from vcframe.cli import app as vcframe_app

    data = make_corpus(tmp_path / "data")
    arguments = [
        "train",
        "vocoder",
        "--plugin",
        "wavernn",
        "fit",
        "--data",
        str(data),
        "--run-dir",
        str(tmp_path / "run"),
    ]
    result = CliRunner().invoke(vcframe_app, [*arguments, "--max-steps", "1", *TINY, *option])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_clip_listed_twice_is_loaded_once_with_16_bit_labels(tmp_path):
    """A manifest that repeats a clip (the shared manifest's --real-speech-repeat) lists it as often, so the
    sampler draws it as often, but holds it once; labels take 2 bytes a sample instead of int64's 8."""
    from vcframe_wavernn.data import collate, load_items

    from vcframe.specs import RTVC_SYNTHESIZER_MEL as spec

    data = make_corpus(tmp_path / "data")
    lines = [str(data / "utt0.wav"), str(data / "utt1.wav"), str(data / "utt0.wav")]
    (tmp_path / "repeated.txt").write_text("\n".join(lines) + "\n")
    items, description = load_items(tmp_path / "repeated.txt", spec, bits=9)
    assert len(items) == 3 and items[0] is items[2] and items[0] is not items[1]
    assert "3 utterances (2 distinct)" in description
    assert items[0].labels.dtype == np.uint16 and items[0].labels.max() < 512
    _, labels, _ = collate(items[:2], [0, 1], 400, 200, 2, 9)
    assert labels.dtype == torch.int64


def test_fit_keeps_mels_in_the_run_folder_or_a_shared_cache(tmp_path):
    """A new run computes the ground-truth mels into RUN_DIR/mel_cache; another run given --mel-cache of that
    folder reads them all and computes none, and trains on the same first batch (same loss)."""
    data = make_corpus(tmp_path / "data")
    first = run(["fit", "--data", str(data), "--run-dir", str(tmp_path / "one"), "--max-steps", "1", *TINY])
    assert f"mel cache {tmp_path / 'one' / 'mel_cache'}: 0 read, 2 computed" in first
    assert len(list((tmp_path / "one" / "mel_cache").glob("*.npy"))) == 2
    second = run(
        ["fit", "--data", str(data), "--run-dir", str(tmp_path / "two"), "--max-steps", "1", *TINY]
        + ["--mel-cache", str(tmp_path / "one" / "mel_cache")]
    )
    assert ": 2 read, 0 computed" in second and not (tmp_path / "two" / "mel_cache").exists()
    first_loss, second_loss = ((tmp_path / name / "log.csv").read_text().splitlines()[1] for name in ("one", "two"))
    assert first_loss.split(",")[1] == second_loss.split(",")[1]


def test_init_starts_a_new_run_from_exported_weights(tmp_path):
    """--init loads the weights (step 0, fresh optimizer), records where they came from in the checkpoints and
    the export, and is not applied again on --resume."""
    data = make_corpus(tmp_path / "data")
    common = ["--data", str(data), "--save-every", "1", *TINY]
    run(["fit", "--run-dir", str(tmp_path / "source"), "--max-steps", "2", "--seed", "3", *common])
    exported = tmp_path / "source.safetensors"
    run(["export", "--run-dir", str(tmp_path / "source"), "--out", str(exported)])
    weights, _ = load_state(exported)
    # a learning rate so small that one Adam step leaves the weights where --init put them
    output = run(["fit", "--run-dir", str(tmp_path / "init"), "--max-steps", "1", "--init", str(exported)] + common
                 + ["--lr", "1e-12"])  # fmt: skip
    assert f"initialised from {exported} (source.safetensors, 2 steps)" in output
    checkpoint = torch.load(tmp_path / "init" / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 1
    assert checkpoint["init"] == {"source": f"{exported} (source.safetensors, 2 steps)", "steps": 2}
    from vcframe_wavernn.model import build_network
    from vcframe_wavernn.spec import WaveRNNConfig

    network = build_network(WaveRNNConfig(preset="tiny", checkpoint=None))
    trained = [name for name, parameter in network.named_parameters() if parameter.requires_grad]
    for key in trained:  # the rest moves in training mode (batch-norm statistics, RTVC's step counter)
        torch.testing.assert_close(checkpoint["model_state"][key], weights[key], atol=1e-8, rtol=0, msg=key)
    assert int(checkpoint["model_state"]["step"]) == int(weights["step"]) + 1  # goes on from the file's
    fresh = torch.load(tmp_path / "source" / "checkpoint.pt", weights_only=True)["model_state"]
    random_start = run(["fit", "--run-dir", str(tmp_path / "random"), "--max-steps", "1", *common, "--lr", "1e-12"])
    assert "initialised" not in random_start
    started = torch.load(tmp_path / "random" / "checkpoint.pt", weights_only=True)["model_state"]
    assert not torch.allclose(started["fc3.weight"], fresh["fc3.weight"], atol=1e-3)  # a different seed's weights
    output = run(["fit", "--run-dir", str(tmp_path / "init"), "--max-steps", "2", "--resume", *common])
    assert "resumed at step 1" in output and "initialised" not in output
    assert torch.load(tmp_path / "init" / "checkpoint.pt", weights_only=True)["init"] == checkpoint["init"]
    output = run(["export", "--run-dir", str(tmp_path / "init"), "--out", str(tmp_path / "init.safetensors")])
    assert "(step 2, 4 steps with its --init's)" in output
    metadata = load_state(tmp_path / "init.safetensors")[1]
    assert metadata["init"] == checkpoint["init"] and (metadata["steps"], metadata["run_steps"]) == (4, 2)
    assert "run_steps" not in load_state(exported)[1] and load_state(exported)[1]["steps"] == 2


def test_an_init_recorded_as_a_string_by_older_runs_is_read_with_its_steps():
    from vcframe_wavernn.train import init_record

    assert init_record(None) is None and init_record("") is None
    assert init_record("registry:wavernn-demo (wavernn-demo.safetensors, 2200 steps)") == {
        "source": "registry:wavernn-demo (wavernn-demo.safetensors, 2200 steps)",
        "steps": 2200,
    }
    assert init_record("vocoder.pt (vocoder.pt)")["steps"] == 0
    record = {"source": "x (x.safetensors, 5 steps)", "steps": 5}
    assert init_record(record) is record


def test_init_from_the_shipped_weights_and_layout_mismatch_is_one_line(tmp_path):
    """registry:wavernn-demo loads into a small network exactly; into the tiny preset it is refused in one line
    naming both layouts, before any data loads or checkpoint is written (exit 2, no traceback)."""
    from vcframe_wavernn.model import build_network
    from vcframe_wavernn.spec import WaveRNNConfig
    from vcframe_wavernn.train import initialise

    from vcframe.checkpoints import resolve
    from vcframe.cli import app as vcframe_app

    config = WaveRNNConfig(preset="small", checkpoint=None)
    network = build_network(config)
    described = initialise(network, config, "registry:wavernn-demo")
    shipped, shipped_metadata = load_state(resolve("vocoder", "wavernn", "registry:wavernn-demo").path)
    assert described == {
        "source": f"registry:wavernn-demo (wavernn-demo.safetensors, {shipped_metadata['steps']} steps)",
        "steps": shipped_metadata["steps"],
    }
    for key, value in network.state_dict().items():
        assert torch.equal(value, shipped[key].float()), key

    arguments = ["train", "vocoder", "--plugin", "wavernn", "fit", "--data", str(tmp_path / "nowhere")]
    arguments += ["--run-dir", str(tmp_path / "run"), "--max-steps", "1", *TINY, "--init", "registry:wavernn-demo"]
    result = CliRunner().invoke(vcframe_app, arguments)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    message = " ".join(result.output.split())
    assert "--init 'registry:wavernn-demo' is a WaveRNN of rnn_dims 256, fc_dims 256" in message
    assert "(preset small), but this run builds rnn_dims 32, fc_dims 32" in message and "(preset tiny)" in message
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    result = CliRunner().invoke(vcframe_app, [*arguments[:-1], str(tmp_path / "missing.safetensors")])
    assert result.exit_code == 2 and "not found" in result.output and "Traceback" not in result.output


def test_collate_smooths_the_mel_windows_and_leaves_the_labels_and_given_mels():
    from vcframe_wavernn.data import VocoderItem, collate

    from vcframe.datasets import MelSmoothing, band_smoothing

    rng = np.random.default_rng(4)
    items = [  # item 3's mel is given (a GTA mel): a synthesizer's already, never smoothed
        VocoderItem(
            f"u{index}",
            rng.normal(size=(80, 30)).astype(np.float32),
            rng.integers(0, 512, 30 * 200).astype(np.uint16),
            given_mel=index == 3,
        )
        for index in range(4)
    ]
    offsets, indices = [0, 4, 9, 2], [5, 6, 7, 8]
    smoothing = MelSmoothing(2.0, probability=1.0, seed=3)
    x_plain, y_plain, mels_plain = collate(items, offsets, 400, 200, 2, 9)
    x, y, mels = collate(items, offsets, 400, 200, 2, 9, smoothing, indices)
    assert torch.equal(x, x_plain) and torch.equal(y, y_plain) and mels.shape == mels_plain.shape == (4, 80, 6)
    assert smoothing.sigma(8, 2) > 0 and torch.equal(mels[3], mels_plain[3])
    for row, (item, offset, index) in enumerate(zip(items[:3], offsets[:3], indices[:3], strict=True)):
        sigma = smoothing.sigma(index, offset)  # seeded by the item's index in the training list and its offset
        assert sigma > 0
        expected = band_smoothing(80, sigma) @ item.mel[:, offset : offset + 6]
        np.testing.assert_allclose(mels[row].numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="indices"):
        collate(items, offsets, 400, 200, 2, 9, smoothing)


def test_mel_smoothing_changes_the_run_resumes_exactly_and_is_recorded(tmp_path):
    """--mel-smoothing: another run than without it, exact on resume, its changes recorded and exported."""
    data = make_corpus(tmp_path / "data")
    common = ["--data", str(data), "--preset", "tiny", "--batch-size", "2", "--seq-len", "400"]
    common += ["--save-every", "1", "--sample-every", "0", "--threads", "1"]
    smooth = ["--mel-smoothing", "2.5", "--mel-smoothing-probability", "1.0"]
    straight, resumed = _straight_and_resumed(tmp_path, [*common, *smooth])
    for key, value in straight["model_state"].items():
        assert torch.equal(value, resumed["model_state"][key]), key
    assert resumed["smoothing_changes"] == [{"step": 0, "mel_smoothing": 2.5, "mel_smoothing_probability": 1.0}]
    run(["fit", "--run-dir", str(tmp_path / "plain"), "--max-steps", "4", *common])
    plain = torch.load(tmp_path / "plain" / "checkpoint.pt", weights_only=True)
    assert "smoothing_changes" not in plain
    assert any(not torch.equal(value, plain["model_state"][key]) for key, value in straight["model_state"].items())
    output = run(["fit", "--run-dir", str(tmp_path / "resumed"), "--max-steps", "5", "--resume", *common])
    assert "the mel smoothing changed at step 4: 2.5 -> 0 bands (probability 0.5)" in output
    checkpoint = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert checkpoint["smoothing_changes"][-1] == {"step": 4, "mel_smoothing": 0.0, "mel_smoothing_probability": 0.5}
    out = tmp_path / "smoothed.safetensors"
    run(["export", "--run-dir", str(tmp_path / "resumed"), "--out", str(out)])
    assert load_state(out)[1]["smoothing_changes"] == checkpoint["smoothing_changes"]
