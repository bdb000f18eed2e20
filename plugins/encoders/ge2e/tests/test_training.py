"""Training: corpus layouts and preprocessing, exact resume, --max-steps, export, fine-tuning flag."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from typer.testing import CliRunner
from vcframe_ge2e.data import MelCorpus, SpeakerBatchSampler, find_utterances, preprocess_corpus
from vcframe_ge2e.model import GE2EEncoder
from vcframe_ge2e.spec import GE2EConfig
from vcframe_ge2e.train import app

from vcframe.checkpoints import load_state

runner = CliRunner()


def tone(seconds: float, f0: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.2 * np.sin(2 * np.pi * f0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def write(path, seconds=2.0, f0=150.0, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), tone(seconds, f0), rate)


def test_layouts_and_preprocessing_skip_done_work(tmp_path):
    libri = tmp_path / "LibriSpeech"
    write(libri / "train-x" / "19" / "198" / "19-198-0000.flac")
    write(libri / "train-x" / "19" / "227" / "19-227-0001.flac", f0=160)
    write(libri / "dev-y" / "84" / "121" / "84-121-0000.flac", f0=220)
    vox = tmp_path / "vox"
    write(vox / "id10001" / "1zcIwhmdeo4" / "00001.wav")
    write(vox / "id10001" / "7gWzIy6yIIk" / "00002.wav")
    generic = tmp_path / "generic"
    write(generic / "alice" / "a.wav")
    write(generic / "bob" / "b.flac", seconds=0.5)  # too short after preprocessing: skipped
    assert sorted({u.speaker for u in find_utterances(libri)}) == ["LibriSpeech_19", "LibriSpeech_84"]
    assert {u.speaker for u in find_utterances(libri / "train-x", "librispeech")} == {"train-x_19"}
    assert [u.speaker for u in find_utterances(vox)] == ["vox_id10001"] * 2
    assert sorted(u.speaker for u in find_utterances(generic, "generic")) == ["generic_alice", "generic_bob"]
    out = tmp_path / "mels"
    counts = preprocess_corpus([libri, vox, generic], out, workers=2, vad="energy")
    assert counts == {"done": 6, "skipped": 1, "existing": 0}
    mel = np.load(out / "LibriSpeech_19" / "19-198-0000.npy")
    assert mel.dtype == np.float32 and mel.shape[1] == 40 and mel.shape[0] >= 160
    assert preprocess_corpus([libri, vox, generic], out, vad="energy")["existing"] == 6
    assert "b.flac" in (out / "_skipped.txt").read_text()


@pytest.fixture
def mel_corpus(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "mels"
    for speaker in range(6):
        (root / f"spk{speaker}").mkdir(parents=True)
        for utterance in range(2):
            mel = rng.exponential(1.0 + speaker, size=(60 + 10 * utterance, 40)).astype(np.float32)
            np.save(root / f"spk{speaker}" / f"u{utterance}.npy", mel)
    return root


def fit_args(data, run_dir, max_steps, *extra):
    return [
        "fit",
        "--data",
        str(data),
        "--run-dir",
        str(run_dir),
        "--preset",
        "tiny",
        "--speakers-per-batch",
        "3",
        "--utterances-per-speaker",
        "3",
        "--partial-frames",
        "24",
        "--lr",
        "1e-2",
        "--max-steps",
        str(max_steps),
        "--eval-every",
        "2",
        "--save-every",
        "2",
        "--val-speakers",
        "2",
        "--threads",
        "1",
        *extra,
    ]


def test_sampler_is_reproducible_from_its_state(mel_corpus):
    corpus = MelCorpus(mel_corpus)
    sampler = SpeakerBatchSampler(corpus, 3, 4, 24, seed=1)
    state = sampler.state()
    first = sampler.next_batch()
    assert first.shape == (12, 24, 40)
    sampler.set_state(state)
    np.testing.assert_array_equal(sampler.next_batch(), first)


def test_resume_continues_exactly(mel_corpus, tmp_path):
    straight, halted = tmp_path / "straight", tmp_path / "halted"
    result = runner.invoke(app, fit_args(mel_corpus, straight, 4))
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, fit_args(mel_corpus, halted, 2)).exit_code == 0
    result = runner.invoke(app, fit_args(mel_corpus, halted, 4, "--resume"))
    assert result.exit_code == 0, result.output
    assert "resumed at step 2" in result.output
    first = torch.load(straight / "checkpoint.pt", weights_only=True)
    second = torch.load(halted / "checkpoint.pt", weights_only=True)
    assert first["step"] == second["step"] == 4
    assert first["history"] == second["history"]
    for key, value in first["model_state"].items():
        assert torch.equal(value, second["model_state"][key]), key
    for index, state in first["optimizer_state"]["state"].items():
        assert torch.equal(state["exp_avg_sq"], second["optimizer_state"]["state"][index]["exp_avg_sq"])
    assert first["rng"]["sampler"] == second["rng"]["sampler"]
    assert (straight / "projection_000004.png").stat().st_size > 0
    assert "val_eer" in first["history"][-1]


def test_refuses_to_overwrite_or_resume_with_other_settings(mel_corpus, tmp_path):
    run = tmp_path / "run"
    assert runner.invoke(app, fit_args(mel_corpus, run, 2)).exit_code == 0
    assert runner.invoke(app, fit_args(mel_corpus, run, 4)).exit_code != 0
    changed = fit_args(mel_corpus, run, 4, "--resume")
    changed[changed.index("--lr") + 1] = "1e-3"
    result = runner.invoke(app, changed)
    assert result.exit_code != 0 and "lr" in result.output


def test_export_loads_as_component(mel_corpus, tmp_path):
    run = tmp_path / "run"
    assert runner.invoke(app, fit_args(mel_corpus, run, 2)).exit_code == 0
    out = tmp_path / "ge2e_tiny.safetensors"
    result = runner.invoke(app, ["export", str(run / "checkpoint.pt"), str(out), "--training-data", "random mels"])
    assert result.exit_code == 0, result.output
    state, metadata = load_state(out)
    assert metadata["steps"] == 2 and metadata["config"]["hidden_size"] == 16
    assert metadata["embedding_spec"]["space"] == "ge2e/rtvc" and metadata["mel_spec"]["n_mels"] == 40
    assert metadata["training_data"] == "random mels" and metadata["license"]
    encoder = GE2EEncoder(GE2EConfig(preset="tiny", checkpoint=str(out), vad="off"))
    saved = torch.load(run / "checkpoint.pt", weights_only=True)["model_state"]
    assert torch.equal(encoder.network.lstm.weight_hh_l0, saved["lstm.weight_hh_l0"])


@pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None, reason="resemblyzer weights not installed")
def test_fine_tune_from_pretrained_default_is_one_flag(mel_corpus, tmp_path):
    args = fit_args(mel_corpus, tmp_path / "ft", 1, "--init-from", "default")
    args[args.index("--preset") + 1] = "rtvc"
    args[args.index("--lr") + 1] = "1e-6"
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    tuned = torch.load(tmp_path / "ft" / "checkpoint.pt", weights_only=True)["model_state"]
    pretrained = GE2EEncoder(GE2EConfig(vad="off")).network.state_dict()
    assert (tuned["linear.weight"] - pretrained["linear.weight"]).abs().max() < 1e-4


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "vcframe_ge2e.train", "fit", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--max-steps" in result.stdout


def test_resume_removes_what_a_killed_checkpoint_write_left(mel_corpus, tmp_path):
    run = tmp_path / "run"
    assert runner.invoke(app, fit_args(mel_corpus, run, 2)).exit_code == 0
    stale = run / ".checkpoint.pt.k1ll3d.pt"  # torch.save into atomic_path's temporary, killed half-way
    stale.write_bytes(b"\0" * 65536)
    result = runner.invoke(app, fit_args(mel_corpus, run, 3, "--resume"))
    assert result.exit_code == 0, result.output
    assert not stale.exists() and "stale checkpoint temporar" in result.output
