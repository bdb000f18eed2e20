"""WaveRNN's fused training operations: a GRU over a whole teacher-forced sequence, and the cross-entropy.

``nn.GRU`` on the CPU runs its time loop as separate autograd operations per step (about 20 per step, forward
and backward, each allocating its result), and its weight gradients as one small product per step.
:func:`gru_sequence` takes the input projection of every step already computed (one large product outside,
``W_ih x`` for the whole sequence) and runs the recurrence as one autograd node:

* forward, per step: one ``(B, H) x (H, 3H)`` product and one pass over the gates;
* backward, per step: one pass that turns the incoming gradient into the gates' gradients (and sums the bias
  gradients), and one ``(B, 3H) x (3H, H)`` product; ``W_hh``'s gradient is one large product after the loop.

:func:`cross_entropy` is ``F.cross_entropy`` over the mu-law classes in one pass per row each way (log-sum-exp
forward; softmax minus one-hot backward, written in the logits' dtype), without the float32 copy of bfloat16
logits and the zero-filled gradient that the unfused loss makes.

Two implementations compute each: the C++ kernel of :mod:`vcframe_wavernn.kernel` (used when it builds;
``engine="cpp"``) and PyTorch operations (``engine="torch"``; the fallback without a compiler). The recurrent
products can run in bfloat16 (``matmul_dtype``); the state carried from step to step and every sum stay in
float32. The GRU equations are ``nn.GRU``'s (PyTorch's gate order r, z, n)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)     z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))  h' = (1 - z) * n + z * h
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Literal

import torch
import torch.nn.functional as F

Engine = Literal["auto", "cpp", "torch"]


def training_kernel(engine: Engine = "auto") -> ModuleType | None:
    """The compiled kernel for ``engine`` 'cpp' or 'auto' (None when it does not build here), None for 'torch'.

    Raises RuntimeError for 'cpp' when the kernel cannot be built here."""
    if engine not in ("auto", "cpp", "torch"):
        raise ValueError(f"engine must be 'auto', 'cpp' or 'torch', got {engine!r}")
    if engine == "torch":
        return None
    from vcframe_wavernn.kernel import load_kernel

    kernel = load_kernel()
    if kernel is None and engine == "cpp":
        raise RuntimeError("the WaveRNN C++ kernel cannot be built here (no compiler?); use engine='torch'")
    return kernel


def _state_dtype(projection: torch.Tensor) -> torch.dtype:
    """float64 for float64 inputs (gradient checks), float32 otherwise (bfloat16 inputs included)."""
    return torch.float64 if projection.dtype == torch.float64 else torch.float32


class _SequenceGRU(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        projection: torch.Tensor,
        hidden: torch.Tensor,
        weight_hh: torch.Tensor,
        bias_ih: torch.Tensor,
        bias_hh: torch.Tensor,
        matmul_dtype: torch.dtype,
        kernel: ModuleType | None,
    ) -> torch.Tensor:
        if matmul_dtype == torch.float32:
            matmul_dtype = _state_dtype(projection)
        ctx.matmul_dtype, ctx.kernel = matmul_dtype, kernel
        ctx.input_dtype, ctx.hidden_dtype = projection.dtype, hidden.dtype
        with torch.autocast("cpu", enabled=False):
            if kernel is not None:
                output, saved = _gru_forward_kernel(
                    kernel, projection, hidden, weight_hh, bias_ih, bias_hh, matmul_dtype
                )
            else:
                output, saved = _gru_forward_torch(projection, hidden, weight_hh, bias_ih, bias_hh, matmul_dtype)
        ctx.save_for_backward(weight_hh, *saved)
        return output

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        weight_hh, *saved = ctx.saved_tensors
        with torch.autocast("cpu", enabled=False):
            if ctx.kernel is not None:
                grads = _gru_backward_kernel(
                    ctx.kernel, grad_output, weight_hh, saved, ctx.matmul_dtype, ctx.input_dtype
                )
            else:
                grads = _gru_backward_torch(grad_output, weight_hh, saved, ctx.matmul_dtype, ctx.input_dtype)
        grad_projection, grad_hidden, grad_weight, grad_bias_ih, grad_bias_hh = grads
        return (
            grad_projection,
            grad_hidden.to(ctx.hidden_dtype),
            grad_weight.to(weight_hh.dtype),
            grad_bias_ih.to(weight_hh.dtype),
            grad_bias_hh.to(weight_hh.dtype),
            None,
            None,
        )


@functools.cache
def amx_usable() -> bool:
    """True when the CPU has AMX tiles for bfloat16, the kernel was built with AMX and Linux lets this process use
    them (checked once per process)."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if check is None or not check():
        return False
    kernel = training_kernel("auto")
    return kernel is not None and bool(kernel.amx_available())


