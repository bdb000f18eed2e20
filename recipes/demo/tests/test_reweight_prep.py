"""reweight_prep.py on a made-up prepared folder: rows repeated by engine or by words heard, in place; links, not
copies; refusals."""

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


def _heard(tmp_path: Path, heard: dict[str, float]) -> Path:
    path = tmp_path / "heard.json"
    path.write_text(json.dumps({"voices": {speaker: {"heard": value} for speaker, value in heard.items()}}))
    return path


def test_voices_repeat_by_words_heard_times_their_engine(tmp_path: Path) -> None:
    prep, speakers = _prep(tmp_path)
    heard = _heard(tmp_path, {"espeak-a": 0.04, "flite-f": 0.26, "festival-v": 0.81})
    out = tmp_path / "heard_view"
    args = [str(prep), "--out", str(out), "--speakers", str(speakers), "--heard", str(heard), "--heard-scale", "5"]
    assert reweight.main([*args, "--repeat", "flite=2"]) == 0
    ids = [json.loads(line)["id"] for line in (out / "manifest.jsonl").read_text().splitlines()]
    # espeak-a: max(1, round(0.2)) = 1; flite-f: round(1.3) = 1, x2 for its engine; festival-v: round(4.05) = 4
    assert ids == ["a1", "f1", "f1", "a2", "v1", "v1", "v1", "v1"]
    info = json.loads((out / "info.json").read_text())["reweighted"]
    assert info["heard"]["scale"] == 5 and info["rows"] == 8


def test_a_voice_missing_from_the_heard_report_or_a_bad_report_is_refused(tmp_path: Path) -> None:
    prep, speakers = _prep(tmp_path)
    heard = _heard(tmp_path, {"espeak-a": 0.1, "flite-f": 0.5})
    with pytest.raises(SystemExit, match="'festival-v' is not in the --heard report"):
        reweight.main([str(prep), "--out", str(tmp_path / "x"), "--speakers", str(speakers), "--heard", str(heard)])
    heard.write_text("{}")
    with pytest.raises(SystemExit, match="not a measure_intelligibility.py report"):
        reweight.heard_repeats(heard, 10)
    with pytest.raises(SystemExit, match="--heard-scale 0"):
        reweight.heard_repeats(heard, 0)
    assert not (tmp_path / "x").exists()


def test_another_prepared_folder_is_added_with_absolute_paths(tmp_path: Path, capsys) -> None:
    prep, speakers = _prep(tmp_path)
    real = tmp_path / "real_seg_prep"
    (real / "mels").mkdir(parents=True)
    rows = [{"id": "103-a", "speaker": "103", "mel": "mels/103-a.npy", "embed": "embeds/103-a.npy"}]
    (real / "manifest.jsonl").write_text(json.dumps(rows[0]) + "\n")
    (real / "info.json").write_text(json.dumps({"encoder": "ge2e"}))
    for row in (json.loads(line) for line in (prep / "manifest.jsonl").read_text().splitlines()):
        assert "embed" not in row  # the made-up main rows have none; the added ones do
    out = tmp_path / "mixed"
    args = [str(prep), "--out", str(out), "--speakers", str(speakers), "--add", f"{real}=3"]
    assert reweight.main(args) == 0
    written = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [row["id"] for row in written] == ["a1", "f1", "a2", "v1", "103-a", "103-a", "103-a"]
    assert written[-1]["mel"] == str((real / "mels" / "103-a.npy").resolve())
    assert written[-1]["embed"] == str((real / "embeds" / "103-a.npy").resolve())
    assert (out / written[-1]["mel"]) == (real / "mels" / "103-a.npy").resolve()  # how the trainer joins them
    info = json.loads((out / "info.json").read_text())
    assert info["reweighted"]["added"] == [{"from": str(real.resolve()), "repeat": 3, "rows": 3}]
    assert info["reweighted"]["rows"] == 7
    assert "added:real_seg_prep: 1 clips = 20.0 % -> 3 rows = 42.9 %" in capsys.readouterr().out
    # another mel spec is refused, naming the field and both values
    (real / "info.json").write_text(json.dumps({"encoder": "ge2e", "mel_spec": {"hop_length": 256}}))
    with pytest.raises(SystemExit, match="its mel_spec .*256.* differs from the main folder's None"):
        reweight.main([*args[:2], str(tmp_path / "other"), *args[3:]])
    with pytest.raises(SystemExit, match="PREP=N"):
        reweight.main([*args[:2], str(tmp_path / "other"), *args[3:-1], str(real)])
    assert not (tmp_path / "other").exists()
