"""``vcframe compare``: grid parsing, planning, the run (cache, resume, refused triples, pool), the outputs."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from vcframe.compare import BASE_COLUMNS, parse_grid, plan_comparison, run_comparison, write_report
from vcframe.compare.grid import item_seed, load_grid, parse_system_flag
from vcframe.errors import ConfigError, InputError, PluginError
from vcframe.metrics.builtin import MEL_CEPSTRAL_DISTORTION, PEAK_MEMORY, REAL_TIME_FACTOR, SPEAKER_SIMILARITY
from vcframe.metrics.registry import MetricRegistry
from vcframe.testing.dummy_specs import TEST_MEL

#: Griffin-Lim reading the dummy synthesizer's mel: a real vocoder in a fast, compatible triple.
GRIFFIN_LIM_ON_TEST_MEL = {"mel": TEST_MEL.model_dump(), "n_iter": 4}
DUMMY = {"encoder": "test-tone", "synthesizer": "test-constant"}


@pytest.fixture
def metric_registry() -> MetricRegistry:
    """The built-in metrics that need no recogniser (fast); WER has its own tests."""
    registry = MetricRegistry()
    for spec in (SPEAKER_SIMILARITY, MEL_CEPSTRAL_DISTORTION, REAL_TIME_FACTOR, PEAK_MEMORY):
        registry.register(spec, distribution="vcframe-core")
    return registry


@pytest.fixture
def grid_data(speech_like_wav) -> dict[str, Any]:
    low = speech_like_wav("low.wav", seconds=1.0, f0=110)
    high = speech_like_wav("high.wav", seconds=1.0, f0=220)
    return {
        "seed": 3,
        "judge": "test-tone",
        "warmup": False,
        "score_ground_truth": False,  # on by default; the schema test turns it on
        "systems": [
            {"name": "sine", **DUMMY, "vocoder": "test-sine"},
            {"name": "gl", **DUMMY, "vocoder": "griffinlim", "options": {"vocoder": GRIFFIN_LIM_ON_TEST_MEL}},
            {"name": "mismatch", **DUMMY, "vocoder": "griffinlim"},  # RTVC's mel: refused
        ],
        "voices": [str(low), {"name": "hi", "reference": str(high)}],
        "texts": ["Hello there.", {"id": "truth", "text": "General Kenobi.", "ground_truth": {"low": str(low)}}],
    }


@pytest.fixture
def registry(dummy_registry):
    """The dummy components and the installed ones (Griffin-Lim)."""
    return dummy_registry.add_installed()


def _plan(grid_data: dict[str, Any], registry, metric_registry) -> Any:
    return plan_comparison(parse_grid(grid_data), registry=registry, metric_registry=metric_registry)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_results_csv_schema_refused_triple_and_report(grid_data, registry, metric_registry, tmp_path) -> None:
    grid_data["score_ground_truth"] = True
    plan = _plan(grid_data, registry, metric_registry)
    refused = plan.system("mismatch").refused
    assert refused is not None and "synthesizer -> vocoder" in refused and "n_mels: test-constant gives 20" in refused
    out = tmp_path / "out"
    outcome = run_comparison(plan, out, jobs=1)
    assert (outcome.generated, outcome.reused, outcome.refused, outcome.failed, outcome.recordings) == (8, 0, 4, 0, 1)
    files = write_report(plan, outcome, out)
    with open(files.results_csv, newline="") as stream:
        header = next(csv.reader(stream))
    metric_columns = [
        "speaker_similarity",
        "mcd",
        "rtf",
        "rtf_embed",
        "rtf_synthesize",
        "rtf_vocode",
        "peak_memory",
        "peak_memory_embed",
        "peak_memory_synthesize",
        "peak_memory_vocode",
        "peak_rss",
    ]
    assert header == [*BASE_COLUMNS, *metric_columns]
    rows = _rows(files.results_csv)
    assert len(rows) == 13  # 3 systems x 2 voices x 2 texts, one row per item, + the ground-truth recording
    truth = rows.pop()
    assert (truth["item"], truth["status"], truth["audio"]) == (
        "ground-truth/low/truth",
        "ok",
        str(tmp_path / "low.wav"),
    )
    assert truth["rtf"] == truth["mcd"] == "" and float(truth["speaker_similarity"]) == pytest.approx(1.0, abs=1e-6)
    assert [row["item"] for row in rows[:4]] == ["sine/low/t1", "sine/low/truth", "sine/hi/t1", "sine/hi/truth"]
    for row in rows:
        if row["system"] == "mismatch":
            assert row["status"] == "refused" and row["error"] == refused and row["audio"] == ""
            assert all(row[column] == "" for column in metric_columns)
            continue
        assert row["status"] == "ok" and row["error"] == "" and (out / row["audio"]).is_file()
        assert -1.0 <= float(row["speaker_similarity"]) <= 1.0
        assert float(row["rtf"]) > 0 and float(row["duration_s"]) > 0
        assert float(row["rtf"]) == pytest.approx(
            sum(float(row[f"rtf_{stage}"]) for stage in ("embed", "synthesize", "vocode")), rel=1e-3
        )
        # MCD only where a ground-truth recording exists (voice low, text "truth")
        assert (row["mcd"] != "") == (row["voice"] == "low" and row["text_id"] == "truth")
    # the same (voice, text) has the same seed in every system
    seeds = {(row["voice"], row["text_id"]): row["seed"] for row in rows if row["system"] == "sine"}
    assert all(row["seed"] == seeds[(row["voice"], row["text_id"])] for row in rows)
    assert rows[0]["seed"] == str(item_seed(3, "low", "Hello there."))

    results = json.loads(files.results_json.read_text())
    assert results["columns"] == header and len(results["rows"]) == 13
    assert results["rows"][0]["measurements"]["stages"]["vocode"]["seconds"] > 0
    assert len(results["rows"][0]["vectors"]["generated_embedding"]) == 8
    summary = {entry["system"]: entry for entry in results["summary"]}
    assert summary["sine"]["ok"] == 4 and summary["mismatch"]["refused"] == 4
    similarity = summary["gl"]["metrics"]["speaker_similarity"]
    assert similarity["n"] == 4 and similarity["ci_low"] <= similarity["mean"] <= similarity["ci_high"]
    assert summary["mismatch"]["metrics"]["rtf"] == {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
    assert _rows(files.summary_csv)[0].keys() >= {"system", "metric", "n", "mean", "ci_low", "ci_high"}

    assert {"metric_speaker_similarity", "metric_rtf", "embeddings", "rtf_stages", "sample_sine", "sample_gl"} <= set(
        files.plots
    )
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in files.plots.values())
    page = files.report_html.read_text()
    assert page.count("<audio") == 8 + 2 + 1  # 8 outputs, 2 references, 1 ground truth
    assert page.count("data:audio/flac;base64,") == 8 and page.count("data:image/png;base64,") == len(files.plots)
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)  # self-contained: no network asset
    assert "refused: incompatible components" in page
    umask = os.umask(0)
    os.umask(umask)
    assert files.report_html.stat().st_mode & 0o777 == 0o666 & ~umask  # shareable, like any new file


def test_interrupted_run_resumes_where_it_stopped(grid_data, registry, metric_registry, tmp_path) -> None:
    grid_data["systems"] = grid_data["systems"][:2]
    plan = _plan(grid_data, registry, metric_registry)
    out = tmp_path / "out"
    finished: list[str] = []

    def interrupt_after_three(done: int, total: int, record: dict[str, Any]) -> None:
        finished.append(record["item"])
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_comparison(plan, out, jobs=1, progress=interrupt_after_three)
    assert len(finished) == 3 and len(list((out / ".cache" / "items").glob("*.json"))) == 3
    assert not (out / "results.csv").exists()

    resumed = run_comparison(plan, out, jobs=1)
    assert (resumed.generated, resumed.reused) == (5, 3)
    fresh = run_comparison(plan, tmp_path / "fresh", jobs=1)
    audio = {record["item"]: (out / record["audio"]).read_bytes() for record in resumed.records}
    assert audio == {record["item"]: (tmp_path / "fresh" / record["audio"]).read_bytes() for record in fresh.records}
    again = run_comparison(plan, out, jobs=1)
    assert (again.generated, again.reused) == (0, 8)
    assert [r["metrics"] for r in again.records] == [r["metrics"] for r in resumed.records]


def test_new_metric_rescores_cached_items_and_changed_options_regenerate(
    grid_data, registry, metric_registry, tmp_path
) -> None:
    grid_data["systems"] = grid_data["systems"][:2]
    grid_data["metrics"] = ["rtf"]
    out = tmp_path / "out"
    first = run_comparison(_plan(grid_data, registry, metric_registry), out, jobs=1)
    assert first.generated == 8 and "speaker_similarity" not in first.records[0]["metrics"]
    grid_data["metrics"] = ["rtf", "speaker_similarity"]
    second = run_comparison(_plan(grid_data, registry, metric_registry), out, jobs=1)
    assert (second.generated, second.rescored, second.reused) == (0, 8, 0)
    assert all(record["metrics"]["speaker_similarity"] is not None for record in second.records)
    assert [r["metrics"]["rtf"] for r in second.records] == [r["metrics"]["rtf"] for r in first.records]
    grid_data["systems"][1]["options"]["vocoder"]["n_iter"] = 5
    third = run_comparison(_plan(grid_data, registry, metric_registry), out, jobs=1)
    assert (third.generated, third.reused) == (4, 4)  # only the changed system runs again


@pytest.mark.slow  # two spawned workers import torch: about 10 s on a loaded 2-core machine
def test_process_pool_gives_the_same_audio_as_in_process(grid_data, registry, metric_registry, tmp_path) -> None:
    grid_data["systems"] = grid_data["systems"][1:2]  # Griffin-Lim
    grid_data["voices"] = grid_data["voices"][:1]
    plan = _plan(grid_data, registry, metric_registry)
    seen: list[int] = []
    pooled = run_comparison(plan, tmp_path / "pool", jobs=2, progress=lambda done, total, record: seen.append(done))
    assert seen == [1, 2] and pooled.generated == 2 and pooled.failed == 0
    local = run_comparison(plan, tmp_path / "local", jobs=1)
    for a, b in zip(pooled.records, local.records, strict=True):
        assert (tmp_path / "pool" / a["audio"]).read_bytes() == (tmp_path / "local" / b["audio"]).read_bytes()
        assert a["metrics"]["speaker_similarity"] == pytest.approx(b["metrics"]["speaker_similarity"])


def test_a_failing_item_is_a_row_not_a_crash(grid_data, registry, metric_registry, tmp_path) -> None:
    from vcframe.config import Settings
    from vcframe.testing.dummy_specs import SINE_VOCODER

    broken = SINE_VOCODER.model_copy(update={"name": "broken-sine", "factory": "vcframe_no_such_module:Vocoder"})
    registry.register(broken)
    grid_data["systems"] = [
        {"name": "sine", **DUMMY, "vocoder": "test-sine"},
        {"name": "broken", **DUMMY, "vocoder": "broken-sine"},  # plans fine, fails to build its vocoder
    ]
    grid_data["texts"] = ["Fine.", "This text is longer than the limit."]
    settings = Settings(max_text_chars=20)  # the pipeline refuses the second text when it runs
    plan = plan_comparison(parse_grid(grid_data), settings=settings, registry=registry, metric_registry=metric_registry)
    outcome = run_comparison(plan, tmp_path / "out", jobs=1)
    statuses = [record["status"] for record in outcome.records]
    assert statuses == ["ok", "failed", "ok", "failed"] + ["failed"] * 4 and outcome.failed == 6
    assert all("failed to import its model code" in record["error"] for record in outcome.records[4:])
    assert "the text has 35 characters" in outcome.records[1]["error"] and "\n" not in outcome.records[1]["error"]
    assert not list((tmp_path / "out" / ".cache" / "items").glob("*.json"))[2:]  # failures are not cached


def test_a_third_party_metric_adds_its_column(grid_data, registry, metric_registry, tmp_path) -> None:
    from vcframe.metrics.spec import MetricColumn, MetricSpec

    spec = MetricSpec(
        name="loudness",
        api_version="1.0",
        summary="peak and RMS of the output",
        needs=frozenset({"generated"}),
        higher_is_better=None,
        unit="",
        factory="tests.test_compare:LoudnessMetric",
        extra_columns=(MetricColumn(name="loudness_rms", higher_is_better=None),),
    )
    metric_registry.register(spec, distribution="thirdparty")
    grid_data["systems"] = grid_data["systems"][:1]
    grid_data["metrics"] = ["loudness", "rtf"]
    plan = _plan(grid_data, registry, metric_registry)
    assert plan.columns[-6:] == ["loudness", "loudness_rms", "rtf", "rtf_embed", "rtf_synthesize", "rtf_vocode"]
    outcome = run_comparison(plan, tmp_path / "out", jobs=1)
    assert all(0 < record["metrics"]["loudness_rms"] < record["metrics"]["loudness"] <= 1 for record in outcome.records)


class LoudnessMetric:
    """A third-party metric for the test above (returns a plain mapping)."""

    def __init__(self, config: Any, context: Any) -> None:
        self.config = config

    def compute(self, inputs: Any) -> dict[str, float]:
        samples = inputs.generated.item(0)
        return {"loudness": float(abs(samples).max()), "loudness_rms": float((samples**2).mean() ** 0.5)}


# -- grid ---------------------------------------------------------------------------------------------


def test_grid_toml_with_every_form(tmp_path, speech_like_wav) -> None:
    speech_like_wav("ann.wav")
    speech_like_wav("truth.wav")
    (tmp_path / "more.txt").write_text("# comments are skipped\nThird text.\n\n  Fourth text.  \n")
    (tmp_path / "grid.toml").write_text(
        """
