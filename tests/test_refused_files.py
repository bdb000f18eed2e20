"""Files that used to end in "unexpected ... please report it" (exit 1) or were found bad only after the whole
synthesis: each is now one line, exit 2, nothing written, found before any model runs (issue 21, section 2)."""

from __future__ import annotations

import fractions
import io

import numpy as np
import pytest
import soundfile
import torch

from tests._cli import DUMMIES, one_line_error
from vcframe.errors import AudioInputError, CheckpointError, InputError, OutputError


def _pickled_checkpoint(path):
    torch.save({"model_state": {}, "step": fractions.Fraction(1, 2)}, path)  # not a weights-only type
    return path


# -- checkpoints ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"hello\n", b"just some notes about the run\n" * 3, b"e" * 64], ids=["short", "lines", "letters"]
)
def test_a_text_file_given_as_a_checkpoint_is_refused(tmp_path, content: bytes) -> None:
    from vcframe.checkpoints import load_state, load_torch

    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    for load in (load_state, load_torch):
        with pytest.raises(CheckpointError, match="is corrupt or not a torch checkpoint") as raised:
            load(path)
        assert "notes.txt" in str(raised.value) and "\n" not in str(raised.value)


def test_cli_refuses_a_text_file_as_the_encoder_checkpoint(vcframe_cli, speech_like_wav, tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    checkpoint = f"encoder.ge2e.checkpoint={notes}"
    result = vcframe_cli("embed", "--encoder", "ge2e", "-r", speech_like_wav(), "-o", checkpoint, "--out", "e.npy")
    one_line_error(result, "not a torch checkpoint")
    assert not (tmp_path / "e.npy").exists()


def test_another_components_export_names_the_component_it_belongs_to() -> None:
    from vcframe_ge2e.model import GE2EEncoder
    from vcframe_ge2e.spec import GE2EConfig
    from vcframe_tacotron.model import TacotronSynthesizer
    from vcframe_tacotron.spec import SPEC as TACOTRON
    from vcframe_wavernn.model import WaveRNNVocoder
    from vcframe_wavernn.spec import WaveRNNConfig

    from vcframe.checkpoints import resolve

    wavernn = str(resolve("vocoder", "wavernn", "registry:wavernn-demo").path)
    tacotron = str(resolve("synthesizer", "tacotron", "registry:tacotron-demo").path)
    with pytest.raises(CheckpointError, match="belongs to the vocoder/wavernn component, not to synthesizer"):
        TacotronSynthesizer(TACOTRON.make_config({"checkpoint": wavernn}))
    with pytest.raises(CheckpointError, match="belongs to the tacotron component, not to vocoder 'wavernn'"):
        WaveRNNVocoder(WaveRNNConfig(checkpoint=tacotron))
    with pytest.raises(CheckpointError, match="belongs to the tacotron component, not to encoder 'ge2e'"):
        GE2EEncoder(GE2EConfig(checkpoint=tacotron))


# -- trainers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["pickled", "corrupt", "text"])
@pytest.mark.parametrize(
    "command",
    [
        ("train", "vocoder", "--plugin", "wavernn", "export", "--run-dir", "{run}", "--out", "v.safetensors"),
        ("train", "synthesizer", "--plugin", "tacotron", "export", "--run-dir", "{run}", "--out", "s.safetensors"),
        ("train", "synthesizer", "--plugin", "tacotron", "gta", "--run-dir", "{run}", "--data", "{run}", "--out", "g"),
        ("train", "encoder", "--plugin", "ge2e", "export", "{run}/checkpoint.pt", "e.safetensors", "--training-data=x"),
    ],
    ids=["wavernn-export", "tacotron-export", "tacotron-gta", "ge2e-export"],
)
def test_trainers_refuse_a_pickled_or_corrupt_training_checkpoint(vcframe_cli, tmp_path, command, damage) -> None:
    run = tmp_path / "run"
    run.mkdir()
    checkpoint = run / "checkpoint.pt"
    if damage == "pickled":
        _pickled_checkpoint(checkpoint)
    elif damage == "corrupt":
        checkpoint.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    else:
        checkpoint.write_text("step = 5\n")
    result = vcframe_cli(*(part.format(run=run) for part in command))
    needle = "would run code" if damage == "pickled" else "not a torch checkpoint"
    one_line_error(result, needle)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("trainer", ["wavernn", "tacotron", "ge2e"])
def test_trainers_refuse_to_resume_from_a_pickled_checkpoint(trainer: str, tmp_path) -> None:
    """--resume goes through the core's safe loader (it used torch.load directly: an UnpicklingError)."""
    from typer.testing import CliRunner

    run = tmp_path / "run"
    run.mkdir()
    _pickled_checkpoint(run / "checkpoint.pt")
    data = tmp_path / "data"
    if trainer == "wavernn":
        from vcframe_wavernn.train import app

        data.mkdir()
        soundfile.write(data / "a.wav", np.sin(np.arange(16000) / 5).astype(np.float32) * 0.3, 16000)
        arguments = ["fit", "--data", str(data), "--run-dir", str(run), "--resume", "--preset", "tiny"]
    elif trainer == "tacotron":
        from vcframe_tacotron.train import app

        from vcframe.testing import write_tone_corpus

        corpus = write_tone_corpus(tmp_path / "corpus", ["Hello there.", "A second line."])
        prepared = tmp_path / "prepared"
        assert (
            CliRunner()
            .invoke(app, ["preprocess", str(corpus), "--out", str(prepared), "--encoder", "random-per-speaker"])
            .exit_code
            == 0
        )
        arguments = ["fit", "--data", str(prepared), "--run-dir", str(run), "--resume", "--preset", "tiny"]
    else:
        from vcframe_ge2e.train import app

        for speaker in ("a", "b"):
            (data / speaker).mkdir(parents=True)
            for index in range(2):
                np.save(data / speaker / f"{index}.npy", np.random.default_rng(index).random((200, 40), np.float32))
        arguments = ["fit", "--data", str(data), "--run-dir", str(run), "--resume", "--preset", "tiny"]
        arguments += ["--val-speakers", "0", "--speakers-per-batch", "2", "--utterances-per-speaker", "2"]
    result = CliRunner().invoke(app, arguments)
    assert isinstance(result.exception, CheckpointError), (result.exit_code, result.stdout, result.exception)
    assert "would run code when loaded" in str(result.exception) and "checkpoint.pt" in str(result.exception)


# -- training data ----------------------------------------------------------------------------------------


def test_pickled_arrays_in_training_data_are_refused_naming_the_file(tmp_path) -> None:
    from vcframe_ge2e.data import MelCorpus

    from vcframe.datasets import load_array, load_mel

    pickled = tmp_path / "speaker" / "utt.npy"
    pickled.parent.mkdir()
    np.save(pickled, np.array([{"not": "numbers"}, 1], dtype=object), allow_pickle=True)
    for load in (lambda: load_array(pickled, what="mel"), lambda: load_mel(pickled, 80)):
        with pytest.raises(InputError, match="holds pickled Python objects") as raised:
            load()
        assert str(pickled) in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(InputError, match=f"mel '{pickled}' holds pickled"):
        MelCorpus(tmp_path).mel(pickled)
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="broken.npy"):
        load_array(broken, what="embedding")
    np.save(tmp_path / "fine.npy", np.ones((2, 3), np.float32))
    assert load_array(tmp_path / "fine.npy").shape == (2, 3)


