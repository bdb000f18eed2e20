"""End-to-end CLI tests with the dummy components; every bad input gives one line and exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from tests._cli import DUMMIES, one_line_error


def test_run_writes_audio_and_metadata(dummy_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    out = tmp_path / "out.wav"
    result = vcframe_cli(
        "run",
        *DUMMIES,
        "--reference",
        speech_like_wav(),
        "--text",
        "Hello there. Bye.",
        "--out",
        out,
        "--seed",
        4,
        "--metadata",
        "--plot",
        tmp_path / "plot.png",
    )
    assert result.exit_code == 0, result.stderr
    samples, rate = soundfile.read(str(out))
    assert rate == 16000 and len(samples) > 0 and np.abs(samples).max() > 0.01
    metadata = json.loads((tmp_path / "out.wav.json").read_text())
    assert metadata["seed"] == 4 and metadata["components"]["synthesizer"]["name"] == "test-constant"
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_embed_then_run_with_embedding(dummy_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    result = vcframe_cli(
        "embed",
        "--encoder",
        "test-tone",
        "-r",
        speech_like_wav(),
        "-r",
        speech_like_wav("b.wav", f0=200),
        "--out",
        tmp_path / "voice.npy",
    )
    assert result.exit_code == 0, result.stderr
    result = vcframe_cli(
        "run", *DUMMIES, "--embedding", tmp_path / "voice.npy", "--text", "Hi.", "--out", tmp_path / "o.wav"
    )
    assert result.exit_code == 0, result.stderr


def test_check_reports_fields(dummy_registry, vcframe_cli) -> None:
    from vcframe_griffinlim.spec import SPEC

    assert vcframe_cli("check", *DUMMIES).exit_code == 0
    dummy_registry.register(SPEC)
    result = vcframe_cli("check", "--encoder", "test-tone", "--synthesizer", "test-constant", "--vocoder", "griffinlim")
    assert "hop_length" in result.stdout and "64" in result.stdout and "200" in result.stdout
    one_line_error(result, "incompatible components")


def test_text_file_and_config_show(dummy_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("From a file.", encoding="utf-8")
    result = vcframe_cli("run", *DUMMIES, "-r", speech_like_wav(), "--text-file", text, "--out", tmp_path / "o.wav")
    assert result.exit_code == 0, result.stderr
    shown = vcframe_cli("config", "show", "-o", "vocoder.test-sine.amplitude=0.5", "--format", "json")
    assert json.loads(shown.stdout)["components"]["vocoder"]["test-sine"]["amplitude"] == 0.5


def test_plugins_commands(dummy_registry, vcframe_cli) -> None:
    dummy_registry.add_installed()
    listed = json.loads(vcframe_cli("plugins", "list", "--format", "json", "--requirements").stdout)
    names = {(p["kind"], p["name"]) for p in listed["plugins"]}
    assert ("vocoder", "griffinlim") in names and ("vocoder", "test-sine") in names
    shown = vcframe_cli("plugins", "show", "griffinlim")
    assert shown.exit_code == 0 and "n_iter" in shown.stdout
    assert vcframe_cli("plugins", "validate", "test-sine").exit_code == 0
    available = vcframe_cli("plugins", "list", "--available", "--format", "json")
    assert available.exit_code == 0


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing", "not found"),
        ("empty", "empty (0 bytes)"),
        ("corrupt", "cannot read"),
        ("text-file", "cannot read"),
        ("silence", "silent"),
        ("short", "needs at least"),
        ("odd-rate", None),
    ],
)
def test_bad_reference_audio(dummy_registry, vcframe_cli, tmp_path, case, needle) -> None:
    reference = tmp_path / "ref.wav"
    if case == "empty":
        reference.write_bytes(b"")
    elif case == "corrupt":
        reference.write_bytes(b"RIFF" + bytes(range(200)))
    elif case == "text-file":
        reference.write_text("this is not audio")
    elif case == "silence":
        soundfile.write(str(reference), np.zeros(16000, np.float32), 16000)
    elif case == "short":
        soundfile.write(str(reference), 0.3 * np.ones(800, np.float32), 16000)
    elif case == "odd-rate":
        t = np.arange(11025) / 11025
        soundfile.write(str(reference), (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 11025)
    out = tmp_path / "out.wav"
    result = vcframe_cli("run", *DUMMIES, "-r", reference, "--text", "Hello.", "--out", out)
    if needle is None:  # an odd sample rate is fine: it is resampled
        assert result.exit_code == 0, result.stderr
        return
    one_line_error(result, needle)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--text", ""], "text is empty"),
        (["--text", "x" * 100_000], "100,000 characters"),
        (["--vocoder", "nonexistent"], "unknown vocoder 'nonexistent'"),
        (["--out", "missing-dir/out.wav"], "does not exist"),
        (["-o", "nonsense=1"], "invalid settings"),
        (["-o", "vocoder.test-sine.volume=3"], "valid options: amplitude, chunk_frames"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_arguments(dummy_registry, vcframe_cli, speech_like_wav, tmp_path, args, needle) -> None:
    base = {"--text": "Hello.", "--out": str(tmp_path / "out.wav")}
    merged = [*DUMMIES, "-r", str(speech_like_wav())]
    given = dict(zip(args[::2], args[1::2], strict=True))
    for key, value in base.items():
        if key not in given:
            merged += [key, value]
    result = vcframe_cli("run", *merged, *args)
    one_line_error(result, needle)
    assert not (tmp_path / "out.wav").exists()


def test_no_voice_given(dummy_registry, vcframe_cli, tmp_path) -> None:
    one_line_error(vcframe_cli("run", *DUMMIES, "--text", "Hi.", "--out", tmp_path / "o.wav"), "no voice given")


def test_debug_shows_traceback(dummy_registry, vcframe_cli, tmp_path) -> None:
    result = vcframe_cli(
        "--debug", "run", *DUMMIES, "-r", tmp_path / "nope.wav", "--text", "Hi.", "--out", tmp_path / "o.wav"
    )
    assert result.exit_code == 2 and "Traceback" in result.stderr


def test_disabling_a_name_no_plugin_has_warns(dummy_registry, vcframe_cli, tmp_path, monkeypatch) -> None:
    """A typo in --disable, VCFRAME_DISABLE_PLUGINS or disable_plugins disables nothing: say so, once per name."""
    result = vcframe_cli("--disable", "griffinlmi", "--disable", "test-sine", "plugins", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("warning:") == 1
    assert "--disable 'griffinlmi': no installed plugin has this name, so it disables nothing" in result.stderr
    quiet = vcframe_cli("--disable", "vcframe-griffinlim:griffinlim", "--disable", "wer", "plugins", "list")
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr  # a component by qualified name, a metric
    monkeypatch.setenv("VCFRAME_DISABLE_PLUGINS", "tacotron-frontend,nothing-here")  # a hook plugin, a typo
    (tmp_path / "vcframe.toml").write_text('disable_plugins = ["also-nothing"]\n')
    shown = vcframe_cli("config", "show")
    assert shown.exit_code == 0, shown.stderr
    assert "VCFRAME_DISABLE_PLUGINS 'nothing-here'" in shown.stderr and "tacotron-frontend" not in shown.stderr
    assert "disable_plugins 'also-nothing'" in shown.stderr


def test_run_uses_one_torch_thread_unless_the_user_chose(
    dummy_registry, vcframe_cli, speech_like_wav, tmp_path, torch_threads, monkeypatch
) -> None:
    import torch

    def run(*extra) -> int:
        out = tmp_path / "out.wav"
        result = vcframe_cli("run", *DUMMIES, "-r", speech_like_wav(), "-t", "Hi.", "--out", out, *extra)
        assert result.exit_code == 0, (result.stderr, result.exception)
        return torch.get_num_threads()

    torch_threads(8)  # torch's default on an 8-core machine
    assert run() == 1
    assert run("--threads", 3) == 3
    torch_threads(8)
    assert run("-o", "threads=2") == 2
    torch_threads(5)
    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # torch started with it
    assert run() == 5
    assert run("--threads", 2) == 2
    refused = vcframe_cli("run", *DUMMIES, "-t", "Hi.", "--threads", 0)  # typer's usage error
    assert refused.exit_code == 2 and "--threads" in refused.stderr
    assert "threads" in one_line_error(
        vcframe_cli("run", *DUMMIES, "-r", speech_like_wav(), "-t", "Hi.", "-o", "threads=0")
    )
