"""``fit --precision``: the training step in float32 as it was, or with the CBHGs' convolutions and highways under
bfloat16 autocast (tiny preset, random weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner
from vcframe_tacotron.loss import guided_attention_loss, tacotron_loss
from vcframe_tacotron.model import build_network
from vcframe_tacotron.spec import TacotronConfig
from vcframe_tacotron.train import app, collate_items, training_precision, training_step

import vcframe.cpu
from vcframe.specs import EmbeddingSpec

#: Largest relative difference between a bfloat16 step's losses and the float32 step's on the same weights, batch
#: and random masks (measured on an Intel Xeon with AMX, tiny preset: 1.8e-4 on stop_loss, 2.2e-5 on the total;
#: the gradient norm 5.0e-4): about 10x that, for CPUs that compute bfloat16 another way (emulated without
#: AVX-512 BF16).
BF16_LOSS_RTOL = 2e-3
BF16_GRAD_NORM_RTOL = 5e-3


def tiny_network(seed: int = 0) -> torch.nn.Module:
    config = TacotronConfig(preset="tiny", checkpoint=None, embedding=EmbeddingSpec(space="test/random", dim=16))
    torch.manual_seed(seed)
    network = build_network(config)
    network.train()
    return network


def tiny_batch(r: int = 2) -> dict[str, torch.Tensor]:
    """Three items of 23-41 frames with ids 1-30 and random embeddings, collated as ``fit`` collates them."""
    rng = np.random.default_rng(5)
    lengths = [(7, 23), (12, 41), (9, 30)]
    texts = [list(rng.integers(1, 30, size=chars)) for chars, _ in lengths]
    mels = [rng.uniform(-4, 4, size=(80, frames)).astype(np.float32) for _, frames in lengths]
    embeds = rng.standard_normal((len(lengths), 16)).astype(np.float32)
    return collate_items(texts, mels, embeds, r, -4.0)


def step(network: torch.nn.Module, precision: str, batch: dict[str, torch.Tensor], seed: int = 3):
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    torch.manual_seed(seed)  # the same dropout and zoneout masks for every precision
    result = training_step(
        network,
        network,
        optimizer,
        batch,
        dropout=0.5,
        clean=True,
        silence=-4.0,
        clip=1.0,
        guided_weight=1.0,
        precision=precision,
    )
    return result, optimizer


def conv_output_dtypes(network: torch.nn.Module) -> list[torch.dtype]:
    """Records the dtype each CBHG convolution gives, call by call."""
    seen: list[torch.dtype] = []
    for cbhg in (network.encoder.cbhg, network.postnet):
        cbhg.conv_project1.conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    return seen


def test_bf16_step_is_close_to_fp32_and_keeps_float32_state() -> None:
    batch = tiny_batch()
    reference = tiny_network()
    reference_dtypes = conv_output_dtypes(reference)
    expected, _ = step(reference, "fp32", batch)
    network = tiny_network()
    dtypes = conv_output_dtypes(network)
    result, optimizer = step(network, "bf16", batch)
    assert reference_dtypes == [torch.float32] * 2 and dtypes == [torch.bfloat16] * 2
    assert (
        sorted(result.losses) == sorted(expected.losses) == ["guided_loss", "loss", "m1_loss", "m2_loss", "stop_loss"]
    )
    differences = {}
    for name, value in expected.losses.items():
        differences[name] = abs(float(result.losses[name].detach()) / float(value.detach()) - 1)
        assert differences[name] <= BF16_LOSS_RTOL, (name, differences[name])
    assert max(differences.values()) > 0  # bfloat16 did round something
    # outputs, weights, gradients and Adam's state in float32; the step was taken
    assert result.mel_postnet.dtype == result.attention.dtype == torch.float32 and result.stepped
    for parameter in network.parameters():
        assert parameter.dtype == torch.float32 and parameter.grad is not None and parameter.grad.dtype == torch.float32
    moments = [value for state in optimizer.state.values() for value in state.values() if value.dim() > 0]
    assert moments and all(moment.dtype == torch.float32 for moment in moments)
    assert float(result.grad_norm) == pytest.approx(float(expected.grad_norm), rel=BF16_GRAD_NORM_RTOL)


def test_fp32_step_is_the_float32_step_as_it_was() -> None:
    """``precision="fp32"`` computes exactly what the trainer computed before ``--precision`` existed."""
    batch = tiny_batch()
    network = tiny_network()
    result, _ = step(network, "fp32", batch)
    plain = tiny_network()
    optimizer = torch.optim.Adam(plain.parameters(), lr=1e-3)
    torch.manual_seed(3)
    mel_decoder, mel_postnet, attention, stop = plain(
        batch["chars"],
        batch["mels"],
        batch["embeds"],
        p=0.5,
        text_lengths=batch["text_lengths"],
        mel_lengths=batch["mel_lengths"],
        silence_value=-4.0,
    )
    losses = tacotron_loss(mel_decoder, mel_postnet, stop, batch["mels"], batch["stop_target"])
    decoder_steps = (batch["mel_lengths"] + 1) // 2
    loss = losses["loss"] + 1.0 * guided_attention_loss(attention, batch["text_lengths"], decoder_steps, 0.2)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
    optimizer.step()
    assert torch.equal(result.losses["loss"], losses["loss"])
    for (name, value), other in zip(network.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(value, other), name


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(vcframe.cpu, "cpu_has_bf16", lambda: True)
    assert training_precision("auto", cpu) == "bf16"
    assert training_precision("auto", torch.device("cuda")) == "fp32"  # measured on CPUs only
    monkeypatch.setattr(vcframe.cpu, "cpu_has_bf16", lambda: False)
    assert training_precision("auto", cpu) == "fp32"
    assert training_precision("bf16", cpu) == "bf16"  # asked for: honoured (emulated, slower)
    assert training_precision("fp32", cpu) == "fp32"


def fit(data: Path, run_dir: Path, *extra: str) -> str:
    args = ["fit", "--data", str(data), "--run-dir", str(run_dir), "--preset", "tiny", "--schedule", "2,1e-3,100,3"]
    args += ["--eval-every", "0", "--log-every", "1", "--guided-attention", "1.0", "--masking", "clean", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)


def test_bf16_resume_is_exact_and_recorded(prepared: Path, tmp_path: Path) -> None:
    output = fit(prepared, tmp_path / "straight", "--max-steps", "2", "--precision", "bf16")
    assert "precision bf16 (the CBHGs' convolutions and highways in bfloat16)" in output
    fit(prepared, tmp_path / "resumed", "--max-steps", "1", "--precision", "bf16")
    output = fit(prepared, tmp_path / "resumed", "--max-steps", "2", "--precision", "bf16", "--resume")
    assert "precision changed" not in output
    straight, resumed = checkpoint(tmp_path / "straight"), checkpoint(tmp_path / "resumed")
    assert straight["step"] == resumed["step"] == 2
    for key, value in straight["model_state"].items():
        assert torch.equal(value, resumed["model_state"][key]), key
    assert straight["train"]["precision"] == resumed["train"]["precision"] == "bf16"
    assert "precision_changes" not in resumed["train"]
    assert json.loads((tmp_path / "resumed" / "config.json").read_text())["train"]["precision"] == "bf16"


def test_a_precision_change_on_resume_is_recorded(prepared: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    fit(prepared, run_dir, "--max-steps", "1", "--precision", "fp32")
    output = fit(prepared, run_dir, "--max-steps", "2", "--precision", "bf16", "--resume")
    assert "precision changed at step 1: fp32 -> bf16" in output
    change = [{"step": 1, "old": "fp32", "new": "bf16"}]
    assert checkpoint(run_dir)["train"]["precision_changes"] == change
    assert json.loads((run_dir / "config.json").read_text())["train"]["precision_changes"] == change
    output = fit(prepared, run_dir, "--max-steps", "3", "--precision", "bf16", "--resume")
    assert "precision changed" not in output and checkpoint(run_dir)["train"]["precision_changes"] == change


def test_auto_falls_back_to_fp32_on_a_cpu_without_bf16(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCFRAME_CPU_DISABLE", "amx_bf16,avx512_bf16")  # the run takes an AVX2 CPU's path
    output = fit(prepared, tmp_path / "run", "--max-steps", "1")
    assert "precision fp32," in output and checkpoint(tmp_path / "run")["train"]["precision"] == "fp32"


def test_a_bad_precision_is_refused_in_one_line(prepared: Path, tmp_path: Path, vcframe_cli) -> None:
    result = vcframe_cli(
        *("train", "synthesizer", "fit", "--data", str(prepared), "--run-dir", str(tmp_path / "run")),
        *("--preset", "tiny", "--max-steps", "1", "--precision", "fp16"),
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--precision must be auto, fp32 or bf16, got 'fp16'" in result.stderr
    assert not (tmp_path / "run").exists()
