"""gta_agreement.py on a made-up GTA folder: identical mels agree perfectly, a shifted mel does not, spectrum matching
removes a constant band offset, the smoothed recordings' line appears with --smooth, a folder without a manifest is
refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recipes.demo.tests._recipes import load

gta_agreement = load("gta_agreement")


def _gta_folder(root: Path, offset: float) -> Path:
    """Two clips whose GTA mel is the recording's plus ``offset`` in every band (stored (T, n_mels), as the
    synthesizer writes them)."""
    rng = np.random.default_rng(0)
    rows = []
    (root / "gta").mkdir(parents=True)
    for index in range(2):
        truth = np.clip(rng.normal(0.0, 1.5, size=(80, 60)), -4, 4).astype(np.float32)
        np.save(root / f"mel{index}.npy", truth.T)
        np.save(root / "gta" / f"{index}.npy", (truth + offset).T)
        rows.append({"mel": str(root / f"mel{index}.npy"), "gta": f"gta/{index}.npy"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def test_agreement_of_identical_and_offset_mels(tmp_path: Path) -> None:
    same = gta_agreement.folder_report(_gta_folder(tmp_path / "same", 0.0), 0.0)
    assert same[1] == "  GTA: correlation 1.000 (1.000-1.000), mean absolute difference 0.000 (0.000-0.000)"
    shifted = gta_agreement.folder_report(_gta_folder(tmp_path / "shifted", 0.5), 1.5)
    assert "correlation 1.000" in shifted[1] and "mean absolute difference 0.5" in shifted[1]
    matched = float(shifted[2].split("mean absolute difference ")[1].split()[0])
    assert matched < 0.25  # matching to the clip's own spectrum takes most of a constant band offset away
    assert shifted[3].startswith("  recording smoothed by sigma 1.5 bands: correlation 0.")
    # only the frames both have count: the longer mel's last two frames are left out
    truth, longer = np.array([[1.0, 2, 3], [3, 2, 1]]), np.array([[1.0, 2, 3, 9, 9], [3, 2, 2, 9, 9]])
    assert gta_agreement.agreement(truth, longer)[1] == pytest.approx(1 / 6)


def test_a_folder_without_manifest_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gta_agreement.main([str(tmp_path)]) == 2
    assert "has no manifest.jsonl" in capsys.readouterr().out
