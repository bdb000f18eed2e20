"""The generator's inference form: folded weights laid out once for oneDNN, channels-last, float32 or bfloat16.

:class:`PackedGenerator` computes what :class:`~vcframe_hifigan.generator.Generator` computes, in the same
order of additions, but runs every convolution as a 2-D convolution over ``(B, C, 1, L)`` in channels-last
memory (oneDNN's native layout: no reorder of activations around each convolution) with its weights cast and
laid out once at build time instead of on every call, shares the LeakyReLU that all K resblocks of a stage apply
to the same input, and adds residuals in place. In float32 it equals the generator within about 1e-7 (oneDNN
picks another summation order for the channels-last kernels); in bfloat16 every layer but ``conv_post`` runs in
bfloat16 (AMX tiles / AVX-512 BF16 where the CPU has them), and ``conv_post`` and the final ``tanh`` run in
float32, so the waveform is not rounded to bfloat16's 8-bit mantissa.

Which form runs is decided at run time (:func:`packed_available`, :func:`vcframe_hifigan.model.resolve_precision`,
:func:`vcframe.cpu.cpu_has_bf16`):
without oneDNN the vocoder falls back to the plain generator, and ``auto`` precision picks bfloat16 only where
the CPU computes it natively. Measured speed-ups are in the README (Speed).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vcframe_hifigan.generator import FINAL_LRELU_SLOPE, LRELU_SLOPE, Generator, ResBlock1, ResBlock2, speaker_offset


def packed_available() -> bool:
    """True when torch has oneDNN (mkldnn), whose channels-last convolutions :class:`PackedGenerator` needs."""
    return bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class PackedConv:
    """One convolution's weights laid out for a channels-last 2-D convolution.

    ``weight`` is ``(out, in, 1, k)`` for a convolution and ``(in, out, 1, k)`` for a transposed one, in
    channels-last memory; ``bias`` is ``(out,)``.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    padding: int
    dilation: int
    stride: int

    @classmethod
    def from_module(cls, conv: nn.Module, dtype: torch.dtype) -> PackedConv:
        """The weights of ``conv``, a Conv1d or ConvTranspose1d with a bias and numeric padding, as ``dtype``."""
        if not isinstance(conv, nn.Conv1d | nn.ConvTranspose1d) or conv.bias is None or isinstance(conv.padding, str):
            raise ValueError(f"expected a generator convolution (1-D, with a bias and numeric padding), got {conv}")
        weight = conv.weight.detach().to(dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return cls(weight, conv.bias.detach().to(dtype), conv.padding[0], conv.dilation[0], conv.stride[0])

    def conv(self, activations: torch.Tensor, valid: int) -> torch.Tensor:
        """Stride-1 convolution: (B, in, 1, L) -> (B, out, 1, L), zero from sample ``valid`` on (see
        :func:`zero_tail`)."""
        output = F.conv2d(activations, self.weight, self.bias, padding=(0, self.padding), dilation=(1, self.dilation))
        return zero_tail(output, valid)

    def conv_transpose(self, activations: torch.Tensor, valid: int) -> torch.Tensor:
        """Upsampling: (B, in, 1, L) -> (B, out, 1, L * stride), zero from sample ``valid`` on."""
        output = F.conv_transpose2d(
            activations, self.weight, self.bias, stride=(1, self.stride), padding=(0, self.padding)
        )
        return zero_tail(output, valid)


def zero_tail(activations: torch.Tensor, valid: int) -> torch.Tensor:
    """``activations`` (B, C, 1, L) with samples ``valid`` and later set to zero, in place.

    The generator zero-pads every convolution at the end of the utterance; a padded input computes the same
    samples before ``valid`` as long as everything after it is zero when the next convolution reads it (a
    transposed convolution's extra inputs then add nothing either, and LeakyReLU keeps zeros zero).
    """
    if valid < activations.shape[-1]:
        activations[..., valid:] = 0
    return activations


def padded_frames(frames: int) -> int:
    """``frames`` rounded up to the next multiple of 2 ** (floor(log2 frames) - 3) (at most 12.5 % more).

    oneDNN creates (JIT-compiles) a convolution primitive for every new input length, which cost 0.33 s per new
    length for V1 in bfloat16 (4 times its compute for 1 s of audio; 0.07 s in float32); with lengths rounded
    to 8 steps per octave a process meets few distinct lengths and reuses the primitives.

    >>> [padded_frames(n) for n in (1, 7, 8, 9, 17, 86, 100)]
    [1, 7, 8, 9, 18, 88, 104]
    """
    step = 1 << max(0, frames.bit_length() - 4)
    return -(-frames // step) * step


class PackedGenerator:
    """A folded :class:`Generator`'s function, for inference only (no autograd, no weight norm, no ``record``).

    Args:
        generator: the generator, weight norm removed (``weight_norm=False`` or after ``remove_weight_norm``).
        dtype (default torch.float32): float32 (equal to the generator within about 1e-7) or bfloat16 (every
            layer but ``conv_post`` in bfloat16; the waveform moves by up to a few 1e-3).

    Shape: ``__call__(mel (B, num_mels, T) float, speaker_embedding (B, D) / (1, D) / (D,) or None) -> (B, T *
    hop_length) float32``; the embedding as :meth:`Generator.speaker_offset` takes it (a conditioned generator).
    The weights are copied, so later changes to ``generator`` are not seen.
    """

    def __init__(self, generator: Generator, dtype: torch.dtype = torch.float32) -> None:
        if generator.has_weight_norm:
            raise ValueError("PackedGenerator needs folded weights: call generator.remove_weight_norm() first")
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"PackedGenerator computes in float32 or bfloat16, got {dtype}")
        self.dtype = dtype
        self.hop_length = generator.hop_length
        self.speaker_embedding_dim = generator.config.speaker_embedding_dim
        self.num_kernels = generator.num_kernels
        self.conv_pre = PackedConv.from_module(generator.conv_pre, dtype)
        self.ups = [PackedConv.from_module(upsample, dtype) for upsample in generator.ups]
        # per resblock, per dilation: (first convolution, second convolution or None for ResBlock2)
        self.resblocks: list[list[tuple[PackedConv, PackedConv | None]]] = []
        for block in generator.resblocks:
            if isinstance(block, ResBlock1):
                self.resblocks.append(
                    [
                        (PackedConv.from_module(first, dtype), PackedConv.from_module(second, dtype))
                        for first, second in zip(block.convs1, block.convs2, strict=True)
                    ]
                )
            elif isinstance(block, ResBlock2):
                self.resblocks.append([(PackedConv.from_module(conv, dtype), None) for conv in block.convs])
            else:
                raise ValueError(f"expected ResBlock1 or ResBlock2, got {type(block).__name__}")
        self.conv_post = PackedConv.from_module(generator.conv_post, torch.float32)
        #: copies of the generator's speaker projection (a small float32 linear map), mean and scale; None without
        self._speaker: tuple[nn.Linear, torch.Tensor, torch.Tensor] | None = (
            (
                copy.deepcopy(generator.speaker_projection),
                generator.speaker_embedding_mean.detach().clone(),
                generator.speaker_embedding_scale.detach().clone(),
            )
            if self.speaker_embedding_dim
            else None
        )

    def _resblock(self, index: int, block_input: torch.Tensor, activated: torch.Tensor, valid: int) -> torch.Tensor:
        """Resblock ``index`` on ``block_input``, whose LeakyReLU (``activated``) the stage computed once."""
        x = block_input
        for step, (first, second) in enumerate(self.resblocks[index]):
            residual = first.conv(activated if step == 0 else F.leaky_relu(x, LRELU_SLOPE), valid)
            if second is not None:
                residual = second.conv(F.leaky_relu_(residual, LRELU_SLOPE), valid)
            x = residual.add_(x)  # residual + x, as the generator adds them
        return x

    def speaker_offset(self, speaker_embedding: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """(B, C0, 1, 1) in the compute dtype: what conditioning adds after conv_pre (see
        :meth:`Generator.speaker_offset`); None without conditioning (an embedding is then refused)."""
        offset = speaker_offset(self._speaker, speaker_embedding, batch)
        return None if offset is None else offset.to(self.dtype).unsqueeze(-1)

    @torch.inference_mode()
    def __call__(self, mel: torch.Tensor, speaker_embedding: torch.Tensor | None = None) -> torch.Tensor:
        frames = mel.shape[-1]
        padded = F.pad(mel.to(self.dtype), (0, padded_frames(frames) - frames)).unsqueeze(2)
        x = self.conv_pre.conv(padded.contiguous(memory_format=torch.channels_last), frames)
        offset = self.speaker_offset(speaker_embedding, mel.shape[0])
        if offset is not None:
            x = zero_tail(x.add_(offset), frames)
        valid = frames
        for stage, upsample in enumerate(self.ups):
            valid *= upsample.stride
            x = upsample.conv_transpose(F.leaky_relu(x, LRELU_SLOPE), valid)
            activated = F.leaky_relu(x, LRELU_SLOPE)
            fused: torch.Tensor | None = None
            for index in range(stage * self.num_kernels, (stage + 1) * self.num_kernels):
                output = self._resblock(index, x, activated, valid)
                fused = output if fused is None else fused.add_(output)  # in order j = 0, 1, 2
            assert fused is not None
            x = fused.div_(self.num_kernels)
        x = self.conv_post.conv(F.leaky_relu(x, FINAL_LRELU_SLOPE).to(torch.float32), valid)
        return torch.tanh(x)[:, 0, 0, :valid]
