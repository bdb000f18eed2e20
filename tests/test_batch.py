"""Batch cloning (vcframe batch): manifests, skipping, bad rows, shards, and the local and Dask executors agree."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from vcframe.batch import (
    DaskExecutor,
    InlineExecutor,
    LocalExecutor,
    parse_shard,
    read_manifest,
    run_batch,
)
from vcframe.config import load_settings
from vcframe.errors import InputError

DUMMY = ["--encoder", "test-tone", "--synthesizer", "test-constant", "--vocoder", "test-sine"]
TEXTS = ["Hello there.", "One two three.", "A cat sat on the mat.", "Good morning.", "Fine, thanks!", "Bye now."]


def _inline(manifest: Path, out: Path, registry) -> object:
    return run_batch(manifest, out, settings=_settings(), executor=InlineExecutor(), registry=registry)


def _settings():
    return load_settings(
        [], environ={}, explicit={"encoder": "test-tone", "synthesizer": "test-constant", "vocoder": "test-sine"}
    )


@pytest.fixture
def manifest(tmp_path: Path, speech_like_wav) -> Path:
    """12 rows over two clips: half with their own seed and out name, half with generated names."""
    (tmp_path / "clips").mkdir()
    speech_like_wav("clips/alice.wav", f0=190.0)
    speech_like_wav("clips/bob.wav", f0=110.0)
    lines = ["text,reference,seed,out"]
    for index in range(12):
        clip = "clips/alice.wav" if index % 2 else "clips/bob.wav"
        named = index % 3 == 0
        lines.append(
            f'"{TEXTS[index % len(TEXTS)]}",{clip},{index if named else ""},{f"row{index}.wav" if named else ""}'
        )
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".wav"}


def _results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_manifest_rows_csv_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text(
        "\n".join(
            json.dumps(row)
            for row in (
                {"text": "Hi.", "voice": "sample-a", "seed": 3, "vocoder": "test-sine"},
                {"text": "Hi.", "reference": "a.wav|b.wav"},
                {"text": " ", "reference": "a.wav"},
                {"text": "Hi.", "reference": "a.wav", "voice": "x"},
                {"text": "Hi.", "reference": "a.wav", "out": "../escape.wav"},
                {"text": "Hi.", "reference": "a.wav", "seed": "three"},
                {"text": "Hi.", "reference": "librispeech:1-2-3", "out": "x.wav"},
                {"text": "Hi.", "reference": "a.wav", "out": "x.wav"},
            )
        )
    )
    rows = read_manifest(tmp_path / "m.jsonl")
    assert rows[0].voice == "sample-a" and rows[0].seed == 3 and rows[0].components == (("vocoder", "test-sine"),)
    assert rows[1].references == (str(tmp_path / "a.wav"), str(tmp_path / "b.wav")) and rows[1].error is None
    assert rows[1].out.startswith("000002-") and rows[1].out.endswith(".wav")
    assert [row.error is not None for row in rows] == [False, False, True, True, True, True, False, True]
    assert "empty" in rows[2].error and "exactly one" in rows[3].error and "inside" in rows[4].error
    assert rows[6].references == ("librispeech:1-2-3",) and "also row 7" in rows[7].error
    (tmp_path / "bad.csv").write_text("text,speaker\nHi.,x\n")
    with pytest.raises(InputError, match="unknown columns"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="not found"):
        read_manifest(tmp_path / "missing.csv")
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(InputError):
        parse_shard("4/4")


def test_cli_clones_skips_reruns_missing_and_reports_bad_rows(
    dummy_registry, vcframe_cli, manifest: Path, tmp_path: Path
) -> None:
    with manifest.open("a") as stream:
        stream.write('"Missing clip.",clips/nobody.wav,,\n')
    out = tmp_path / "out"
    result = vcframe_cli("batch", manifest, "--out", out, "--executor", "inline", *DUMMY)
    assert result.exit_code == 2, result.stderr
    assert "1 of 13 rows failed" in result.stderr and "12 cloned" in result.stderr
    results = _results(out / "results.jsonl")
    assert [r["status"] for r in results] == ["done"] * 12 + ["failed"]
    assert "nobody.wav" in results[12]["error"]
    first = _outputs(out)
    assert len(first) == 12 and {"row0.wav", "row3.wav", "row6.wav", "row9.wav"} <= set(first)
    removed = sorted(first)[1::4]
    for name in removed:
        (out / name).unlink()
    (out / ".row0.wav.stale123.wav").write_bytes(b"half-written")  # a killed worker's temporary
    again = vcframe_cli("batch", manifest, "--out", out, "--workers", "1", *DUMMY)
    assert again.exit_code == 2
    rerun = _results(out / "results.jsonl")
    assert sorted(r["out"] for r in rerun if r["status"] == "done") == removed  # exactly the deleted ones
    assert _outputs(out) == first  # seeded: the redone files are byte-identical
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_rows_may_name_a_voice(dummy_registry, vcframe_cli, tmp_path: Path) -> None:
    from vcframe.voices import VoiceStore

    sample = VoiceStore().list()[0].name
    manifest = tmp_path / "voices.jsonl"
    rows = [{"text": "Hello there.", "voice": sample, "seed": 1}, {"text": "Hello.", "voice": "no-such-voice"}]
    manifest.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    result = vcframe_cli("batch", manifest, "--out", tmp_path / "out", "--executor", "inline", *DUMMY)
    assert result.exit_code == 2
    first, second = _results(tmp_path / "out" / "results.jsonl")
    assert first["status"] == "done" and (tmp_path / "out" / first["out"]).is_file()
    assert second["status"] == "failed" and "no-such-voice" in second["error"]


def test_shards_split_the_rows(dummy_registry, vcframe_cli, manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for index in range(3):
        result = vcframe_cli("batch", manifest, "--out", out, "--shard", f"{index}/3", "--executor", "inline", *DUMMY)
        assert result.exit_code == 0, result.stderr
    shards = [_results(out / f"results.shard-{index}-of-3.jsonl") for index in range(3)]
    assert [sorted(r["row"] for r in rows) for rows in shards] == [[1, 4, 7, 10], [2, 5, 8, 11], [3, 6, 9, 12]]
    assert len(_outputs(out)) == 12


def test_local_processes_equal_inline(dummy_registry, manifest: Path, tmp_path: Path) -> None:
    settings = _settings()
    inline = run_batch(
        manifest, tmp_path / "inline", settings=settings, executor=InlineExecutor(), registry=dummy_registry
    )
    pool = run_batch(
        manifest, tmp_path / "pool", settings=settings, executor=LocalExecutor(workers=2), registry=dummy_registry
    )
    assert inline.counts == pool.counts == {"done": 12, "skipped": 0, "failed": 0}
    assert _outputs(tmp_path / "inline") == _outputs(tmp_path / "pool")


dask = pytest.importorskip("dask.distributed", reason="the dask extra is not installed (pip install '.[dask]')")


@pytest.fixture
def dask_cluster():
    cluster = dask.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    )
    try:
        yield cluster
    finally:
        cluster.close()


def test_dask_cluster_equals_local_executor(
    dummy_registry, vcframe_cli, manifest: Path, tmp_path: Path, dask_cluster
) -> None:
    local = run_batch(
        manifest, tmp_path / "local", settings=_settings(), executor=InlineExecutor(), registry=dummy_registry
    )
    assert local.counts["done"] == 12
    result = vcframe_cli(
        "batch", manifest, "--out", tmp_path / "dask", "--scheduler", dask_cluster.scheduler_address, *DUMMY
    )
    assert result.exit_code == 0, result.stderr
    assert "(dask)" in result.stderr
    assert _outputs(tmp_path / "dask") == _outputs(tmp_path / "local")
    workers = {r["worker"] for r in _results(tmp_path / "dask" / "results.jsonl")}
    assert len(workers) == 2


def test_dask_worker_killed_mid_run(dummy_registry, manifest: Path, tmp_path: Path, dask_cluster) -> None:
    executor = DaskExecutor.__new__(DaskExecutor)  # on the fixture's cluster
    executor.cluster, executor.client = None, dask.Client(dask_cluster)
    pids = executor.client.run(os.getpid)
    killed: list[int] = []

    def kill_one_worker(done: int, total: int, result) -> None:
        if not killed and result.status == "done":
            victim = next(pid for pid in pids.values() if not result.worker.endswith(f":{pid}"))
            os.kill(victim, signal.SIGKILL)
            killed.append(done)

    try:
        report = run_batch(
            manifest,
            tmp_path / "out",
            settings=_settings(),
            executor=executor,
            registry=dummy_registry,
            progress=kill_one_worker,
        )
    finally:
        executor.close()
    assert killed and killed[0] < 12  # the worker died with rows left to do
    assert report.counts == {"done": 12, "skipped": 0, "failed": 0}
    assert len(_outputs(tmp_path / "out")) == 12
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    reference = run_batch(
        manifest, tmp_path / "ref", settings=_settings(), executor=InlineExecutor(), registry=dummy_registry
    )
    assert reference.counts["done"] == 12
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "ref")
