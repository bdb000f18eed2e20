"""The fused training path against the reference (RTVC's forward, nn.GRU, F.cross_entropy): each engine (C++
kernel, PyTorch) and precision forced, on tiny random models."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F
from vcframe_wavernn.fused import cross_entropy, gru_sequence
from vcframe_wavernn.model import build_network
from vcframe_wavernn.spec import WaveRNNConfig

#: fused float32 against the reference: relative difference of the loss and of every gradient (observed on
#: Intel Xeon AMX: loss 1.5e-7, gradients 7.3e-7; the order of float sums differs)
FLOAT32_RTOL = 1e-5
#: bfloat16 autocast against the float32 reference: relative difference of the loss (observed: 1.6e-5 small
#: preset, 8e-7 tiny, random weights)
BF16_LOSS_RTOL = 1e-3
#: bfloat16 gradients differ from float32 ones by 8-19 % of their norm at random initialisation (the reference
#: forward under autocast as much as the fused one), while the gradients of two halves of the same batch differ
#: by about 200 %: the rounding is a small part of the sampling noise. Bound: this fraction of that noise
#: (observed 0.08).
BF16_GRADIENT_NOISE_FRACTION = 0.25


def kernel_or_skip() -> None:
    from vcframe_wavernn.kernel import load_kernel

    if load_kernel() is None:
        pytest.skip("no C++ compiler: the kernel cannot be built here")


def relative(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().float(), expected.detach().float()
    return float((actual - expected).norm() / expected.norm())


@pytest.mark.parametrize("engine", ["torch", "cpp"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("batch, width", [(3, 20), (16, 32)])
def test_gru_sequence_equals_nn_gru(engine, precision, batch, width):
    """Forward and every gradient. Width 20: the kernel's 8-wide loops and their scalar tail; batch 16 x width 32:
    the recurrent products on AMX tiles in bfloat16 where the CPU has them (else at::mm, as for batch 3)."""
    if engine == "cpp":
        kernel_or_skip()
    torch.manual_seed(0)
    steps = 30
    gru = torch.nn.GRU(width + 3, width)
    inputs = torch.randn(steps, batch, width + 3, requires_grad=True)
    initial = torch.randn(1, batch, width, requires_grad=True)
    expected, _ = gru(inputs, initial)
    weights = torch.randn_like(expected)
    expected_grads = torch.autograd.grad((expected * weights).sum(), [inputs, initial, *gru.parameters()])
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    with autocast:
        projection = F.linear(inputs, gru.weight_ih_l0)
        output = gru_sequence(
            projection,
            initial,
            gru.weight_hh_l0,
            gru.bias_ih_l0,
            gru.bias_hh_l0,
            matmul_dtype=torch.bfloat16 if precision == "bf16" else torch.float32,
            engine=engine,
        )
    assert output.shape == expected.shape and output.dtype == projection.dtype
    grads = torch.autograd.grad((output.float() * weights).sum(), [inputs, initial, *gru.parameters()])
    tolerance = FLOAT32_RTOL if precision == "fp32" else 2e-2  # bfloat16: observed up to 5e-3
    assert relative(output, expected) <= tolerance
    for name, actual, wanted in zip(
        ["input", "h0", "W_ih", "W_hh", "b_ih", "b_hh"], grads, expected_grads, strict=True
    ):
        assert relative(actual, wanted) <= tolerance, name


def test_gru_sequence_backward_is_the_derivative():
    """The hand-written backward pass, checked numerically in float64 (PyTorch operations)."""
    torch.manual_seed(1)
    steps, batch, width = 6, 2, 5
    tensors = [
        torch.randn(steps, batch, 3 * width, dtype=torch.float64),
        torch.randn(batch, width, dtype=torch.float64),
        torch.randn(3 * width, width, dtype=torch.float64) * 0.5,
        torch.randn(3 * width, dtype=torch.float64),
        torch.randn(3 * width, dtype=torch.float64),
    ]
    assert torch.autograd.gradcheck(gru_sequence, [t.requires_grad_() for t in tensors])


@pytest.mark.parametrize("engine", ["torch", "cpp"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cross_entropy_equals_torch(engine, dtype):
    if engine == "cpp":
        kernel_or_skip()
    torch.manual_seed(2)
    logits = (torch.randn(5, 7, 512) * 3).to(dtype).requires_grad_()
    labels = torch.randint(0, 512, (5, 7))
    expected = F.cross_entropy(logits.float().reshape(-1, 512), labels.reshape(-1))
    (expected_grad,) = torch.autograd.grad(expected * 2, logits)
    loss = cross_entropy(logits, labels, engine=engine)
    (grad,) = torch.autograd.grad(loss * 2, logits)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert relative(grad, expected_grad) <= (1e-6 if dtype == torch.float32 else 1e-2)
    transposed = logits.detach().transpose(0, 1).contiguous().transpose(0, 1)  # a view of time-major memory
    assert float(cross_entropy(transposed, labels, engine=engine)) == pytest.approx(float(expected.detach()), rel=1e-6)


def tiny_batch(pad: int, dtype: torch.dtype = torch.float32, batch: int = 4, seq_len: int = 400):
    torch.manual_seed(3)
    network = build_network(WaveRNNConfig(preset="tiny", checkpoint=None, pad=pad)).to(dtype).train()
    for layer in network.upsample.up_layers[1::2]:  # not the box filters RTVC starts from: every tap matters
        layer.weight.data += 0.05 * torch.randn_like(layer.weight)
    samples = torch.rand(batch, seq_len, dtype=dtype) * 2 - 1
    labels = torch.randint(0, network.n_classes, (batch, seq_len))
    mels = torch.randn(batch, network.feat_dims, seq_len // network.hop_length + 2 * pad, dtype=dtype)
    return network, samples, labels, mels


def step_gradients(network, samples, labels, mels, *, fused, precision="fp32", engine="auto"):
    """A copy of ``network`` after one forward/backward: the loss, the gradients and the copy (batch-norm stats)."""
    network = copy.deepcopy(network)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with autocast:
        logits = network(samples, mels, fused=fused, engine=engine) if fused else network(samples, mels)
    if fused:
        loss = cross_entropy(logits, labels, engine=engine)
    else:  # the trainer's reference loss (float32 from bfloat16 logits)
        logits = logits.float() if logits.dtype == torch.bfloat16 else logits
        loss = F.cross_entropy(logits.transpose(1, 2).unsqueeze(-1), labels.unsqueeze(-1))
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in network.named_parameters() if p.grad is not None}, network


@pytest.mark.parametrize("pad", [1, 2])
def test_fused_forward_is_the_reference_function_in_float64(pad):
    """In float64 the arrangement (aux per frame, the mel operator, the GRU node) is exact: same loss, same
    gradient for every parameter (the smoothing taps included), same batch-norm statistics."""
    network, samples, labels, mels = tiny_batch(pad, torch.float64)
    expected_loss, expected, reference = step_gradients(network, samples, labels, mels, fused=False)
    loss, grads, fused = step_gradients(network, samples, labels, mels, fused=True, engine="torch")
    assert abs(float(loss) - float(expected_loss)) <= 1e-12
    trainable = sorted(name for name, parameter in network.named_parameters() if parameter.requires_grad)
    assert sorted(grads) == sorted(expected) == trainable
    for name, grad in grads.items():
        assert (grad - expected[name]).abs().max() <= 1e-12, name
    for mine, theirs in zip(fused.buffers(), reference.buffers(), strict=True):
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize("engine", ["torch", "cpp"])
def test_fused_float32_step_equals_the_reference(engine):
    if engine == "cpp":
        kernel_or_skip()
    network, samples, labels, mels = tiny_batch(2)
    expected_loss, expected, _ = step_gradients(network, samples, labels, mels, fused=False)
    loss, grads, _ = step_gradients(network, samples, labels, mels, fused=True, engine=engine)
    assert float(loss) == pytest.approx(float(expected_loss), rel=FLOAT32_RTOL)
    for name, grad in grads.items():
        assert relative(grad, expected[name]) <= FLOAT32_RTOL, name


@pytest.mark.parametrize("path", ["fused-cpp", "fused-torch", "reference"])
def test_bf16_step_equals_the_float32_reference_within_tolerance(path):
    fused, engine = path != "reference", path.removeprefix("fused-") if path != "reference" else "auto"
    if engine == "cpp":
        kernel_or_skip()
    network, samples, labels, mels = tiny_batch(2, batch=8)
    expected_loss, expected, _ = step_gradients(network, samples, labels, mels, fused=False)
    loss, grads, _ = step_gradients(network, samples, labels, mels, fused=fused, precision="bf16", engine=engine)
    assert float(loss) == pytest.approx(float(expected_loss), rel=BF16_LOSS_RTOL)
    flat = lambda gradients: torch.cat([gradients[name].float().flatten() for name in expected])  # noqa: E731
    halves = [step_gradients(network, samples[s], labels[s], mels[s], fused=False)[1] for s in (slice(4), slice(4, 8))]
    noise = float((flat(halves[0]) - flat(halves[1])).norm())
    rounding = float((flat(grads) - flat(expected)).norm())
    assert rounding <= BF16_GRADIENT_NOISE_FRACTION * noise
    assert all(p.dtype == torch.float32 for p in network.parameters() if p.is_floating_point())  # autocast
