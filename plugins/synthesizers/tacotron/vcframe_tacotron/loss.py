"""Training losses: RTVC's (decoder L1 + MSE, post-net MSE, stop BCE) and an optional guided attention loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def tacotron_loss(
    mel_decoder: torch.Tensor,
    mel_postnet: torch.Tensor,
    stop: torch.Tensor,
    mels: torch.Tensor,
    stop_target: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """RTVC's ``synthesizer/train.py`` loss, means over everything (padding included, as RTVC).

    Shapes: mel_decoder, mel_postnet, mels (B, n_mels, T); stop, stop_target (B, T).
    Returns ``m1_loss`` (decoder MSE + L1), ``m2_loss`` (post-net MSE), ``stop_loss`` (BCE) and ``loss`` (sum).
    """
    m1_loss = F.mse_loss(mel_decoder, mels) + F.l1_loss(mel_decoder, mels)
    m2_loss = F.mse_loss(mel_postnet, mels)
    stop_loss = F.binary_cross_entropy(stop, stop_target)
    return {"m1_loss": m1_loss, "m2_loss": m2_loss, "stop_loss": stop_loss, "loss": m1_loss + m2_loss + stop_loss}


def guided_attention_weights(
    text_lengths: torch.Tensor,
    decoder_lengths: torch.Tensor,
    sigma: float = 0.2,
    steps: int | None = None,
    chars: int | None = None,
) -> torch.Tensor:
    """Penalty ``1 - exp(-(l/L - t/T)^2 / (2 sigma^2))`` (Tachibana et al. 2017) on the item's characters,
    1 on padded characters, 0 on padded decoder steps.

    Shapes: text_lengths (B,), decoder_lengths (B,) -> (B, steps, chars).
    """
    steps = int(decoder_lengths.max()) if steps is None else steps
    chars = int(text_lengths.max()) if chars is None else chars
    t = torch.arange(steps, device=text_lengths.device, dtype=torch.float32)[None, :, None]
    n = torch.arange(chars, device=text_lengths.device, dtype=torch.float32)[None, None, :]
    big_t = decoder_lengths.float()[:, None, None].clamp_min(1)
    big_n = text_lengths.float()[:, None, None].clamp_min(1)
    weights = 1.0 - torch.exp(-((n / big_n - t / big_t) ** 2) / (2 * sigma**2))
    # padded characters cost 1: with RTVC's multiplicative mask they can take attention mass
    weights = torch.where(n < big_n, weights, torch.ones_like(weights))
    return weights * (t < big_t)


def guided_attention_loss(
    attention: torch.Tensor,
    text_lengths: torch.Tensor,
    decoder_lengths: torch.Tensor,
    sigma: float = 0.2,
    total_steps: int | None = None,
) -> torch.Tensor:
    """Attention mass far from the diagonal: ``sum_l A[t, l] W[t, l]`` averaged over the valid decoder steps,
    so it lies in [0, 1) whatever the text length. attention (B, steps, chars) -> scalar.

    ``total_steps`` replaces the batch's count of valid decoder steps as the divisor: a rank of a distributed
    run passes the global batch's count, so the ranks' results sum to the global batch's loss."""
    weights = guided_attention_weights(text_lengths, decoder_lengths, sigma, attention.size(1), attention.size(2))
    steps = decoder_lengths.clamp(max=attention.size(1)).sum().clamp_min(1) if total_steps is None else total_steps
    return (attention * weights).sum() / steps
