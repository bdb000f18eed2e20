"""The generation kernel's precisions and instruction sets: each path forced, against RTVC's fixtures and each other.

Teacher-forced logits (every previous sample given, as in training) are compared with the logits RTVC's own forward
computed for the fixtures' batch (``forward_eval_logits``): float32 on every path within the fixtures' 1e-5;
bfloat16 within 1 % of the largest logit, int8 within 5 % (observed on this set: bfloat16 0 on the widening paths,
whose weights are the fixtures' exactly, 0.35 % on AMX, which rounds the activations too; int8 1.9 %). An
instruction set the CPU lacks (``VCFRAME_CPU_DISABLE``) falls back to the next one down.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from vcframe_wavernn.generate import Generator
from vcframe_wavernn.kernel import ISAS, available_isas, choose_isa, load_kernel, pack_matrix, quantize_rows
from vcframe_wavernn.model import WaveRNNVocoder
from vcframe_wavernn.spec import WaveRNNConfig

from vcframe.specs import RTVC_SYNTHESIZER_MEL
from vcframe.types import Mel

#: the largest |logit - RTVC's| allowed, as a fraction of RTVC's largest |logit|
RELATIVE_TOLERANCE = {"float32": None, "bfloat16": 0.01, "int8": 0.05}


@pytest.fixture(scope="module")
def kernel():
    module = load_kernel()
    if module is None:
        pytest.skip("no C++ compiler: the kernel cannot be built here")
    return module


@pytest.fixture(scope="module")
def fixture_vocoder(fixtures_dir):
    return WaveRNNVocoder(WaveRNNConfig(checkpoint=str(fixtures_dir / "vocoder.pt")))


@pytest.fixture(scope="module")
def ref(fixtures_dir):
    return load_file(str(fixtures_dir / "vocoder_ref.safetensors"))


def _generator(network, precision: str, path: str, threads: int = 1) -> Generator:
    if path == "torch":
        return Generator(network, engine="torch", precision=precision, threads=threads)
    return Generator(network, engine="cpp", precision=precision, isa=path, threads=threads)


def _require(kernel, path: str, precision: str) -> None:
    if path != "torch" and choose_isa(kernel, path, precision) != path:
        pytest.skip(f"this CPU has no {path} path for {precision}")


@pytest.mark.parametrize("frame_tables", [False, True])
@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
@pytest.mark.parametrize("path", [*ISAS, "torch"])
def test_teacher_forced_logits_match_rtvc(kernel, fixture_vocoder, ref, precision, path, frame_tables):
    """Both forms of the conditioning: precomputed block-wide (RTVC's arithmetic, float32's default) and summed at
    each step from per-frame tables (the reduced precisions' default, C++ kernel only)."""
    _require(kernel, path, precision)
    if frame_tables and path == "torch":
        pytest.skip("the frame tables are read by the C++ kernel only")
    generator = _generator(fixture_vocoder.network, precision, path, threads=2)
    assert generator.isa == path
    logits, _ = generator.teacher_forced(ref["collate_mels"], ref["collate_x"], frame_tables=frame_tables)
    expected = ref["forward_eval_logits"]
    assert logits.shape == expected.shape
    error = (logits - expected).abs().max().item()
    if precision == "float32":
        assert error <= 1e-5
    else:
        assert error <= RELATIVE_TOLERANCE[precision] * expected.abs().max().item()
        if precision == "int8" or path == "amx":
            assert error > 0  # weights or activations really rounded


def _tiny_config(**settings) -> WaveRNNConfig:
    """A random-weight tiny WaveRNN with short folds, so that a few frames cross several blocks and folds."""
    return WaveRNNConfig(preset="tiny", checkpoint=None, **settings)


@pytest.mark.parametrize("batched", [True, False])
def test_frame_tables_generate_what_the_precomputed_conditioning_generates(kernel, batched):
    """The same waveform in float32 from either form of the conditioning (they differ by float rounding, about 1e-7
    of the logits): a batch of two lengths, folds padded past an item's end, the first and later blocks."""
    torch.manual_seed(0)
    vocoder = WaveRNNVocoder(
        _tiny_config(target=300, overlap=40, block_steps=170, batched=batched, precision="float32", sampler="sample")
    )
    assert vocoder.generator.engine == "cpp" and not vocoder.generator.frame_tables  # float32's default
    frames = torch.rand(2, 80, 11) * 8 - 4
    mel = Mel(frames, RTVC_SYNTHESIZER_MEL, torch.tensor([11, 6]))
    precomputed = vocoder.generate_float64(mel, seed=2)
    vocoder.generator.frame_tables = True
    tables = vocoder.generate_float64(mel, seed=2)
    for item in range(2):
        assert np.array_equal(tables[item], precomputed[item])


def test_int8_paths_give_the_same_bits(kernel, fixture_vocoder, ref):
    """Exact integer dot products on every path: the int8 logits do not depend on the instruction set."""
    paths = [isa for isa in ISAS if choose_isa(kernel, isa, "int8") == isa]
    results = [
        _generator(fixture_vocoder.network, "int8", isa).teacher_forced_logits(ref["collate_mels"], ref["collate_x"])
        for isa in paths
    ]
    for isa, logits in zip(paths[1:], results[1:], strict=True):
        assert torch.equal(logits, results[0]), isa


@pytest.mark.parametrize("sampler", ["sample", "inverse_cdf"])
@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
def test_thread_count_does_not_change_the_samples(kernel, precision, sampler):
    """Threads split every matrix by output columns; each column is computed the same way whatever the split."""
    torch.manual_seed(0)
    config = _tiny_config(target=400, overlap=50, block_steps=100, precision=precision, sampler=sampler)
    mel = Mel(torch.rand(1, 80, 12) * 8 - 4, RTVC_SYNTHESIZER_MEL)
    outputs = []
    for threads in (1, 2, 3):
        vocoder = WaveRNNVocoder(config.model_copy(update={"threads": threads}))
        torch.manual_seed(0)
        vocoder.network.load_state_dict(WaveRNNVocoder(config).network.state_dict())
        outputs.append(vocoder.generate_float64(mel, seed=3)[0])
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


@pytest.mark.parametrize("precision", ["float32", "int8"])
@pytest.mark.parametrize("path", [*ISAS, "torch"])
def test_inverse_cdf_draws_the_class_at_the_uniform_number(kernel, precision, path):
    """Each step draws the first class whose cumulative softmax probability (of the step's own logits) exceeds its
    uniform number: computed here in float64, the same class wherever the number is not within float rounding of a
    boundary between two classes, on every instruction set and in the PyTorch loop."""
    _require(kernel, path, precision)
    torch.manual_seed(0)
    network = WaveRNNVocoder(WaveRNNConfig(preset="tiny", checkpoint=None)).network
    with torch.no_grad():
        network.fc3.weight.mul_(40)  # peaked softmaxes beside flat ones
    generator = _generator(network, precision, path, threads=2)
    folds, frames, classes = 3, 4, network.n_classes
    mels = torch.rand(folds, 80, frames + 2 * network.pad) * 2 - 1
    samples = torch.rand(folds, frames * 200) * 2 - 1
    uniforms = torch.rand(frames * 200, folds, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    logits, drawn = generator.teacher_forced(mels, samples, "inverse_cdf", uniforms)
    cumulative = torch.softmax(logits.double(), dim=2).cumsum(dim=2)
    threshold = uniforms.t().unsqueeze(2)
    expected = (cumulative <= threshold).sum(dim=2).clamp(max=classes - 1)
    got = torch.round((drawn.double() + 1) * (classes - 1) / 2).long()
    clear = (cumulative - threshold).abs().amin(dim=2) > 1e-5  # float sums of 512 terms: well under 1e-5 off
    assert clear.double().mean() > 0.95  # observed 0.989 (peaked softmaxes crowd their tails' boundaries)
    assert torch.equal(got[clear], expected[clear])
    top = logits.argmax(dim=2)
    assert 0.05 < (got != top).double().mean() < 0.95  # draws, not the most likely class


@pytest.mark.parametrize(
    ("disabled", "requested", "precision", "not_expected"),
    [
        ("amx_tile", "amx", "bfloat16", "amx"),
        ("amx_int8", "amx", "int8", "amx"),
        ("avx512f", "avx512", "float32", "avx512"),
        ("avx512_vnni", "avx512", "int8", "avx512"),
        ("avx2", "avx2", "float32", "avx2"),
    ],
)
def test_missing_instruction_set_falls_back(
    kernel, fixture_vocoder, ref, monkeypatch, disabled, requested, precision, not_expected
):
    """A path the CPU lacks is never taken: the next one down runs, with the same logits as the forced one."""
    monkeypatch.setenv("VCFRAME_CPU_DISABLE", disabled)
    chosen = choose_isa(kernel, requested, precision)
    assert chosen != not_expected
    assert ISAS.index(chosen) > ISAS.index(requested)
    assert chosen in available_isas(kernel)
    generator = _generator(fixture_vocoder.network, precision, requested)
    assert generator.isa == chosen
    logits = generator.teacher_forced_logits(ref["collate_mels"], ref["collate_x"])
    expected = ref["forward_eval_logits"]
    tolerance = RELATIVE_TOLERANCE[precision] or 1e-5 / expected.abs().max().item()
    assert (logits - expected).abs().max().item() <= tolerance * expected.abs().max().item()


def test_float32_has_no_amx_path_and_auto_takes_the_best(kernel, monkeypatch):
    monkeypatch.delenv("VCFRAME_WAVERNN_ISA", raising=False)
    best = available_isas(kernel)[0]
    assert choose_isa(kernel, "auto", "bfloat16") == best
    assert choose_isa(kernel, "amx", "float32") != "amx"
    monkeypatch.setenv("VCFRAME_WAVERNN_ISA", "avx2")
    assert choose_isa(kernel, "auto", "float32") == ("avx2" if "avx2" in available_isas(kernel) else "generic")
    with pytest.raises(ValueError, match="instruction set"):
        choose_isa(kernel, "sse9", "float32")


def test_packing_round_trips_and_quantisation_is_per_column_and_row():
    torch.manual_seed(0)
    matrix = torch.randn(70, 96)  # K not a multiple of 64, three gates of 32 columns
    for precision, isa in (("float32", "avx2"), ("bfloat16", "amx"), ("int8", "avx512"), ("int8", "avx2")):
        packed = pack_matrix(matrix, precision, isa, gates=3)
        assert packed.weight.numel() == packed.weight.shape[0] * 128 * 32  # K padded to 128
        if precision == "int8":
            rebuilt = packed.dequantized * packed.dequantized_scale
            column_step = matrix.abs().amax(0) / 127
            assert ((rebuilt - matrix).abs() <= column_step / 2 + 1e-6).all()
            assert packed.dequantized.abs().amax(0).eq(127).all()  # every column uses the full range
        else:
            assert (packed.dequantized - matrix).abs().max() <= (2**-8 if precision == "bfloat16" else 0) * 4
    rows = torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]])
    integers, scales = quantize_rows(rows)
    assert integers.tolist() == [[64.0, -127.0, 32.0], [0.0, 0.0, 0.0]]
    assert scales.flatten().tolist() == pytest.approx([1 / 127, 0.0])


