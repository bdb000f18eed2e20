"""Tests of the synthetic corpus recipe and the predefined sample voices (recipes/demo)."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from recipes.demo.tests._recipes import DEMO, load

corpus = load("make_corpus")
voices = load("make_voices")

SENTENCES = [
    "The quick brown fox jumped over the lazy dog by the river.",
    "A short one.",  # too short for the default character limit
    "She sold the old blue bicycle to a neighbour last Tuesday morning.",
    "Numbers like forty two are read out as words by every engine here.",
    "We planted seven apple trees along the southern wall of the garden.",
    "The committee met twice, but could not agree on the new timetable.",
    "Rain fell all night, and by morning the small stream had become a river.",
    "---",  # no letters
    "He opened the window to let the cool evening air into the kitchen.",
]


def needs_tools(*speaker_ids: str) -> None:
    missing = corpus.missing_tools(corpus.SPEAKERS_BY_ID[name] for name in speaker_ids)
    if missing:
        pytest.skip(f"speech tools not installed: {', '.join(missing)} (apt-get install flite espeak-ng festival sox)")


@pytest.fixture
def texts(tmp_path: Path) -> Path:
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(SENTENCES) + "\n")
    return path


def plan_args(texts: Path, out: Path, **overrides: object) -> argparse.Namespace:
    args = corpus.build_parser().parse_args(["--out", str(out), "--texts", str(texts)])
    args.eval_out = str(out) + "_eval"
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_trim_keeps_a_tenth_of_a_second_and_normalises_the_peak() -> None:
    rate = corpus.SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)
    samples = np.concatenate([np.zeros(rate), tone, np.full(rate // 2, 1e-6)]).astype(np.float32)
    original = samples.copy()
    clip = corpus.trim_and_normalise(samples)
    assert np.array_equal(samples, original)  # input not modified
    assert clip.dtype == np.float32
    assert abs(np.abs(clip).max() - corpus.PEAK) < 1e-6
    assert abs(len(clip) - (rate + 2 * rate // 10)) <= corpus.TRIM_FRAME
    assert np.abs(clip[: rate // 10 - corpus.TRIM_FRAME]).max() < 1e-4  # leading margin is silence


def test_trim_pads_when_the_engine_left_no_silence_and_empties_silent_clips() -> None:
    rate = corpus.SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 300 * np.arange(rate // 2) / rate)
    clip = corpus.trim_and_normalise(tone)
    assert len(clip) == rate // 2 + 2 * rate // 10
    assert not clip[: rate // 10].any() and not clip[-rate // 10 :].any()
    assert corpus.trim_and_normalise(np.zeros(rate)).size == 0
    assert corpus.trim_and_normalise(np.zeros(0)).size == 0


def test_sentence_filter(texts: Path) -> None:
    sentences = corpus.read_sentences(texts, 25, 110)
    assert [index for index, _ in sentences] == [1, 3, 4, 5, 6, 7, 9]
    assert all(25 <= len(text) <= 110 for _, text in sentences)


def test_plan_is_deterministic_disjoint_and_extends(texts: Path, tmp_path: Path) -> None:
    speakers = ["flite-rms", "espeak-steph", "espeak-f1"]
    args = plan_args(
        texts, tmp_path / "c", speakers=speakers, sentences_per_speaker=2, eval_sentences=2, eval_utterances=2
    )
    plan = corpus.make_plan(args)
    assert plan == corpus.make_plan(args)
    assert [s.id for s in plan.train_speakers] == ["flite-rms", "espeak-steph"]
    assert [s.id for s in plan.eval_speakers] == ["espeak-f1"]
    held_out = {index for index, _ in plan.eval_sentences}
    train = [u for u in plan.utterances if u.root == tmp_path / "c"]
    assert len(train) == 4 and not held_out & {u.sentence_index for u in train}
    # the training speakers read the held-out sentences too, but into the seen folder only
    seen = [(u.speaker.id, u.sentence_index) for u in plan.utterances if u.root == tmp_path / "c_seen"]
    assert sorted(seen) == sorted((s, i) for s in ("flite-rms", "espeak-steph") for i in held_out)
    assert len({u.sentence_index for u in train}) == 4  # speakers read different sentences while there are enough
    assert {u.sentence_index for u in plan.utterances if u.speaker.id == "espeak-f1"} == held_out
    more = corpus.make_plan(
        plan_args(
            texts, tmp_path / "c", speakers=speakers, sentences_per_speaker=3, eval_sentences=2, eval_utterances=2
        )
    )
    for speaker in plan.train_speakers:
        before = [u.utt_id for u in plan.utterances if u.speaker == speaker and u.root == tmp_path / "c"]
        after = [u.utt_id for u in more.utterances if u.speaker == speaker and u.root == tmp_path / "c"]
        assert after[: len(before)] == before and len(after) == 3
    reseeded = corpus.make_plan(
        plan_args(
            texts,
            tmp_path / "c",
            speakers=speakers,
            sentences_per_speaker=2,
            eval_sentences=2,
            eval_utterances=2,
            seed=7,
        )
    )
    assert [u.utt_id for u in reseeded.utterances] != [u.utt_id for u in plan.utterances]


def test_catalogue_is_consistent() -> None:
    ids = [speaker.id for speaker in corpus.SPEAKERS]
    assert len(ids) == len(set(ids)) and 15 <= len(corpus.ENGINE_SPEAKERS) <= 20
    assert sum(speaker.split == "eval" for speaker in corpus.SPEAKERS) >= 5
    for speaker in corpus.SPEAKERS:
        assert speaker.engine in corpus.ENGINE_BINARIES
        assert "mbrola" not in speaker.voice.lower()  # non-commercial licence: never in shipped training data
        assert "commercial" in speaker.licence or "no licence restriction" in speaker.licence
        command = corpus.engine_command(speaker, Path("in.txt"), Path("out.wav"))
        assert command[0] == corpus.ENGINE_BINARIES[speaker.engine] and "out.wav" in command
        assert corpus.sox_effects(speaker)[-3:] == ["rate", "-v", "16000"]


def test_list_speakers_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO / "make_corpus.py"), "--list-speakers"], capture_output=True, text=True, check=True
    )
    assert "festival-slt-hts" in result.stdout and "| eval |" in result.stdout


def read_tree(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_corpus_end_to_end_deterministic_and_resumable(texts: Path, tmp_path: Path) -> None:
    needs_tools("flite-rms", "espeak-steph")
    common = [
        "--texts",
        str(texts),
        "--speakers",
        "flite-rms,espeak-steph,espeak-f1",
        "--sentences-per-speaker",
        "2",
        "--eval-sentences",
        "1",
        "--eval-utterances",
        "1",
    ]
    first, second = tmp_path / "one" / "corpus", tmp_path / "two" / "corpus"
    assert corpus.main(["--out", str(first), "--jobs", "2", *common]) == 0
    assert corpus.main(["--out", str(second), "--jobs", "1", *common]) == 0
    tree = read_tree(first)
    assert tree == read_tree(second)  # byte-identical whatever the number of jobs
    assert read_tree(tmp_path / "one" / "corpus_eval") == read_tree(tmp_path / "two" / "corpus_eval")
    seen_rows = list(csv.DictReader((tmp_path / "one" / "corpus_seen" / "manifest.csv").open()))
    assert sorted(row["speaker"] for row in seen_rows) == ["espeak-steph", "flite-rms"]  # one held-out sentence

    wavs = sorted(first.glob("*/*.wav"))
    assert len(wavs) == 4 and {path.parent.name for path in wavs} == {"flite-rms", "espeak-steph"}
    for wav in wavs:
        info = soundfile.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 1.5 <= info.frames / info.samplerate <= 8.0
        samples, _ = soundfile.read(wav, dtype="int16")
        assert abs(int(np.abs(samples.astype(np.int32)).max()) - round(0.9 * 32767)) <= 1
        assert wav.with_suffix(".txt").read_text().strip() in SENTENCES
    speakers = json.loads((first / "speakers.json").read_text())
    assert set(speakers) == {"flite-rms", "espeak-steph", "espeak-f1"}
    assert speakers["espeak-f1"]["split"] == "eval" and speakers["flite-rms"]["split"] == "train"
    assert all(info["licence"] and info["engine"] and "engine_command" in info for info in speakers.values())
    rows = list(csv.DictReader((first / "manifest.csv").open()))
    assert sorted(row["path"] for row in rows) == sorted(path.relative_to(first).as_posix() for path in wavs)
    evaluation = json.loads((first / "eval.json").read_text())
    assert evaluation["speakers"] == ["espeak-f1"] and len(evaluation["sentences"]) == 1
    eval_dir = first / evaluation["eval_dir"]
    assert [(eval_dir / item["path"]).is_file() for item in evaluation["utterances"]] == [True]
    assert evaluation["sentences"][0]["index"] not in {int(row["sentence_index"]) for row in rows}

    # resume: a lost clip and a stale temporary file; only the lost clip is remade, identical to before
    wavs[0].unlink()
    (wavs[1].parent / f".{wavs[1].name}.abc.part").write_bytes(b"half")
    lines: list[str] = []
    results = corpus.run_plan(
        corpus.make_plan(
            plan_args(
                texts,
                first,
                speakers=["flite-rms", "espeak-steph", "espeak-f1"],
                sentences_per_speaker=2,
                eval_sentences=1,
                eval_utterances=1,
                eval_out=str(tmp_path / "one" / "corpus_eval"),
            )
        ).utterances,
        jobs=1,
        min_seconds=1.5,
        max_seconds=8.0,
        progress=lines.append,
    )
    assert len(results) == 1 and "1 to make" in lines[0]
    assert read_tree(first) == tree

    with pytest.raises(SystemExit, match="seed"):
        corpus.main(["--out", str(first), "--seed", "99", *common])


def test_clips_outside_the_duration_limits_are_rejected_once(texts: Path, tmp_path: Path) -> None:
    needs_tools("espeak-steph")
    out = tmp_path / "corpus"
    arguments = [
        "--out",
        str(out),
        "--texts",
        str(texts),
        "--speakers",
        "espeak-steph",
        "--eval-speakers",
        "",
        "--sentences-per-speaker",
        "2",
        "--eval-sentences",
        "1",
        "--min-seconds",
        "20",
        "--max-seconds",
        "30",
        "--jobs",
        "1",
    ]
    assert corpus.main(arguments) == 0
    assert len(list(out.glob("espeak-steph/*.rejected"))) == 2 and not list(out.glob("*/*.wav"))
    assert (out / "manifest.csv").read_text().count("\n") == 1  # header only
    plan = corpus.make_plan(
        plan_args(texts, out, speakers=["espeak-steph"], eval_speakers=[], sentences_per_speaker=2, eval_sentences=1)
    )
    assert all(utterance.done() for utterance in plan.utterances)


def test_bad_options_are_one_line_errors(texts: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown speaker 'nobody'"):
        corpus.main(["--out", str(tmp_path / "c"), "--texts", str(texts), "--speakers", "nobody"])
    with pytest.raises(SystemExit, match="--num-speakers 400"):
        corpus.main(["--out", str(tmp_path / "c"), "--texts", str(texts), "--num-speakers", "400"])
    with pytest.raises(SystemExit, match="not found"):
        corpus.main(["--out", str(tmp_path / "c"), "--texts", str(tmp_path / "missing.txt")])


# -- predefined voices ---------------------------------------------------------------------------------------

SHIPPED = DEMO.parent.parent / "registry" / "voices"


def test_shipped_voices_match_their_index() -> None:
    index = json.loads((SHIPPED / "voices.json").read_text())["voices"]
    assert 5 <= len(index) <= 6
    assert sorted(path.name for path in SHIPPED.iterdir()) == sorted([e["file"] for e in index] + ["voices.json"])
    assert sum(path.stat().st_size for path in SHIPPED.iterdir()) < 1_000_000
    for entry in index:
        payload = (SHIPPED / entry["file"]).read_bytes()
        assert hashlib.sha256(payload).hexdigest() == entry["sha256"]
        info = soundfile.info(str(SHIPPED / entry["file"]))
        assert (info.samplerate, info.channels) == (16000, 1)
        assert 5.0 <= info.frames / info.samplerate <= 8.0
        assert entry["licence"] and entry["description"] and entry["text"]
        assert entry["held_out_from_training"] and corpus.SPEAKERS_BY_ID[entry["speaker"]].split == "eval"


def test_make_voices_reproduces_a_shipped_clip(tmp_path: Path) -> None:
    needs_tools("flite-rms-down300")
    assert voices.main(["--out", str(tmp_path), "--voices", "duncan"]) == 0
    assert (tmp_path / "duncan.flac").read_bytes() == (SHIPPED / "duncan.flac").read_bytes()
    entry = json.loads((tmp_path / "voices.json").read_text())["voices"][0]
    assert entry["name"] == "duncan" and entry["engine"]["sox_pitch_cents"] == -300


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_unknown_voice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown voice"):
        voices.main(["--out", str(tmp_path), "--voices", "nobody"])


def test_plot_training_reads_a_log_written_over_several_runs(tmp_path: Path) -> None:
    """Steps logged again after a resume count once (the later run's values); training hours add up over the
    processes, whether their seconds restart at 0 (older runs) or continue from the checkpoint."""
    plot = load("plot_training")
    rows = [
        {"step": 10, "seconds": 50.0, "loss": 3.0},
        {"step": 20, "seconds": 100.0, "loss": 2.0},  # killed after the checkpoint at step 10
        {"step": 20, "seconds": 40.0, "loss": 1.9},  # resumed from step 10 by an older trainer: restarts at 0
        {"step": 30, "seconds": 90.0, "loss": 1.5},
        {"step": 40, "seconds": 200.0, "loss": 1.2},  # a new trainer: continues from train_seconds
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    last = plot.plot_losses(log, tmp_path / "losses.png")
    assert last["step"] == 40 and last["loss"] == 1.2
    assert last["training_hours"] == round((100 + 200) / 3600, 2)
    assert (tmp_path / "losses.png").read_bytes()[:4] == b"\x89PNG"