def _tile_layout(matrix: torch.Tensor, rows: int) -> torch.Tensor:
    """``matrix`` (K, N) bfloat16 as (K / 2, N, 2) pairs, the layout AMX's bfloat16 product reads, when the
    kernel can use AMX for ``rows`` rows times it; an empty tensor otherwise (the kernel then uses at::mm)."""
    depth, columns = matrix.shape
    if matrix.dtype != torch.bfloat16 or rows % 16 or depth % 32 or columns % 32 or not amx_usable():
        return torch.empty(0, dtype=matrix.dtype)
    return matrix.reshape(depth // 2, 2, columns).transpose(1, 2).contiguous()


def _gru_forward_kernel(
    kernel: ModuleType,
    projection: torch.Tensor,
    hidden: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
    matmul_dtype: torch.dtype,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    steps, batch, three_h = projection.shape
    width = three_h // 3
    bias_ih, bias_hh = bias_ih.detach().float(), bias_hh.detach().float()
    # states[0] = h0, states[t + 1] = h_t, and the gates r | z | n | W_hn h + b_hn: kept in the products' dtype
    states = torch.empty(steps + 1, batch, width, dtype=matmul_dtype)
    saved = torch.empty(steps, batch, 4 * width, dtype=matmul_dtype)
    output = torch.empty(steps, batch, width, dtype=projection.dtype)
    weight_t = weight_hh.detach().t().to(matmul_dtype)
    kernel.gru_forward(
        projection.detach().contiguous(),
        hidden.detach().float().contiguous(),
        states,
        weight_t,
        _tile_layout(weight_t, batch),
        (bias_ih[: 2 * width] + bias_hh[: 2 * width]).contiguous(),
        bias_ih[2 * width :].contiguous(),
        bias_hh[2 * width :].contiguous(),
        saved,
        output,
    )
    return output, [states, saved]


def _gru_backward_kernel(
    kernel: ModuleType,
    grad_output: torch.Tensor,
    weight_hh: torch.Tensor,
    saved: list[torch.Tensor],
    matmul_dtype: torch.dtype,
    input_dtype: torch.dtype,
) -> tuple[torch.Tensor, ...]:
    states, gates = saved
    steps, batch, four_h = gates.shape
    width = four_h // 4
    grad_projection = torch.empty(steps, batch, 3 * width, dtype=input_dtype)
    grad_recurrent = torch.empty(steps, batch, 3 * width, dtype=matmul_dtype)
    grad_bias_hh = torch.zeros(3 * width)
    grad_bias_in = torch.zeros(width)
    carry = torch.zeros(batch, width)
    weight = weight_hh.detach().to(matmul_dtype).contiguous()
    kernel.gru_backward(
        grad_output.to(input_dtype).contiguous(),
        states,
        gates,
        weight,
        _tile_layout(weight, batch),
        grad_projection,
        grad_recurrent,
        grad_bias_hh,
        grad_bias_in,
        carry,
    )
    previous = states[:-1].reshape(steps * batch, width)
    grad_weight = torch.mm(grad_recurrent.view(steps * batch, 3 * width).t(), previous)
    grad_bias_ih = torch.cat([grad_bias_hh[: 2 * width], grad_bias_in])  # r, z: the same sum as b_hh's
    return grad_projection, carry, grad_weight, grad_bias_ih, grad_bias_hh


def _gru_forward_torch(
    projection: torch.Tensor,
    hidden: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
    matmul_dtype: torch.dtype,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    steps, batch, three_h = projection.shape
    width = three_h // 3
    state_dtype = _state_dtype(projection)
    gates_in = projection.detach().to(state_dtype) + bias_ih.detach()  # (S, B, 3H)
    weight_t = weight_hh.detach().t().to(matmul_dtype)  # (H, 3H)
    bias = bias_hh.detach().to(state_dtype)
    states = gates_in.new_empty(steps + 1, batch, width)  # states[0] = h0, states[t + 1] = h_t
    states[0] = hidden.detach()
    recurrent = gates_in.new_empty(steps, batch, three_h)  # W_hh h + b_hh of every step
    update_reset = gates_in.new_empty(steps, batch, 2 * width)  # r, z
    candidate = gates_in.new_empty(steps, batch, width)  # n
    difference = gates_in.new_empty(batch, width)
    low_precision = matmul_dtype != state_dtype
    for step in range(steps):
        previous = states[step]
        if low_precision:
            torch.add(bias, torch.mm(previous.to(matmul_dtype), weight_t), out=recurrent[step])
        else:
            torch.addmm(bias, previous, weight_t, out=recurrent[step])
        gates = update_reset[step]
        torch.add(gates_in[step, :, : 2 * width], recurrent[step, :, : 2 * width], out=gates).sigmoid_()
        torch.addcmul(
            gates_in[step, :, 2 * width :], gates[:, :width], recurrent[step, :, 2 * width :], out=candidate[step]
        ).tanh_()
        torch.sub(previous, candidate[step], out=difference)
        torch.addcmul(candidate[step], gates[:, width:], difference, out=states[step + 1])
    output = states[1:].to(projection.dtype)
    return output, [states, recurrent, update_reset, candidate]


def _gru_backward_torch(
    grad_output: torch.Tensor,
    weight_hh: torch.Tensor,
    saved: list[torch.Tensor],
    matmul_dtype: torch.dtype,
    input_dtype: torch.dtype,
) -> tuple[torch.Tensor, ...]:
    states, recurrent, update_reset, candidate = saved
    steps, batch, width = candidate.shape
    previous = states[:-1]
    reset, update = update_reset[..., :width], update_reset[..., width:]
    # d(loss)/d(gate pre-activation) = dh * coefficient, the coefficients computed for all steps at once
    candidate_coefficient = (1 - update) * (1 - candidate * candidate)  # through n (its tanh)
    coefficients = torch.empty(steps, batch, 3, width, dtype=candidate.dtype)
    coefficients[:, :, 0] = candidate_coefficient * recurrent[..., 2 * width :] * reset * (1 - reset)
    coefficients[:, :, 1] = (previous - candidate) * update * (1 - update)
    coefficients[:, :, 2] = candidate_coefficient * reset  # W_hn h + b_hn enters n times r
    grad_steps = grad_output.to(candidate.dtype)  # (S, B, H)
    grad_hidden_all = torch.empty(steps, batch, width, dtype=candidate.dtype)
    grad_recurrent = torch.empty(steps, batch, 3, width, dtype=candidate.dtype)
    weight = weight_hh.detach().to(matmul_dtype)  # (3H, H)
    carry = torch.zeros(batch, width, dtype=candidate.dtype)
    low_precision = matmul_dtype != candidate.dtype
    for step in range(steps - 1, -1, -1):
        grad_hidden = torch.add(grad_steps[step], carry, out=grad_hidden_all[step])
        torch.mul(grad_hidden.unsqueeze(1), coefficients[step], out=grad_recurrent[step])
        flat = grad_recurrent[step].view(batch, 3 * width)
        product = torch.mm(flat.to(matmul_dtype) if low_precision else flat, weight)
        carry = torch.addcmul(product.to(carry.dtype), grad_hidden, update[step])
    grad_input = grad_recurrent.clone()
    grad_input[:, :, 2] = grad_hidden_all * candidate_coefficient  # W_in x + b_in enters n without r
    flat_input = grad_input.view(steps * batch, 3 * width)
    flat_grad = grad_recurrent.view(steps * batch, 3 * width)
    flat_previous = previous.reshape(steps * batch, width)
    grad_weight = torch.mm(flat_grad.t().to(matmul_dtype), flat_previous.to(matmul_dtype))
    grad_projection = grad_input.view(steps, batch, 3 * width).to(input_dtype)
    return grad_projection, carry, grad_weight, flat_input.sum(0), flat_grad.sum(0)


def gru_sequence(
    projection: torch.Tensor,
    hidden: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
    *,
    matmul_dtype: torch.dtype = torch.float32,
    engine: Engine = "auto",
) -> torch.Tensor:
    """One GRU layer over a whole sequence, as ``nn.GRU`` (time-major) with the input product given.

    Args:
        projection: (S, B, 3H) ``x @ W_ih.T`` of every step (without ``b_ih``), gate order r, z, n; float32,
            bfloat16 (under autocast) or float64 (gradient checks; PyTorch operations only).
        hidden: (1, B, H) or (B, H) initial hidden state.
        weight_hh: (3H, H) ``nn.GRU.weight_hh_l0``.
        bias_ih: (3H,) ``nn.GRU.bias_ih_l0``.
        bias_hh: (3H,) ``nn.GRU.bias_hh_l0``.
        matmul_dtype: dtype of the recurrent products and of what the steps keep for the backward pass
            (default float32; ``torch.bfloat16`` where the CPU computes it natively).
        engine: 'auto' (default: the C++ kernel when it builds, else PyTorch operations), 'cpp' or 'torch'.

    Returns the (S, B, H) hidden states, in ``projection``'s dtype. Differentiable in all five tensors.
    """
    three_h = weight_hh.shape[0]
    if projection.dim() != 3 or projection.shape[-1] != three_h:
        raise ValueError(
            f"projection has shape {tuple(projection.shape)}, expected (steps, batch, {three_h}) for weight_hh of "
            f"shape {tuple(weight_hh.shape)}"
        )
    if projection.device.type != "cpu":
        raise ValueError(f"gru_sequence runs on the CPU, got a tensor on {projection.device}")
    kernel = None if projection.dtype == torch.float64 else training_kernel(engine)
    hidden = hidden.reshape(projection.shape[1], -1)
    # torch leaves Function.apply unannotated
    states: torch.Tensor = _SequenceGRU.apply(  # type: ignore[no-untyped-call]
        projection, hidden, weight_hh, bias_ih, bias_hh, matmul_dtype, kernel
    )
    return states


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, labels: torch.Tensor, kernel: ModuleType) -> torch.Tensor:
        logits = logits.detach().contiguous()
        log_normaliser = torch.empty(logits.shape[0])
        total = kernel.cross_entropy_forward(logits, labels, log_normaliser)
        ctx.save_for_backward(logits, labels, log_normaliser)
        ctx.kernel = kernel
        return torch.tensor(total / logits.shape[0], dtype=torch.float32)

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        logits, labels, log_normaliser = ctx.saved_tensors
        grad_logits = torch.empty_like(logits)
        scale = float(grad_loss) / logits.shape[0]
        ctx.kernel.cross_entropy_backward(logits, labels, log_normaliser, scale, grad_logits)
        return grad_logits, None, None


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, *, engine: Engine = "auto") -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (..., C) against ``labels`` (...) (class indices), a float32 scalar
    (float64 for float64 logits).

    Equals ``F.cross_entropy(logits.reshape(-1, C).float(), labels.reshape(-1))``; with the kernel
    ('auto' or 'cpp' engine, float32 or bfloat16 logits on the CPU) in one pass per row each way. (B, S, C)
    logits that are a view of time-major (S, B, C) memory (the fused forward's) are read as they lie, with the
    labels transposed to match, instead of being copied: the mean does not depend on the order of the rows.
    """
    classes = logits.shape[-1]
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits of shape {tuple(logits.shape)} do not fit labels of shape {tuple(labels.shape)}")
    if logits.dim() == 3 and not logits.is_contiguous() and logits.transpose(0, 1).is_contiguous():
        logits, labels = logits.transpose(0, 1), labels.transpose(0, 1)
    flat_logits, flat_labels = logits.reshape(-1, classes), labels.reshape(-1).long()
    kernel = None
    if logits.device.type == "cpu" and logits.dtype in (torch.float32, torch.bfloat16):
        kernel = training_kernel(engine)
    if kernel is None:
        return F.cross_entropy(flat_logits if logits.dtype == torch.float64 else flat_logits.float(), flat_labels)
    # torch leaves Function.apply unannotated
    loss: torch.Tensor = _CrossEntropy.apply(flat_logits, flat_labels.contiguous(), kernel)  # type: ignore[no-untyped-call]
    return loss
