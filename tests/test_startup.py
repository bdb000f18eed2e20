"""A cold ``vcframe run`` imports only what it uses (issue 26, cold start).

Importing librosa (with numba and scipy.signal) cost a one-sentence run about 2 s of its 5-7 s; the run path now
computes its STFT, mel filterbank and resampling in :mod:`vcframe.audio` and Griffin-Lim in numpy. These tests run
in a fresh interpreter and fail when a change pulls a heavy module back in.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile

#: Never needed to parse a command line: ``vcframe --help`` and every refusal before a model loads stay fast.
NOT_FOR_THE_CLI = ("torch", "numpy", "scipy", "librosa", "numba", "soundfile", "soxr", "safetensors", "matplotlib")
#: Never needed by a run of the default bundle (GE2E + Tacotron + Griffin-Lim).
NOT_FOR_A_RUN = ("librosa", "numba", "scipy", "matplotlib", "pandas", "sklearn", "huggingface_hub", "fastapi")


def _modules_after(code: str) -> set[str]:
    """Top-level names of the modules loaded once ``code`` has run in a fresh interpreter."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_module() -> None:
    loaded = _modules_after("import vcframe.cli")
    assert "typer" in loaded  # the check sees what the import loads
    assert sorted(loaded & set(NOT_FOR_THE_CLI)) == []


def test_a_default_bundle_run_loads_no_librosa_scipy_or_numba(tmp_path) -> None:
    """The default components on random tiny weights, end to end with a reference that needs resampling."""
    seconds = np.arange(2 * 22050) / 22050
    voiced = 0.3 * np.sin(2 * np.pi * 150 * seconds) * (1 + np.sin(2 * np.pi * 3 * seconds)) / 2
    soundfile.write(str(tmp_path / "reference.wav"), voiced.astype(np.float32), 22050)
    options = {
        "encoder": {"ge2e": {"preset": "tiny", "checkpoint": None}},
        "synthesizer": {"tacotron": {"preset": "tiny", "checkpoint": None, "max_frames": 20}},
        "vocoder": {"griffinlim": {"n_iter": 2}},
    }
    code = f"""
import vcframe.cli
from vcframe.audio import save_audio
from vcframe.config import Settings
from vcframe.pipeline import Pipeline

settings = Settings(encoder="ge2e", synthesizer="tacotron", vocoder="griffinlim", components={options!r})
pipeline = Pipeline(settings=settings, device="cpu")
save_audio(pipeline.clone("Hello there.", {str(tmp_path / "reference.wav")!r}, seed=0), {str(tmp_path / "out.wav")!r})
"""
    loaded = _modules_after(code)
    assert {"torch", "vcframe_ge2e", "vcframe_tacotron", "vcframe_griffinlim", "soxr"} <= loaded
    assert soundfile.info(str(tmp_path / "out.wav")).frames > 0
    assert sorted(loaded & set(NOT_FOR_A_RUN)) == []


#: Modules that a run does not use: rich's emoji table (the consoles replace no emoji codes), the server, Dask,
#: comparisons. (rich.table comes with rich.progress, which draws the run's progress bar.)
NOT_FOR_THE_RUN_COMMAND = (
    "rich._emoji_codes",
    "vcframe.serve",
    "fastapi",
    "starlette",
    "uvicorn",
    "dask",
    "vcframe.compare",
)


