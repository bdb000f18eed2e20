"""Tests of the GPU trip tool (recipes/demo/device_trip.py): mel coding, light checkpoints, snapshots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from recipes.demo.tests._recipes import load

LEVELS = 96
BANDS = 8


trip = load("device_trip")
runner = CliRunner()


def invoke(*arguments: str | Path | float) -> Any:
    return runner.invoke(trip.app, [str(argument) for argument in arguments])


@pytest.fixture
def prep(tmp_path: Path) -> Path:
    """A preprocessed folder of 3 clips: random mels in [-4, 4] with some frames exactly -4 (silence)."""
    folder = tmp_path / "prep"
    (folder / "mels").mkdir(parents=True)
    (folder / "embeds").mkdir()
    generator = np.random.default_rng(0)
    info = {"encoder": "test", "mel_spec": {"normalization": "symmetric", "max_abs_value": 4.0, "min_level_db": -100}}
    (folder / "info.json").write_text(json.dumps(info, indent=1))
    rows = []
    for index, frames in enumerate([17, 5, 30]):
        mel = generator.uniform(-4.0, 4.0, size=(BANDS, frames)).astype(np.float32)
        mel[:, :2] = -4.0
        mel[0, -1] = 4.0
        name = f"clip_{index}"
        np.save(folder / "mels" / f"{name}.npy", mel)
        np.save(folder / "embeds" / f"{name}.npy", generator.normal(size=6).astype(np.float32))
        rows.append(
            {
                "id": name,
                "speaker": "s",
                "audio": f"/corpus/{name}.wav",
                "text": f"clip number {index}",
                "mel": f"mels/{name}.npy",
                "embed": f"embeds/{name}.npy",
                "frames": frames,
            }
        )
    (folder / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def training_checkpoint(epoch_batch_size: int = 16) -> dict[str, Any]:
    """A checkpoint like the Tacotron trainer's, of a tiny model after one Adam step."""
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    network(torch.randn(4, 5)).pow(2).mean().backward()
    optimizer.step()
    return {
        "model_state": network.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "step": 5200,
        "epoch": 3,
        "batch_in_epoch": 11,
        "epoch_batch_size": epoch_batch_size,
        "rng": {"torch": torch.get_rng_state(), "numpy": {"pos": 3}},
        "train": {"preset": "small", "schedule": [[4, 1e-3, 20000, 16], [4, 5e-4, 40000, 16]], "seed": 0},
        "train_seconds": 123.5,
    }


def test_residual_coding_inverts_on_every_byte_value() -> None:
    codes = np.random.default_rng(1).integers(0, 256, size=(40, 9), dtype=np.uint8)
    residuals = trip.residuals_from_codes(codes)
    assert residuals.dtype == np.uint8 and not np.array_equal(residuals, codes)
    assert np.array_equal(trip.codes_from_residuals(residuals), codes)


def test_smooth_mels_code_to_small_residuals() -> None:
    """A plane (linear in band and frame) leaves residuals of 0 past the first row and column."""
    bands, frames = np.meshgrid(np.arange(6), np.arange(10))
    codes = (3 * bands + 2 * frames).astype(np.uint8)
    assert not trip.residuals_from_codes(codes)[1:, 1:].any()


