"""The training forward (``Decoder.teacher_forced``, all steps batched where the inputs allow) against the
per-step loop that synthesis runs (``Decoder.forward`` once per step): same outputs, same gradients."""

from __future__ import annotations

import pytest
import torch
from vcframe_tacotron.tacotron import Decoder, Tacotron, length_mask


def _network(r: int) -> Tacotron:
    torch.manual_seed(0)
    network = Tacotron(
        embed_dims=16, num_chars=20, encoder_dims=16, decoder_dims=16, n_mels=8, postnet_dims=16,
        encoder_K=3, postnet_K=3, lstm_dims=24, num_highways=1, speaker_embedding_size=6, max_r=5,
    )  # fmt: skip
    network.r = r
    return network.double()


def _per_step_forward(network: Tacotron, chars, mels, embeds, text_lengths):  # type: ignore[no-untyped-def]
    """The teacher-forced forward written as one Decoder.forward call per step (what training did before)."""
    clean = text_lengths is not None
    mask = length_mask(text_lengths, chars.size(1)) if clean else chars != 0
    encoder_seq, encoder_seq_proj = network.encode(chars, embeds, 0.0, text_lengths)
    state = network.decoder.initial_state(encoder_seq)
    r, frames_out, attention, stops = network.r, [], [], []
    for t in range(0, mels.size(2), r):
        prenet_in = mels[:, :, t - 1] if t > 0 else mels.new_zeros(mels.size(0), mels.size(1))
        frames, scores, stop, state = network.decoder(encoder_seq, encoder_seq_proj, prenet_in, state, mask, 0.0, clean)
        frames_out.append(frames)
        attention.append(scores.unsqueeze(1))
        stops.extend([stop] * r)
    mel_decoder = torch.cat(frames_out, dim=2)
    mel_postnet = network.post_proj(network.postnet(mel_decoder, None)).transpose(1, 2)
    return mel_decoder, mel_postnet, torch.cat(attention, 1), torch.cat(stops, 1)


def _deterministic_zoneout(previous: torch.Tensor, current: torch.Tensor, p: float = 0.1) -> torch.Tensor:
    # an order-independent stand-in for the random zoneout mask: every third unit keeps its previous value
    keep = (torch.arange(previous.size(1)) % 3 == 0).float()
    return previous * keep + current * (1 - keep)


@pytest.mark.parametrize(("r", "frames", "clean", "training"), [(1, 7, False, False), (3, 12, True, False),
                                                                 (4, 10, False, True), (2, 9, True, True)])  # fmt: skip
