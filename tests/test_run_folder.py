"""A trainer's run folder before it trains: stale checkpoint temporaries removed, logs cut to the resumed step."""

from __future__ import annotations

import json
from pathlib import Path

from vcframe.distributed import prepare_run_folder


def test_stale_checkpoint_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"kept")
    stale = [tmp_path / ".checkpoint.pt.k1ll3d.pt", tmp_path / ".checkpoint_0002000.pt.a8f0x.pt"]
    for path in stale:
        path.write_bytes(b"\0" * 4096)  # a torch.save killed half-way
    others = [tmp_path / "log.jsonl", tmp_path / ".hidden-note", tmp_path / "checkpoint_0001000.pt"]
    for path in others:
        path.write_text("x")
    notes = prepare_run_folder(tmp_path, step=0)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in [tmp_path / "checkpoint.pt", *others[1:]])
    assert notes and "2 stale checkpoint temporaries" in notes[0]


def test_logs_are_cut_to_the_resumed_step(tmp_path: Path) -> None:
    rows = [{"step": step, "loss": 1.0 / step} for step in (10, 20, 30, 40)]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows) + '{"step": 50, "lo')
    notes = prepare_run_folder(tmp_path, step=20, logs=["log.jsonl", "valid.jsonl"])
    kept = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert kept == [10, 20]
    assert not (tmp_path / "valid.jsonl").exists()  # a missing log stays missing
    assert any("log.jsonl: 3 rows after step 20 removed" in note for note in notes), notes  # 30, 40, torn 50
    prepare_run_folder(tmp_path, step=20, logs=["log.jsonl"])
    assert [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [10, 20]


def test_csv_logs_keep_their_header(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("step,loss,seconds\n1,0.5,0.1\n2,0.4,0.2\n3,0.3,0.3\n4,0.2")  # torn last row
    prepare_run_folder(tmp_path, step=2, logs=["log.csv"])
    assert (tmp_path / "log.csv").read_text() == "step,loss,seconds\n1,0.5,0.1\n2,0.4,0.2\n"
    prepare_run_folder(tmp_path, step=0, logs=["log.csv"])  # a fresh start keeps only the header
    assert (tmp_path / "log.csv").read_text() == "step,loss,seconds\n"