def test_pack_unpack_round_trip(prep: Path, tmp_path: Path) -> None:
    checkpoint_path = tmp_path / "checkpoint.pt"
    torch.save(training_checkpoint(), checkpoint_path)
    out = tmp_path / "trip"
    result = invoke("pack", "--prep", prep, "--checkpoint", checkpoint_path, "--out", out, "--levels", LEVELS)
    assert result.exit_code == 0, result.output
    assert "MiB" in result.output and "largest quantisation error" in result.output
    assert {path.name for path in (out / "data").iterdir()} == {
        "mel_coding.json",
        "mel_residuals_0.xz",
        "mel_residuals_1.xz",
        "mel_frames.npy",
        "embeds.npy",
        "manifest.jsonl.xz",
        "info.json",
    }

    unpacked = tmp_path / "unpacked"
    result = invoke("unpack", "--trip", out, "--out", unpacked, "--checkpoint-out", tmp_path / "full.pt")
    assert result.exit_code == 0, result.output
    original_rows = [json.loads(line) for line in (prep / "manifest.jsonl").read_text().splitlines()]
    rows = [json.loads(line) for line in (unpacked / "manifest.jsonl").read_text().splitlines()]
    assert rows == [{key: value for key, value in row.items() if key != "audio"} for row in original_rows]
    assert (unpacked / "info.json").read_text() == (prep / "info.json").read_text()
    half_step = 4.0 / (LEVELS - 1)
    for row in original_rows:
        original, decoded = np.load(prep / row["mel"]), np.load(unpacked / row["mel"])
        assert decoded.dtype == np.float32 and decoded.shape == original.shape
        assert np.abs(decoded - original).max() <= half_step + 1e-6
        assert 0 < np.abs(decoded - original).max()  # quantised, not copied
        assert np.array_equal(decoded[original == -4.0], original[original == -4.0])
        assert np.array_equal(decoded[original == 4.0], original[original == 4.0])
        original_embed, embed = np.load(prep / row["embed"]), np.load(unpacked / row["embed"])
        assert embed.dtype == original_embed.dtype and np.array_equal(embed, original_embed)

    full = torch.load(tmp_path / "full.pt", weights_only=True)
    assert full["step"] == 5200 and full["epoch"] == 3 and full["batch_in_epoch"] == 11
    for state in full["optimizer_state"]["state"].values():
        assert state["exp_avg_sq"].dtype == torch.float32 and not state["exp_avg"].any()


def test_held_out_folders_travel_with_the_data(prep: Path, tmp_path: Path) -> None:
    """--valid-prep: each held-out folder coded into data/valid/<name>/, decoded by unpack --valid-out."""
    seen = tmp_path / "held" / "demo_seen_prep"
    shutil.copytree(prep, seen)
    out = tmp_path / "trip"
    result = invoke("pack", "--prep", prep, "--valid-prep", seen, "--out", out, "--levels", LEVELS)
    assert result.exit_code == 0, result.output
    assert "with its held-out folders" in result.output
    assert (out / "data" / "valid" / "demo_seen_prep" / "mel_coding.json").is_file()
    result = invoke("unpack", "--trip", out, "--out", tmp_path / "prep_out", "--valid-out", tmp_path / "valid")
    assert result.exit_code == 0, result.output
    decoded = tmp_path / "valid" / "demo_seen_prep"
    assert (decoded / "manifest.jsonl").read_text() == (tmp_path / "prep_out" / "manifest.jsonl").read_text()
    row = json.loads((decoded / "manifest.jsonl").read_text().splitlines()[0])
    assert np.abs(np.load(decoded / row["mel"]) - np.load(seen / row["mel"])).max() <= 4.0 / (LEVELS - 1) + 1e-6
    # packing again without it leaves no stale held-out folder behind
    assert invoke("pack", "--prep", prep, "--out", out, "--levels", LEVELS).exit_code == 0
    assert not (out / "data" / "valid").exists()

    alone = invoke("pack", "--valid-prep", seen, "--out", tmp_path / "other")
    assert alone.exit_code == 2 and "--valid-prep needs --prep" in alone.output
    twice = invoke("pack", "--prep", prep, "--valid-prep", seen, "--valid-prep", seen, "--out", tmp_path / "other")
    assert twice.exit_code == 2 and "need different names" in twice.output
    assert not (tmp_path / "other").exists()


def test_pack_batch_size_starts_a_fresh_epoch(tmp_path: Path) -> None:
    torch.save(training_checkpoint(epoch_batch_size=16), tmp_path / "checkpoint.pt")
    result = invoke("pack", "--checkpoint", tmp_path / "checkpoint.pt", "--out", tmp_path / "trip", "--batch-size", 64)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "trip" / "data").exists()
    light = torch.load(tmp_path / "trip" / "checkpoint" / "checkpoint_light.pt", weights_only=True)
    assert light["train"]["schedule"] == [[4, 1e-3, 20000, 64], [4, 5e-4, 40000, 64]]
    assert (light["epoch"], light["batch_in_epoch"], light["epoch_batch_size"]) == (4, 0, 64)
    for state in light["optimizer_state"]["state"].values():
        assert "exp_avg" not in state and state["exp_avg_sq"].dtype == torch.bfloat16

    same = training_checkpoint(epoch_batch_size=64)
    trip.set_batch_size(same, 64)
    assert (same["epoch"], same["batch_in_epoch"]) == (3, 11)  # unchanged batch size: the epoch goes on