def test_teacher_forced_equals_per_step_loop(
    monkeypatch: pytest.MonkeyPatch, r: int, frames: int, clean: bool, training: bool
) -> None:
    monkeypatch.setattr(Decoder, "zoneout", staticmethod(_deterministic_zoneout))
    network = _network(r)
    network.train(training)
    chars = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 10, 0, 0]])
    text_lengths = torch.tensor([5, 3]) if clean else None
    mels = torch.randn(2, 8, frames, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    embeds = torch.randn(2, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    results = []
    for forward in ("batched", "per-step"):
        network.zero_grad()
        if forward == "batched":
            outputs = network(chars, mels, embeds, p=0.0, text_lengths=text_lengths)
        else:
            outputs = _per_step_forward(network, chars, mels, embeds, text_lengths)
        loss = sum((output * (index + 1)).sin().sum() for index, output in enumerate(outputs))
        loss.backward()  # type: ignore[union-attr]
        gradients = {name: parameter.grad.clone() for name, parameter in network.named_parameters()
                     if parameter.grad is not None}  # fmt: skip
        results.append((outputs, gradients))
    (batched, batched_grads), (per_step, per_step_grads) = results
    for name, got, want in zip(("mel_decoder", "mel_postnet", "attention", "stop"), batched, per_step, strict=True):
        assert got.shape == want.shape, name
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=name)
    assert batched_grads.keys() == per_step_grads.keys()
    for name, gradient in per_step_grads.items():
        # float64: sums in another order (batched products) differ by rounding alone
        torch.testing.assert_close(batched_grads[name], gradient, rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize("lengths", [[7, 3, 1, 7], [2, 5, 5, 4], [7, 7, 7, 7]])
def test_masked_bigru_equals_packed_sequence(lengths: list[int]) -> None:
    """CBHG._masked_rnn (two padded passes) gives a packed bidirectional GRU's outputs and gradients, zeros
    on padded frames, whatever the padding holds."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    from vcframe_tacotron.tacotron import CBHG

    torch.manual_seed(1)
    cbhg = CBHG(K=2, in_channels=6, channels=10, proj_channels=[8, 6], num_highways=1).double()
    lengths_tensor = torch.tensor(lengths)
    features = torch.randn(len(lengths), 7, 10, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(len(lengths), 7, 10, dtype=torch.float64)

    masked = cbhg._masked_rnn(features, lengths_tensor)
    (masked * weights).sum().backward()
    masked_grads = [features.grad.clone()] + [parameter.grad.clone() for parameter in cbhg.rnn.parameters()]
    features.grad = None
    cbhg.zero_grad()

    packed = pack_padded_sequence(features, lengths_tensor, batch_first=True, enforce_sorted=False)
    reference, _ = pad_packed_sequence(cbhg.rnn(packed)[0], batch_first=True, total_length=7)
    (reference * weights).sum().backward()
    reference_grads = [features.grad] + [parameter.grad for parameter in cbhg.rnn.parameters()]

    torch.testing.assert_close(masked, reference, rtol=1e-10, atol=1e-12)
    for got, expected in zip(masked_grads, reference_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_silence_value_fills_the_post_nets_padded_frames_and_leaves_the_gradients() -> None:
    """With mel_lengths and silence_value the post-net's frames after each item hold the silence value (as
    generate gives), so the padded batch's post-net loss counts no error there; the gradients are unchanged."""
    from vcframe_tacotron.loss import tacotron_loss

    network = _network(2)
    network.eval()
    chars = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 10, 0, 0]])
    text_lengths, mel_lengths = torch.tensor([5, 3]), torch.tensor([10, 5])
    mels = torch.randn(2, 8, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mels[1, :, 5:] = -4.0  # the collate pads with the silence value
    embeds = torch.randn(2, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    stop_target = (torch.arange(10)[None, :] >= mel_lengths[:, None] - 1).double()
    results = {}
    for silence in (None, -4.0):
        network.zero_grad()
        outputs = network(chars, mels, embeds, p=0.0, text_lengths=text_lengths, mel_lengths=mel_lengths,
                          silence_value=silence)  # fmt: skip
        losses = tacotron_loss(*outputs[:2], outputs[3], mels, stop_target)
        losses["loss"].backward()
        gradients = {name: parameter.grad.clone() for name, parameter in network.named_parameters()
                     if parameter.grad is not None}  # fmt: skip
        results[silence] = (outputs[1].detach(), losses["m2_loss"].item(), gradients)
    (zeros, m2_zeros, grads_zeros), (filled, m2_filled, grads_filled) = results[None], results[-4.0]
    assert torch.equal(zeros[1, :, 5:], torch.zeros(8, 5, dtype=torch.float64))
    assert torch.equal(filled[1, :, 5:], torch.full((8, 5), -4.0, dtype=torch.float64))
    torch.testing.assert_close(filled[:, :, :5], zeros[:, :, :5], rtol=0, atol=0)
    torch.testing.assert_close(filled[0], zeros[0], rtol=0, atol=0)
    # the padded frames' error (16 per value) is gone from the post-net loss: 40 of the 160 values
    assert m2_zeros - m2_filled == pytest.approx(16 * 40 / 160)
    assert grads_zeros.keys() == grads_filled.keys()
    for name, gradient in grads_zeros.items():
        torch.testing.assert_close(grads_filled[name], gradient, rtol=1e-12, atol=1e-14, msg=name)
