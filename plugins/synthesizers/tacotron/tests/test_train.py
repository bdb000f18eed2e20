"""Preprocessing, exact resume, GTA export and safetensors export of the trainer (tiny preset)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import torch
from typer.testing import CliRunner
from vcframe_tacotron.preprocess import find_utterances
from vcframe_tacotron.train import app, bucketed_batches, parse_schedule

from vcframe.errors import CheckpointError
from vcframe.testing import tone, write_tone_corpus

RUNNER = CliRunner()
TEXTS = ["Hello there.", "One two three.", "A cat sat.", "Good morning to you."]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tone_corpus(tmp_path_factory.mktemp("corpus"), TEXTS, lab_every_other=True)


@pytest.fixture(scope="module")
def prepared(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    result = RUNNER.invoke(app, ["preprocess", str(corpus), "--out", str(out), "--encoder", "random-per-speaker"])
    assert result.exit_code == 0, result.output
    return out


def test_corpus_layouts(tmp_path: Path, corpus: Path) -> None:
    assert len(find_utterances(corpus)) == 7
    libri = tmp_path / "libri" / "train-clean-100" / "19" / "198"
    libri.mkdir(parents=True)
    soundfile.write(libri / "19-198-0000.flac", tone(0.3, 150), 16000)
    (libri / "19-198.trans.txt").write_text("19-198-0000 HELLO WORLD\n19-198-0001 MISSING AUDIO\n")
    found = find_utterances(tmp_path / "libri")
    assert [(u.id, u.speaker, u.text) for u in found] == [("19-198-0000", "19", "HELLO WORLD")]
    lj = tmp_path / "lj"
    (lj / "wavs").mkdir(parents=True)
    soundfile.write(lj / "wavs" / "LJ001-0001.wav", tone(0.3, 150), 16000)
    (lj / "metadata.csv").write_text("LJ001-0001|Printing, in 1 sense|Printing, in one sense\n")
    assert [(u.id, u.text) for u in find_utterances(lj)] == [("LJ001-0001", "Printing, in one sense")]


def test_preprocess_manifest_and_resume(prepared: Path, corpus: Path) -> None:
    rows = [json.loads(line) for line in (prepared / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 7
    mel = np.load(prepared / rows[0]["mel"])
    assert mel.shape == (80, rows[0]["frames"]) and mel.dtype == np.float32
    assert np.load(prepared / rows[0]["embed"]).shape == (256,)
    stamp = (prepared / rows[0]["mel"]).stat().st_mtime_ns
    result = RUNNER.invoke(app, ["preprocess", str(corpus), "--out", str(prepared), "--encoder", "random-per-speaker"])
    assert result.exit_code == 0, result.output
    assert (prepared / rows[0]["mel"]).stat().st_mtime_ns == stamp  # kept, not recomputed


def _fit(data: Path, run_dir: Path, *extra: str, schedule: str | None = "2,1e-3,2,2;3,5e-4,100,3") -> str:
    """``fit`` of the tiny preset (``schedule=None``: no ``--schedule``); returns what it printed."""
    args = [
        "fit",
        "--data",
        str(data),
        "--run-dir",
        str(run_dir),
        "--preset",
        "tiny",
        *(["--schedule", schedule] if schedule is not None else []),
        "--checkpoint-every",
        "100",
        "--eval-every",
        "3",
        "--log-every",
        "1",
        "--guided-attention",
        "1.0",
        *extra,
    ]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_resume_is_exact(prepared: Path, tmp_path: Path) -> None:
    _fit(prepared, tmp_path / "straight", "--max-steps", "5")
    _fit(prepared, tmp_path / "resumed", "--max-steps", "2")
    first_seconds = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["train_seconds"]
    output = _fit(prepared, tmp_path / "resumed", "--max-steps", "5", "--resume")
    assert "schedule changed" not in output  # the same --schedule as saved: nothing changes
    straight = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert straight["step"] == resumed["step"] == 5
    for key, value in straight["model_state"].items():
        assert torch.equal(value, resumed["model_state"][key]), key
    assert torch.equal(straight["rng"]["torch"], resumed["rng"]["torch"])
    # the training time adds up over the resume: the log and the checkpoint continue from the first run's
    assert 0 < first_seconds < resumed["train_seconds"]
    resumed_log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert resumed_log[-1]["seconds"] > first_seconds
    log = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    assert [row["r"] for row in log] == [2, 2, 3, 3, 3] and "guided_loss" in log[0]
    assert (tmp_path / "straight" / "samples" / "mel_0000003.npy").is_file()


def _checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)


def test_resume_with_another_schedule_applies_it(prepared: Path, tmp_path: Path) -> None:
    """--resume --schedule: the given schedule replaces the saved one from the checkpoint's step on (lr here;
    the batch size stays, so the running epoch goes on), says so and is saved."""
    run_dir = tmp_path / "run"
    _fit(prepared, run_dir, "--max-steps", "2", schedule="2,1e-3,100,2")
    before = _checkpoint(run_dir)
    assert (before["epoch"], before["batch_in_epoch"], before["epoch_batch_size"]) == (0, 2, 2)
    output = _fit(prepared, run_dir, "--max-steps", "3", "--resume", schedule="2,1e-3,2,2;2,2e-4,100,2")
    assert "schedule changed at step 2: 2,0.001,100,2 -> 2,0.001,2,2;2,0.0002,100,2" in output
    assert "epoch 0 goes on at batch 2" in output
    after = _checkpoint(run_dir)
    assert after["optimizer_state"]["param_groups"][0]["lr"] == 2e-4
    assert after["train"]["schedule"] == [[2, 1e-3, 2, 2], [2, 2e-4, 100, 2]]
    assert after["train"]["schedule_changes"] == [
        {"step": 2, "old": [[2, 1e-3, 100, 2]], "new": [[2, 1e-3, 2, 2], [2, 2e-4, 100, 2]]}
    ]
    assert (after["step"], after["epoch"], after["batch_in_epoch"]) == (3, 0, 3)
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [row["lr"] for row in log] == [1e-3, 1e-3, 2e-4]
    assert json.loads((run_dir / "config.json").read_text())["train"]["schedule"] == after["train"]["schedule"]

    # without --schedule the saved (new) schedule goes on, and the record of the change stays
    output = _fit(prepared, run_dir, "--max-steps", "4", "--resume", schedule=None)
    assert "schedule changed" not in output
    kept = _checkpoint(run_dir)
    assert kept["train"]["schedule"] == after["train"]["schedule"]
    assert kept["train"]["schedule_changes"] == after["train"]["schedule_changes"]
    assert kept["optimizer_state"]["param_groups"][0]["lr"] == 2e-4 and kept["step"] == 4


def test_resume_on_other_data_says_so_and_records_it(prepared: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _fit(prepared, run_dir, "--max-steps", "2")
    other = tmp_path / "other_prep"
    shutil.copytree(prepared, other)
    output = _fit(other, run_dir, "--max-steps", "3", "--resume")
    assert f"training data changed at step 2: {prepared.resolve()} -> {other.resolve()}" in output
    change = [{"step": 2, "old": str(prepared.resolve()), "new": str(other.resolve())}]
    assert _checkpoint(run_dir)["train"]["data_changes"] == change
    output = _fit(other, run_dir, "--max-steps", "4", "--resume")  # the same data again: the record stays
    assert "training data changed" not in output and _checkpoint(run_dir)["train"]["data_changes"] == change


def test_resume_with_another_batch_size_starts_a_fresh_epoch(prepared: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _fit(prepared, run_dir, "--max-steps", "2", schedule="2,1e-3,100,2")
    output = _fit(prepared, run_dir, "--max-steps", "3", "--resume", schedule="2,1e-3,100,3")
    assert "schedule changed at step 2" in output and "fresh epoch 1 at batch 3" in output
    after = _checkpoint(run_dir)
    assert (after["step"], after["epoch"], after["batch_in_epoch"], after["epoch_batch_size"]) == (3, 1, 1, 3)
    assert after["train"]["schedule"] == [[2, 1e-3, 100, 3]]


def test_set_epoch_batch_size() -> None:
    from vcframe_tacotron.train import set_epoch_batch_size

    position = {"epoch": 3, "batch_in_epoch": 11, "epoch_batch_size": 16}
    assert not set_epoch_batch_size(position, 16) and position == {
        "epoch": 3,
        "batch_in_epoch": 11,
        "epoch_batch_size": 16,
    }
    assert set_epoch_batch_size(position, 64) and position == {"epoch": 4, "batch_in_epoch": 0, "epoch_batch_size": 64}


def test_valid_data_is_logged_and_leaves_training_as_it_was(prepared: Path, tmp_path: Path) -> None:
    """--valid-data: valid-frame losses every --valid-every steps into valid.jsonl, the numbers the validation
    measure gives on the checkpoint of that step; the weights and random states end as without it."""
    from vcframe_tacotron.train import _load_run as load_run
    from vcframe_tacotron.train import held_out_set

    _fit(prepared, tmp_path / "plain", "--max-steps", "4", "--masking", "clean")
    output = _fit(
        prepared,
        tmp_path / "checked",
        "--max-steps",
        "4",
        "--masking",
        "clean",
        "--valid-data",
        str(prepared),
        "--valid-every",
        "2",
        "--valid-clips",
        "5",
        "--backup-every",
        "2",
    )
    plain, checked = _checkpoint(tmp_path / "plain"), _checkpoint(tmp_path / "checked")
    for key, value in plain["model_state"].items():  # batch norm running statistics included
        assert torch.equal(value, checked["model_state"][key]), key
    assert torch.equal(plain["rng"]["torch"], checked["rng"]["torch"])
    assert torch.equal(plain["rng"]["numpy"]["keys"], checked["rng"]["numpy"]["keys"])
    records = [json.loads(line) for line in (tmp_path / "checked" / "valid.jsonl").read_text().splitlines()]
    assert [(row["step"], row["clips"], row["data"]) for row in records] == [
        (2, 5, str(prepared)),
        (4, 5, str(prepared)),
    ]
    assert output.count("valid step=") == 2
    assert not (tmp_path / "plain" / "valid.jsonl").exists()
    # the logged numbers are the measure's on the step-2 checkpoint (the same clips as eval_synthesizer.py's)
    config, network, _ = load_run(tmp_path / "checked")
    network.load_state_dict(
        torch.load(tmp_path / "checked" / "checkpoint_0000002.pt", weights_only=True)["model_state"]
    )
    network.r = 2  # the r of the step just done (the schedule's first stage runs to step 2)
    measured = held_out_set(prepared, config, 5, clean=True).measure(network, 2, torch.device("cpu"))
    assert measured == records[0] and measured["decoder_mse"] > 0


def test_valid_data_of_another_embedding_is_refused(prepared: Path, tmp_path: Path, vcframe_cli: Any) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for name in ("mels", "embeds"):
        (other / name).symlink_to(prepared / name)
    (other / "manifest.jsonl").write_text((prepared / "manifest.jsonl").read_text())
    info = json.loads((prepared / "info.json").read_text())
    info["embedding_spec"] = {"space": "ge2e/rtvc", "dim": 256, "l2_normalized": True}
    (other / "info.json").write_text(json.dumps(info))
    result = vcframe_cli(
        *("train", "synthesizer", "fit", "--data", str(prepared), "--run-dir", str(tmp_path / "run")),
        *("--preset", "tiny", "--valid-data", str(other), "--max-steps", "1"),
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "has ge2e/rtvc embeddings (dim 256) but the run trains on random/per-speaker" in result.stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_gta_and_export(prepared: Path, tmp_path: Path, vcframe_cli: Any) -> None:
    from vcframe_tacotron.model import TacotronSynthesizer
    from vcframe_tacotron.spec import SPEC

    run_dir = tmp_path / "run"
    _fit(prepared, run_dir, "--max-steps", "1", "--masking", "clean")
    result = RUNNER.invoke(
        app, ["gta", "--run-dir", str(run_dir), "--data", str(prepared), "--out", str(tmp_path / "gta")]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "gta" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 7
    assert np.load(tmp_path / "gta" / rows[0]["gta"]).shape == (80, rows[0]["frames"])
    pairs = [line.split("|") for line in (tmp_path / "gta" / "pairs.txt").read_text().splitlines()]
    assert [(Path(audio).name, mel) for audio, mel in pairs] == [(Path(row["audio"]).name, row["gta"]) for row in rows]
    assert all(Path(audio).is_absolute() and Path(audio).is_file() for audio, _ in pairs)
    exported = tmp_path / "tacotron.safetensors"
    result = RUNNER.invoke(
        app,
        ["export", "--run-dir", str(run_dir), "--out", str(exported), "--training-data", "tones"]
        + ["--inference-dropout", "0"],
    )
    assert result.exit_code == 0, result.output
    config = SPEC.make_config(
        {
            **SPEC.test_config,
            "checkpoint": str(exported),
            "embedding": {"space": "random/per-speaker", "dim": 256, "l2_normalized": True},
        }
    )
    synthesizer = TacotronSynthesizer(config)
    assert synthesizer.checkpoint_metadata["steps"] == 1 and synthesizer.checkpoint_metadata["training_data"] == "tones"
    assert synthesizer.checkpoint_metadata["synthesis"] == {"inference_dropout": 0.0}
    assert synthesizer.network.r == 2
    # preset 'auto' (the default) takes the sizes the export recorded; an explicit other preset is refused
    auto = TacotronSynthesizer(config.model_copy(update={"preset": "auto"}))
    assert auto.config.preset == "tiny" and auto.config.sizes() == synthesizer.config.sizes()
    with pytest.raises(CheckpointError, match="is not a Tacotron of this layout"):
        TacotronSynthesizer(config.model_copy(update={"preset": "small"}))
    # the export gives the run's GTA mels; exactly one source; another embedding space is refused
    result = RUNNER.invoke(
        app, ["gta", "--checkpoint", str(exported), "--data", str(prepared), "--out", str(tmp_path / "gta_export")]
    )
    assert result.exit_code == 0, result.output
    for row in rows:
        np.testing.assert_allclose(
            np.load(tmp_path / "gta_export" / row["gta"]), np.load(tmp_path / "gta" / row["gta"]), atol=1e-5
        )
    for sources in ([], ["--run-dir", str(run_dir), "--checkpoint", str(exported)]):
        result = vcframe_cli("train", "synthesizer", "gta", *sources, "--data", str(prepared), "--out", str(tmp_path))
        assert result.exit_code == 2 and "give exactly one of --run-dir and --checkpoint" in result.stderr
    result = vcframe_cli(
        *("train", "synthesizer", "gta", "--checkpoint", "default", "--data", str(prepared)),
        *("--out", str(tmp_path / "gta_default")),
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "ge2e/rtvc" in result.stderr and "random/per-speaker" in result.stderr
    assert not (tmp_path / "gta_default").exists()


def test_schedule_and_buckets() -> None:
    assert parse_schedule("2,1e-3,10,4;3,1e-4,20,8") == [(2, 1e-3, 10, 4), (3, 1e-4, 20, 8)]
    frames = [5, 50, 6, 51, 7, 52]
    batches = bucketed_batches(frames, 3, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(abs(frames[b[0]] - frames[b[-1]]) <= 2 for b in batches)
    assert batches == bucketed_batches(frames, 3, seed=1, epoch=0)


def test_module_entry_point_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "vcframe_tacotron.train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "fit" in result.stdout


def test_guided_attention_loss_prefers_the_diagonal() -> None:
    from vcframe_tacotron.loss import guided_attention_loss

    text_lengths, decoder_lengths = torch.tensor([10]), torch.tensor([10])
    diagonal = torch.eye(10)[None]
    flat = torch.full((1, 10, 10), 0.1)
    assert float(guided_attention_loss(diagonal, text_lengths, decoder_lengths)) < 0.01
    assert 0.3 < float(guided_attention_loss(flat, text_lengths, decoder_lengths)) < 1
    on_padding = torch.zeros(1, 10, 12)
    on_padding[:, :, 11] = 1.0  # all the mass on a padded character
    assert float(guided_attention_loss(on_padding, text_lengths, decoder_lengths)) == 1.0


def test_resume_after_a_kill_cleans_temporaries_and_repeats_no_log_row(prepared: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _fit(prepared, run_dir, "--max-steps", "2")
    # what a kill during step 4 leaves (checkpoint at step 2): log rows past the checkpoint, a torn row, and
    # the temporaries of checkpoint writes cut short (the run checkpoint and a backup)
    with open(run_dir / "log.jsonl", "a") as log:
        log.write(json.dumps({"step": 3, "loss": 9.0}) + "\n" + '{"step": 4, "lo')
    (run_dir / "valid.jsonl").write_text(json.dumps({"step": 2, "loss": 1.0}) + "\n" + json.dumps({"step": 3}) + "\n")
    stale = [run_dir / ".checkpoint.pt.k1ll3d.pt", run_dir / ".checkpoint_0000004.pt.x9q2z.pt"]
    for path in stale:
        path.write_bytes(b"\0" * 65536)
    output = _fit(prepared, run_dir, "--max-steps", "4", "--resume")
    assert "log.jsonl: 2 rows after step 2 removed" in output
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3, 4] and log[2]["loss"] != 9.0
    assert [json.loads(line)["step"] for line in (run_dir / "valid.jsonl").read_text().splitlines()] == [2]
    assert not any(path.exists() for path in stale)


def _one_step_weights(prepared: Path, tmp_path: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """The model state after one step of the tiny preset, and the same saved as --init weights."""
    from vcframe.checkpoints import save_safetensors

    _fit(prepared, tmp_path / "base", "--max-steps", "1")
    start = _checkpoint(tmp_path / "base")["model_state"]
    init = tmp_path / "init.safetensors"
    save_safetensors(start, init)
    return start, init


def test_train_only_speaker_moves_only_the_columns_that_read_the_embedding(prepared: Path, tmp_path: Path) -> None:
    """--train-only speaker: after steps from --init weights, every weight equals its start except the column blocks
    of speaker_path_columns (the embedding's 256 inputs of four weights), which all moved; the setting is saved and
    kept on --resume (batch norms' running statistics included); an unknown value is refused."""
    from vcframe_tacotron.train import _load_run, speaker_path_columns

    start, init = _one_step_weights(prepared, tmp_path)
    run_dir = tmp_path / "speaker"
    output = _fit(prepared, run_dir, "--max-steps", "2", "--init", str(init), "--train-only", "speaker")
    assert "training only the speaker path" in output
    trained = _checkpoint(run_dir)
    assert trained["train"]["train_only"] == "speaker"
    blocks = speaker_path_columns(_load_run(run_dir)[1])
    assert set(blocks) == {
        "encoder_proj.weight",
        "decoder.attn_rnn.weight_ih",
        "decoder.rnn_input.weight",
        "decoder.stop_proj.weight",
    }
    floating = {key for key, value in start.items() if value.is_floating_point()}
    moved = {key for key in floating if not torch.equal(trained["model_state"][key], start[key])}
    assert moved == set(blocks)
    for name, block in blocks.items():
        after, before = trained["model_state"][name], start[name]
        assert block.stop - block.start == 256 and block.stop <= after.shape[1]
        outside = torch.ones(after.shape[1], dtype=torch.bool)
        outside[block] = False
        assert torch.equal(after[:, outside], before[:, outside]), name  # the frozen columns stay exact
        assert not torch.equal(after[:, block], before[:, block]), name

    _fit(prepared, run_dir, "--max-steps", "3", "--resume")
    resumed = _checkpoint(run_dir)
    assert resumed["step"] == 3 and resumed["train"]["train_only"] == "speaker"
    for key in floating - set(blocks):
        assert torch.equal(resumed["model_state"][key], start[key]), key
    bad = ["fit", "--data", str(prepared), "--run-dir", str(tmp_path / "bad"), "--preset", "tiny"]
    result = RUNNER.invoke(app, [*bad, "--train-only", "postnet"])
    assert result.exit_code != 0
    assert "train_only must be one of all, speaker" in str(result.exception) + result.output


def test_train_only_voice_trains_the_decoder_after_attention_and_keeps_text_and_attention(
    prepared: Path, tmp_path: Path
) -> None:
    """--train-only voice: the speaker path plus the decoder after attention and the post-net move; the text encoder,
    the attention (GRU, energies, pre-net) and the speaker path's text columns keep their values exactly."""
    from vcframe_tacotron.train import VOICE_MODULES, _load_run, speaker_path_columns

    start, init = _one_step_weights(prepared, tmp_path)
    run_dir = tmp_path / "voice"
    output = _fit(prepared, run_dir, "--max-steps", "2", "--init", str(init), "--train-only", "voice")
    assert "training only the speaker path and the decoder after attention" in output
    trained = _checkpoint(run_dir)["model_state"]
    assert _checkpoint(run_dir)["train"]["train_only"] == "voice"
    prefixes = ("encoder.", "decoder.attn_net.", "decoder.prenet.")
    # (num_batches_tracked counts on; with momentum 0 it moves no statistic)
    frozen = [key for key, value in start.items() if key.startswith(prefixes) and value.is_floating_point()]
    frozen += ["decoder.attn_rnn.weight_hh", "decoder.attn_rnn.bias_ih", "decoder.attn_rnn.bias_hh"]
    for key in frozen:
        assert torch.equal(trained[key], start[key]), key
    for key in (
        "decoder.res_rnn1.weight_ih",
        "decoder.res_rnn2.weight_hh",
        "decoder.mel_proj.weight",
        "post_proj.weight",
    ):
        assert key.startswith(VOICE_MODULES) and not torch.equal(trained[key], start[key]), key
    for name, block in speaker_path_columns(_load_run(run_dir)[1]).items():
        if name.startswith(VOICE_MODULES):
            continue  # trained whole
        outside = torch.ones(trained[name].shape[1], dtype=torch.bool)
        outside[block] = False
        assert torch.equal(trained[name][:, outside], start[name][:, outside]), name
        assert not torch.equal(trained[name][:, block], start[name][:, block]), name


def _distance(state: dict[str, torch.Tensor], start: dict[str, torch.Tensor], keys: list[str]) -> float:
    total = sum(float(((state[key].float() - start[key].float()) ** 2).sum()) for key in keys)
    return (total / sum(start[key].numel() for key in keys)) ** 0.5


def test_anchor_decay_pulls_the_weights_back_to_the_init_weights(prepared: Path, tmp_path: Path) -> None:
    """--anchor-decay D: after each step every trained weight moves lr x D of the way back to its --init value.
    lr x D = 1 undoes every step exactly; a smaller D keeps the weights nearer their start than the same steps
    without it (logged as anchor_rms); the anchor is saved, so --resume is exact; the value is kept on --resume
    unless given, and a change is recorded; without --init, or on resuming a run that has no anchor, it is refused."""
    start, init = _one_step_weights(prepared, tmp_path)
    schedule = "2,1e-3,100,2"
    free = tmp_path / "free"
    _fit(prepared, free, "--max-steps", "3", "--init", str(init), schedule=schedule)
    undone = tmp_path / "undone"
    output = _fit(
        prepared, undone, "--max-steps", "3", "--init", str(init), "--anchor-decay", "1000", schedule=schedule
    )
    assert "anchored to the --init weights: decay 1000" in output
    for key, value in start.items():
        if value.is_floating_point() and not key.endswith(("running_mean", "running_var")):
            assert torch.equal(_checkpoint(undone)["model_state"][key], value), key
    anchored = tmp_path / "anchored"
    _fit(prepared, anchored, "--max-steps", "3", "--init", str(init), "--anchor-decay", "300", schedule=schedule)
    saved = _checkpoint(anchored)
    assert saved["train"]["anchor_decay"] == 300
    for key, value in saved["anchor_state"].items():
        assert torch.equal(value, start[key].float()), key
    weights = list(saved["anchor_state"])  # the parameters (batch-norm statistics are buffers: not anchored)
    free_distance = _distance(_checkpoint(free)["model_state"], start, weights)
    anchored_distance = _distance(saved["model_state"], start, weights)
    assert 0 < anchored_distance < 0.9 * free_distance
    log = [json.loads(line) for line in (anchored / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3] and all(row["anchor_rms"] > 0 for row in log)

    # exact resume: 1 step, then resumed (the decay kept from the checkpoint) to 3
    resumed = tmp_path / "resumed"
    _fit(prepared, resumed, "--max-steps", "1", "--init", str(init), "--anchor-decay", "300", schedule=schedule)
    output = _fit(prepared, resumed, "--max-steps", "3", "--resume", schedule=schedule)
    assert "anchored to the --init weights: decay 300" in output and "anchor decay changed" not in output
    for key, value in saved["model_state"].items():
        assert torch.equal(_checkpoint(resumed)["model_state"][key], value), key
    output = _fit(prepared, resumed, "--max-steps", "4", "--resume", "--anchor-decay", "100", schedule=schedule)
    assert "anchor decay changed at step 3: 300.0 -> 100.0" in output
    assert _checkpoint(resumed)["train"]["anchor_decay_changes"] == [{"step": 3, "old": 300, "new": 100}]

    base = ["fit", "--data", str(prepared), "--preset", "tiny", "--schedule", schedule]
    result = RUNNER.invoke(app, [*base, "--run-dir", str(tmp_path / "no_init"), "--anchor-decay", "10"])
    assert result.exit_code != 0
    assert "pulls the weights toward the --init weights, and none were given" in str(result.exception)
    result = RUNNER.invoke(app, [*base, "--run-dir", str(free), "--resume", "--anchor-decay", "10", "--max-steps", "4"])
    assert result.exit_code != 0
    assert "this run started without an anchor" in str(result.exception)
    result = RUNNER.invoke(
        app, [*base, "--run-dir", str(tmp_path / "big"), "--init", str(init), "--anchor-decay", "2000"]
    )
    assert result.exit_code != 0
    assert "lr x decay 2 > 1" in str(result.exception)
