"""average_checkpoints.py on small made-up checkpoints: the mean of the float weights, integer tensors kept, the
rest from the last checkpoint, refusals of checkpoints that are not one model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recipes.demo.tests._recipes import load

average = load("average_checkpoints")


def _checkpoint(path: Path, scale: float, step: int) -> Path:
    state = {
        "linear.weight": torch.full((2, 3), scale),
        "half": torch.full((4,), scale, dtype=torch.float16),
        "step": torch.tensor([step]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_state": state, "optimizer_state": {"marker": step}, "step": step}, path)
    (path.parent / "config.json").write_text('{"preset": "small"}')
    return path


def test_float_weights_are_averaged_and_the_rest_comes_from_the_last(tmp_path: Path) -> None:
    paths = [
        _checkpoint(tmp_path / f"s{step}" / "checkpoint.pt", scale, step)
        for scale, step in ((1.0, 100), (2.0, 200), (6.0, 300))
    ]
    assert average.main([*map(str, paths), "--out", str(tmp_path / "avg")]) == 0
    result = torch.load(tmp_path / "avg" / "checkpoint.pt", weights_only=False)
    assert torch.allclose(result["model_state"]["linear.weight"], torch.full((2, 3), 3.0))
    assert result["model_state"]["half"].dtype == torch.float16
    assert torch.allclose(result["model_state"]["half"].float(), torch.full((4,), 3.0))
    assert int(result["model_state"]["step"]) == 300 and result["step"] == 300
    assert result["optimizer_state"] == {"marker": 300}
    assert [entry["step"] for entry in result["averaged_from"]] == [100, 200, 300]
    assert (tmp_path / "avg" / "config.json").read_text() == '{"preset": "small"}'
    assert not [name for name in (tmp_path / "avg").iterdir() if name.name.startswith(".")]  # no temp file left


def test_checkpoints_of_different_models_are_refused(tmp_path: Path) -> None:
    one = _checkpoint(tmp_path / "a" / "checkpoint.pt", 1.0, 1)
    for folder, key, shape, refusal in (
        ("b", "linear.weight", (3, 3), "linear.weight: shapes differ"),
        ("c", "other.weight", (2, 3), "other weights"),
    ):
        wrong = tmp_path / folder / "checkpoint.pt"
        wrong.parent.mkdir()
        torch.save({"model_state": {key: torch.zeros(shape), "half": torch.zeros(4), "step": torch.tensor([2])}}, wrong)
        with pytest.raises(SystemExit, match=refusal):
            average.main([str(one), str(wrong), "--out", str(tmp_path / "avg")])
    with pytest.raises(SystemExit, match="at least two"):
        average.main([str(one), "--out", str(tmp_path / "avg")])
    with pytest.raises(SystemExit, match="not found"):
        average.main([str(one), str(tmp_path / "missing.pt"), "--out", str(tmp_path / "avg")])
    assert not (tmp_path / "avg" / "checkpoint.pt").exists()


def test_weighted_mean_with_exported_weights_first(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    exported = tmp_path / "shipped.safetensors"
    save_file(
        {
            "linear.weight": torch.full((2, 3), 1.0, dtype=torch.float16),
            "half": torch.full((4,), 1.0, dtype=torch.float16),
            "step": torch.tensor([7]),
        },
        str(exported),
        metadata={"steps": "8600"},
    )
    tuned = _checkpoint(tmp_path / "tuned" / "checkpoint.pt", 5.0, 300)
    assert average.main([str(exported), str(tuned), "--weights", "3", "1", "--out", str(tmp_path / "wise")]) == 0
    result = torch.load(tmp_path / "wise" / "checkpoint.pt", weights_only=False)
    weight = result["model_state"]["linear.weight"]
    assert weight.dtype == torch.float32  # the checkpoint's dtype, not the exported float16
    assert torch.allclose(weight, torch.full((2, 3), 2.0))  # 0.75 * 1 + 0.25 * 5
    assert int(result["model_state"]["step"]) == 300 and result["optimizer_state"] == {"marker": 300}
    assert [(entry["step"], entry["weight"]) for entry in result["averaged_from"]] == [(8600, 0.75), (300, 0.25)]
    with pytest.raises(SystemExit, match="last input must be"):
        average.main([str(tuned), str(exported), "--out", str(tmp_path / "other")])
    for weights, refusal in ((["1"], "one weight per checkpoint"), (["1", "0"], "positive")):
        with pytest.raises(SystemExit, match=refusal):
            average.main([str(exported), str(tuned), "--weights", *weights, "--out", str(tmp_path / "other")])
    assert not (tmp_path / "other").exists()


def test_hifigan_generators_are_averaged_and_export_reads_the_result(tmp_path: Path) -> None:
    """A real (tiny) HiFi-GAN run: its checkpoints keep the weights as ``generator``; the mean of two goes into the
    result, the discriminators and optimisers come from the last, and the trainer's export reads it."""
    from typer.testing import CliRunner
    from vcframe_hifigan.train import app

    from vcframe.testing import write_tone_corpus

    corpus = write_tone_corpus(tmp_path / "tones", ["a", "b"])
    run_dir = tmp_path / "run"
    tiny = [
        "-o",
        "upsample_rates=[8,5,5]",
        "-o",
        "upsample_kernel_sizes=[16,11,11]",
        "-o",
        "upsample_initial_channel=8",
    ]
    fit = ["fit", "--data", str(corpus), "--run-dir", str(run_dir), *tiny, "--disc-width", "0.125", "--batch-size", "2"]
    fit += ["--segment-frames", "8", "--max-steps", "2", "--checkpoint-every", "1", "--backup-every", "1"]
    fit += ["--sample-every", "0", "--precision", "fp32", "--threads", "1"]
    result = CliRunner().invoke(app, fit, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    first, second = run_dir / "checkpoint_0000001.pt", run_dir / "checkpoint_0000002.pt"
    assert average.main([str(first), str(second), "--out", str(tmp_path / "avg")]) == 0
    averaged = torch.load(tmp_path / "avg" / "checkpoint.pt", weights_only=False)
    one, two = (torch.load(path, weights_only=False) for path in (first, second))
    assert "model_state" not in averaged and averaged["step"] == 2
    name = next(key for key, value in one["generator"].items() if value.is_floating_point() and value.numel() > 1)
    assert not torch.equal(one["generator"][name], two["generator"][name])  # one step apart: the weights moved
    mean = (one["generator"][name] + two["generator"][name]) / 2
    assert torch.allclose(averaged["generator"][name], mean)
    assert all(torch.equal(averaged["mpd"][key], two["mpd"][key]) for key in two["mpd"])
    out = tmp_path / "avg.safetensors"
    result = CliRunner().invoke(app, ["export", "--run-dir", str(tmp_path / "avg"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


def test_a_checkpoint_without_model_weights_is_refused(tmp_path: Path) -> None:
    one = _checkpoint(tmp_path / "a" / "checkpoint.pt", 1.0, 1)
    other = tmp_path / "b" / "checkpoint.pt"
    other.parent.mkdir()
    torch.save({"weights": {"linear.weight": torch.zeros(2, 3)}, "step": 2}, other)
    with pytest.raises(SystemExit, match="'model_state' or 'generator'"):
        average.main([str(one), str(other), "--out", str(tmp_path / "avg")])
