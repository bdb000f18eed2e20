"""Unit tests of the Tacotron component with tiny random weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from vcframe_tacotron.model import TacotronSynthesizer
from vcframe_tacotron.spec import SPEC

from vcframe.errors import CheckpointError, ConfigError, InputError
from vcframe.specs import GE2E_RTVC_EMBEDDING, EmbeddingSpec
from vcframe.types import Mel, SpeakerEmbedding

TEXTS = ["Hello world.", "A somewhat longer sentence, with 3 numbers!", "Hi"]


def _tiny(**overrides: object) -> TacotronSynthesizer:
    torch.manual_seed(0)
    config = SPEC.make_config({**SPEC.test_config, **overrides})
    synthesizer = TacotronSynthesizer(config)
    # make the stop head fire after a while so lengths differ between items
    with torch.no_grad():
        synthesizer.network.decoder.stop_proj.bias.fill_(0.0)
    return synthesizer


def _embedding(batch: int) -> SpeakerEmbedding:
    vector = torch.rand(batch, 256, generator=torch.Generator().manual_seed(1))
    return SpeakerEmbedding(vector / vector.norm(dim=1, keepdim=True), GE2E_RTVC_EMBEDDING)


def test_spec_module_imports_no_torch() -> None:
    code = (
        "import sys, vcframe_tacotron.spec, vcframe_tacotron.hooks; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_synthesize_shapes_lengths_alignment() -> None:
    synthesizer = _tiny()
    embedding = _embedding(3)
    vector_before = embedding.vector.clone()
    mel = synthesizer.synthesize(TEXTS, embedding)
    assert mel.frames.shape[:2] == (3, 80) and mel.frames.dtype == torch.float32
    assert mel.spec == SPEC.output
    assert int(mel.lengths.max()) == mel.frames.shape[2] and int(mel.lengths.min()) >= 1
    assert mel.alignment is not None and mel.alignment.shape[0] == 3
    assert mel.alignment.shape[2] == max(len(ids) for ids in synthesizer.texts_to_ids(TEXTS))
    assert mel.frames.device == synthesizer.device
    assert torch.equal(embedding.vector, vector_before)
    assert int(mel.lengths.max()) <= 40


#: batched against one-at-a-time synthesis: float32 agrees to rounding; bfloat16's products round differently at
#: another batch size (oneDNN picks its kernel by the batch), measured 3.7e-5 apart on the tiny model
BATCH_ATOL = {"float32": 1e-5, "bfloat16": 1e-4}


@pytest.mark.parametrize("precision", list(BATCH_ATOL))
def test_clean_batched_equals_one_at_a_time(precision: str) -> None:
    synthesizer = _tiny(trim_threshold=None, precision=precision)
    atol = BATCH_ATOL[precision]
    batched = synthesizer.synthesize(TEXTS, _embedding(3))
    for index, text in enumerate(TEXTS):
        single = synthesizer.synthesize([text], _embedding(3).select(index))
        length = int(single.lengths[0])
        assert int(batched.lengths[index]) == length
        torch.testing.assert_close(batched.frames[index, :, :length], single.frames[0, :, :length], atol=atol, rtol=0)
        steps, chars = single.alignment.shape[1:]
        torch.testing.assert_close(batched.alignment[index, :steps, :chars], single.alignment[0], atol=atol, rtol=0)


@pytest.mark.parametrize("precision", list(BATCH_ATOL))
def test_small_batch_size_chunks_give_the_same_result(precision: str) -> None:
    whole = _tiny(trim_threshold=None, precision=precision).synthesize(TEXTS, _embedding(3))
    chunked = _tiny(trim_threshold=None, batch_size=1, precision=precision).synthesize(TEXTS, _embedding(3))
    assert whole.lengths.tolist() == chunked.lengths.tolist()
    torch.testing.assert_close(whole.frames, chunked.frames, atol=BATCH_ATOL[precision], rtol=0)


def test_seed_makes_dropout_synthesis_reproducible() -> None:
    synthesizer = _tiny(inference_dropout=0.5, masking="rtvc")
    first = synthesizer.synthesize(TEXTS[:2], _embedding(1), seed=7)
    second = synthesizer.synthesize(TEXTS[:2], _embedding(1), seed=7)
    other = synthesizer.synthesize(TEXTS[:2], _embedding(1), seed=8)
    assert torch.equal(first.frames, second.frames)
    assert not torch.equal(first.frames, other.frames)


def test_trailing_silence_is_trimmed() -> None:
    synthesizer = _tiny(trim_threshold=100.0)  # nothing is that loud: one frame is kept
    assert synthesizer.synthesize(["Hello"], _embedding(1)).lengths.tolist() == [1]


def test_bad_input_raises_input_error() -> None:
    synthesizer = _tiny()
    with pytest.raises(InputError):
        synthesizer.synthesize([], _embedding(1))
    with pytest.raises(InputError):
        synthesizer.synthesize(["  "], _embedding(1))
    with pytest.raises(InputError):
        synthesizer.synthesize(["x" * 2001], _embedding(1))
    other_space = SpeakerEmbedding(torch.ones(1, 256) / 16, EmbeddingSpec(space="other", dim=256))
    with pytest.raises(InputError):
        synthesizer.synthesize(["Hello"], other_space)


def test_config_invariants_name_both_values() -> None:
    with pytest.raises(ValueError, match="encoder_dims"):
        SPEC.make_config({"preset": "tiny", "encoder_dims": 15})
    with pytest.raises(ValueError, match=r"r \(21\)|less than or equal"):
        SPEC.make_config({"preset": "tiny", "r": 21})
    with pytest.raises(ValueError):
        SPEC.make_config({"preset": "tiny", "unknown_field": 1})
    with pytest.raises(ConfigError, match="num_chars"):
        TacotronSynthesizer(SPEC.make_config({**SPEC.test_config, "num_chars": 70}))


def test_export_round_trip_and_refusals(tmp_path: Path) -> None:
    synthesizer = _tiny()
    path = tmp_path / "tacotron.safetensors"
    synthesizer.export(str(path), steps=0, training_data="none", license="MIT")
    loaded = TacotronSynthesizer(SPEC.make_config({**SPEC.test_config, "checkpoint": str(path)}))
    for key, value in synthesizer.network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[key], value), key
    assert loaded.checkpoint_metadata["frontend"] == "rtvc-english"

    with pytest.raises(CheckpointError, match=r"encoder.embedding.weight has shape \(66, 16\).*\(66, 24\)"):
        TacotronSynthesizer(SPEC.make_config({**SPEC.test_config, "checkpoint": str(path), "embed_dims": 24}))
    with pytest.raises(CheckpointError, match="frontend"):
        TacotronSynthesizer(SPEC.make_config({**SPEC.test_config, "checkpoint": str(path), "frontend": "rtvc-basic"}))
    other = EmbeddingSpec(space="other/space", dim=256)
    with pytest.raises(CheckpointError, match="space"):
        TacotronSynthesizer(
            SPEC.make_config({**SPEC.test_config, "checkpoint": str(path), "embedding": other.model_dump()})
        )


def test_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        TacotronSynthesizer(SPEC.make_config({**SPEC.test_config, "checkpoint": str(path)}))


def test_text_frontend_hook() -> None:
    from vcframe_tacotron import hooks

    from vcframe.hookspecs import TextFrontend

    frontend = hooks.vcframe_text_frontend(name="rtvc-english")
    assert isinstance(frontend, TextFrontend)
    assert len(frontend.symbols) == 66 and frontend.symbols[28] == "a" and frontend.symbols[65] == " "
    assert frontend.normalize("Dr. Who") == "doctor who"
    assert frontend.text_to_ids("a {HH AH0} b") == [28, 65, 65, 29, 1]  # ARPAbet dropped, as RTVC
    assert hooks.vcframe_text_frontend(name="unknown") is None


def test_text_frontend_matches_fixture_ids(rtvc_fixtures: Path) -> None:
    import json

    from safetensors import safe_open
    from vcframe_tacotron.frontend import rtvc_english

    with safe_open(str(rtvc_fixtures / "features_ref.safetensors"), framework="pt") as handle:
        texts = json.loads(handle.metadata()["texts"])
        for index, text in enumerate(texts):
            assert rtvc_english().text_to_ids(text) == handle.get_tensor(f"texts_ids.{index}").tolist()


def test_inference_dropout_comes_from_the_config_then_the_checkpoint_then_rtvc(tmp_path: Path) -> None:
    from safetensors import safe_open
    from vcframe_tacotron.model import RTVC_INFERENCE_DROPOUT

    from vcframe.checkpoints import save_safetensors

    source = _tiny()
    plain, recommending, broken = tmp_path / "plain.safetensors", tmp_path / "zero.safetensors", tmp_path / "bad.st"
    source.export(str(plain), steps=0)
    source.export(str(recommending), steps=0, synthesis={"inference_dropout": 0.0})

    def load(path: Path, **overrides: object) -> TacotronSynthesizer:
        options = {**SPEC.test_config, "checkpoint": str(path), "inference_dropout": None, **overrides}
        return TacotronSynthesizer(SPEC.make_config(options))

    assert SPEC.make_config({}).inference_dropout is None
    assert load(plain).inference_dropout == RTVC_INFERENCE_DROPOUT == 0.5
    assert load(recommending).inference_dropout == 0.0
    assert load(recommending, inference_dropout=0.3).inference_dropout == 0.3  # the user's setting wins
    # the recommendation decides the output: 0 is deterministic whatever the seed, 0.5 is not
    embedding = _embedding(1)
    zero = load(recommending)
    assert torch.equal(
        zero.synthesize(["Hello."], embedding, seed=1).frames, zero.synthesize(["Hello."], embedding, seed=2).frames
    )
    rtvc = load(plain)
    assert not torch.equal(
        rtvc.synthesize(["Hello."], embedding, seed=1).frames, rtvc.synthesize(["Hello."], embedding, seed=2).frames
    )

    with safe_open(str(recommending), framework="pt") as handle:
        metadata = dict(handle.metadata())
        state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    save_safetensors(state, broken, {**metadata, "synthesis": '{"inference_dropout": 1.5}'})
    with pytest.raises(CheckpointError, match=r"recommends inference_dropout 1.5, outside \[0, 1\)"):
        load(broken)


def test_precision_auto_follows_the_cpu_and_each_form_is_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: bfloat16 where the CPU computes it natively, float32 elsewhere; oneDNN's packed weights where they
    run, PyTorch's bfloat16 products otherwise; every form gives the plain loop's mel within its tolerance."""
    import vcframe_tacotron.inference as inference

    import vcframe.cpu

    plain = _tiny(trim_threshold=None, precision="float32")
    embedding = _embedding(3)
    ids = plain.texts_to_ids(TEXTS)
    chars = torch.zeros(3, max(map(len, ids)), dtype=torch.long)
    for row, item in enumerate(ids):
        chars[row, : len(item)] = torch.tensor(item)
    lengths = torch.tensor([len(item) for item in ids])
    expected = plain.network.generate(chars, embedding.vector, steps=40, p=0.0, text_lengths=lengths)[1]

    monkeypatch.setattr(vcframe.cpu, "cpu_has_bf16", lambda: False)
    assert _tiny(precision="auto").dtype == torch.float32
    monkeypatch.setattr(vcframe.cpu, "cpu_has_bf16", lambda: True)
    synthesizer = _tiny(trim_threshold=None, precision="auto")
    assert synthesizer.dtype == torch.bfloat16
    forms = [(True, 1e-3)] if inference.packed_bf16_available() else []
    for packed, atol in [*forms, (False, 1e-3)]:
        monkeypatch.setattr(inference, "packed_bf16_available", lambda packed=packed: packed)
        synthesizer._decoder_step = None
        step = synthesizer.decoder_step()
        assert step is not None and step.dtype == torch.bfloat16 and step.packed is packed
        assert all(linear.packed is packed for linear in [*step.lstms, step.rnn_input, step.mel_proj])
        mel = synthesizer.network.generate(chars, embedding.vector, steps=40, p=0.0, text_lengths=lengths, step=step)
        torch.testing.assert_close(mel[1], expected, atol=atol, rtol=0)
        assert not torch.equal(mel[1], expected)  # bfloat16 did round
    float32_step = plain.decoder_step()
    assert float32_step is not None and float32_step.dtype == torch.float32 and not float32_step.packed
    fast = plain.network.generate(chars, embedding.vector, steps=40, p=0.0, text_lengths=lengths, step=float32_step)
    torch.testing.assert_close(fast[1], expected, atol=1e-5, rtol=0)