# -- outputs ----------------------------------------------------------------------------------------------


def test_unsupported_output_suffix_is_refused_before_anything_runs(dummy_registry, vcframe_cli, tmp_path) -> None:
    # the reference does not exist: the output is checked first, so no model (nor reading the clip) runs
    result = vcframe_cli("run", *DUMMIES, "-r", "missing.wav", "-t", "Hello.", "--out", tmp_path / "out.mp3")
    one_line_error(result, "cannot write 'mp3' files")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["too long", "refused by the OS"])
def test_output_paths_the_os_refuses_are_one_line_before_anything_runs(
    dummy_registry, vcframe_cli, tmp_path, case: str
) -> None:
    import os

    if case == "too long":
        out, needle = tmp_path / ("a" * 300 + ".wav"), "is 304 bytes long"
    else:
        if not os.path.isdir("/proc/self") or not os.access("/proc", os.W_OK):
            pytest.skip("needs a /proc that the access check calls writable (Linux as root)")
        out, needle = "/proc/out.wav", "cannot create files in '/proc'"
    result = vcframe_cli("run", *DUMMIES, "-r", "missing.wav", "-t", "Hello.", "--out", out)
    one_line_error(result, needle)
    with pytest.raises(OutputError, match=needle):
        from vcframe.audio import save_audio
        from vcframe.types import Waveform

        save_audio(Waveform.from_numpy(np.zeros(160, np.float32), 16000), out)


def test_a_long_but_legal_output_name_is_written(tmp_path) -> None:
    from vcframe.audio import save_audio
    from vcframe.types import Waveform

    out = tmp_path / ("b" * 240 + ".wav")
    save_audio(Waveform.from_numpy(np.full(160, 0.1, np.float32), 16000), out)
    assert [path.name for path in tmp_path.iterdir()] == [out.name]


# -- corrupt MP3 ------------------------------------------------------------------------------------------


def test_a_corrupt_mp3_is_one_line_with_the_right_reason_and_no_decoder_noise(tmp_path, capfd) -> None:
    from vcframe.audio import load_audio

    buffer = io.BytesIO()
    t = np.arange(32000) / 16000
    soundfile.write(buffer, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000, format="MP3")
    corrupt = tmp_path / "voice.mp3"
    corrupt.write_bytes(buffer.getvalue()[:400] + bytes(range(256)) * 20)
    capfd.readouterr()
    with pytest.raises(AudioInputError) as raised:
        load_audio(corrupt)
    message = str(raised.value)
    assert "corrupt or not MP3 data" in message and "does not exist" not in message and "\n" not in message
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""  # mpg123 printed "Illegal Audio-MPEG-Header ..." here