seed = 7
metrics = ["rtf"]
texts_file = "more.txt"
[[systems]]
name = "a"
vocoder = "test-sine"
[systems.options.vocoder]
amplitude = 0.5
[[voices]]
name = "ann"
reference = ["ann.wav", "truth.wav"]
[[texts]]
id = "first"
text = "First text."
ground_truth = { ann = "truth.wav" }
[[texts]]
text = "Second text."
"""
    )
    from vcframe.compare.grid import resolve_texts, resolve_voices

    grid = load_grid(tmp_path / "grid.toml")
    assert grid.systems[0].options == {"vocoder": {"amplitude": 0.5}} and grid.seed == 7
    voices = resolve_voices(grid)
    assert voices[0].name == "ann" and [path.name for path in voices[0].files] == ["ann.wav", "truth.wav"]
    texts = resolve_texts(grid, ["ann"])
    assert [(text.id, text.text) for text in texts] == [
        ("first", "First text."),
        ("t2", "Second text."),
        ("t3", "Third text."),
        ("t4", "Fourth text."),
    ]
    assert texts[0].ground_truth == {"ann": tmp_path / "truth.wav"}


@pytest.mark.parametrize(
    ("data", "error", "needle"),
    [
        ({"sytems": []}, ConfigError, "valid keys: seed, device"),
        ({"voices": ["nope.wav"], "texts": ["a"]}, InputError, "reference clip 'nope.wav' not found"),
        ({"voices": ["v.wav", "v.wav"], "texts": ["a"]}, InputError, "voice 'v' appears more than once"),
        ({"voices": ["v.wav"], "texts": ["a", {"id": "t1", "text": "b"}]}, InputError, "text id 't1' appears"),
        (
            {"voices": ["v.wav"], "texts": [{"text": "a", "ground_truth": {"bob": "v.wav"}}]},
            InputError,
            "unknown voice",
        ),
        ({"voices": ["v.wav"], "texts": []}, InputError, "names no texts"),
        ({"voices": ["v.wav"], "texts": ["a"], "systems": [{"vocoder": "nope"}]}, PluginError, "unknown vocoder"),
        (
            {"voices": ["v.wav"], "texts": ["a"], "systems": [{"options": {"vocoder": {"bogus": 1}}}]},
            ConfigError,
            "system 1 (test-tone+test-constant+test-sine): invalid options for vocoder 'test-sine'",
        ),
        ({"voices": ["v.wav"], "texts": ["a"], "systems": [{}, {}]}, InputError, "several systems are named"),
        ({"voices": ["v.wav"], "texts": ["a"], "metrics": ["nope"]}, PluginError, "unknown metric 'nope'"),
        ({"voices": ["v.wav"], "texts": ["a"], "judge": "nope"}, PluginError, "unknown encoder 'nope'"),
        ({"voices": ["v.wav"], "texts": ["a"], "metric_options": {"rtf": {"x": 1}}}, ConfigError, "invalid options"),
    ],
)
def test_bad_grids_fail_before_anything_runs(
    data, error, needle, dummy_registry, metric_registry, speech_like_wav, tmp_path
) -> None:
    from vcframe.config import Settings

    speech_like_wav("v.wav")
    settings = Settings(encoder="test-tone", synthesizer="test-constant", vocoder="test-sine")
    with pytest.raises(error, match=re.escape(needle)):
        grid = parse_grid({"judge": "test-tone", **data}, base_dir=tmp_path)
        plan_comparison(grid, settings=settings, registry=dummy_registry, metric_registry=metric_registry)


def test_system_flag_parsing() -> None:
    entry = parse_system_flag("gl=ge2e/tacotron/griffinlim")
    assert (entry.name, entry.encoder, entry.synthesizer, entry.vocoder) == ("gl", "ge2e", "tacotron", "griffinlim")
    entry = parse_system_flag("//wavernn")
    assert (entry.name, entry.encoder, entry.vocoder) == (None, None, "wavernn")
    with pytest.raises(InputError, match="ENCODER/SYNTHESIZER/VOCODER"):
        parse_system_flag("ge2e/tacotron")


def test_registered_voice_names_resolve_to_their_clips(tmp_path) -> None:
    from vcframe.compare.grid import resolve_voices
    from vcframe.voices import VoiceStore

    sample = VoiceStore(tmp_path / "voices").list()
    if not sample:
        pytest.skip("no sample voices ship with this checkout")
    grid = parse_grid({"voices": [sample[0].name]}, base_dir=tmp_path)
    voices = resolve_voices(grid)
    assert voices[0].name == sample[0].name and voices[0].files[0] == Path(sample[0].clip)


def test_librispeech_ids_resolve_under_the_dataset_root(tmp_path) -> None:
    from vcframe.compare.grid import resolve_voices

    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech" / "LibriSpeech"
    clips = sorted(root.glob("test-other/*/*/*.flac"))[:1]
    if not clips:
        pytest.skip(f"no LibriSpeech clips under {root}")
    utterance = clips[0].stem
    voices = resolve_voices(parse_grid({"voices": [f"librispeech:{utterance}"]}), dataset_root=str(root))
    assert voices[0].name == utterance and voices[0].files[0] == clips[0]


# -- CLI ----------------------------------------------------------------------------------------------


def test_cli_compare_from_flags_prints_summary_and_writes_report(
    registry, vcframe_cli, speech_like_wav, tmp_path
) -> None:
    voice = speech_like_wav("voice.wav", seconds=1.0)
    result = vcframe_cli(
        "compare",
        "--out",
        tmp_path / "out",
        "--system",
        "sine=test-tone/test-constant/test-sine",
        "--system",
        "loud=test-tone/test-constant/test-sine",
        "--system-option",
        "loud.vocoder.amplitude=0.9",
        "--system",
        "refused=test-tone/test-constant/griffinlim",
        "--voice",
        voice,
        "--text",
        "Hello there.",
        "--text",
        "Again.",
        "--ground-truth",
        f"voice:t2={voice}",
        "--metric",
        "rtf",
        "--metric",
        "mcd",
        "--judge",
        "test-tone",
        "--jobs",
        "1",
        "--no-plots",
        "--no-warmup",
    )
    assert result.exit_code == 0, result.stderr + result.stdout
    assert "comparison summary" in result.stdout and "sine" in result.stdout and "rtf ↓" in result.stdout
    assert "refused: refused: incompatible components" in " ".join(result.stderr.split())
    assert "4 generated, 0 reused" in result.stderr and "2 refused" in result.stderr
    rows = _rows(tmp_path / "out" / "results.csv")
    assert [row["status"] for row in rows] == ["ok"] * 4 + ["refused"] * 2 + ["ok"]
    assert [bool(row["mcd"]) for row in rows[:4]] == [False, True, False, True]
    assert rows[-1]["system"] == "ground-truth" and rows[-1]["mcd"] == rows[-1]["rtf"] == ""
    assert "1 ground-truth recordings scored" in " ".join(result.stderr.split())
    assert (tmp_path / "out" / "report.html").is_file() and not (tmp_path / "out" / "plots").exists()
    again = vcframe_cli(
        "compare",
        "--out",
        tmp_path / "out",
        "--system",
        "sine=test-tone/test-constant/test-sine",
        "--voice",
        voice,
        "--text",
        "Hello there.",
        "--metric",
        "rtf",
        "--judge",
        "test-tone",
        "--jobs",
        "1",
        "--no-plots",
        "--no-warmup",
    )
    assert again.exit_code == 0 and "0 generated, 1 reused" in again.stderr


def test_cli_compare_grid_file_and_errors(dummy_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    speech_like_wav("voice.wav", seconds=1.0)
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'judge = "test-tone"\nmetrics = ["rtf"]\nwarmup = false\nvoices = ["voice.wav"]\ntexts = ["Hi there."]\n'
        '[[systems]]\nencoder = "test-tone"\nsynthesizer = "test-constant"\nvocoder = "test-sine"\n'
    )
    result = vcframe_cli("compare", grid, "--out", tmp_path / "out", "--jobs", "1", "--no-plots")
    assert result.exit_code == 0, result.stderr
    assert _rows(tmp_path / "out" / "results.csv")[0]["system"] == "test-tone+test-constant+test-sine"
    for args, needle in [
        (["--system", "x=test-tone/test-constant/nope"], "unknown vocoder 'nope'"),
        (["--voice", "missing.wav"], "reference clip 'missing.wav' not found"),
        (["--system-option", "ghost.vocoder.amplitude=1"], "unknown system 'ghost'"),
        (["--ground-truth", "voice:t9=voice.wav"], "unknown text ids: t9"),
        (["--metric", "nope"], "unknown metric 'nope'"),
    ]:
        failed = vcframe_cli("compare", grid, "--out", tmp_path / "bad", "--jobs", "1", "--no-plots", *args)
        assert failed.exit_code == 2, (args, failed.stderr)
        assert needle in " ".join(failed.stderr.split()) and "Traceback" not in failed.stderr
    assert not (tmp_path / "bad" / "results.csv").exists()
    grid.write_text("voices = [")
    broken = vcframe_cli("compare", grid, "--out", tmp_path / "bad")
    assert broken.exit_code == 2 and "is not valid TOML" in broken.stderr


def test_a_metric_that_cannot_run_warns_and_failed_items_exit_non_zero(
    registry, vcframe_cli, speech_like_wav, tmp_path
) -> None:
    voice = speech_like_wav("voice.wav", seconds=2.0)
    common = ["--system", "sine=test-tone/test-constant/test-sine", "--voice", voice, "--text", "Hello there."]
    common += ["--text", "Again.", "--metric", "speaker_similarity", "--jobs", "1", "--no-plots", "--no-warmup"]
    missing = tmp_path / "missing.pt"
    judged = vcframe_cli(
        "compare", "--out", tmp_path / "out", "--judge", "ge2e", "-o", f"encoder.ge2e.checkpoint={missing}", *common
    )
    stderr = " ".join(judged.stderr.split())
    assert judged.exit_code == 0, stderr  # the items are fine; only the metric could not run
    assert "warning: metric speaker_similarity gave no value for 2 of 2 items: CheckpointError" in stderr, stderr
    assert "missing.pt" in stderr and "0 failed" in stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert any(note.startswith("metric speaker_similarity gave no value") for note in results["warnings"])
    assert "speaker_similarity gave no value for 2 of 2 items" in (tmp_path / "out" / "report.html").read_text()

    too_long = ["-o", "max_text_chars=8"]  # "Hello there." fails, "Again." does not
    failing = vcframe_cli("compare", "--out", tmp_path / "failing", "--judge", "test-tone", *too_long, *common)
    lines = [line for line in failing.stderr.splitlines() if line.startswith("error:")]
    assert failing.exit_code == 2, failing.stderr
    assert len(lines) == 1 and "1 of 2 items failed" in lines[0] and "Traceback" not in failing.stderr
    assert [row["status"] for row in _rows(tmp_path / "failing" / "results.csv")] == ["failed", "ok"]