def test_default_precision_is_auto_as_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default stays ``auto`` (bfloat16 where the CPU computes it natively) because it was measured to cost no
    quality on the shipped demo weights (README "Fast decoding", issue 26): words heard right within the noise of
    Griffin-Lim's seed, speaker similarity within 0.002, no alignment that missed the text's end. Changing the
    default means measuring again (benchmarks/quality.py and plugins/synthesizers/tacotron/benchmarks/precision.py
    with -o synthesizer.tacotron.precision=float32 / bfloat16)."""
    import vcframe.cpu

    assert SPEC.make_config({}).precision == "auto"
    assert "precision" not in SPEC.test_config  # the tiny model below runs the default
    monkeypatch.setattr(vcframe.cpu, "cpu_has_bf16", lambda: True)
    assert _tiny().dtype == torch.bfloat16
    monkeypatch.setattr(vcframe.cpu, "cpu_has_bf16", lambda: False)
    assert _tiny().dtype == torch.float32


def test_precision_benchmark_counts_stops_and_alignment_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/precision.py's per-item summary: decoder steps without the batch's zero padding rows, the final
    attention position against the text's own characters, the cap, and mel differences over the common frames."""
    import importlib.util

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the script sets it on import; restored after the test
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "precision.py"
    spec = importlib.util.spec_from_file_location("tacotron_precision_benchmark", path)
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    mel_spec = SPEC.output
    attention = torch.zeros(1, 6, 9)  # 4 steps over 7 characters, then a padding row and padding columns
    for step, position in enumerate([0, 2, 4, 6]):
        attention[0, step, position] = 1.0
    frames = torch.zeros(1, 80, 16)
    mel = Mel(frames, mel_spec, torch.tensor([14]), attention)
    summary = benchmark.alignment_summary(mel, 7, 4, 2000, 0)
    assert summary == {
        "characters": 7,
        "decoder_steps": 4,
        "stop_frame": 16,
        "frames": 14,
        "final_position": 6,
        "capped": False,
        "reached_end": True,
    }
    short = attention.clone()
    short[0, 3] = 0.0
    short[0, 3, 3] = 1.0  # the last step attends to character 3 of 7
    assert not benchmark.alignment_summary(Mel(frames, mel_spec, torch.tensor([14]), short), 7, 4, 2000, 2)[
        "reached_end"
    ]
    assert benchmark.alignment_summary(Mel(frames, mel_spec, torch.tensor([14]), short), 7, 4, 2000, 3)["reached_end"]
    capped = benchmark.alignment_summary(mel, 7, 4, 16, 0)
    assert capped["capped"] and not capped["reached_end"]
    later = frames.clone()
    later[0, :, 7:] += 0.5
    whole, second_half = benchmark.mel_difference(mel, Mel(later, mel_spec, torch.tensor([16]), attention))
    assert whole == pytest.approx(0.5 * 7 / 14) and second_half == pytest.approx(0.5)