def test_the_run_command_loads_no_module_only_other_commands_use(tmp_path) -> None:
    """``vcframe run`` end to end (the default bundle and its shipped weights, short output) loads no emoji table,
    server or comparison code."""
    seconds = np.arange(2 * 22050) / 22050
    soundfile.write(
        str(tmp_path / "reference.wav"), (0.3 * np.sin(2 * np.pi * 150 * seconds)).astype(np.float32), 22050
    )
    options = ["encoder.ge2e.require_speech=false", "synthesizer.tacotron.max_frames=20", "vocoder.griffinlim.n_iter=2"]
    arguments = ["run", "-r", str(tmp_path / "reference.wav"), "-t", "Hello there.", "--out", str(tmp_path / "out.wav")]
    arguments += [part for option in options for part in ("-o", option)]
    code = f"""
import json, sys
from typer.testing import CliRunner
from vcframe.cli import app
result = CliRunner().invoke(app, {arguments!r})
assert result.exit_code == 0, result.output
print(json.dumps(sorted(sys.modules)))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert soundfile.info(str(tmp_path / "out.wav")).frames > 0
    assert {"rich.console", "rich.progress", "typer", "vcframe_griffinlim"} <= set(loaded)  # the check sees the run
    unwanted = [name for name in loaded if name.startswith(NOT_FOR_THE_RUN_COMMAND)]
    assert unwanted == []


#: Every command that runs models, with arguments it refuses (exit 2) right after setting the thread defaults.
MODEL_COMMANDS = {
    "run": ["run", "--reference", "{tmp}/missing.wav", "--text", "Hi.", "--out", "{tmp}/o.txt"],
    "embed": ["embed", "--out", "{tmp}/e.npy"],
    "serve": ["serve", "--max-upload-mb", "-1"],
    "batch": ["batch", "{tmp}/missing.csv", "--out", "{tmp}/out", "--shard", "nonsense"],
    "compare": ["compare", "--out", "{tmp}/a-file"],
    "voices add": ["voices", "add", "Not A Name!", "{tmp}/missing.wav", "--consent"],
}


@pytest.mark.parametrize("command", sorted(MODEL_COMMANDS))
def test_every_model_command_sets_the_thread_defaults_unless_the_user_chose(command, monkeypatch, tmp_path) -> None:
    """One sleeping-OpenMP and one-OpenBLAS-thread default for run, embed, serve, batch, compare and voices add (the
    server's Griffin-Lim built its pseudo-inverse with two OpenBLAS threads before)."""
    import os

    from typer.testing import CliRunner

    from vcframe.cli import app

    (tmp_path / "a-file").write_text("not a folder")
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in MODEL_COMMANDS[command]]
    for name in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(name, "unset below; restored after the test")
        monkeypatch.delenv(name)
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert (os.environ.get("OMP_WAIT_POLICY"), os.environ.get("OPENBLAS_NUM_THREADS")) == ("PASSIVE", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert CliRunner().invoke(app, arguments).exit_code == 2
    assert (os.environ["OMP_WAIT_POLICY"], os.environ["OPENBLAS_NUM_THREADS"]) == ("ACTIVE", "2")


def test_the_run_command_sets_numpy_blas_threads_before_numpy_loads(tmp_path) -> None:
    """The variable only counts if numpy was not loaded yet: in a fresh process the run command's setting holds."""
    pytest.importorskip("threadpoolctl")
    code = f"""
import os
os.environ.pop("OPENBLAS_NUM_THREADS", None)
os.environ["OMP_NUM_THREADS"] = "2"
from typer.testing import CliRunner
from vcframe.cli import app
missing = {str(tmp_path / "missing.wav")!r}
result = CliRunner().invoke(app, ["run", "-r", missing, "-t", "Hi.", "--out", {str(tmp_path / "o.wav")!r}])
assert result.exit_code == 2, result.output
import numpy, threadpoolctl
pools = [pool for pool in threadpoolctl.threadpool_info() if pool["internal_api"] == "openblas"]
print(json.dumps([pool["num_threads"] for pool in pools]))
"""
    result = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    threads = json.loads(result.stdout.strip().splitlines()[-1])
    if not threads:
        pytest.skip("numpy here is not built with OpenBLAS")
    assert threads == [1] * len(threads)


def test_messages_print_emoji_codes_as_given(tmp_path) -> None:
    """A ``:name:`` in a path is a path, not an emoji (and rich's emoji table stays unloaded)."""
    from typer.testing import CliRunner

    from vcframe.cli import app

    missing = tmp_path / ":x: take:thumbs_up:.wav"
    result = CliRunner().invoke(app, ["run", "-r", str(missing), "-t", "Hi.", "--out", str(tmp_path / "o.wav")])
    assert result.exit_code == 2
    assert ":x: take:thumbs_up:.wav" in result.output
