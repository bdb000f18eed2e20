"""Sample-by-sample generation: RTVC's algorithm, engineered for speed, plus RTVC's loop as a reference.

The fast path (:class:`Generator`) gives RTVC's waveform for the same seed (the random stream is drawn in
RTVC's order, section 6 of the fixtures README) but restructures the arithmetic:

* everything that does not depend on the previous sample is computed for a block of steps as whole-block
  matrix products: the mel/aux part of the input layer ``I``, rnn1's input projection ``W_ih1 I(...)``, the
  aux parts of rnn2's input and of fc1 and fc2. The previous sample enters ``I`` and ``W_ih1 I`` through one
  rank-1 term each (``x * I.weight[:, 0]`` and ``x * W_ih1 I.weight[:, 0]``);
* a step is left with the recurrent products (``W_hh1 h1``, ``W_ih2 x1``, ``W_hh2 h2``), fc1..fc3 on the
  hidden part, the GRU gates and the sampler, run by the C++ kernel (:mod:`vcframe_wavernn.kernel`) or an
  equivalent PyTorch loop with preallocated buffers;
* the Exp(1) noise of RTVC's sampler is drawn for a whole block ahead (it does not depend on the samples),
  per item with its own generator, in RTVC's order; the inverse-CDF sampler (``sampler="inverse_cdf"``) draws one
  uniform number per fold and step instead of one Exp(1) number per class;
* folds of every item in a batch run together, split over the CPU threads.

Audio is produced block by block: after ``k`` steps every fold holds its first ``k`` samples, so the first
``k`` samples of the cross-faded output are final. :meth:`Generator.run` yields them, which is what
``vocode_stream`` streams; ``vocode`` concatenates the same chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import lfilter

from vcframe_wavernn.network import WaveRNN, gru_parameters
from vcframe_wavernn.signal import (
    crossfade_windows,
    decode_mu_law,
    fold_with_overlap,
    label_to_float,
    rtvc_fade_out,
    xfade_and_unfold,
)

if TYPE_CHECKING:
    from vcframe_wavernn.kernel import PackedMatrix


def draw_rtvc_gru_cell_numbers(network: WaveRNN, generator: torch.Generator | None = None) -> None:
    """Consume the random numbers RTVC's two throwaway ``GRUCell`` constructions draw (fixtures README §6)."""
    rnn, aux = network.rnn_dims, network.aux_dims
    sizes = [3 * rnn * rnn, 3 * rnn * rnn, 3 * rnn, 3 * rnn, 3 * rnn * (rnn + aux), 3 * rnn * rnn, 3 * rnn, 3 * rnn]
    for size in sizes:
        torch.empty(size).uniform_(generator=generator)


#: How a step picks its sample from the softmax: RTVC's ``Categorical`` draw (``argmax(p / Exp(1))`` with RTVC's
#: random numbers), the most likely class, or the inverse CDF of the softmax at one uniform draw (the same
#: distribution as "sample" from 1 random number per fold and step instead of one per class; not RTVC's numbers).
SAMPLERS = ("sample", "argmax", "inverse_cdf")
#: The kernel's codes for :data:`SAMPLERS` (``VC_SAMPLE_*`` in ``kernel.GENERATION_SOURCE``).
_SAMPLER_CODES = {"sample": 0, "argmax": 1, "inverse_cdf": 2}


@dataclass
class ItemPlan:
    """Where one item's folds sit in the joint batch and how its output is assembled."""

    first_fold: int
    num_folds: int
    fold_length: int
    stride: int  # target + overlap (fold_length when unbatched)
    unfolded_length: int
    output_length: int  # T * hop
    wave_len: int  # RTVC's (T - 1) * hop: where the generated audio is cropped with rtvc_quirks


