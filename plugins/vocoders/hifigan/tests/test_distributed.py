"""HiFi-GAN training under torchrun (2 CPU processes, gloo): the same result as one process, exact after a killed
rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vcframe_hifigan.train import app

from vcframe.testing import write_tone_corpus
from vcframe.testing.distributed import (
    check_equals_single_process,
    check_killed_rank_resumes_exactly,
    compare_states,
    torchrun_ok,
)

#: Largest parameter difference allowed between the 2-process and the 1-process run after 4 steps (the ranks sum
#: gradients in another order).
TOLERANCE = 1e-4
STATE_KEYS = ("generator", "mpd", "msd")


def hifigan_fit_args(data: Path, run_dir: Path) -> list[str]:
    return [
        "fit",
        "--data",
        str(data),
        "--run-dir",
        str(run_dir),
        *(
            "-o",
            "upsample_rates=[8,5,5]",
            "-o",
            "upsample_kernel_sizes=[16,11,11]",
            "-o",
            "upsample_initial_channel=16",
        ),
        *("--disc-width", "0.125", "--batch-size", "5", "--segment-frames", "8"),  # 7 clips: shares of 2 and 3
        *("--max-steps", "4", "--checkpoint-every", "2", "--adversarial-start", "1", "--log-every", "1"),
        *("--sample-every", "2", "--valid-data", str(data / "alice"), "--valid-every", "2", "--valid-clips", "2"),
        *("--precision", "fp32", "--threads", "1"),
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tone_corpus(tmp_path_factory.mktemp("corpus") / "tones", ["a", "b", "c", "d"])


@pytest.fixture(scope="module")
def two_process_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    torchrun_ok(["train", "vocoder", "--plugin", "hifigan", *hifigan_fit_args(corpus, run_dir)], nproc=2)
    return run_dir


def test_two_processes_equal_one_process(corpus: Path, two_process_run: Path, tmp_path: Path) -> None:
    single, distributed = check_equals_single_process(
        app,
        hifigan_fit_args(corpus, tmp_path / "single"),
        tmp_path / "single",
        two_process_run,
        tolerance=TOLERANCE,
        state_keys=STATE_KEYS,
    )
    assert single["step"] == distributed["step"] == 4
    single_log = (tmp_path / "single" / "log.jsonl").read_text().splitlines()
    distributed_log = (two_process_run / "log.jsonl").read_text().splitlines()
    assert len(single_log) == len(distributed_log) == 4  # rank 0 logs the global batch's losses, once
    assert len((two_process_run / "valid.jsonl").read_text().splitlines()) == 2
    assert sorted(p.name for p in (two_process_run / "samples").glob("*.wav")) == [
        "step_0000002.wav",
        "step_0000004.wav",
    ]


def test_killed_rank_resumes_exactly(corpus: Path, two_process_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    args = ["train", "vocoder", "--plugin", "hifigan", *hifigan_fit_args(corpus, run_dir)]
    result, killed, uninterrupted = check_killed_rank_resumes_exactly(
        args, run_dir, two_process_run, steps=4, kill_rank_at_step=(1, 3), state_keys=STATE_KEYS
    )
    assert "resumed at step 2" in result.output
    for key in ("optim_g", "optim_d"):
        pairs = zip(uninterrupted[key]["state"].values(), killed[key]["state"].values(), strict=True)
        assert max(compare_states(expected, actual) for expected, actual in pairs) == 0.0
    steps = [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # the restarted attempt cut the log back to its checkpoint's step