def test_precision_option(monkeypatch):
    from vcframe_wavernn import model

    assert WaveRNNConfig().precision == "auto"  # bfloat16 where it is native (float32 for RTVC's arithmetic)
    monkeypatch.setattr(model, "cpu_has_bf16", lambda: False)
    assert model.resolve_precision("auto", kernel=True) == "float32"
    monkeypatch.setattr(model, "cpu_has_bf16", lambda: True)
    assert model.resolve_precision("auto", kernel=True) == "bfloat16"
    assert model.resolve_precision("auto", kernel=False) == "float32"  # the PyTorch loop: float32 products anyway
    assert model.resolve_precision("int8", kernel=False) == "int8"
    torch_loop = WaveRNNVocoder(WaveRNNConfig(preset="tiny", checkpoint=None, engine="torch"))
    assert torch_loop.generator.precision == "float32"
    with pytest.raises(ValueError):
        WaveRNNConfig(precision="float16")
    vocoder = WaveRNNVocoder(WaveRNNConfig(preset="tiny", checkpoint=None, precision="int8", engine="torch"))
    assert vocoder.generator.precision == "int8" and vocoder.generator.isa == "torch"


def test_folding_is_chosen_from_the_length_unless_fixed():
    from vcframe_wavernn.generate import MAX_AUTO_FOLDS, choose_folding, steps_for

    for seconds in (0.1, 0.5, 2, 6, 30):
        samples = int(seconds * 16000)
        target = choose_folding(samples)
        folds, steps = steps_for(samples // 200, 200, True, target, target // 10)
        assert 2000 <= target <= 8000
        assert folds <= MAX_AUTO_FOLDS or target == 8000
        assert steps <= 9600  # never more sequential steps than RTVC's 8000/800
    assert choose_folding(32000) == 2000  # 2 s: 15 folds x 2,400 steps instead of 4 x 9,600
    vocoder = WaveRNNVocoder(WaveRNNConfig(preset="tiny", checkpoint=None))
    assert vocoder.folding(160) == (2000, 200)
    assert WaveRNNVocoder(WaveRNNConfig(preset="tiny", checkpoint=None, target=8000)).folding(160) == (8000, 800)
    fixed = WaveRNNVocoder(WaveRNNConfig(preset="tiny", checkpoint=None, target=300, overlap=30))
    assert fixed.folding(160) == (300, 30)
    mel = Mel(torch.rand(1, 80, 30) * 8 - 4, RTVC_SYNTHESIZER_MEL)
    assert WaveRNNVocoder(WaveRNNConfig(preset="tiny", checkpoint=None, block_steps=500)).vocode(mel).samples.shape == (
        1,
        30 * 200,
    )
