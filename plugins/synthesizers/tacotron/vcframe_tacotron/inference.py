"""Fast free-running decoding: the decoder's step with its weights laid out once for the CPU.

Synthesis spends nearly all its time in the decoder loop, one step per ``r`` mel frames, and a step at RTVC's
size reads about 72 MB of weights (two 1024-wide LSTM cells of 8.4 M parameters each, ``rnn_input``, the attention
GRU and the used rows of ``mel_proj``) for a handful of vectors: at batch 1 it is bound by memory bandwidth, at
batch 8 by how well the matrix products use the cores. :class:`DecoderStep` computes what
:meth:`vcframe_tacotron.tacotron.Decoder.forward` computes in eval mode, with:

* each LSTM cell's two products (input and hidden) as one product over ``[x, h]`` with the weights side by side
  and the two biases summed, and ``rnn_input``'s over ``[context, attention hidden]``;
* ``mel_proj`` cut to the ``n_mels * r`` rows a step uses (RTVC computes all ``n_mels * max_r``);
* the location features (1 -> 32 convolution over the cumulative attention, then ``L``: 32 -> 128) as one
  product of the cumulative attention's 31-frame windows with the folded ``L @ conv`` weights, and the query
  layer's bias added to the attention keys once per utterance;
* in float32 the weights stored transposed (in, out), which MKL's products read 2x faster at batches of 4-16
  than PyTorch's (out, in) layout (measured at 8 x 2048 x 4096, 1 thread: 1.66 ms against 3.57 ms);
* in bfloat16 the large products (LSTM cells, ``rnn_input``, ``mel_proj``) on weights packed once by oneDNN
  (AMX / AVX-512 BF16: 0.63 ms for an LSTM cell's 2048 x 4096 product at batch 1, float32 1.19 ms), their
  outputs back in float32 before the gates' nonlinearities; the attention stays in float32.

The pre-net draws its dropout masks exactly as the plain step does (same calls, same order), so a seed gives the
same masks. Float32 is the plain step's arithmetic up to the order of additions (the RTVC fixtures' tolerances
hold); bfloat16 rounds the large products' inputs and outputs to 8 significant bits.

Which form runs is decided at run time: bfloat16 needs oneDNN's packed linear (:func:`packed_bf16_available`),
else the bfloat16 products use PyTorch's ``F.linear`` on bfloat16 weights; ``precision="auto"`` picks bfloat16
only where the CPU computes it natively (:func:`vcframe.cpu.inference_dtype`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from vcframe.distributed import dropout

if TYPE_CHECKING:
    from vcframe_tacotron.tacotron import Decoder


def packed_bf16_available() -> bool:
    """True when this torch build has oneDNN's packed linear and it runs a bfloat16 product here."""
    if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        return False
    try:
        weight = torch.ops.mkldnn._reorder_linear_weight(torch.ones(8, 8, dtype=torch.bfloat16), 1)
        probe = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 8, dtype=torch.bfloat16), weight, None, "none", [], "")
    except (AttributeError, RuntimeError):
        return False
    return bool(probe.float().sum().item() == 64.0)