def test_snapshot_restore(tmp_path: Path) -> None:
    original = training_checkpoint()
    torch.save(original, tmp_path / "checkpoint.pt")
    snapshot = tmp_path / "snapshot"
    result = invoke("snapshot", "--checkpoint", tmp_path / "checkpoint.pt", "--out", snapshot, "--part-mib", 0.0001)
    assert result.exit_code == 0, result.output
    parts = sorted(snapshot.glob("part_*.pt"))
    assert len(parts) > 1 and all(path.stat().st_size < 2**20 for path in parts)
    assert not list(snapshot.glob(".*.tmp"))

    (snapshot / "log.jsonl").write_text("".join(json.dumps({"step": step}) + "\n" for step in (5180, 5190, 5200, 5210)))
    run_log = tmp_path / "run" / "log.jsonl"
    run_log.parent.mkdir()
    run_log.write_text('{"step": 5170}\n{"step": 5180}\n')
    for _ in range(2):  # a second restore appends nothing
        result = invoke("restore", "--snapshot", snapshot, "--out", tmp_path / "restored.pt", "--log-into", run_log)
        assert result.exit_code == 0, result.output
    # the snapshot's checkpoint is at step 5200: lines past it belong to steps the resumed run repeats
    assert [json.loads(line)["step"] for line in run_log.read_text().splitlines()] == [5170, 5180, 5190, 5200]
    restored = torch.load(tmp_path / "restored.pt", weights_only=True)
    assert list(restored["model_state"]) == list(original["model_state"])
    for name, tensor in original["model_state"].items():
        assert torch.equal(restored["model_state"][name], tensor)
    for index, state in original["optimizer_state"]["state"].items():
        state_back = restored["optimizer_state"]["state"][index]
        assert state_back["exp_avg_sq"].dtype == torch.float32
        torch.testing.assert_close(state_back["exp_avg_sq"], state["exp_avg_sq"], rtol=2**-8, atol=0)
        assert not state_back["exp_avg"].any() and torch.equal(state_back["step"], state["step"])
    assert restored["rng"]["numpy"] == {"pos": 3} and torch.equal(restored["rng"]["torch"], original["rng"]["torch"])
    assert {key: restored[key] for key in ("step", "epoch", "batch_in_epoch", "train", "train_seconds")} == {
        key: original[key] for key in ("step", "epoch", "batch_in_epoch", "train", "train_seconds")
    }

    network = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    network.load_state_dict(restored["model_state"])
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    optimizer.load_state_dict(restored["optimizer_state"])
    network(torch.randn(4, 5)).pow(2).mean().backward()
    optimizer.step()
    assert all(float(state["step"]) == 2 for state in optimizer.state.values())


def test_restore_refuses_an_incomplete_snapshot(tmp_path: Path) -> None:
    torch.save(training_checkpoint(), tmp_path / "checkpoint.pt")
    snapshot = tmp_path / "snapshot"
    assert invoke("snapshot", "--checkpoint", tmp_path / "checkpoint.pt", "--out", snapshot).exit_code == 0
    (snapshot / "part_0.pt").unlink()
    result = invoke("restore", "--snapshot", snapshot, "--out", tmp_path / "restored.pt")
    assert result.exit_code == 2 and "error: no such file" in result.output
    assert not (tmp_path / "restored.pt").exists()


def test_pack_refuses_mels_out_of_range_and_writes_nothing(prep: Path, tmp_path: Path) -> None:
    mel_path = prep / "mels" / "clip_1.npy"
    np.save(mel_path, np.load(mel_path) * 2)
    result = invoke("pack", "--prep", prep, "--out", tmp_path / "trip")
    assert result.exit_code == 2 and "outside [-4.0, 4.0]" in result.output
    assert not (tmp_path / "trip").exists()
    result = invoke("pack", "--prep", prep, "--out", tmp_path / "trip", "--levels", 300)
    assert result.exit_code == 2 and "--levels" in result.output