def test_unknown_precision_is_refused() -> None:
    from vcframe.cpu import inference_dtype

    with pytest.raises(ValueError, match="precision"):
        _tiny(precision="int4")
    with pytest.raises(ConfigError, match="precision must be auto, float32 or bfloat16, got 'int4'"):
        inference_dtype("int4")


def test_decoder_step_is_rebuilt_when_weights_or_r_change() -> None:
    synthesizer = _tiny(trim_threshold=None, precision="float32")
    first = synthesizer.decoder_step()
    assert synthesizer.decoder_step() is first  # built once
    before = synthesizer.synthesize(TEXTS[:1], _embedding(1))
    with torch.no_grad():
        synthesizer.network.decoder.res_rnn1.weight_hh.mul_(1.5)  # in place, as an optimizer step
    second = synthesizer.decoder_step()
    assert second is not first
    after = synthesizer.synthesize(TEXTS[:1], _embedding(1))
    assert not torch.equal(before.frames, after.frames)
    synthesizer.network.r = 3
    third = synthesizer.decoder_step()
    assert third is not None and third.r == 3


def test_a_checkpoint_loads_into_an_uninitialised_network_with_the_same_mels(tmp_path: Path) -> None:
    """No random initialisation for weights about to load (cold start, issue 26): no random numbers drawn, and the
    same mels as the randomly initialised network the weights were loaded into."""
    source = _tiny(inference_dropout=0.0)
    path = tmp_path / "tacotron.safetensors"
    source.export(str(path), steps=0, training_data="none", license="MIT")
    random_state = torch.get_rng_state()
    loaded = TacotronSynthesizer(
        SPEC.make_config({**SPEC.test_config, "checkpoint": str(path), "inference_dropout": 0.0})
    )
    assert torch.equal(torch.get_rng_state(), random_state)
    for key, value in source.network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[key], value), key
    mel, expected = loaded.synthesize(TEXTS, _embedding(3), seed=0), source.synthesize(TEXTS, _embedding(3), seed=0)
    assert torch.equal(mel.lengths, expected.lengths)
    torch.testing.assert_close(mel.frames, expected.frames, rtol=1e-5, atol=1e-5)