class _Assembler:
    """Turns the folds' samples into final audio as they grow: cross-fade, mu-law, de-emphasis, crop, fade."""

    def __init__(
        self,
        plan: ItemPlan,
        overlap: int,
        batched: bool,
        n_classes: int,
        preemphasis: float,
        quirks: bool,
        hop_length: int,
    ) -> None:
        self.plan = plan
        self.overlap = overlap if batched else 0
        self.n_classes = n_classes
        self.preemphasis = preemphasis
        self.quirks = quirks
        self.hop_length = hop_length
        self.fade_in: np.ndarray | None
        self.fade_out: np.ndarray | None
        self.fade_in, self.fade_out = crossfade_windows(self.overlap) if self.overlap else (None, None)
        self.zi = np.zeros(1)
        self.emitted = 0  # unfolded positions already passed through
        self.output_done = 0
        self.held: list[np.ndarray] = []  # samples held back for the final fade
        crop = plan.wave_len if quirks else min(plan.output_length, plan.unfolded_length)
        self.crop = crop
        self.fade_start = crop - len(rtvc_fade_out(crop, hop_length)) if quirks else crop

    def _unfold(self, folds: torch.Tensor, start: int, stop: int) -> np.ndarray:
        """Cross-faded unfolded positions [start, stop) from ``folds`` ((num_folds, L) float32)."""
        plan = self.plan
        values = np.zeros(stop - start, dtype=np.float64)
        first = max(0, (start - plan.fold_length) // plan.stride)
        for index in range(first, plan.num_folds):
            fold_start = index * plan.stride
            if fold_start >= stop:
                break
            lo, hi = max(start, fold_start), min(stop, fold_start + plan.fold_length)
            if lo >= hi:
                continue
            piece = folds[index, lo - fold_start : hi - fold_start].numpy().astype(np.float64)
            if self.overlap:
                assert self.fade_in is not None and self.fade_out is not None  # made with the overlap
                local = np.arange(lo - fold_start, hi - fold_start)
                head = local < self.overlap
                piece[head] *= self.fade_in[local[head]]
                tail = local >= plan.fold_length - self.overlap
                piece[tail] *= self.fade_out[local[tail] - (plan.fold_length - self.overlap)]
            values[lo - start : hi - start] += piece
        return values

    def advance(self, folds: torch.Tensor, done_steps: int) -> np.ndarray:
        """New final output samples after every fold holds ``done_steps`` samples (float64)."""
        plan = self.plan
        finished = done_steps >= plan.fold_length
        ready = plan.unfolded_length if finished else min(done_steps, plan.unfolded_length)
        ready = min(ready, self.crop)
        pieces: list[np.ndarray] = []
        if ready > self.emitted:
            values = self._unfold(folds, self.emitted, ready)
            values = decode_mu_law(values, self.n_classes)
            if self.preemphasis:
                values, self.zi = lfilter([1], [1, -self.preemphasis], values, zi=self.zi)
            start = self.emitted
            self.emitted = ready
            free = max(0, min(ready, self.fade_start) - start)
            if free:
                pieces.append(values[:free])
            if free < len(values):
                self.held.append(values[free:])
        if finished:
            if self.held:
                tail = np.concatenate(self.held)
                if self.quirks:
                    tail = tail * rtvc_fade_out(self.crop, self.hop_length)[-len(tail) :] if len(tail) else tail
                pieces.append(tail)
                self.held = []
            produced = self.output_done + sum(len(p) for p in pieces)
            if produced < plan.output_length:
                pieces.append(np.zeros(plan.output_length - produced))
        out = np.concatenate(pieces) if pieces else np.zeros(0)
        self.output_done += len(out)
        return out


class Generator:
    """Fast generation for one :class:`WaveRNN`. Build once per network; weights are read at construction.

    Args:
        network: the model (its weights are copied into transposed, contiguous matrices).
        engine: 'cpp' (kernel, must be available), 'torch', or 'auto'.
        threads: threads of the kernel, each owning a slice of every weight matrix (default:
            torch.get_num_threads()).
        block_steps: steps precomputed at once and the streaming granularity.
        first_block_steps: steps of the first block (at most ``block_steps``): the first streamed audio comes
            after them, so a small first block starts the stream sooner for the cost of one more block.
        precision: the recurrent and output weights in 'float32', 'bfloat16' or 'int8' (per-column scales,
            activations quantised per fold; see ``kernel.GENERATION_SOURCE``).
        isa: the kernel's instruction set, 'auto' (the best this CPU has) or one of ``kernel.ISAS``; one the CPU
            lacks falls back to the next one down.
    """

    def __init__(
        self,
        network: WaveRNN,
        *,
        engine: str = "auto",
        threads: int | None = None,
        block_steps: int = 400,
        first_block_steps: int = 100,
        precision: str = "float32",
        isa: str = "auto",
    ) -> None:
        from vcframe_wavernn.kernel import PRECISIONS, choose_isa, load_kernel

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.network = network
        if first_block_steps < 1 or block_steps < 1:
            raise ValueError(f"block_steps ({block_steps}) and first_block_steps ({first_block_steps}) must be >= 1")
        self.block_steps = block_steps
        self.first_block_steps = first_block_steps
        self.threads = threads or torch.get_num_threads()
        self.precision = precision
        self.kernel = None
        if engine in ("auto", "cpp"):
            self.kernel = load_kernel()
            if self.kernel is None and engine == "cpp":
                raise RuntimeError(
                    "the C++ generation kernel could not be built here (no compiler?); use engine='torch'"
                )
        self.engine = "cpp" if self.kernel is not None else "torch"
        #: the instruction set the kernel runs ("torch" for the PyTorch loop)
        self.isa = choose_isa(self.kernel, isa, precision) if self.kernel is not None else "torch"
        #: conditioning from per-frame tables summed at each step by the kernel (reduced precisions: no block-wide
        #: products, no upsampled or folded copies), or precomputed block by block as RTVC's arithmetic (float32)
        self.frame_tables = self.kernel is not None and precision != "float32"
        self.refresh_weights()

    #: the six step products: (name of the transposed weight, gates)
    STEP_PRODUCTS = (("whh1_t", 3), ("wih2_t", 3), ("whh2_t", 3), ("fc1_t", 1), ("fc2_t", 1), ("fc3_t", 1))

    def refresh_weights(self) -> None:
        """Re-read the network's weights (call after loading or training)."""
        net = self.network
        rnn, fc = net.rnn_dims, net.fc_dims
        with torch.no_grad():
            i_weight = net.I.weight.detach().float()
            self.w_sample = i_weight[:, 0].contiguous()
            self.i_rest = i_weight[:, 1:].t().contiguous()
            self.i_bias = net.I.bias.detach().float()
            rnn1, rnn2 = gru_parameters(net.rnn1), gru_parameters(net.rnn2)
            self.wih1_t = rnn1.weight_ih.detach().t().contiguous()
            self.bih1 = rnn1.bias_ih.detach()
            self.v_sample = (rnn1.weight_ih.detach() @ self.w_sample).contiguous()
            self.whh1_t = rnn1.weight_hh.detach().t().contiguous()
            self.bhh1 = rnn1.bias_hh.detach().contiguous()
            wih2 = rnn2.weight_ih.detach()
            self.wih2_t = wih2[:, :rnn].t().contiguous()
            self.wih2_aux_t = wih2[:, rnn:].t().contiguous()
            self.bih2 = rnn2.bias_ih.detach()
            self.whh2_t = rnn2.weight_hh.detach().t().contiguous()
            self.bhh2 = rnn2.bias_hh.detach().contiguous()
            fc1 = net.fc1.weight.detach()
            self.fc1_t, self.fc1_aux_t, self.fc1_b = (
                fc1[:, :rnn].t().contiguous(),
                fc1[:, rnn:].t().contiguous(),
                net.fc1.bias.detach(),
            )
            fc2 = net.fc2.weight.detach()
            self.fc2_t, self.fc2_aux_t, self.fc2_b = (
                fc2[:, :fc].t().contiguous(),
                fc2[:, fc:].t().contiguous(),
                net.fc2.bias.detach(),
            )
            self.fc3_t = net.fc3.weight.detach().t().contiguous()
            self.b3 = net.fc3.bias.detach().contiguous()
            from vcframe_wavernn.kernel import pack_matrix

            isa = self.isa if self.kernel is not None else "avx2"
            self._packed = [
                pack_matrix(getattr(self, name), self.precision, isa, gates) for name, gates in self.STEP_PRODUCTS
            ]
            self.table = label_to_float(torch.arange(net.n_classes), net.n_classes).contiguous()
            self.mel_taps = net.upsample.phase_taps()
            # the frame tables' products (``_frame_tables``): I and W_ih1 I on the mel, the aux slices' products
            n_mels, aux = net.upsample.resnet.conv_in.in_channels, net.aux_dims
            mel_i, aux_i = self.i_rest[:n_mels], self.i_rest[n_mels:]
            self.table_mel_weight = torch.cat([mel_i, mel_i @ self.wih1_t], dim=1).contiguous()  # (n_mels, 4R)
            blocks = torch.zeros(4 * aux, 7 * rnn + 2 * fc)
            blocks[:aux, :rnn] = aux_i
            blocks[:aux, rnn : 4 * rnn] = aux_i @ self.wih1_t
            blocks[aux : 2 * aux, 4 * rnn : 7 * rnn] = self.wih2_aux_t
            blocks[2 * aux : 3 * aux, 7 * rnn : 7 * rnn + fc] = self.fc1_aux_t
            blocks[3 * aux :, 7 * rnn + fc :] = self.fc2_aux_t
            self.table_aux_weight = blocks
            self.table_bias = torch.cat(
                [self.i_bias, self.i_bias @ self.wih1_t + self.bih1, self.bih2, self.fc1_b, self.fc2_b]
            ).contiguous()

    # -- conditioning ----------------------------------------------------------------------------

    def condition(self, mel: torch.Tensor, pad_value: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(n_mels, T) model-scale mel -> upsampled (S, n_mels) and aux (S, 4 aux) with S = T * hop.

        The network's upsampler, computed faster: the mel path by its per-phase taps
        (``UpsampleNetwork.mel_path_by_phase``, within float32 rounding of the convolutions) and the aux path as
        the mel ResNet's frames repeated ``hop`` times (the same values as the stretch)."""
        net = self.network
        padded = F.pad(mel.unsqueeze(0), (net.pad, net.pad), value=pad_value)
        upsampled = net.upsample.mel_path_by_phase(padded[0], self.mel_taps)
        aux = net.upsample.resnet(padded)[0].t().repeat_interleave(net.hop_length, dim=0)
        return upsampled, aux

    # -- main loop --------------------------------------------------------------------------------

    @torch.no_grad()
    def run(
        self,
        mels: list[torch.Tensor],
        *,
        batched: bool,
        target: int,
        overlap: int,
        sampler: str,
        generators: list[torch.Generator | None],
        preemphasis: float,
        quirks: bool,
        rtvc_rng: bool = True,
    ) -> Iterator[list[np.ndarray]]:
        """Yield, after each block of steps, the new final float64 output samples of every item.

        ``mels`` are (n_mels, T_b) tensors already scaled to the model's range (RTVC: mel / 4). Each item's
        output ends with exactly ``T_b * hop`` samples. ``sampler`` is one of :data:`SAMPLERS`; the random draws of
        item ``b`` come from ``generators[b]`` (``rtvc_rng``: after RTVC's throwaway draws, "sample" only).
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        net = self.network
        was_training = net.training
        net.eval()
        try:
            hop = net.hop_length
            pad_value = 0.0 if quirks else -1.0
            item_steps = [int(mel.shape[-1]) * hop for mel in mels]
            length = target + 2 * overlap if batched else max(item_steps)  # steps of every fold
            plans: list[ItemPlan] = []
            for mel, steps in zip(mels, item_steps, strict=True):
                frames = int(mel.shape[-1])
                if batched:  # RTVC's fold_with_overlap
                    num_folds, stride = _fold_count(steps, target, overlap), target + overlap
                    unfolded = num_folds * stride + overlap
                else:
                    num_folds, stride, unfolded = 1, length, steps
                first = sum(p.num_folds for p in plans)
                plans.append(ItemPlan(first, num_folds, length, stride, unfolded, frames * hop, (frames - 1) * hop))
            total_folds = sum(p.num_folds for p in plans)
            if self.frame_tables:
                mel_table, aux_table, fold_info = self._frame_tables([mel.float() for mel in mels], plans, pad_value)
            else:
                cond_m, a1, a2, a3, a4 = self._folded_conditioning(mels, plans, batched, target, overlap, pad_value)
            assemblers = [_Assembler(p, overlap, batched, net.n_classes, preemphasis, quirks, hop) for p in plans]
            if sampler == "sample" and rtvc_rng:
                for generator in generators:
                    draw_rtvc_gru_cell_numbers(net, generator)
            rnn = net.rnn_dims
            x = torch.zeros(total_folds)
            h1 = torch.zeros(total_folds, rnn)
            h2 = torch.zeros(total_folds, rnn)
            samples = torch.zeros(total_folds, length)
            # precomputed products take (R + 6R + 2H) floats per fold and step: keep a block under ~64 MB
            per_step = total_folds * (7 * rnn + 2 * net.fc_dims + net.n_classes)
            block = max(1, min(self.block_steps, length, (16 << 20) // per_step))
            if sampler == "inverse_cdf":
                noise = torch.empty(block, total_folds, dtype=torch.float64)
            else:
                noise = torch.empty(block, total_folds, net.n_classes if sampler == "sample" else 0)
            for start, stop in block_bounds(length, block, self.first_block_steps):
                steps = stop - start
                if self.frame_tables:
                    block_info = fold_info.clone()
                    block_info[:, 2] += start
                    pre: tuple[torch.Tensor, ...] = (mel_table, aux_table, self.mel_taps, block_info)
                else:
                    span = slice(start, stop)
                    pre = self._precompute(cond_m[:, span], a1[:, span], a2[:, span], a3[:, span], a4[:, span])
                # one call per item and block draws the same numbers as one per step: step by step, fold by fold
                for plan, generator in zip(plans, generators, strict=True):
                    rows = noise[:steps, plan.first_fold : plan.first_fold + plan.num_folds]
                    if sampler == "sample":
                        rows.exponential_(1, generator=generator)
                    elif sampler == "inverse_cdf":
                        rows.uniform_(generator=generator)
                out = torch.empty(steps, total_folds)
                self._steps(pre, noise, sampler, x, h1, h2, out, steps)
                samples[:, start:stop] = out.t()
                chunks = []
                for plan, assembler in zip(plans, assemblers, strict=True):
                    item_folds = samples[plan.first_fold : plan.first_fold + plan.num_folds]
                    chunks.append(assembler.advance(item_folds, stop))
                yield chunks
        finally:
            net.train(was_training)

    def _folded_conditioning(
        self,
        mels: list[torch.Tensor],
        plans: list[ItemPlan],
        batched: bool,
        target: int,
        overlap: int,
        pad_value: float,
    ) -> tuple[torch.Tensor, ...]:
        """The upsampled mel and the four aux slices of every fold, (F, L, .) each (RTVC's folding)."""
        length = plans[0].fold_length
        folded_m, folded_a = [], []
        for mel in mels:
            upsampled, aux = self.condition(mel.float(), pad_value)
            if batched:
                folded_m.append(fold_with_overlap(upsampled.unsqueeze(0), target, overlap))
                folded_a.append(fold_with_overlap(aux.unsqueeze(0), target, overlap))
            else:
                folded_m.append(F.pad(upsampled, (0, 0, 0, length - upsampled.shape[0])).unsqueeze(0))
                folded_a.append(F.pad(aux, (0, 0, 0, length - aux.shape[0])).unsqueeze(0))
        cond_m = torch.cat(folded_m)  # (F, L, n_mels)
        cond_a = torch.cat(folded_a)  # (F, L, 4 aux)
        return (cond_m, *self.network.split_aux(cond_a))

    def _frame_tables(
        self, mels: list[torch.Tensor], plans: list[ItemPlan], pad_value: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The kernel's frame tables (see ``run_packed_steps``) of model-scale mels (n_mels, T_b): every item's mel
        rows, its aux rows, and the biases-alone row last; fold_info (F, 4) = [first mel row, first aux row, first
        position, samples] of every fold (positions of the first block)."""
        net = self.network
        mel_rows, aux_rows, info = [], [], []
        mel_start = aux_start = 0
        for mel, plan in zip(mels, plans, strict=True):
            padded = F.pad(mel.unsqueeze(0), (net.pad, net.pad), value=pad_value)
            mel_rows.append(self.tap_frames(padded[0]) @ self.table_mel_weight)
            aux = net.upsample.resnet(padded)[0].t()  # (T, 4 aux)
            aux_rows.append(torch.addmm(self.table_bias, aux, self.table_aux_weight))
            for fold in range(plan.num_folds):
                info.append([mel_start, aux_start, fold * plan.stride, plan.output_length])
            mel_start += mel_rows[-1].shape[0]
            aux_start += aux_rows[-1].shape[0]
        aux_rows.append(self.table_bias.unsqueeze(0))
        return torch.cat(mel_rows), torch.cat(aux_rows), torch.tensor(info, dtype=torch.int64)

    def tap_frames(self, padded: torch.Tensor) -> torch.Tensor:
        """(n_mels, T + 2 pad) padded mel -> (T + 2 reach, n_mels): the frames the upsampler's taps read, row
        ``f + j`` meeting tap ``j`` of output frame ``f`` (as :meth:`UpsampleNetwork.mel_path_by_phase` reads them;
        zeros beyond the padded mel)."""
        width = self.mel_taps.shape[1]
        reach, pad = width // 2, self.network.pad
        frames = padded.shape[1] - 2 * pad
        extended = F.pad(padded, (max(0, reach - pad), max(0, reach - pad))).t()
        base = max(pad, reach) - reach
        return extended[base : base + frames + 2 * reach]

    def _precompute(
        self, m: torch.Tensor, a1: torch.Tensor, a2: torch.Tensor, a3: torch.Tensor, a4: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Block-wide products, laid out (steps, folds, features) for the step loop."""

        def steps_first(t: torch.Tensor) -> torch.Tensor:
            return t.transpose(0, 1).contiguous()

        m, a1, a2, a3, a4 = (steps_first(t) for t in (m, a1, a2, a3, a4))
        pre_i = torch.addmm(self.i_bias, torch.cat([m, a1], dim=2).flatten(0, 1), self.i_rest)
        pre_g1 = torch.addmm(self.bih1, pre_i, self.wih1_t)
        pre_a2 = torch.addmm(self.bih2, a2.flatten(0, 1), self.wih2_aux_t)
        pre_a3 = torch.addmm(self.fc1_b, a3.flatten(0, 1), self.fc1_aux_t)
        pre_a4 = torch.addmm(self.fc2_b, a4.flatten(0, 1), self.fc2_aux_t)
        return pre_i, pre_g1, pre_a2, pre_a3, pre_a4

    def _steps(
        self,
        pre: tuple[torch.Tensor, ...],
        noise: torch.Tensor,
        sampler: str,
        x: torch.Tensor,
        h1: torch.Tensor,
        h2: torch.Tensor,
        out: torch.Tensor,
        steps: int,
        forced: torch.Tensor | None = None,
        logits_out: torch.Tensor | None = None,
    ) -> None:
        """Run ``steps`` steps from the block's conditioning ``pre``; state ``x, h1, h2`` in place.

        ``pre``: the five precomputed products of :meth:`_precompute`, or (C++ kernel only) the four frame tables of
        :meth:`_frame_tables` (mel rows, aux rows, taps, fold_info). ``sampler`` (:data:`SAMPLERS`) reads ``noise``:
        (steps, F, C) Exp(1) draws for "sample", (steps, F) float64 uniform draws for "inverse_cdf", nothing for
        "argmax". ``out`` (steps, F) receives the drawn samples;
        ``forced`` ((steps, F) or None): the previous sample fed at each step instead of the drawn one;
        ``logits_out`` ((steps, F, C) or None): receives each step's logits."""
        from vcframe_wavernn.kernel import _ISA_CODES, _PRECISION_CODES

        if self.kernel is not None:
            packed = self._packed
            self.kernel.run_packed_steps(
                list(pre),
                noise,
                _SAMPLER_CODES[sampler],
                forced if forced is not None else torch.empty(0),
                logits_out if logits_out is not None else torch.empty(0),
                [self.w_sample, self.v_sample, self.bhh1, self.bhh2, self.b3, self.table],
                [matrix.weight for matrix in packed],
                [matrix.scale for matrix in packed],
                [matrix.colsum for matrix in packed],
                x,
                h1,
                h2,
                out,
                steps,
                _PRECISION_CODES[self.precision],
                _ISA_CODES[self.isa],
                self.threads,
                self.network.fc_dims,
                self.network.n_classes,
            )
            return
        pre_i, pre_g1, pre_a2, pre_a3, pre_a4 = pre
        folds, rnn = h1.shape
        fc = self.fc1_t.shape[1]
        pre_i = pre_i.view(-1, folds, rnn)
        pre_g1 = pre_g1.view(-1, folds, 3 * rnn)
        pre_a2 = pre_a2.view(-1, folds, 3 * rnn)
        pre_a3 = pre_a3.view(-1, folds, fc)
        pre_a4 = pre_a4.view(-1, folds, fc)
        whh1, wih2, whh2, fc1, fc2, fc3 = self._packed
        gh = torch.empty(folds, 3 * rnn)
        gi = torch.empty(folds, 3 * rnn)
        for k in range(steps):
            if forced is not None:
                x.copy_(forced[k])
            xs = x.unsqueeze(1)
            self._product(self.bhh1, h1, whh1, gh)
            torch.addcmul(pre_g1[k], xs, self.v_sample, out=gi)
            h1.copy_(_gru(gi, gh, h1))
            x1 = torch.addcmul(pre_i[k], xs, self.w_sample) + h1
            self._product(pre_a2[k], x1, wih2, gi)
            self._product(self.bhh2, h2, whh2, gh)
            h2.copy_(_gru(gi, gh, h2))
            x2 = x1 + h2
            y1 = torch.relu(self._product(pre_a3[k], x2, fc1))
            y2 = torch.relu(self._product(pre_a4[k], y1, fc2))
            logits = self._product(self.b3, y2, fc3)
            if logits_out is not None:
                logits_out[k] = logits
            scores = torch.softmax(logits, dim=1)
            if sampler == "inverse_cdf":
                # the first class whose cumulative probability exceeds the draw (the kernel sums in chunks: the same
                # distribution, the same class but where a draw lies within float rounding of a boundary)
                cumulative = scores.double().cumsum(dim=1)
                threshold = noise[k].unsqueeze(1) * cumulative[:, -1:]
                index = torch.searchsorted(cumulative, threshold, right=True).squeeze(1).clamp_(max=scores.shape[1] - 1)
            else:
                if sampler == "sample":
                    scores = scores / noise[k]
                index = scores.argmax(dim=1)
            x.copy_(self.table[index])
            out[k] = x

    def _product(
        self, bias: torch.Tensor, rows: torch.Tensor, matrix: PackedMatrix, result: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``bias + rows @ W`` as the kernel computes it at this precision (the PyTorch loop's products)."""
        if self.precision != "int8":
            if result is None:
                return torch.addmm(bias, rows, matrix.dequantized)
            return torch.addmm(bias, rows, matrix.dequantized, out=result)
        from vcframe_wavernn.kernel import quantize_rows

        integers, scales = quantize_rows(rows)
        assert matrix.dequantized_scale is not None  # int8 weights carry their column scales
        product = (integers @ matrix.dequantized) * scales * matrix.dequantized_scale + bias
        if result is None:
            return product
        return result.copy_(product)

    def teacher_forced_logits(self, mels: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        """The step loop's logits with every previous sample given, as the network's training forward computes
        them: ``mels`` (B, n_mels, T + 2 pad) padded mel windows, ``samples`` (B, T * hop) previous samples in
        [-1, 1] -> logits (B, T * hop, classes). Compares a precision or instruction set with float32 or RTVC."""
        return self.teacher_forced(mels, samples)[0]

    @torch.no_grad()
    def teacher_forced(
        self,
        mels: torch.Tensor,
        samples: torch.Tensor,
        sampler: str = "argmax",
        noise: torch.Tensor | None = None,
        frame_tables: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`teacher_forced_logits` with what ``sampler`` draws from them at each step: (logits (B, T * hop,
        classes), drawn samples (B, T * hop) in [-1, 1]). ``noise``: the sampler's draws as :meth:`_steps` reads
        them, step-major: (T * hop, B, classes) Exp(1) for "sample", (T * hop, B) float64 uniform for "inverse_cdf".
        ``frame_tables``: the conditioning from the kernel's frame tables (the upsampler by phase taps) or from the
        network's upsampler, precomputed; None: as :meth:`run` does for this generator's precision."""
        net = self.network
        frame_tables = self.frame_tables if frame_tables is None else frame_tables
        if frame_tables and self.kernel is None:
            raise ValueError("frame tables are read by the C++ kernel only; this generator runs the PyTorch loop")
        folds, steps = samples.shape
        was_training = net.training
        net.eval()
        try:
            if frame_tables:
                mel_rows = [self.tap_frames(window) @ self.table_mel_weight for window in mels.float()]
                aux_rows = [
                    torch.addmm(self.table_bias, aux.t(), self.table_aux_weight)
                    for aux in net.upsample.resnet(mels.float())
                ]
                info = [
                    [sum(len(r) for r in mel_rows[:b]), sum(len(r) for r in aux_rows[:b]), 0, steps]
                    for b in range(folds)
                ]
                pre: tuple[torch.Tensor, ...] = (
                    torch.cat(mel_rows),
                    torch.cat([*aux_rows, self.table_bias.unsqueeze(0)]),
                    self.mel_taps,
                    torch.tensor(info, dtype=torch.int64),
                )
            else:
                upsampled, aux = net.upsample(mels.float())
                a1, a2, a3, a4 = net.split_aux(aux)
                pre = self._precompute(upsampled, a1, a2, a3, a4)
        finally:
            net.train(was_training)
        x = torch.zeros(folds)
        h1 = torch.zeros(folds, net.rnn_dims)
        h2 = torch.zeros(folds, net.rnn_dims)
        out = torch.empty(steps, folds)
        logits = torch.empty(steps, folds, net.n_classes)
        forced = samples.float().t().contiguous()
        noise = torch.empty(0) if noise is None else noise.contiguous()
        self._steps(pre, noise, sampler, x, h1, h2, out, steps, forced=forced, logits_out=logits)
        return logits.transpose(0, 1), out.t()


def block_bounds(length: int, block: int, first_block: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of the step blocks over ``length`` steps: a first block of ``min(first_block, block)`` steps
    (the first streamed audio), then blocks of ``block``."""
    start = 0
    stop = min(length, first_block, block)
    while start < length:
        yield start, stop
        start, stop = stop, min(length, stop + block)


def _gru(gi: torch.Tensor, gh: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """PyTorch's GRUCell arithmetic from precomputed input (gi) and hidden (gh) projections with biases."""
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    reset = torch.sigmoid(h_r + i_r)
    update = torch.sigmoid(h_z + i_z)
    new = torch.tanh(i_n + h_n * reset)
    return (hidden - new) * update + new


# -- reference: RTVC's loop, transcribed ----------------------------------------------------------------


@torch.no_grad()
def reference_generate(
    network: WaveRNN,
    mel: torch.Tensor,
    *,
    batched: bool,
    target: int,
    overlap: int,
    argmax: bool = False,
    preemphasis: float = 0.97,
) -> np.ndarray:
    """RTVC's ``WaveRNN.generate(mel, batched, target, overlap, mu_law=True)`` step for step (the baseline).

    ``mel`` is (1, n_mels, T) already divided by 4. Draws from torch's global generator exactly as RTVC
    does (seed it with ``torch.manual_seed`` first). Returns float64 ``((T - 1) * hop,)``; mels under 21
    frames crash, as in RTVC. Leaves the network in eval mode (RTVC leaves it in train mode).
    """
    net = network
    net.eval()
    rnn1 = _gru_cell(net.rnn1)
    rnn2 = _gru_cell(net.rnn2)
    wave_len = (mel.size(-1) - 1) * net.hop_length
    padded = torch.zeros(1, mel.size(-1) + 2 * net.pad, mel.size(1))
    padded[:, net.pad : net.pad + mel.size(-1), :] = mel.transpose(1, 2)
    mels, aux = net.upsample(padded.transpose(1, 2))
    if batched:
        mels = fold_with_overlap(mels, target, overlap)
        aux = fold_with_overlap(aux, target, overlap)
    b_size, seq_len, _ = mels.size()
    h1 = torch.zeros(b_size, net.rnn_dims)
    h2 = torch.zeros(b_size, net.rnn_dims)
    x = torch.zeros(b_size, 1)
    d = net.aux_dims
    aux_split = [aux[:, :, d * i : d * (i + 1)] for i in range(4)]
    output = []
    for i in range(seq_len):
        m_t = mels[:, i, :]
        a1_t, a2_t, a3_t, a4_t = (a[:, i, :] for a in aux_split)
        x = torch.cat([x, m_t, a1_t], dim=1)
        x = net.I(x)
        h1 = rnn1(x, h1)
        x = x + h1
        inp = torch.cat([x, a2_t], dim=1)
        h2 = rnn2(inp, h2)
        x = x + h2
        x = torch.cat([x, a3_t], dim=1)
        x = F.relu(net.fc1(x))
        x = torch.cat([x, a4_t], dim=1)
        x = F.relu(net.fc2(x))
        logits = net.fc3(x)
        posterior = F.softmax(logits, dim=1)
        if argmax:
            index = posterior.argmax(-1)
        else:
            # torch leaves Distribution.sample unannotated
            index = torch.distributions.Categorical(posterior).sample()  # type: ignore[no-untyped-call]
        sample = 2 * index.float() / (net.n_classes - 1.0) - 1.0
        output.append(sample)
        x = sample.unsqueeze(-1)
    stacked = torch.stack(output).transpose(0, 1).cpu().numpy().astype(np.float64)
    result: np.ndarray = xfade_and_unfold(stacked, target, overlap) if batched else stacked[0]
    result = decode_mu_law(result, net.n_classes)
    result = lfilter([1], [1, -preemphasis], result)
    fade_out = np.linspace(1, 0, 20 * net.hop_length)
    result = result[:wave_len]
    result[-20 * net.hop_length :] *= fade_out
    return result


def _gru_cell(gru: torch.nn.GRU) -> torch.nn.GRUCell:
    cell = torch.nn.GRUCell(gru.input_size, gru.hidden_size)
    parameters = gru_parameters(gru)
    cell.weight_hh.data = parameters.weight_hh.data
    cell.weight_ih.data = parameters.weight_ih.data
    cell.bias_hh.data = parameters.bias_hh.data
    cell.bias_ih.data = parameters.bias_ih.data
    return cell


#: Folds one step computes for little more than the cost of one: the rows of an AMX tile (and two blocks of the
#: AVX-512 kernel's 8), while the weights are read once per step whatever the fold count.
MAX_AUTO_FOLDS = 16
#: The range ``choose_folding`` picks targets from: RTVC's 8000 at most, 2000 (RTVC's README's fast setting,
#: 125 ms per fold) at least.
AUTO_TARGET_RANGE = (2000, 8000)


def choose_folding(samples: int, max_folds: int = MAX_AUTO_FOLDS) -> int:
    """The fold target for ``samples`` output samples when the user has not fixed it: the smallest target (so the
    fewest sequential steps) that keeps the fold count at most ``max_folds``, within ``AUTO_TARGET_RANGE``, with
    the overlap RTVC's tenth of it. RTVC's fixed 8000/800 runs 9,600 steps for any length; a 2 s utterance gets
    2,000/200 here (15 folds x 2,400 steps), 6 s 5,454/545 (16 x 6,544)."""
    low, high = AUTO_TARGET_RANGE
    target = -(-samples * 10 // (11 * max_folds))  # target + overlap = 1.1 target per fold
    target = max(low, min(high, target))
    while target < high and _fold_count(samples, target, target // 10) > max_folds:
        target += 1
    return target


def _fold_count(samples: int, target: int, overlap: int) -> int:
    """RTVC's ``fold_with_overlap`` count for ``samples`` samples."""
    folds = max(0, (samples - overlap) // (target + overlap))
    return folds + 1 if folds * (target + overlap) + overlap != samples else folds


def steps_for(frames: int, hop_length: int, batched: bool, target: int, overlap: int) -> tuple[int, int]:
    """(folds, steps per fold) RTVC's generation runs for a mel of ``frames`` frames."""
    total = frames * hop_length
    if not batched:
        return 1, total
    return _fold_count(total, target, overlap), target + 2 * overlap


__all__ = [
    "SAMPLERS",
    "Generator",
    "block_bounds",
    "choose_folding",
    "reference_generate",
    "draw_rtvc_gru_cell_numbers",
    "steps_for",
]