class Linear:
    """``x @ weight.T + bias`` with the weight laid out once for ``dtype``; float32 in, float32 out.

    Args:
        weight (Tensor (out, in) float32), bias (Tensor (out,) float32 or None).
        dtype (torch.dtype): float32 (weight stored transposed, one ``addmm``) or bfloat16 (input rounded to
            bfloat16, the product accumulated in float32 by the CPU, the output back in float32).
        packed (bool): bfloat16 only: the weight packed once by oneDNN (:func:`packed_bf16_available`).

    Shapes: (B, in) -> (B, out).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, packed: bool) -> None:
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"dtype must be float32 or bfloat16, got {dtype}")
        self.dtype = dtype
        self.packed = packed and dtype == torch.bfloat16
        self.out_features = weight.size(0)
        self.bias = torch.zeros(self.out_features) if bias is None else bias.detach().float().contiguous()
        if dtype == torch.float32:
            self.weight = weight.detach().float().t().contiguous()  # (in, out)
        elif self.packed:
            self.weight = torch.ops.mkldnn._reorder_linear_weight(weight.detach().to(torch.bfloat16).contiguous(), 1)
        else:
            self.weight = weight.detach().to(torch.bfloat16).contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype == torch.float32:
            return torch.addmm(self.bias, x, self.weight)
        x = x.to(torch.bfloat16)
        if self.packed:
            product: torch.Tensor = torch.ops.mkldnn._linear_pointwise(x, self.weight, None, "none", [], "")
        else:
            product = F.linear(x, self.weight)
        return product.float() + self.bias


@dataclass(frozen=True)
class Memory:
    """What every step of a batch reads: the encoder memory (B, L, memory_dims), the attention keys with the
    query and location biases added (B, L, attn), the mask (B, L) and how it applies (``clean``: added, 0 / -inf;
    else multiplied, 1 / 0 as RTVC)."""

    memory: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor
    clean: bool


class DecoderStep:
    """The decoder's free-running step (eval mode, no autograd) with weights laid out once.

    Args:
        decoder (Decoder): the network's decoder; its weights are copied (rebuild after loading others).
        r (int): mel frames per step (only those rows of ``mel_proj`` are kept).
        dtype (torch.dtype, default float32): float32 or bfloat16 for the large products.
        packed (bool | None, default None): bfloat16 weights packed by oneDNN; None = where available.

    Use: ``memory = step.prepare(encoder_seq, encoder_seq_proj, mask, clean)`` once per batch, then
    ``mels, scores, stop, state = step(memory, prenet_in, state, p)`` per step with ``state`` from
    :meth:`Decoder.initial_state`. Shapes as :meth:`Decoder.forward`: prenet_in (B, n_mels) -> mels
    (B, n_mels, r), scores (B, L), stop probability (B, 1).
    """

    def __init__(
        self, decoder: Decoder, r: int, dtype: torch.dtype = torch.float32, packed: bool | None = None
    ) -> None:
        if not 1 <= r <= decoder.max_r:
            raise ValueError(f"r ({r}) must lie in [1, max_r={decoder.max_r}]")
        self.r = r
        self.dtype = dtype
        self.packed = dtype == torch.bfloat16 and (packed_bf16_available() if packed is None else packed)
        self.n_mels = decoder.n_mels
        with torch.no_grad():
            self.prenet = decoder.prenet
            self.attn_rnn = decoder.attn_rnn
            attention = decoder.attn_net
            # conv (1 -> filters, kernel k) then L (filters -> attn): one (k, attn) matrix over k-frame windows
            conv_weight = attention.conv.weight[:, 0, :]  # (filters, k)
            self.location_weight = (attention.L.weight @ conv_weight).t().contiguous()  # (k, attn)
            conv_bias = attention.conv.bias if attention.conv.bias is not None else torch.zeros(conv_weight.size(0))
            self.location_bias = attention.L.weight @ conv_bias  # (attn,)
            self.location_kernel = conv_weight.size(1)
            self.query = Linear(attention.W.weight, None, torch.float32, False)
            self.query_bias = attention.W.bias.detach().clone()
            self.energy = attention.v.weight.detach()[0].clone()  # (attn,)
            self.rnn_input = Linear(decoder.rnn_input.weight, decoder.rnn_input.bias, dtype, self.packed)
            self.lstms = [
                Linear(
                    torch.cat([cell.weight_ih, cell.weight_hh], dim=1),
                    cell.bias_ih + cell.bias_hh,
                    dtype,
                    self.packed,
                )
                for cell in (decoder.res_rnn1, decoder.res_rnn2)
            ]
            rows = decoder.mel_proj.weight.view(decoder.n_mels, decoder.max_r, -1)[:, :r]
            self.mel_proj = Linear(rows.reshape(decoder.n_mels * r, -1), None, dtype, self.packed)
            self.stop = Linear(decoder.stop_proj.weight, decoder.stop_proj.bias, torch.float32, False)

    def prepare(
        self, encoder_seq: torch.Tensor, encoder_seq_proj: torch.Tensor, mask: torch.Tensor, clean: bool
    ) -> Memory:
        """The per-batch constants (:class:`Memory`) from the encoder's outputs and the mask (B, L) bool."""
        keys = encoder_seq_proj + (self.query_bias + self.location_bias)
        if clean:
            energy_mask = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
            energy_mask.masked_fill_(~mask, float("-inf"))
        else:
            energy_mask = mask.float()
        return Memory(encoder_seq, keys, energy_mask, clean)

    def _lstm(
        self, index: int, x: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        gates = self.lstms[index](torch.cat([x, hidden], dim=1))
        input_gate, forget_gate, cell_gate, output_gate = gates.chunk(4, dim=1)
        cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(input_gate) * torch.tanh(cell_gate)
        return torch.sigmoid(output_gate) * torch.tanh(cell), cell

    def __call__(
        self, memory: Memory, prenet_in: torch.Tensor, state: dict[str, torch.Tensor], p: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        batch = prenet_in.size(0)
        prenet = self.prenet
        prenet_out = dropout(F.relu(prenet.fc1(prenet_in)), p)
        prenet_out = dropout(F.relu(prenet.fc2(prenet_out)), p)
        attn_rnn = self.attn_rnn
        attn_hidden = torch.gru_cell(
            torch.cat([state["context"], prenet_out], dim=1),
            state["attn_hidden"],
            attn_rnn.weight_ih,
            attn_rnn.weight_hh,
            attn_rnn.bias_ih,
            attn_rnn.bias_hh,
        )
        cumulative = state["cumulative"]
        half = (self.location_kernel - 1) // 2
        windows = F.pad(cumulative, (half, self.location_kernel - 1 - half)).unfold(1, self.location_kernel, 1)
        features = torch.tanh(memory.keys + self.query(attn_hidden).unsqueeze(1) + windows @ self.location_weight)
        energy = features @ self.energy  # (B, L)
        energy = energy + memory.mask if memory.clean else energy * memory.mask
        scores = torch.softmax(energy, dim=1)
        context = torch.bmm(scores.unsqueeze(1), memory.memory).squeeze(1)
        x = self.rnn_input(torch.cat([context, attn_hidden], dim=1))
        rnn1_hidden, rnn1_cell = self._lstm(0, x, state["rnn1_hidden"], state["rnn1_cell"])
        x = x + rnn1_hidden
        rnn2_hidden, rnn2_cell = self._lstm(1, x, state["rnn2_hidden"], state["rnn2_cell"])
        x = x + rnn2_hidden
        mels = self.mel_proj(x).view(batch, self.n_mels, self.r)
        stop = torch.sigmoid(self.stop(torch.cat([x, context], dim=1)))
        new_state = {
            "attn_hidden": attn_hidden,
            "rnn1_hidden": rnn1_hidden,
            "rnn1_cell": rnn1_cell,
            "rnn2_hidden": rnn2_hidden,
            "rnn2_cell": rnn2_cell,
            "context": context,
            "cumulative": cumulative + scores,
        }
        return mels, scores, stop, new_state
