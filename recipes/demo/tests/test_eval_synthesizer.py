"""Tests of recipes/demo/eval_synthesizer.py: teacher-forced valid-frame losses of Tacotron checkpoints."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner
from vcframe_tacotron.train import app as train_app

from recipes.demo.tests._recipes import load
from vcframe.testing import write_tone_corpus

evaluate = load("eval_synthesizer")
runner = CliRunner()
TEXTS = ["Hello there.", "One two three.", "A cat sat.", "Good morning to you."]


def invoke(*arguments: str | Path | int) -> Any:
    return runner.invoke(evaluate.app, [str(argument) for argument in arguments])


def table_rows(output: str) -> list[list[str]]:
    """The markdown table's body rows, as cells."""
    lines = [line for line in output.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| checkpoint | step | decoder MSE") and set(lines[1]) <= set("|- ")
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 tone clips of two speakers, preprocessed with random per-speaker embeddings (as the trainer's tests)."""
    root = write_tone_corpus(tmp_path_factory.mktemp("corpus"), TEXTS)
    out = tmp_path_factory.mktemp("prepared")
    result = runner.invoke(train_app, ["preprocess", str(root), "--out", str(out), "--encoder", "random-per-speaker"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def checkpoints(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(step 0, step 8) checkpoints of one tiny run with clean masking."""
    run_dir = tmp_path_factory.mktemp("run")
    arguments = ["fit", "--data", str(prepared), "--run-dir", str(run_dir), "--preset", "tiny", "-o", "r=2"]
    arguments += ["--schedule", "2,3e-3,100,3", "--masking", "clean", "--eval-every", "0", "--threads", "1"]
    for steps in (0, 8):
        result = runner.invoke(train_app, [*arguments, "--max-steps", str(steps), *(["--resume"] if steps else [])])
        assert result.exit_code == 0, result.output
        if steps == 0:
            shutil.copy(run_dir / "checkpoint.pt", run_dir / "step0.pt")
    return run_dir / "step0.pt", run_dir / "checkpoint.pt"


def test_table_json_and_determinism(prepared: Path, checkpoints: tuple[Path, Path], tmp_path: Path) -> None:
    start, trained = checkpoints
    report = tmp_path / "eval.json"
    arguments = ["--data", prepared, "--clips", 5, "--batch-size", 2, "--threads", 1]
    result = invoke(start, trained, trained, *arguments, "--json", report)
    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    assert [row[:2] for row in rows] == [[str(start), "0"], [str(trained), "8"], [str(trained), "8"]]
    values = [[float(cell) for cell in row[2:]] for row in rows]
    assert all(math.isfinite(value) and value > 0 for row in values for value in row)
    assert values[1] == values[2]  # the same checkpoint measures the same every time (torch seed 0 first)
    assert all(abs(before - after) > 1e-3 for before, after in zip(values[0], values[1], strict=True))

    saved = json.loads(report.read_text())
    assert (saved["clips"], saved["batch_size"], saved["seed"]) == (5, 2, 1) and len(saved["clip_ids"]) == 5
    assert [entry["step"] for entry in saved["results"]] == [0, 8, 8]
    assert round(saved["results"][1]["postnet_l1"], 4) == values[1][3]
    again = invoke(trained, *arguments)  # and in another invocation
    assert again.exit_code == 0 and table_rows(again.output)[0] == rows[1]
    other_clips = invoke(trained, *arguments, "--seed", 2)
    assert other_clips.exit_code == 0 and table_rows(other_clips.output)[0] != rows[1]


def test_clip_pick_is_valid_loss_py_s() -> None:
    from vcframe_tacotron.validation import pick_batches

    """random.seed(seed), clips sorted by frames, random.sample of positions, batches in sorted order."""
    import random

    frames = [50, 10, 30, 10, 70, 20, 40, 60]
    random.seed(3)
    order = sorted(range(len(frames)), key=lambda index: frames[index])
    picks = random.sample(range(len(order)), 5)
    expected = [[order[i] for i in sorted(picks)[k : k + 2]] for k in range(0, 5, 2)]
    assert pick_batches(frames, 5, 2, seed=3) == expected
    assert [len(batch) for batch in expected] == [2, 2, 1]


def test_registry_weights(prepared: Path, tmp_path: Path) -> None:
    """registry:tacotron-demo needs a corpus of its speaker embedding: refused on the random embeddings, measured
    on the same clips relabelled as GE2E ones."""
    message = one_line_error(invoke("registry:tacotron-demo", "--data", prepared, "--clips", 2))
    assert "speaker embedding" in message
    from vcframe.checkpoints import load_state, resolve

    _, metadata = load_state(resolve("synthesizer", "tacotron", "registry:tacotron-demo").path)
    relabelled = tmp_path / "ge2e_prep"
    shutil.copytree(prepared, relabelled)
    info = json.loads((relabelled / "info.json").read_text())
    info["embedding_spec"] = metadata["embedding_spec"]
    (relabelled / "info.json").write_text(json.dumps(info))
    result = invoke("registry:tacotron-demo", "--data", relabelled, "--clips", 2, "--batch-size", 2, "--threads", 1)
    assert result.exit_code == 0, result.output
    (row,) = table_rows(result.output)
    assert row[1] == f"{metadata['steps']:,}" and all(math.isfinite(float(cell)) for cell in row[2:])


def test_bad_input_is_one_line_and_exit_2(prepared: Path, checkpoints: tuple[Path, Path], tmp_path: Path) -> None:
    _, trained = checkpoints
    assert "manifest.jsonl" in one_line_error(invoke(trained, "--data", tmp_path / "missing"))
    assert "not found" in one_line_error(invoke(tmp_path / "missing.pt", "--data", prepared))
    assert "more than the corpus' 7 clips" in one_line_error(invoke(trained, "--data", prepared, "--clips", 8))
    assert "does not exist" in one_line_error(invoke(trained, "--data", prepared, "--json", tmp_path / "no" / "x.json"))

    vocoder_like = tmp_path / "vocoder.pt"  # another trainer's checkpoint: model_state, config as JSON text, step
    torch.save({"model_state": {"w": torch.zeros(2)}, "config": "{}", "step": 3}, vocoder_like)
    assert "is not a Tacotron training checkpoint" in one_line_error(invoke(vocoder_like, "--data", prepared))
    stranger = tmp_path / "stranger.pt"  # plain weights of another model
    torch.save({"model_state": {"w": torch.zeros(2)}}, stranger)
    assert "not a Tacotron" in one_line_error(invoke(stranger, "--data", prepared))
    pickled = tmp_path / "pickled.pt"  # weights_only=True refuses Python objects
    torch.save({"model_state": {"w": torch.zeros(2)}, "extra": Path("x")}, pickled)
    assert "refusing it" in one_line_error(invoke(pickled, "--data", prepared))
    assert not list(tmp_path.glob("**/.*.part"))
