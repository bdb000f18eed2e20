"""reweight_prep.py on a made-up prepared folder: rows repeated by engine, in place; links, not copies; refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recipes.demo.tests._recipes import load

reweight = load("reweight_prep")


def _prep(tmp_path: Path) -> tuple[Path, Path]:
    prep = tmp_path / "prep"
    (prep / "mels").mkdir(parents=True)
    (prep / "embeds").mkdir()
    rows = [
        {"id": "a1", "speaker": "espeak-a", "mel": "mels/a1.npy"},
        {"id": "f1", "speaker": "flite-f", "mel": "mels/f1.npy"},
        {"id": "a2", "speaker": "espeak-a", "mel": "mels/a2.npy"},
        {"id": "v1", "speaker": "festival-v", "mel": "mels/v1.npy"},
    ]
    (prep / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (prep / "info.json").write_text(json.dumps({"encoder": "ge2e"}))
    speakers = tmp_path / "speakers.json"
    engines = {"espeak-a": "espeak-ng", "flite-f": "flite", "festival-v": "festival"}
    speakers.write_text(json.dumps({name: {"engine": engine} for name, engine in engines.items()}))
    return prep, speakers


def test_rows_repeat_in_place_by_engine_and_the_arrays_are_linked(tmp_path: Path, capsys) -> None:
    prep, speakers = _prep(tmp_path)
    out = tmp_path / "balanced"
    args = [str(prep), "--out", str(out), "--speakers", str(speakers), "--repeat", "flite=3", "--repeat", "festival=2"]
    assert reweight.main(args) == 0
    ids = [json.loads(line)["id"] for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert ids == ["a1", "f1", "f1", "f1", "a2", "v1", "v1"]
    assert (out / "mels").is_symlink() and (out / "mels").resolve() == (prep / "mels").resolve()
    assert (out / "embeds").resolve() == (prep / "embeds").resolve()
    info = json.loads((out / "info.json").read_text())
    assert info["encoder"] == "ge2e" and info["reweighted"]["repeat"] == {"flite": 3, "festival": 2}
    assert info["reweighted"]["rows"] == 7
    assert "espeak-ng: 2 clips = 50.0 % -> 2 rows = 28.6 %" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("spec", ["flite", "flite=0", "=3", "flite=x"])
def test_a_malformed_repeat_is_refused(spec: str) -> None:
    with pytest.raises(SystemExit, match="ENGINE=N"):
        reweight.engine_repeats([spec])


def test_a_speaker_without_an_engine_and_an_existing_output_are_refused(tmp_path: Path) -> None:
    prep, speakers = _prep(tmp_path)
    speakers.write_text(json.dumps({"espeak-a": {"engine": "espeak-ng"}}))
    with pytest.raises(SystemExit, match="'flite-f' is in no --speakers file"):
        reweight.main([str(prep), "--out", str(tmp_path / "x"), "--speakers", str(speakers)])
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit, match="exists"):
        reweight.main([str(prep), "--out", str(prep), "--speakers", str(speakers)])
